"""Pooling ops: fastcnn (1 and 2 threads) vs onnxruntime, ReferenceEvaluator and fastcnn.reference."""
import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import fastcnn
import fastcnn.reference as R
from fastcnn.errors import InvalidGraphError

from conftest import F, I64, make_model

TOL = dict(rtol=1e-5, atol=1e-5)


def pool_model(op, x_shape, attrs, opset=19, indices=False, dtype=F):
    outs = ["Y", "I"] if indices else ["Y"]
    node = helper.make_node(op, ["X"], outs, name="pool0", **attrs)
    vo = [("Y", dtype, None)] + ([("I", I64, None)] if indices else [])
    return make_model([node], [("X", dtype, list(x_shape))], vo, opset=opset)


def run_fastcnn(model, x):
    outs = [fastcnn.InferenceSession(model, num_threads=nt).run(None, {"X": x}) for nt in (1, 2)]
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    return outs[0]


def run_ort(model, x):
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"X": x})


def run_onnxref(model, x):
    return ReferenceEvaluator(model).run(None, {"X": x})


def _extra_ceil_cells(spatial, kernel, strides, pads, dil):
    """Largest number of cells ceil_mode adds past the right pad (the ONNX reference shifts
    its windows when this reaches 2)."""
    n = len(spatial)
    out = R.pool_output_shape(spatial, kernel, strides, pads, dil, True)
    return max((out[i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1
               - (spatial[i] + pads[i] + pads[n + i]) for i in range(n))


WINDOWS = [
    # spatial, kernel, strides, pads, dilations
    ((9,), (3,), (2,), (1, 1), (1,)),
    ((10,), (2,), (3,), (0, 1), (2,)),
    ((7, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    ((7, 8), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((9, 10), (3, 2), (2, 3), (1, 0, 2, 1), (1, 1)),
    ((9, 9), (3, 3), (1, 2), (1, 1, 0, 0), (2, 1)),
    ((6, 5), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1)),
    ((5, 6, 7), (2, 2, 3), (2, 1, 2), (0, 1, 1, 1, 0, 1), (1, 1, 1)),
    ((6, 6, 5), (3, 2, 2), (2, 2, 1), (1, 0, 0, 1, 1, 0), (1, 2, 1)),
]


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool(spatial, kernel, strides, pads, dil, ceil_mode, storage_order):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                 dilations=list(dil), ceil_mode=ceil_mode, storage_order=storage_order)
    m = pool_model("MaxPool", x.shape, attrs, opset=12, indices=True)
    y, i = run_fastcnn(m, x)
    ry, ri = R.max_pool(x, kernel, strides, pads, dil, ceil_mode, storage_order,
                        return_indices=True)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(i, ri)
    oy, oi = run_ort(m, x)
    np.testing.assert_array_equal(y, oy)
    if len(spatial) < 3 or storage_order == 0:     # ORT has no 3-D column-major indices
        np.testing.assert_array_equal(i, oi)
    qy, qi = run_onnxref(m, x)
    np.testing.assert_array_equal(y, qy)
    np.testing.assert_array_equal(i, qi)
    # the flat indices address the max in X
    np.testing.assert_array_equal(np.take(x, i) if storage_order == 0 or len(spatial) == 1
                                  else y, y)


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(spatial, kernel, strides, pads, dil, ceil_mode, count_include_pad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                 dilations=list(dil), ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    m = pool_model("AveragePool", x.shape, attrs, opset=19)
    (y,) = run_fastcnn(m, x)
    r = R.average_pool(x, kernel, strides, pads, dil, ceil_mode, count_include_pad)
    np.testing.assert_allclose(y, r, **TOL)
    if not (ceil_mode and _extra_ceil_cells(spatial, kernel, strides, pads, dil) >= 2):
        np.testing.assert_allclose(y, run_onnxref(m, x)[0], **TOL)
    if all(d == 1 for d in dil):   # onnxruntime's AveragePool-19 rejects dilations
        np.testing.assert_allclose(y, run_ort(m, x)[0], **TOL)


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil", WINDOWS)
@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_lp_pool(spatial, kernel, strides, pads, dil, p, ceil_mode):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                 dilations=list(dil), ceil_mode=ceil_mode, p=p)
    m = pool_model("LpPool", x.shape, attrs, opset=18)
    (y,) = run_fastcnn(m, x)
    np.testing.assert_allclose(y, R.lp_pool(x, kernel, strides, pads, dil, ceil_mode, p), **TOL)
    # The ONNX reference computes Lp as avg(|x|^p)·k^(1/p) over the real taps, which is
    # the definition only when no tap falls in padding; onnxruntime sums the real taps.
    if not any(pads) and not ceil_mode:
        np.testing.assert_allclose(y, run_onnxref(m, x)[0], **TOL)
    if all(d == 1 for d in dil) and not ceil_mode:
        np.testing.assert_allclose(y, run_ort(m, x)[0], **TOL)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("spatial,kernel,strides", [
    ((9,), (3,), (2,)), ((7, 8), (3, 2), (2, 3)), ((8, 8), (2, 2), (1, 1)),
    ((5, 6, 4), (2, 3, 2), (2, 2, 1))])
def test_pool_auto_pad(auto_pad, op, spatial, kernel, strides):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), auto_pad=auto_pad)
    opset = {"MaxPool": 12, "AveragePool": 19, "LpPool": 18}[op]
    m = pool_model(op, x.shape, attrs, opset=opset)
    (y,) = run_fastcnn(m, x)
    (o,) = run_ort(m, x)
    np.testing.assert_allclose(y, o, **TOL)
    n = len(spatial)
    if auto_pad == "VALID":
        pads = [0] * 2 * n
    else:
        out = [-(-s // t) for s, t in zip(spatial, strides)]
        total = [max(0, (out[i] - 1) * strides[i] + kernel[i] - spatial[i]) for i in range(n)]
        small, big = [t // 2 for t in total], [t - t // 2 for t in total]
        pads = small + big if auto_pad == "SAME_UPPER" else big + small
        assert y.shape[2:] == tuple(out)
    if op == "MaxPool":
        r = R.max_pool(x, kernel, strides, pads)
    elif op == "AveragePool":
        r = R.average_pool(x, kernel, strides, pads)
    else:
        r = R.lp_pool(x, kernel, strides, pads)
    np.testing.assert_allclose(y, r, **TOL)


@pytest.mark.parametrize("opset", [1, 7, 10, 11])
def test_average_pool_old_opsets(opset):
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 7)).astype(np.float32)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    if opset >= 7:
        attrs["count_include_pad"] = 1
    m = pool_model("AveragePool", x.shape, attrs, opset=opset)
    (y,) = run_fastcnn(m, x)
    np.testing.assert_allclose(y, R.average_pool(x, [3, 3], [2, 2], [1, 1, 1, 1], None, 0,
                                                 1 if opset >= 7 else 0), **TOL)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
@pytest.mark.parametrize("spatial", [(13,), (7, 9), (3, 4, 5), (1, 1)])
def test_global_pools(op, spatial):
    x = np.random.default_rng(5).standard_normal((2, 5, *spatial)).astype(np.float32)
    attrs = {"p": 3} if op == "GlobalLpPool" else {}
    m = pool_model(op, x.shape, attrs, opset=13)
    (y,) = run_fastcnn(m, x)
    axes = tuple(range(2, x.ndim))
    if op == "GlobalAveragePool":
        r = x.astype(np.float64).mean(axis=axes, keepdims=True)
    elif op == "GlobalMaxPool":
        r = x.max(axis=axes, keepdims=True)
    else:
        r = (np.abs(x.astype(np.float64)) ** 3).sum(axis=axes, keepdims=True) ** (1 / 3)
    np.testing.assert_allclose(y, r, **TOL)
    np.testing.assert_allclose(y, run_ort(m, x)[0], **TOL)
    # the ONNX reference has no GlobalLpPool and reduces the wrong axes of 1-D/3-D GlobalMaxPool
    if op == "GlobalAveragePool" or (op == "GlobalMaxPool" and len(spatial) == 2):
        np.testing.assert_allclose(y, run_onnxref(m, x)[0], **TOL)


def test_maxpool_float64_and_ties():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5
    m = pool_model("MaxPool", x.shape, dict(kernel_shape=[2, 2], strides=[2, 2]),
                   opset=12, indices=True, dtype=TensorProto.DOUBLE)
    y, i = run_fastcnn(m, x)
    assert y.dtype == np.float64
    oy, oi = run_ort(m, x)
    np.testing.assert_array_equal(y, oy)
    np.testing.assert_array_equal(i, oi)   # first occurrence in scan order


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), data=st.data())
def test_pool_hypothesis(nd, data):
    kernel = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [data.draw(st.integers(0, k - 1)) for k in kernel] * 2
    spatial = [data.draw(st.integers(max(1, (kernel[i] - 1) * dil[i] + 1 - 2 * pads[i]), 9))
               for i in range(nd)]
    ceil_mode = data.draw(st.integers(0, 1))
    cip = data.draw(st.integers(0, 1))
    x = np.random.default_rng(data.draw(st.integers(0, 2**31))).standard_normal(
        (2, 3, *spatial)).astype(np.float32)
    common = dict(kernel_shape=kernel, strides=strides, pads=pads, dilations=dil,
                  ceil_mode=ceil_mode)
    m = pool_model("MaxPool", x.shape, dict(common), opset=12, indices=True)
    y, i = run_fastcnn(m, x)
    ry, ri = R.max_pool(x, kernel, strides, pads, dil, ceil_mode, 0, True)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(i, ri)
    m = pool_model("AveragePool", x.shape, dict(common, count_include_pad=cip), opset=19)
    (y,) = run_fastcnn(m, x)
    np.testing.assert_allclose(y, R.average_pool(x, kernel, strides, pads, dil, ceil_mode, cip),
                               **TOL)
    if all(d == 1 for d in dil):
        np.testing.assert_allclose(y, run_ort(m, x)[0], **TOL)


