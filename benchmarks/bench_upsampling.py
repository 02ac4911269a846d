"""Upsampling layers (issue 4): transposed convolutions, pixel shuffle heads, Resize and a
whole decoder, fastcnn vs onnxruntime at 1 and 2 threads, interleaved in the same run (see
conftest.py).

    FASTCNN_BENCH_ORT_SPINNING=0 pytest benchmarks/bench_upsampling.py
    pytest benchmarks/bench_upsampling.py --benchmark-disable     # smoke

On a shared, oversubscribed host, interleaving two spinning thread pools makes every
2-thread number a scheduler artifact (one runtime's workers spin while the other works:
20-40 ms instead of ~1 ms here).  fastcnn's pool spins only 200 us after a job
(FASTCNN_SPIN_US); FASTCNN_BENCH_ORT_SPINNING=0 stops onnxruntime's workers spinning.

Cases: ConvTranspose from a U-Net/DCGAN decoder (k4/s2/p1 1x256x16x16 -> 128 and
1x128x32x32 -> 64; k3/s2/p1/output_padding 1 1x64x56x56 -> 32; bias, as exported), each
also with a fused ReLU (ConvTranspose -> Relu, as a decoder block runs), and the forward
convolution with the same MACs (the adjoint shape: its GFLOP/s is the target); DepthToSpace CRD x2 (1x256x64x64 -> 1x64x128x128) and x3 (1x576x48x48 ->
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

from fastcnn import zoo

F = TensorProto.FLOAT


def _model(nodes, x_shape, inits, opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, list(x_shape))],
                          [helper.make_tensor_value_info("y", F, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def conv_transpose(x_shape, m, k, s, p, output_padding=0, relu=False):
    c = x_shape[1]
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((c, m, k, k)) / np.sqrt(c * k * k / (s * s))).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) * 0.1
    nodes = [helper.make_node("ConvTranspose", ["x", "w", "b"], ["h" if relu else "y"],
                              kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                              output_padding=[output_padding] * 2)]
    if relu:
        nodes.append(helper.make_node("Relu", ["h"], ["y"]))
    return _model(nodes, x_shape, {"w": w, "b": b})


def adjoint_conv(x_shape, m, k, s, p, output_padding=0):
    """The forward Conv whose adjoint is conv_transpose(x_shape, ...): same MACs."""
    n, c, h, w_ = x_shape
    out = [(d - 1) * s + k - 2 * p + output_padding for d in (h, w_)]
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((c, m, k, k)) / np.sqrt(m * k * k)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                            strides=[s, s], pads=[p, p, p + output_padding, p + output_padding])
    return _model([node], (n, m, *out), {"w": w, "b": np.zeros(c, np.float32)})


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
MAP112 = (1, 64, 112, 112)
CT1, CT2, CT3 = (1, 256, 16, 16), (1, 128, 32, 32), (1, 64, 56, 56)
CASES = {
    "convT k4s2p1 256x16->128": (CT1, lambda s: conv_transpose(s, 128, 4, 2, 1)),
    "convT k4s2p1 256x16->128 +relu": (CT1, lambda s: conv_transpose(s, 128, 4, 2, 1, relu=True)),
    "adjoint conv 128x32->256 k4s2p1": ((1, 128, 32, 32), lambda s: adjoint_conv(CT1, 128, 4, 2, 1)),
    "convT k4s2p1 128x32->64": (CT2, lambda s: conv_transpose(s, 64, 4, 2, 1)),
    "convT k4s2p1 128x32->64 +relu": (CT2, lambda s: conv_transpose(s, 64, 4, 2, 1, relu=True)),
    "adjoint conv 64x64->128 k4s2p1": ((1, 64, 64, 64), lambda s: adjoint_conv(CT2, 64, 4, 2, 1)),
    "convT k3s2p1op1 64x56->32": (CT3, lambda s: conv_transpose(s, 32, 3, 2, 1, 1)),
    "convT k3s2p1op1 64x56->32 +relu": (CT3, lambda s: conv_transpose(s, 32, 3, 2, 1, 1,
                                                                        relu=True)),
    "adjoint conv 32x112->64 k3s2p1op1": ((1, 32, 112, 112),
                                          lambda s: adjoint_conv(CT3, 32, 3, 2, 1, 1)),
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
    "bilinear x2 half_pixel 64x112": (MAP112, lambda s: resize(s, 2, mode="linear")),
    "nearest x2 asymmetric 64x112": (MAP112, lambda s: resize(
        s, 2, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")),
    "unet_decoder 256x16x16": ((1, 256, 16, 16), lambda s: zoo.unet_decoder()),
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
    conv = case.startswith(("convT", "adjoint", "unet"))
    bench_pair("upsampling", case, model, feeds, runtime, threads,
               flops=None if conv else 0.0)


# ---------------------------------------------------------------------------------------------
# python benchmarks/bench_upsampling.py [--clock cpu|wall]
#     [--threads 1,2] [--reps N] [--only s]
# Whole-session runs of the cases above, fastcnn and onnxruntime interleaved in blocks,
# medians.  --clock cpu (for a shared, loaded machine): 1 thread counts the calling
# thread's CPU time (onnxruntime with intra_op_num_threads=1 runs inline on it), n threads
# the process CPU time / n (hides time descheduled by other tenants, counts spinning).
def _main():
    import argparse
    import sys
    import time

    from fastcnn import benchmark as B

    ap = argparse.ArgumentParser()
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    print(f"{'case':36s} thr  ms fastcnn    ms ORT  ratio  GFLOP/s  ORT GF/s")
    for name in CASES:
        if a.only and a.only not in name:
            continue
        model, feeds = _case(name)
        flops = B.model_flops(model, {k: v.shape for k, v in feeds.items()})[0] \
            if name.startswith(("convT", "adjoint", "unet")) else 0.0
        for nt in [int(t) for t in a.threads.split(",")]:
            if a.clock == "wall":
                clk, div = time.perf_counter, 1.0
            elif nt == 1:
                clk, div = time.thread_time, 1.0
            else:
                clk, div = time.process_time, float(nt)
            fs, o = B.fastcnn_session(model, nt), B.ort_session(model, nt, spinning=False)
            runs = {"fastcnn": lambda: fs.run(None, feeds), "ort": lambda: o.run(None, feeds)}
            ts = {k: [] for k in runs}
            for f in runs.values():
                for _ in range(3):
                    f()
            for r in range(a.reps):
                for k, f in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
                    time.sleep(0.001)   # the other runtime's workers stop spinning
                    f()                 # untimed: wakes this runtime's workers
                    for _ in range(3):
                        t0 = clk()
                        f()
                        ts[k].append((clk() - t0) / div)
            fc, orr = (float(np.median(ts[k])) * 1e3 for k in ("fastcnn", "ort"))
            gf = f"{flops / fc / 1e6:8.1f}  {flops / orr / 1e6:8.1f}" if flops else "       -         -"
            print(f"{name:36s} {nt:3d} {fc:10.3f} {orr:9.3f} {fc / orr:6.2f} {gf}", flush=True)
        sys.stdout.flush()


if __name__ == "__main__":
    _main()
