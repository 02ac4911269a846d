"""Concurrency: one session from many Python threads gives exactly the single-threaded
results; the GIL is released while kernels run; sessions with different thread counts
do not interfere.

Design under test (runtime/plan.py): a plan hands each concurrent run its own bound
arena from a small pool, so runs share only read-only prepacked weights.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import fastcnn

F = TensorProto.FLOAT
N_THREADS = 8
RUNS_PER_THREAD = 25


def cnn_model(c_in=3, hw=32, c_mid=16, n_cls=10, seed=0):
    """Conv+Relu+MaxPool+Flatten+Gemm, built with onnx.helper."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((c_mid, c_in, 3, 3)) * 0.2).astype(np.float32)
    b = rng.standard_normal(c_mid).astype(np.float32)
    feat = c_mid * (hw // 2) ** 2
    g = (rng.standard_normal((feat, n_cls)) * 0.05).astype(np.float32)
    c = rng.standard_normal(n_cls).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g", "cc"], ["y"], name="gemm")]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", F, ["N", c_in, hw, hw])],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(v, k) for k, v in (("w", w), ("b", b), ("g", g), ("cc", c))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def big_conv_model(c=64, hw=56):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32)
    n = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    graph = helper.make_graph([n], "big", [helper.make_tensor_value_info("x", F,
                                                                             [1, c, hw, hw])],
                              [helper.make_tensor_value_info("y", F, None)],
                              [numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def hammer(fn, n_threads, n_runs):
    """Run fn(thread_index, run_index) from n_threads threads started together."""
    errors = []
    barrier = threading.Barrier(n_threads)

    def worker(k):
        try:
            barrier.wait()
            for j in range(n_runs):
                fn(k, j)
        except BaseException as e:   # noqa: B902 -- reported below
            errors.append((k, repr(e)))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]


@pytest.mark.parametrize("num_threads", [1, 2])
def test_one_session_many_threads_exact(num_threads):
    sess = fastcnn.InferenceSession(cnn_model(), num_threads=num_threads)
    rng = np.random.default_rng(1)
    # distinct inputs, two batch sizes: two plans in use at once
    xs = [rng.standard_normal((1 + k % 2, 3, 32, 32)).astype(np.float32) for k in range(N_THREADS)]
    want = [sess.run(None, {"x": x})[0] for x in xs]   # single-threaded (one Python thread)
    mismatches = []

    def body(k, j):
        x = xs[(k + j) % N_THREADS]
        (y,) = sess.run(None, {"x": x})
        if not np.array_equal(y, want[(k + j) % N_THREADS]):
            mismatches.append((k, j))

    hammer(body, N_THREADS, RUNS_PER_THREAD)
    assert not mismatches, f"{len(mismatches)} concurrent runs differ, e.g. {mismatches[:5]}"
    # the inputs were not written to, and a fresh run still agrees
    np.testing.assert_array_equal(sess.run(None, {"x": xs[0]})[0], want[0])


def test_sessions_with_different_thread_counts_do_not_interfere():
    models = [cnn_model(seed=0), cnn_model(seed=1), big_conv_model(c=16, hw=24)]
    sessions = [(fastcnn.InferenceSession(models[0], num_threads=1), 0),
                (fastcnn.InferenceSession(models[0], num_threads=2), 0),
                (fastcnn.InferenceSession(models[1], num_threads=2), 1),
                (fastcnn.InferenceSession(models[1], num_threads=3), 1),
                (fastcnn.InferenceSession(models[2], num_threads=1), 2),
                (fastcnn.InferenceSession(models[2], num_threads=2), 2)]
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)},
             {"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)},
             {"x": rng.standard_normal((1, 16, 24, 24)).astype(np.float32)}]
    want = [s.run(None, feeds[m])[0] for s, m in sessions]   # each alone, one at a time
    # sessions of one model agree across thread counts (to rounding)
    for (s, m), w in zip(sessions, want):
        np.testing.assert_allclose(w, want[2 * m], rtol=1e-5, atol=1e-5)
    bad = []

    def body(k, j):
        s, m = sessions[(k + j) % len(sessions)]
        (y,) = s.run(None, feeds[m])
        if not np.array_equal(y, want[(k + j) % len(sessions)]):
            bad.append((k, j))

    hammer(body, len(sessions), 12)
    assert not bad, bad[:5]


