"""com.fastcnn custom ops (LocallyConnected, TiledConv, WeightedAveragePool) against numpy
loops written from the definitions, plus the identities with Conv / AveragePool."""
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

import fastcnn
from fastcnn import custom_ops as co
from fastcnn.errors import FastCNNError, InvalidGraphError, ShapeError
from fastcnn.ops.custom import gaussian_kernel

try:
    from fastcnn._kernels import local_conv as K
except ImportError:  # pragma: no cover
    K = None

TOL = dict(rtol=2e-4, atol=2e-4)


# ---------------------------------------------------------------- references (definitions)
def out_shape(sp, k, s, p, d):
    nd = len(sp)
    return tuple((sp[a] + p[a] + p[a + nd] - (k[a] - 1) * d[a] - 1) // s[a] + 1 for a in range(nd))


def ref_banked(x, bank_w, bias, s, p, d, group):
    """Y[n, m, o] = Σ_{c, κ} W_o[m, c, κ] · Xpad[n, g(m)·C/group + c, o·s + κ·d] + bias(m, o)."""
    N, C = x.shape[:2]
    nd = x.ndim - 2
    w0 = bank_w((0,) * nd)
    M, Cg = w0.shape[:2]
    k = w0.shape[2:]
    O = out_shape(x.shape[2:], k, s, p, d)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p[a], p[a + nd]) for a in range(nd)])
    y = np.zeros((N, M) + O)
    for o in itertools.product(*[range(v) for v in O]):
        W = bank_w(o).astype(np.float64)
        sl = tuple(slice(o[a] * s[a], o[a] * s[a] + (k[a] - 1) * d[a] + 1, d[a]) for a in range(nd))
        patch = xp[(slice(None), slice(None)) + sl]
        for m in range(M):
            g = m // (M // group)
            acc = (patch[:, g * Cg:(g + 1) * Cg] * W[m]).reshape(N, -1).sum(1)
            y[(slice(None), m) + o] = acc + (bias(m, o) if bias is not None else 0.0)
    return y


def ref_local(x, W, B, s, p, d, group):
    nd = x.ndim - 2
    return ref_banked(x, lambda o: W[o], None if B is None else (lambda m, o: B[(m,) + o]),
                      s, p, d, group)


def ref_tiled(x, W, B, s, p, d, group):
    nd = x.ndim - 2
    T = W.shape[:nd]
    return ref_banked(x, lambda o: W[tuple(o[a] % T[a] for a in range(nd))],
                      None if B is None else (lambda m, o: B[m]), s, p, d, group)


def ref_wap(x, Kw, s, p, cip):
    """Σ_κ K[κ]·Xpad[o·s + κ] / Σ K over the taps inside the input (cip=0) or all (cip=1)."""
    N, C = x.shape[:2]
    nd = x.ndim - 2
    k = Kw.shape
    O = out_shape(x.shape[2:], k, s, p, (1,) * nd)
    pw = [(0, 0), (0, 0)] + [(p[a], p[a + nd]) for a in range(nd)]
    xp = np.pad(x.astype(np.float64), pw)
    inside = np.pad(np.ones(x.shape[2:]), pw[2:])
    y = np.zeros((N, C) + O)
    for o in itertools.product(*[range(v) for v in O]):
        sl = tuple(slice(o[a] * s[a], o[a] * s[a] + k[a]) for a in range(nd))
        num = (xp[(slice(None), slice(None)) + sl] * Kw).reshape(N, C, -1).sum(-1)
        den = Kw.sum() if cip else (Kw * inside[sl]).sum()
        y[(slice(None), slice(None)) + o] = num / den if den > 0 else 0.0
    return y


# ---------------------------------------------------------------- running
def run(model, feeds, threads=(1, 2)):
    outs = [fastcnn.InferenceSession(model, num_threads=nt).run(None, feeds)[0] for nt in threads]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])     # every output is computed by one thread
    return outs[0]


def conv_model(x_shape, W, B, s, p, d, group, dtype=np.float32):
    inits = [numpy_helper.from_array(W.astype(dtype), "W")]
    ins = ["x", "W"]
    if B is not None:
        inits.append(numpy_helper.from_array(B.astype(dtype), "B"))
        ins.append("B")
    node = helper.make_node("Conv", ins, ["y"], name="conv", strides=list(s), pads=list(p),
                            dilations=list(d), group=group)
    return co.make_model([node], {"x": x_shape}, ["y"], initializers=inits, dtype=dtype)


