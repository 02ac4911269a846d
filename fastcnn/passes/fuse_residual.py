"""Fuse a residual Add into the Conv that produces one of its operands.

    Add(conv(x), z)  →  conv(x; Z=z)     (the kernel adds z before any activation)

The Conv's output must have no other reader and the Conv no fused activation
yet; `z` must not be a constant (constants go to fold_affine) and must not be
the Conv's own output.  When both operands come from Convs, the later one in
the node order is fused, so `z` is ready when it runs.  Shapes are only known at
plan time: when the Add broadcasts (either way), the Conv op adds `z` itself after
the convolution, with numpy broadcasting.
"""
from __future__ import annotations

from ._util import single_consumer


def run(graph) -> bool:
    changed = False
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    for add in [n for n in graph.nodes if n.op_type in ("Add", "Sum") and len(n.inputs) == 2]:
        producers = graph.producers()
        consumers = graph.consumers()
        cands = []
        for k in (0, 1):
            conv = producers.get(add.inputs[k])
            other = add.inputs[1 - k]
            if conv is None or conv.op_type != "Conv" or other in graph.initializers:
                continue
            if other == add.inputs[k] or "fastcnn_activation" in conv.attrs or \
                    conv.attrs.get("fastcnn_residual"):
                continue
            if single_consumer(graph, conv.outputs[0], consumers) is not add:
                continue
            cands.append((position.get(id(conv), -1), conv, other))
        if not cands:
            continue
        _, conv, other = max(cands, key=lambda t: t[0])
        while len(conv.inputs) < 3:
            conv.inputs.append("")
        conv.inputs.append(other)
        conv.attrs["fastcnn_residual"] = 1
        conv.outputs[0] = add.outputs[0]
        conv.attrs["fastcnn_fused"] = list(conv.attrs.get("fastcnn_fused", [conv.name])) + [add.name]
        graph.nodes.remove(add)
        changed = True
    if changed:
        graph.toposort()
    return changed
