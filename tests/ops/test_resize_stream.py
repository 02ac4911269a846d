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