# (spatial, kernel, strides, pads, dilations, C, M, group)
CASES = [
    ((9,), (3,), (1,), (1, 1), (1,), 4, 6, 1),
    ((11,), (3,), (2,), (2, 1), (2,), 4, 6, 2),
    ((7, 6), (3, 2), (1, 2), (1, 0, 2, 1), (1, 1), 3, 5, 1),
    ((8, 8), (3, 3), (2, 2), (1, 1, 1, 1), (2, 1), 4, 4, 2),
    ((6, 7), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4, 4, 4),        # depthwise
    ((5, 5), (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 2, 37, 1),       # 3 blocks of 16 channels
    ((4, 5, 5), (2, 3, 3), (1, 2, 1), (1, 0, 1, 0, 1, 1), (1, 1, 2), 2, 3, 1),
    ((5, 4, 4), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), 4, 6, 2),
]
IDS = [f"{len(c[0])}d-{i}" for i, c in enumerate(CASES)]


def _weights(rng, case, banks, lc_bias):
    sp, k, s, p, d, C, M, g = case
    W = rng.standard_normal(tuple(banks) + (M, C // g) + k).astype(np.float32)
    O = out_shape(sp, k, s, p, d)
    B = rng.standard_normal((M,) + O if lc_bias else (M,)).astype(np.float32)
    return W, B, O


@pytest.mark.parametrize("batch", [2])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_locally_connected(case, batch, rng):
    sp, k, s, p, d, C, M, g = case
    O = out_shape(sp, k, s, p, d)
    W, B, _ = _weights(rng, case, O, True)
    x = rng.standard_normal((batch, C) + sp).astype(np.float32)
    m = co.make_model([co.locally_connected_node("x", "y", W, B, strides=s, pads=p, dilations=d,
                                                 group=g)], {"x": x.shape}, ["y"])
    y = run(m, {"x": x})
    np.testing.assert_allclose(y, ref_local(x, W, B, s, p, d, g), **TOL)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tiled_conv(case, rng):
    sp, k, s, p, d, C, M, g = case
    O = out_shape(sp, k, s, p, d)
    T = tuple(min(2 + a, o) for a, o in enumerate(O))
    W, B, _ = _weights(rng, case, T, False)
    x = rng.standard_normal((2, C) + sp).astype(np.float32)
    m = co.make_model([co.tiled_conv_node("x", "y", W, B, strides=s, pads=p, dilations=d,
                                          group=g)], {"x": x.shape}, ["y"])
    y = run(m, {"x": x})
    np.testing.assert_allclose(y, ref_tiled(x, W, B, s, p, d, g), **TOL)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_identities_with_conv(case, rng):
    """TiledConv T=1 == Conv; LocallyConnected with one filter everywhere == Conv;
    TiledConv with T = output size == LocallyConnected."""
    sp, k, s, p, d, C, M, g = case
    nd = len(sp)
    O = out_shape(sp, k, s, p, d)
    W = rng.standard_normal((M, C // g) + k).astype(np.float32)
    B = rng.standard_normal(M).astype(np.float32)
    x = rng.standard_normal((2, C) + sp).astype(np.float32)
    kw = dict(strides=s, pads=p, dilations=d, group=g)
    y_conv = run(conv_model(x.shape, W, B, s, p, d, g), {"x": x})
    t1 = co.make_model([co.tiled_conv_node("x", "y", W.reshape((1,) * nd + W.shape), B, **kw)],
                       {"x": x.shape}, ["y"])
    np.testing.assert_allclose(run(t1, {"x": x}), y_conv, **TOL)
    W_lc = np.ascontiguousarray(np.broadcast_to(W, O + W.shape))
    B_lc = np.ascontiguousarray(np.broadcast_to(B.reshape((M,) + (1,) * nd), (M,) + O))
    lc = co.make_model([co.locally_connected_node("x", "y", W_lc, B_lc, **kw)],
                       {"x": x.shape}, ["y"])
    np.testing.assert_allclose(run(lc, {"x": x}), y_conv, **TOL)
    # T = output size: a locally connected layer (bias per channel on both sides)
    Wt = rng.standard_normal(O + (M, C // g) + k).astype(np.float32)
    y_t = run(co.make_model([co.tiled_conv_node("x", "y", Wt, B, **kw)], {"x": x.shape}, ["y"]),
              {"x": x})
    y_l = run(co.make_model([co.locally_connected_node("x", "y", Wt, B_lc, **kw)],
                            {"x": x.shape}, ["y"]), {"x": x})
    np.testing.assert_allclose(y_t, y_l, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 5, 9])
def test_batch_tiles(batch, rng):
    """Items hold ≤ 4 images of one position (LC) or ≤ 4 positions of one phase (TiledConv)."""
    case = ((6, 5), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3, 20, 1)
    sp, k, s, p, d, C, M, g = case
    O = out_shape(sp, k, s, p, d)
    x = rng.standard_normal((batch, C) + sp).astype(np.float32)
    W, B, _ = _weights(rng, case, O, True)
    y = run(co.make_model([co.locally_connected_node("x", "y", W, B, pads=p)], {"x": x.shape},
                          ["y"]), {"x": x})
    np.testing.assert_allclose(y, ref_local(x, W, B, s, p, d, g), **TOL)
    W, B, _ = _weights(rng, case, (3, 2), False)
    y = run(co.make_model([co.tiled_conv_node("x", "y", W, B, pads=p)], {"x": x.shape}, ["y"]),
            {"x": x})
    np.testing.assert_allclose(y, ref_tiled(x, W, B, s, p, d, g), **TOL)


def test_tiled_larger_than_output_and_no_bias(rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    W = rng.standard_normal((7, 4, 2, 3, 3, 3)).astype(np.float32)   # T beyond the 3x3 output
    y = run(co.make_model([co.tiled_conv_node("x", "y", W)], {"x": x.shape}, ["y"]), {"x": x})
    np.testing.assert_allclose(y, ref_tiled(x, W, None, (1, 1), (0,) * 4, (1, 1), 1), **TOL)


@pytest.mark.skipif(K is None, reason="kernels not built")
@pytest.mark.parametrize("isa", ["portable", "avx2", "avx512"])
def test_every_isa(isa, rng):
    try:
        prev = K.set_isa(isa)
    except ValueError:
        pytest.skip(f"{isa} not supported here")
    try:
        for M, batch in ((5, 1), (16, 2), (40, 3), (70, 6)):
            case = ((5, 6), (3, 2), (1, 1), (1, 0, 1, 1), (1, 1), 3, M, 1)
            sp, k, s, p, d, C, M, g = case
            O = out_shape(sp, k, s, p, d)
            W, B, _ = _weights(rng, case, O, True)
            x = rng.standard_normal((batch, C) + sp).astype(np.float32)
            y = run(co.make_model([co.locally_connected_node("x", "y", W, B, pads=p)],
                                  {"x": x.shape}, ["y"]), {"x": x})
            np.testing.assert_allclose(y, ref_local(x, W, B, s, p, d, g), **TOL)
            Wt = W[:2, :2]
            y = run(co.make_model([co.tiled_conv_node("x", "y", Wt, B[:, 0, 0], pads=p)],
                                  {"x": x.shape}, ["y"]), {"x": x})
            np.testing.assert_allclose(y, ref_tiled(x, Wt, B[:, 0, 0], s, p, d, g), **TOL)
        # WeightedAveragePool rows wide enough for the vector blocks (stride 1 and 2) and
        # the strided tap-by-tap path (stride 3), odd widths for the clamped last block
        for w, k, s, p, cip in ((67, 3, 1, 1, 0), (70, 3, 2, 1, 0), (71, 5, 2, 2, 1),
                                (40, 2, 2, 0, 0), (64, 4, 3, 1, 1), (37, 3, 2, 0, 0)):
            x = rng.standard_normal((1, 2, 3, w)).astype(np.float32)
            Kw = rng.random((3, k)).astype(np.float32) + 0.1
            m = co.make_model([co.weighted_average_pool_node(
                "x", "y", [3, k], K=Kw, strides=[1, s], pads=[1, p, 1, p],
                count_include_pad=cip)], {"x": x.shape}, ["y"])
            np.testing.assert_allclose(run(m, {"x": x}), ref_wap(x, Kw.astype(np.float64), (1, s),
                                                                 (1, p, 1, p), cip), **TOL)
    finally:
        K.set_isa(prev)


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_other_dtypes(dtype, rng):
    case = CASES[3]
    sp, k, s, p, d, C, M, g = case
    O = out_shape(sp, k, s, p, d)
    W, B, _ = _weights(rng, case, O, True)
    x = rng.standard_normal((2, C) + sp).astype(np.float32)
    m = co.make_model([co.locally_connected_node("x", "y", W.astype(dtype), B.astype(dtype),
                                                 strides=s, pads=p, dilations=d, group=g)],
                      {"x": x.shape}, ["y"], dtype=dtype)
    y = run(m, {"x": x.astype(dtype)})
    assert y.dtype == dtype
    ref = ref_local(x.astype(dtype).astype(np.float64), W.astype(dtype), B.astype(dtype),
                    s, p, d, g)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-2, atol=5e-2)
    np.testing.assert_allclose(y.astype(np.float64), ref, **tol)
    T = W[:2, :3]
    m = co.make_model([co.tiled_conv_node("x", "y", T.astype(dtype), B[:, 0, 0].astype(dtype),
                                          strides=s, pads=p, dilations=d, group=g)],
                      {"x": x.shape}, ["y"], dtype=dtype)
    y = run(m, {"x": x.astype(dtype)})
    ref = ref_tiled(x.astype(dtype).astype(np.float64), T.astype(dtype),
                    B[:, 0, 0].astype(dtype), s, p, d, g)
    np.testing.assert_allclose(y.astype(np.float64), ref, **tol)
    y = run(co.make_model([co.weighted_average_pool_node("x", "y", [3, 3], pads=[1, 1, 1, 1])],
                          {"x": x.shape}, ["y"], dtype=dtype), {"x": x.astype(dtype)})
    ref = ref_wap(x.astype(dtype).astype(np.float64), gaussian_kernel((3, 3)), (1, 1),
                  (1, 1, 1, 1), 0)
    np.testing.assert_allclose(y.astype(np.float64), ref, **tol)


def test_weights_and_bias_as_graph_inputs(rng):
    """W and B computed at run time (not initializers): packed per run."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    W = rng.standard_normal((4, 4, 5, 3, 3, 3)).astype(np.float32)
    B = rng.standard_normal((5, 4, 4)).astype(np.float32)
    node = helper.make_node("LocallyConnected", ["x", "w", "b"], ["y"], name="lc",
                            domain="com.fastcnn")
    m = co.make_model([node], {"x": x.shape, "w": W.shape, "b": B.shape}, ["y"])
    y = run(m, {"x": x, "w": W, "b": B})
    np.testing.assert_allclose(y, ref_local(x, W, B, (1, 1), (0,) * 4, (1, 1), 1), **TOL)
    Wt = W[:2, :3]
    node = helper.make_node("TiledConv", ["x", "w", "b"], ["y"], name="tc", domain="com.fastcnn")
    m = co.make_model([node], {"x": x.shape, "w": Wt.shape, "b": (5,)}, ["y"])
    y = run(m, {"x": x, "w": Wt, "b": B[:, 0, 0].copy()})
    np.testing.assert_allclose(y, ref_tiled(x, Wt, B[:, 0, 0], (1, 1), (0,) * 4, (1, 1), 1), **TOL)


# ---------------------------------------------------------------- WeightedAveragePool
WAP_CASES = [
    ((9,), (3,), (1,), (1, 1)),
    ((10,), (4,), (2,), (0, 3)),
    ((7, 6), (3, 3), (1, 1), (1, 1, 1, 1)),
    ((9, 8), (3, 2), (2, 1), (0, 1, 2, 1)),
    ((8, 9), (5, 5), (2, 3), (2, 2, 2, 2)),
    ((4, 5, 6), (3, 3, 3), (1, 2, 1), (1, 1, 0, 1, 0, 1)),
    ((5, 5, 5), (2, 3, 2), (2, 1, 2), (0, 1, 1, 1, 0, 1)),
]
WAP_IDS = [f"{len(c[0])}d-{i}" for i, c in enumerate(WAP_CASES)]


@pytest.mark.parametrize("cip", [0, 1])
@pytest.mark.parametrize("case", WAP_CASES, ids=WAP_IDS)
def test_weighted_average_pool(case, cip, rng):
    sp, k, s, p = case
    x = rng.standard_normal((2, 3) + sp).astype(np.float32)
    # the Gaussian default
    m = co.make_model([co.weighted_average_pool_node("x", "y", k, strides=s, pads=p, sigma=0.8,
                                                     count_include_pad=cip)], {"x": x.shape}, ["y"])
    np.testing.assert_allclose(run(m, {"x": x}), ref_wap(x, gaussian_kernel(k, 0.8), s, p, cip),
                               **TOL)
    # explicit K with zeros
    Kw = rng.random(k).astype(np.float32)
    Kw.reshape(-1)[0] = 0
    m = co.make_model([co.weighted_average_pool_node("x", "y", k, K=Kw, strides=s, pads=p,
                                                     count_include_pad=cip)], {"x": x.shape}, ["y"])
    np.testing.assert_allclose(run(m, {"x": x}), ref_wap(x, Kw.astype(np.float64), s, p, cip),
                               **TOL)


@pytest.mark.parametrize("cip", [0, 1])
@pytest.mark.parametrize("case", WAP_CASES, ids=WAP_IDS)
def test_weighted_average_pool_uniform_is_average_pool(case, cip, rng):
    sp, k, s, p = case
    x = rng.standard_normal((2, 3) + sp).astype(np.float32)
    m = co.make_model([co.weighted_average_pool_node("x", "y", k, K=np.full(k, 0.5), strides=s,
                                                     pads=p, count_include_pad=cip)],
                      {"x": x.shape}, ["y"])
    node = helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=list(k),
                            strides=list(s), pads=list(p), count_include_pad=cip)
    ap = co.make_model([node], {"x": x.shape}, ["y"])
    np.testing.assert_allclose(run(m, {"x": x}), run(ap, {"x": x}), rtol=1e-5, atol=1e-6)


def test_weighted_average_pool_sigma_and_zero_windows(rng):
    """A window whose inside taps all weigh 0 gives 0 (count_include_pad=0)."""
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    Kw = np.zeros((3, 3), np.float32)
    Kw[2, 2] = 1.0                  # only the bottom-right tap counts
    m = co.make_model([co.weighted_average_pool_node("x", "y", [3, 3], K=Kw, pads=[0, 0, 2, 2])],
                      {"x": x.shape}, ["y"])
    y = run(m, {"x": x})
    np.testing.assert_allclose(y, ref_wap(x, Kw.astype(np.float64), (1, 1), (0, 0, 2, 2), 0),
                               **TOL)
    assert np.all(y[..., -2:, :] == 0) and np.all(y[..., :, -2:] == 0)
    # a huge sigma tends to the plain average
    m = co.make_model([co.weighted_average_pool_node("x", "y", [3, 3], sigma=1e4)],
                      {"x": x.shape}, ["y"])
    y = run(m, {"x": x})
    np.testing.assert_allclose(y, ref_wap(x, np.ones((3, 3)), (1, 1), (0,) * 4, 0), rtol=1e-5,
                               atol=1e-6)


# ---------------------------------------------------------------- hypothesis
@st.composite
def geometry(draw, pool=False):
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = (1,) * nd if pool else tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, k[a % nd] - 1 if pool else 2)) for a in range(2 * nd))
    ek = [(k[a] - 1) * d[a] + 1 for a in range(nd)]
    sp = tuple(max(1, ek[a] - p[a] - p[a + nd]) + draw(st.integers(0, 4)) for a in range(nd))
    if nd == 3:
        sp = tuple(min(v, 6) for v in sp)
        sp = tuple(max(v, ek[a] - p[a] - p[a + nd]) for a, v in enumerate(sp))
    return sp, k, s, p, d


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geo=geometry(), g=st.sampled_from([1, 2]), cg=st.integers(1, 3), mg=st.integers(1, 20),
       n=st.integers(1, 3), tiled=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_hypothesis_banked(geo, g, cg, mg, n, tiled, seed):
    sp, k, s, p, d = geo
    rng = np.random.default_rng(seed)
    C, M = cg * g, mg * g
    O = out_shape(sp, k, s, p, d)
    x = rng.standard_normal((n, C) + sp).astype(np.float32)
    kw = dict(strides=s, pads=p, dilations=d, group=g)
    if tiled:
        T = tuple(int(rng.integers(1, o + 2)) for o in O)
        W = rng.standard_normal(T + (M, cg) + k).astype(np.float32)
        B = rng.standard_normal(M).astype(np.float32)
        m = co.make_model([co.tiled_conv_node("x", "y", W, B, **kw)], {"x": x.shape}, ["y"])
        ref = ref_tiled(x, W, B, s, p, d, g)
    else:
        W = rng.standard_normal(O + (M, cg) + k).astype(np.float32)
        B = rng.standard_normal((M,) + O).astype(np.float32)
        m = co.make_model([co.locally_connected_node("x", "y", W, B, **kw)], {"x": x.shape}, ["y"])
        ref = ref_local(x, W, B, s, p, d, g)
    np.testing.assert_allclose(run(m, {"x": x}), ref, **TOL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geo=geometry(pool=True), cip=st.integers(0, 1), gauss=st.booleans(),
       sigma=st.floats(0.3, 3.0), seed=st.integers(0, 2 ** 16))
def test_hypothesis_wap(geo, cip, gauss, sigma, seed):
    sp, k, s, p, _ = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3) + sp).astype(np.float32)
    Kw = None if gauss else (rng.random(k) + 0.05).astype(np.float32)
    m = co.make_model([co.weighted_average_pool_node("x", "y", k, K=Kw, strides=s, pads=p,
                                                     sigma=sigma, count_include_pad=cip)],
                      {"x": x.shape}, ["y"])
    Kr = gaussian_kernel(k, sigma) if gauss else Kw.astype(np.float64)
    np.testing.assert_allclose(run(m, {"x": x}), ref_wap(x, Kr, s, p, cip), **TOL)


# ---------------------------------------------------------------- errors
def _expect(model, frag, cls=InvalidGraphError, feeds=None):
    with pytest.raises(cls) as e:
        s = fastcnn.InferenceSession(model)
        if feeds is not None:
            s.run(None, feeds)
    assert frag in str(e.value), str(e.value)
    return str(e.value)


def _lc(x_shape, W, B=None, **kw):
    return co.make_model([co.locally_connected_node("x", "y", W, B, name="lc0", **kw)],
                         {"x": x_shape}, ["y"])


def test_errors_locally_connected(rng):
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    xs = (1, 4, 6, 6)
    msg = _expect(_lc(xs, f(3, 4, 5, 4, 3, 3)), "one filter bank per output position", ShapeError)
    assert "'lc0'" in msg and "[4, 4]" in msg
    _expect(_lc(xs, f(4, 4, 5, 3, 3, 3)), "channel mismatch", ShapeError)
    _expect(_lc(xs, f(4, 4, 5, 2, 3, 3), group=2), "does not divide the 5 output", ShapeError)
    _expect(_lc(xs, f(4, 4, 6, 4, 3, 3), group=3), "does not divide the 4 input", ShapeError)
    _expect(_lc(xs, f(4, 4, 5, 4, 3, 3), f(5)), "bias B has shape [5], expected [5, 4, 4]",
            ShapeError)
    _expect(_lc(xs, f(4, 4, 5, 4, 3, 3), strides=[0, 1]), "strides must be positive")
    m = _lc(xs, f(4, 4, 5, 4, 3, 3))
    for a in m.graph.node[0].attribute:
        if a.name == "pads":
            a.CopyFrom(helper.make_attribute("pads", [1, 1]))
    _expect(m, "'pads' has 2 values, expected 4")
    node = helper.make_node("LocallyConnected", ["x", "W"], ["y"], name="lc0",
                            domain="com.fastcnn", kernel_shape=[2, 2])
    m = co.make_model([node], {"x": xs}, ["y"], initializers=[
        numpy_helper.from_array(f(4, 4, 5, 4, 3, 3), "W")])
    _expect(m, "kernel_shape [2, 2] does not match", ShapeError)
    node = helper.make_node("LocallyConnected", ["x", "W"], ["y"], name="lc0",
                            domain="com.fastcnn")
    m = co.make_model([node], {"x": xs}, ["y"], initializers=[
        numpy_helper.from_array(f(4, 5, 4, 3, 3), "W")])
    _expect(m, "rank 6 for 2 spatial dims", ShapeError)
    node = helper.make_node("LocallyConnected", ["x", "W"], ["y"], name="lc0",
                            domain="com.fastcnn", bogus=3)
    m.graph.node[0].CopyFrom(node)
    _expect(m, "unknown attribute 'bogus'")
    node = helper.make_node("LocallyConnected", ["x"], ["y"], name="lc0", domain="com.fastcnn")
    m.graph.node[0].CopyFrom(node)
    _expect(m, "takes 2 to 3 inputs")


def test_errors_tiled_and_group(rng):
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    m = co.make_model([co.tiled_conv_node("x", "y", f(2, 2, 4, 3, 3, 3), f(4, 1), name="tc0")],
                      {"x": (1, 3, 6, 6)}, ["y"])
    _expect(m, "bias B has shape [4, 1], expected [4]", ShapeError)
    m = co.make_model([co.tiled_conv_node("x", "y", f(2, 2, 4, 3, 3, 3), group=0, name="tc0")],
                      {"x": (1, 3, 6, 6)}, ["y"])
    _expect(m, "'group' must be >= 1")
    m = co.make_model([co.tiled_conv_node("x", "y", f(0, 2, 4, 3, 3, 3), name="tc0")],
                      {"x": (1, 3, 6, 6)}, ["y"])
    _expect(m, "tile sizes T", ShapeError)
    m = co.make_model([co.tiled_conv_node("x", "y", f(2, 2, 4, 3, 9, 9), name="tc0")],
                      {"x": (1, 3, 6, 6)}, ["y"])
    _expect(m, "larger than the padded input", ShapeError)


def test_errors_weighted_average_pool(rng):
    def wap(K=None, **kw):
        return co.make_model([co.weighted_average_pool_node("x", "y", [3, 3], K=K, name="wp0",
                                                            **kw)], {"x": (1, 2, 5, 5)}, ["y"])
    _expect(wap(K=np.ones((3, 2))), "K has shape [3, 2] but kernel_shape is [3, 3]", ShapeError)
    _expect(wap(K=-np.ones((3, 3))), "non-negative")
    _expect(wap(K=np.zeros((3, 3))), "sums to zero")
    _expect(wap(K=np.full((3, 3), np.nan)), "non-finite")
    _expect(wap(sigma=0.0), "sigma must be > 0")
    _expect(wap(count_include_pad=2), "count_include_pad")
    m = wap()
    m.graph.node[0].attribute.append(helper.make_attribute("dilations", [2, 2]))
    _expect(m, "unknown attribute 'dilations'")
    m = co.make_model([co.weighted_average_pool_node("x", "y", [3], name="wp0")],
                      {"x": (1, 2, 5, 5)}, ["y"])
    _expect(m, "kernel_shape has 1 dims but X has 2", ShapeError)
    node = helper.make_node("WeightedAveragePool", ["x", "k"], ["y"], name="wp0",
                            domain="com.fastcnn", kernel_shape=[3, 3])
    m = co.make_model([node], {"x": (1, 2, 5, 5), "k": (3, 3)}, ["y"])
    _expect(m, "must be a constant")
    node = helper.make_node("WeightedAveragePool", ["x"], ["y"], name="wp0", domain="com.fastcnn")
    m = co.make_model([node], {"x": (1, 2, 5, 5)}, ["y"])
    _expect(m, "'kernel_shape' is required")


@pytest.mark.parametrize("op", ["LocallyConnected", "TiledConv", "WeightedAveragePool"])
def test_missing_domain_import(op, rng):
    W = rng.standard_normal((3, 3, 2, 2, 3, 3)).astype(np.float32)
    cn = (co.weighted_average_pool_node("x", "y", [3, 3], name="n0") if op == "WeightedAveragePool"
          else getattr(co, {"LocallyConnected": "locally_connected_node",
                            "TiledConv": "tiled_conv_node"}[op])("x", "y", W, name="n0"))
    m = co.make_model([cn], {"x": (1, 2, 5, 5)}, ["y"])
    del m.opset_import[1]
    msg = _expect(m, "does not import")
    assert "'n0'" in msg and "com.fastcnn" in msg


def test_bad_attribute_types_never_crash(rng):
    """Wrong-typed or out-of-range attributes: a FastCNNError naming the node, never a crash."""
    W = rng.standard_normal((4, 4, 2, 2, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    bases = [co.locally_connected_node("x", "y", W, name="n0"),
             co.tiled_conv_node("x", "y", W[:2, :2], name="n0"),
             co.weighted_average_pool_node("x", "y", [3, 3], name="n0")]
    bad = [-5, 10 ** 12, 0, [], [10 ** 9], [-7, 0], [1, 2, 3], "str", 2.5, float("nan"), [2.5]]
    for base in bases:
        for attr in list(base.node.attribute):
            for v in bad:
                node = helper.make_node(base.node.op_type, list(base.node.input), ["y"],
                                        name="n0", domain="com.fastcnn")
                node.attribute.extend([a for a in base.node.attribute if a.name != attr.name])
                try:
                    node.attribute.append(helper.make_attribute(attr.name, v))
                except ValueError:      # onnx cannot type an empty list
                    continue
                m = co.make_model([co.CustomNode(node, base.initializers)], {"x": x.shape}, ["y"])
                try:
                    fastcnn.InferenceSession(m, num_threads=1).run(None, {"x": x})
                except FastCNNError as e:
                    assert "n0" in str(e), str(e)


# ---------------------------------------------------------------- analysis + helpers
def test_summarize_custom_model(rng):
    from fastcnn.analysis import summarize
    xs = (1, 3, 10, 10)
    W = rng.standard_normal(co.locally_connected_weight_shape(xs, 8, [3, 3], pads=[1] * 4)
                            ).astype(np.float32)
    Wt = rng.standard_normal((2, 2, 6, 4, 3, 3)).astype(np.float32)
    m = co.make_model([co.locally_connected_node("x", "h", W, pads=[1] * 4, name="lc"),
                       co.weighted_average_pool_node("h", "p", [2, 2], strides=[2, 2], name="wp"),
                       co.tiled_conv_node("p", "y", Wt, group=2, name="tc")],
                      {"x": xs}, ["y"])
    nodes = {n["name"]: n for n in summarize(m)["nodes"]}
    assert nodes["lc"]["output_shape"] == [1, 8, 10, 10]
    assert nodes["lc"]["flops"] == 2 * 8 * 100 * 3 * 9
    assert nodes["wp"]["output_shape"] == [1, 8, 5, 5]
    assert nodes["tc"]["output_shape"] == [1, 6, 3, 3]
    assert nodes["tc"]["flops"] == 2 * 6 * 9 * 4 * 9
    y = fastcnn.InferenceSession(m).run(None, {"x": rng.standard_normal(xs).astype(np.float32)})[0]
    assert y.shape == (1, 6, 3, 3)


def test_helpers_shapes_and_errors():
    assert co.conv_output_shape((28, 28), (3, 3), pads=[1] * 4) == (28, 28)
    assert co.locally_connected_weight_shape((1, 64, 28, 28), 64, (3, 3)) == (26, 26, 64, 64, 3, 3)
    assert co.locally_connected_weight_shape((1, 4, 9), 6, (3,), strides=[2], group=2) == \
        (4, 6, 2, 3)
    with pytest.raises(ValueError):
        co.conv_output_shape((2, 2), (3, 3))
    with pytest.raises(ValueError):
        co.locally_connected_node("x", "y", np.zeros((2, 3, 3)))
    with pytest.raises(ValueError):
        co.weighted_average_pool_node("x", "y", [3, 3], strides=[1])
    m = co.make_model([co.weighted_average_pool_node("x", "y", [3])], {"x": (1, 1, 5)}, ["y"])
    assert {(o.domain, o.version) for o in m.opset_import} == {("", 17), ("com.fastcnn", 1)}


@pytest.mark.skipif(K is None, reason="kernels not built")
def test_kernel_entry_checks(rng):
    x = np.zeros((1, 2, 1, 1, 5), np.float32)
    y = np.zeros((1, 3, 3), np.float32)
    w = np.zeros(1 * 1 * 6 * 16, np.float32)
    rows = np.zeros(3, np.int64)
    with pytest.raises(ValueError):
        K.local_conv(x, w, None, 0, 0, y, rows, np.array([[0, 0, 5]], np.int64), 1, (1, 1, 3),
                     (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1)
    with pytest.raises(ValueError):
        K.local_conv(x, w, None, 0, 0, y, rows, np.array([[1, 0, 1]], np.int64), 1, (1, 1, 3),
                     (1, 1, 1), (0, 0, 0), (0, 0, 0), (1, 1, 1), 1)


def test_docs_example_runs():
    """The README's custom-ops example builds, runs and prints (1, 32, 7, 7)."""
    import contextlib
    import io
    import pathlib
    import re
    doc = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    text = doc.read_text()
    section = text[text.index("## Custom ops"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(doc), "exec"), {})
    assert out.getvalue().strip() == "(1, 32, 7, 7)"


@pytest.mark.skipif(K is None, reason="kernels not built")
def test_constant_weights_run_as_native_steps(rng):
    """float32 with constant W/B/K: each op is one native executor step (no Python per run)."""
    xs = (2, 3, 8, 8)
    W = rng.standard_normal(co.locally_connected_weight_shape(xs, 4, [3, 3])).astype(np.float32)
    B = rng.standard_normal((4, 6, 6)).astype(np.float32)
    Wt = rng.standard_normal((2, 2, 5, 4, 3, 3)).astype(np.float32)
    m = co.make_model([co.locally_connected_node("x", "h", W, B),
                       co.tiled_conv_node("h", "t", Wt, pads=[1] * 4),
                       co.weighted_average_pool_node("t", "y", [2, 2])], {"x": xs}, ["y"])
    sess = fastcnn.InferenceSession(m, num_threads=2)
    x = rng.standard_normal(xs).astype(np.float32)
    y = sess.run(None, {"x": x})[0]
    program = sess._plan({"x": xs})._pool[0].program
    assert program.n_native() == len(program) == 3
    h = ref_local(x, W, B, (1, 1), (0,) * 4, (1, 1), 1)
    t = ref_tiled(h, Wt, None, (1, 1), (1,) * 4, (1, 1), 1)
    np.testing.assert_allclose(y, ref_wap(t, gaussian_kernel((2, 2)), (1, 1), (0,) * 4, 0),
                               rtol=1e-3, atol=1e-3)


def test_inside_an_ordinary_network(rng):
    """Conv/Relu (blocked layout, fused) around the custom ops: reorders and fusion leave
    them correct."""
    Wc = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    Wl = rng.standard_normal(co.locally_connected_weight_shape((2, 16, 12, 12), 8, [3, 3],
                                                               pads=[1] * 4)).astype(np.float32)
    Wc2 = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "Wc"], ["a"], pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["b"]),
             co.locally_connected_node("b", "c", Wl, pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["d"]),
             co.weighted_average_pool_node("d", "e", [3, 3], pads=[1] * 4),
             helper.make_node("Conv", ["e", "Wc2"], ["f"], pads=[1] * 4),
             helper.make_node("Add", ["f", "e"], ["y"])]
    m = co.make_model(nodes, {"x": (2, 3, 12, 12)}, ["y"],
                      initializers=[numpy_helper.from_array(Wc, "Wc"),
                                    numpy_helper.from_array(Wc2, "Wc2")])
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    y = run(m, {"x": x})
    b = np.maximum(ref_banked(x, lambda o: Wc, None, (1, 1), (1,) * 4, (1, 1), 1), 0)
    d = np.maximum(ref_local(b, Wl, None, (1, 1), (1,) * 4, (1, 1), 1), 0)
    e = ref_wap(d, gaussian_kernel((3, 3)), (1, 1), (1,) * 4, 0)
    want = ref_banked(e, lambda o: Wc2, None, (1, 1), (1,) * 4, (1, 1), 1) + e
    np.testing.assert_allclose(y, want, rtol=1e-3, atol=1e-3)
