"""Per-node executor overhead: a 200-node elementwise chain on a tiny tensor.

Relu / Add / Mul alternate on a 1x8x4x4 float32 tensor (128 elements), so the
kernels do almost nothing and the time is the executor's per-node cost.
fastcnn and onnxruntime run in the same process, interleaved round by round,
single-threaded both.

    pytest benchmarks/bench_executor_overhead.py --benchmark-only
    python benchmarks/bench_executor_overhead.py        # plain summary, no plugin
"""
from __future__ import annotations

import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import fastcnn

N_NODES = 200
SHAPE = (1, 8, 4, 4)


def chain_model(n_nodes=N_NODES, shape=SHAPE, opset=17):
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    cur = "x"
    for k in range(n_nodes):
        out = f"t{k}"
        kind = k % 3
        if kind == 0:
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"relu{k}"))
        elif kind == 1:
            c = f"c{k}"
            inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * .1, c))
            nodes.append(helper.make_node("Add", [cur, c], [out], name=f"add{k}"))
        else:
            c = f"c{k}"
            inits.append(numpy_helper.from_array(np.full(shape, 0.9, np.float32), c))
            nodes.append(helper.make_node("Mul", [cur, c], [out], name=f"mul{k}"))
        cur = out
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(cur, TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def sessions(model):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep 200 nodes
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    ort_sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    fc_sess = fastcnn.InferenceSession(model, num_threads=1, graph_optimization_level="none")
    return fc_sess, ort_sess


def measure(rounds=30, inner=200):
    """Median µs/node of fastcnn and onnxruntime, interleaved round by round."""
    model = chain_model()
    fc, ort_s = sessions(model)
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    feeds = {"x": x}
    ref = ort_s.run(None, feeds)[0]
    np.testing.assert_allclose(fc.run(None, feeds)[0], ref, rtol=1e-4, atol=1e-5)
    plan = fc._plan({"x": SHAPE})
    program = plan._pool[0].program
    run_steps = program.run
    t_fc, t_ort, t_loop = [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fc.run(None, feeds)
        t_fc.append((time.perf_counter() - t0) / inner)
        t0 = time.perf_counter()
        for _ in range(inner):
            ort_s.run(None, feeds)
        t_ort.append((time.perf_counter() - t0) / inner)
        t0 = time.perf_counter()
        for _ in range(inner):
            run_steps()
        t_loop.append((time.perf_counter() - t0) / inner)
    us = lambda t: float(np.median(t)) * 1e6 / N_NODES  # noqa: E731
    return {"fastcnn_us_per_node": us(t_fc), "onnxruntime_us_per_node": us(t_ort),
            "fastcnn_steps_only_us_per_node": us(t_loop), "n_steps": len(program),
            "n_native_steps": program.n_native()}


def test_executor_overhead_fastcnn(benchmark):
    model = chain_model()
    fc, _ = sessions(model)
    feeds = {"x": np.ones(SHAPE, np.float32)}
    benchmark.extra_info["nodes"] = N_NODES
    benchmark(fc.run, None, feeds)


def test_executor_overhead_onnxruntime(benchmark):
    model = chain_model()
    _, ort_s = sessions(model)
    feeds = {"x": np.ones(SHAPE, np.float32)}
    benchmark.extra_info["nodes"] = N_NODES
    benchmark(ort_s.run, None, feeds)


def test_executor_overhead_ratio():
    """Interleaved measurement; prints µs/node for both and their ratio."""
    r = measure(rounds=10, inner=100)
    print(f"\nexecutor overhead ({N_NODES} nodes, {SHAPE}): fastcnn {r['fastcnn_us_per_node']:.3f} "
          f"µs/node (steps only {r['fastcnn_steps_only_us_per_node']:.3f}), onnxruntime "
          f"{r['onnxruntime_us_per_node']:.3f} µs/node, ratio fastcnn/ort "
          f"{r['fastcnn_us_per_node'] / r['onnxruntime_us_per_node']:.2f}")
    assert r["n_steps"] == N_NODES




# -- elementwise throughput on a CNN-sized tensor (kernels, not overhead) ----------------------
def single_op_model(op, shape=(1, 64, 112, 112), opset=17, with_const=None):
    inits, ins = [], ["x"]
    if with_const is not None:
        inits.append(numpy_helper.from_array(with_const, "c"))
        ins.append("c")
    g = helper.make_graph([helper.make_node(op, ins, ["y"])], "one",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def measure_throughput(n_threads=1, rounds=15, inner=20):
    """Median ms per run of single elementwise ops on 1x64x112x112, fastcnn vs onnxruntime."""
    import onnxruntime as ort
    shape = (1, 64, 112, 112)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    cases = {"Relu": None, "Sigmoid": None, "HardSwish": None,
             "Add": np.full(shape, 0.5, np.float32), "Mul": np.full((64, 1, 1), 0.5, np.float32)}
    out = {}
    for op, c in cases.items():
        m = single_op_model(op, shape, with_const=c)
        so = ort.SessionOptions()
        so.intra_op_num_threads = n_threads
        o = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        f = fastcnn.InferenceSession(m, num_threads=n_threads)
        np.testing.assert_allclose(f.run(None, {"x": x})[0], o.run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)
        tf, to = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(inner):
                f.run(None, {"x": x})
            tf.append((time.perf_counter() - t0) / inner)
            t0 = time.perf_counter()
            for _ in range(inner):
                o.run(None, {"x": x})
            to.append((time.perf_counter() - t0) / inner)
        out[op] = (float(np.median(tf)) * 1e3, float(np.median(to)) * 1e3)
    return out


def test_elementwise_throughput_ratio():
    for nt in (1, 2):
        for op, (a, b) in measure_throughput(nt, rounds=5, inner=5).items():
            print(f"\n{op:10s} n_threads={nt}: fastcnn {a:.3f} ms, onnxruntime {b:.3f} ms, ratio {a / b:.2f}")


if __name__ == "__main__":
    r = measure()
    for k, v in r.items():
        print(f"{k:34s} {v:.3f}" if isinstance(v, float) else f"{k:34s} {v}")
    print(f"{'ratio fastcnn / onnxruntime':34s} {r['fastcnn_us_per_node'] / r['onnxruntime_us_per_node']:.2f}")
    print("\nelementwise on 1x64x112x112 (ms per run, includes feed copy-in and output copy-out)")
    for nt in (1, 2):
        for op, (a, b) in measure_throughput(nt).items():
            print(f"  {op:10s} n_threads={nt}: fastcnn {a:7.3f}  onnxruntime {b:7.3f}  ratio {a / b:.2f}")
