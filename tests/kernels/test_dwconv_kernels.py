"""Depthwise / grouped NCHWc kernels against a plain numpy reference (float64)."""
import itertools

import numpy as np
import pytest

dw = pytest.importorskip("fastcnn._kernels.dwconv_nchwc")

from hypothesis import given, settings, strategies as st, HealthCheck  # noqa: E402

ISAS = ["portable"] + {"portable": [], "avx2": ["avx2"], "avx512": ["avx2", "avx512"]}[dw.get_isa()]

ACT_NONE, ACT_RELU, ACT_CLIP, ACT_LEAKY, ACT_HSIG, ACT_HSWISH = 0, 1, 2, 3, 4, 5
ACT_SIGMOID, ACT_SILU, ACT_TANH, ACT_MISH, ACT_PRELU, ACT_ELU, ACT_GELU = 6, 7, 8, 9, 10, 11, 12
ACT_PARAMS = {
    ACT_NONE: (0.0, 0.0), ACT_RELU: (0.0, 0.0), ACT_CLIP: (-0.5, 0.75), ACT_LEAKY: (0.1, 0.0),
    ACT_HSIG: (0.2, 0.5), ACT_HSWISH: (0.0, 0.0), ACT_SIGMOID: (0.0, 0.0), ACT_SILU: (0.0, 0.0),
    ACT_TANH: (0.0, 0.0), ACT_MISH: (0.0, 0.0), ACT_PRELU: (0.0, 0.0), ACT_ELU: (0.7, 0.0),
    ACT_GELU: (0.0, 0.0),
}


@pytest.fixture(params=ISAS)
def isa(request):
    prev = dw.set_isa(request.param)
    yield request.param
    dw.set_isa(prev)


def act_ref(kind, x, p0, p1, slope):
    from math import erf
    if kind == ACT_NONE:
        return x
    if kind == ACT_RELU:
        return np.maximum(x, 0)
    if kind == ACT_CLIP:
        return np.minimum(np.maximum(x, p0), p1)
    if kind == ACT_LEAKY:
        return np.where(x >= 0, x, p0 * x)
    if kind == ACT_HSIG:
        return np.clip(p0 * x + p1, 0, 1)
    if kind == ACT_HSWISH:
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if kind == ACT_SIGMOID:
        return 1 / (1 + np.exp(-x))
    if kind == ACT_SILU:
        return x / (1 + np.exp(-x))
    if kind == ACT_TANH:
        return np.tanh(x)
    if kind == ACT_MISH:
        return x * np.tanh(np.log1p(np.exp(x)))
    if kind == ACT_PRELU:
        s = slope.reshape((1, -1) + (1,) * (x.ndim - 2))
        return np.where(x >= 0, x, s * x)
    if kind == ACT_ELU:
        return np.where(x >= 0, x, p0 * (np.exp(x) - 1))
    if kind == ACT_GELU:
        return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    raise ValueError(kind)


