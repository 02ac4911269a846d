"""Tests of the NCHWc layout reorders and direct convolution kernels against a
plain numpy reference (cross-correlation, zero padding)."""
import itertools
import math

import numpy as np
import pytest

cn = pytest.importorskip("fastcnn._kernels.conv_nchwc")

B = 8
ISAS = ["auto", "portable"] + (["avx2"] if cn.isa_name() == "avx512" else [])


@pytest.fixture(params=ISAS)
def isa(request):
    prev = cn.set_isa(request.param)
    yield request.param
    cn.set_isa(prev)


# ----------------------------------------------------------------------------- reference

def ref_conv(x, w, bias, strides, pads_begin, dilations, out_dhw, group):
    """x[N, C, D, H, W], w[M, C/g, kd, kh, kw] -> y[N, M, *out_dhw] (float64)."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    N, C = x.shape[:2]
    M = w.shape[0]
    kd, kh, kw = w.shape[2:]
    OD, OH, OW = out_dhw
    sd, sh, sw = strides
    dd, dh, dw = dilations
    pd, ph, pw = pads_begin
    # pad enough on every side, then slice
    need = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(out_dhw, strides, (kd, kh, kw), dilations)]
    pad_end = [max(0, nd - p - i) for nd, p, i in zip(need, pads_begin, x.shape[2:])]
    xp = np.pad(x, [(0, 0), (0, 0), (pd, pad_end[0]), (ph, pad_end[1]), (pw, pad_end[2])])
    Cg, Mg = C // group, M // group
    y = np.zeros((N, M, OD, OH, OW))
    for g in range(group):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Mg:(g + 1) * Mg]
        for a, b, c in itertools.product(range(kd), range(kh), range(kw)):
            patch = xs[:, :, a * dd: a * dd + (OD - 1) * sd + 1: sd,
                       b * dh: b * dh + (OH - 1) * sh + 1: sh,
                       c * dw: c * dw + (OW - 1) * sw + 1: sw]
            y[:, g * Mg:(g + 1) * Mg] += np.einsum("ncdhw,mc->nmdhw", patch, wg[:, :, a, b, c])
    if bias is not None:
        y += bias.astype(np.float64)[None, :, None, None, None]
    return y


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_act(y, kind, p0, p1, slope):
    from math import erf
    sl = None if slope is None else slope.astype(np.float64).reshape((1, -1) + (1,) * (y.ndim - 2))
    return {
        0: lambda v: v,
        1: lambda v: np.maximum(v, 0),
        2: lambda v: np.clip(v, p0, p1),
        3: lambda v: np.where(v >= 0, v, p0 * v),
        4: lambda v: np.clip(p0 * v + p1, 0, 1),
        5: lambda v: v * np.clip(v / 6 + 0.5, 0, 1),
        6: _sig,
        7: lambda v: v * _sig(v),
        8: np.tanh,
        9: lambda v: v * np.tanh(np.log1p(np.exp(v))),
        10: lambda v: np.where(v >= 0, v, sl * v),
        11: lambda v: np.where(v >= 0, v, p0 * (np.exp(v) - 1)),
        12: lambda v: 0.5 * v * (1 + np.vectorize(erf)(v / math.sqrt(2))),
    }[kind](y)


ACT_PARAMS = {0: (0, 0), 1: (0, 0), 2: (-0.5, 0.7), 3: (0.1, 0), 4: (0.2, 0.5), 5: (0, 0),
              6: (0, 0), 7: (0, 0), 8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0.8, 0), 12: (0, 0)}


def out_size(i, k, s, pb, pe, d):
    return (i + pb + pe - ((k - 1) * d + 1)) // s + 1


def to_blocked(x):
    N, C = x.shape[:2]
    xb = np.empty((N, (C + B - 1) // B, int(np.prod(x.shape[2:])), B), np.float32)
    return cn.reorder_to_blocked(np.ascontiguousarray(x, np.float32), xb, 1)


def from_blocked(yb, shape):
    y = np.empty(shape, np.float32)
    return cn.reorder_from_blocked(yb, y, 1)


def run_conv(x, w, bias, strides, pads_begin, pads_end, dilations, group, act=0, residual=False,
             n_threads=1, plain=False, rng=None):
    """x[N,C,*sp] (1-3 spatial dims), w[M,C/g,*k].  Returns (got, expected) NCHW."""
    nsp = x.ndim - 2
    pre = 3 - nsp
    x5 = x.reshape(x.shape[:2] + (1,) * pre + x.shape[2:])
    w5 = w.reshape(w.shape[:2] + (1,) * pre + w.shape[2:])
    st = (1,) * pre + tuple(strides)
    pb = (0,) * pre + tuple(pads_begin)
    pe = (0,) * pre + tuple(pads_end)
    dl = (1,) * pre + tuple(dilations)
    odhw = tuple(out_size(i, k, s, a, b, d) for i, k, s, a, b, d in zip(x5.shape[2:], w5.shape[2:], st, pb, pe, dl))
    N, C = x.shape[:2]
    M = w.shape[0]
    Mb = (M + B - 1) // B
    S_out = int(np.prod(odhw))
    rng = rng or np.random.default_rng(0)
    p0, p1 = ACT_PARAMS[act]
    slope = rng.standard_normal(M).astype(np.float32) * 0.3 if act == 10 else None
    res_nchw = rng.standard_normal((N, M) + odhw).astype(np.float32) if residual else None
    expect = ref_conv(x5, w5, bias, st, pb, dl, odhw, group)
    if residual:
        expect = expect + res_nchw
    expect = ref_act(expect, act, p0, p1, slope)
    if plain:
        xin = np.ascontiguousarray(x.reshape(N, C, -1), np.float32)
        wp = cn.pack_conv_weights(w5, group, blocked_input=False)
    else:
        xin = to_blocked(x5)
        wp = cn.pack_conv_weights(w5, group)
    yb = np.full((N, Mb, S_out, B), np.nan, np.float32)
    resb = to_blocked(res_nchw) if residual else None
    cn.conv_nchwc(xin, wp, bias, yb, x5.shape[2:], odhw, w5.shape[2:], st, pb, dl, group,
                  act, p0, p1, slope, resb, n_threads, n_out_channels=M)
    got = from_blocked(yb, (N, M) + odhw)
    # padding lanes must be zero
    if M % B:
        assert np.all(yb[:, -1, :, M % B:] == 0)
    return got.reshape((N, M) + x.shape[2:2] + odhw[pre:]), expect.reshape((N, M) + odhw[pre:])


def check(got, expect, rtol=1e-4):
    scale = max(1.0, float(np.abs(expect).max()))
    np.testing.assert_allclose(got, expect, rtol=rtol, atol=rtol * scale * 4)


# ----------------------------------------------------------------------------- reorders

@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 8, 4, 4), (2, 17, 3, 3, 3), (1, 64, 56, 56), (3, 1, 10),
                                   (1, 12, 2051)])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("isa", ["auto", "portable"])
def test_reorder_roundtrip(shape, n_threads, isa):
    """8x8 transposes (AVX2) and the scalar loops, with partial channel blocks, pixel
    tails after the last 8 and a tail of a 2048-pixel chunk."""
    prev = cn.set_isa(isa)
    try:
        _reorder_roundtrip(shape, n_threads)
    finally:
        cn.set_isa(prev)


def _reorder_roundtrip(shape, n_threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    N, C = shape[:2]
    S = int(np.prod(shape[2:]))
    xb = np.full((N, (C + 7) // 8, S, 8), np.nan, np.float32)
    cn.reorder_to_blocked(x, xb, n_threads)
    # explicit layout check
    xpad = np.zeros((N, ((C + 7) // 8) * 8, S), np.float32)
    xpad[:, :C] = x.reshape(N, C, S)
    np.testing.assert_array_equal(xb, xpad.reshape(N, -1, 8, S).transpose(0, 1, 3, 2))
    y = np.empty_like(x)
    cn.reorder_from_blocked(xb, y, n_threads)
    np.testing.assert_array_equal(x, y)


def test_simd_block_and_isa():
    assert cn.simd_block() == 8
    assert cn.isa_name() in ("portable", "avx2", "avx512")


def test_pack_layout():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((10, 5, 3, 3)).astype(np.float32)
    wp = cn.pack_conv_weights(w, 1, lanes=8)
    assert wp.shape == (2, 1, 9, 8, 8)
    # wp[mb, cb, k, ic, oc] = w[mb*8+oc, cb*8+ic, k]
    assert wp[1, 0, 4, 3, 1] == w[9, 3, 1, 1]
    assert wp[1, 0, 4, 6, 1] == 0 and wp[1, 0, 4, 3, 2] == 0
    wq = cn.pack_conv_weights(w, 1, blocked_input=False)
    assert wq.shape == (2, 1, 9, 5, 8) and wq[1, 0, 4, 3, 1] == w[9, 3, 1, 1]
    with pytest.raises(ValueError, match="lanes"):
        cn.pack_conv_weights(w, 1, lanes=4)


@pytest.mark.skipif(cn.isa_name() != "avx512", reason="16-lane packing needs AVX-512")
def test_pack_layout_16_lanes():
    """Pairs of oc blocks of one group: w16[pair, cb, k, ic, h*8 + l] is channel
    (g*mbg + 2*pair' + h)*8 + l; a group's odd last block leaves the pair's upper half 0."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((48, 8, 1, 3)).astype(np.float32)   # group 2: 3 blocks each
    wp = cn.pack_conv_weights(w, 2, lanes=16)
    assert wp.shape == (4, 1, 3, 8, 16)
    assert cn.pack_lanes(True) == cn.pack_lanes(False, 32) == 16
    assert cn.pack_lanes(True, 24) == cn.pack_lanes(True, 16) == cn.pack_lanes(True, 64, 4) == 8
    assert wp[0, 0, 2, 5, 11] == w[11, 5, 0, 2]           # group 0, block 1, lane 3
    assert wp[1, 0, 1, 7, 4] == w[20, 7, 0, 1]            # group 0, block 2
    assert np.all(wp[1, :, :, :, 8:] == 0)                # group 0 has no block 3
    assert wp[2, 0, 0, 0, 9] == w[24 + 9, 0, 0, 0]        # group 1 starts a new pair
    assert wp[3, 0, 0, 2, 6] == w[24 + 16 + 6, 2, 0, 0] and np.all(wp[3, :, :, :, 8:] == 0)
    wq = cn.pack_conv_weights(w[:40], 1, blocked_input=False, lanes=16)   # plain input, 5 blocks
    assert wq.shape == (3, 1, 3, 8, 16) and wq[1, 0, 2, 4, 13] == w[29, 4, 0, 2]
    assert np.all(wq[2, :, :, :, 8:] == 0)


# ----------------------------------------------------------------------------- conv

CASES_2D = [
    # C, M, H, W, k, stride, pads_begin, pads_end, dilation, group
    # (16 lanes: 9 and 10 blocks = a full 8-block tile + a half / full pair; 3 blocks per
    # group = a group's last pair half; 7 blocks = 3 pairs + a half in one tile)
    (16, 72, 7, 7, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (24, 80, 5, 9, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    (16, 48, 6, 6, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2),
    (8, 56, 9, 4, (3, 1), (2, 1), (1, 0), (1, 0), (1, 1), 1),
    (8, 8, 6, 7, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (5, 11, 9, 10, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (16, 24, 11, 13, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1),
    (13, 9, 12, 12, (5, 5), (1, 1), (2, 2), (2, 2), (1, 1), 1),
    (3, 16, 23, 21, (7, 7), (2, 2), (3, 3), (3, 3), (1, 1), 1),
    (9, 17, 10, 14, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    (24, 40, 9, 9, (1, 1), (2, 2), (0, 0), (0, 0), (1, 1), 1),
    (8, 8, 9, 11, (1, 5), (1, 1), (0, 2), (0, 2), (1, 1), 1),
    (8, 8, 11, 9, (5, 1), (1, 1), (2, 0), (2, 0), (1, 1), 1),
    (12, 10, 15, 16, (3, 3), (3, 3), (1, 0), (2, 1), (1, 1), 1),
    (8, 16, 14, 13, (3, 3), (1, 1), (2, 2), (2, 2), (2, 2), 1),
    (10, 8, 16, 17, (3, 3), (1, 2), (3, 1), (0, 3), (3, 3), 1),
    (16, 32, 8, 9, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 2),
    (32, 32, 9, 8, (3, 3), (2, 1), (0, 1), (1, 0), (1, 2), 4),
    (64, 64, 7, 7, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (8, 8, 3, 3, (5, 5), (1, 1), (4, 4), (4, 4), (1, 1), 1),   # pads larger than input
    (8, 8, 2, 9, (3, 3), (2, 3), (0, 0), (1, 2), (1, 1), 1),
    # large dilations: few or no interior pixels (every column a border column)
    (16, 24, 33, 33, (3, 3), (1, 1), (18, 18), (18, 18), (18, 18), 1),
    (16, 8, 33, 33, (3, 3), (1, 1), (12, 12), (12, 12), (12, 12), 1),
    (8, 16, 20, 17, (3, 3), (1, 1), (6, 5), (6, 7), (6, 6), 1),
    # tiny maps: 1x1 with padding, 2x3, 7x7 with a partial last oc tile (M=40)
    (8, 16, 1, 1, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (24, 40, 2, 3, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    (16, 40, 7, 7, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1),
    # stride 2 with asymmetric pads, 1x1/s2 on odd sizes
    (16, 24, 14, 15, (3, 3), (2, 2), (0, 1), (1, 0), (1, 1), 1),
    (16, 16, 9, 10, (3, 3), (2, 2), (1, 0), (0, 1), (2, 1), 1),
    (8, 16, 13, 11, (1, 1), (2, 2), (0, 0), (0, 0), (1, 1), 1),
    (16, 32, 7, 7, (1, 1), (2, 2), (0, 0), (0, 0), (1, 1), 2),
]


@pytest.mark.parametrize("case", CASES_2D)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv2d(case, n_threads, isa):
    C, M, H, W, k, s, pb, pe, d, g = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((2, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C // g) + k).astype(np.float32) * 0.2
    bias = rng.standard_normal(M).astype(np.float32)
    got, exp = run_conv(x, w, bias, s, pb, pe, d, g, n_threads=n_threads, rng=rng)
    check(got, exp)


@pytest.mark.parametrize("case", [
    (3, 16, 23, 21, (7, 7), (2, 2), (3, 3), (3, 3), (1, 1)),
    (1, 8, 10, 10, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    (4, 20, 13, 11, (3, 3), (2, 1), (0, 1), (1, 1), (2, 1)),
    (3, 8, 8, 8, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv2d_plain_input(case, n_threads, isa):
    C, M, H, W, k, s, pb, pe, d = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C) + k).astype(np.float32) * 0.2
    bias = rng.standard_normal(M).astype(np.float32)
    got, exp = run_conv(x, w, bias, s, pb, pe, d, 1, act=1, n_threads=n_threads, plain=True, rng=rng)
    check(got, exp)


@pytest.mark.parametrize("act", list(range(13)))
@pytest.mark.parametrize("residual", [False, True])
def test_activations(act, residual, isa):
    rng = np.random.default_rng(act)
    x = rng.standard_normal((2, 12, 7, 9)).astype(np.float32)
    w = rng.standard_normal((20, 12, 3, 3)).astype(np.float32) * 0.2
    bias = rng.standard_normal(20).astype(np.float32)
    got, exp = run_conv(x, w, bias, (1, 1), (1, 1), (1, 1), (1, 1), 1, act=act, residual=residual,
                        n_threads=2, rng=rng)
    check(got, exp)


@pytest.mark.parametrize("case", [
    # 1D: C, M, L, k, s, pb, pe, d, g
    ("1d", 5, 9, 20, (3,), (1,), (1,), (1,), (1,), 1),
    ("1d", 16, 16, 31, (5,), (2,), (2,), (1,), (2,), 2),
    ("1d", 8, 8, 12, (1,), (1,), (0,), (0,), (1,), 1),
    ("3d", 6, 10, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1),
    ("3d", 16, 16, (6, 5, 7), (3, 1, 3), (2, 1, 2), (1, 0, 0), (0, 0, 1), (1, 1, 2), 2),
    ("3d", 9, 8, (4, 4, 4), (1, 1, 1), (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1),
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_conv_1d_3d(case, n_threads, isa):
    kind, C, M, sp, k, s, pb, pe, d, g = case
    sp = (sp,) if kind == "1d" else sp
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, C) + sp).astype(np.float32)
    w = rng.standard_normal((M, C // g) + k).astype(np.float32) * 0.2
    bias = rng.standard_normal(M).astype(np.float32)
    got, exp = run_conv(x, w, bias, s, pb, pe, d, g, act=1, residual=True, n_threads=n_threads, rng=rng)
    check(got, exp)


@pytest.mark.parametrize("rect_px,chunk_bytes", [(1, 256), (7, 4096), (40, 65536), (100000, 1 << 30)])
@pytest.mark.parametrize("case", [
    # (x shape, w shape, strides, pads_begin, pads_end, dilations, group, act, residual)
    ((2, 16, 9, 7), (24, 16, 3, 3), (1, 1), (1, 1), (1, 1), (1, 1), 1, 1, True),
    ((1, 16, 13, 13), (16, 16, 3, 3), (1, 1), (6, 6), (6, 6), (6, 6), 1, 3, False),
    ((1, 24, 11, 12), (40, 24, 3, 3), (2, 2), (1, 0), (0, 1), (1, 1), 1, 5, True),
    ((1, 32, 6, 5), (32, 16, 1, 1), (2, 1), (0, 0), (0, 0), (1, 1), 2, 10, False),
    ((1, 8, 5, 6, 7), (16, 8, 3, 3, 3), (1, 2, 1), (2, 1, 1), (0, 1, 2), (2, 1, 3), 1, 1, True),
    ((1, 8, 300), (16, 8, 3), (1,), (5,), (4,), (5,), 1, 2, False),
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_work_decomposition(case, rect_px, chunk_bytes, n_threads, isa):
    """Work rectangles of 1 row up to the whole map, input-channel chunks of one
    block up to all, long rows cut in segments: same results."""
    xs, ws, s, pb, pe, d, g, act, res = case
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32) * 0.2
    bias = rng.standard_normal(ws[0]).astype(np.float32)
    prev_px = cn._set_rect_px(rect_px)
    prev_chunk = cn._set_chunk_bytes(chunk_bytes)
    try:
        got, exp = run_conv(x, w, bias, s, pb, pe, d, g, act=act, residual=res,
                            n_threads=n_threads, rng=rng)
    finally:
        cn._set_rect_px(prev_px)
        cn._set_chunk_bytes(prev_chunk)
    check(got, exp)


@pytest.mark.parametrize("rect_px", [1, 100000])
def test_work_decomposition_plain_input(rect_px, isa):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 3, 23, 21)).astype(np.float32)
    w = rng.standard_normal((24, 3, 7, 7)).astype(np.float32) * 0.2
    bias = rng.standard_normal(24).astype(np.float32)
    prev = cn._set_rect_px(rect_px)
    try:
        got, exp = run_conv(x, w, bias, (2, 2), (3, 3), (3, 2), (1, 1), 1, act=1, n_threads=2,
                            plain=True, rng=rng)
    finally:
        cn._set_rect_px(prev)
    check(got, exp)


def test_tuning_knob_errors():
    with pytest.raises(ValueError):
        cn._set_seg(0)
    with pytest.raises(ValueError):
        cn._set_seg(257)
    with pytest.raises(ValueError):
        cn._set_rect_px(0)
    prev = cn._set_seg(50)
    assert cn._set_seg(prev) == 50


def test_no_bias_and_errors():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    got, exp = run_conv(x, w, None, (1, 1), (1, 1), (1, 1), (1, 1), 1)
    check(got, exp)
    with pytest.raises(ValueError):
        cn.pack_conv_weights(np.zeros((12, 3, 3, 3), np.float32), 4)
    with pytest.raises(TypeError):
        cn.conv_nchwc(np.zeros((1, 1, 25, 8)), cn.pack_conv_weights(w), None,
                      np.zeros((1, 1, 25, 8), np.float32), (1, 5, 5), (1, 5, 5), (1, 3, 3),
                      (1, 1, 1), (0, 1, 1), (1, 1, 1))


hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_conv_random(data):
    nsp = data.draw(st.integers(1, 3))
    g = data.draw(st.sampled_from([1, 1, 2]))
    if g == 1:
        C = data.draw(st.integers(1, 20))
        M = data.draw(st.integers(1, 20))
    else:
        C = 8 * g * data.draw(st.integers(1, 2))
        M = 8 * g * data.draw(st.integers(1, 2))
    k = tuple(data.draw(st.integers(1, 4)) for _ in range(nsp))
    s = tuple(data.draw(st.integers(1, 3)) for _ in range(nsp))
    d = tuple(data.draw(st.integers(1, 2)) for _ in range(nsp))
    sp, pb, pe = [], [], []
    for i in range(nsp):
        span = (k[i] - 1) * d[i] + 1
        a = data.draw(st.integers(0, span - 1))
        b = data.draw(st.integers(0, span - 1))
        lo = max(1, span - a - b)
        n = data.draw(st.integers(lo, max(lo, 12 if nsp < 3 else 6)))
        sp.append(n); pb.append(a); pe.append(b)
    N = data.draw(st.integers(1, 2))
    act = data.draw(st.sampled_from([0, 1, 3, 5, 7]))
    nt = data.draw(st.sampled_from([1, 2]))
    isa = data.draw(st.sampled_from(ISAS))
    plain = g == 1 and data.draw(st.booleans())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C) + tuple(sp)).astype(np.float32)
    w = rng.standard_normal((M, C // g) + k).astype(np.float32) * 0.3
    bias = rng.standard_normal(M).astype(np.float32)
    prev = cn.set_isa(isa)
    try:
        got, exp = run_conv(x, w, bias, s, pb, pe, d, g, act=act, residual=data.draw(st.booleans()),
                            n_threads=nt, plain=plain, rng=rng)
    finally:
        cn.set_isa(prev)
    check(got, exp)


@pytest.mark.skipif(cn.isa_name() != "avx512", reason="16-lane packing needs AVX-512")
@pytest.mark.parametrize("case", [
    # C, M, H, W, k, stride, pad, group, act, residual: odd block counts (a zero upper
    # half in the last pair of a group), one pair, several oc tiles, chunked channels
    (16, 72, 7, 7, (3, 3), (1, 1), 1, 1, 1, True),
    (16, 48, 6, 6, (3, 3), (1, 1), 1, 2, 10, False),
    (24, 20, 5, 9, (1, 1), (1, 1), 0, 1, 3, True),
    (8, 16, 9, 4, (3, 1), (2, 1), 1, 1, 0, False),
    (40, 136, 6, 5, (3, 3), (1, 2), 1, 1, 5, True),
])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("wide", [True, False])
def test_conv_forced_16_lanes(case, n_threads, plain, wide, monkeypatch):
    """The pair-packed zmm tile on shapes the automatic choice leaves to 8 lanes, with
    tiles of at most 4 blocks run 12 pixels wide (_set_wide) or 6."""
    C, M, H, W, k, s, pad, g, act, res = case
    real = cn.pack_conv_weights
    monkeypatch.setattr(cn, "pack_conv_weights",
                        lambda w, group=1, blocked_input=True: real(w, group, blocked_input, 16))
    prev_wide = cn._set_wide(wide)
    prev = cn._set_chunk_bytes(4096)      # several input-channel chunks: accumulate into y
    try:
        rng = np.random.default_rng(C * M)
        x = rng.standard_normal((2, C, H, W)).astype(np.float32)
        w = rng.standard_normal((M, C // g) + k).astype(np.float32) * 0.2
        bias = rng.standard_normal(M).astype(np.float32)
        p = (pad,) * 2 if k[0] > 1 else (0, 0)
        pw = (pad if k[1] > 1 else 0,) * 2
        if plain and g > 1:
            pytest.skip("plain input is group 1")
        got, exp = run_conv(x, w, bias, s, (p[0], pw[0]), (p[1], pw[1]), (1, 1), g, act=act,
                            residual=res, n_threads=n_threads, plain=plain, rng=rng)
    finally:
        cn._set_chunk_bytes(prev)
        cn._set_wide(prev_wide)
    check(got, exp)