BAD = [
    ("MaxPool", {}, "kernel_shape"),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[0, 1]), "strides"),
    ("MaxPool", dict(kernel_shape=[2, 2], dilations=[1, -1]), "dilations"),
    ("MaxPool", dict(kernel_shape=[2, 2], pads=[0, -1, 0, 0]), "pads"),
    ("MaxPool", dict(kernel_shape=[2, 2], storage_order=2), "storage_order"),
    ("MaxPool", dict(kernel_shape=[2, 2, 2]), "spatial"),
    ("MaxPool", dict(kernel_shape=[9, 2]), "larger"),
    ("MaxPool", dict(kernel_shape=[0, 2]), "kernel_shape"),
    ("AveragePool", dict(kernel_shape=[2, 2], count_include_pad=3), "count_include_pad"),
    ("AveragePool", dict(kernel_shape=[2, 2], auto_pad="BOGUS"), "auto_pad"),
    ("LpPool", dict(kernel_shape=[2, 2], p=0), "p must"),
    ("AveragePool", dict(kernel_shape=[2, 2], pads=[1, 1, 1]), "pads"),
]


@pytest.mark.parametrize("op,attrs,frag", BAD)
def test_pool_invalid(op, attrs, frag):
    m = pool_model(op, (1, 2, 5, 5), attrs)
    with pytest.raises(InvalidGraphError) as ei:
        fastcnn.InferenceSession(m).run(None, {"X": np.ones((1, 2, 5, 5), np.float32)})
    assert "pool0" in str(ei.value) and frag in str(ei.value), str(ei.value)


