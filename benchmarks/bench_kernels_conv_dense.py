"""Dense conv kernels vs onnxruntime (single-Conv ONNX models), GFLOP/s.

python benchmarks/bench_kernels_conv_dense.py [--threads 1,2] [--reps 30] [--isa auto] [--only a,b]
Times are medians of interleaved runs (fastcnn, ort, fastcnn, ort, ...); the table
prints ms per run, the time ratio fastcnn/ort (< 1: fastcnn faster), GFLOP/s and %
of the probed FMA peak.
--clock cpu (for a shared, loaded machine): 1 thread uses the calling thread's
CPU time (onnxruntime with intra_op_num_threads=1 runs the Conv inline on the
calling thread), n threads use process CPU time / n -- this hides time spent
descheduled by other tenants but counts spin-waiting, so it is a lower bound
on parallel efficiency.  --clock wall (default) is plain perf_counter.
fastcnn times the kernel only (input already in NCHWc, output in NCHWc, 64-byte
aligned buffers as in a session's arena; the stem reads plain NCHW input),
onnxruntime times the whole single-node session run (which includes its own
NCHW<->NCHWc reorders).
"""
import argparse
import os
import time


import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from fastcnn._kernels import conv_nchwc as cn

CASES = [
    # name, C, M, H (=W), k, stride, pad, dilation
    ("3x3 64ch 56", 64, 64, 56, 3, 1, 1, 1),
    ("3x3 128ch 28", 128, 128, 28, 3, 1, 1, 1),
    ("3x3 256ch 14", 256, 256, 14, 3, 1, 1, 1),
    ("3x3 512ch 7", 512, 512, 7, 3, 1, 1, 1),
    ("stem 3->64 7x7/s2 224", 3, 64, 224, 7, 2, 3, 1),
    ("1x1 64->256 56", 64, 256, 56, 1, 1, 0, 1),
    ("1x1 256->64 56", 256, 64, 56, 1, 1, 0, 1),
    ("3x3/s2 64->128 56", 64, 128, 56, 3, 2, 1, 1),
    ("3x3/s2 128->256 28", 128, 256, 28, 3, 2, 1, 1),
    ("3x3/s2 256->512 14", 256, 512, 14, 3, 2, 1, 1),
    ("1x1/s2 64->128 56", 64, 128, 56, 1, 2, 0, 1),
    ("1x1/s2 256->512 14", 256, 512, 14, 1, 2, 0, 1),
    # DeepLab ASPP on a 33x33 map (output stride 16 of 513x513)
    ("aspp 3x3 d2 256->256 33", 256, 256, 33, 3, 1, 2, 2),
    ("aspp 3x3 d6 256->64 33", 256, 64, 33, 3, 1, 6, 6),
    ("aspp 3x3 d12 256->64 33", 256, 64, 33, 3, 1, 12, 12),
    ("aspp 3x3 d18 256->64 33", 256, 64, 33, 3, 1, 18, 18),
]


def aligned_empty(shape, align=64):
    """float32 array starting on an `align`-byte boundary (like the session arena)."""
    n = int(np.prod(shape))
    raw = np.empty(n + align // 4, np.float32)
    skip = (-raw.ctypes.data % align) // 4
    return raw[skip:skip + n].reshape(shape)


def ort_session(C, M, H, k, s, p, d, w, b, threads):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, H])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], strides=[s, s],
                            pads=[p, p, p, p], dilations=[d, d])
    g = helper.make_graph([node], "c", [x], [y], initializer=[
        helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
        helper.make_tensor("b", TensorProto.FLOAT, b.shape, b.ravel())])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # onnxruntime's workers spin after each run by default: interleaved with fastcnn's
    # pool on 2 cores they hold a core while fastcnn runs, and fastcnn's 2-thread runs
    # measure single-threaded.  FASTCNN_BENCH_ORT_SPINNING=1
    # keeps the spinning.
    if os.environ.get("FASTCNN_BENCH_ORT_SPINNING", "0") != "1":
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def bench_case(case, threads, reps, clock="wall", stat="median"):
    name, C, M, H, k, s, p, d = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((M, C, k, k)) * 0.1).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    OH = (H + 2 * p - (k - 1) * d - 1) // s + 1
    flops = 2.0 * M * C * k * k * OH * OH
    plain = C < 8
    # 64-byte aligned buffers, as the session's arena gives them
    if plain:
        xin = aligned_empty((1, C, H * H))
        xin[...] = x.reshape(1, C, H * H)
        wp = cn.pack_conv_weights(w, 1, blocked_input=False)
    else:
        xin = aligned_empty((1, (C + 7) // 8, H * H, 8))
        cn.reorder_to_blocked(x, xin, 1)
        wp = cn.pack_conv_weights(w, 1)
    yb = aligned_empty((1, (M + 7) // 8, OH * OH, 8))
    args = (xin, wp, b, yb, (1, H, H), (1, OH, OH), (1, k, k), (1, s, s), (0, p, p), (1, d, d), 1, 1)

    def run_fc():
        cn.conv_nchwc(*args, n_threads=threads)

    sess = ort_session(C, M, H, k, s, p, d, w, b, threads)
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
        # each block starts with an untimed call (wakes the runtime's threads); between
        # blocks fastcnn's pool workers are given 1 ms to stop spinning (they spin 200 us
        # after a job) so they do not take a core from onnxruntime's block
        run_fc()
        t0 = clk()
        for _ in range(inner):
            run_fc()
        t1 = clk()
        time.sleep(0.001)
        run_ort()
        t2 = clk()
        for _ in range(inner):
            run_ort()
        t3 = clk()
        tf.append((t1 - t0) / inner / div); to.append((t3 - t2) / inner / div)
    red = np.median if stat == "median" else np.min
    mf, mo = float(red(tf)), float(red(to))
    return mf * 1e3, mo * 1e3, flops, err


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
        print("%-26s %9s %9s %7s %8s %8s %7s %8s" % ("case", "ms fc", "ms ort", "fc/ort", "GF/s fc", "GF/s ort",
                                                  "% peak", "relerr"))
        ratios = []
        for case in CASES:
            if a.only and not any(o in case[0] for o in a.only.split(",")):
                continue
            mf, mo, flops, err = bench_case(case, t, a.reps, a.clock, a.stat)
            gf, go = flops / mf * 1e-6, flops / mo * 1e-6
            ratios.append(mf / mo)
            extra = ("%6.0f%%" % (100 * gf / pk[t])) if t in pk else "      -"
            print("%-26s %9.3f %9.3f %7.2f %8.1f %8.1f %s %8.1e" % (case[0], mf, mo, mf / mo, gf, go, extra, err))
        if ratios:
            print("geomean fc/ort: %.3f" % float(np.exp(np.mean(np.log(ratios)))))

if __name__ == "__main__":
    main()
