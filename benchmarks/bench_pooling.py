"""Pooling: fastcnn vs onnxruntime, same process, interleaved, at 1 and 2 threads.

    python benchmarks/bench_pooling.py [--seconds 2] [--threads 1 2] [--only stem] [--direct]
    pytest benchmarks/bench_pooling.py [--benchmark-disable]

Two comparisons per case:

  single node   a one-node model on both sides, plain NCHW in and out (fastcnn's plain
                SIMD rows; onnxruntime's NCHW pool).  Session latency: fastcnn's includes
                copying the feed into its arena.
  blocked       the pool as it runs inside a network, fed by a channel-blocked conv
                (depthwise 1x1 conv -> pool): the pool step's own time on both sides --
                fastcnn's executor step timing (run_profiled: the NCHWc kernel) and
                onnxruntime's profiler (its NCHWc transformer's pool node).  Not
                t(conv -> pool) - t(conv), as bench_kernels_depthwise.py does for convs:
                a pool shrinks the tensor, so the chain's output reorder is cheaper than
                the conv-alone one and that difference hides most of the pool.

GB/s counts the pool's input + output bytes once.  Ratios are fastcnn / onnxruntime
(< 1: fastcnn faster).  Runs alternate in blocks with a settle pause before each
(fastcnn.benchmark.measure), so neither runtime's idle workers steal the 2 shared cores
from the other.
"""
import argparse
import functools
import json
import os
import tempfile

import numpy as np                                     # noqa: E402
import pytest                                          # noqa: E402
from onnx import TensorProto, helper, numpy_helper     # noqa: E402

try:
    from conftest import RUNTIMES, THREADS             # noqa: E402
except ImportError:                                    # run as a script
    RUNTIMES, THREADS = ("fastcnn", "onnxruntime"), (1, 2)

from fastcnn import benchmark as B                     # noqa: E402

# name: (op, input shape, attributes)
CASES = {
    "resnet stem MaxPool 3x3/s2 p1 1x64x112x112":
        ("MaxPool", (1, 64, 112, 112), dict(kernel_shape=[3, 3], strides=[2, 2],
                                            pads=[1, 1, 1, 1])),
    "GlobalAveragePool 1x512x7x7":
        ("GlobalAveragePool", (1, 512, 7, 7), {}),
    "inception AveragePool 3x3/s1 p1 1x192x28x28":
        ("AveragePool", (1, 192, 28, 28), dict(kernel_shape=[3, 3], strides=[1, 1],
                                               pads=[1, 1, 1, 1], count_include_pad=0)),
    "c3d MaxPool 2x2x2/s2 1x64x8x56x56":
        ("MaxPool", (1, 64, 8, 56, 56), dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2])),
    "LpPool p2 3x3/s2 p1 1x64x56x56":
        ("LpPool", (1, 64, 56, 56), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                         p=2)),
}


def _model(nodes, shape, inits=()):
    g = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    return m


def single_node(name):
    op, shape, attrs = CASES[name]
    return _model([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], shape)


def chain(name, with_pool=True):
    """x -> depthwise 1x1 conv (C channels: both runtimes run it channel-blocked) [-> pool]."""
    op, shape, attrs = CASES[name]
    c = shape[1]
    w = numpy_helper.from_array(np.full((c, 1) + (1,) * (len(shape) - 2), 0.5, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["a" if with_pool else "y"], group=c,
                              name="dw")]
    if with_pool:
        nodes.append(helper.make_node(op, ["a"], ["y"], name="pool", **attrs))
    return _model(nodes, shape, [w])


def pool_bytes(name):
    shape = CASES[name][1]
    out = B.fastcnn_session(single_node(name), 1).run(None, {"x": np.zeros(shape, np.float32)})
    return 4.0 * (np.prod(shape) + out[0].size)


def _feeds(name):
    shape = CASES[name][1]
    return {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}


class _OrtProfiled:
    """onnxruntime session with its profiler on: the median time of the node `op_type`."""

    def __init__(self, model, threads, op_type):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.enable_profiling = True
        # a private prefix: onnxruntime names the file by the second, and other processes
        # profiling in the same directory would collide with (or delete) ours
        so.profile_file_prefix = os.path.join(tempfile.gettempdir(),
                                              f"fastcnn_pool_ort_{os.getpid()}_{id(self)}")
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(model.SerializeToString(), so,
                                         providers=["CPUExecutionProvider"])
        self.op_type = op_type

    def node_ms(self):
        path = self.sess.end_profiling()
        try:
            with open(path) as f:
                events = json.load(f)
        finally:
            os.remove(path)
        durs = [e["dur"] for e in events if e.get("cat") == "Node"
                and e.get("args", {}).get("op_name") == self.op_type
                and e.get("name", "").endswith("_kernel_time")]
        return float(np.median(durs[3:] or durs)) / 1e3      # us -> ms, warm-up dropped


