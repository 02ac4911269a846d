"""The integer-factor nearest Resize paths: the column map (f, head, k0, nbody) found at plan
time, the per-ISA row kernels of src/resize_nearest.h (SSE2 / AVX2 bodies, the realigned
AVX2 rows, the scalar loops), B-lane elements of the channel-blocked layout, and the
sessions that use them, against numpy gathers and onnx.reference.ReferenceEvaluator."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import fastcnn
from fastcnn.ops.resize import axis_table, column_map_params

kr = pytest.importorskip("fastcnn._kernels.resize")

F32 = np.float32
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn", "half_pixel_symmetric"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


def _isas():
    out = ["scalar", "portable"]
    prev = kr.get_isa()
    for name in ("avx2", "avx512"):
        try:
            kr.set_isa(name)
            out.append(name)
        except ValueError:
            pass
    kr.set_isa("auto")
    assert kr.get_isa() == prev
    return out


ISAS = _isas()


@pytest.fixture
def isa(request):
    kr.set_isa(request.param)
    yield request.param
    kr.set_isa("auto")


def _guarded(shape, off_bytes, rng=None):
    """A NaN-filled buffer with an array of `shape` inside it starting `off_bytes` past a
    64-byte boundary; returns (raw, view, start)."""
    n = int(np.prod(shape))
    raw = np.full(n + 64, np.nan, F32)
    start = (-raw.ctypes.data % 64) // 4 + off_bytes // 4
    out = raw[start:start + n].reshape(shape)
    assert out.ctypes.data % 64 == off_bytes
    return raw, out, start


# -- the column map -------------------------------------------------------------------------------
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("nearest_mode", NEAREST)
@pytest.mark.parametrize("f", [2, 3, 4])
def test_column_map_matches_axis_table(ctm, nearest_mode, f):
    for n_in in (1, 2, 3, 7, 10, 33):
        for n_out in sorted({f * n_in, f * n_in - 1, f * n_in + 1} - {0}):
            idx, _, _ = axis_table(n_in, n_out, n_out / n_in if n_out != f * n_in else float(f),
                                   mode="nearest", ctm=ctm, nearest_mode=nearest_mode)
            ix = idx[:, 0]
            p = column_map_params(ix, n_in)
            if p is not None:
                assert kr.column_map(*p, n_out, n_in) == list(ix)


@pytest.mark.parametrize("ctm,nearest_mode,shifted", [
    ("asymmetric", "floor", False),             # torch Upsample(scale_factor=2, 'nearest')
    ("half_pixel", "round_prefer_floor", False),   # the ONNX default
    ("pytorch_half_pixel", "round_prefer_floor", False),
    ("tf_half_pixel_for_nn", "round_prefer_floor", True),
    ("half_pixel", "floor", True),
    ("asymmetric", "ceil", True),
])
def test_common_modes_take_the_integer_map(ctm, nearest_mode, shifted):
    n_in = 37
    for f in (2, 3, 4):
        idx, _, _ = axis_table(n_in, f * n_in, float(f), mode="nearest", ctm=ctm,
                               nearest_mode=nearest_mode)
        p = column_map_params(idx[:, 0], n_in)
        assert p is not None and p[0] == f, (f, p)
        assert (p[1] > 0) == shifted, (f, p)
        if not shifted:
            assert p == (f, 0, 0, f * n_in)


def test_non_integer_maps_are_none():
    idx, _, _ = axis_table(10, 15, 1.5, mode="nearest", ctm="half_pixel")
    assert column_map_params(idx[:, 0], 10) is None
    assert column_map_params(np.array([0, 2, 1]), 3) is None


# -- the row kernels ------------------------------------------------------------------------------
@pytest.mark.parametrize("isa", ISAS, indirect=True)
@pytest.mark.parametrize("lanes", [1, 3, 8, 16])
@pytest.mark.parametrize("f", [1, 2, 3, 4, 5])
def test_rows_every_map(isa, lanes, f):
    rng = np.random.default_rng(f * 10 + lanes)
    P, H = 2, 3
    for s in range(-(f - 1), f):
        for W in (1, 2, 3, 7, 8, 9, 17, 33, 64, 65):
            for OW in sorted({f * W, f * W - 1, f * W + 1, f * W - f} - {0}):
                o = np.arange(OW)
                ix = np.clip((o + s) // f, 0, W - 1)
                p = column_map_params(ix, W)    # (a degenerate map may match another f)
                assert p is not None and kr.column_map(*p, OW, W) == list(ix)
                iy = np.minimum(np.arange(2 * H + 1) // 2, H - 1)
                x = rng.standard_normal((P, H, W * lanes)).astype(F32)
                want = x.reshape(P, H, W, lanes)[:, iy][:, :, ix].reshape(P, len(iy), -1)
                for off in ((0, 4, 16, 48) if lanes == 1 else (0, 32)):
                    raw, out, start = _guarded((P, len(iy), OW * lanes), off)
                    kr.nearest2d(x, out, iy, ix, p[0], 0, 1, lanes, p[1], p[2], p[3])
                    np.testing.assert_array_equal(out, want, err_msg=str((s, W, OW, off, p)))
                    assert np.isnan(raw[:start]).all() and np.isnan(raw[start + out.size:]).all()


@pytest.mark.parametrize("isa", ISAS, indirect=True)
@pytest.mark.parametrize("lanes", [1, 8])
@pytest.mark.parametrize("threads", [1, 2])
def test_gather_and_row_blocks(isa, lanes, threads):
    """A map that is no integer factor (gather; plain rows equal to the one before are
    copied) and split row blocks, on the pool."""
    rng = np.random.default_rng(3)
    P, H, W = 5, 9, 13
    iy = np.array([0, 0, 1, 3, 3, 3, 8, 2, 2, 5, 5])
    ix = rng.integers(0, W, 20)
    x = rng.standard_normal((P, H, W * lanes)).astype(F32)
    want = x.reshape(P, H, W, lanes)[:, iy][:, :, ix].reshape(P, len(iy), -1)
    for rows_per_item in (0, 1, 4):
        out = np.full((P, len(iy), len(ix) * lanes), np.nan, F32)
        kr.nearest2d(x, out, iy, ix, 0, rows_per_item, threads, lanes)
        np.testing.assert_array_equal(out, want)


def test_nearest2d_rejects_a_wrong_map():
    x = np.zeros((1, 2, 4), F32)
    out = np.zeros((1, 4, 8), F32)
    iy = np.arange(4) // 2
    with pytest.raises(ValueError, match="column map"):
        kr.nearest2d(x, out, iy, np.arange(8) // 2, 2, 0, 1, 1, 1, 0, 7)
    with pytest.raises(ValueError, match="lanes"):
        kr.nearest2d(x, np.zeros((1, 4, 7), F32), iy, np.arange(7) // 2, 2, 0, 1, 2)


# -- sessions against the reference ---------------------------------------------------------------
def _opset(attrs):
    # tf_half_pixel_for_nn is an opset 11-18 mode (and has no ReferenceEvaluator code)
    return 13 if attrs.get("coordinate_transformation_mode") == "tf_half_pixel_for_nn" else 19


def _oracle(m, x, attrs):
    """ReferenceEvaluator; onnxruntime for tf_half_pixel_for_nn."""
    if _opset(attrs) == 13:
        import onnxruntime as ort
        return ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    return ReferenceEvaluator(m).run(None, {"x": x})[0]


def _resize_model(shape, scales=None, sizes=None, **attrs):
    inits = []
    ins = ["x", ""]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array(scales, F32), "scales"))
        ins.append("scales")
    else:
        ins.append("")
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        ins.append("sizes")
    g = helper.make_graph([helper.make_node("Resize", ins, ["y"], mode="nearest", **attrs)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", _opset(attrs))],
                             ir_version=8)


def _resize_op(sess):
    plan = next(iter(sess._plans.values()))
    return [st.op for st in plan.steps if st.node.op_type == "Resize"][0]


@pytest.mark.parametrize("ctm,nearest_mode", [
    ("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
    ("tf_half_pixel_for_nn", "round_prefer_floor"), ("half_pixel", "ceil"),
    ("pytorch_half_pixel", "round_prefer_ceil"), ("align_corners", "round_prefer_floor")])
@pytest.mark.parametrize("shape,scales,sizes", [
    ((2, 20, 13, 11), (1, 1, 2, 2), None),     # batch 2, odd extents, C not a block multiple
    ((1, 3, 7, 9), (1, 1, 3, 3), None),
    ((2, 5, 6, 10), (1, 1, 4, 4), None),
    ((1, 4, 17, 40), (1, 1, 2, 1), None),      # H only: rows copied whole
    ((2, 3, 9, 11), None, (2, 3, 18, 21)),     # OW = 2W - 1
    ((1, 2, 64, 200), (1, 1, 2, 2), None),     # long rows (the realigned AVX2 body)
])
@pytest.mark.parametrize("threads", [1, 2])
def test_session_vs_reference(ctm, nearest_mode, shape, scales, sizes, threads):
    attrs = {"coordinate_transformation_mode": ctm, "nearest_mode": nearest_mode}
    m = _resize_model(shape, scales, sizes, **attrs)
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(F32)
    want = _oracle(m, x, attrs)
    for isa in ISAS:
        kr.set_isa(isa)
        try:
            sess = fastcnn.InferenceSession(m, num_threads=threads)
            for _ in range(2):              # the second run writes a recycled output
                got = sess.run(None, {"x": x})[0]
                np.testing.assert_array_equal(got, want, err_msg=isa)
        finally:
            kr.set_isa("auto")
    op = _resize_op(sess)
    assert op.kind == "nearest2d"
    if ctm in ("asymmetric", "half_pixel") and nearest_mode in ("floor", "round_prefer_floor") \
            and scales is not None:
        assert op.fx == int(scales[3]) and op.head == 0, (op.fx, op.head)


def _conv_resize_conv(C, shape, scales, **attrs):
    rng = np.random.default_rng(0)
    N, Cin, H, W = shape
    w1 = (rng.standard_normal((C, Cin, 3, 3)) * 0.2).astype(F32)
    w2 = (rng.standard_normal((8, C, 3, 3)) * 0.2).astype(F32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(scales, F32), "s")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["a", "", "s"], ["b"], mode="nearest", **attrs),
             helper.make_node("Conv", ["b", "w2"], ["y"], pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, list(shape))],
                          [helper.make_tensor_value_info("y", 1, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", _opset(attrs))],
                             ir_version=8)


@pytest.mark.parametrize("C", [20, 16, 5])
@pytest.mark.parametrize("scales,attrs", [
    ((1, 1, 2, 2), {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    ((1, 1, 2, 2), {}),
    ((1, 1, 2, 2), {"coordinate_transformation_mode": "tf_half_pixel_for_nn"}),
    ((1, 1, 3, 2), {"nearest_mode": "floor"}),
    ((1, 1, 1.5, 2.5), {}),                    # no integer map: the B-lane gather
])
@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_between_convs(C, scales, attrs, threads):
    from fastcnn.runtime.layout import BLOCK
    shape = (2, 6, 9, 7)
    m = _conv_resize_conv(C, shape, scales, **attrs)
    x = np.random.default_rng(1).standard_normal(shape).astype(F32)
    want = _oracle(m, x, attrs)
    for isa in ISAS:
        kr.set_isa(isa)
        try:
            sess = fastcnn.InferenceSession(m, num_threads=threads)
            got = sess.run(None, {"x": x})[0]
        finally:
            kr.set_isa("auto")
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=isa)
    op = _resize_op(sess)
    if BLOCK:
        assert op.kind == "nearest2d" and op.lanes == BLOCK
        assert (op.fx > 0) == (scales[3] == int(scales[3]))
