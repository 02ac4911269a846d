"""Compose back-to-back Transposes, and drop the pairs that cancel.

    Transpose(Transpose(x, p1), p2) = Transpose(x, q),   q[i] = p1[p2[i]]

and when q is the identity, readers of the second Transpose read x directly.  tf2onnx
leaves such pairs around every NHWC op it could not push through (Conv -> Transpose(0,2,3,1)
-> Transpose(0,3,1,2) -> BatchNormalization); cancelling them lets fold_batchnorm,
fold_affine and the epilogue fusions see the Conv's real consumers.  The first Transpose
stays as long as something else reads it (remove_unused drops it otherwise).  A second
Transpose whose output is a graph output keeps its name: an identity pair there hands the
name to the node that computes x (when x is a node's output, not itself a graph output:
push_transposes leaves such pairs at the end of NHWC models), otherwise it stays a
Transpose with the composed perm.
"""
from __future__ import annotations

from ._util import rename_value


def _perm(node):
    p = node.attrs.get("perm")
    return list(p) if isinstance(p, (list, tuple)) and p else None


def run(graph) -> bool:
    changed = False
    outputs = set(graph.output_names())
    for t2 in [n for n in graph.nodes if n.op_type == "Transpose"]:
        if t2 not in graph.nodes or not t2.inputs:
            continue
        t1 = graph.producers().get(t2.inputs[0])
        if t1 is None or t1.op_type != "Transpose" or t1.domain not in ("", "ai.onnx") \
                or t2.domain not in ("", "ai.onnx"):
            continue
        p1, p2 = _perm(t1), _perm(t2)
        if p1 is None or p2 is None or len(p1) != len(p2) or \
                sorted(p1) != list(range(len(p1))) or sorted(p2) != list(range(len(p2))):
            continue             # absent perms (rank unknown here) or invalid: op checks them
        q = [p1[i] for i in p2]
        src = t1.inputs[0]
        ident = q == list(range(len(q)))
        maker = graph.producers().get(src) if ident else None
        if ident and t2.outputs[0] not in outputs:
            rename_value(graph, t2.outputs[0], src)
            graph.nodes.remove(t2)
        elif maker is not None and src not in outputs and src not in graph.initializers and \
                not any("fastcnn_captures" in n.attrs for n in graph.nodes if src in n.inputs):
            out = t2.outputs[0]             # a graph output: x's producer writes it instead
            graph.nodes.remove(t2)
            maker.outputs[maker.outputs.index(src)] = out
            rename_value(graph, src, out)
        else:
            t2.inputs[0] = src
            t2.attrs["perm"] = q
        changed = True
    if changed:
        graph.remove_unused()
    return changed