def test_pool_invalid_rank_and_dtype():
    m = pool_model("GlobalAveragePool", (2, 5), {})
    with pytest.raises(InvalidGraphError, match="pool0"):
        fastcnn.InferenceSession(m)
    m = pool_model("MaxPool", (1, 2, 5, 5), dict(kernel_shape=[2, 2]), dtype=TensorProto.INT32)
    with pytest.raises(InvalidGraphError, match="pool0.*dtype"):
        fastcnn.InferenceSession(m)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_pool_fuzz_never_crashes(data):
    """Arbitrary (often invalid) attributes: run correctly or raise InvalidGraphError."""
    nd = data.draw(st.integers(1, 3))
    op = data.draw(st.sampled_from(["MaxPool", "AveragePool", "LpPool"]))
    attrs = {"kernel_shape": [data.draw(st.integers(-1, 5)) for _ in range(nd)]}
    if data.draw(st.booleans()):
        attrs["strides"] = [data.draw(st.integers(-1, 4)) for _ in range(nd)]
    if data.draw(st.booleans()):
        attrs["dilations"] = [data.draw(st.integers(-1, 3)) for _ in range(nd)]
    if data.draw(st.booleans()):
        attrs["pads"] = [data.draw(st.integers(-1, 7)) for _ in range(2 * nd)]
    if data.draw(st.booleans()):
        attrs["auto_pad"] = data.draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs["ceil_mode"] = data.draw(st.integers(0, 1))
    if op == "AveragePool":
        attrs["count_include_pad"] = data.draw(st.integers(0, 1))
    spatial = [data.draw(st.integers(1, 6)) for _ in range(nd)]
    x = np.random.default_rng(0).standard_normal((2, 2, *spatial)).astype(np.float32)
    indices = op == "MaxPool" and data.draw(st.booleans())
    m = pool_model(op, x.shape, attrs, opset=19 if op != "MaxPool" else 12, indices=indices)
    try:
        outs = fastcnn.InferenceSession(m, num_threads=2).run(None, {"X": x})
    except InvalidGraphError as e:
        assert "pool0" in str(e)
        return
    if indices:
        i = outs[1]
        assert ((i == -1) | ((i >= 0) & (i < x.size))).all()
    if attrs.get("auto_pad") is None:
        k, s, p, d, c = (attrs["kernel_shape"], attrs.get("strides"), attrs.get("pads"),
                         attrs.get("dilations"), attrs["ceil_mode"])
        if op == "MaxPool":
            r = R.max_pool(x, k, s, p, d, c)
        elif op == "AveragePool":
            r = R.average_pool(x, k, s, p, d, c, attrs["count_include_pad"])
        else:
            r = R.lp_pool(x, k, s, p, d, c)
        np.testing.assert_allclose(outs[0], r, **TOL)


