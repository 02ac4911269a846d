"""Fold an inference-form BatchNormalization into the preceding linear op.

BatchNormalization computes, per channel c,

    y = γ·(x − μ)/√(σ² + ε) + β  =  s·x + (β − s·μ),   s = γ/√(σ² + ε)

so after a Conv with weights w and bias b (output channel axis 0 of w):

    w' = w·s[m]            b' = (b − μ)·s + β

ConvTranspose keeps output channels on axis 1 of W [C, M/g, k...] (per group);
Gemm with a constant B scales its columns.  (MatMul is left alone: which
output axis BN normalizes depends on a rank the pass does not know; such a BN
runs as one per-channel affine kernel.)  Pass-through nodes
(Identity, Dropout) between the two are skipped.  The producer's output must
have no other reader, and BN must have constant parameters and no extra
(training) outputs in use.  A weight read by the producer alone, in an array the graph
owns, is scaled in place (no second copy of ResNet-18's 45 MB); shared weights never are.
"""
from __future__ import annotations

import numpy as np

from ._util import const, set_const, single_consumer

FOLDABLE = ("Conv", "ConvTranspose", "Gemm")


def _bn_scale_shift(graph, bn):
    if len(bn.inputs) < 5:
        return None
    gamma, beta, mean, var = (const(graph, n) for n in bn.inputs[1:5])
    if any(v is None for v in (gamma, beta, mean, var)):
        return None
    if any(v.ndim != 1 or v.shape != gamma.shape for v in (beta, mean, var)) or gamma.ndim != 1:
        return None     # spatial=0 (opset < 9): parameters [C, H, W], not per channel
    if any(o for o in bn.outputs[1:]):
        return None
    if bn.attrs.get("training_mode", 0):
        return None
    eps = float(bn.attrs.get("epsilon", 1e-5))
    s = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    shift = beta.astype(np.float64) - s * mean.astype(np.float64)
    return s, shift


def _owned(graph, name, node, exclusive) -> bool:
    """Whether the initializer `name` may be scaled in place: `node` alone reads it and
    no other initializer shares its memory (Graph.exclusive_initializers)."""
    return exclusive is not None and exclusive.get(name) is node


def _scale(w, factor, in_place):
    """w * factor (broadcast), in place when allowed: no second copy of a large weight."""
    if in_place:
        np.multiply(w, factor, out=w)
        return w
    return w * factor


def _fold(graph, prod, s, shift, exclusive=None):
    """Rewrite `prod`'s weights/bias; return False if its form is not foldable."""
    w = const(graph, prod.inputs[1]) if len(prod.inputs) > 1 else None
    if w is None or w.dtype != np.float32:
        return False
    own = _owned(graph, prod.inputs[1], prod, exclusive)
    m = s.shape[0]
    s32 = s.astype(np.float32)      # weights scale in float32 (as exported models are)
    bias_name = prod.inputs[2] if len(prod.inputs) > 2 else ""
    b = const(graph, bias_name) if bias_name else np.zeros(m, np.float64)
    if b is None:
        return False
    if prod.op_type == "Conv":
        if w.shape[0] != m or b.shape != (m,):
            return False
        w2 = _scale(w, s32.reshape((m,) + (1,) * (w.ndim - 1)), own)
    elif prod.op_type == "ConvTranspose":
        g = int(prod.attrs.get("group", 1))
        if w.shape[0] % g or w.shape[1] * g != m or b.shape != (m,):
            return False
        ws = w.reshape((g, w.shape[0] // g, w.shape[1]) + w.shape[2:])
        w2 = _scale(ws, s32.reshape((g, 1, w.shape[1]) + (1,) * (w.ndim - 2)), own).reshape(w.shape)
    elif prod.op_type == "Gemm":
        # s·(α·A·B + β·C) + shift = α·A·(B·s) + (β·C·s + shift)
        trans_b = int(prod.attrs.get("transB", 0))
        if w.ndim != 2 or (w.shape[0] if trans_b else w.shape[1]) != m:
            return False
        if bias_name and (b.size not in (1, m) or (b.ndim == 2 and b.shape[0] != 1)):
            return False    # C [M, 1] (or [M, N]) varies along the rows, not per column
        w2 = _scale(w, s32.reshape(m, 1) if trans_b else s32.reshape(1, m), own)
        if bias_name:
            if b.size not in (1, m):
                return False
            b = np.broadcast_to(b.reshape(-1), (m,)) * float(prod.attrs.get("beta", 1.0))
        prod.attrs["beta"] = 1.0
    else:
        # MatMul: which output axis BN normalizes depends on the rank, unknown here.
        return False
    b2 = (b.astype(np.float64) * s + shift).astype(np.float32)
    if own:
        del graph.initializers[prod.inputs[1]]      # (scaled in place: the old value is gone)
    prod.inputs[1] = set_const(graph, prod.inputs[1] + "_bnfold", w2)
    name = set_const(graph, (bias_name or prod.name + "_bias") + "_bnfold", b2)
    if len(prod.inputs) > 2:
        prod.inputs[2] = name
    else:
        prod.inputs.append(name)
    return True


def run(graph) -> bool:
    changed = False
    producers = graph.producers()
    consumers = graph.consumers()
    exclusive = graph.exclusive_initializers(consumers)
    removed = set()
    for bn in [n for n in graph.nodes if n.op_type == "BatchNormalization"]:
        ss = _bn_scale_shift(graph, bn)
        if ss is None:
            continue
        prod = producers.get(bn.inputs[0])
        chain = []
        while prod is not None and prod.op_type in ("Identity", "Dropout") and \
                single_consumer(graph, prod.outputs[0], consumers) is not None:
            chain.append(prod)
            prod = producers.get(prod.inputs[0])
        if prod is None or prod.op_type not in FOLDABLE:
            continue
        if single_consumer(graph, prod.outputs[0], consumers) is not (chain[-1] if chain else bn):
            continue
        old_inputs = list(prod.inputs)
        if not _fold(graph, prod, *ss, exclusive=exclusive):
            continue
        # prod now writes what BN wrote; drop BN and the pass-through chain.  The maps are
        # updated in place (rebuilding both per BN made the pass quadratic in the nodes).
        out = bn.outputs[0]
        gone = chain + [bn]
        for n in gone:
            removed.add(id(n))
            producers.pop(n.outputs[0], None)
            for i in n.inputs:
                _drop_reader(consumers, i, n)
        for i in old_inputs:
            _drop_reader(consumers, i, prod)
        for i in prod.inputs:
            if i:
                consumers.setdefault(i, []).append(prod)
        producers.pop(prod.outputs[0], None)
        prod.outputs[0] = out
        producers[out] = prod
        prod.attrs["fastcnn_fused"] = list(prod.attrs.get("fastcnn_fused", [prod.name])) + \
            [n.name for n in chain] + [bn.name]
        changed = True
    if removed:
        graph.nodes[:] = [n for n in graph.nodes if id(n) not in removed]
    return changed


def _drop_reader(consumers, value, node):
    readers = consumers.get(value)
    if readers:
        readers[:] = [r for r in readers if r is not node]
        if not readers:
            del consumers[value]
