"""Model analysis: per-layer shapes, receptive fields, FLOPs, params and lint.

    summary = fastcnn.analysis.summarize("model.onnx", {"input": (1, 3, 224, 224)})
    summary["nodes"][k]  -> {"name", "op_type", "output_shape", "params", "flops",
                             "elementwise_flops", "receptive_field", "jump", "start"}
    summary["warnings"]  -> [{"node", "kind", "message"}]
    summary["total_params"], summary["total_flops"], summary["total_elementwise_flops"]

The command line front end is `fastcnn info MODEL [--shape NAME=1x3x224x224]
[--optimized] [--json] [--plot out.png]`.

How each number is computed is documented where it is computed:
`receptive.py` (receptive field size r, jump j and start per spatial axis of
the image input, in input pixels, and the lint warnings), `cost.py` (FLOPs =
2 × MACs of Conv/ConvTranspose/Gemm/MatMul/LocallyConnected/TiledConv;
elementwise work counted separately; params), `shapes.py` (a shape-only walk
that calls each op's `infer` like the planner does, and falls back to ONNX
shape inference for ops fastcnn does not run yet).

Nodes folded to constants at load time (shape plumbing, weight transposes)
are not listed.  With `optimized=True` the graph first goes through the
optimization passes (BatchNormalization folded into the conv before it,
activations and residual Adds fused into the conv), so params and nodes are
those of the graph fastcnn actually runs.
"""
from __future__ import annotations

import copy
import json
import sys
from typing import Dict, Optional

from ..errors import InputError
from ..ir.graph import Graph
from ..ir.onnx_import import import_model
from .cost import node_cost
from .receptive import Field, propagate_fields, to_number
from .shapes import infer_infos

__all__ = ["summarize", "info_command", "format_table", "resolve_input_shapes",
           "parse_shape_args"]


# -- inputs -------------------------------------------------------------------------------

def _parse_dims(text: str):
    text = text.strip().replace("×", "x")
    parts = [p for p in text.replace(",", "x").split("x") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"bad shape '{text}': expected dims like 1x3x224x224") from None
    if not dims or any(d < 0 for d in dims):
        raise InputError(f"bad shape '{text}': expected positive dims like 1x3x224x224")
    return dims


def parse_shape_args(items) -> Dict[str, tuple]:
    """['x=1x3x224x224', 'batch=4'] → {'x': (1, 3, 224, 224), 'batch': (4,)}."""
    out = {}
    for item in items or ():
        name, eq, dims = item.rpartition("=")
        if not eq or not name:
            raise InputError(f"--shape '{item}' must look like NAME=1x3x224x224")
        out[name] = _parse_dims(dims)
    return out


