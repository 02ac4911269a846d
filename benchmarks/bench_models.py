"""Whole models (fastcnn.zoo, built without downloads): fastcnn vs onnxruntime, 1 and 2
threads, batch 1 (and batch 8 for the classification nets); session creation time and
peak RSS in a fresh process.

    pytest benchmarks/bench_models.py                       # timings + summary table
    pytest benchmarks/bench_models.py --benchmark-disable   # smoke: every case once
"""
import functools

import onnx
import pytest

from conftest import RUNTIMES, SESSION_STATS, THREADS
from fastcnn import benchmark as B
from fastcnn import zoo

BATCH8 = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "tiny")
CASES = [(m, 1) for m in zoo.MODELS] + [(m, 8) for m in BATCH8]


@functools.lru_cache(maxsize=None)
def _model(name):
    return zoo.get(name)


@functools.lru_cache(maxsize=None)
def _flops(name, batch):
    return B.model_flops(_model(name), zoo.input_shapes(name, batch))[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name,batch", CASES, ids=[f"{m}-b{b}" for m, b in CASES])
def test_model(bench_pair, name, batch, threads, runtime):
    feeds = zoo.random_inputs(name, batch)
    bench_pair("models", f"{name} b{batch}", _model(name), feeds, runtime, threads,
               flops=_flops(name, batch), key=name)


SESSION_MODELS = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "tiny")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", SESSION_MODELS)
def test_session_creation_and_rss(tmp_path, benchmark, name, runtime):
    """Session creation ms, first run, peak RSS: one fresh subprocess per measurement."""
    path = tmp_path / f"{name}.onnx"
    onnx.save(_model(name), str(path))
    try:
        stats = B.session_stats(str(path), runtime, 1, zoo.input_shapes(name))
    except RuntimeError as e:
        SESSION_STATS.append({"model": name, "runtime": runtime, "error": str(e)})
        if runtime == "fastcnn":
            pytest.skip(str(e))
        raise
    SESSION_STATS.append({"model": name, "runtime": runtime, **stats})
    benchmark.group = f"session {name}"
    benchmark.extra_info.update(stats)
    # pytest-benchmark needs a timed call; time session creation in-process as well
    if runtime == "fastcnn":
        benchmark.pedantic(B.fastcnn_session, args=(_model(name), 1), rounds=1 if getattr(
            benchmark, "disabled", False) else 5, iterations=1)
    else:
        data = _model(name).SerializeToString()
        benchmark.pedantic(B.ort_session, args=(data, 1), rounds=1 if getattr(
            benchmark, "disabled", False) else 5, iterations=1)
