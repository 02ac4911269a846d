"""Depthwise / grouped NCHWc kernels vs onnxruntime (same process, interleaved, medians).

    python benchmarks/bench_kernels_depthwise.py [--rounds 30] [--threads 1 2] [--isa avx2]

onnxruntime is timed on a one-node Conv model (all graph optimizations: its NCHWc
transformer wraps the conv in input/output reorders) and on a two-node chain of the same
conv; `ort_marg` = t(chain) - t(one node) is ORT's cost of the conv alone in NCHWc, the
honest comparison for a kernel whose input is already blocked.  Ratios > 1: fastcnn faster.
"""
import argparse
import os
import time

# Interleaving two thread pools on few cores: neither may spin while the other works.
# libgomp reads this once, when the OpenMP runtime starts (so: before the kernels load).
# Measured on the shared 2-core host: 2-thread median on 144x56x56 30 ms (spinning) vs
# 0.66 ms (passive).  ORT's spinning is switched off in session() for the same reason.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from fastcnn._kernels import dwconv_nchwc as dw

# name, C, M, group, H, W, k, stride, pad, dilation
CASES = [
    ("mbv2 dw3x3 s1 144x56x56", 144, 144, 144, 56, 56, 3, 1, 1, 1),
    ("mbv2 dw3x3 s2 96x112x112", 96, 96, 96, 112, 112, 3, 2, 1, 1),
    ("mbv2 dw3x3 s1 960x7x7", 960, 960, 960, 7, 7, 3, 1, 1, 1),
    ("mnas dw5x5 s1 672x14x14", 672, 672, 672, 14, 14, 5, 1, 2, 1),
    ("deeplab dw3x3 d6 256x33x33", 256, 256, 256, 33, 33, 3, 1, 6, 6),
    ("resnext g32 3x3 128x56x56", 128, 128, 32, 56, 56, 3, 1, 1, 1),
    ("resnext g32 3x3 512x14x14", 512, 512, 32, 14, 14, 3, 1, 1, 1),
]


def conv_model(C, M, group, H, W, k, s, p, d, w, b, n_nodes):
    nodes, inits = [], [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    cur = "x"
    for i in range(n_nodes):
        if i > 0:  # chain: second conv must map M -> M channels with stride 1, same pads
            assert M == C and s == 1
        out = "y" if i == n_nodes - 1 else f"t{i}"
        nodes.append(helper.make_node("Conv", [cur, "w", "b"], [out], group=group,
                                      kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                                      dilations=[d, d]))
        cur = out
    Ho = (H + 2 * p - (k - 1) * d - 1) // s + 1
    Wo = (W + 2 * p - (k - 1) * d - 1) // s + 1
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, M, Ho, Wo])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString(), (Ho, Wo)


def aligned(shape, align=64):
    """Zeroed float32 array whose data starts on a 64-byte boundary (numpy's
    malloc gives 16-byte alignment, which splits every second 32-byte load)."""
    n = int(np.prod(shape))
    buf = np.zeros(n + align // 4, np.float32)
    off = (-buf.ctypes.data % align) // 4
    return buf[off:off + n].reshape(shape)


ORT_SPIN = False


def session(model, threads):
    so = ort.SessionOptions()
    if not ORT_SPIN:
        # ORT's pool threads otherwise spin after each run and steal the 2 cores from the
        # OpenMP team that runs next in the interleaved loop (and vice versa).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def timeit(fn, n):
    fn()  # absorb the switch from the other engine (caches, sleeping/spinning threads)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def bench(case, threads, rounds):
    name, C, M, group, H, W, k, s, p, d = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, H, W)).astype(np.float32)
    w = rng.standard_normal((M, C // group, k, k)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    m1, (Ho, Wo) = conv_model(C, M, group, H, W, k, s, p, d, w, b, 1)
    s1 = session(m1, threads)
    s2 = None
    if s == 1 and M == C:
        m2, _ = conv_model(C, M, group, H, W, k, s, p, d, w, b, 2)
        s2 = session(m2, threads)
    ref = s1.run(None, {"x": x})[0]

    CB = (C + 7) // 8
    xp = np.zeros((1, CB * 8, H * W), np.float32)
    xp[:, :C] = x.reshape(1, C, -1)
    xb = aligned((1, CB, H * W, 8))
    xb[...] = xp.reshape(1, CB, 8, H * W).transpose(0, 1, 3, 2)
    MB = (M + 7) // 8
    yb = aligned((1, MB, Ho * Wo, 8))
    if group == C and M == C:
        pw = dw.pack_dw_weights(w)
        fn = lambda: dw.dwconv_nchwc(xb, pw, b, yb, (1, H, W), (1, Ho, Wo), (1, k, k), (1, s, s),
                                     (0, p, p), (1, d, d), 0, 0.0, 0.0, None, None, threads, M)
    else:
        pw = dw.pack_grouped_weights(w, group)
        fn = lambda: dw.groupconv_nchwc(xb, pw, b, yb, (1, H, W), (1, Ho, Wo), (1, k, k),
                                        (1, s, s), (0, p, p), (1, d, d), 0, 0.0, 0.0, None, None,
                                        threads, group, C, M)
    fn()
    got = yb.transpose(0, 1, 3, 2).reshape(1, MB * 8, Ho, Wo)[:, :M]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)

    feeds = {"x": x}
    f1 = lambda: s1.run(None, feeds)
    f2 = (lambda: s2.run(None, feeds)) if s2 else None
    # calibrate inner repetitions to ~5 ms per sample
    n = max(1, int(5e-3 / max(timeit(f1, 3), 1e-6)))
    ours, o1, o2 = [], [], []
    for _ in range(rounds):
        ours.append(timeit(fn, n))
        o1.append(timeit(f1, n))
        if f2:
            o2.append(timeit(f2, n))
    med = lambda v: float(np.median(v)) * 1e3
    mn = lambda v: float(np.min(v)) * 1e3
    r = {"ours": (med(ours), mn(ours)), "ort1": (med(o1), mn(o1))}
    r["marg"] = (med(o2) - med(o1), mn(o2) - mn(o1)) if f2 else (float("nan"),) * 2
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--only", default="")
    ap.add_argument("--ort-spin", action="store_true", help="leave ORT thread spinning on")
    a = ap.parse_args()
    global ORT_SPIN
    ORT_SPIN = a.ort_spin
    dw.set_isa(a.isa)
    print(f"isa={dw.get_isa()}  onnxruntime {ort.__version__}")
    print("median (min) in ms over interleaved samples; ratio = onnxruntime time / fastcnn time")
    print(f"{'case':30s} {'thr':>3s} {'fastcnn':>15s} {'ort_1node':>15s} {'ort_marg':>15s} "
          f"{'x1node med(min)':>16s} {'xmarg med(min)':>15s}")
    for case in CASES:
        if a.only and a.only not in case[0]:
            continue
        for t in a.threads:
            r = bench(case, t, a.rounds)
            o, o1, om = r["ours"], r["ort1"], r["marg"]
            print(f"{case[0]:30s} {t:3d} {o[0]:7.3f}({o[1]:6.3f}) {o1[0]:7.3f}({o1[1]:6.3f}) "
                  f"{om[0]:7.3f}({om[1]:6.3f}) {o1[0] / o[0]:7.2f}({o1[1] / o[1]:5.2f}) "
                  f"{om[0] / o[0]:7.2f}({om[1] / o[1]:5.2f})", flush=True)


if __name__ == "__main__":
    main()
