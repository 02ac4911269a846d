"""`fastcnn bench`: latency percentiles, throughput, GFLOP/s, % of machine peak, per-node
profile, and onnxruntime measured interleaved in the same process.

    fastcnn bench zoo:resnet18 --threads 1,2 --batch 1,8 --compare onnxruntime --profile
    fastcnn bench model.onnx --shape input=1x3x224x224 --time 5 --json

MODEL is a path to an .onnx file or a zoo model (`zoo:NAME`, or a bare NAME that is not a
file; see `fastcnn.zoo.MODELS`).  The first dimension of every input is the batch: it is
set to each value of --batch (a --shape gives the other dimensions; if --batch is left at
its default and a --shape has another first dimension, that one is used).

Method: each runtime is warmed up (--warmup runs), then the runtimes are run *alternately*
(fastcnn, onnxruntime, fastcnn, ...) so that noise from a shared machine hits both alike;
--runs N timed runs each, or as many as fit in --time S seconds per configuration (default:
1 s, at least 5 runs).  onnxruntime gets intra_op_num_threads = threads, inter_op 1,
sequential execution.  GFLOP/s counts 2·MAC of Conv/ConvTranspose/Gemm/MatMul (from
`fastcnn.analysis` when available); % peak divides by the FMA peak probed by the SIMD
kernel module for the same thread count (unknown when that module is not built).

The functions below are the API the pytest-benchmark suites and tools/bench_table.py use:
`load_model`, `resolve_shapes`, `make_feeds`, `model_flops`, `machine_info`, `peak_gflops`,
`fastcnn_runner`, `ort_runner`, `measure`, `percentiles`, `profile_nodes`, `bench_model`,
`session_stats`.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

PROFILE_TOLERANCE = 0.10   # node times must add up to the whole run within this share


# ---------------------------------------------------------------------------------------
# Models, shapes, feeds
# ---------------------------------------------------------------------------------------
def load_model(spec):
    """(onnx.ModelProto, display name) from a path, bytes, ModelProto, 'zoo:NAME' or NAME."""
    import onnx
    if isinstance(spec, onnx.ModelProto):
        return spec, spec.graph.name or "model"
    if isinstance(spec, (bytes, bytearray)):
        return onnx.load_from_string(bytes(spec)), "model"
    spec = str(spec)
    from . import zoo
    if spec.startswith("zoo:"):
        return zoo.get(spec[4:]), spec
    if not os.path.exists(spec) and spec in zoo.MODELS:
        return zoo.get(spec), "zoo:" + spec
    if not os.path.exists(spec):
        raise ValueError(f"model '{spec}' is neither a file nor a zoo model "
                         f"(zoo: {', '.join(zoo.MODELS)})")
    return onnx.load(spec), os.path.basename(spec)


def _graph_inputs(model):
    """[(name, [dims as int or str or None]), ...] of the real (non-initializer) inputs."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        out.append((vi.name, dims))
    return out


