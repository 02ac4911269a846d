"""DepthToSpace (DCR, CRD) and SpaceToDepth (DCR; CRD since opset 28): one-node models,
fastcnn at 1 and 2 threads vs onnx.reference.ReferenceEvaluator and onnxruntime, plus
the copy kernels directly."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastcnn.errors import ShapeError

from test_ops_elementwise import check, expect_error, rand

SHAPES = [(1, 4, 2, 3), (2, 36, 5, 7), (1, 256, 64, 64), (2, 64, 33, 17)]


def d2s_shape(shape, b):
    N, C, H, W = shape
    return (N, C * b * b, H, W)


@pytest.mark.parametrize("b", [1, 2, 3, 4])
@pytest.mark.parametrize("mode,opset", [("DCR", 13), ("CRD", 13), ("DCR", 1), ("CRD", 11)])
@pytest.mark.parametrize("shape", [(1, 1, 2, 3), (2, 4, 5, 7), (1, 16, 40, 48)],
                         ids=["tiny", "small", "big"])
def test_depth_to_space(b, mode, opset, shape):
    x = rand(*d2s_shape(shape, b))
    attrs = {"blocksize": b} if opset == 1 else {"blocksize": b, "mode": mode}
    if opset == 1 and mode == "CRD":
        pytest.skip("DepthToSpace-1 has no mode")
    check("DepthToSpace", [x], attrs, opset, rtol=0, atol=0)


@pytest.mark.parametrize("b", [1, 2, 3, 4])
@pytest.mark.parametrize("mode,opset", [(None, 13), ("DCR", 28), ("CRD", 28), (None, 1)])
@pytest.mark.parametrize("shape", [(1, 1, 12, 24), (2, 3, 12, 36), (1, 16, 96, 96)],
                         ids=["tiny", "small", "big"])
def test_space_to_depth(b, mode, opset, shape):
    x = rand(*shape)
    attrs = {"blocksize": b} if mode is None else {"blocksize": b, "mode": mode}
    check("SpaceToDepth", [x], attrs, opset, rtol=0, atol=0, ort_check=opset < 28)


def test_pixel_shuffle_heads():
    """The benchmarked heads: x2 (1x256x64x64 -> 1x64x128x128) and x3."""
    check("DepthToSpace", [rand(1, 256, 64, 64)], {"blocksize": 2, "mode": "CRD"}, 13)
    check("DepthToSpace", [rand(1, 576, 32, 32)], {"blocksize": 3, "mode": "CRD"}, 13)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int64, np.uint8, np.bool_])
def test_dtypes(dtype):
    x = (rand(2, 8, 3, 5) * 10).astype(dtype)
    ort = dtype not in (np.int64, np.bool_)      # onnxruntime lacks these kernels
    check("DepthToSpace", [x], {"blocksize": 2, "mode": "CRD"}, 13, rtol=0, atol=0,
          ort_check=ort)
    check("DepthToSpace", [x], {"blocksize": 2, "mode": "DCR"}, 13, rtol=0, atol=0,
          ort_check=ort)
    y = (rand(2, 2, 6, 4) * 10).astype(dtype)
    check("SpaceToDepth", [y], {"blocksize": 2}, 13, rtol=0, atol=0, ort_check=ort)
    check("SpaceToDepth", [y], {"blocksize": 2, "mode": "CRD"}, 28, rtol=0, atol=0,
          ort_check=False)


def test_errors():
    x = rand(1, 8, 3, 3)
    expect_error("DepthToSpace", [x], {}, 13)                                  # no blocksize
    expect_error("DepthToSpace", [x], {"blocksize": 0}, 13)
    expect_error("DepthToSpace", [x], {"blocksize": 2, "mode": "XYZ"}, 13)
    expect_error("DepthToSpace", [x], {"blocksize": 3}, 13, cls=ShapeError)   # 8 % 9
    expect_error("DepthToSpace", [rand(8, 3, 3)], {"blocksize": 2}, 13, cls=ShapeError)
    expect_error("SpaceToDepth", [x], {"blocksize": 2}, 13, cls=ShapeError)   # 3 % 2
    expect_error("SpaceToDepth", [x], {"blocksize": 2.5}, 13)
    expect_error("SpaceToDepth", [rand(2, 4, 4)], {"blocksize": 2}, 13, cls=ShapeError)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 5), H=st.integers(1, 9), W=st.integers(1, 40),
       b=st.integers(1, 5), crd=st.booleans(), nt=st.sampled_from([1, 2, 3]))
def test_kernels_roundtrip(N, C, H, W, b, crd, nt):
    from fastcnn.ops.pixel_shuffle import _k
    if _k is None:
        pytest.skip("kernels not built")
    small = rand(N, C * b * b, H, W, seed=W)
    if crd:
        want = small.reshape(N, C, b, b, H, W).transpose(0, 1, 4, 2, 5, 3)
    else:
        want = small.reshape(N, b, b, C, H, W).transpose(0, 3, 4, 1, 5, 2)
    want = want.reshape(N, C, H * b, W * b)
    mode = _k.MODES["CRD" if crd else "DCR"]
    big = np.empty((N, C, H * b, W * b), np.float32)
    _k.depth_to_space(small, big, b, mode, nt)
    np.testing.assert_array_equal(big, want)
    back = np.empty_like(small)
    _k.space_to_depth(big, back, b, mode, nt)
    np.testing.assert_array_equal(back, small)