def resolve_input_shapes(graph: Graph, given: Optional[dict] = None) -> Dict[str, tuple]:
    """Concrete shapes of every graph input.

    `given` maps an input name to its full shape (which may override the
    declared dims, e.g. to analyse a fully convolutional model at another
    resolution), or a symbolic dim name (dim_param) to its value.  Unbound symbolic dims: the batch (axis 0)
    defaults to 1; any other unknown dim is an error naming the input.
    """
    given = dict(given or {})
    for k, v in list(given.items()):
        if isinstance(v, str):
            given[k] = _parse_dims(v)
        elif isinstance(v, int):
            given[k] = (v,)
        else:
            given[k] = tuple(int(d) for d in v)
    names = {v.name for v in graph.inputs}
    params = {d for v in graph.inputs if v.shape for d in v.shape if isinstance(d, str)}
    unknown = [k for k in given if k not in names and k not in params]
    if unknown:
        raise InputError(f"--shape names {unknown} match no input (inputs: {sorted(names)}) "
                         f"and no symbolic dimension ({sorted(params) or 'none'})")
    dim_values = {}
    for k in params:
        if k in given and k not in names:
            if len(given[k]) != 1:
                raise InputError(f"symbolic dimension '{k}' takes one value, got {list(given[k])}")
            dim_values[k] = given[k][0]
    shapes = {}
    for v in graph.inputs:
        decl = v.shape
        if v.name in given:
            shape = given[v.name]
            if decl is not None and len(decl) != len(shape):
                raise InputError(f"--shape {v.name}={'x'.join(map(str, shape))} has rank "
                                 f"{len(shape)}, but the model declares {list(decl)}")
            # A given shape may override declared fixed dims: fully convolutional models
            # can be analysed at another resolution (shape inference checks consistency).
            shapes[v.name] = shape
            continue
        if decl is None:
            raise InputError(f"input '{v.name}' has no declared shape; give it with "
                             f"--shape {v.name}=1x3x224x224")
        shape = []
        for k, d in enumerate(decl):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif isinstance(d, str) and d in dim_values:
                shape.append(dim_values[d])
            elif k == 0:
                shape.append(1)          # a symbolic batch: analyse one image
            else:
                hint = "x".join(str(e) if isinstance(e, int) and e > 0 else
                                ("1" if j == 0 else "N") for j, e in enumerate(decl))
                raise InputError(
                    f"input '{v.name}' has unknown dimension {k} "
                    f"({d!r} in declared shape {list(decl)}); give it with "
                    f"--shape {v.name}={hint} (N = the size you want analysed)")
        shapes[v.name] = tuple(shape)
    return shapes


# -- the summary --------------------------------------------------------------------------

def _load(model, optimized: bool) -> Graph:
    if isinstance(model, Graph):
        graph = copy.deepcopy(model)
    elif hasattr(model, "optimized_graph"):          # an InferenceSession
        graph = copy.deepcopy(model.optimized_graph())
        optimized = False                             # already as optimized as it runs
    else:
        graph = import_model(model)
    if optimized:
        from ..passes import optimize
        optimize(graph, "all")
    return graph


def _lists(field: Optional[Field], n_axes: int):
    if field is None:
        return [None] * n_axes, [None] * n_axes, [None] * n_axes
    return ([to_number(v) for v in field.r], [to_number(v) for v in field.j],
            [to_number(v) for v in field.start])


def summarize(model, input_shapes: Optional[dict] = None, optimized: bool = False) -> dict:
    """Per-node analysis of a model (path, bytes, ModelProto, Graph or InferenceSession).

    input_shapes: {input name: shape} and/or {symbolic dim name: value}.
    optimized: analyse the graph after fastcnn's optimization passes.
    Returns a JSON-serializable dict (see the module docstring).
    """
    graph = _load(model, optimized)
    shapes = resolve_input_shapes(graph, input_shapes)
    infos, folded, notes = infer_infos(graph, shapes)
    fields, warnings, image = propagate_fields(graph, infos, folded)
    n_axes = len(image[1]) if image else 0
    nodes = []
    seen_params = {}
    total_flops = total_elem = 0
    for node in graph.nodes:
        if node.name in folded:
            continue
        params, flops, elem = node_cost(node, infos)
        for name, n in params:
            seen_params[name] = n
        total_flops += flops
        total_elem += elem
        out = infos.get(node.outputs[0]) if node.outputs and node.outputs[0] else None
        r, j, s = _lists(fields.get(node.outputs[0]) if node.outputs else None, n_axes)
        entry = {
            "name": node.name,
            "op_type": node.op_type if not node.domain else f"{node.domain}.{node.op_type}",
            "output_shape": list(out.shape) if out is not None else None,
            "params": sum(n for _, n in params),
            "flops": flops,
            "elementwise_flops": elem,
            "receptive_field": r,
            "jump": j,
            "start": s,
        }
        fused = node.attrs.get("fastcnn_fused")
        if fused:
            entry["fused"] = list(fused)
        nodes.append(entry)
    for node, message in notes:
        warnings.append({"node": node.name, "kind": "shape_unknown", "message": message})
    return {
        "model": graph.name,
        "optimized": bool(optimized),
        "inputs": {k: list(v) for k, v in shapes.items()},
        "image": None if image is None else {"name": image[0], "spatial": list(image[1])},
        "nodes": nodes,
        "warnings": warnings,
        "total_params": int(sum(seen_params.values())),
        "total_flops": int(total_flops),
        "total_elementwise_flops": int(total_elem),
    }


