"""Conv: fastcnn (1 and 2 threads) vs onnx ReferenceEvaluator, onnxruntime and fastcnn.reference."""
import os

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import fastcnn
import fastcnn.reference as R
from fastcnn.errors import InvalidGraphError
from fastcnn.ops import conv as conv_mod

from conftest import F, make_model

TOL = dict(rtol=2e-4, atol=2e-4)


def conv_model(x_shape, w, b=None, attrs=None, w_const=True, opset=17, dtype=F, extra=None,
               inputs_extra=()):
    attrs = dict(attrs or {})
    ins = ["X", "W"] + (["B"] if b is not None else [])
    inits = {}
    graph_inputs = [("X", dtype, list(x_shape))]
    if w_const:
        inits["W"] = w
        if b is not None:
            inits["B"] = b
    else:
        graph_inputs.append(("W", dtype, list(w.shape)))
        if b is not None:
            graph_inputs.append(("B", dtype, list(b.shape)))
    for name, shape in inputs_extra:
        if len(ins) == 2:
            ins.append("")
        ins.append(name)
        graph_inputs.append((name, dtype, list(shape)))
    node = helper.make_node("Conv", ins, ["Y"], name="conv0", **attrs)
    if extra:
        node.attribute.extend(extra)
    return make_model([node], graph_inputs, [("Y", dtype, None)], inits, opset=opset)


def run_conv_op(attrs, x, w, b=None, z=None, n_threads=1, opset=17):
    """Run a Conv op directly (plan lifecycle: infer, prepare, scratch, bind), as the planner
    does for internal nodes the fusion pass makes (4 inputs, fastcnn_* attributes), which
    ONNX import rightly rejects."""
    from fastcnn.ir.graph import Node
    from fastcnn.ops.base import TensorInfo
    ins = ["X", "W", "B" if b is not None else ""] + (["Z"] if z is not None else [])
    node = Node("Conv", "conv0", ins, ["Y"], dict(attrs))
    op = conv_mod.Conv(node, opset)
    op.n_threads = n_threads
    infos = [TensorInfo(x.shape, x.dtype), TensorInfo.of(w),
             TensorInfo.of(b) if b is not None else None]
    xs = [x, w, b]
    if z is not None:
        infos.append(TensorInfo(z.shape, z.dtype))
        xs.append(z)
    outs = op.infer(infos)
    op.prepare(infos, outs)
    sc = [np.empty(s, d) for s, d in op.scratch(infos, outs)]
    y = np.empty(outs[0].shape, outs[0].dtype)
    op.bind(xs, [y], sc)()
    return y


def feeds_for(model, arrays):
    return {i.name: arrays[i.name] for i in model.graph.input}