def parse_shape_args(items: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """['input=1x3x224x224', ...] → {'input': (1, 3, 224, 224)}."""
    shapes = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--shape wants NAME=1x3x224x224, got '{item}'")
        name, dims = item.split("=", 1)
        try:
            shapes[name] = tuple(int(d) for d in dims.lower().replace(",", "x").split("x"))
        except ValueError:
            raise ValueError(f"--shape {item}: dimensions must be integers") from None
    return shapes


def resolve_shapes(model, batch: Optional[int] = None,
                   shapes: Optional[Dict[str, Sequence[int]]] = None) -> Dict[str, Tuple[int, ...]]:
    """Concrete input shapes: given `shapes` or the model's; dim 0 set to `batch` (if not None).

    Zoo models get their documented default shapes; other symbolic dims must be given."""
    shapes = dict(shapes or {})
    from . import zoo
    name = model.graph.name
    defaults = zoo.INPUT_SHAPES.get(name, {}) if model.producer_name == "fastcnn.zoo" else {}
    out = {}
    for inp, dims in _graph_inputs(model):
        if inp in shapes:
            s = list(shapes.pop(inp))
            if len(s) != len(dims):
                raise ValueError(f"--shape {inp}: rank {len(s)} but the model's input has rank "
                                 f"{len(dims)} ({dims})")
            for k, (g, d) in enumerate(zip(s, dims)):
                if k > 0 and isinstance(d, int) and d > 0 and g != d:
                    raise ValueError(f"--shape {inp}={'x'.join(map(str, s))}: dimension {k} is "
                                     f"fixed to {d} in the model ({dims})")
        elif inp in defaults:
            s = list(defaults[inp])
        else:
            s = list(dims)
            if s and not isinstance(s[0], int):
                s[0] = 1
            bad = [d for d in s[1:] if not isinstance(d, int) or d <= 0]
            if bad:
                raise ValueError(f"input '{inp}' has symbolic dims {dims}; give them with "
                                 f"--shape {inp}=1x3x224x224")
        if batch is not None and s:
            fixed = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None
            if fixed is not None and fixed != batch:
                raise ValueError(f"input '{inp}' has a fixed batch of {fixed}; cannot run batch "
                                 f"{batch}")
            s[0] = batch
        out[inp] = tuple(int(d) for d in s)
    if shapes:
        raise ValueError(f"--shape names unknown input(s) {sorted(shapes)}; the model's inputs "
                         f"are {[n for n, _ in _graph_inputs(model)]}")
    return out


_NP_OF_ONNX = {1: np.float32, 11: np.float64, 10: np.float16, 7: np.int64, 6: np.int32,
               3: np.int8, 2: np.uint8, 9: np.bool_}


def make_feeds(model, shapes: Dict[str, Sequence[int]], seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded random feeds of the right dtype for each input."""
    rng = np.random.default_rng(seed)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.input}
    feeds = {}
    for name, shape in shapes.items():
        dt = np.dtype(_NP_OF_ONNX.get(elem.get(name, 1), np.float32))
        if dt.kind == "f":
            feeds[name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind == "b":
            feeds[name] = rng.integers(0, 2, shape).astype(dt)
        else:
            feeds[name] = rng.integers(0, 8, shape).astype(dt)
    return feeds


# ---------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------
def _with_shapes(model, shapes):
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            for d, v in zip(dims, shapes[vi.name]):
                d.Clear()
                d.dim_value = int(v)
    for vi in m.graph.output:   # let inference fill the outputs in
        vi.type.tensor_type.ClearField("shape")
    del m.graph.value_info[:]
    return m


def _own_flops(model, shapes) -> Dict[str, float]:
    """2·MAC per Conv/ConvTranspose/Gemm/MatMul node, from ONNX shape inference."""
    import onnx
    m = onnx.shape_inference.infer_shapes(_with_shapes(model, shapes), data_prop=True)
    known = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in vi.type.tensor_type.shape.dim]
        known[vi.name] = dims
    for t in m.graph.initializer:
        known[t.name] = list(t.dims)
    flops = {}
    for k, n in enumerate(m.graph.node):
        name = n.name or f"{n.op_type}_{k}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        try:
            if n.op_type == "Conv":
                w = known[n.input[1]]
                y = known[n.output[0]]
                f = 2.0 * np.prod(y, dtype=np.float64) * np.prod(w[1:], dtype=np.float64)
            elif n.op_type == "ConvTranspose":
                w = known[n.input[1]]
                x = known[n.input[0]]
                f = 2.0 * np.prod(x, dtype=np.float64) * np.prod(w[1:], dtype=np.float64)
            elif n.op_type == "Gemm":
                b = known[n.input[1]]
                y = known[n.output[0]]
                kdim = b[1] if attrs.get("transB", 0) else b[0]
                f = 2.0 * np.prod(y, dtype=np.float64) * kdim
            elif n.op_type == "MatMul":
                a = known[n.input[0]]
                y = known[n.output[0]]
                f = 2.0 * np.prod(y, dtype=np.float64) * a[-1]
            else:
                continue
        except (KeyError, IndexError, TypeError):
            continue
        if f == f:   # not NaN
            flops[name] = float(f)
    return flops


def model_flops(model, shapes) -> Tuple[float, Dict[str, float]]:
    """(total FLOPs, {node name: FLOPs}) for concrete input shapes.

    Uses `fastcnn.analysis.summarize` when that module exists, else 2·MAC of
    Conv/ConvTranspose/Gemm/MatMul computed here."""
    try:
        from .analysis import summarize   # type: ignore
    except Exception:
        summarize = None
    if summarize is not None:
        try:
            s = summarize(model, shapes)
            per = {str(n.get("name")): float(n.get("flops") or 0) for n in s.get("nodes", [])}
            return float(s["total_flops"]), per
        except Exception:
            pass
    per = _own_flops(model, shapes)
    return float(sum(per.values())), per


# ---------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------
_PEAK_CACHE: Dict[int, Optional[float]] = {}


def _probe():
    import importlib
    for mod in ("peak", "conv_nchwc", "gemm"):
        try:
            fn = getattr(importlib.import_module(f"fastcnn._kernels.{mod}"), "fma_peak_gflops")
            return fn
        except Exception:
            continue
    return None


def peak_gflops(n_threads: int) -> Optional[float]:
    """FMA peak GFLOP/s for n_threads, probed by the SIMD kernel module (best of 3 probes of
    0.2 s: a shared machine only ever lowers a probe; never below the 1-thread peak); None
    when no kernel module exposes `fma_peak_gflops`."""
    if n_threads in _PEAK_CACHE:
        return _PEAK_CACHE[n_threads]
    fn = _probe()
    val = None
    if fn is not None:
        try:
            val = max(float(fn(n_threads, seconds=0.2)) for _ in range(3))
            if n_threads > 1:
                one = peak_gflops(1)
                if one:
                    val = max(val, one)
        except Exception:
            val = None
    _PEAK_CACHE[n_threads] = val
    return val


def cpu_description() -> str:
    name = platform.processor() or platform.machine()
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else \
        "neon" if platform.machine().startswith(("arm", "aarch")) else platform.machine()
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return f"{name}, {n} CPUs, {isa}"


def machine_info(threads: Sequence[int]) -> dict:
    peaks = {str(t): peak_gflops(t) for t in threads}
    return {"cpu": cpu_description(), "peak_gflops": peaks,
            "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": _ort_version(), "openvino": _ov_version()}


def _ort_version():
    try:
        import onnxruntime
        return onnxruntime.__version__
    except Exception:
        return None


def _ov_version():
    try:
        import openvino
        return openvino.__version__
    except Exception:
        return None


#: runtimes `--compare` accepts, fastcnn's peers
PEERS = ("onnxruntime", "openvino")


def parse_compare(compare) -> List[str]:
    """'onnxruntime', 'openvino' or 'onnxruntime,openvino' (or a list) -> list of peers."""
    if not compare:
        return []
    items = compare.split(",") if isinstance(compare, str) else list(compare)
    peers = [c.strip() for c in items if c.strip()]
    for c in peers:
        if c not in PEERS:
            raise ValueError(f"--compare supports {', '.join(PEERS)}, not {c!r}")
    return list(dict.fromkeys(peers))


# ---------------------------------------------------------------------------------------
# Runners and timing
# ---------------------------------------------------------------------------------------
def fastcnn_session(model, threads: int):
    from .session import InferenceSession
    return InferenceSession(model, num_threads=threads)


def ort_session(model, threads: int, spinning: Optional[bool] = None,
                profile_prefix: Optional[str] = None):
    """onnxruntime session: intra_op = threads, inter_op 1, sequential, CPU provider.

    `spinning` None keeps onnxruntime's default (worker threads spin between and briefly
    after runs); False sets session.intra_op.allow_spinning = 0.  The default follows env
    FASTCNN_BENCH_ORT_SPINNING (0/1) when set."""
    import onnxruntime as ort
    if spinning is None and os.environ.get("FASTCNN_BENCH_ORT_SPINNING", "") in ("0", "1"):
        spinning = os.environ["FASTCNN_BENCH_ORT_SPINNING"] == "1"
    so = ort.SessionOptions()
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def fastcnn_runner(model, threads: int, feeds) -> Callable[[], object]:
    sess = fastcnn_session(model, threads)
    return lambda: sess.run(None, feeds)


def ort_runner(model, threads: int, feeds) -> Callable[[], object]:
    sess = ort_session(model, threads)
    return lambda: sess.run(None, feeds)


def openvino_runner(model, threads: int, feeds) -> Callable[[], object]:
    """OpenVINO's CPU plugin on the same ONNX model: `threads` inference threads, one
    stream, latency hint, and f32 inference precision (on CPUs with bf16 support its
    default is bf16, which would not compute the ONNX model's float32 results)."""
    import openvino as ov
    core = ov.Core()
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    compiled = core.compile_model(core.read_model(model=data, weights=b""), "CPU", {
        "INFERENCE_NUM_THREADS": int(threads), "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    req = compiled.create_infer_request()
    names = [i.get_any_name() for i in compiled.inputs]
    vals = [feeds[n] for n in names]

    def run():
        req.infer(vals)
        return req.get_output_tensor(0).data
    return run


class Progress:
    """A plain '\\r' progress line on stderr, shown only for long runs."""

    def __init__(self, label: str, total: float, enabled: bool = True, stream=None):
        self.label, self.total = label, max(total, 1e-9)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = False

    def update(self, done: float, note: str = ""):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        frac = min(1.0, done / self.total)
        bar = "#" * int(frac * 24)
        self.stream.write(f"\r{self.label} [{bar:<24s}] {100 * frac:3.0f}% {note}   ")
        self.stream.flush()
        self._shown = True

    def close(self):
        if self._shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


def measure(runners: Dict[str, Callable[[], object]], runs: Optional[int] = None,
            seconds: Optional[float] = None, warmup: int = 5, min_runs: int = 5,
            progress: Optional[Progress] = None, block: int = 3,
            settle: float = 0.06, rewarm: float = 0.005) -> Dict[str, List[float]]:
    """Warm each runner up, then time them alternately; {name: [seconds per run]}.

    With several runners they alternate in blocks: before each block the runner
    that is about to be timed waits `settle` seconds (so the other runtime's
    spin-waiting worker threads go to sleep and free the cores: onnxruntime's spin
    for ~40 ms after a run by default, measured here), runs untimed for
    `rewarm` seconds (at least once: wakes its own pool and brings the cores back to
    speed), then is timed `block` times -- steady-state latency for both runtimes.  Run-by-run
    alternation would time each runtime against the other's spinning threads,
    which on a 2-core machine makes 2-thread runs collapse for both.
    Stops after `runs` timed runs each, or when `seconds` have passed (at least
    `min_runs` each)."""
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in runners}
    items = list(runners.items())
    several = len(items) > 1
    clock = time.perf_counter
    start = clock()
    if runs is None and seconds is None:
        seconds = 1.0
    r = 0
    while True:
        done = min(len(v) for v in times.values())
        if runs is not None and done >= runs:
            break
        if runs is None and done >= min_runs and clock() - start >= seconds:
            break
        # alternate the order each round so neither runtime always goes first
        for name, fn in (items if r % 2 == 0 else items[::-1]):
            n = block if several else 1
            if runs is not None:
                n = min(n, runs - len(times[name]))
            if several and n > 0:
                time.sleep(settle)
                # untimed runs for a few ms: wake this runtime's threads and let the
                # cores they land on come back to speed after the pause (a worker
                # woken on a core that idled 20 ms runs its first ms slower)
                t_warm = clock()
                fn()
                while clock() - t_warm < rewarm:
                    fn()
            for _ in range(n):
                t0 = clock()
                fn()
                times[name].append(clock() - t0)
        r += 1
        if progress is not None:
            done = min(len(v) for v in times.values())
            if runs is not None:
                progress.update(done, f"{done}/{runs}")
            else:
                progress.update(clock() - start, f"{done} runs")
    return times


def percentiles(times: Sequence[float]) -> Dict[str, float]:
    a = np.asarray(times, np.float64) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()),
            "min_ms": float(a.min())}


def _original_names(node) -> List[str]:
    fused = None
    attrs = getattr(node, "attrs", None) or {}
    if "fastcnn_fused" in attrs:
        fused = attrs["fastcnn_fused"]
    if fused:
        return [str(x) for x in fused]
    return [node.name]


def profile_nodes(sess, feeds, runs: int, flops_by_node: Dict[str, float],
                  plain_p50_ms: Optional[float] = None) -> dict:
    """Per-node times from `runs` calls of `run_profiled`: median ms (robust to a noisy,
    shared machine), mean ms, GFLOP/s, share of the sum of medians; sorted, slowest first.

    Returns {"nodes": [...], "sum_ms", "whole_ms", "coverage", ...}: `whole_ms` is the
    median wall time of the same profiled runs and `coverage` the median over runs of
    (sum of node times) / (wall time) — the rest is feed/output copies and executor cost."""
    per_run: List[List[float]] = []
    steps = None
    clock = time.perf_counter
    whole, cover, outside = [], [], []
    for _ in range(max(1, runs)):
        t0 = clock()
        _, prof = sess.run_profiled(feeds)
        dt_run = clock() - t0
        whole.append(dt_run)
        if steps is None:
            steps = [st for st, _ in prof]
        dts = [dt for _, dt in prof]
        per_run.append(dts)
        cover.append(sum(dts) / dt_run if dt_run > 0 else 0.0)
        outside.append((dt_run - sum(dts)) / max(1, len(dts)))
    n = len(per_run)
    arr = np.asarray(per_run, np.float64).reshape(n, len(steps or [])) * 1e3
    med = np.median(arr, axis=0) if arr.size else np.zeros(0)
    mean = arr.mean(axis=0) if arr.size else np.zeros(0)
    total = float(med.sum())
    rows = []
    for k, st in enumerate(steps or []):
        node = st.node
        ms = float(med[k])
        names = _original_names(node)
        fl = sum(flops_by_node.get(nm, 0.0) for nm in names)
        try:
            shape = [int(d) for d in st.out_infos[0].shape]
        except Exception:
            shape = None
        rows.append({"node": node.name, "op_type": node.op_type,
                     "fused": names if len(names) > 1 or names[0] != node.name else [],
                     "shape": shape, "ms": ms, "mean_ms": float(mean[k]), "flops": fl,
                     "gflops": (fl / (ms * 1e6)) if ms > 0 and fl else None,
                     "share": ms / total if total > 0 else 0.0})
    rows.sort(key=lambda r: -r["ms"])
    whole_ms = float(np.median(whole)) * 1e3
    return {"nodes": rows, "sum_ms": total, "whole_ms": whole_ms,
            "coverage": float(np.median(cover)), "plain_p50_ms": plain_p50_ms,
            "runs": n, "n_steps": len(rows),
            # what the run costs beyond the steps (feed/output copies, loop, timer calls)
            "outside_steps_us_per_step": 1e6 * float(np.median(outside)) if outside else 0.0}


#: onnxruntime's op names for what fastcnn calls one op (its fused conv, its layout steps)
_ORT_OP_ALIAS = {"FusedConv": "Conv", "NchwcConv": "Conv", "ReorderInput": "Reorder",
                 "ReorderOutput": "Reorder", "FusedGemm": "Gemm", "FusedMatMul": "MatMul"}


def op_totals(rows) -> Dict[str, float]:
    """{op type: ms} summed over profile_nodes' rows (fused nodes count as their main op)."""
    out: Dict[str, float] = {}
    for r in rows:
        out[r["op_type"]] = out.get(r["op_type"], 0.0) + r["ms"]
    return out


def ort_profile_ops(model, threads: int, feeds, runs: int) -> Dict[str, float]:
    """onnxruntime's own per-node profile (SessionOptions.enable_profiling) over `runs` runs:
    {op type: ms}, each node's median summed per op type (FusedConv counted as Conv, its
    NCHWc reorders as Reorder)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(model, threads, profile_prefix=os.path.join(tmp, "ort"))
        for _ in range(3):
            sess.run(None, feeds)
        for _ in range(max(1, runs)):
            sess.run(None, feeds)
        path = sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
    per_node: Dict[Tuple[str, str], List[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = str(e.get("args", {}).get("op_name", "?"))
            per_node.setdefault((e["name"], _ORT_OP_ALIAS.get(op, op)), []).append(e["dur"] / 1e3)
    out: Dict[str, float] = {}
    for (_, op), ts in per_node.items():
        out[op] = out.get(op, 0.0) + float(np.median(ts[-max(1, runs):]))
    return out


# ---------------------------------------------------------------------------------------
# The whole benchmark
# ---------------------------------------------------------------------------------------
def _result(runtime, threads, batch, times, flops, peak):
    p = percentiles(times)
    sec = p["p50_ms"] / 1e3
    gflops = flops / sec / 1e9 if flops and sec > 0 else None
    return {"runtime": runtime, "threads": threads, "batch": batch, **p,
            "runs": len(times),
            "throughput": batch / sec if sec > 0 else None,
            "gflops": gflops,
            "peak_pct": 100.0 * gflops / peak if gflops and peak else None}


def bench_model(model, threads: Sequence[int] = (1,), batches: Sequence[int] = (1,),
                compare: Optional[str] = None, runs: Optional[int] = None,
                seconds: Optional[float] = None, warmup: int = 5,
                shapes: Optional[Dict[str, Sequence[int]]] = None, profile: bool = False,
                progress: bool = True, name: Optional[str] = None,
                keep_times: bool = False) -> dict:
    """Benchmark one model; returns the object `fastcnn bench --json` prints.

    `model` is anything `load_model` accepts.  fastcnn failures (e.g. an op not yet
    implemented) are recorded in "errors" and, without `compare`, raised."""
    model, disp = load_model(model)
    name = name or disp
    threads = [int(t) for t in threads]
    batches = [int(b) for b in batches]
    out = {"model": name, "machine": machine_info(threads), "inputs": {}, "gflop": {},
           "results": [], "ratios": [], "profile": [], "errors": []}
    peers = []
    for peer in parse_compare(compare):
        try:
            __import__(peer)
            peers.append(peer)
        except ImportError:
            print(f"fastcnn bench: {peer} is not installed; --compare {peer} skipped",
                  file=sys.stderr)
    use_ort = "onnxruntime" in peers
    use_ov = "openvino" in peers
    fc_sessions, ort_sessions = {}, {}
    n_cfg = len(threads) * len(batches)
    est = (seconds if seconds is not None else 1.0) * n_cfg
    show = progress and (runs is None and est >= 2.0 or (runs or 0) * n_cfg >= 200)
    for b in batches:
        shp = resolve_shapes(model, b, shapes)
        out["inputs"][str(b)] = {k: list(v) for k, v in shp.items()}
        feeds = make_feeds(model, shp)
        flops, per_node = model_flops(model, shp)
        out["gflop"][str(b)] = flops / 1e9
        for t in threads:
            runners = {}
            if t not in fc_sessions:
                try:
                    fc_sessions[t] = fastcnn_session(model, t)
                except Exception as e:
                    fc_sessions[t] = e
            sess = fc_sessions[t]
            if isinstance(sess, Exception):
                if not peers:
                    raise sess
                out["errors"].append({"runtime": "fastcnn", "threads": t, "batch": b,
                                      "error": f"{type(sess).__name__}: {sess}"})
            else:
                runners["fastcnn"] = (lambda s=sess: s.run(None, feeds))
            if use_ort:
                try:
                    if t not in ort_sessions:
                        ort_sessions[t] = ort_session(model, t)
                    o = ort_sessions[t]
                    o.run(None, feeds)
                except Exception as e:
                    raise ValueError(f"onnxruntime cannot run this model with inputs "
                                     f"{ {k: list(v) for k, v in shp.items()} }: {e}") from e
                runners["onnxruntime"] = (lambda s=o: s.run(None, feeds))
            if use_ov:
                try:
                    fn = openvino_runner(model, t, feeds)
                    fn()
                except Exception as e:
                    raise ValueError(f"openvino cannot run this model with inputs "
                                     f"{ {k: list(v) for k, v in shp.items()} }: {e}") from e
                runners["openvino"] = fn
            if "fastcnn" in runners:
                try:
                    runners["fastcnn"]()
                except Exception as e:
                    if not peers:
                        raise
                    out["errors"].append({"runtime": "fastcnn", "threads": t, "batch": b,
                                          "error": f"{type(e).__name__}: {e}"})
                    del runners["fastcnn"]
            if not runners:
                continue
            bar = Progress(f"{name} t={t} b={b}", runs if runs is not None else
                           (seconds if seconds is not None else 1.0), enabled=show)
            times = measure(runners, runs=runs, seconds=seconds, warmup=warmup, progress=bar)
            bar.close()
            peak = peak_gflops(t)
            res = {}
            for rt, ts in times.items():
                r = _result(rt, t, b, ts, flops, peak)
                if keep_times:
                    r["times_ms"] = [x * 1e3 for x in ts]
                res[rt] = r
                out["results"].append(r)
            if "fastcnn" in res and any(pr in res for pr in peers):
                out["ratios"].append({"threads": t, "batch": b, **{
                    f"fastcnn_over_{pr}": res["fastcnn"]["p50_ms"] / res[pr]["p50_ms"]
                    for pr in peers if pr in res}})
            if profile and "fastcnn" in res:
                n_prof = len(times["fastcnn"]) if runs is not None else \
                    max(5, min(50, len(times["fastcnn"])))
                prof = profile_nodes(fc_sessions[t], feeds, n_prof, per_node,
                                     res["fastcnn"]["p50_ms"])
                prof["ops"] = {"fastcnn": op_totals(prof["nodes"])}
                if use_ort:
                    prof["ops"]["onnxruntime"] = ort_profile_ops(model, t, feeds, n_prof)
                out["profile"].append({"threads": t, "batch": b, **prof})
    return out


# ---------------------------------------------------------------------------------------
# Text output
# ---------------------------------------------------------------------------------------
def _f(v, fmt):
    return "-" if v is None else format(v, fmt)


def _fused_label(node: str, fused: Sequence[str]) -> str:
    """'layer1.0.conv1.conv' + ['layer1.0.conv1.bn', 'Relu_3'] → 'layer1.0.conv1.conv+bn+Relu_3'."""
    head = node.rsplit(".", 1)[0] + "." if "." in node else None
    extra = []
    for f in fused:
        if f == node:
            continue
        extra.append(f[len(head):] if head and f.startswith(head) else f)
    return node + "".join("+" + e for e in extra)


def format_report(res: dict, top: int = 15) -> str:
    lines = [f"model: {res['model']}"]
    for b, shp in res["inputs"].items():
        ins = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in shp.items())
        lines.append(f"  batch {b}: {ins}  ({res['gflop'][b]:.3f} GFLOP per run)")
    m = res["machine"]
    peaks = ", ".join(f"{t}t {_f(p, '.0f')}" for t, p in m["peak_gflops"].items())
    lines.append(f"machine: {m['cpu']}; FMA peak GFLOP/s: {peaks}"
                 + ("" if any(m["peak_gflops"].values()) else " (peak unknown: no SIMD kernel "
                                                             "module with the probe)"))
    lines.append("")
    hdr = (f"{'runtime':12s} {'thr':>3s} {'batch':>5s} {'p50 ms':>9s} {'p90 ms':>9s} "
           f"{'p99 ms':>9s} {'img/s':>9s} {'GFLOP/s':>8s} {'%peak':>6s} {'runs':>5s}")
    lines += [hdr, "-" * len(hdr)]
    ratio = {(r["threads"], r["batch"]): r for r in res["ratios"]}
    for r in res["results"]:
        lines.append(f"{r['runtime']:12s} {r['threads']:3d} {r['batch']:5d} {r['p50_ms']:9.3f} "
                     f"{r['p90_ms']:9.3f} {r['p99_ms']:9.3f} {_f(r['throughput'], '9.1f')} "
                     f"{_f(r['gflops'], '8.2f')} {_f(r['peak_pct'], '6.1f')} {r['runs']:5d}")
        k = (r["threads"], r["batch"])
        q = ratio.get(k, {}).get(f"fastcnn_over_{r['runtime']}")
        if q is not None:
            lines.append(f"{'':12s} ratio fastcnn/{r['runtime']} (p50): {q:.3f}x"
                         f"{'  (faster)' if q < 1 else ''}")
    for e in res["errors"]:
        lines.append(f"fastcnn could not run (threads {e['threads']}, batch {e['batch']}): "
                     f"{e['error'].splitlines()[0]}")
    for p in res["profile"]:
        lines.append("")
        cov = p["coverage"]
        lines.append(f"profile: threads {p['threads']}, batch {p['batch']}, {p['runs']} runs: "
                     f"node medians sum to {p['sum_ms']:.3f} ms; profiled run {p['whole_ms']:.3f} ms "
                     f"(steps cover {100 * cov:.0f}%); unprofiled p50 "
                     f"{_f(p['plain_p50_ms'], '.3f')} ms" if cov else "profile:")
        lines.append(f"  {p['n_steps']} steps; time outside the steps (copies, executor, "
                     f"timers): {p['outside_steps_us_per_step']:.1f} us per step")
        if cov and abs(1 - cov) > PROFILE_TOLERANCE:
            lines.append(f"  note: node times miss the whole run by more than "
                         f"{100 * PROFILE_TOLERANCE:.0f}% (feed/output copies, executor cost)")
        lines.append(f"  {'node (+fused)':44s} {'op':14s} {'out shape':18s} {'ms':>8s} {'share':>6s} "
                     f"{'GFLOP/s':>8s}")
        for row in p["nodes"][:top]:
            nm = _fused_label(row["node"], row["fused"])
            shp = "x".join(map(str, row["shape"])) if row["shape"] else "?"
            lines.append(f"  {nm[:44]:44s} {row['op_type'][:14]:14s} {shp[:18]:18s} "
                         f"{row['ms']:8.3f} {100 * row['share']:5.1f}% "
                         f"{_f(row['gflops'], '8.2f')}")
        if len(p["nodes"]) > top:
            rest = p["nodes"][top:]
            lines.append(f"  ... {len(rest)} more nodes, {sum(r['ms'] for r in rest):.3f} ms")
        ops = p.get("ops", {})
        if "onnxruntime" in ops:
            fc, ort_ = ops["fastcnn"], ops["onnxruntime"]
            lines.append("")
            lines.append(f"  per op type (sum of node medians; onnxruntime from its own profiler, "
                         f"its fused convs as Conv, NCHWc reorders as Reorder):")
            lines.append(f"  {'op':20s} {'fastcnn ms':>11s} {'ORT ms':>9s} {'ratio':>7s}")
            for op in sorted(set(fc) | set(ort_), key=lambda o: -max(fc.get(o, 0), ort_.get(o, 0))):
                a, b_ = fc.get(op), ort_.get(op)
                r = f"{a / b_:7.2f}" if a and b_ else f"{'-':>7s}"
                lines.append(f"  {op[:20]:20s} {_f(a, '.3f'):>11s} {_f(b_, '.3f'):>9s} {r}")
            lines.append(f"  {'total':20s} {sum(fc.values()):11.3f} {sum(ort_.values()):9.3f}")
    return "\n".join(lines)


def _plot(res: dict, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("fastcnn bench: matplotlib is not installed; --plot skipped", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in res["results"]:
        if "times_ms" in r:
            axes[0].hist(r["times_ms"], bins=30, alpha=0.5,
                         label=f"{r['runtime']} t{r['threads']} b{r['batch']}")
    axes[0].set_xlabel("latency (ms)")
    axes[0].legend(fontsize=7)
    if res["profile"]:
        rows = res["profile"][0]["nodes"][:15][::-1]
        axes[1].barh([r["node"][:30] for r in rows], [r["ms"] for r in rows])
        axes[1].set_xlabel("ms per run")
    fig.tight_layout()
    fig.savefig(path)
    return True


def _ints(text: str) -> List[int]:
    try:
        vals = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"expected a comma list of integers, got '{text}'") from None
    if not vals or any(v <= 0 for v in vals):
        raise ValueError(f"expected positive integers, got '{text}'")
    return vals


def bench_command(args) -> int:
    """`fastcnn bench` (args parsed in fastcnn.cli)."""
    model, name = load_model(args.model)
    shapes = parse_shape_args(getattr(args, "shape", []))
    threads = _ints(args.threads)
    batches = _ints(args.batch)
    if shapes and str(args.batch) == "1":
        firsts = {s[0] for s in shapes.values() if s}
        if len(firsts) == 1:
            batches = [firsts.pop()]
    if args.runs is not None and args.runs <= 0:
        raise ValueError("--runs must be positive")
    res = bench_model(model, threads, batches, compare=args.compare, runs=args.runs,
                      seconds=args.time, warmup=max(0, args.warmup), shapes=shapes,
                      profile=args.profile, name=name, keep_times=bool(args.plot))
    if args.plot:
        _plot(res, args.plot)
        for r in res["results"]:
            r.pop("times_ms", None)
    if args.json:
        print(json.dumps(res, default=_json_default))
    else:
        print(format_report(res))
    if not res["results"]:
        return 1
    return 0


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------------------
# Session creation time and peak RSS (fresh subprocess per measurement)
# ---------------------------------------------------------------------------------------
_STATS_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
runtime, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = json.loads(sys.argv[4])


def peak_rss_mb():
    # VmHWM is this process's own high-water mark (ru_maxrss also counts the forking parent)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if runtime == "fastcnn":
    import fastcnn
else:
    import onnxruntime as ort
rng = np.random.default_rng(0)
feeds = {k: rng.standard_normal(shape).astype(dt) for k, (shape, dt) in spec.items()}
rss1 = peak_rss_mb()
t0 = time.perf_counter()
if runtime == "fastcnn":
    s = fastcnn.InferenceSession(path, num_threads=threads)
else:
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
t1 = time.perf_counter()
s.run(None, feeds)
t2 = time.perf_counter()
for _ in range(2):
    s.run(None, feeds)
rss2 = peak_rss_mb()
print(json.dumps({"create_ms": 1e3 * (t1 - t0), "first_run_ms": 1e3 * (t2 - t1),
                  "peak_rss_mb": rss2, "baseline_rss_mb": rss1}))
"""


_PYCACHE_WARM: set = set()     # runtimes whose modules session_stats has had compiled


def session_stats(model_path: str, runtime: str = "fastcnn", threads: int = 1,
                  shapes: Optional[Dict[str, Sequence[int]]] = None,
                  timeout: float = 300) -> dict:
    """Session creation ms, first-run ms and peak RSS (MB, VmHWM) in a fresh Python process.

    `baseline_rss_mb` is the peak RSS after importing the runtime and making the feeds,
    before the session: `peak_rss_mb - baseline_rss_mb` is what the session costs.

    The process finds the runtime's Python modules compiled, as an installed package has
    them: where PYTHONDONTWRITEBYTECODE is set (some sandboxes and CI images), it is
    lifted for the child, bytecode goes to a private PYTHONPYCACHEPREFIX, and one
    untimed process fills it first.  (Otherwise every fastcnn module is compiled again in
    the timed process: ~110 ms of ResNet-18's ~170 ms "creation" here.)"""
    import onnx
    model = onnx.load(model_path)
    if shapes is None:
        shapes = resolve_shapes(model, 1)
    spec = {k: [list(v), str(f.dtype)] for (k, v), f in
            zip(shapes.items(), make_feeds(model, {k: (1,) * len(v) for k, v in shapes.items()})
                .values())}
    del model
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-c", _STATS_SCRIPT, runtime, model_path, str(threads),
           json.dumps(spec)]
    if env.pop("PYTHONDONTWRITEBYTECODE", None) and not env.get("PYTHONPYCACHEPREFIX"):
        import tempfile
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "fastcnn-bench-pycache")
        if runtime not in _PYCACHE_WARM:
            subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)  # fills it
            _PYCACHE_WARM.add(runtime)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        raise RuntimeError(f"{runtime} session in a subprocess failed: "
                           f"{err[-1] if err else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
