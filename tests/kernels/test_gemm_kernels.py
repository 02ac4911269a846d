"""Packed SGEMM kernels vs numpy (float64 reference), and the FMA peak probe."""
import math

import numpy as np
import pytest

gm = pytest.importorskip("fastcnn._kernels.gemm")

ISAS = ["auto", "portable"]


@pytest.fixture(params=ISAS)
def isa(request):
    prev = gm.set_isa(request.param)
    yield request.param
    gm.set_isa(prev)


def _sig(v):
    return 1 / (1 + np.exp(-v))


def ref_act(y, kind, p0, p1, slope, axis):
    from math import erf
    sl = None
    if slope is not None:
        sl = slope.astype(np.float64)[:, None] if axis == 0 else slope.astype(np.float64)[None, :]
    return {
        0: lambda v: v, 1: lambda v: np.maximum(v, 0), 2: lambda v: np.clip(v, p0, p1),
        3: lambda v: np.where(v >= 0, v, p0 * v), 4: lambda v: np.clip(p0 * v + p1, 0, 1),
        5: lambda v: v * np.clip(v / 6 + 0.5, 0, 1), 6: _sig, 7: lambda v: v * _sig(v), 8: np.tanh,
        9: lambda v: v * np.tanh(np.log1p(np.exp(v))), 10: lambda v: np.where(v >= 0, v, sl * v),
        11: lambda v: np.where(v >= 0, v, p0 * (np.exp(v) - 1)),
        12: lambda v: 0.5 * v * (1 + np.vectorize(erf)(v / math.sqrt(2))),
    }[kind](y)


PARAMS = {2: (-0.5, 0.7), 3: (0.1, 0), 4: (0.2, 0.5), 11: (0.8, 0)}

SHAPES = [(1, 1, 1), (6, 16, 8), (7, 17, 5), (13, 40, 300), (64, 256, 64), (100, 33, 513), (5, 1000, 20),
          (257, 3, 7),
          # 1-2 rows (batch-1 Linear): the 4-phase accumulators, K % 4 tails, several K
          # chunks, column slabs outer, an N tail
          (1, 1000, 1280), (2, 37, 517), (1, 16, 3), (2, 24, 258)]


def check(got, exp):
    scale = max(1.0, float(np.abs(exp).max()))
    np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-4 * scale * 4)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("variant", ["packed_b", "packed_a", "raw"])
def test_sgemm(shape, n_threads, variant, isa):
    M, N, K = shape
    rng = np.random.default_rng(M * 1000 + N + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    exp = a.astype(np.float64) @ b.astype(np.float64)
    if variant == "packed_b":
        gm.sgemm_packed(a, gm.pack_b(b), c, n_threads=n_threads)
    elif variant == "packed_a":
        gm.sgemm_packed_a(gm.pack_a(a), b, c, n_threads=n_threads)
    else:
        gm.sgemm(a, b, c, n_threads=n_threads)
    check(c, exp)


@pytest.mark.parametrize("act", list(range(13)))
@pytest.mark.parametrize("bias_axis", [0, 1])
@pytest.mark.parametrize("accumulate", [False, True])
def test_epilogue(act, bias_axis, accumulate, isa):
    M, N, K = 19, 37, 300
    rng = np.random.default_rng(act)
    a = rng.standard_normal((M, K)).astype(np.float32) * 0.1
    b = rng.standard_normal((K, N)).astype(np.float32)
    c0 = rng.standard_normal((M, N)).astype(np.float32)
    bias = rng.standard_normal(M if bias_axis == 0 else N).astype(np.float32)
    slope = rng.standard_normal(M if bias_axis == 0 else N).astype(np.float32) if act == 10 else None
    p0, p1 = PARAMS.get(act, (0, 0))
    y = a.astype(np.float64) @ b + (bias[:, None] if bias_axis == 0 else bias[None, :])
    if accumulate:
        y = y + c0
    exp = ref_act(y, act, p0, p1, slope, bias_axis)
    for variant in ("packed_b", "packed_a", "raw"):
        c = c0.copy()
        kw = dict(bias=bias, bias_axis=bias_axis, act_kind=act, act_p0=p0, act_p1=p1, slope=slope,
                  accumulate=accumulate, n_threads=2)
        if variant == "packed_b":
            gm.sgemm_packed(a, gm.pack_b(b), c, **kw)
        elif variant == "packed_a":
            gm.sgemm_packed_a(gm.pack_a(a), b, c, **kw)
        else:
            gm.sgemm(a, b, c, **kw)
        check(c, exp)


def test_pack_trans():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((9, 21)).astype(np.float32)
    b = rng.standard_normal((21, 18)).astype(np.float32)
    np.testing.assert_array_equal(gm.pack_b(b.T.copy(), trans=True), gm.pack_b(b))
    np.testing.assert_array_equal(gm.pack_a(a.T.copy(), trans=True), gm.pack_a(a))
    pb = gm.pack_b(b)
    assert pb.shape == (2, 21, 16) and pb[1, 3, 1] == b[3, 17] and pb[1, 3, 2] == 0
    pa = gm.pack_a(a)
    assert pa.shape == (2, 21, 6) and pa[1, 4, 2] == a[8, 4] and pa[1, 4, 3] == 0


def test_errors():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError):
        gm.sgemm(a, np.zeros((5, 2), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError):
        gm.sgemm(a.astype(np.float64), np.zeros((4, 2), np.float32), np.zeros((3, 2), np.float32))


def test_peak_probe():
    g1 = gm.fma_peak_gflops(1, 0.05)
    assert g1 > 0.5
    assert gm.fma_peak_gflops(1, 0.02, isa="portable") > 0.1


hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 70), N=st.integers(1, 70), K=st.integers(1, 600), nt=st.sampled_from([1, 2]),
       variant=st.sampled_from(["packed_b", "packed_a", "raw"]), isa=st.sampled_from(ISAS))
