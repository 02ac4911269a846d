"""The [outer, S, inner] middle-axis reduction kernel (global pools, spatial means)."""
import numpy as np
import pytest

K = pytest.importorskip("fastcnn._kernels.reduce")


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("outer,S,inner", [(3, 1, 1), (5, 37, 1), (2, 3136, 8), (70, 49, 8),
                                           (2, 13, 19), (1, 100000, 1), (3, 7, 3)])
def test_reduce_mid_matches_numpy(outer, S, inner, n_threads):
    rng = np.random.default_rng(outer * 1000 + S + inner)
    x = rng.standard_normal((outer, S, inner)).astype(np.float32)
    y = np.empty((outer, inner), np.float32)
    K.reduce_mid(x.reshape(-1), y.reshape(-1), outer, S, inner, K.MODE["SUM"], 1.0 / S, n_threads)
    np.testing.assert_allclose(y, x.astype(np.float64).mean(axis=1), rtol=1e-5, atol=2e-6)
    K.reduce_mid(x.reshape(-1), y.reshape(-1), outer, S, inner, K.MODE["MAX"], 1.0, n_threads)
    np.testing.assert_array_equal(y, x.max(axis=1))
    K.reduce_mid(x.reshape(-1), y.reshape(-1), outer, S, inner, K.MODE["SUMSQ"], 1.0, n_threads)
    np.testing.assert_allclose(y, np.sqrt((x.astype(np.float64) ** 2).sum(axis=1)), rtol=1e-5)


def test_reduce_mid_all_negative_max():
    x = -np.arange(1, 41, dtype=np.float32)[::-1].copy()     # max is the last element
    y = np.empty(1, np.float32)
    K.reduce_mid(x, y, 1, 40, 1, K.MODE["MAX"])
    assert y[0] == -1.0


def test_reduce_mid_rejects_bad_geometry():
    x = np.zeros(12, np.float32)
    with pytest.raises(ValueError):
        K.reduce_mid(x, np.zeros(3, np.float32), 2, 3, 2, K.MODE["SUM"])
    with pytest.raises(ValueError):
        K.reduce_mid(x, np.zeros(4, np.float32), 2, 3, 2, 7)