def check_all(model, arrays, expected=None, oracles=("ort", "onnxref")):
    feeds = feeds_for(model, arrays)
    outs = [fastcnn.InferenceSession(model, num_threads=nt).run(None, feeds)[0] for nt in (1, 2)]
    np.testing.assert_array_equal(outs[0], outs[1])
    if expected is not None:
        np.testing.assert_allclose(outs[0], expected, **TOL)
    if "ort" in oracles:
        o = ort.InferenceSession(model.SerializeToString(),
                                 providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        np.testing.assert_allclose(outs[0], o, **TOL)
    if "onnxref" in oracles:
        r = ReferenceEvaluator(model).run(None, feeds)[0]
        np.testing.assert_allclose(outs[0], r, **TOL)
    return outs[0]


CASES = [
    # (spatial, kernel, strides, pads, dilations)
    ((9,), (3,), (1,), (0, 0), (1,)),
    ((11,), (4,), (2,), (1, 2), (2,)),
    ((7, 8), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    ((9, 10), (3, 2), (2, 1), (0, 1, 2, 0), (1, 2)),
    ((8, 8), (1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    ((8, 9), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((10, 10), (5, 5), (3, 2), (2, 2, 2, 2), (1, 1)),
    ((6, 7), (3, 3), (1, 2), (0, 0, 0, 0), (2, 2)),
    ((5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1)),
    ((6, 5, 7), (2, 3, 1), (2, 1, 3), (0, 1, 0, 1, 0, 2), (2, 1, 1)),
]


@pytest.mark.parametrize("spatial,kernel,strides,pads,dilations", CASES)
@pytest.mark.parametrize("group,c_in,c_out", [(1, 3, 4), (2, 4, 6), (4, 4, 4), (4, 4, 8)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("algo", ["default", "im2col_gemm"])
def test_conv_grid(spatial, kernel, strides, pads, dilations, group, c_in, c_out, bias, algo,
                   monkeypatch):
    if algo != "default":     # the generic path, whatever fast path would take this shape
        monkeypatch.setenv("FASTCNN_CONV_ALGO", algo)
    rng = np.random.default_rng(hash((spatial, kernel, group, bias)) % 2**32)
    x = rng.standard_normal((2, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    attrs = dict(strides=list(strides), pads=list(pads), dilations=list(dilations), group=group)
    m = conv_model(x.shape, w, b, attrs)
    expected = R.conv(x, w, b, strides, pads, dilations, group)
    check_all(m, {"X": x}, expected)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
@pytest.mark.parametrize("spatial,kernel,strides,dilations", [
    ((7,), (4,), (2,), (1,)),
    ((7, 8), (3, 4), (2, 3), (1, 1)),
    ((9, 6), (2, 3), (1, 2), (2, 1)),
    ((5, 6, 4), (3, 2, 2), (2, 1, 2), (1, 2, 1)),
])
@pytest.mark.parametrize("algo", ["default", "im2col_gemm"])
def test_conv_auto_pad(auto_pad, spatial, kernel, strides, dilations, algo, monkeypatch):
    if algo != "default":
        monkeypatch.setenv("FASTCNN_CONV_ALGO", algo)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    w = rng.standard_normal((5, 3, *kernel)).astype(np.float32)
    attrs = dict(strides=list(strides), auto_pad=auto_pad, dilations=list(dilations),
                 kernel_shape=list(kernel))
    m = conv_model(x.shape, w, None, attrs)
    dilated = any(d > 1 for d in dilations)
    # neither onnxruntime nor the ONNX reference take dilations with SAME: check against
    # fastcnn.reference with the pads of the spec's formula
    n = len(spatial)
    if auto_pad.startswith("SAME"):
        out = [-(-s // t) for s, t in zip(spatial, strides)]
        total = [max(0, (out[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i])
                 for i in range(n)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        pads = small + big if auto_pad == "SAME_UPPER" else big + small
    else:
        pads = [0] * (2 * n)
    expected = R.conv(x, w, None, strides, pads, dilations)
    oracles = () if (dilated and auto_pad.startswith("SAME")) else ("ort",) if dilated else \
        ("ort", "onnxref")
    y = check_all(m, {"X": x}, expected, oracles=oracles)
    if auto_pad.startswith("SAME"):
        assert y.shape[2:] == tuple(out)


@pytest.mark.parametrize("opset", [1, 11, 17])
def test_conv_opsets_and_dynamic_weights(opset):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    attrs = dict(pads=[1, 0, 1, 2], group=2)
    for w_const in (True, False):
        m = conv_model(x.shape, w, b, attrs, w_const=w_const, opset=opset)
        check_all(m, {"X": x, "W": w, "B": b}, R.conv(x, w, b, None, [1, 0, 1, 2], None, 2),
                  oracles=("ort",) if opset >= 7 else ())


def test_conv_depthwise_large_group():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 12, 11)).astype(np.float32)
    w = rng.standard_normal((64, 1, 3, 3)).astype(np.float32)
    m = conv_model(x.shape, w, None, dict(group=32, pads=[1, 1, 1, 1], strides=[2, 2]))
    check_all(m, {"X": x}, R.conv(x, w, None, [2, 2], [1, 1, 1, 1], None, 32))


def test_conv_float64():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    m = conv_model(x.shape, w, b, dict(pads=[1, 1, 1, 1]), dtype=TensorProto.DOUBLE)
    y = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})[0]
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, R.conv(x, w, b, None, [1, 1, 1, 1]), rtol=1e-12, atol=1e-12)


def _act(name, y, params):
    if name == "Relu":
        return np.maximum(y, 0)
    if name == "Clip":
        return np.clip(y, params[0], params[1])
    if name == "LeakyRelu":
        return np.where(y >= 0, y, y * params[0])
    if name == "HardSigmoid":
        return np.clip(params[0] * y + params[1], 0, 1)
    if name == "HardSwish":
        return y * np.clip(y / 6 + 0.5, 0, 1)
    if name == "Sigmoid":
        return 1 / (1 + np.exp(-y))
    if name == "Tanh":
        return np.tanh(y)
    if name == "Elu":
        return np.where(y >= 0, y, params[0] * np.expm1(y))
    if name == "Silu":
        return y / (1 + np.exp(-y))
    if name == "Mish":
        return y * np.tanh(np.log1p(np.exp(y)))
    if name == "Gelu":
        from math import erf, sqrt
        return 0.5 * y * (1 + np.vectorize(erf)(y / sqrt(2)))
    if name == "PRelu":
        s = np.broadcast_to(np.asarray(params), (y.shape[1],)).reshape(1, -1, 1, 1)
        return np.where(y >= 0, y, y * s)
    raise AssertionError(name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act,params", [("Relu", []), ("Clip", [-0.5, 1.5]), ("LeakyRelu", [0.1]),
                                        ("HardSigmoid", [0.2, 0.5]), ("HardSwish", []),
                                        ("Sigmoid", []), ("Tanh", []), ("Elu", [0.7]),
                                        ("Silu", []), ("Mish", []), ("Gelu", []),
                                        ("PRelu", [0.25]),
                                        ("PRelu", [0.1, -0.2, 0.3, 0.4, 0.5, 0.6])])
@pytest.mark.parametrize("residual", [False, True])
def test_conv_fused_epilogue(act, params, residual, dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 6, 7)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    z = rng.standard_normal((2, 6, 6, 7)).astype(dtype)
    attrs = dict(pads=[1, 1, 1, 1], group=2, fastcnn_activation=act)
    if params:
        attrs["fastcnn_activation_params"] = [float(v) for v in params]
    if residual:
        attrs["fastcnn_residual"] = 1
    pre = R.conv(x, w, b, None, [1, 1, 1, 1], None, 2).astype(np.float64)
    if residual:
        pre = pre + z
    expected = _act(act, pre, params)
    for nt in (1, 2):
        y = run_conv_op(attrs, x, w, b, z if residual else None, n_threads=nt)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_conv_epilogue_without_bias_default_params():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    y = run_conv_op(dict(fastcnn_activation="LeakyRelu"), x, w)
    r = R.conv(x, w)
    np.testing.assert_allclose(y, np.where(r >= 0, r, 0.01 * r), rtol=1e-5, atol=1e-5)


def test_choose_is_the_one_place_and_forcing_works(monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    m = conv_model(x.shape, w, None, dict(pads=[1, 1, 1, 1]))
    seen = []

    class Fake(conv_mod.ConvAlgorithm):
        name = "fake"

        def __init__(self, p):
            self.p = p
            self.inner = conv_mod.Im2colGemm(p)

        def scratch(self):
            return self.inner.scratch()

        def bind(self, *a):
            seen.append(self.p.geom)
            return self.inner.bind(*a)

    monkeypatch.setattr(conv_mod, "ALGORITHMS", [lambda p: Fake(p)] + conv_mod.ALGORITHMS)
    y = fastcnn.InferenceSession(m).run(None, {"X": x})[0]
    assert seen and seen[0].window.kernel == (3, 3) and seen[0].c_in == 4
    np.testing.assert_allclose(y, R.conv(x, w, None, None, [1, 1, 1, 1]), **TOL)
    seen.clear()
    monkeypatch.setenv("FASTCNN_CONV_ALGO", "im2col_gemm")
    fastcnn.InferenceSession(m).run(None, {"X": x})
    assert not seen
    monkeypatch.setenv("FASTCNN_CONV_ALGO", "nope")
    with pytest.raises(InvalidGraphError, match="conv0"):
        fastcnn.InferenceSession(m).run(None, {"X": x})


BAD = [
    # (x_shape, w_shape, attrs, message fragment)
    ((1, 3, 5, 5), (4, 2, 3, 3), {}, "channel"),
    ((1, 4, 5, 5), (4, 2, 3, 3), dict(group=3), "group"),
    ((1, 4, 5, 5), (3, 2, 3, 3), dict(group=2), "group"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(strides=[0, 1]), "strides"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(strides=[-1, 1]), "strides"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(dilations=[1, 0]), "dilations"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(pads=[-1, 0, 0, 0]), "pads"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(pads=[1, 1, 1]), "pads"),
    ((1, 3, 5, 5), (4, 3, 7, 3), {}, "larger"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(dilations=[3, 1]), "larger"),
    ((1, 3, 5, 5), (4, 3, 3), {}, "rank"),
    ((3, 5), (4, 3, 3), {}, "rank"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(auto_pad="SAME"), "auto_pad"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(kernel_shape=[2, 2]), "kernel_shape"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(strides=[1, 1, 1]), "strides"),
    ((1, 3, 5, 5), (4, 3, 3, 3), dict(group=0), "group"),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs,frag", BAD)
def test_conv_invalid(x_shape, w_shape, attrs, frag):
    w = np.ones(w_shape, np.float32)
    m = conv_model(x_shape, w, None, attrs)
    with pytest.raises(InvalidGraphError) as ei:
        sess = fastcnn.InferenceSession(m)
        sess.run(None, {"X": np.ones(x_shape, np.float32)})
    msg = str(ei.value)
    assert "conv0" in msg and frag in msg, msg


def test_conv_bad_bias_and_residual():
    w = np.ones((4, 3, 3, 3), np.float32)
    m = conv_model((1, 3, 5, 5), w, np.ones(3, np.float32), {})
    with pytest.raises(InvalidGraphError, match="conv0.*bias"):
        fastcnn.InferenceSession(m)
    x = np.ones((1, 3, 5, 5), np.float32)
    with pytest.raises(InvalidGraphError, match="conv0.*residual"):
        run_conv_op(dict(fastcnn_residual=1), x, w, z=np.ones((1, 4, 2, 2), np.float32))
    with pytest.raises(InvalidGraphError, match="conv0.*residual"):
        run_conv_op(dict(fastcnn_residual=1), x, w)
    with pytest.raises(InvalidGraphError, match="conv0.*Bogus"):
        run_conv_op(dict(fastcnn_activation="Bogus"), x, w)
    with pytest.raises(InvalidGraphError, match="conv0.*fastcnn_activation_params"):
        run_conv_op(dict(fastcnn_activation="Clip", fastcnn_activation_params=3), x, w)


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), data=st.data())
def test_conv_hypothesis(nd, data):
    group = data.draw(st.sampled_from([1, 2, 3]))
    cg = data.draw(st.integers(1, 3))
    mg = data.draw(st.integers(1, 3))
    kernel = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [data.draw(st.integers(0, 2)) for _ in range(2 * nd)]
    spatial = []
    for i in range(nd):
        ek = (kernel[i] - 1) * dil[i] + 1
        lo = max(1, ek - pads[i] - pads[nd + i])
        spatial.append(data.draw(st.integers(lo, lo + 6)))
    n = data.draw(st.integers(1, 2))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cg * group, *spatial)).astype(np.float32)
    w = rng.standard_normal((mg * group, cg, *kernel)).astype(np.float32)
    b = rng.standard_normal(mg * group).astype(np.float32)
    attrs = dict(strides=strides, pads=pads, dilations=dil, group=group)
    m = conv_model(x.shape, w, b, attrs)
    check_all(m, {"X": x}, R.conv(x, w, b, strides, pads, dil, group), oracles=("ort",))


def test_im2col_kernel_matches_numpy():
    from fastcnn._kernels import conv_generic as k
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    kern, s, p, d = (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 2)
    xp = np.pad(x, [(0, 0), (1, 3), (1, 3), (0, 3)])
    out = [(x.shape[1 + i] + p[i] + (3 if i < 2 else 3) - ((kern[i] - 1) * d[i] + 1)) // s[i] + 1
           for i in range(3)]
    out = [min(o, (x.shape[1 + i] + p[i] - (kern[i] - 1) * d[i] - 1) // s[i] + 1 + 1)
           for i, o in enumerate(out)]
    col = np.empty((3 * 12, int(np.prod(out))), np.float32)
    k.im2col_3d(x, col, kern, s, p, d, out, 2)
    r = 0
    for c in range(3):
        for a in range(2):
            for bb in range(3):
                for e in range(2):
                    sl = xp[c, a * d[0]::s[0], bb * d[1]::s[1], e * d[2]::s[2]]
                    ref = sl[:out[0], :out[1], :out[2]]
                    np.testing.assert_array_equal(col[r].reshape(out), ref)
                    r += 1


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_conv_fuzz_never_crashes(data):
    """Arbitrary (often invalid) attributes: run correctly or raise InvalidGraphError."""
    nd = data.draw(st.integers(1, 3))
    ints = st.integers(-2, 6)
    attrs = {}
    if data.draw(st.booleans()):
        attrs["strides"] = [data.draw(ints) for _ in range(data.draw(st.integers(max(1, nd - 1), nd + 1)))]
    if data.draw(st.booleans()):
        attrs["dilations"] = [data.draw(ints) for _ in range(nd)]
    if data.draw(st.booleans()):
        attrs["pads"] = [data.draw(st.integers(-1, 9)) for _ in range(2 * nd)]
    if data.draw(st.booleans()):
        attrs["auto_pad"] = data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID",
                                                       "NOTSET"]))
    group = data.draw(st.integers(0, 3))
    attrs["group"] = group
    c = data.draw(st.integers(1, 4))
    m_out = data.draw(st.integers(1, 4))
    cw = data.draw(st.integers(1, 4))
    kernel = [data.draw(st.integers(1, 5)) for _ in range(nd)]
    spatial = [data.draw(st.integers(1, 6)) for _ in range(nd)]
    x = np.random.default_rng(0).standard_normal((1, c, *spatial)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((m_out, cw, *kernel)).astype(np.float32)
    m = conv_model(x.shape, w, None, attrs)
    try:
        y = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})[0]
    except InvalidGraphError as e:
        assert "conv0" in str(e)
        return
    assert np.isfinite(y).all()
    if attrs.get("auto_pad", "NOTSET") == "NOTSET":
        r = R.conv(x, w, None, attrs.get("strides"), attrs.get("pads"), attrs.get("dilations"),
                   group)
        np.testing.assert_allclose(y, r, **TOL)


@pytest.mark.parametrize("residual", [False, True])
def test_conv_float16_runs_in_float32(residual):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float16)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float16)
    b = rng.standard_normal(6).astype(np.float16)
    z = rng.standard_normal((2, 6, 6, 5)).astype(np.float16)
    r = R.conv(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), None,
               [1, 1, 1, 1], None, 2)
    if residual:
        attrs = dict(pads=[1, 1, 1, 1], group=2, fastcnn_activation="Relu", fastcnn_residual=1)
        y = run_conv_op(attrs, x, w, b, z, n_threads=2)
        r = np.maximum(r + z.astype(np.float32), 0)
    else:
        m = conv_model(x.shape, w, b, dict(pads=[1, 1, 1, 1], group=2),
                       dtype=TensorProto.FLOAT16)
        y = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})[0]
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), r, rtol=2e-3, atol=2e-3)


