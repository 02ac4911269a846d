"""The x2 nearest kernel's streaming-store path (outputs at or above `_set_stream_bytes`,
32 MB by default, here lowered to 8 MB; 16-byte aligned, width a multiple of 4) against
numpy, next to the plain path it replaces."""
import numpy as np
import pytest

kr = pytest.importorskip("fastcnn._kernels.resize")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("offset", [0, 1])          # 1: a misaligned output, plain stores
def test_nearest_x2_large(threads, offset):
    prev = kr._set_stream_bytes(8 << 20)
    try:
        _check_large(threads, offset)
    finally:
        kr._set_stream_bytes(prev)


def _check_large(threads, offset):
    rng = np.random.default_rng(0)
    P, H, W = 20, 160, 164                              # output 20x320x328 floats = 8.4 MB
    x = rng.standard_normal((P, H, W)).astype(np.float32)
    buf = np.full(P * 2 * H * 2 * W + 4, np.nan, np.float32)
    out = buf[offset:offset + P * 2 * H * 2 * W].reshape(P, 2 * H, 2 * W)
    iy, ix = np.arange(2 * H) // 2, np.arange(2 * W) // 2
    kr.nearest2d(x, out, iy, ix, 2, 0, threads)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))
    # any row map: each output row streams from its own input row
    iy2 = iy.copy()
    iy2[:4] = [1, 1, 0, 0]
    kr.nearest2d(x, out, iy2, ix, 2, 0, threads)
    np.testing.assert_array_equal(out, np.repeat(x, 2, axis=2)[:, iy2])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("side", ["at", "below"])
def test_stream_threshold_both_sides(threads, side):
    """An output of exactly the threshold streams, one byte under it does not; both
    correct (odd plane count and row count, a width that is a multiple of 4)."""
    rng = np.random.default_rng(1)
    P, H, W = 7, 45, 62                                  # output 7x90x124 floats
    x = rng.standard_normal((P, H, W)).astype(np.float32)
    raw = np.full(P * 2 * H * 2 * W + 16, np.nan, np.float32)
    start = (-raw.ctypes.data % 16) // 4
    out = raw[start:start + P * 2 * H * 2 * W].reshape(P, 2 * H, 2 * W)
    nbytes = out.nbytes
    prev = kr._set_stream_bytes(nbytes if side == "at" else nbytes + 1)
    try:
        assert kr.nearest2d_streams(out) == (side == "at")
        assert not kr.nearest2d_streams(out, 2, 1, 1, 0, 2 * W - 1)   # a shifted map: plain
        assert not kr.nearest2d_streams(out, 3)
        iy, ix = np.arange(2 * H) // 2, np.arange(2 * W) // 2
        kr.nearest2d(x, out, iy, ix, 2, 0, threads)
        np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))
        assert np.isnan(raw[:start]).all() and np.isnan(raw[start + out.size:]).all()
    finally:
        kr._set_stream_bytes(prev)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shift", [0, 1])
def test_stream_threshold_session(threads, shift):
    """A session's x2 nearest output on both sides of a lowered threshold, vs the
    reference (batch 2, 20 channels, odd H): identical results either way."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
    import fastcnn
    shape = (2, 20, 33, 40)
    ctm = "asymmetric" if shift == 0 else "half_pixel"
    g = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest",
                          coordinate_transformation_mode=ctm,
                          nearest_mode="floor")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=8)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    out_bytes = want.nbytes
    for threshold in (out_bytes, out_bytes + 1):
        prev = kr._set_stream_bytes(threshold)
        try:
            sess = fastcnn.InferenceSession(m, num_threads=threads)
            for _ in range(3):
                got = sess.run(None, {"x": x})[0]
                np.testing.assert_array_equal(got, want)
                op = [st.op for st in next(iter(sess._plans.values())).steps][0]
                assert op.kind == "nearest2d" and op.fx == 2 and (op.head > 0) == shift
                streams = kr.nearest2d_streams(got.reshape(-1, 66, 80), op.fx, op.lanes,
                                               op.head, op.k0, op.nbody)
                assert streams == (threshold == out_bytes and shift == 0 and
                                   got.ctypes.data % 16 == 0)
                del got
        finally:
            kr._set_stream_bytes(prev)
