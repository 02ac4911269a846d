"""Adversarial exporter-idiom audit: small graphs, each a pattern that once gave a silent
wrong answer, a crash or a needless error in fastcnn, compared with onnxruntime at 1 and
2 threads (see test_exporter_tf_paddle.py for the builder and the broad idiom coverage)."""
from __future__ import annotations

import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T, helper

from test_exporter_tf_paddle import G, check, f32

RNG = np.random.default_rng(2026)


def _bn_params(g, c):
    return [g.c(g.rng.uniform(0.5, 1.5, c).astype(np.float32)), g.w(c), g.w(c),
            g.c(g.rng.uniform(0.5, 2, c).astype(np.float32))]


def gemm_c_rows_then_bn(c_shape):
    """BatchNorm1d after a Gemm whose C varies along the rows ([M, 1] with M == N): folding
    BN into the Gemm treated C as per column (wrong numbers)."""
    g = G(1)
    y = g.op("Gemm", ["x", g.w(4, 4), g.w(*c_shape)], transB=1, alpha=1.3, beta=0.7)
    y = g.op("BatchNormalization", [y] + _bn_params(g, 4))
    return g.model({"x": ([4, 4], T.FLOAT)}, [y], 15), [{"x": f32(RNG, 4, 4)}]


def bn_spatial0():
    """BatchNormalization-7 spatial=0 (parameters [C, H, W]) after a Conv: the BN fold
    reshaped them as per-channel vectors and raised a bare ValueError."""
    g = G(2)
    c = g.op("Conv", ["x", g.w(3, 3, 1, 1)])
    p = [g.c(g.rng.uniform(0.5, 1.5, (3, 5, 6)).astype(np.float32)), g.w(3, 5, 6), g.w(3, 5, 6),
         g.c(g.rng.uniform(0.5, 2, (3, 5, 6)).astype(np.float32))]
    y = g.op("BatchNormalization", [c] + p, spatial=0)
    return g.model({"x": ([2, 3, 5, 6], T.FLOAT)}, [y], 7), [{"x": f32(RNG, 2, 3, 5, 6)}]


def minus_one_dims():
    """Graph input dims written as dim_value -1 (old paddle2onnx, keras2onnx: a framework's
    batch -1 handed to onnx.helper): onnxruntime takes them as unknown; fastcnn refused the
    model ("declares negative dims")."""
    g = G(3)
    c = g.op("Conv", ["x", g.w(4, 3, 3, 3), g.w(4)], pads=[1, 1, 1, 1])
    y = g.op("Gemm", [g.op("Flatten", [g.op("GlobalAveragePool", [c])]), g.w(5, 4), g.w(5)],
             transB=1)
    m = g.model({"x": ([-1, 3, -1, -1], T.FLOAT)}, [y], 11)
    return m, [{"x": f32(RNG, 1, 3, 8, 8)}, {"x": f32(RNG, 3, 3, 5, 7)}]


def local_functions():
    """Model-local functions (FunctionProto), as torch's export_modules_as_functions and the
    dynamo exporter write them: nested calls, a Constant in the body, an attribute
    reference.  fastcnn raised UnsupportedOpError naming the function calls."""
    silu = helper.make_function("local", "MySilu", ["X"], ["Y"], [
        helper.make_node("Sigmoid", ["X"], ["S"]), helper.make_node("Mul", ["X", "S"], ["Y"])],
        [helper.make_opsetid("", 18)])
    ref = onnx.AttributeProto(name="alpha", type=onnx.AttributeProto.FLOAT, ref_attr_name="alpha")
    leaky = helper.make_node("LeakyRelu", ["X"], ["Y"])
    leaky.attribute.append(ref)
    lk = helper.make_function("local", "Lk", ["X"], ["Y"], [leaky], [helper.make_opsetid("", 18)],
                              attributes=["alpha"])
    outer = helper.make_function("local", "Block", ["X", "W"], ["Y"], [
        helper.make_node("Conv", ["X", "W"], ["C"], pads=[1, 1, 1, 1]),
        helper.make_node("MySilu", ["C"], ["T"], domain="local"),
        helper.make_node("Constant", [], ["K"], value_float=0.5),
        helper.make_node("Mul", ["T", "K"], ["Y"])],
        [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)])
    g = G(4)
    c = g.op("Conv", ["x", g.w(4, 3, 3, 3)])
    g.nodes.append(helper.make_node("Block", [c, g.w(4, 4, 3, 3)], ["b"], domain="local", name="blk"))
    g.nodes.append(helper.make_node("Lk", ["b"], ["y"], domain="local", alpha=0.3, name="lk"))
    m = g.model({"x": (["N", 3, 7, 6], T.FLOAT)}, ["y", "b"], 18)
    m.opset_import.append(helper.make_opsetid("local", 1))
    m.functions.extend([silu, lk, outer])
    m = onnx.load_from_string(m.SerializeToString())   # (bytes: the raw-data splitting path)
    return m, [{"x": f32(RNG, 2, 3, 7, 6)}, {"x": f32(RNG, 1, 3, 7, 6)}]


