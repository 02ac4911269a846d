"""Fold a zero constant Pad of the spatial axes into the Conv that reads it.

    Conv(Pad(x, q, mode=constant, value=0), pads=p) = Conv(x, pads=p + q)

since a Conv's own padding is zero padding too.  TensorFlow's SAME padding for stride 2
(ZeroPadding2D, tf2onnx's explicit Pad of (0, 1) on H and W) otherwise runs as a separate
copy of the whole tensor (and, between blocked convs, two layout reorders around it).
A Transpose between the two (tf2onnx's NHWC Pad in front of the input Transpose) is
allowed: Transpose(Pad(x, q), P) = Pad(Transpose(x, P), q'), q'[i] = q[P[i]], so the
Transpose reads x and the Conv takes q'.

The Pad must pad only the Conv's spatial axes (not N or C), by non-negative amounts, with
a constant 0 (attribute or constant input); its output (and the Transpose's) must have no
other reader and not be a graph output; the Conv must have explicit pads (auto_pad NOTSET
or VALID).
"""
from __future__ import annotations

import numpy as np

from ._util import const, single_consumer


def _pads(graph, pad):
    """The Pad's full begin/end list over every axis, or None when it is not a zero pad."""
    opset = graph.opset("")
    a = pad.attrs
    if a.get("mode", "constant") not in ("constant", b"constant"):
        return None
    try:
        if opset < 11:
            pads = a.get("pads", a.get("paddings"))
            if pads is None or float(a.get("value", 0.0)) != 0.0:
                return None
            pads = [int(v) for v in pads]
        else:
            q = const(graph, pad.inputs[1]) if len(pad.inputs) > 1 else None
            if q is None:
                return None
            pads = [int(v) for v in np.asarray(q).reshape(-1)]
            if len(pad.inputs) > 2 and pad.inputs[2]:
                cv = const(graph, pad.inputs[2])
                if cv is None or cv.size != 1 or float(np.asarray(cv).reshape(-1)[0]) != 0.0:
                    return None
            if opset >= 18 and len(pad.inputs) > 3 and pad.inputs[3]:
                axes = const(graph, pad.inputs[3])
                if axes is None or len(pads) != 2 * axes.size:
                    return None
                return pads, [int(v) for v in np.asarray(axes).reshape(-1)]
    except (TypeError, ValueError, OverflowError):
        return None
    if len(pads) % 2:
        return None
    return pads, None


def _full(pads, axes, n):
    """Begin/end lists of length n from (pads, axes), or None if out of range."""
    if axes is None:
        if len(pads) != 2 * n:
            return None
        return pads[:n], pads[n:]
    begin, end = [0] * n, [0] * n
    k = len(axes)
    for j, ax in enumerate(axes):
        ax = ax + n if ax < 0 else ax
        if not 0 <= ax < n or begin[ax] or end[ax]:
            return None
        begin[ax], end[ax] = pads[j], pads[k + j]
    return begin, end


def run(graph) -> bool:
    changed = False
    consumers = graph.consumers()
    producers = graph.producers()
    removed = set()
    for conv in [n for n in graph.nodes if n.op_type == "Conv" and n.domain == ""]:
        if not conv.inputs:
            continue
        auto_pad = conv.attrs.get("auto_pad", "NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID", ""):
            continue
        src = producers.get(conv.inputs[0])
        trans = perm = None
        if src is not None and src.op_type == "Transpose" and src.domain == "":
            perm = src.attrs.get("perm")
            if not isinstance(perm, (list, tuple)) or sorted(perm) != list(range(len(perm))) \
                    or single_consumer(graph, src.outputs[0], consumers) is not conv:
                continue
            trans, src = src, producers.get(src.inputs[0])
        if src is None or src.op_type != "Pad" or src.domain != "" or not src.inputs or \
                not src.inputs[0] or any(o for o in src.outputs[1:]):
            continue
        if single_consumer(graph, src.outputs[0], consumers) is not (trans or conv):
            continue
        got = _pads(graph, src)
        w = const(graph, conv.inputs[1]) if len(conv.inputs) > 1 else None
        if got is None or w is None or w.ndim < 3:
            continue
        n = w.ndim                          # the Conv's input rank
        full = _full(got[0], got[1], n)
        if full is None or (perm is not None and len(perm) != n):
            continue
        begin, end = full
        if perm is not None:                # the pads as seen after the Transpose
            begin, end = [begin[p] for p in perm], [end[p] for p in perm]
        if any(v < 0 for v in begin + end) or begin[0] or end[0] or begin[1] or end[1]:
            continue
        nd = n - 2
        old = [0] * (2 * nd) if auto_pad == "VALID" else conv.attrs.get("pads", [0] * (2 * nd))
        if not isinstance(old, (list, tuple)) or len(old) != 2 * nd:
            continue
        conv.attrs["pads"] = [int(old[i]) + begin[2 + i] for i in range(nd)] + \
            [int(old[nd + i]) + end[2 + i] for i in range(nd)]
        conv.attrs.pop("auto_pad", None)
        reader = trans or conv
        reader.inputs[0] = src.inputs[0]
        readers = consumers.get(src.inputs[0], [])
        readers[:] = [reader if r is src else r for r in readers]
        producers.pop(src.outputs[0], None)
        consumers.pop(src.outputs[0], None)
        conv.attrs["fastcnn_fused"] = list(conv.attrs.get("fastcnn_fused", [conv.name])) + \
            [src.name]
        removed.add(id(src))
        changed = True
    if changed:
        graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return changed
