"""The model zoo: valid ONNX, runs in onnxruntime with the documented shapes, torchvision's
parameter counts, and fastcnn agrees with onnxruntime on every model it can already run."""
import functools

import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")

from fastcnn import zoo  # noqa: E402
from fastcnn.benchmark import model_flops, ort_session  # noqa: E402

NAMES = list(zoo.MODELS)


@functools.lru_cache(maxsize=None)
def built(name):
    return zoo.get(name)


@functools.lru_cache(maxsize=None)
def ort_outputs(name, batch=1):
    feeds = zoo.random_inputs(name, batch)
    return feeds, ort_session(built(name), 1).run(None, feeds)


@pytest.mark.parametrize("name", NAMES)
def test_valid_onnx_and_runs_in_onnxruntime(name):
    m = built(name)
    onnx.checker.check_model(m, full_check=True)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    _, outs = ort_outputs(name)
    expected = zoo.OUTPUT_SHAPES[name]
    assert [o.name for o in m.graph.output] == list(expected)
    for o, shape in zip(outs, expected.values()):
        assert o.shape == shape
        assert np.isfinite(o).all() and np.abs(o).max() > 0


def test_symbolic_batch_runs_at_batch_2():
    m = built("tiny")
    out = ort_session(m, 1).run(None, zoo.random_inputs("tiny", batch=2))[0]
    assert out.shape == (2, 10)


@pytest.mark.parametrize("name,params", sorted(zoo.PARAMS.items()))
def test_param_counts_match_torchvision(name, params):
    assert zoo.count_params(built(name)) == params


def test_resnet18_flops():
    total, per = model_flops(built("resnet18"), zoo.input_shapes("resnet18"))
    assert total == pytest.approx(3.628e9, rel=0.01)     # 1.814 GMAC, as torchvision reports
    assert len([f for f in per.values() if f > 0]) == 21  # 20 convs + fc


def test_flops_scale_with_batch():
    one = model_flops(built("mobilenet_v2"), zoo.input_shapes("mobilenet_v2", 1))[0]
    eight = model_flops(built("mobilenet_v2"), zoo.input_shapes("mobilenet_v2", 8))[0]
    assert one == pytest.approx(0.60e9, rel=0.02)
    assert eight == pytest.approx(8 * one, rel=1e-6)


def test_deterministic_weights():
    assert zoo.tiny().SerializeToString() == zoo.tiny().SerializeToString()
    assert zoo.tiny(seed=1).SerializeToString() != zoo.tiny().SerializeToString()


def test_exporter_idioms_present():
    ops = {n: {x.op_type for x in built(n).graph.node} for n in NAMES}
    assert {"Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "Flatten", "Gemm"} <= \
        ops["resnet18"]
    assert {"Clip", "Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= ops["mobilenet_v2"]
    assert {"HardSwish", "HardSigmoid", "GlobalAveragePool", "Mul"} <= ops["mobilenet_v3_small"]
    assert {"ConvTranspose", "Resize", "DepthToSpace"} <= ops["unet_decoder"]
    assert {"Tanh", "Sigmoid", "Mul"} <= ops["wavenet1d"]
    assert {"PRelu", "Gemm"} <= ops["tiny"]
    assert ops["nhwc_input_net"] >= {"Transpose", "MatMul"}
    assert "AveragePool" in ops["inception_kx1"]
    dil = [a.ints for n in built("wavenet1d").graph.node for a in n.attribute
           if a.name == "dilations"]
    assert max(d[0] for d in dil) == 512
    ct = [n for n in built("unet_decoder").graph.node if n.op_type == "ConvTranspose"]
    assert any(a.name == "output_padding" for n in ct for a in n.attribute)


def test_single_conv_shapes():
    m = zoo.single_conv((1, 16, 10, 12), 8, (3, 3), strides=(2, 2), dilations=(2, 2), group=2)
    onnx.checker.check_model(m)
    x = np.random.default_rng(0).standard_normal((1, 16, 10, 12)).astype(np.float32)
    y = ort_session(m, 1).run(None, {"x": x})[0]
    assert list(y.shape) == [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim]


def test_unknown_zoo_name():
    with pytest.raises(KeyError, match="resnet18"):
        zoo.get("nope")


@pytest.mark.parametrize("name", NAMES)
def test_fastcnn_matches_onnxruntime(name):
    import fastcnn
    try:
        sess = fastcnn.InferenceSession(built(name), num_threads=1)
    except fastcnn.UnsupportedOpError as e:
        pytest.skip(f"fastcnn cannot run {name} yet: {e}".splitlines()[0] + " " +
                    " ".join(line.strip() for line in str(e).splitlines()[1:3]))
    except fastcnn.FastCNNError as e:
        pytest.skip(f"fastcnn cannot prepare {name} yet: {type(e).__name__}: {e}")
    feeds, ref = ort_outputs(name)
    outs = sess.run(None, feeds)
    for got, want in zip(outs, ref):
        assert got.shape == want.shape
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * scale)