def conv_ref(x, w, bias, group, strides, pads_begin, out_dhw, dilations):
    """x[N, C, D, H, W], w[M, C/group, kd, kh, kw] -> [N, M, *out_dhw] (float64)."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    k3 = w.shape[2:]
    pads_end = []
    for i in range(3):
        need = (out_dhw[i] - 1) * strides[i] + (k3[i] - 1) * dilations[i] + 1 - pads_begin[i]
        pads_end.append(max(0, need - x.shape[2 + i]))
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads_begin[i], pads_end[i]) for i in range(3)])
    opg = M // group
    out = np.zeros((N, group, opg) + tuple(out_dhw))
    wg = w.reshape(group, opg, Cg, *k3)
    for kz, ky, kx in itertools.product(*(range(k) for k in k3)):
        sl = [slice(None), slice(None)]
        for i, kk in enumerate((kz, ky, kx)):
            st_ = kk * dilations[i]
            sl.append(slice(st_, st_ + strides[i] * (out_dhw[i] - 1) + 1, strides[i]))
        xs = xp[tuple(sl)].reshape((N, group, Cg) + tuple(out_dhw))
        out += np.einsum("ngc...,goc->ngo...", xs, wg[:, :, :, kz, ky, kx])
    out = out.reshape((N, M) + tuple(out_dhw))
    if bias is not None:
        out += bias.reshape((1, M, 1, 1, 1))
    return out


def to_blocked(x):
    N, C = x.shape[:2]
    S = int(np.prod(x.shape[2:]))
    CB = (C + 7) // 8
    xp = np.zeros((N, CB * 8, S), np.float32)
    xp[:, :C] = x.reshape(N, C, S)
    return np.ascontiguousarray(xp.reshape(N, CB, 8, S).transpose(0, 1, 3, 2))


def from_blocked(xb, C, dhw):
    N, CB, S, _ = xb.shape
    return xb.transpose(0, 1, 3, 2).reshape(N, CB * 8, S)[:, :C].reshape((N, C) + tuple(dhw))


def out_size(i, k, s, pb, pe, d):
    return (i + pb + pe - ((k - 1) * d + 1)) // s + 1


def run_case(rng, N, C, M, group, in_dhw, k3, s3, pb3, pe3, d3, act=ACT_NONE, residual=False,
             n_threads=1, use_bias=True, via_dw=None, mask=True):
    out_dhw = tuple(out_size(in_dhw[i], k3[i], s3[i], pb3[i], pe3[i], d3[i]) for i in range(3))
    assert min(out_dhw) >= 1
    x = rng.standard_normal((N, C) + tuple(in_dhw)).astype(np.float32)
    w = rng.standard_normal((M, C // group) + tuple(k3)).astype(np.float32)
    bias = rng.standard_normal(M).astype(np.float32) if use_bias else None
    p0, p1 = ACT_PARAMS[act]
    slope = rng.standard_normal(M).astype(np.float32) * 0.3 if act == ACT_PRELU else None
    ref = conv_ref(x, w, bias, group, s3, pb3, out_dhw, d3)
    MB = (M + 7) // 8
    So = int(np.prod(out_dhw))
    res_b = None
    if residual:
        res = rng.standard_normal(ref.shape).astype(np.float32)
        ref = ref + res
        res_b = to_blocked(res)
    ref = act_ref(act, ref, p0, p1, slope)
    xb = to_blocked(x)
    out_b = np.full((N, MB, So, 8), np.nan, np.float32)
    depthwise = group == C and (via_dw if via_dw is not None else True)
    if depthwise:
        packed = dw.pack_dw_weights(w, multiplier=M // C)
        dw.dwconv_nchwc(xb, packed, bias, out_b, in_dhw, out_dhw, k3, s3, pb3, d3, act, p0, p1,
                        slope, res_b, n_threads, M if mask else 0)
    else:
        packed = dw.pack_grouped_weights(w, group)
        dw.groupconv_nchwc(xb, packed, bias, out_b, in_dhw, out_dhw, k3, s3, pb3, d3, act, p0, p1,
                           slope, res_b, n_threads, group, C, M if mask else 0)
    got = from_blocked(out_b, M, out_dhw)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * (1 + np.abs(ref).max()))
    if mask:
        pad = out_b.transpose(0, 1, 3, 2).reshape(N, MB * 8, So)[:, M:]
        assert np.all(pad == 0), "padded output lanes must be zero"
    return out_b


def hw(k, s=1, pb=0, pe=0, d=1, i=9):
    """2D helper: returns in_dhw, k3, s3, pb3, pe3, d3 for square problems."""
    return (1, i, i), (1, k, k), (1, s, s), (0, pb, pb), (0, pe, pe), (1, d, d)


# ---------------------------------------------------------------- depthwise 2D
@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("pads", [(0, 0), (1, 1), (2, 1), (0, 3)])
def test_dw2d_grid(isa, k, s, d, pads):
    rng = np.random.default_rng(k * 100 + s * 10 + d)
    i = 19
    if (k - 1) * d + 1 > i + sum(pads):
        pytest.skip("kernel larger than padded input")
    run_case(rng, 1, 12, 12, 12, (1, i, i), (1, k, k), (1, s, s), (0, pads[0], pads[1]),
             (0, pads[1], pads[0]), (1, d, d))


@pytest.mark.parametrize("kshape", [(3, 1), (1, 3), (7, 1), (1, 7), (5, 3), (2, 2)])
@pytest.mark.parametrize("s", [(1, 1), (2, 2), (1, 2)])
def test_dw2d_rect(isa, kshape, s):
    rng = np.random.default_rng(7)
    kh, kw = kshape
    run_case(rng, 2, 20, 20, 20, (1, 13, 30), (1, kh, kw), (1,) + s, (0, kh // 2, kw // 2),
             (0, kh // 2, kw // 2), (1, 1, 1))


@pytest.mark.parametrize("d", [2, 4, 6, 12])
def test_dw_atrous(isa, d):
    rng = np.random.default_rng(d)
    run_case(rng, 1, 16, 16, 16, (1, 33, 33), (1, 3, 3), (1, 1, 1), (0, d, d), (0, d, d),
             (1, d, d))


@pytest.mark.parametrize("act", list(range(13)))
@pytest.mark.parametrize("residual", [False, True])
def test_dw_epilogue(isa, act, residual):
    rng = np.random.default_rng(act)
    run_case(rng, 1, 13, 13, 13, *hw(3, 1, 1, 1, i=21), act=act, residual=residual)


@pytest.mark.parametrize("act", [ACT_NONE, ACT_HSIG, ACT_SIGMOID])
def test_dw_no_bias_no_mask(isa, act):
    rng = np.random.default_rng(1)
    out_b = run_case(rng, 1, 8, 8, 8, *hw(3, 2, 1, 0, i=16), act=act, use_bias=False,
                     mask=False)
    assert np.isfinite(out_b).all()


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("C", [3, 8, 17, 64])
def test_dw_threads_batch(isa, n_threads, C):
    rng = np.random.default_rng(C)
    run_case(rng, 2, C, C, C, *hw(3, 1, 1, 1, i=40), act=ACT_RELU, residual=True,
             n_threads=n_threads)


def test_dw_1d(isa):
    rng = np.random.default_rng(3)
    for k, s, d in [(3, 1, 1), (5, 2, 1), (3, 1, 4), (7, 3, 2)]:
        run_case(rng, 2, 10, 10, 10, (1, 1, 50), (1, 1, k), (1, 1, s), (0, 0, 2), (0, 0, 1),
                 (1, 1, d))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_dw_3d(isa, n_threads):
    rng = np.random.default_rng(4)
    run_case(rng, 2, 9, 9, 9, (6, 10, 11), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1),
             n_threads=n_threads)
    run_case(rng, 1, 16, 16, 16, (7, 9, 12), (3, 5, 3), (2, 2, 1), (1, 0, 2), (0, 2, 1),
             (2, 1, 2), act=ACT_CLIP, residual=True, n_threads=n_threads)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("C", [4, 6, 8, 11])
def test_dw_multiplier(isa, m, C):
    rng = np.random.default_rng(m * 10 + C)
    run_case(rng, 2, C, C * m, C, *hw(3, 2, 1, 1, i=15), act=ACT_LEAKY, residual=True,
             n_threads=2)


def test_dw_kernel_larger_than_input(isa):
    rng = np.random.default_rng(5)
    run_case(rng, 1, 8, 8, 8, (1, 3, 4), (1, 7, 7), (1, 1, 1), (0, 3, 3), (0, 3, 3), (1, 1, 1))
    run_case(rng, 1, 8, 8, 8, (1, 5, 5), (1, 3, 3), (1, 1, 1), (0, 6, 6), (0, 6, 6), (1, 6, 6))


# ---------------------------------------------------------------- grouped
@pytest.mark.parametrize("C,M,group", [
    (128, 128, 32),   # ResNeXt 4 ch/group
    (32, 32, 16),     # 2 ch/group
    (64, 64, 8),      # 8 ch/group
    (64, 64, 4),      # 16 ch/group
    (24, 48, 12),     # 2 in -> 4 out per group
    (12, 12, 4),      # 3 ch/group (not a divisor of 8)
    (20, 10, 5),      # 4 in -> 2 out
    (16, 16, 16),     # depthwise through the grouped path
])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_grouped(isa, C, M, group, s):
    rng = np.random.default_rng(C + M + group + s)
    run_case(rng, 2, C, M, group, *hw(3, s, 1, 1, i=14), act=ACT_RELU, residual=True,
             n_threads=2, via_dw=False)


@pytest.mark.parametrize("act", [ACT_NONE, ACT_HSWISH, ACT_PRELU, ACT_TANH])
def test_grouped_epilogue_dilation_3d(isa, act):
    rng = np.random.default_rng(act)
    run_case(rng, 1, 32, 32, 8, (1, 17, 15), (1, 3, 5), (1, 1, 2), (0, 2, 3), (0, 1, 2),
             (1, 2, 1), act=act, via_dw=False)
    run_case(rng, 1, 16, 16, 4, (5, 6, 7), (3, 3, 3), (1, 2, 1), (1, 1, 1), (1, 1, 1),
             (1, 1, 1), act=act, via_dw=False)


def test_isa_switch():
    prev = dw.set_isa("portable")
    assert dw.get_isa() == "portable"
    dw.set_isa("auto")
    dw.set_isa(prev)
    with pytest.raises(ValueError):
        dw.set_isa("neon")


def test_bad_args():
    x = np.zeros((1, 1, 9, 8), np.float32)
    w = dw.pack_dw_weights(np.ones((8, 1, 3, 3), np.float32))
    y = np.zeros((1, 1, 9, 8), np.float32)
    with pytest.raises(ValueError):
        dw.dwconv_nchwc(x, w, None, y, (1, 3, 3), (1, 3, 3), (1, 5, 5), (1, 1, 1), (0, 2, 2),
                        (1, 1, 1), 0, 0, 0, None, None, 1, 0)
    with pytest.raises(ValueError):  # PRELU without slope
        dw.dwconv_nchwc(x, w, None, y, (1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 1, 1), (0, 1, 1),
                        (1, 1, 1), 10, 0, 0, None, None, 1, 0)
    with pytest.raises(ValueError):
        dw.dwconv_nchwc(x, w, None, y[:, :, :4], (1, 3, 3), (1, 3, 3), (1, 3, 3), (1, 1, 1),
                        (0, 1, 1), (1, 1, 1), 0, 0, 0, None, None, 1)


# ---------------------------------------------------------------- hypothesis
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hypothesis_random(data):
    isa_name = data.draw(st.sampled_from(ISAS))
    prev = dw.set_isa(isa_name)
    try:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
        ndim = data.draw(st.integers(1, 3))
        in_dhw, k3, s3, pb3, pe3, d3 = [1] * 3, [1] * 3, [1] * 3, [0] * 3, [0] * 3, [1] * 3
        for i in range(3 - ndim, 3):
            k3[i] = data.draw(st.integers(1, 5))
            d3[i] = data.draw(st.integers(1, 3))
            s3[i] = data.draw(st.integers(1, 3))
            pb3[i] = data.draw(st.integers(0, 3))
            pe3[i] = data.draw(st.integers(0, 3))
            span = (k3[i] - 1) * d3[i] + 1
            lo = max(1, span - pb3[i] - pe3[i])
            in_dhw[i] = data.draw(st.integers(lo, max(lo, 20 if ndim < 3 else 8)))
        kind = data.draw(st.sampled_from(["dw", "mult", "group"]))
        if kind == "dw":
            C = data.draw(st.integers(1, 20)); M = C; group = C
        elif kind == "mult":
            C = data.draw(st.integers(1, 9)); M = C * data.draw(st.integers(2, 4)); group = C
        else:
            group = data.draw(st.integers(1, 8))
            C = group * data.draw(st.integers(1, 5))
            M = group * data.draw(st.integers(1, 5))
        act = data.draw(st.sampled_from([ACT_NONE, ACT_RELU, ACT_CLIP, ACT_HSWISH, ACT_PRELU,
                                         ACT_SILU]))
        run_case(rng, data.draw(st.integers(1, 2)), C, M, group, tuple(in_dhw), tuple(k3),
                 tuple(s3), tuple(pb3), tuple(pe3), tuple(d3), act=act,
                 residual=data.draw(st.booleans()), n_threads=data.draw(st.sampled_from([1, 2])),
                 use_bias=data.draw(st.booleans()))
    finally:
        dw.set_isa(prev)