# -- presentation -------------------------------------------------------------------------

def _human(n: int) -> str:
    if n == 0:
        return "0"
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(n)


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _axes(values, sep="x") -> str:
    if not values or all(v is None for v in values):
        return "-"
    return sep.join(_num(v) for v in values)


def format_table(summary: dict) -> str:
    head = ("node", "op", "output shape", "params", "FLOPs", "RF", "jump", "start")
    rows = []
    for n in summary["nodes"]:
        shape = "x".join(map(str, n["output_shape"])) if n["output_shape"] is not None else "?"
        rows.append((n["name"], n["op_type"], shape, f"{n['params']:,}" if n["params"] else "",
                     _human(n["flops"]) if n["flops"] else "", _axes(n["receptive_field"]),
                     _axes(n["jump"]), _axes(n["start"], ",")))
    widths = [max([len(h)] + [len(r[c]) for r in rows]) for c, h in enumerate(head)]
    right = {3, 4, 5, 6, 7}

    def line(cells):
        return "  ".join(c.rjust(w) if k in right else c.ljust(w)
                         for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

    ins = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in summary["inputs"].items())
    out = [f"model {summary['model']}{' (optimized)' if summary['optimized'] else ''}: "
           f"input {ins}"]
    if summary["image"]:
        out.append(f"receptive fields in pixels of '{summary['image']['name']}' "
                   f"(spatial {'x'.join(map(str, summary['image']['spatial']))}); "
                   f"FLOPs = 2 x multiply-accumulates")
    out.append(line(head))
    out.append(line(["-" * w for w in widths]))
    out.extend(line(r) for r in rows)
    out.append(line(["-" * w for w in widths]))
    out.append(f"total: {len(summary['nodes'])} nodes, {summary['total_params']:,} params, "
               f"{_human(summary['total_flops'])} FLOPs ({summary['total_flops']:,}), "
               f"+{_human(summary['total_elementwise_flops'])} elementwise")
    if summary["warnings"]:
        out.append("")
        out.append(f"{len(summary['warnings'])} warning(s):")
        for w in summary["warnings"]:
            out.append(f"  [{w['kind']}] {w['node']}: {w['message']}")
    return "\n".join(out)


def plot(summary: dict, path: str) -> bool:
    """Receptive field and jump against depth, per spatial axis; False if matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [n for n in summary["nodes"] if any(v is not None for v in n["receptive_field"] or [])]
    fig, (ax_r, ax_j) = plt.subplots(2, 1, sharex=True, figsize=(8, 6))
    n_axes = len(rows[0]["receptive_field"]) if rows else 0
    for a in range(n_axes):
        xs = list(range(len(rows)))
        ax_r.plot(xs, [n["receptive_field"][a] for n in rows], marker=".", label=f"axis {a}")
        ax_j.plot(xs, [n["jump"][a] for n in rows], marker=".", label=f"axis {a}")
    ax_r.set_ylabel("receptive field (px)")
    ax_j.set_ylabel("jump (px)")
    ax_j.set_xlabel("depth (node index)")
    ax_r.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def info_command(args) -> int:
    shapes = parse_shape_args(getattr(args, "shape", None))
    summary = summarize(args.model, shapes, optimized=bool(getattr(args, "optimized", False)))
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        print(format_table(summary))
    path = getattr(args, "plot", None)
    if path and not plot(summary, path):
        print("fastcnn info: matplotlib is not installed; --plot skipped", file=sys.stderr)
    return 0