@pytest.mark.parametrize("dtype,et", [(np.int8, TensorProto.INT8), (np.uint8, TensorProto.UINT8),
                                      (np.float16, TensorProto.FLOAT16)])
def test_maxpool_small_dtypes(dtype, et):
    rng = np.random.default_rng(10)
    info = np.iinfo(dtype) if dtype != np.float16 else None
    x = (rng.integers(info.min, info.max + 1, (2, 3, 7, 6)) if info is not None
         else rng.standard_normal((2, 3, 7, 6))).astype(dtype)
    m = pool_model("MaxPool", x.shape, dict(kernel_shape=[3, 2], strides=[2, 1],
                                            pads=[1, 0, 1, 1]), opset=12, indices=True, dtype=et)
    y, i = run_fastcnn(m, x)
    assert y.dtype == dtype
    oy, oi = run_ort(m, x)
    np.testing.assert_array_equal(y, oy)
    ry, ri = R.max_pool(x, [3, 2], [2, 1], [1, 0, 1, 1], None, False, 0, True)
    np.testing.assert_array_equal(y, ry)


@pytest.mark.parametrize("op", ["AveragePool", "GlobalAveragePool"])
def test_float16_pools(op):
    x = np.random.default_rng(11).standard_normal((2, 3, 7, 6)).astype(np.float16)
    attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]) if op == "AveragePool" else {}
    m = pool_model(op, x.shape, attrs, dtype=TensorProto.FLOAT16)
    (y,) = run_fastcnn(m, x)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), run_ort(m, x)[0].astype(np.float32),
                               rtol=2e-3, atol=2e-3)


