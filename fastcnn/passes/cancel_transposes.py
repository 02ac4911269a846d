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


def _captured(readers) -> bool:
    """Whether an If reads the value as a capture (its branches name it: never rename)."""
    return any("fastcnn_captures" in n.attrs for n in readers)


def _rename(consumers, old, new):
    """Every reader of `old` reads `new` (the reader map follows)."""
    readers = consumers.pop(old, [])
    for n in {id(r): r for r in readers}.values():
        n.inputs = [new if i == old else i for i in n.inputs]
    consumers.setdefault(new, []).extend(readers)


def run(graph) -> bool:
    changed = False
    outputs = set(graph.output_names())
    producers = graph.producers()
    consumers = graph.consumers()
    removed = set()
    for t2 in [n for n in graph.nodes if n.op_type == "Transpose"]:
        if not t2.inputs:
            continue
        t1 = producers.get(t2.inputs[0])
        if t1 is None or t1.op_type != "Transpose" or t1.domain not in ("", "ai.onnx") \
                or t2.domain not in ("", "ai.onnx") or not t1.inputs:
            continue
        p1, p2 = _perm(t1), _perm(t2)
        if p1 is None or p2 is None or len(p1) != len(p2) or \
                sorted(p1) != list(range(len(p1))) or sorted(p2) != list(range(len(p2))):
            continue             # absent perms (rank unknown here) or invalid: op checks them
        q = [p1[i] for i in p2]
        src, out = t1.inputs[0], t2.outputs[0]
        ident = q == list(range(len(q)))
        maker = producers.get(src) if ident else None
        if ident and out not in outputs and not _captured(consumers.get(out, [])):
            _rename(consumers, out, src)
            removed.add(id(t2))
            del producers[out]
        elif maker is not None and src not in outputs and src not in graph.initializers and \
                not _captured(consumers.get(src, [])):
            # a graph output: x's producer writes it instead
            removed.add(id(t2))
            maker.outputs[maker.outputs.index(src)] = out
            producers[out] = maker
            del producers[src]
            _rename(consumers, src, out)
        else:
            readers = consumers.get(t2.inputs[0], [])
            readers[:] = [r for r in readers if r is not t2]
            t2.inputs[0] = src
            consumers.setdefault(src, []).append(t2)
            t2.attrs["perm"] = q
        changed = True
    if changed:
        graph.nodes = [n for n in graph.nodes if id(n) not in removed]
        graph.remove_unused()
    return changed
