"""Depthwise / grouped NCHWc kernels vs onnxruntime (same process, interleaved, medians).

    PYTHONPATH=. python benchmarks/bench_kernels_depthwise.py [--rounds 15] [--threads 1 2]
        [--isa auto] [--only SUBSTR] [--no-session]

Columns (times in ms, medians over interleaved rounds; ratios are fastcnn / onnxruntime,
< 1 means fastcnn is faster, 0.5 is the issue's "2x onnxruntime" target):

  fc_kern   the kernel alone on NCHWc buffers (64-byte aligned), run as the executor
            runs it: a native Call (dwconv_call / groupconv_call, or conv_nchwc's conv_call
            for groupings the dense kernel takes), n calls per Program, no Python between
  ort_1     onnxruntime on a one-node Conv model (ORT_ENABLE_ALL: its NCHWc transformer
            wraps the conv in NCHW->NCHWc->NCHW reorders)
  ort_marg  t(two chained convs) - t(one): ORT's cost of the conv alone in NCHWc (only
            for shape-preserving layers; noisy, it is a difference of two medians)
  fc_sess   fastcnn.InferenceSession on the same one-node model (with its reorders, like
            ort_1; shows the algorithm make_blocked picks, incl. the im2col fallback)
  GF/s      2 * MACs / fc_kern
"""
import argparse
import os
import time


import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import fastcnn
from fastcnn._kernels import conv_nchwc as cn
from fastcnn._kernels import dwconv_nchwc as dw
from fastcnn._kernels.executor import Program

# name, C, M, group, spatial (1-3 dims), k, stride, pad, dilation
CASES = [
    ("mbv2 f1.dw 3x3 s1 32x112x112", 32, 32, 32, (112, 112), 3, 1, 1, 1),
    ("mbv2 f2.dw 3x3 s2 96x112x112", 96, 96, 96, (112, 112), 3, 2, 1, 1),
    ("mbv2 dw3x3 s1 144x56x56", 144, 144, 144, (56, 56), 3, 1, 1, 1),
    ("mbv2 dw3x3 s2 144x56x56", 144, 144, 144, (56, 56), 3, 2, 1, 1),
    ("mbv2 dw3x3 s1 192x28x28", 192, 192, 192, (28, 28), 3, 1, 1, 1),
    ("mbv2 dw3x3 s1 384x14x14", 384, 384, 384, (14, 14), 3, 1, 1, 1),
    ("mbv2 dw3x3 s1 576x14x14", 576, 576, 576, (14, 14), 3, 1, 1, 1),
    ("mbv2 dw3x3 s1 960x7x7", 960, 960, 960, (7, 7), 3, 1, 1, 1),
    ("mbv3 dw5x5 s2 72x56x56", 72, 72, 72, (56, 56), 5, 2, 2, 1),
    ("mnas dw5x5 s1 672x14x14", 672, 672, 672, (14, 14), 5, 1, 2, 1),
    ("dw7x7 s1 256x28x28", 256, 256, 256, (28, 28), 7, 1, 3, 1),
    ("deeplab dw3x3 d6 256x33x33", 256, 256, 256, (33, 33), 3, 1, 6, 6),
    ("dw mult2 3x3 s1 32->64x56x56", 32, 64, 32, (56, 56), 3, 1, 1, 1),
    ("resnext g32 3x3 128x56x56", 128, 128, 32, (56, 56), 3, 1, 1, 1),
    ("resnext g32 3x3 512x14x14", 512, 512, 32, (14, 14), 3, 1, 1, 1),
    ("grouped 12/g 3x3 96x28x28", 96, 96, 8, (28, 28), 3, 1, 1, 1),
    ("grouped 24->4/g 3x3 96x28x28", 96, 16, 4, (28, 28), 3, 1, 1, 1),
    ("dw1d k3 d4 64x8000", 64, 64, 64, (8000,), 3, 1, 4, 4),
    ("dw3d 3x3x3 32x16x28x28", 32, 32, 32, (16, 28, 28), 3, 1, 1, 1),
]


