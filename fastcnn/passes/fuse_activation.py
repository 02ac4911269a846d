"""Fuse the activation that follows a Conv (or ConvTranspose) into its epilogue.

    act(conv(x) [+ z])  →  conv(x [; Z=z]) with attribute fastcnn_activation=act

Recognized: Relu, Clip (attribute or constant-input form; Relu6), LeakyRelu,
HardSigmoid, HardSwish, Sigmoid, Tanh, Elu, PRelu with a per-channel constant
slope, and the patterns exporters write for SiLU ("Silu") (x·Sigmoid(x)), HardSwish
(x·HardSigmoid(x; 1/6, 1/2)) and Mish (x·Tanh(Softplus(x))).  Only those the Conv
op lists in `Conv.fused_activations` (computed in registers by its epilogue) are
fused (`ConvTranspose.fused_activations` for ConvTranspose, whose output channels are
W.shape[1]·group); the others are left to the vectorized elementwise kernels.

A BatchNormalization that stayed (nothing to fold it into: DenseNet's BN-ReLU-Conv, a BN
after a Concat) takes the activation that follows it the same way,

    act(BN(x))  →  BN(x) with fastcnn_activation=act   (y = act(x·s[c] + t[c]), one pass)

for the scalar-parameter activations in `BatchNormalization.fused_activations`.
"""
from __future__ import annotations

import math

from ..ops.conv import Conv
from ..ops.conv_transpose import ConvTranspose
from ..ops.norm import BatchNormalization
from ._util import const, single_consumer
from .fold_affine import per_channel

SIMPLE = {"Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh", "Elu", "Clip", "PRelu"}


def _params(graph, conv, act):
    """(name, params) for a single activation node, or None."""
    op = act.op_type
    a = act.attrs
    if op in ("Relu", "Sigmoid", "Tanh", "HardSwish"):
        return op, []
    if op == "LeakyRelu":
        return op, [float(a.get("alpha", 0.01))]
    if op == "Elu":
        return op, [float(a.get("alpha", 1.0))]
    if op == "HardSigmoid":
        return op, [float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))]
    if op == "Clip":
        if "min" in a or "max" in a:
            lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        else:
            lo, hi = -math.inf, math.inf
            for k, name in ((1, "min"), (2, "max")):
                if len(act.inputs) > k and act.inputs[k]:
                    v = const(graph, act.inputs[k])
                    if v is None or v.size != 1:
                        return None
                    if k == 1:
                        lo = float(v.ravel()[0])
                    else:
                        hi = float(v.ravel()[0])
        return op, [float(lo), float(hi)]
    if op == "PRelu":
        w = const(graph, conv.inputs[1])
        slope = const(graph, act.inputs[1]) if len(act.inputs) > 1 else None
        if w is None or slope is None:
            return None
        m = w.shape[0] if conv.op_type == "Conv" else \
            w.shape[1] * int(conv.attrs.get("group", 1))
        vec = per_channel(slope, m, w.ndim)
        return None if vec is None else (op, [float(v) for v in vec])
    return None


def _pattern(graph, conv, consumers):
    """x·f(x) patterns: (name, [], nodes to remove, final node) or None."""
    y = conv.outputs[0]
    if y in graph.output_names():
        return None
    readers = consumers.get(y, [])
    if len(readers) != 2:
        return None
    mul = next((n for n in readers if n.op_type == "Mul"), None)
    f = next((n for n in readers if n is not mul), None)
    if mul is None or f is None:
        return None
    if f.op_type == "Softplus":      # Mish: x * tanh(softplus(x))
        t = single_consumer(graph, f.outputs[0], consumers)
        if t is None or t.op_type != "Tanh":
            return None
        f, chain, name = t, [f, t], "Mish"
    elif f.op_type == "Sigmoid":     # SiLU: x * sigmoid(x)
        chain, name = [f], "Silu"
    elif f.op_type == "HardSigmoid" and abs(f.attrs.get("alpha", 0.2) - 1 / 6) < 1e-6 \
            and abs(f.attrs.get("beta", 0.5) - 0.5) < 1e-6:
        chain, name = [f], "HardSwish"
    else:
        return None
    if sorted(mul.inputs) != sorted([y, f.outputs[0]]) or \
            single_consumer(graph, f.outputs[0], consumers) is not mul:
        return None
    return name, [], chain + [mul], mul


def run(graph) -> bool:
    changed = False
    ops = {"Conv": Conv, "ConvTranspose": ConvTranspose, "BatchNormalization": BatchNormalization}
    for conv in [n for n in graph.nodes if n.op_type in ops and n.domain == ""]:
        if "fastcnn_activation" in conv.attrs:
            continue
        if conv.op_type == "BatchNormalization" and (len([o for o in conv.outputs if o]) != 1
                                                      or conv.outputs[0] == ""):
            continue            # the running mean/var outputs of an old training-mode BN
        consumers = graph.consumers()
        found = None
        act = single_consumer(graph, conv.outputs[0], consumers)
        if act is not None and act.op_type in SIMPLE and act.inputs[0] == conv.outputs[0] \
                and act.op_type in ops[conv.op_type].fused_activations:
            p = _params(graph, conv, act)
            if p is not None:
                found = (p[0], p[1], [act], act)
        if found is None:
            found = _pattern(graph, conv, consumers)
        if found is None:
            continue
        name, params, remove, last = found
        if name not in ops[conv.op_type].fused_activations:
            continue
        conv.attrs["fastcnn_activation"] = name
        conv.attrs["fastcnn_activation_params"] = params
        conv.outputs[0] = last.outputs[0]
        conv.attrs["fastcnn_fused"] = list(conv.attrs.get("fastcnn_fused", [conv.name])) + \
            [n.name for n in remove]
        for n in remove:
            graph.nodes.remove(n)
        changed = True
    return changed
