"""ConvTranspose's fast path (stride-phase decomposition on the NCHWc conv kernels) against
the numpy reference, the generic GEMM+col2im path, ReferenceEvaluator and onnxruntime;
fused activations, folded BatchNormalization, layouts in a blocked decoder."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import fastcnn
import fastcnn.reference as R
from fastcnn.ops.conv_transpose import ConvTranspose, axis_phases

from conftest import F, make_model

pytest.importorskip("fastcnn._kernels.deconv")
from fastcnn._kernels import deconv as kdc  # noqa: E402

TOL = dict(rtol=2e-4, atol=2e-4)


def ct_graph(x_shape, w, b=None, attrs=None, tail=(), inits=None, opset=17):
    """X -> ConvTranspose 'ct0' (-> tail nodes reading 'H') -> Y."""
    ins = ["X", "W"] + (["B"] if b is not None else [])
    init = {"W": w, **({"B": b} if b is not None else {}), **(inits or {})}
    out = "H" if tail else "Y"
    nodes = [helper.make_node("ConvTranspose", ins, [out], name="ct0", **(attrs or {}))]
    nodes += list(tail)
    return make_model(nodes, [("X", F, list(x_shape))], [("Y", F, None)], init, opset=opset)


def ct_steps(sess, x):
    plan = sess._plan({"X": x.shape})
    return plan, [st for st in plan.steps if isinstance(st.op, ConvTranspose)]


def run(model, x, nt, algo=None):
    ConvTranspose.forced_algorithm = algo
    try:
        sess = fastcnn.InferenceSession(model, num_threads=nt)
        y = sess.run(None, {"X": x})[0]
    finally:
        ConvTranspose.forced_algorithm = None
    _, steps = ct_steps(sess, x)
    return y, [st.op.algorithm_name for st in steps], sess


def not_at_edge(model):
    """The model with Y = H · 1 after its last node: the ConvTranspose output is read by a
    node, so the planner keeps it blocked (at the graph's edge it runs plain)."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    last = m.graph.node[-1]
    last.output[0] = "Y_pre"
    m.graph.node.append(helper.make_node("Mul", ["Y_pre", "one"], ["Y"]))
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.ones(1, np.float32), "one"))
    return m


def check(model, x, expected, fast=True, threads=(1, 2)):
    """Fast path (bit-identical at 1 and 2 threads, plain at the graph's edge and blocked
    inside) == reference and == the generic path."""
    outs = []
    for m, edge in ((model, True), (not_at_edge(model), False)):
        for nt in threads:
            y, algos, _ = run(m, x, nt)
            # at the edge the planner runs it plain when the output is the bigger tensor
            name = "phases_plain_io" if edge and y.size > x.size else "phases"
            assert algos == [name if fast else "gemm_col2im"]
            outs.append(y)
    for y in outs[1:]:
        np.testing.assert_array_equal(outs[0], y)
    np.testing.assert_allclose(outs[0], expected, **TOL)
    g, algos, _ = run(model, x, 2, "gemm_col2im")
    assert algos == ["gemm_col2im"]
    np.testing.assert_allclose(outs[0], g, **TOL)
    return outs[0]