def out_shape(sp, k, s, p, d):
    return tuple((i + 2 * p - (k - 1) * d - 1) // s + 1 for i in sp)


def conv_model(C, M, group, sp, k, s, p, d, w, b, n_nodes):
    nd = len(sp)
    nodes, inits = [], [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    cur = "x"
    for i in range(n_nodes):
        out = "y" if i == n_nodes - 1 else f"t{i}"
        nodes.append(helper.make_node("Conv", [cur, "w", "b"], [out], group=group,
                                      kernel_shape=[k] * nd, strides=[s] * nd,
                                      pads=[p] * (2 * nd), dilations=[d] * nd))
        cur = out
    osp = out_shape(sp, k, s, p, d)
    g = helper.make_graph(nodes, "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, *sp])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, M, *osp])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def aligned(shape, align=64):
    """Zeroed float32 array whose data starts on a 64-byte boundary."""
    n = int(np.prod(shape))
    buf = np.zeros(n + align // 4, np.float32)
    off = (-buf.ctypes.data % align) // 4
    return buf[off:off + n].reshape(shape)


def ort_session(model, threads):
    so = ort.SessionOptions()
    # ORT's pool threads otherwise spin after each run and steal the 2 cores from
    # fastcnn's pool, which runs next in the interleaved loop.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def kernel_runner(C, M, group, sp, k, s, p, d, x, w, b, threads):
    """A callable running the blocked kernel n times natively; also returns the output."""
    d3 = lambda v, f: (f,) * (3 - len(v)) + tuple(v)
    osp = out_shape(sp, k, s, p, d)
    in_dhw, out_dhw = d3(sp, 1), d3(osp, 1)
    nd = len(sp)
    geo = (in_dhw, out_dhw, d3((k,) * nd, 1), d3((s,) * nd, 1), d3((p,) * nd, 0),
           d3((d,) * nd, 1))
    S, So = int(np.prod(sp)), int(np.prod(osp))
    CB, MB = (C + 7) // 8, (M + 7) // 8
    xp = np.zeros((1, CB * 8, S), np.float32)
    xp[:, :C] = x.reshape(1, C, -1)
    xb = aligned((1, CB, S, 8))
    xb[...] = xp.reshape(1, CB, 8, S).transpose(0, 1, 3, 2)
    yb = aligned((1, MB, So, 8))
    Cg, Mg = C // group, M // group
    if group == 1 or (Cg % 8 == 0 and Mg % 8 == 0 and not (group == C)):
        kind = "conv_nchwc_direct"
        call = cn.conv_call(xb, cn.pack_conv_weights(w, group, True), b, yb, *geo, group,
                            0, 0.0, 0.0, None, None, threads, M)
    elif group == C and M == C:
        kind = "dwconv_nchwc"
        call = dw.dwconv_call(xb, dw.pack_dw_weights(w), b, yb, *geo, 0, 0.0, 0.0, None, None,
                              threads, M)
    else:
        kind = "groupconv_nchwc"
        pw = dw.pack_grouped_weights(w, group)
        args = (xb, pw, b, yb, *geo, 0, 0.0, 0.0, None, None, threads, group, C, M)
        if hasattr(dw, "groupconv_call"):
            call = dw.groupconv_call(*args)
        else:  # older builds: the op bound a Python lambda
            call = lambda: dw.groupconv_nchwc(*args)
    progs = {}

    def run(n):
        if n not in progs:
            progs[n] = Program([call] * n)
        progs[n].run()

    def result():
        return yb.transpose(0, 1, 3, 2).reshape(1, MB * 8, *osp)[:, :M]
    return run, result, kind


def timeit(fn, n):
    time.sleep(0.001)  # fastcnn's pool workers spin 200 us after a job: let them sleep
    fn(n)  # absorb the switch from the other engine (caches, sleeping threads)
    t = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t) / n


def bench(case, threads, rounds, session=True):
    name, C, M, group, sp, k, s, p, d = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, C, *sp)).astype(np.float32)
    w = rng.standard_normal((M, C // group) + (k,) * len(sp)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    m1 = conv_model(C, M, group, sp, k, s, p, d, w, b, 1)
    s1 = ort_session(m1, threads)
    s2 = None
    if s == 1 and M == C:
        s2 = ort_session(conv_model(C, M, group, sp, k, s, p, d, w, b, 2), threads)
    ref = s1.run(None, {"x": x})[0]
    run, result, kind = kernel_runner(C, M, group, sp, k, s, p, d, x, w, b, threads)
    run(1)
    np.testing.assert_allclose(result(), ref, rtol=1e-3, atol=1e-3)
    feeds = {"x": x}
    runners = {"fc_kern": run,
               "ort_1": lambda n: [s1.run(None, feeds) for _ in range(n)]}
    if s2 is not None:
        runners["ort_2"] = lambda n: [s2.run(None, feeds) for _ in range(n)]
    if session:
        fs = fastcnn.InferenceSession(m1, num_threads=threads)
        np.testing.assert_allclose(fs.run(None, feeds)[0], ref, rtol=1e-3, atol=1e-3)
        runners["fc_sess"] = lambda n: [fs.run(None, feeds) for _ in range(n)]
    # calibrate inner repetitions to ~4 ms per sample of the ORT one-node run
    t1 = min(timeit(runners["ort_1"], 2) for _ in range(3))
    n = max(1, int(4e-3 / max(t1, 1e-6)))
    samples = {key: [] for key in runners}
    for r in range(rounds):
        keys = list(runners) if r % 2 == 0 else list(runners)[::-1]
        for key in keys:
            samples[key].append(timeit(runners[key], n))
    med = {key: float(np.median(v)) * 1e3 for key, v in samples.items()}
    if "ort_2" in med:
        med["ort_marg"] = med.pop("ort_2") - med["ort_1"]
    osp = out_shape(sp, k, s, p, d)
    macs = M * (C // group) * k ** len(sp) * int(np.prod(osp))
    med["gflops"] = 2 * macs / (med["fc_kern"] * 1e-3) / 1e9
    return med, kind


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--only", default="")
    ap.add_argument("--no-session", action="store_true")
    a = ap.parse_args()
    dw.set_isa(a.isa)
    print(f"isa={dw.get_isa()}  onnxruntime {ort.__version__}")
    print("ms: medians of interleaved rounds; ratios fastcnn/onnxruntime (< 1: fastcnn faster)")
    hdr = (f"{'case':32s} {'thr':>3s} {'fc_kern':>8s} {'ort_1':>8s} {'kern/ort1':>9s} "
           f"{'ort_marg':>8s} {'kern/marg':>9s} {'fc_sess':>8s} {'sess/ort1':>9s} "
           f"{'GF/s':>6s}  kernel")
    print(hdr)
    for case in CASES:
        if a.only and a.only not in case[0]:
            continue
        for t in a.threads:
            r, kind = bench(case, t, a.rounds, not a.no_session)
            om = r.get("ort_marg", float("nan"))
            fs = r.get("fc_sess", float("nan"))
            print(f"{case[0]:32s} {t:3d} {r['fc_kern']:8.3f} {r['ort_1']:8.3f} "
                  f"{r['fc_kern'] / r['ort_1']:9.2f} {om:8.3f} {r['fc_kern'] / om:9.2f} "
                  f"{fs:8.3f} {fs / r['ort_1']:9.2f} {r['gflops']:6.1f}  {kind}", flush=True)


if __name__ == "__main__":
    main()