MY_OPS = ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
          "GlobalMaxPool", "GlobalLpPool"]


@pytest.mark.parametrize("op", MY_OPS)
def test_schema_bad_attributes_never_crash(op):
    """Every schema attribute set to wrong-typed or out-of-range values: a valid result or a
    FastCNNError naming the node, never a bare Python exception."""
    import warnings

    from onnx import AttributeProto, defs

    from fastcnn.errors import FastCNNError

    bad = {AttributeProto.INT: [-5, 10 ** 12, 3, 0], AttributeProto.FLOAT: [float("nan"), -1.0],
           AttributeProto.INTS: [[], [10 ** 9], [-7, 0], [2, 2], [0, 0, 0, 0]],
           AttributeProto.STRING: ["bogus", "", "SAME_UPPER", "VALID"]}
    wrong = ["str", [1, 2], 2.5, 7]
    rng = np.random.default_rng(0)
    x = rng.random((2, 4, 5, 6)).astype(np.float32)
    w = rng.random((4, 2, 3, 3)).astype(np.float32)
    for opset in (7, 11, 18, 19):
        try:
            sch = defs.get_schema(op, opset)
        except Exception:
            continue
        ins = [x] + ([w] if op.startswith("Conv") else [])
        names = [f"i{k}" for k in range(len(ins))]
        for name, a in sch.attributes.items():
            for v in bad.get(a.type, []) + wrong:
                try:
                    node = helper.make_node(op, names, ["y"], name="n0", **{name: v})
                except Exception:
                    continue
                m = make_model([node], [(n, F, list(t.shape)) for n, t in zip(names, ins)],
                               [("y", F, None)], opset=opset)
                try:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fastcnn.InferenceSession(m, num_threads=2).run(None, dict(zip(names, ins)))
                except FastCNNError as e:
                    assert "n0" in str(e), str(e)


