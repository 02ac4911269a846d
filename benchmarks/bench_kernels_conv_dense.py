"""Dense conv kernels vs onnxruntime (single-Conv ONNX models), GFLOP/s.

python benchmarks/bench_kernels_conv_dense.py [--threads 1,2] [--reps 30] [--isa auto]
Times are medians of interleaved runs (fastcnn, ort, fastcnn, ort, ...).
--clock cpu (for a shared, loaded machine): 1 thread uses the calling thread's
CPU time (onnxruntime with intra_op_num_threads=1 runs the Conv inline on the
calling thread), n threads use process CPU time / n -- this hides time spent
descheduled by other tenants but counts spin-waiting, so it is a lower bound
on parallel efficiency.  --clock wall (default) is plain perf_counter.
fastcnn times the kernel only (input already in NCHWc, output in NCHWc; the stem
reads plain NCHW input), onnxruntime times the whole single-node session run
(which includes its own NCHW<->NCHWc reorders).
"""
import argparse
import os
import time

# libgomp's idle workers spin and onnxruntime's pool spins too: interleaving the two
# on 2 cores makes each wait for the other's spinning threads' timeslices (ms-scale
# stalls).  Passive waiting must be set before libgomp is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from fastcnn._kernels import conv_nchwc as cn

CASES = [
    # name, C, M, H, k, stride, pad
    ("3x3 64ch 56", 64, 64, 56, 3, 1, 1),
    ("3x3 128ch 28", 128, 128, 28, 3, 1, 1),
    ("3x3 256ch 14", 256, 256, 14, 3, 1, 1),
    ("3x3 512ch 7", 512, 512, 7, 3, 1, 1),
    ("stem 3->64 7x7/s2 224", 3, 64, 224, 7, 2, 3),
    ("1x1 64->256 56", 64, 256, 56, 1, 1, 0),
    ("1x1 256->64 56", 256, 64, 56, 1, 1, 0),
    ("3x3/s2 64->128 56", 64, 128, 56, 3, 2, 1),
]


def ort_session(C, M, H, k, s, p, w, b, threads):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, H])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], strides=[s, s],
                            pads=[p, p, p, p])
    g = helper.make_graph([node], "c", [x], [y], initializer=[
        helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
        helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.ravel())])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def bench_case(case, threads, reps, clock="wall", stat="median"):
    name, C, M, H, k, s, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((M, C, k, k)) * 0.1).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    OH = (H + 2 * p - k) // s + 1
    flops = 2.0 * M * C * k * k * OH * OH
    plain = C < 8
    if plain:
        xin = x.reshape(1, C, H * H).copy()
        wp = cn.pack_conv_weights(w, 1, blocked_input=False)
    else:
        xin = np.empty((1, (C + 7) // 8, H * H, 8), np.float32)
        cn.reorder_to_blocked(x, xin, 1)
        wp = cn.pack_conv_weights(w, 1)
    yb = np.empty((1, (M + 7) // 8, OH * OH, 8), np.float32)
    args = (xin, wp, b, yb, (1, H, H), (1, OH, OH), (1, k, k), (1, s, s), (0, p, p), (1, 1, 1), 1, 1)

    def run_fc():
        cn.conv_nchwc(*args, n_threads=threads)

    sess = ort_session(C, M, H, k, s, p, w, b, threads)
    feed = {"x": x}

    def run_ort():
        sess.run(None, feed)

    # correctness sanity vs ort (relu applied on ours)
    run_fc()
    yo = np.maximum(sess.run(None, feed)[0], 0)
    yf = np.empty((1, M, OH, OH), np.float32)
    cn.reorder_from_blocked(yb, yf, 1)
    err = float(np.abs(yf - yo).max() / max(1.0, np.abs(yo).max()))
    # inner repeat so that each timing is >= ~2 ms
    t0 = time.perf_counter(); run_fc(); t1 = time.perf_counter()
    inner = max(1, int(0.003 / max(t1 - t0, 1e-6)))
    for _ in range(3):
        run_fc(); run_ort()
    if clock == "wall":
        clk, div = time.perf_counter, 1.0
    elif threads == 1:
        clk, div = time.thread_time, 1.0
    else:
        clk, div = time.process_time, float(threads)
    tf, to = [], []
    for _ in range(reps):
        t0 = clk()
        for _ in range(inner):
            run_fc()
        t1 = clk()
        for _ in range(inner):
            run_ort()
        t2 = clk()
        tf.append((t1 - t0) / inner / div); to.append((t2 - t1) / inner / div)
    red = np.median if stat == "median" else np.min
    mf, mo = float(red(tf)), float(red(to))
    return flops / mf * 1e-9, flops / mo * 1e-9, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--only", default="")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"])
    ap.add_argument("--stat", default="median", choices=["median", "min"])
    a = ap.parse_args()
    cn.set_isa(a.isa)
    print("fastcnn isa:", cn.isa_name(), " onnxruntime", ort.__version__, " clock:", a.clock, " stat:", a.stat)
    try:
        from fastcnn._kernels import gemm
        pk = {int(t): gemm.fma_peak_gflops(int(t), clock=a.clock) for t in a.threads.split(",")}
    except Exception:
        pk = {}
    for t in [int(v) for v in a.threads.split(",")]:
        print("\nthreads=%d%s" % (t, "  (FMA peak %.1f GFLOP/s)" % pk[t] if t in pk else ""))
        print("%-24s %10s %10s %7s %8s" % ("case", "fastcnn", "ort", "ratio", "relerr"))
        for case in CASES:
            if a.only and a.only not in case[0]:
                continue
            gf, go, err = bench_case(case, t, a.reps, a.clock, a.stat)
            extra = ("  %4.0f%% peak" % (100 * gf / pk[t])) if t in pk else ""
            print("%-24s %10.1f %10.1f %7.2f %8.1e%s" % (case[0], gf, go, gf / go, err, extra))


if __name__ == "__main__":
    main()