def test_sgemm_random(M, N, K, nt, variant, isa):
    rng = np.random.default_rng(M + N + K)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    prev = gm.set_isa(isa)
    try:
        if variant == "packed_b":
            gm.sgemm_packed(a, gm.pack_b(b), c, n_threads=nt)
        elif variant == "packed_a":
            gm.sgemm_packed_a(gm.pack_a(a), b, c, n_threads=nt)
        else:
            gm.sgemm(a, b, c, n_threads=nt)
    finally:
        gm.set_isa(prev)
    check(c, a.astype(np.float64) @ b)


def test_sgemm_reads_read_only_operands():
    """Weights straight from the model file are read-only views; the GEMM entry points take
    them as const (only c is written)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((7, 9)).astype(np.float32)
    b = rng.standard_normal((9, 20)).astype(np.float32)
    bias = rng.standard_normal(20).astype(np.float32)
    for arr in (a, b, bias):
        arr.flags.writeable = False
    want = a @ b + bias
    c = np.zeros((7, 20), np.float32)
    np.testing.assert_allclose(gm.sgemm(a, b, c, bias=bias), want, rtol=1e-5, atol=1e-5)
    pb = gm.pack_b(b)
    pb.flags.writeable = False
    c[...] = 0
    np.testing.assert_allclose(gm.sgemm_packed(a, pb, c, bias=bias), want, rtol=1e-5, atol=1e-5)
    pa = gm.pack_a(a)
    pa.flags.writeable = False
    c[...] = 0
    np.testing.assert_allclose(gm.sgemm_packed_a(pa, b, c), a @ b, rtol=1e-5, atol=1e-5)


def test_packed_call_native_step():
    """The executor step form of sgemm_packed (a Gemm node with constant B): same result,
    shapes checked when the step is made."""
    from fastcnn._kernels.executor import Program
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 70)).astype(np.float32)
    b = rng.standard_normal((70, 45)).astype(np.float32)
    bias = rng.standard_normal(45).astype(np.float32)
    c = np.full((3, 45), np.nan, np.float32)
    step = gm.sgemm_packed_call(a, gm.pack_b(b), c, bias, 1, False, 2)
    Program([step]).run()
    check(c, a @ b + bias)
    with pytest.raises(ValueError, match="shape mismatch"):
        gm.sgemm_packed_call(a[:, :60].copy(), gm.pack_b(b), c, bias, 1, False, 1)