def test_session_used_from_another_thread_than_its_creator():
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("s", fastcnn.InferenceSession(
        cnn_model(), num_threads=2)))
    t.start()
    t.join()
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(np.float32)
    a = box["s"].run(None, {"x": x})[0]
    b = fastcnn.InferenceSession(cnn_model(), num_threads=2).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, b)


def _timed(fn, n_threads, n_runs):
    t = time.perf_counter()
    c = time.process_time()
    hammer(lambda k, j: fn(), n_threads, n_runs)
    return time.perf_counter() - t, time.process_time() - c


def test_gil_released_while_kernels_run():
    """Two Python threads running a big conv (num_threads=1 each) overlap: together they
    take clearly less than twice one thread's wall time.  Soft: on a machine too busy
    to give us two cores, skip rather than flake."""
    if (os.cpu_count() or 1) < 2 or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    sess = fastcnn.InferenceSession(big_conv_model(), num_threads=1)
    x = {"x": np.random.default_rng(0).standard_normal((1, 64, 56, 56)).astype(np.float32)}
    run = lambda: sess.run(None, x)      # noqa: E731
    for _ in range(3):
        run()
    t0 = time.perf_counter()
    run()
    per_run = time.perf_counter() - t0
    n = max(4, min(40, int(0.6 / max(per_run, 1e-4))))   # ~0.6 s of work per thread
    results = []
    for attempt in range(3):
        one, _ = _timed(run, 1, n)
        two, cpu2 = _timed(run, 2, n)
        ratio = two / one
        results.append((round(one, 3), round(two, 3), round(ratio, 2), round(cpu2 / two, 2)))
        if ratio < 1.6:
            print(f"GIL overlap: 1 thread {one:.3f} s, 2 threads {two:.3f} s for {n} runs each "
                  f"(ratio {ratio:.2f}, CPU/wall with 2 threads {cpu2 / two:.2f})")
            return
    load = os.getloadavg()[0]
    # the CPU/wall ratio with two threads is > 1 only if both ran at once: GIL released
    if max(r[3] for r in results) > 1.3 or load > 1.0:
        pytest.skip(f"machine too busy for a clean overlap measurement (load {load:.1f}); "
                    f"(one, two, ratio, cpu/wall) = {results}")
    pytest.fail(f"no overlap: (one, two, ratio, cpu/wall) = {results}")


def test_python_threads_progress_during_a_long_kernel():
    """Load-robust form of the GIL check: while one thread runs a long convolution, the
    main thread keeps executing Python.  With the GIL held during the kernel, the main
    thread would stall for the whole run; we require its longest stall to be well under
    half of the run."""
    # ~3.7 GFLOP: tens of ms per run even at 100 GFLOP/s
    sess = fastcnn.InferenceSession(big_conv_model(c=96, hw=160), num_threads=1)
    x = {"x": np.random.default_rng(0).standard_normal((1, 96, 160, 160)).astype(np.float32)}
    sess.run(None, x)
    done = threading.Event()
    span = {}

    def worker():
        t = time.perf_counter()
        for _ in range(2):
            sess.run(None, x)
        span["run"] = (time.perf_counter() - t) / 2
        done.set()

    th = threading.Thread(target=worker)
    ticks = 0
    max_gap = 0.0
    th.start()
    last = time.perf_counter()
    while not done.is_set():
        now = time.perf_counter()
        max_gap = max(max_gap, now - last)
        last = now
        ticks += 1
    th.join()
    print(f"one run {span['run'] * 1e3:.0f} ms; main thread ticked {ticks} times, "
          f"longest stall {max_gap * 1e3:.1f} ms")
    assert span["run"] > 0.02, "kernel too short to tell"
    assert max_gap < 0.5 * span["run"], (span, max_gap)
