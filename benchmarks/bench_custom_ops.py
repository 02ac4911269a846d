"""com.fastcnn custom ops against the machine's limits (no peer runtime has these ops).

    pytest benchmarks/bench_custom_ops.py                       # pytest-benchmark + summary
    pytest benchmarks/bench_custom_ops.py --benchmark-disable   # smoke: every case once
    python benchmarks/bench_custom_ops.py [--seconds 1]          # the summary table only

Each case is measured *interleaved* with its yardstick in the same process (fastcnn,
yardstick, yardstick, fastcnn, ...: noise on a shared machine hits both alike), p50s:

  LocallyConnected  1x64x28x28 -> 64, 3x3 pad 1 (W = 784 banks of 64x64x3x3 = 116 MB):
                    GFLOP/s, and the weights' read rate in GB/s against a numpy copy of a
                    buffer of W's size (copy GB/s = W bytes / copy time; a copy also
                    writes, so a pure read stream can be somewhat faster).  Batch 1 reads
                    each weight once; batch 4 reads it once for all 4 images.
  TiledConv         1x64x56x56 -> 64, 3x3 pad 1, T = 2x2 and T = 1: GFLOP/s against
                    fastcnn's own Conv of the same shape (its fastest algorithm).
  WeightedAveragePool  3x3/s2 pad 1 over 1x64x112x112 (stem-like) and 5x5/s1 pad 2
                    over 1x256x28x28 (Gaussian K): GB/s (input + output bytes / time)
                    against a numpy copy of the input.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from onnx import helper, numpy_helper

try:
    import fastcnn  # noqa: F401
except ImportError:          # running from a checkout without an install
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fastcnn  # noqa: E402
from fastcnn import benchmark as B  # noqa: E402
from fastcnn import custom_ops as co  # noqa: E402

THREADS = (1, 2)
SECONDS = float(os.environ.get("FASTCNN_BENCH_SECONDS", "1.0"))
RNG = np.random.default_rng(0)
ROWS: dict = {}


def _session(model, threads):
    return fastcnn.InferenceSession(model.SerializeToString(), num_threads=threads)


def lc_case(batch):
    xs = (batch, 64, 28, 28)
    W = RNG.standard_normal(co.locally_connected_weight_shape(xs, 64, [3, 3], pads=[1] * 4)
                            ).astype(np.float32)
    model = co.make_model([co.locally_connected_node("x", "y", W, pads=[1] * 4)], {"x": xs},
                          ["y"])
    x = RNG.standard_normal(xs).astype(np.float32)
    src = W.reshape(-1)
    dst = np.empty_like(src)
    return dict(model=model, feeds={"x": x}, flops=2.0 * batch * W.size,
                yard=("numpy copy of W", lambda: np.copyto(dst, src)),
                bytes=W.nbytes, kind="lc")


def tiled_case(T):
    xs = (1, 64, 56, 56)
    W = RNG.standard_normal(tuple(T) + (64, 64, 3, 3)).astype(np.float32)
    model = co.make_model([co.tiled_conv_node("x", "y", W, pads=[1] * 4)], {"x": xs}, ["y"])
    conv = co.make_model([helper.make_node("Conv", ["x", "W"], ["y"], pads=[1] * 4)], {"x": xs},
                         ["y"], initializers=[numpy_helper.from_array(W.reshape(-1, 64, 64, 3, 3)[0],
                                                                      "W")])
    x = RNG.standard_normal(xs).astype(np.float32)
    return dict(model=model, feeds={"x": x}, flops=2.0 * 64 * 56 * 56 * 64 * 9,
                yard=("fastcnn Conv", conv), kind="tiled")


def wap_case(xs, k, s, p):
    model = co.make_model([co.weighted_average_pool_node("x", "y", k, strides=s, pads=p)],
                          {"x": xs}, ["y"])
    x = RNG.standard_normal(xs).astype(np.float32)
    out = co.conv_output_shape(xs[2:], k, s, p)
    y_bytes = xs[0] * xs[1] * int(np.prod(out)) * 4
    dst = np.empty_like(x)
    return dict(model=model, feeds={"x": x}, flops=0.0, bytes=x.nbytes + y_bytes,
                yard=("numpy copy of X", lambda: np.copyto(dst, x)), copy_bytes=x.nbytes,
                kind="wap")


CASES = {
    "LocallyConnected 1x64x28x28->64 3x3": lambda: lc_case(1),
    "LocallyConnected 4x64x28x28->64 3x3": lambda: lc_case(4),
    "TiledConv T=2x2 1x64x56x56->64 3x3": lambda: tiled_case((2, 2)),
    "TiledConv T=1 1x64x56x56->64 3x3": lambda: tiled_case((1, 1)),
    "WeightedAvgPool 3x3/s2 1x64x112x112": lambda: wap_case((1, 64, 112, 112), [3, 3], [2, 2],
                                                            [1] * 4),
    "WeightedAvgPool 5x5/s1 1x256x28x28": lambda: wap_case((1, 256, 28, 28), [5, 5], [1, 1],
                                                           [2] * 4),
}
_BUILT: dict = {}


def build(name):
    if name not in _BUILT:
        _BUILT[name] = CASES[name]()
    return _BUILT[name]


def measure(name, threads, seconds=SECONDS, runs=None):
    """Interleaved p50s of the op and its yardstick; one summary row."""
    key = (name, threads)
    if key in ROWS:
        return ROWS[key]
    c = build(name)
    sess = _session(c["model"], threads)
    feeds = c["feeds"]
    yname, yard = c["yard"]
    if not callable(yard):                       # a model: fastcnn session, same threads
        ysess = _session(yard, threads)
        yard = lambda: ysess.run(None, feeds)    # noqa: E731
    times = B.measure({"op": lambda: sess.run(None, feeds), "yard": yard}, runs=runs,
                      seconds=None if runs else seconds, warmup=1 if runs else 3)
    op_ms = B.percentiles(times["op"])["p50_ms"]
    y_ms = B.percentiles(times["yard"])["p50_ms"]
    row = {"case": name, "threads": threads, "ms": op_ms, "yard": yname, "yard_ms": y_ms,
           "best_ms": min(times["op"]) * 1e3, "yard_best_ms": min(times["yard"]) * 1e3}
    if c["kind"] == "lc":
        row["gflops"] = c["flops"] / op_ms / 1e6
        row["gbs"] = c["bytes"] / op_ms / 1e6                    # weights read per run
        row["yard_gbs"] = c["bytes"] / y_ms / 1e6
        row["vs"] = row["gbs"] / row["yard_gbs"]
    elif c["kind"] == "tiled":
        row["gflops"] = c["flops"] / op_ms / 1e6
        row["yard_gflops"] = c["flops"] / y_ms / 1e6
        row["vs"] = row["gflops"] / row["yard_gflops"]
    else:
        row["gbs"] = c["bytes"] / op_ms / 1e6
        row["yard_gbs"] = c["copy_bytes"] / y_ms / 1e6
        row["vs"] = row["gbs"] / row["yard_gbs"]
    # best-of ratio: on a shared machine the p50 of a 2-thread run can be a scheduler artifact
    if c["kind"] == "tiled":
        row["vs_best"] = row["yard_best_ms"] / row["best_ms"]
    elif c["kind"] == "lc":
        row["vs_best"] = row["yard_best_ms"] / row["best_ms"]
    else:
        row["vs_best"] = (c["bytes"] / row["best_ms"]) / (c["copy_bytes"] / row["yard_best_ms"])
    ROWS[key] = row
    return row


def _f(v, spec):
    return format("-", ">" + spec.split(".")[0]) if v is None else format(v, spec)


def summary_lines(rows):
    lines = [f"machine: {B.cpu_description()}",
             f"{'case':36s} {'thr':>3s} {'p50 ms':>8s} {'GFLOP/s':>8s} {'GB/s':>7s}  "
             f"{'yardstick':16s} {'p50 ms':>8s} {'GF/s|GB/s':>9s} {'op/yard':>7s} "
             f"{'best ms':>8s} {'best op/yard':>12s}"]
    for r in rows:
        ymetric = r.get("yard_gflops", r.get("yard_gbs"))
        lines.append(f"{r['case'][:36]:36s} {r['threads']:3d} {r['ms']:8.3f} "
                     f"{_f(r.get('gflops'), '8.2f')} {_f(r.get('gbs'), '7.2f')}  "
                     f"{r['yard'][:16]:16s} {r['yard_ms']:8.3f} {_f(ymetric, '9.2f')} "
                     f"{r['vs']:7.2f} {r['best_ms']:8.3f} {r['vs_best']:12.2f}")
    lines.append("op/yard: LocallyConnected weight GB/s over copy GB/s; TiledConv GFLOP/s over "
                 "Conv GFLOP/s; WeightedAvgPool GB/s over copy GB/s (> 1: the op is faster). "
                 "best: the same from the fastest run of each.")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    if not ROWS:
        return
    import contextlib
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    cap = request.config.pluginmanager.getplugin("capturemanager")
    write = tr.write_line if tr is not None else print
    lines = ["", "[custom ops vs machine limits: interleaved p50, same process]"]
    lines += summary_lines([ROWS[k] for k in sorted(ROWS, key=lambda k: (list(CASES).index(
        k[0]), k[1]))])
    with (cap.global_and_fixture_disabled() if cap is not None else contextlib.nullcontext()):
        for line in lines:          # fixture teardown output is captured otherwise
            write(line)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", list(CASES))
def test_custom_op(benchmark, case, threads):
    disabled = getattr(benchmark, "disabled", False)
    row = measure(case, threads, runs=1 if disabled else None)
    benchmark.group = f"{case} t{threads}"
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "case"})
    if disabled:
        return
    c = build(case)
    sess = _session(c["model"], threads)
    benchmark(sess.run, None, c["feeds"])


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=SECONDS)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    rows = [measure(c, int(t), seconds=args.seconds) for c in CASES
            for t in args.threads.split(",")]
    print("\n".join(summary_lines(rows)))
