"""Shared machinery of the pytest-benchmark suites: fastcnn vs onnxruntime in the same run.

Every case is parametrized by runtime ("fastcnn", "onnxruntime") and grouped by
(case, threads), so pytest-benchmark's table shows the pair side by side.  Besides
pytest-benchmark's own timing, the first test of a pair measures both runtimes
*interleaved* (fastcnn, ORT, ORT, fastcnn, ...: noise hits both alike) and stores the
p50s and the ratio in `benchmark.extra_info`; the terminal summary prints those pairs:

    case | threads | ms fastcnn | ms ORT | fastcnn/ORT | GFLOP/s | % peak

`pytest benchmarks --benchmark-disable` runs every case once (smoke test).  Cases fastcnn
cannot run yet are skipped with the reason (e.g. the unsupported op).
Environment: FASTCNN_BENCH_SECONDS (interleaved time per pair, default 1.0).
"""
from __future__ import annotations

import functools
import os
from typing import Dict, Optional, Tuple

import sys

import pytest

try:
    import fastcnn  # noqa: F401
except ImportError:          # running from a checkout without an install
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastcnn import benchmark as B  # noqa: E402

RUNTIMES = ("fastcnn", "onnxruntime")
THREADS = (1, 2)
SECONDS = float(os.environ.get("FASTCNN_BENCH_SECONDS", "1.0"))

# (suite, case, threads) -> pair measurement; rows for the terminal summary
PAIRS: Dict[Tuple[str, str, int], dict] = {}
SESSION_STATS: list = []


# tests run model by model (runtime and threads vary fastest): keep a few sessions only
@functools.lru_cache(maxsize=4)
def _fastcnn_session(key, threads):
    model = _MODELS[key]
    return B.fastcnn_session(model, threads)


@functools.lru_cache(maxsize=4)
def _ort_session(key, threads):
    return B.ort_session(_MODELS[key], threads)


_MODELS: dict = {}


def _error_text(e) -> str:
    lines = str(e).splitlines()
    return (f"fastcnn cannot run this yet: {type(e).__name__}: "
            + " ".join(line.strip() for line in lines[:3]))


def _pair(suite, case, key, threads, feeds, flops, disabled) -> dict:
    """Measure fastcnn and onnxruntime interleaved (once each when benchmarks are disabled)."""
    k = (suite, case, threads)
    if k in PAIRS:
        return PAIRS[k]
    o = _ort_session(key, threads)
    runners = {"onnxruntime": lambda: o.run(None, feeds)}
    err = None
    try:
        sess = _fastcnn_session(key, threads)
        runners = {"fastcnn": lambda: sess.run(None, feeds), **runners}
    except Exception as e:
        err = _error_text(e)
    try:
        if disabled:
            times = B.measure(runners, runs=1, warmup=0)
        else:
            times = B.measure(runners, seconds=SECONDS, warmup=3)
    except Exception as e:          # fastcnn failed while running: measure ORT alone
        if "fastcnn" not in runners:
            raise
        err = _error_text(e)
        runners.pop("fastcnn")
        times = B.measure(runners, runs=1 if disabled else None,
                          seconds=None if disabled else SECONDS, warmup=0 if disabled else 3)
    peak = B.peak_gflops(threads)
    row = {"suite": suite, "case": case, "threads": threads, "gflop": flops / 1e9,
           "error": err, "peak": peak}
    for rt, ts in times.items():
        row[f"{rt}_ms"] = B.percentiles(ts)["p50_ms"]
    if "fastcnn_ms" in row:
        row["ratio"] = row["fastcnn_ms"] / row["onnxruntime_ms"]
        row["gflops"] = flops / row["fastcnn_ms"] / 1e6 if flops else None
        row["peak_pct"] = 100 * row["gflops"] / peak if peak and row["gflops"] else None
    row["ort_gflops"] = flops / row["onnxruntime_ms"] / 1e6 if flops else None
    PAIRS[k] = row
    return row


