"""Fuse PyTorch's pixel-shuffle export (Reshape → Transpose → Reshape) into one node.

torch.onnx writes `nn.PixelShuffle(r)` / `F.pixel_shuffle` (opset < 11, or with
the decomposition) and `nn.PixelUnshuffle(r)` as

    shuffle    x[N, C·r², H, W] → Reshape [N, C, r, r, H, W] → Transpose [0,1,4,2,5,3]
               → Reshape [N, C, H·r, W·r]                     =  DepthToSpace CRD, block r
    unshuffle  x[N, C, H·r, W·r] → Reshape [N, C, H, r, W, r] → Transpose [0,1,3,5,2,4]
               → Reshape [N, C·r², H, W]                      =  SpaceToDepth CRD, block r
               (channel c·r² + i·r + j; ONNX's default DCR order is (i·r + j)·C + c)

and the ONNX function bodies of the DCR ops use perms [0,3,4,1,5,2] (DepthToSpace,
Reshape [N, r, r, C, H, W]) and [0,3,5,1,2,4] (SpaceToDepth); those fuse too.

Shapes are unknown at pass time, so the match is on the constant reshape targets
and the perm alone: a 6-D first target whose block dims are explicit positive
(equal) integers, and the perm of one of the four patterns.  The kernel's output
buffer is the transposed 6-D tensor's, so any second target with the same element
count (normally the 4-D one above) is a free reshape.
The fused node keeps both targets (`fastcnn_in_shape`, `fastcnn_out_shape`); at
plan time it resolves them against the real input exactly as the Reshapes would
(0 copies a dim, -1 infers one) and raises when the input does not fit.  The
intermediate values must have no other reader and must not be graph outputs.
"""
from __future__ import annotations

from ..ir.graph import Node
from ._util import const, fused_names, single_consumer

# perm -> (op_type, mode, positions of the block dims in the first reshape target)
PATTERNS = {
    (0, 1, 4, 2, 5, 3): ("DepthToSpace", "CRD", (2, 3)),
    (0, 3, 4, 1, 5, 2): ("DepthToSpace", "DCR", (1, 2)),
    (0, 1, 3, 5, 2, 4): ("SpaceToDepth", "CRD", (3, 5)),
    (0, 3, 5, 1, 2, 4): ("SpaceToDepth", "DCR", (3, 5)),
}


def _target(graph, node):
    """The constant integer target of a Reshape (allowzero=0), or None."""
    if node.op_type != "Reshape" or len(node.inputs) < 2 or node.attrs.get("allowzero", 0):
        return None
    t = const(graph, node.inputs[1])
    if t is None or t.dtype.kind not in "iu" or t.ndim != 1:
        return None
    return [int(v) for v in t]


def run(graph) -> bool:
    changed = False
    for tr in [n for n in graph.nodes if n.op_type == "Transpose"]:
        if tr not in graph.nodes:
            continue
        perm = tr.attrs.get("perm")
        if perm is None or tuple(perm) not in PATTERNS:
            continue
        op_type, mode, blocks = PATTERNS[tuple(perm)]
        producers = graph.producers()
        consumers = graph.consumers()
        r1 = producers.get(tr.inputs[0])
        if r1 is None:
            continue
        t1 = _target(graph, r1)
        if t1 is None or len(t1) != 6:
            continue
        b = t1[blocks[0]]
        if b < 1 or t1[blocks[1]] != b or any(d < -1 for d in t1):
            continue
        if single_consumer(graph, r1.outputs[0], consumers) is not tr:
            continue
        r2 = single_consumer(graph, tr.outputs[0], consumers)
        if r2 is None or r2.inputs[0] != tr.outputs[0]:
            continue
        t2 = _target(graph, r2)
        if t2 is None:
            continue
        attrs = {"blocksize": b, "fastcnn_mode": mode, "fastcnn_in_shape": t1,
                 "fastcnn_out_shape": t2,
                 "fastcnn_fused": fused_names(r1) + fused_names(tr) + fused_names(r2)}
        fused = Node(op_type, tr.name or r2.name, [r1.inputs[0]], [r2.outputs[0]], attrs)
        pos = graph.nodes.index(r2)
        graph.nodes[pos] = fused
        graph.nodes.remove(r1)
        graph.nodes.remove(tr)
        changed = True
    return changed
