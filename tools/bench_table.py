#!/usr/bin/env python
"""Measure the zoo models against onnxruntime and write the README's results table.

    python tools/bench_table.py                          # all zoo models, 1 and 2 threads
    python tools/bench_table.py --models resnet18,tiny --seconds 3 --batch 1,8
    python tools/bench_table.py --session-stats          # + creation time and peak RSS
    python tools/bench_table.py --stdout                 # print, don't touch README.md

Measurements come from `fastcnn.benchmark.bench_model` (interleaved with onnxruntime in one
process, p50 latency), not from parsing `fastcnn bench` output.  The table replaces whatever
is between `<!-- bench-table:start -->` and `<!-- bench-table:end -->` in README.md; without
those markers it is printed to stdout.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from fastcnn import benchmark as B  # noqa: E402
from fastcnn import zoo  # noqa: E402

STATS_PROCESSES = 5   # fresh processes per runtime and model for --session-stats

START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def measure(models, threads, batches, seconds, warmup, session_stats=False, log=sys.stderr,
            openvino=False):
    rows, stats, machine = [], [], None
    compare = "onnxruntime,openvino" if openvino else "onnxruntime"
    for name in models:
        print(f"[bench_table] {name} ...", file=log, flush=True)
        res = B.bench_model("zoo:" + name, threads, batches, compare=compare,
                            seconds=seconds, warmup=warmup, progress=log.isatty())
        machine = res["machine"]
        by = {(r["runtime"], r["threads"], r["batch"]): r for r in res["results"]}
        errs = {(e["threads"], e["batch"]): e["error"] for e in res["errors"]}
        for b in batches:
            for t in threads:
                fc, ort = by.get(("fastcnn", t, b)), by.get(("onnxruntime", t, b))
                ov = by.get(("openvino", t, b))
                rows.append({"model": name, "threads": t, "batch": b,
                             "gflop": res["gflop"][str(b)],
                             "fastcnn_ms": fc and fc["p50_ms"], "ort_ms": ort and ort["p50_ms"],
                             "ratio": fc["p50_ms"] / ort["p50_ms"] if fc and ort else None,
                             "gflops": fc and fc["gflops"], "peak_pct": fc and fc["peak_pct"],
                             "ov_ms": ov and ov["p50_ms"],
                             "ov_ratio": fc["p50_ms"] / ov["p50_ms"] if fc and ov else None,
                             "error": errs.get((t, b))})
        if session_stats:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, name + ".onnx")
                import onnx
                onnx.save(zoo.get(name), path)
                # medians of STATS_PROCESSES fresh processes per runtime, interleaved:
                # one process's creation swings 2-3x with the host (page faults, huge-page
                # compaction of the large weight arrays)
                got = {"fastcnn": [], "onnxruntime": []}
                err = {}
                for _ in range(STATS_PROCESSES):
                    for rt in got:
                        try:
                            got[rt].append(B.session_stats(path, rt, 1, zoo.input_shapes(name)))
                        except RuntimeError as e:
                            err[rt] = {"error": str(e)}
                for rt, runs in got.items():
                    s = err.get(rt) or {k: float(np.median([r[k] for r in runs]))
                                        for k in runs[0]}
                    stats.append({"model": name, "runtime": rt, **s})
    return rows, stats, machine


def _short(err: str, n: int = 200) -> str:
    """One line: the error without onnxruntime-style supported-op lists, cut to n chars."""
    text = err.split("Supported ops:")[0]
    text = " ".join(x.strip() for x in text.splitlines() if x.strip())
    return (text[:n - 1] + "…" if len(text) > n else text).replace("|", "/")


def markdown(rows, stats, machine, seconds) -> str:
    with_ov = any(r.get("ov_ms") for r in rows)
    peaks = ", ".join(f"{t} thread{'s' if t != '1' else ''}: {_f(p, '.0f')}"
                      for t, p in machine["peak_gflops"].items())
    out = [f"Measured {datetime.date.today().isoformat()} on {machine['cpu']} "
           f"(onnxruntime {machine['onnxruntime']}"
           + (f", OpenVINO {str(machine.get('openvino')).split('-')[0]} with f32 precision" if with_ov else "")
           + f", Python {machine['python']}, numpy "
           f"{machine['numpy']}); FMA peak GFLOP/s {peaks}"
           + ("" if any(machine["peak_gflops"].values()) else " (peak not probed)") + ". "
           f"p50 latency, fastcnn and {'its peers' if with_ov else 'onnxruntime'} interleaved in one process, ~{seconds:g} s "
           "per configuration; ratio < 1 means fastcnn is faster. "
           "Generated by `python tools/bench_table.py`.", "",
           "| model | batch | threads | GFLOP | ms fastcnn | ms ORT | fastcnn/ORT | "
           + ("ms OpenVINO | fastcnn/OpenVINO | " if with_ov else "") + "GFLOP/s | % peak |",
           "|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if with_ov else "") + "---:|---:|"]
    for r in rows:
        fc = _f(r["fastcnn_ms"], ".2f") if r["fastcnn_ms"] is not None else \
            ("not yet" if r["error"] else "—")
        out.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['gflop']:.3f} | {fc} | "
                   f"{_f(r['ort_ms'], '.2f')} | {_f(r['ratio'], '.2f')}"
                   f"{'×' if r['ratio'] is not None else ''} | "
                   + (f"{_f(r.get('ov_ms'), '.2f')} | {_f(r.get('ov_ratio'), '.2f')}"
                      f"{'×' if r.get('ov_ratio') is not None else ''} | " if with_ov else "")
                   + f"{_f(r['gflops'], '.1f')} | "
                   f"{_f(r['peak_pct'], '.0f')} |")
    ratios = [r["ratio"] for r in rows if r["ratio"]]
    if ratios:
        gm = math.exp(sum(map(math.log, ratios)) / len(ratios))
        out += ["", f"Geometric mean fastcnn/ORT over {len(ratios)} configurations: "
                    f"**{gm:.2f}×**."]
    ov_ratios = [r["ov_ratio"] for r in rows if r.get("ov_ratio")]
    if ov_ratios:
        gm = math.exp(sum(map(math.log, ov_ratios)) / len(ov_ratios))
        out[-1] += (f" Geometric mean fastcnn/OpenVINO over {len(ov_ratios)} configurations: "
                    f"**{gm:.2f}×**.")
    missing = sorted({(r["model"], _short(r["error"])) for r in rows if r["error"]})
    if missing:
        out += ["", "Not yet runnable by fastcnn: " +
                "; ".join(f"{m} ({e})" for m, e in missing) + "."]
    if stats:
        out += ["", "| model | runtime | session creation ms | first run ms | peak RSS MB |",
                "|---|---|---:|---:|---:|"]
        for s in stats:
            if "error" in s:
                out.append(f"| {s['model']} | {s['runtime']} | failed: {_short(s['error'], 80)} "
                           "| — | — |")
            else:
                out.append(f"| {s['model']} | {s['runtime']} | {s['create_ms']:.1f} | "
                           f"{s['first_run_ms']:.1f} | {s['peak_rss_mb']:.0f} |")
    return "\n".join(out)


def write_readme(table: str, readme: str) -> bool:
    """Replace the block between the markers; False when README or markers are missing."""
    if not os.path.exists(readme):
        return False
    text = open(readme, encoding="utf-8").read()
    if START not in text or END not in text or text.index(START) > text.index(END):
        return False
    a = text.index(START) + len(START)
    b = text.index(END)
    new = text[:a] + "\n" + table + "\n" + text[b:]
    with open(readme, "w", encoding="utf-8") as f:
        f.write(new)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(zoo.MODELS),
                   help="comma list of zoo models (default: all)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--batch", default="1")
    p.add_argument("--seconds", type=float, default=2.0, help="per configuration")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--session-stats", action="store_true",
                   help="also session creation time and peak RSS (fresh process each)")
    p.add_argument("--openvino", action="store_true",
                   help="also compare with OpenVINO (pip install '.[bench]')")
    p.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    p.add_argument("--stdout", action="store_true", help="print only; leave README.md alone")
    a = p.parse_args(argv)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in zoo.MODELS]
    if unknown:
        p.error(f"unknown zoo models {unknown}; choose from {', '.join(zoo.MODELS)}")
    threads = [int(t) for t in a.threads.split(",")]
    batches = [int(b) for b in a.batch.split(",")]
    rows, stats, machine = measure(models, threads, batches, a.seconds, a.warmup,
                                   a.session_stats, openvino=a.openvino)
    table = markdown(rows, stats, machine, a.seconds)
    if a.stdout or not write_readme(table, a.readme):
        if not a.stdout:
            print(f"[bench_table] {a.readme} lacks {START} / {END}: printing the table",
                  file=sys.stderr)
        print(table)
    else:
        print(f"[bench_table] wrote the table into {a.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