def measure_case(name, threads, seconds=1.0, runs=None):
    """Single node: fastcnn and ORT session ms; blocked: each runtime's pool step ms."""
    op = CASES[name][0]
    feeds = _feeds(name)
    fc = B.fastcnn_session(single_node(name), threads)
    ort1 = B.ort_session(single_node(name), threads, spinning=False)
    fc_chain = B.fastcnn_session(chain(name), threads)
    ort_chain = _OrtProfiled(chain(name), threads, op)
    want = ort1.run(None, feeds)[0]
    np.testing.assert_allclose(fc.run(None, feeds)[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fc_chain.run(None, feeds)[0], ort_chain.sess.run(None, feeds)[0],
                               rtol=1e-4, atol=1e-5)
    plan = next(iter(fc_chain._plans.values()))
    k = next(i for i, st in enumerate(plan.steps) if st.node.name == "pool")
    blocked = bool(plan.infos[plan.steps[k].inputs[0]].layout)
    pool_step = []

    def fc_blocked():
        _, prof = fc_chain.run_profiled(feeds)
        pool_step.append(prof[k][1])

    times = B.measure({"fc": lambda: fc.run(None, feeds), "ort": lambda: ort1.run(None, feeds),
                       "fc_chain": fc_blocked,
                       "ort_chain": lambda: ort_chain.sess.run(None, feeds)},
                      runs=runs, seconds=None if runs else seconds, warmup=1 if runs else 3)
    med = {key: float(np.median(v)) * 1e3 for key, v in times.items()}
    nbytes = pool_bytes(name)
    r = {"case": name, "threads": threads, "fc_ms": med["fc"], "ort_ms": med["ort"],
         "fc_blocked_ms": float(np.median(pool_step)) * 1e3, "blocked": blocked,
         "ort_node_ms": ort_chain.node_ms()}
    r["ratio"] = r["fc_ms"] / r["ort_ms"]
    r["ratio_blocked"] = r["fc_blocked_ms"] / r["ort_node_ms"]
    r["gbps_fc"] = nbytes / r["fc_blocked_ms"] / 1e6
    r["gbps_ort"] = nbytes / r["ort_node_ms"] / 1e6
    return r


def _f(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    lines = [f"{'case':44s} {'thr':>3s} | {'single node: fastcnn':>20s} {'ORT':>7s} {'ratio':>6s} "
             f"| {'blocked: fastcnn':>16s} {'GB/s':>6s} {'ORT':>7s} {'GB/s':>6s} {'ratio':>6s}"]
    for r in rows:
        lines.append(f"{r['case'][:44]:44s} {r['threads']:3d} | {r['fc_ms']:20.3f} "
                     f"{r['ort_ms']:7.3f} {r['ratio']:6.2f} | {r['fc_blocked_ms']:16.3f} "
                     f"{r['gbps_fc']:6.1f} {r['ort_node_ms']:7.3f} {r['gbps_ort']:6.1f} "
                     f"{r['ratio_blocked']:6.2f}"
                     + ("" if r["blocked"] else "  (pool not blocked!)"))
    return lines


# -- pytest-benchmark ----------------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", list(CASES))
def test_pool_single_node(bench_pair, case, threads, runtime):
    bench_pair("pooling (single node)", case, single_node(case), _feeds(case), runtime,
               threads, flops=0)


@functools.lru_cache(maxsize=None)
def _blocked_row(case, threads, disabled):
    return measure_case(case, threads, runs=1 if disabled else None,
                        seconds=float(os.environ.get("FASTCNN_BENCH_SECONDS", "1.0")))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", list(CASES))
def test_pool_blocked(benchmark, case, threads):
    """The pool inside a blocked chain: fastcnn's step vs onnxruntime's marginal cost."""
    disabled = getattr(benchmark, "disabled", False)
    r = _blocked_row(case, threads, disabled)
    assert r["blocked"]
    benchmark.group = f"{case} blocked t{threads}"
    benchmark.extra_info.update({k: v for k, v in r.items() if k != "case"})
    if not disabled:
        sess = B.fastcnn_session(chain(case), threads)
        feeds = _feeds(case)
        benchmark(sess.run, None, feeds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", default="")
    ap.add_argument("--direct", action="store_true",
                    help="NCHWc pools on the direct rows (no separable path), for before/after")
    a = ap.parse_args()
    if a.direct:
        from fastcnn._kernels import pool
        pool.set_separable(False)
    import onnxruntime
    print(f"{B.cpu_description()}; onnxruntime {onnxruntime.__version__}; median ms, "
          f"interleaved; ratio = fastcnn / onnxruntime (< 1: fastcnn faster)")
    rows = []
    for name in CASES:
        if a.only and a.only not in name:
            continue
        for t in a.threads:
            rows.append(measure_case(name, t, seconds=a.seconds))
            print(table(rows[-1:])[-1] if len(rows) > 1 else "\n".join(table(rows)), flush=True)


if __name__ == "__main__":
    main()
