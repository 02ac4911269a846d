"""ConvTranspose: fastcnn (1 and 2 threads) vs onnxruntime, ReferenceEvaluator and fastcnn.reference."""
import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import fastcnn
import fastcnn.reference as R
from fastcnn.errors import InvalidGraphError

from conftest import F, make_model

TOL = dict(rtol=2e-4, atol=2e-4)


def ct_model(x_shape, w, b=None, attrs=None, w_const=True, opset=17, dtype=F):
    ins = ["X", "W"] + (["B"] if b is not None else [])
    inits, gi = {}, [("X", dtype, list(x_shape))]
    if w_const:
        inits["W"] = w
        if b is not None:
            inits["B"] = b
    else:
        gi.append(("W", dtype, list(w.shape)))
        if b is not None:
            gi.append(("B", dtype, list(b.shape)))
    node = helper.make_node("ConvTranspose", ins, ["Y"], name="ct0", **(attrs or {}))
    return make_model([node], gi, [("Y", dtype, None)], inits, opset=opset)


def check_all(model, arrays, expected=None, oracles=("ort", "onnxref")):
    feeds = {i.name: arrays[i.name] for i in model.graph.input}
    outs = [fastcnn.InferenceSession(model, num_threads=nt).run(None, feeds)[0] for nt in (1, 2)]
    np.testing.assert_array_equal(outs[0], outs[1])
    if expected is not None:
        np.testing.assert_allclose(outs[0], expected, **TOL)
    if "ort" in oracles:
        o = ort.InferenceSession(model.SerializeToString(),
                                 providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        np.testing.assert_allclose(outs[0], o, **TOL)
    if "onnxref" in oracles:
        np.testing.assert_allclose(outs[0], ReferenceEvaluator(model).run(None, feeds)[0], **TOL)
    return outs[0]


CASES = [
    # spatial, kernel, strides, pads, dilations, output_padding
    ((5,), (3,), (1,), (0, 0), (1,), (0,)),
    ((6,), (4,), (2,), (1, 2), (1,), (1,)),
    ((5,), (3,), (3,), (0, 1), (2,), (2,)),
    ((4, 5), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (0, 0)),
    ((4, 5), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), (1, 1)),
    ((5, 4), (2, 3), (2, 3), (0, 1, 1, 0), (2, 1), (1, 0)),
    ((3, 3), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), (0, 0)),
    ((3, 4, 3), (2, 3, 2), (2, 1, 2), (0, 1, 1, 1, 0, 0), (1, 1, 2), (1, 0, 1)),
]


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,out_pad", CASES)
@pytest.mark.parametrize("group,c_in,c_out", [(1, 3, 4), (2, 4, 6), (4, 4, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_transpose_grid(spatial, kernel, strides, pads, dil, out_pad, group, c_in, c_out,
                             bias):
    rng = np.random.default_rng(hash((spatial, kernel, strides, group)) % 2**32)
    x = rng.standard_normal((2, c_in, *spatial)).astype(np.float32)
    w = rng.standard_normal((c_in, c_out // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    attrs = dict(strides=list(strides), pads=list(pads), dilations=list(dil),
                 output_padding=list(out_pad), group=group)
    m = ct_model(x.shape, w, b, attrs)
    expected = R.conv_transpose(x, w, b, strides, pads, dil, group, out_pad)
    # the ONNX reference's ConvTranspose fails on group > 1 (reshape error)
    check_all(m, {"X": x}, expected, oracles=("ort", "onnxref") if group == 1 else ("ort",))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("spatial,kernel,strides", [
    ((5,), (3,), (2,)), ((4, 5), (3, 2), (2, 3)), ((3, 3, 2), (2, 3, 3), (1, 2, 2))])
def test_conv_transpose_auto_pad(auto_pad, spatial, kernel, strides):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    w = rng.standard_normal((3, 2, *kernel)).astype(np.float32)
    m = ct_model(x.shape, w, None, dict(strides=list(strides), auto_pad=auto_pad))
    n = len(spatial)
    full = [strides[i] * (spatial[i] - 1) + kernel[i] for i in range(n)]
    if auto_pad == "VALID":
        pads = [0] * 2 * n
    else:
        total = [full[i] - spatial[i] * strides[i] for i in range(n)]
        pb = [(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2) if t > 0 else 0 for t in total]
        pads = pb + [t - b for t, b in zip(total, pb)]
    expected = R.conv_transpose(x, w, None, strides, pads)
    # stride > kernel makes SAME's total padding negative: onnxruntime then clamps it at 0
    # (shorter output) and the ONNX reference extends SAME_UPPER at the beginning; the
    # spec's size in·s with the extra cells at the end (output_padding-like) is kept here
    negative = auto_pad != "VALID" and min(total) < 0
    y = check_all(m, {"X": x}, expected, oracles=() if negative else ("ort", "onnxref"))
    if auto_pad != "VALID":
        assert y.shape[2:] == tuple(s * t for s, t in zip(spatial, strides))


@pytest.mark.parametrize("auto_pad", [None, "SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("output_shape", [(10, 8), (9, 7), (7, 5), (8, 6), (11, 8)])
def test_conv_transpose_output_shape(auto_pad, output_shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    attrs = dict(strides=[3, 2], output_shape=list(output_shape))
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    m = ct_model(x.shape, w, None, attrs)
    feeds = {"X": x}
    if output_shape == (11, 8):     # 2 past the full size 9 with stride 3 is fine...
        attrs["output_shape"] = [12, 8]      # ...3 past is not
        with pytest.raises(InvalidGraphError, match="ct0.*output_shape"):
            fastcnn.InferenceSession(ct_model(x.shape, w, None, attrs))
    y = fastcnn.InferenceSession(m, num_threads=2).run(None, feeds)[0]
    assert y.shape == (2, 3) + tuple(output_shape)
    o = ort.InferenceSession(m.SerializeToString(),
                             providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(y, o, **TOL)
    # the spec's pads: SAME_UPPER puts the odd cell at the end, otherwise at the beginning
    full = [3 * 2 + 3, 2 * 2 + 3]
    total = [f - s for f, s in zip(full, output_shape)]
    pb = [(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2) if t > 0 else 0 for t in total]
    pads = pb + [t - b for t, b in zip(total, pb)]
    np.testing.assert_allclose(y, R.conv_transpose(x, w, None, [3, 2], pads), **TOL)


@pytest.mark.parametrize("w_const", [True, False])
@pytest.mark.parametrize("opset", [1, 11, 17])
def test_conv_transpose_dynamic_weights_and_opsets(w_const, opset):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 4)).astype(np.float32)
    w = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    m = ct_model(x.shape, w, b, dict(group=2, strides=[2, 2]), w_const=w_const, opset=opset)
    check_all(m, {"X": x, "W": w, "B": b}, R.conv_transpose(x, w, b, [2, 2], group=2),
              oracles=("ort",) if opset >= 11 else ())


def test_conv_transpose_float64():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 4))
    w = rng.standard_normal((2, 3, 3, 3))
    m = ct_model(x.shape, w, None, dict(strides=[2, 2], pads=[1, 1, 1, 1]),
                 dtype=TensorProto.DOUBLE)
    y = fastcnn.InferenceSession(m).run(None, {"X": x})[0]
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, R.conv_transpose(x, w, None, [2, 2], [1, 1, 1, 1]),
                               rtol=1e-12, atol=1e-12)


BAD = [
    ((1, 3, 4, 4), (2, 2, 3, 3), {}, "channel"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(group=2), "group"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(strides=[0, 1]), "strides"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(dilations=[0, 1]), "dilations"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(pads=[0, -1, 0, 0]), "pads"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(pads=[4, 4, 4, 4]), "empty"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(output_padding=[-1, 0]), "output_padding"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(output_padding=[1, 0]), "output_padding"),
    ((1, 3, 4, 4), (3, 2, 3), {}, "rank"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(kernel_shape=[2, 2]), "kernel_shape"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(output_shape=[5]), "output_shape"),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs,frag", BAD)
def test_conv_transpose_invalid(x_shape, w_shape, attrs, frag):
    m = ct_model(x_shape, np.ones(w_shape, np.float32), None, attrs)
    with pytest.raises(InvalidGraphError) as ei:
        fastcnn.InferenceSession(m).run(None, {"X": np.ones(x_shape, np.float32)})
    assert "ct0" in str(ei.value) and frag in str(ei.value), str(ei.value)


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), data=st.data())
def test_conv_transpose_hypothesis(nd, data):
    group = data.draw(st.sampled_from([1, 2]))
    cg, mg = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    kernel = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    out_pad = [data.draw(st.integers(0, s - 1)) for s in strides]   # onnxruntime: < stride
    spatial = [data.draw(st.integers(1, 5)) for _ in range(nd)]
    pads = []
    for side in range(2):
        for i in range(nd):
            full = strides[i] * (spatial[i] - 1) + out_pad[i] + (kernel[i] - 1) * dil[i] + 1
            pads.append(data.draw(st.integers(0, max(0, (full - 1) // 2))))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    x = rng.standard_normal((2, cg * group, *spatial)).astype(np.float32)
    w = rng.standard_normal((cg * group, mg, *kernel)).astype(np.float32)
    b = rng.standard_normal(mg * group).astype(np.float32)
    attrs = dict(strides=strides, pads=pads, dilations=dil, output_padding=out_pad, group=group)
    m = ct_model(x.shape, w, b, attrs)
    check_all(m, {"X": x}, R.conv_transpose(x, w, b, strides, pads, dil, group, out_pad),
              oracles=("ort",))


def test_col2im_is_adjoint_of_im2col():
    from fastcnn._kernels import conv_generic as k
    rng = np.random.default_rng(5)
    C, sp, kern, s, p, d = 2, (4, 5, 6), (2, 3, 2), (1, 2, 2), (1, 0, 1), (2, 1, 1)
    out = [(sp[i] + 2 * p[i] - (kern[i] - 1) * d[i] - 1) // s[i] + 1 for i in range(3)]
    x = rng.standard_normal((C, *sp))
    col = np.empty((C * 12, int(np.prod(out))))
    k.im2col_3d(x, col, kern, s, p, d, out, 2)
    c2 = rng.standard_normal(col.shape)
    y = np.empty_like(x)
    k.col2im_3d(c2, y, kern, s, p, d, out, 2)
    np.testing.assert_allclose(np.vdot(col, c2), np.vdot(x, y), rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_conv_transpose_fuzz_never_crashes(data):
    """Arbitrary (often invalid) attributes: run correctly or raise InvalidGraphError."""
    nd = data.draw(st.integers(1, 3))
    attrs = {"group": data.draw(st.integers(0, 2))}
    for name, lo, hi, n in (("strides", -1, 4, nd), ("dilations", -1, 3, nd),
                            ("pads", -1, 5, 2 * nd), ("output_padding", -1, 3, nd),
                            ("output_shape", 0, 12, nd)):
        if data.draw(st.booleans()):
            attrs[name] = [data.draw(st.integers(lo, hi)) for _ in range(n)]
    if data.draw(st.booleans()):
        attrs["auto_pad"] = data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
    c, mg = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    spatial = [data.draw(st.integers(1, 5)) for _ in range(nd)]
    kernel = [data.draw(st.integers(1, 4)) for _ in range(nd)]
    x = np.random.default_rng(0).standard_normal((2, c, *spatial)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((c, mg, *kernel)).astype(np.float32)
    m = ct_model(x.shape, w, None, attrs)
    try:
        y = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})[0]
    except InvalidGraphError as e:
        assert "ct0" in str(e)
        return
    assert np.isfinite(y).all()
    if "output_shape" not in attrs and attrs.get("auto_pad") in (None, "VALID"):
        pads = attrs.get("pads") if attrs.get("auto_pad") is None else None
        r = R.conv_transpose(x, w, None, attrs.get("strides"), pads, attrs.get("dilations"),
                             attrs["group"], attrs.get("output_padding"))
        np.testing.assert_allclose(y, r, **TOL)


def test_conv_transpose_float16():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float16)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float16)
    m = ct_model(x.shape, w, None, dict(strides=[2, 2], pads=[1, 1, 1, 1]),
                 dtype=TensorProto.FLOAT16)
    y = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})[0]
    assert y.dtype == np.float16
    r = R.conv_transpose(x.astype(np.float32), w.astype(np.float32), None, [2, 2], [1, 1, 1, 1])
    np.testing.assert_allclose(y.astype(np.float32), r, rtol=3e-3, atol=3e-3)


def test_empty_batch_and_empty_spatial():
    w = np.ones((3, 2, 3, 3), np.float32)
    y = fastcnn.InferenceSession(ct_model((0, 3, 5, 5), w)).run(
        None, {"X": np.ones((0, 3, 5, 5), np.float32)})[0]
    assert y.shape == (0, 2, 7, 7)
    with pytest.raises(InvalidGraphError, match="ct0.*empty"):
        fastcnn.InferenceSession(ct_model((2, 3, 0, 5), w))