GRID = [
    # spatial, kernel, strides, pads, dilations, output_padding
    ((6, 5), (4, 4), (2, 2), (1, 1, 1, 1), (1, 1), (0, 0)),       # U-Net / DCGAN k4 s2 p1
    ((5, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1)),       # k3 s2 p1 output_padding 1
    ((4, 5), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), (0, 0)),       # k2 s2
    ((4, 4), (3, 4), (3, 3), (2, 0, 1, 3), (1, 1), (2, 1)),       # stride 3, asymmetric pads
    ((5, 4), (3, 2), (1, 2), (2, 1, 0, 1), (2, 1), (1, 0)),       # dilation, stride 1 on H
    ((5, 5), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (0, 0)),       # stride 1: one phase
    ((4, 4), (2, 2), (3, 3), (0, 0, 0, 0), (1, 1), (1, 2)),       # phases no tap reaches
    ((4, 5), (2, 3), (2, 2), (3, 1, 2, 4), (1, 2), (0, 1)),       # crops: negative phase pads
    ((9,), (4,), (3,), (1, 2), (2,), (1,)),                       # 1D, dilation 2, stride 3
    ((3, 4, 3), (2, 3, 2), (2, 1, 2), (0, 1, 1, 1, 0, 0), (1, 1, 2), (1, 0, 1)),   # 3D
]


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,out_pad", GRID)
@pytest.mark.parametrize("c_in,c_out", [(16, 8), (5, 11), (3, 12)])
def test_fast_path_grid(spatial, kernel, strides, pads, dil, out_pad, c_in, c_out):
    rng = np.random.default_rng(abs(hash((spatial, kernel, strides, c_in))) % 2**32)
    x = rng.standard_normal((2, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    attrs = dict(strides=list(strides), pads=list(pads), dilations=list(dil),
                 output_padding=list(out_pad))
    check(ct_graph(x.shape, w, b, attrs), x,
          R.conv_transpose(x, w, b, strides, pads, dil, 1, out_pad))


@pytest.mark.parametrize("group,c_in,c_out,fast", [
    (2, 16, 32, True),       # grouped, 8-multiples per group: dense kernel per group
    (8, 8, 8, True),         # depthwise transposed (crops: zero taps in front)
    (8, 8, 16, True),        # depthwise, multiplier 2
    (4, 16, 8, True),        # few channels per group (grouped lane kernel)
    (3, 9, 6, True),         # 3 in / 2 out per group (grouped lane kernel)
    (3, 9, 9, True),         # 3 in / 3 out per group (grouped lane kernel, any grouping)
])
@pytest.mark.parametrize("strides,pads,out_pad", [((2, 2), (1, 1, 1, 1), (1, 1)),
                                                  ((2, 3), (0, 1, 1, 0), (0, 2))])
def test_fast_path_groups(group, c_in, c_out, fast, strides, pads, out_pad):
    rng = np.random.default_rng(group * 100 + c_out)
    x = rng.standard_normal((2, c_in, 5, 4)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out // group, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    attrs = dict(strides=list(strides), pads=list(pads), output_padding=list(out_pad),
                 group=group)
    check(ct_graph(x.shape, w, b, attrs), x,
          R.conv_transpose(x, w, b, strides, pads, None, group, out_pad), fast=fast)


@pytest.mark.parametrize("dil", [1, 2, 3])
def test_depthwise_crops(dil):
    """Phases with negative pads (crops): the depthwise kernels take none, so those phases
    get zero taps in front (keeping the dilation when it divides the crop)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 8, 4, 6)).astype(np.float32)
    w = rng.standard_normal((8, 1, 2, 3)).astype(np.float32)
    pads = [3, 2, 1, 4]
    attrs = dict(strides=[2, 3], pads=pads, group=8, dilations=[dil, dil])
    check(ct_graph(x.shape, w, None, attrs), x,
          R.conv_transpose(x, w, None, [2, 3], pads, [dil, dil], 8))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("kernel,strides", [((3, 3), (2, 2)), ((4, 2), (3, 2))])
def test_fast_path_auto_pad(auto_pad, kernel, strides):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 8, 4, 5)).astype(np.float32)
    w = rng.standard_normal((8, 9, *kernel)).astype(np.float32)
    m = ct_graph(x.shape, w, None, dict(strides=list(strides), auto_pad=auto_pad))
    full = [strides[i] * (x.shape[2 + i] - 1) + kernel[i] for i in range(2)]
    total = [full[i] - x.shape[2 + i] * strides[i] for i in range(2)]
    pb = [(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2) if t > 0 else 0 for t in total]
    pads = pb + [t - b for t, b in zip(total, pb)]
    y = check(m, x, R.conv_transpose(x, w, None, strides, pads))
    assert y.shape[2:] == (x.shape[2] * strides[0], x.shape[3] * strides[1])
    if min(total) >= 0:
        np.testing.assert_allclose(y, ReferenceEvaluator(m).run(None, {"X": x})[0], **TOL)


@pytest.mark.parametrize("output_shape", [(10, 8), (9, 7), (11, 8), (5, 4)])
def test_fast_path_output_shape(output_shape):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 3, 3)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    m = ct_graph(x.shape, w, None, dict(strides=[3, 2], output_shape=list(output_shape)))
    y, algos, _ = run(m, x, 2)
    assert algos == ["phases_plain_io"] and y.shape == (2, 8) + output_shape
    o = ort.InferenceSession(m.SerializeToString(),
                             providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    np.testing.assert_allclose(y, o, **TOL)
    np.testing.assert_allclose(y, run(m, x, 1, "gemm_col2im")[0], **TOL)


ACTS = [
    (helper.make_node("Relu", ["H"], ["Y"]), {}),
    (helper.make_node("LeakyRelu", ["H"], ["Y"], alpha=0.2), {}),
    (helper.make_node("Clip", ["H", "lo", "hi"], ["Y"]),
     {"lo": np.float32(-0.5), "hi": np.float32(0.5)}),
    (helper.make_node("HardSigmoid", ["H"], ["Y"], alpha=0.3, beta=0.4), {}),
    (helper.make_node("PRelu", ["H", "slope"], ["Y"]),
     {"slope": np.linspace(-1, 1, 12).astype(np.float32).reshape(12, 1, 1)}),
]


@pytest.mark.parametrize("act,inits", ACTS, ids=lambda a: getattr(a, "op_type", ""))
@pytest.mark.parametrize("bias", [True, False])
def test_fused_activation(act, inits, bias):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 8, 4, 5)).astype(np.float32)
    w = rng.standard_normal((8, 12, 2, 3)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32) if bias else None
    # stride 3 > kernel: some phases see no tap and hold the constant act(b)
    attrs = dict(strides=[3, 2], pads=[0, 1, 1, 0], output_padding=[2, 1])
    m = ct_graph(x.shape, w, b, attrs, tail=[act], inits=inits)
    sess = fastcnn.InferenceSession(m, num_threads=2)
    ops = [n.op_type for n in sess.optimized_graph().nodes]
    assert ops == ["ConvTranspose"], ops
    expected = ReferenceEvaluator(m).run(None, {"X": x})[0]
    check(m, x, expected)


@pytest.mark.parametrize("group", [1, 2])
def test_batchnorm_folds_into_conv_transpose(group):
    rng = np.random.default_rng(11)
    c, m_ = 16, 16
    x = rng.standard_normal((2, c, 5, 5)).astype(np.float32)
    w = rng.standard_normal((c, m_ // group, 4, 4)).astype(np.float32)
    bn = {"g": rng.uniform(0.5, 1.5, m_).astype(np.float32),
          "be": rng.standard_normal(m_).astype(np.float32),
          "mu": rng.standard_normal(m_).astype(np.float32),
          "var": rng.uniform(0.5, 2, m_).astype(np.float32)}
    tail = [helper.make_node("BatchNormalization", ["H", "g", "be", "mu", "var"], ["A"]),
            helper.make_node("Relu", ["A"], ["Y"])]
    m = ct_graph(x.shape, w, None, dict(strides=[2, 2], pads=[1, 1, 1, 1], group=group),
                 tail=tail, inits=bn)
    sess = fastcnn.InferenceSession(m, num_threads=2)
    assert [n.op_type for n in sess.optimized_graph().nodes] == ["ConvTranspose"]
    o = ort.InferenceSession(m.SerializeToString(),
                             providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    y = check(m, x, o)
    if group == 1:      # the ONNX reference's ConvTranspose fails on group > 1
        np.testing.assert_allclose(y, ReferenceEvaluator(m).run(None, {"X": x})[0], **TOL)


def test_unet_decoder_has_no_reorders_around_conv_transpose():
    from fastcnn import zoo
    sess = fastcnn.InferenceSession(zoo.unet_decoder(), num_threads=1)
    x = np.random.default_rng(0).standard_normal((1, 256, 16, 16)).astype(np.float32)
    plan = sess._plan({"x": x.shape})
    kinds = [type(st.op).__name__ for st in plan.steps]
    cts = [st for st in plan.steps if isinstance(st.op, ConvTranspose)]
    assert len(cts) == 2 and all(st.op.algorithm_name == "phases" for st in cts)
    assert all(i.layout == 8 for st in cts for i in st.in_infos[:1])
    assert all(o.layout == 8 for st in cts for o in st.out_infos)
    # the graph input's reorder and the head's reorder before DepthToSpace only
    assert kinds.count("Reorder") == 2, kinds
    assert kinds[0] == "Reorder" and kinds[1] == "ConvTranspose"
    names = [n.op_type for n in sess.optimized_graph().nodes]
    assert "BatchNormalization" not in names and "Relu" not in names


def test_axis_phases():
    # k4 s2 p1: even outputs use taps 3, 1 (pad 1); odd ones taps 2, 0 (pad 0)
    assert axis_phases(16, 32, 4, 2, 1, 1) == [(16, (3, 1), 1, 1), (16, (2, 0), 0, 1)]
    # k1 s2: odd outputs see no tap
    assert axis_phases(4, 8, 1, 2, 1, 0) == [(4, (0,), 0, 1), (4, (), 0, 1)]
    # s2 d2: taps on one phase only; dilation stays 1 there
    assert axis_phases(5, 11, 3, 2, 2, 0) == [(6, (2, 1, 0), 2, 1), (5, (), 0, 1)]


def _interleave_case(out, s, const_phase, seed=12):
    """Random phase buffers for output (1, H, W) with strides (1, sh, sw), one of them
    (const_phase, a (rh, rw) pair or None) a constant, and the blocked result."""
    rng = np.random.default_rng(seed)
    N, Mb = 2, 3
    phases, full = [], np.empty((N, Mb) + out + (8,), np.float32)
    const = rng.standard_normal(Mb * 8).astype(np.float32)
    for rh in range(s[1]):
        for rw in range(s[2]):
            ext = (1, len(range(rh, out[1], s[1])), len(range(rw, out[2], s[2])))
            if (rh, rw) == const_phase:
                phases.append((const, ext))
                full[:, :, :, rh::s[1], rw::s[2]] = const.reshape(1, Mb, 1, 1, 1, 8)
                continue
            buf = rng.standard_normal((N, Mb, int(np.prod(ext)), 8)).astype(np.float32)
            phases.append((buf, ext))
            full[:, :, :, rh::s[1], rw::s[2]] = buf.reshape((N, Mb) + ext + (8,))
    return phases, full


def test_interleave_kernel():
    out, s = (1, 5, 7), (1, 2, 3)
    phases, full = _interleave_case(out, s, (1, 2))
    N, Mb = full.shape[:2]
    y = np.full((N, Mb, 35, 8), np.nan, np.float32)
    kdc.interleave(y, phases, out, s, 2)
    np.testing.assert_array_equal(y.reshape(full.shape), full)
    M = Mb * 8 - 3                               # plain NCHW out, a partial last block
    yp = np.full((N, M) + out, np.nan, np.float32)
    kdc.interleave(yp, phases, out, s, 2, plain_channels=M)
    plain = np.moveaxis(full, -1, 2).reshape((N, Mb * 8) + out)[:, :M]
    np.testing.assert_array_equal(yp, plain)
    with pytest.raises(ValueError, match="extent"):
        kdc.interleave(y, [(p, (1, 1, 1)) for p, _ in phases], out, s)
    with pytest.raises(ValueError, match="phases"):
        kdc.interleave(y, phases[:3], out, s)
    assert kdc.seq_call([lambda: None]) is None


@pytest.mark.parametrize("isa", ["portable", "auto"])
@pytest.mark.parametrize("sw, W, const_phase", [
    (1, 7, None), (1, 19, None), (2, 16, None), (2, 35, None), (2, 34, (0, 1)),
    (2, 33, (1, 0)), (3, 29, None)])
def test_interleave_plain_rows(isa, sw, W, const_phase):
    """The plain-output rows (8x8 transposes for sw <= 2, src/interleave_plain.h): every
    width around the 8-pixel steps, odd widths (phase 1 a pixel shorter), constant
    phases and a partial last channel block, at both ISAs."""
    out, s = (1, 5, W), (1, 2, sw)
    phases, full = _interleave_case(out, s, const_phase, seed=W)
    N, Mb = full.shape[:2]
    M = Mb * 8 - 5
    prev = kdc.set_isa(isa)
    try:
        yp = np.full((N, M) + out, np.nan, np.float32)
        kdc.interleave(yp, phases, out, s, 2, plain_channels=M)
    finally:
        kdc.set_isa(prev)
    plain = np.moveaxis(full, -1, 2).reshape((N, Mb * 8) + out)[:, :M]
    np.testing.assert_array_equal(yp, plain)


def test_huge_kernel_takes_the_generic_path():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 8, 2, 2, 1)).astype(np.float32)
    w = rng.standard_normal((8, 8, 33, 33, 1)).astype(np.float32)  # kd·kh = 1089 rows > 1024
    m = ct_graph(x.shape, w, None, dict(strides=[1, 1, 1]))
    y, algos, _ = run(m, x, 1)
    assert algos == ["gemm_col2im"]
    np.testing.assert_allclose(y, R.conv_transpose(x, w, None, [1, 1, 1]), **TOL)
