"""Fold Mul/Add by a per-channel constant into the preceding Conv.

    conv(x)·c = conv_{w·c}(x)          (w' = w·c[m], b' = b·c[m])
    conv(x) + c = conv_{b + c}(x)      (b' = b + c[m])

`c` must broadcast along the output-channel axis only: a scalar, or shape
[M, 1, ..., 1] / [1, M, 1, ..., 1] for a Conv output of rank len(w.shape).
The Conv must not carry a fused activation or residual yet.
"""
from __future__ import annotations

import numpy as np

from ._util import const, set_const, single_consumer


def per_channel(c, m, rank):
    """c as a float64 vector of length m, or None if it is not per-channel."""
    if c is None or not np.issubdtype(c.dtype, np.floating):
        return None
    if c.size == 1 and c.ndim <= rank:
        return np.full(m, float(c.ravel()[0]))
    shape = (1,) * (rank - c.ndim) + c.shape
    if len(shape) != rank or shape[1] != m or any(d != 1 for k, d in enumerate(shape) if k != 1):
        return None
    return c.astype(np.float64).reshape(m)


def run(graph) -> bool:
    changed = False
    for node in [n for n in graph.nodes if n.op_type in ("Mul", "Add")]:
        if node not in graph.nodes or len(node.inputs) != 2:
            continue
        producers = graph.producers()
        consumers = graph.consumers()
        for k in (0, 1):
            conv = producers.get(node.inputs[k])
            c = const(graph, node.inputs[1 - k])
            if conv is None or conv.op_type != "Conv" or c is None:
                continue
            if any(a in conv.attrs for a in ("fastcnn_activation", "fastcnn_residual")):
                continue
            if single_consumer(graph, conv.outputs[0], consumers) is not node:
                continue
            w = const(graph, conv.inputs[1])
            if w is None or w.dtype != np.float32:
                continue
            m = w.shape[0]
            vec = per_channel(c, m, w.ndim)
            if vec is None:
                continue
            bname = conv.inputs[2] if len(conv.inputs) > 2 else ""
            b = const(graph, bname) if bname else np.zeros(m, np.float32)
            if b is None:
                continue
            b = b.astype(np.float64)
            if node.op_type == "Mul":
                w2 = (w * vec.reshape((m,) + (1,) * (w.ndim - 1))).astype(np.float32)
                conv.inputs[1] = set_const(graph, conv.inputs[1] + "_scaled", w2)
                b = b * vec
            else:
                b = b + vec
            name = set_const(graph, (bname or conv.name + "_bias") + "_folded", b.astype(np.float32))
            if len(conv.inputs) > 2:
                conv.inputs[2] = name
            else:
                conv.inputs.append(name)
            conv.outputs[0] = node.outputs[0]
            conv.attrs["fastcnn_fused"] = list(conv.attrs.get("fastcnn_fused", [conv.name])) + [node.name]
            graph.nodes.remove(node)
            changed = True
            break
    return changed