def torch_modules_as_functions():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv, self.bn, self.act = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.Hardswish()

        def forward(self, x):
            return self.act(self.bn(self.conv(x))) + x

    net = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), Block(8), Block(8), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 5)).eval()
    for mod in net.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2)
    f = io.BytesIO()
    x = torch.randn(2, 3, 16, 16)
    torch.onnx.export(net, (x,), f, opset_version=15, input_names=["x"], dynamo=False,
                      export_modules_as_functions={Block}, dynamic_axes={"x": {0: "N"}})
    m = onnx.load_from_string(f.getvalue())
    assert len(m.functions) == 1
    return m, [{"x": x.numpy()}, {"x": x.numpy()[:1]}]


CASES = {
    "gemm_c_Mx1_bn": lambda: gemm_c_rows_then_bn((4, 1)),
    "gemm_c_1xN_bn": lambda: gemm_c_rows_then_bn((1, 4)),
    "gemm_c_MxN_bn": lambda: gemm_c_rows_then_bn((4, 4)),
    "bn_spatial0_after_conv": bn_spatial0,
    "input_dims_minus_one": minus_one_dims,
    "local_functions": local_functions,
    "torch_export_modules_as_functions": torch_modules_as_functions,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exporter_audit(case):
    m, feeds = CASES[case]()
    check(m, feeds)


def _function_model(functions, call):
    g = G()
    g.nodes.append(helper.make_node(call, ["x"], ["y"], domain="local", name="call"))
    m = g.model({"x": ([2], T.FLOAT)}, ["y"], 18)
    m.opset_import.append(helper.make_opsetid("local", 1))
    m.functions.extend(functions)
    return m


def test_local_functions_recursive_or_exploding_raise():
    from fastcnn.errors import InvalidGraphError
    import fastcnn
    ops = [helper.make_opsetid("", 18), helper.make_opsetid("local", 1)]
    rec = helper.make_function("local", "F", ["X"], ["Y"],
                               [helper.make_node("F", ["X"], ["Y"], domain="local")], ops)
    with pytest.raises(InvalidGraphError, match="recursive"):
        fastcnn.InferenceSession(_function_model([rec], "F"))
    fs = [helper.make_function("local", "F0", ["X"], ["Y"], [helper.make_node("Relu", ["X"], ["Y"])], ops)]
    for i in range(1, 40):          # F_i calls F_{i-1} twice: 2^39 Relus
        fs.append(helper.make_function("local", f"F{i}", ["X"], ["Y"], [
            helper.make_node(f"F{i - 1}", ["X"], ["T"], domain="local"),
            helper.make_node(f"F{i - 1}", ["T"], ["Y"], domain="local")], ops))
    with pytest.raises(InvalidGraphError, match="expand to more than"):
        fastcnn.InferenceSession(_function_model(fs, "F39"))
    out = fastcnn.InferenceSession(_function_model(fs, "F6")).run(None, {"x": np.array([-1, 2], np.float32)})
    np.testing.assert_array_equal(out[0], [0, 2])