def test_pool_native_step_matches_def_kernel():
    from fastcnn._kernels import pool as k
    rng = np.random.default_rng(12)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((6, 3, 7, 8)).astype(dt)
        geo = ((2, 3, 2), (1, 2, 2), (1, 1, 0), (0, 1, 1), (1, 1, 2))
        for mode in range(4):
            y1 = np.empty((6, 4, 4, 4), dt)
            y2 = np.empty_like(y1)
            i1 = np.empty(y1.shape, np.int64) if mode == 0 else None
            i2 = np.empty(y1.shape, np.int64) if mode == 0 else None
            k.pool_3d(x, y1, i1, *geo, mode, 3.0, 1, 2)
            k.pool_call(x, y2, i2, *geo, mode, 3.0, 1, 2)()
            np.testing.assert_array_equal(y1, y2)
            if mode == 0:
                np.testing.assert_array_equal(i1, i2)
    with pytest.raises(ValueError):
        k.pool_call(x, np.empty((5, 4, 4, 4)), None, *geo, 1)
    with pytest.raises(ValueError):
        k.pool_call(x, np.empty((6, 4, 4, 4)), np.empty((6, 4, 4, 4), np.int64), *geo, 1)


@pytest.mark.parametrize("x_shape,k,s,pads,with_shape", [
    ((2, 3, 6, 8), 2, 2, [0, 0, 0, 0], False),
    ((2, 3, 7, 9), 2, 2, [0, 0, 0, 0], True),      # odd input: output_shape restores 7x9
    ((1, 4, 9, 9), 3, 2, [1, 1, 1, 1], True),
    ((1, 2, 5, 6), 3, 3, [1, 0, 1, 0], True),
    ((1, 2, 6, 6), 3, 3, [0, 0, 0, 0], False),
    ((2, 2, 10), 2, 2, [0, 0], True),               # 1D
])
@pytest.mark.parametrize("opset", [11, 13])
def test_maxunpool(x_shape, k, s, pads, with_shape, opset):
    """SegNet / paddle MaxUnPool2D: MaxPool(Indices) -> MaxUnpool, optionally with
    output_shape = Shape(x); against onnxruntime (flat offsets into the whole output)."""
    d = len(x_shape) - 2
    attrs = dict(kernel_shape=[k] * d, strides=[s] * d, pads=pads)
    nodes = [helper.make_node("MaxPool", ["X"], ["P", "I"], **attrs),
             helper.make_node("Relu", ["P"], ["R"])]
    unpool_in = ["R", "I"]
    if with_shape:
        nodes.append(helper.make_node("Shape", ["X"], ["S"]))
        unpool_in.append("S")
    nodes.append(helper.make_node("MaxUnpool", unpool_in, ["Y"], name="unpool0", **attrs))
    m = make_model(nodes, [("X", F, ["N", x_shape[1]] + list(x_shape[2:]))], [("Y", F, None)],
                   opset=opset)
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    want = run_ort(m, x)[0]
    got = run_fastcnn(m, x)[0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if with_shape:
        assert got.shape == x.shape


def test_maxunpool_errors():
    x = np.ones((1, 1, 2, 2), np.float32)
    bad_i = helper.make_node("MaxUnpool", ["X", "I"], ["Y"], name="unpool0", kernel_shape=[2, 2],
                             strides=[2, 2])
    m = make_model([bad_i], [("X", F, [1, 1, 2, 2])], [("Y", F, None)],
                   {"I": np.array([[[[0, 1], [2, 99]]]], np.int64)}, opset=11)
    with pytest.raises(InvalidGraphError, match="unpool0.*index 99"):
        fastcnn.InferenceSession(m).run(None, {"X": x})
    m = make_model([bad_i], [("X", F, [1, 1, 2, 2])], [("Y", F, None)],
                   {"I": np.zeros((1, 1, 3, 3), np.int64)}, opset=11)
    with pytest.raises(InvalidGraphError, match="unpool0.*I has shape"):
        fastcnn.InferenceSession(m).run(None, {"X": x})
    no_k = helper.make_node("MaxUnpool", ["X", "I"], ["Y"], name="unpool0")
    m = make_model([no_k], [("X", F, [1, 1, 2, 2]), ("I", I64, [1, 1, 2, 2])], [("Y", F, None)],
                   opset=11)
    with pytest.raises(InvalidGraphError, match="unpool0.*kernel_shape"):
        fastcnn.InferenceSession(m)