def run_case(benchmark, suite: str, case: str, model, feeds, runtime: str, threads: int,
             flops: Optional[float] = None, key: Optional[str] = None):
    """Benchmark `runtime` on `model` (pytest-benchmark), after measuring the interleaved pair.

    `key` identifies the model for session caching (default: suite/case)."""
    key = key or f"{suite}/{case}"
    _MODELS.setdefault(key, model)
    if flops is None:
        flops = B.model_flops(model, {k: v.shape for k, v in feeds.items()})[0]
    disabled = getattr(benchmark, "disabled", False)
    row = _pair(suite, case, key, threads, feeds, flops, disabled)
    benchmark.group = f"{case} t{threads}"
    benchmark.extra_info.update({"runtime": runtime, "threads": threads,
                                 "gflop": flops / 1e9,
                                 "interleaved_p50_ms_fastcnn": row.get("fastcnn_ms"),
                                 "interleaved_p50_ms_onnxruntime": row.get("onnxruntime_ms"),
                                 "ratio_fastcnn_over_onnxruntime": row.get("ratio")})
    if runtime == "fastcnn" and row["error"]:
        pytest.skip(row["error"])
    if disabled:
        return      # smoke mode: the interleaved pair above already ran each runtime once
    sess = _fastcnn_session(key, threads) if runtime == "fastcnn" else _ort_session(key, threads)
    benchmark(sess.run, None, feeds)


def pytest_configure(config):
    # smoke mode (--benchmark-disable) skips the fixture call: the pair already ran once
    config.addinivalue_line("filterwarnings",
                            "ignore:Benchmark fixture was not used at all in this test")


def pytest_collect_file(file_path, parent):
    """Collect benchmarks/bench_*.py (the suites live outside testpaths, named bench_*)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        if file_path in getattr(parent.session, "_initialpaths", ()):
            return None       # named on the command line: pytest collects it already
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture
def bench_pair(benchmark):
    """`bench_pair(suite, case, model, feeds, runtime, threads, flops=None)`."""
    return functools.partial(run_case, benchmark)


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def summary_lines(rows, title) -> list:
    lines = [title,
             f"{'case':34s} {'thr':>3s} {'ms fastcnn':>11s} {'ms ORT':>9s} {'ratio':>7s} "
             f"{'GFLOP/s':>8s} {'ORT GF/s':>8s} {'% peak':>7s}"]
    for r in rows:
        fc = r.get("fastcnn_ms")
        lines.append(f"{r['case'][:34]:34s} {r['threads']:3d} "
                     f"{_fmt(fc, '11.3f') if fc is not None else 'unsupported':>11s} "
                     f"{r['onnxruntime_ms']:9.3f} {_fmt(r.get('ratio'), '7.2f')} "
                     f"{_fmt(r.get('gflops'), '8.2f')} {_fmt(r.get('ort_gflops'), '8.2f')} "
                     f"{_fmt(r.get('peak_pct'), '7.1f')}")
    ratios = [r["ratio"] for r in rows if r.get("ratio")]
    if ratios:
        import math
        gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        lines.append(f"geometric mean fastcnn/ORT over {len(ratios)} pairs: {gm:.3f}  "
                     f"(< 1: fastcnn faster)")
    skipped = sorted({r["error"] for r in rows if r.get("error")})
    for s in skipped:
        lines.append(f"  unsupported: {s[:150]}")
    return lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not PAIRS and not SESSION_STATS:
        return
    tr = terminalreporter
    tr.section("fastcnn vs onnxruntime (interleaved p50, same process)")
    peaks = {t: B.peak_gflops(t) for t in THREADS}
    tr.write_line(f"machine: {B.cpu_description()}; FMA peak GFLOP/s "
                  + ", ".join(f"{t}t {_fmt(p, '.0f')}" for t, p in peaks.items())
                  + ("" if any(peaks.values()) else " (unknown: SIMD module lacks the probe)"))
    for suite in sorted({k[0] for k in PAIRS}):
        rows = [PAIRS[k] for k in PAIRS if k[0] == suite]
        for line in summary_lines(rows, f"\n[{suite}]"):
            tr.write_line(line)
    if SESSION_STATS:
        tr.write_line("\n[session creation and peak RSS, fresh process each]")
        tr.write_line(f"{'model':22s} {'runtime':12s} {'create ms':>10s} {'1st run ms':>11s} "
                      f"{'peak RSS MB':>12s} {'session MB':>11s}")
        for s in SESSION_STATS:
            if "error" in s:
                tr.write_line(f"{s['model']:22s} {s['runtime']:12s} {s['error'][:60]}")
                continue
            tr.write_line(f"{s['model']:22s} {s['runtime']:12s} {s['create_ms']:10.1f} "
                          f"{s['first_run_ms']:11.1f} {s['peak_rss_mb']:12.1f} "
                          f"{s['peak_rss_mb'] - s['baseline_rss_mb']:11.1f}")