def test_conv_empty_batch_and_empty_spatial():
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fastcnn.InferenceSession(conv_model((0, 3, 5, 5), w)).run(
        None, {"X": np.ones((0, 3, 5, 5), np.float32)})[0]
    assert y.shape == (0, 4, 3, 3)
    with pytest.raises(InvalidGraphError, match="conv0.*empty"):
        fastcnn.InferenceSession(conv_model((2, 3, 0, 5), w, None, dict(pads=[1, 1, 1, 1])))


def test_numpy_fallbacks_without_kernels(monkeypatch):
    """With the Cython kernels missing, conv, transposed conv and pools still compute the
    same results through numpy (im2col_numpy, col2im_numpy, the reference pools)."""
    from fastcnn.ops import conv_transpose as ct_mod
    from fastcnn.ops import pool as pool_mod
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    attrs = dict(strides=[2, 1], pads=[1, 0, 0, 1], dilations=[1, 2], group=2)
    expected = {}
    m_conv = conv_model(x.shape, w, b, attrs)
    wt = rng.standard_normal((4, 3, 2, 3)).astype(np.float32)
    m_ct = make_model([helper.make_node("ConvTranspose", ["X", "W"], ["Y"], strides=[2, 2],
                                        pads=[1, 0, 0, 1], output_padding=[1, 0])],
                      [("X", F, list(x.shape))], [("Y", F, None)], {"W": wt}, opset=17)
    m_pool = make_model([helper.make_node("MaxPool", ["X"], ["Y", "I"], kernel_shape=[3, 2],
                                          strides=[2, 2], pads=[1, 1, 1, 0], ceil_mode=1,
                                          storage_order=1)],
                        [("X", F, list(x.shape))], [("Y", F, None), ("I", TensorProto.INT64, None)],
                        opset=12)
    m_avg = make_model([helper.make_node("AveragePool", ["X"], ["Y"], kernel_shape=[3, 3],
                                         pads=[1, 1, 1, 1], count_include_pad=1, ceil_mode=1,
                                         strides=[2, 2])],
                       [("X", F, list(x.shape))], [("Y", F, None)], opset=19)
    models = {"conv": m_conv, "ct": m_ct, "pool": m_pool, "avg": m_avg}
    for k, m in models.items():
        expected[k] = fastcnn.InferenceSession(m).run(None, {"X": x})
    monkeypatch.setattr(conv_mod, "_k", None)
    monkeypatch.setattr(ct_mod, "_k", None)
    monkeypatch.setattr(pool_mod, "_k", None)
    for k, m in models.items():
        got = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})
        for g, e in zip(got, expected[k]):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
