"""Upsampling layers (issue 4): pixel shuffle heads and Resize, fastcnn vs onnxruntime at 1
and 2 threads, interleaved in the same run (see conftest.py).

    OMP_WAIT_POLICY=PASSIVE FASTCNN_BENCH_ORT_SPINNING=0 pytest benchmarks/bench_upsampling.py
    pytest benchmarks/bench_upsampling.py --benchmark-disable     # smoke

On a shared, oversubscribed host, interleaving two spinning thread pools makes every
2-thread number a scheduler artifact (libgomp and ORT workers spin while the other
runtime works: 20-40 ms instead of ~1 ms here); the environment above makes both wait
passively.  libgomp reads OMP_WAIT_POLICY when it loads (conftest imports the kernels),
so it must be set on the command line, not in this file.

Cases: DepthToSpace CRD x2 (1x256x64x64 -> 1x64x128x128) and x3 (1x576x48x48 ->
1x64x144x144), the x2 head as torch.onnx writes PixelShuffle (Reshape -> Transpose ->
Reshape, which fastcnn fuses into one step), PixelUnshuffle x2, and Resize x2 of a
1x64x128x128 map: bilinear half_pixel, bilinear align_corners, nearest (asymmetric/floor
as F.interpolate exports it, and the half_pixel default), bicubic.
"""
import functools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import RUNTIMES, THREADS

F = TensorProto.FLOAT


def _model(nodes, x_shape, inits, opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, list(x_shape))],
                          [helper.make_tensor_value_info("y", F, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def depth_to_space(x_shape, r):
    return _model([helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=r, mode="CRD")],
                  x_shape, {})


def torch_pixel_shuffle(x_shape, r):
    N, C, H, W = x_shape
    c = C // (r * r)
    return _model([helper.make_node("Reshape", ["x", "s1"], ["a"]),
                   helper.make_node("Transpose", ["a"], ["b"], perm=[0, 1, 4, 2, 5, 3]),
                   helper.make_node("Reshape", ["b", "s2"], ["y"])], x_shape,
                  {"s1": np.array([N, c, r, r, H, W], np.int64),
                   "s2": np.array([N, c, H * r, W * r], np.int64)})


def torch_pixel_unshuffle(x_shape, r):
    N, C, H, W = x_shape
    return _model([helper.make_node("Reshape", ["x", "s1"], ["a"]),
                   helper.make_node("Transpose", ["a"], ["b"], perm=[0, 1, 3, 5, 2, 4]),
                   helper.make_node("Reshape", ["b", "s2"], ["y"])], x_shape,
                  {"s1": np.array([N, C, H // r, r, W // r, r], np.int64),
                   "s2": np.array([N, C * r * r, H // r, W // r], np.int64)})


def resize(x_shape, scale, **attrs):
    sc = np.array([1, 1, scale, scale], np.float32)
    return _model([helper.make_node("Resize", ["x", "", "scales"], ["y"], **attrs)], x_shape,
                  {"scales": sc})


MAP = (1, 64, 128, 128)
CASES = {
    "pixel_shuffle x2 256x64x64": ((1, 256, 64, 64), lambda s: depth_to_space(s, 2)),
    "pixel_shuffle x3 576x48x48": ((1, 576, 48, 48), lambda s: depth_to_space(s, 3)),
    "torch PixelShuffle x2 (R-T-R)": ((1, 256, 64, 64), lambda s: torch_pixel_shuffle(s, 2)),
    "torch PixelUnshuffle x2 (R-T-R)": ((1, 64, 128, 128), lambda s: torch_pixel_unshuffle(s, 2)),
    "bilinear x2 half_pixel 64x128": (MAP, lambda s: resize(s, 2, mode="linear")),
    "bilinear x2 align_corners 64x128": (MAP, lambda s: resize(
        s, 2, mode="linear", coordinate_transformation_mode="align_corners")),
    "nearest x2 asymmetric 64x128": (MAP, lambda s: resize(
        s, 2, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")),
    "nearest x2 half_pixel 64x128": (MAP, lambda s: resize(s, 2, mode="nearest")),
    "bicubic x2 half_pixel 64x128": (MAP, lambda s: resize(s, 2, mode="cubic")),
}


@functools.lru_cache(maxsize=None)
def _case(name):
    shape, build = CASES[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return build(shape), {"x": x}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", list(CASES))
def test_upsampling(bench_pair, case, threads, runtime):
    model, feeds = _case(case)
    bench_pair("upsampling", case, model, feeds, runtime, threads, flops=0.0)
