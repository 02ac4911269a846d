"""Blocked (NCHWc) pooling kernels vs fastcnn.reference: every mode, both ISAs, 1-3D."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastcnn.reference as R

k = pytest.importorskip("fastcnn._kernels.pool")

ISAS = ["portable"] + (["avx2"] if k.set_isa("auto") in ("avx2", "avx512") else [])
k.set_isa("auto")


@pytest.fixture(params=ISAS)
def isa(request):
    prev = k.set_isa(request.param)
    yield request.param
    k.set_isa(prev)


def to_blocked(x, pad_value=0.0):
    """(N, C, *sp) -> (N, CB, S, 8); channel padding lanes hold pad_value."""
    n, c = x.shape[:2]
    cb, s = -(-c // 8), int(np.prod(x.shape[2:]))
    xp = np.full((n, cb * 8, s), pad_value, np.float32)
    xp[:, :c] = x.reshape(n, c, s)
    return np.ascontiguousarray(xp.reshape(n, cb, 8, s).transpose(0, 1, 3, 2))


def from_blocked(y, c, sp):
    """(N, CB, S, 8) -> (real channels (N, C, *sp), padding lanes (N, CB*8 - C, S))."""
    n, cb, s, _ = y.shape
    flat = y.transpose(0, 1, 3, 2).reshape(n, cb * 8, s)
    return flat[:, :c].reshape(n, c, *sp), flat[:, c:]


def d3(v, fill):
    return (fill,) * (3 - len(v)) + tuple(v)


def reference(x, mode, p, kernel, strides, pads, dil, ceil):
    if mode == 0:
        return R.max_pool(x, kernel, strides, pads, dil, ceil)
    if mode == 3:
        return R.lp_pool(x, kernel, strides, pads, dil, ceil, p)
    return R.average_pool(x, kernel, strides, pads, dil, ceil, int(mode == 2))


def run_blocked(x, mode, p, kernel, strides, pads, dil, ceil, n_threads, native=False,
                pad_value=0.0):
    n = len(kernel)
    sp = x.shape[2:]
    out = R.pool_output_shape(sp, kernel, strides, pads, dil, bool(ceil))
    c = x.shape[1]
    xb = to_blocked(x, pad_value)
    y = np.full(xb.shape[:2] + (int(np.prod(out)), 8), np.nan, np.float32)
    args = (xb, y, d3(sp, 1), d3(out, 1), d3(kernel, 1), d3(strides, 1), d3(pads[:n], 0),
            d3(pads[n:], 0), d3(dil, 1), mode, p, c, n_threads)
    if native:
        k.pool_nchwc_call(*args)()
    else:
        k.pool_nchwc(*args)
    return from_blocked(y, c, out)


GEOMS = [
    # spatial, kernel, strides, pads (begins, ends), dilations, ceil_mode
    ((112, 112), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0),       # ResNet stem
    ((14, 14), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0),         # Inception 3x3/s1
    ((9, 10), (3, 2), (2, 3), (1, 0, 2, 1), (1, 1), 1),          # asymmetric pads, ceil
    ((9, 9), (3, 3), (1, 2), (1, 1, 0, 0), (2, 1), 1),           # dilation
    ((13,), (4,), (3,), (1, 2), (2,), 1),                        # 1D
    ((40,), (5,), (1,), (2, 2), (1,), 0),                        # 1D, long interior run
    ((4, 12, 12), (2, 2, 2), (2, 2, 2), (0,) * 6, (1, 1, 1), 0),  # C3D
    ((5, 6, 7), (2, 2, 3), (2, 1, 2), (0, 1, 1, 1, 0, 1), (1, 1, 1), 1),
    ((1,), (2,), (1,), (1, 1), (2,), 0),                         # windows of pure padding
]
MODES = [(0, 2.0), (1, 2.0), (2, 2.0), (3, 1.0), (3, 2.0), (3, 3.0)]


@pytest.mark.parametrize("sp,kernel,strides,pads,dil,ceil", GEOMS)
def test_pool_nchwc_matches_reference(isa, sp, kernel, strides, pads, dil, ceil):
    rng = np.random.default_rng(0)
    for c, n_threads in ((13, 1), (16, 2)):
        x = rng.standard_normal((2, c, *sp)).astype(np.float32)
        for mode, p in MODES:
            got, lanes = run_blocked(x, mode, p, kernel, strides, pads, dil, ceil, n_threads,
                                     native=n_threads == 2, pad_value=1e30)
            want = reference(x, mode, p, kernel, strides, pads, dil, ceil)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"mode {mode} p {p} C {c}")
            # padding lanes are written 0 whatever the input's padding lanes hold
            assert (lanes == 0).all()


def test_pool_nchwc_window_of_padding_only():
    # W = 1, k = 2, dilation 2, pads 1: the one window reads positions -1 and 1, both padding
    x = np.ones((1, 8, 1), np.float32)
    got, _ = run_blocked(x, 0, 2.0, (2,), (1,), (1, 1), (2,), 0, 1)
    assert got.shape == (1, 8, 1) and (got == -np.finfo(np.float32).max).all()   # onnxruntime
    for mode in (1, 3):
        got, _ = run_blocked(x, mode, 2.0, (2,), (1,), (1, 1), (2,), 0, 1)
        assert (got == 0).all()


@settings(max_examples=60, deadline=None)
@given(nd=st.integers(1, 3), data=st.data())
def test_pool_nchwc_hypothesis(nd, data):
    kernel = [data.draw(st.integers(1, 4)) for _ in range(nd)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    pads = [data.draw(st.integers(0, kk - 1)) for kk in kernel] + \
           [data.draw(st.integers(0, kk - 1)) for kk in kernel]
    sp = [data.draw(st.integers(max(1, (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[nd + i]),
                                12)) for i in range(nd)]
    ceil = data.draw(st.integers(0, 1))
    mode, p = data.draw(st.sampled_from(MODES))
    c = data.draw(st.integers(1, 17))
    nt = data.draw(st.integers(1, 2))
    x = np.random.default_rng(data.draw(st.integers(0, 2**31))).standard_normal(
        (data.draw(st.integers(1, 2)), c, *sp)).astype(np.float32)
    got, lanes = run_blocked(x, mode, p, kernel, strides, pads, dil, ceil, nt)
    np.testing.assert_allclose(got, reference(x, mode, p, kernel, strides, pads, dil, ceil),
                               rtol=1e-5, atol=1e-5)
    assert (lanes == 0).all()


def test_pool_nchwc_rejects_bad_arguments():
    x = np.zeros((1, 2, 16, 8), np.float32)
    y = np.zeros((1, 2, 4, 8), np.float32)
    geo = ((1, 4, 4), (1, 2, 2), (1, 2, 2), (1, 2, 2), (0, 0, 0), (0, 0, 0), (1, 1, 1))
    k.pool_nchwc(x, y, *geo, 0, 2.0, 16)                     # fine
    for bad in (
        lambda: k.pool_nchwc(x.astype(np.float64), y, *geo, 0),
        lambda: k.pool_nchwc(x, np.zeros((1, 2, 5, 8), np.float32), *geo, 0),
        lambda: k.pool_nchwc(x, np.zeros((1, 3, 4, 8), np.float32), *geo, 0),
        lambda: k.pool_nchwc(x[:, :, ::2], y, *geo, 0),
        lambda: k.pool_nchwc(x, y, *geo, 4),
        lambda: k.pool_nchwc(x, y, *geo, 0, 2.0, 8),         # channels leave a block empty
        lambda: k.pool_nchwc(x, y, *geo, 3, 0.0),
        lambda: k.pool_nchwc(x, y, geo[0], geo[1], (1, 0, 2), *geo[3:], 0),
        lambda: k.pool_nchwc_call(x, y, *geo[:3], (1, 0, 2), *geo[4:], 0),
    ):
        with pytest.raises(ValueError):
            bad()


PLAIN_GEOMS = [
    # spatial, kernel, strides, pads, dilations, ceil_mode: stride 1 / 2 (shuffle) / 3
    # (gather); rows long enough for the 4-vector tile and the overlapping tail vector
    ((5, 75), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0),
    ((6, 91), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    ((4, 70), (2, 3), (1, 3), (0, 1, 1, 2), (1, 2), 1),
    ((3, 4, 40), (2, 2, 2), (2, 2, 2), (0,) * 6, (1, 1, 1), 0),
    ((50,), (4,), (2,), (1, 2), (3,), 1),
    ((9,), (3,), (1,), (1, 1), (1,), 0),                        # shorter than one vector
]


@pytest.mark.parametrize("sp,kernel,strides,pads,dil,ceil", PLAIN_GEOMS)
def test_pool_plain_simd_rows_match_reference(isa, sp, kernel, strides, pads, dil, ceil):
    rng = np.random.default_rng(3)
    n = len(kernel)
    x = rng.standard_normal((2, 3, *sp)).astype(np.float32)
    out = R.pool_output_shape(sp, kernel, strides, pads, dil, bool(ceil))
    x4 = x.reshape((6,) + d3(sp, 1))
    for mode, p in MODES:
        for nt in (1, 2):
            y = np.full((6,) + d3(out, 1), np.nan, np.float32)
            k.pool_3d(x4, y, None, d3(kernel, 1), d3(strides, 1), d3(pads[:n], 0),
                      d3(pads[n:], 0), d3(dil, 1), mode, p, 0, nt)
            np.testing.assert_allclose(y.reshape((2, 3) + tuple(out)),
                                       reference(x, mode, p, kernel, strides, pads, dil, ceil),
                                       rtol=1e-5, atol=1e-5, err_msg=f"mode {mode} p {p}")


# The separable NCHWc rows (kd = 1, no dilation, kh, kw >= 2, sh < kh): a W pass into a
# ring of kh rows, then an H pass; 3x3/s1 and /s2 two rows at a time in registers.  Kernels 2/3/5, strides 1/2, pads, ceil_mode, rows both
# shorter and longer than the 8-pixel tiles (and the kw = 3 / stride 1 pair-sum tile).
SEP_GEOMS = [
    ((28, 28), (3, 3), (1, 1), (1, 1, 1, 1), 0),
    ((17, 23), (3, 3), (1, 1), (0, 0, 0, 0), 0),
    ((10, 9), (3, 3), (1, 1), (2, 0, 1, 2), 1),                 # 3x3/s1 register rows
    ((4, 3), (3, 3), (1, 1), (1, 1, 1, 1), 0),                  # no interior column
    ((15, 21), (3, 3), (2, 2), (1, 1, 1, 1), 1),
    ((14, 17), (3, 3), (2, 2), (0, 1, 2, 0), 1),                # 3x3/s2 register rows
    ((9, 20), (3, 3), (1, 2), (1, 1, 1, 1), 0),                 # ring, kw = 3 strided
    ((12, 19), (2, 2), (1, 1), (0, 1, 1, 0), 1),
    ((11, 30), (5, 5), (1, 1), (2, 2, 2, 2), 0),
    ((13, 14), (5, 3), (2, 1), (1, 0, 2, 2), 1),
    ((9, 7), (3, 5), (1, 2), (2, 4, 0, 1), 1),                  # pads >= half the kernel
    ((5, 6, 9), (1, 3, 3), (2, 1, 1), (0, 1, 1, 1, 1, 1), 1),   # 3-D, kd = 1
]


@pytest.mark.parametrize("sp,kernel,strides,pads,ceil", SEP_GEOMS)
def test_pool_nchwc_separable_matches_reference_and_direct(isa, sp, kernel, strides, pads, ceil):
    rng = np.random.default_rng(5)
    dil = (1,) * len(kernel)
    for c, nt in ((13, 1), (16, 2), (5, 2)):
        x = rng.standard_normal((1, c, *sp)).astype(np.float32)
        for mode, p in MODES[:5]:
            args = (x, mode, p, kernel, strides, pads, dil, ceil, nt)
            got, lanes = run_blocked(*args, pad_value=1e30)
            prev = k.set_separable(False)
            try:
                direct, _ = run_blocked(*args)
            finally:
                k.set_separable(prev)
            want = reference(x, mode, p, kernel, strides, pads, dil, ceil)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"mode {mode} p {p} C {c} threads {nt}")
            np.testing.assert_allclose(got, direct, rtol=1e-5, atol=1e-6)
            if mode == 0:
                assert (got == direct).all()
            assert (lanes == 0).all()


PLAIN_SEP_GEOMS = SEP_GEOMS + [
    ((6, 5), (3, 3), (1, 1), (1, 1, 1, 1), 0),                  # rows shorter than a vector
    ((7, 40), (2, 2), (1, 2), (0, 0, 1, 1), 1),
    ((5, 33), (4, 3), (3, 2), (2, 1, 2, 2), 1),
]


@pytest.mark.parametrize("sp,kernel,strides,pads,ceil", PLAIN_SEP_GEOMS)
def test_pool_plain_separable_matches_reference_and_direct(isa, sp, kernel, strides, pads, ceil):
    rng = np.random.default_rng(7)
    n = len(kernel)
    dil = (1,) * n
    x = rng.standard_normal((1, 3, *sp)).astype(np.float32)
    out = R.pool_output_shape(sp, kernel, strides, pads, dil, bool(ceil))
    x4 = x.reshape((3,) + d3(sp, 1))
    for mode, p in MODES[:5]:
        ys = []
        for sep, nt in ((True, 1), (True, 2), (False, 1)):
            prev = k.set_separable(sep)
            try:
                y = np.full((3,) + d3(out, 1), np.nan, np.float32)
                k.pool_3d(x4, y, None, d3(kernel, 1), d3(strides, 1), d3(pads[:n], 0),
                          d3(pads[n:], 0), d3(dil, 1), mode, p, 0, nt)
            finally:
                k.set_separable(prev)
            ys.append(y.reshape((1, 3) + tuple(out)))
        want = reference(x, mode, p, kernel, strides, pads, dil, ceil)
        for y in ys[:2]:
            np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5, err_msg=f"mode {mode}")
            np.testing.assert_allclose(y, ys[2], rtol=1e-5, atol=1e-6)
