"""Push Transposes down through elementwise and per-axis ops, so tf2onnx's NHWC islands
between convs collapse.

tf2onnx runs a TensorFlow model in NHWC and wraps each conv as
Transpose(0,3,1,2) -> Conv -> Transpose(0,2,3,1), leaving the per-channel ops (BN as
Mul + Add by [C] constants, Relu, Clip, PRelu, residual Adds, Concat on axis 3) in NHWC
between the pairs.  With y = Transpose(x, P) (y.shape[i] = x.shape[P[i]]) and n = len(P):

    op(y)                  = Transpose(op(x), P)                  unary elementwise ops
    op(y, c)               = Transpose(op(x, c'), P)              c' = transpose(c⁺, P⁻¹)
    op(y1, y2)             = Transpose(op(x1, x2), P)             both Transposes with perm P
    Concat(y..., axis=a)   = Transpose(Concat(x..., axis=P[a]), P)
    Softmax(y, axis=a)     = Transpose(Softmax(x, axis=P[a]), P)  (opset >= 13)
    Reduce(y, axes=A)      = Transpose(Reduce(x, axes=P[A]), P)   keepdims=1
    Reduce(y, axes=A)      = Transpose(Reduce(x, axes=P[A]), P')  keepdims=0: P' orders the
                             kept axes; no Transpose at all when P' is the identity (TF's global
                             average pool, ReduceMean over H, W, becomes a plain NCHW reduction)
    Pad(y, pads)           = Transpose(Pad(x, pads'), P)          pads'[P[i]] = pads[i]

where c⁺ is the constant with leading 1s up to rank n (broadcasting aligns trailing axes)
and P⁻¹[P[i]] = i: a [C] constant on NHWC becomes [C, 1, 1] on NCHW, a full-rank one is
transposed, a scalar (or any size-1 constant) is kept as it is.  A constant of rank > n
(it would grow the result's rank) or an operand that is neither constant nor a Transpose
with the same perm stops the push.

A push replaces the op's input Transposes by one Transpose on its output, which then sits
in front of the next op; when it reaches the inverse Transpose in front of the next Conv,
cancel_transposes (run here between sweeps, and again after this pass) removes both, and
fold_batchnorm / fold_affine / the epilogue fusions see Conv -> Mul -> Add -> Relu -> Conv.

A Transpose is pushed through all of its (non-Transpose) readers at once, or through those
readers whose result cancels further down, only when the number of Transposes does not
grow: the estimate follows each new Transpose down the graph (a few levels) and counts
the inverse Transposes it would cancel.  Readers that are Transposes themselves cost
nothing (they compose).  Graph outputs keep their names, values and layouts: an op whose
output is a graph output writes a fresh value and the new Transpose writes the output.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..ir.graph import Node
from . import cancel_transposes

UNARY = frozenset((
    "Relu", "LeakyRelu", "Elu", "Celu", "Selu", "ThresholdedRelu", "Sigmoid", "HardSigmoid",
    "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Gelu", "Swish", "Shrink", "Clip",
    "Neg", "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh",
    "Atanh", "Not", "IsNaN", "IsInf", "BitwiseNot", "Identity", "Cast", "CastLike", "Dropout"))
# Multidirectional (PRelu: unidirectional) broadcasting over every input.
BROADCAST = frozenset((
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "PRelu", "Where",
    "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor",
    "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"))
SOFTMAX = frozenset(("Softmax", "LogSoftmax", "Hardmax"))
REDUCE = frozenset(("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                    "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                    "ReduceLogSumExp"))
ARG = frozenset(("ArgMax", "ArgMin"))

LOOKAHEAD = 8           # levels the cost estimate follows a new Transpose down


def _perm(node, n=None):
    """A Transpose node's perm if it is a valid permutation (of length n if given)."""
    if node is None or node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
        return None
    p = node.attrs.get("perm")
    if not isinstance(p, (list, tuple)) or not p or \
            not all(isinstance(v, (int, np.integer)) for v in p):
        return None
    p = [int(v) for v in p]
    if sorted(p) != list(range(len(p))) or (n is not None and len(p) != n):
        return None
    return p


def _inverse(p):
    inv = [0] * len(p)
    for i, v in enumerate(p):
        inv[v] = i
    return inv


def _compose(p, q):
    """Transpose(Transpose(x, p), q) = Transpose(x, r)."""
    return [p[i] for i in q]


def _identity(p):
    return list(p) == list(range(len(p)))


class _Rewrite:
    """How to push the Transpose(s) feeding `node` past it."""

    def __init__(self, node):
        self.node = node
        self.inputs = {}        # input index -> new input name (or an array to add)
        self.attrs = {}         # attribute updates
        self.out_perm = None    # perm of the Transpose on the output (None: none needed)
        self.sources = []       # the Transpose nodes read (existing ones)


def _const_operand(c, inv, n, keep_rank):
    """A constant that broadcasts against the transposed tensor, re-laid for the source."""
    if c.ndim > n or (keep_rank and c.ndim != n):
        return None
    if c.size == 1 and not keep_rank:
        return c                # a scalar (or [1], [1, 1, 1, 1]): the same everywhere
    t = np.ascontiguousarray(np.transpose(c.reshape((1,) * (n - c.ndim) + c.shape), inv))
    if not keep_rank:
        k = 0
        while k < t.ndim - c.ndim and t.shape[k] == 1:   # drop the leading 1s added above
            k += 1
        t = t.reshape(t.shape[k:])
    return t


def _axes_list(v, n):
    """Normalized, distinct axes in range, or None."""
    try:
        axes = [int(a) for a in np.asarray(v).reshape(-1)]
    except (TypeError, ValueError):
        return None
    out = [a + n if a < 0 else a for a in axes]
    if any(a < 0 or a >= n for a in out) or len(set(out)) != len(out):
        return None
    return out


def _analyze(graph, node, perm, transposed, producers, outputs, consumers):
    """A `_Rewrite` pushing Transpose(perm) past `node`, or None if it is not exact here.

    `transposed` maps value names to (the value they transpose, the Transpose node; None
    for a hypothetical one that a previous push would create); other inputs produced by a
    Transpose with the same perm count too.  Malformed attributes leave the node alone
    (its op reports them)."""
    try:
        return _analyze_node(graph, node, perm, transposed, producers, outputs, consumers)
    except (TypeError, ValueError, OverflowError):
        return None


def _analyze_node(graph, node, perm, transposed, producers, outputs, consumers):
    op = node.op_type
    if node.domain not in ("", "ai.onnx") or not node.outputs or not node.outputs[0]:
        return None
    for o in node.outputs[1:]:
        if o and (o in outputs or consumers.get(o)):
            return None         # a second output in use (Dropout's mask) would change layout
    opset = graph.opset("")
    n = len(perm)
    inv = _inverse(perm)
    if op in UNARY or op in SOFTMAX or op in REDUCE or op in ARG or op == "Pad":
        layout = [0]
    elif op in BROADCAST or op == "Concat":
        if opset < 7 and node.attrs.get("broadcast"):
            return None         # legacy broadcast with an `axis` attribute
        layout = list(range(len(node.inputs)))
    else:
        return None
    rw = _Rewrite(node)
    n_moved = 0
    for k, name in enumerate(node.inputs):
        if not name:
            continue
        src = _source(name, perm, transposed, producers)
        if k not in layout:
            if src is not None:
                return None     # the transposed value read as a parameter (Clip min, pads...)
            continue
        if src is not None:
            n_moved += 1
            if src[1] is not None:
                rw.sources.append(src[1])
            rw.inputs[k] = src[0]
            continue
        c = graph.initializers.get(name)
        if c is None or (opset < 7 and c.size != 1):
            return None
        c2 = _const_operand(np.asarray(c), inv, n, keep_rank=(op == "Concat"))
        if c2 is None:
            return None
        if c2 is not c:
            rw.inputs[k] = c2
    if not n_moved:
        return None
    rw.out_perm = list(perm)
    a = node.attrs
    if op == "Concat":
        axis = a.get("axis", 1 if opset < 4 else None)
        if axis is None or not -n <= int(axis) < n:
            return None
        rw.attrs["axis"] = perm[int(axis) % n]
    elif op in SOFTMAX:
        if opset < 13:
            return None         # Softmax-1..11 flattens from `axis` on: not per-axis
        axis = int(a.get("axis", -1))
        if not -n <= axis < n:
            return None
        rw.attrs["axis"] = perm[axis % n]
    elif op in ARG:
        axis = int(a.get("axis", 0))
        if not -n <= axis < n:
            return None
        rw.attrs["axis"] = perm[axis % n]
        if not a.get("keepdims", 1):
            rw.out_perm = _kept_perm(perm, [axis % n])
    elif op in REDUCE:
        if not _reduce(graph, node, perm, rw, opset):
            return None
    elif op == "Pad":
        if not _pad(graph, node, perm, rw, opset):
            return None
    if rw.out_perm is not None and _identity(rw.out_perm):
        rw.out_perm = None
    return rw


def _source(name, perm, transposed, producers):
    """(pre-transpose value, Transpose node or None) if `name` is Transpose(., perm)."""
    if name in transposed:
        return transposed[name]
    t = producers.get(name)
    if t is not None and _perm(t) == list(perm) and t.inputs and t.inputs[0]:
        return (t.inputs[0], t)
    return None


def _kept_perm(perm, axes):
    """The perm of Reduce(Transpose(x, perm), axes, keepdims=0) over Reduce(x, perm[axes])."""
    kept = [i for i in range(len(perm)) if i not in axes]
    kept_x = sorted(perm[i] for i in kept)
    p = [kept_x.index(perm[i]) for i in kept]
    return p if p and not _identity(p) else None


def _reduce(graph, node, perm, rw, opset):
    n = len(perm)
    a = node.attrs
    since = 13 if node.op_type == "ReduceSum" else 18
    keep = int(a.get("keepdims", 1))
    if opset >= since:
        name = node.inputs[1] if len(node.inputs) > 1 else ""
        if name and name not in graph.initializers:
            return False        # axes computed at run time
        axes = graph.initializers[name] if name else None
    else:
        axes = a.get("axes")
    if axes is None or np.asarray(axes).size == 0:
        if a.get("noop_with_empty_axes", 0):
            return True         # an identity: the Transpose moves past it unchanged
        rw.out_perm = None      # every axis reduced: all-1 shape or scalar, any order
        return True
    ax = _axes_list(axes, n)
    if ax is None:
        return False
    new = [perm[i] for i in ax]
    if opset >= since:
        rw.inputs[1] = np.array(new, np.int64)
    else:
        rw.attrs["axes"] = new
    if not keep:
        rw.out_perm = _kept_perm(perm, ax)
    return True


def _pad(graph, node, perm, rw, opset):
    n = len(perm)
    if opset < 11:
        key = "pads" if "pads" in node.attrs else "paddings"
        pads = node.attrs.get(key)
    else:
        key = None
        name = node.inputs[1] if len(node.inputs) > 1 else ""
        pads = graph.initializers.get(name) if name else None
    if pads is None:
        return False
    try:
        pads = [int(v) for v in np.asarray(pads).reshape(-1)]
    except (TypeError, ValueError):
        return False
    axes_name = node.inputs[3] if opset >= 18 and len(node.inputs) > 3 else ""
    if axes_name:               # Pad-18 `axes`: the pads stay, the axes they name move
        axes = graph.initializers.get(axes_name)
        ax = None if axes is None else _axes_list(axes, n)
        if ax is None or len(pads) != 2 * len(ax):
            return False
        rw.inputs[3] = np.array([perm[i] for i in ax], np.int64)
        return True
    if len(pads) != 2 * n:
        return False
    new = [0] * (2 * n)
    for i in range(n):
        new[perm[i]], new[n + perm[i]] = pads[i], pads[n + i]
    if key is not None:
        rw.attrs[key] = new
    else:
        rw.inputs[1] = np.array(new, np.int64)
    return True


class _State:
    """The graph's producer / reader maps and used names, kept up to date by `_apply`
    (rebuilding them after every push made the pass quadratic); new Transposes wait in
    `after` until the sweep ends and `commit` puts them behind their nodes."""

    def __init__(self, graph, node_names):
        self.graph = graph
        self.outputs = set(graph.output_names())
        self.producers = graph.producers()
        self.consumers = graph.consumers()
        self.names = set(graph.initializers) | {v.name for v in graph.inputs} | \
            set(self.producers) | set(self.consumers)
        self.node_names = node_names
        self.after = {}

    def fresh(self, base, names):
        name, k = base, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.add(name)
        return name

    def reroute(self, node, k, new):
        """node.inputs[k] = new, with the reader map updated."""
        old = node.inputs[k]
        readers = self.consumers.get(old, [])
        for j, r in enumerate(readers):
            if r is node:
                del readers[j]
                break
        node.inputs[k] = new
        self.consumers.setdefault(new, []).append(node)

    def commit(self):
        if not self.after:
            return
        nodes = []
        for n in self.graph.nodes:
            nodes.append(n)
            nodes.extend(self.after.get(id(n), ()))
        self.graph.nodes = nodes
        self.after = {}

    def readers(self, value):
        """(Transpose readers, other readers), each node once."""
        ts, others, seen = [], [], set()
        for c in self.consumers.get(value, []):
            if id(c) in seen:
                continue
            seen.add(id(c))
            (ts if c.op_type == "Transpose" else others).append(c)
        return ts, others

    def analyze(self, node, perm, transposed):
        return _analyze(self.graph, node, perm, transposed, self.producers, self.outputs,
                        self.consumers)

    def cost(self, value, perm, depth, memo):
        """Net change in the number of Transposes if Transpose(perm) produced `value`
        (pushed on as far as that pays)."""
        if perm is None:
            return 0
        key = (value, tuple(perm))
        if key in memo:
            return memo[key]
        memo[key] = 1           # (cycle guard)
        if depth <= 0:
            return 1
        ts, others = self.readers(value)
        total = 0
        for t in ts:
            q = _perm(t, len(perm))
            if q is None:
                others.append(t)            # a Transpose this pass cannot read: keeps it
            elif _identity(_compose(perm, q)):
                total -= 1                  # cancels (cancel_transposes drops the pair; one
                #                             ending in a graph output hands its name over)
        if not others and value not in self.outputs:
            memo[key] = total
            return total
        costs, blocked = [], value in self.outputs
        for o in others:
            rw = self.analyze(o, perm, {value: (value, None)})
            if rw is None:
                blocked = True
            else:
                costs.append(self.cost(o.outputs[0], rw.out_perm, depth - 1, memo))
        best = 1 + sum(min(0, c) for c in costs)
        if not blocked:
            best = min(best, sum(costs))
        memo[key] = total + best
        return total + best

    def credit(self, t, pushed, rws):
        """How many other source Transposes die when the nodes `pushed` stop reading them."""
        ids = {id(n) for n in pushed}
        dead = set()
        for n in pushed:
            for s in rws[id(n)].sources:
                if s is t or id(s) in dead or s.outputs[0] in self.outputs:
                    continue
                _, others = self.readers(s.outputs[0])
                if all(id(o) in ids for o in others):
                    dead.add(id(s))
        return len(dead)


def _apply(graph, state, rw):
    node = rw.node
    for k, v in rw.inputs.items():
        if isinstance(v, np.ndarray):
            name = state.fresh(node.inputs[k] + ("_nchw" if v.ndim > 1 else "_perm"), state.names)
            graph.initializers[name] = v
            v = name
        state.reroute(node, k, v)
    node.attrs.update(rw.attrs)
    if rw.out_perm is None:
        return None
    out = node.outputs[0]
    inner = state.fresh(out + "_pre_transpose", state.names)
    node.outputs[0] = inner
    t = Node("Transpose", state.fresh(f"{node.name}/transpose", state.node_names),
             [inner], [out], {"perm": list(rw.out_perm)})
    state.producers[inner] = node
    state.producers[out] = t
    state.consumers[inner] = [t]
    # (the node may sit behind the Transpose it replaces a reader of: keep the order valid)
    state.after.setdefault(id(node), []).append(t)
    return t


def _push(graph, state, t):
    """Push Transpose `t` past its readers when that does not add Transposes; return the
    new Transposes (None for a pushed node that needs none; empty if nothing moved)."""
    perm = _perm(t)
    if perm is None or _identity(perm) or not t.inputs or not t.inputs[0]:
        return []
    v = t.outputs[0]
    ts, others = state.readers(v)
    if not others:
        return []
    transposed = {v: (t.inputs[0], t)}
    # a reader Transpose that cancel_transposes cannot compose keeps `t` alive
    rws, blocked = {}, v in state.outputs or any(_perm(r, len(perm)) is None for r in ts)
    for o in others:
        rw = state.analyze(o, perm, transposed)
        if rw is None:
            blocked = True
        else:
            rws[id(o)] = rw
    if not rws:
        return []
    memo = {}
    pushable = [o for o in others if id(o) in rws]
    cost = {id(o): state.cost(o.outputs[0], rws[id(o)].out_perm, LOOKAHEAD, memo)
            for o in pushable}
    choice, best = None, 0
    if not blocked:
        delta = -1 + sum(cost.values()) - state.credit(t, pushable, rws)
        if delta <= 0:
            choice, best = pushable, delta
    some = [o for o in pushable if cost[id(o)] - state.credit(t, [o], rws) < 0]
    if some:
        delta = sum(cost[id(o)] for o in some) - state.credit(t, some, rws)
        if delta < best or (choice is None and delta < 0):
            choice, best = some, delta
    if not choice:
        return []
    new = []
    for o in choice:
        nt = _apply(graph, state, rws[id(o)])
        if nt is not None:
            new.append(nt)
    return new or [None]


def run(graph) -> bool:
    changed = False
    node_names = {n.name for n in graph.nodes}
    budget = 4 * len(graph.nodes) + 64        # pushes; each moves a Transpose forward
    while budget > 0:
        state = _State(graph, node_names)
        work = deque(n for n in graph.nodes if n.op_type == "Transpose")
        moved = False
        while work and budget > 0:
            new = _push(graph, state, work.popleft())
            if new:
                budget -= 1
                moved = changed = True
                work.extend(t for t in new if t is not None)
        state.commit()
        if not moved:
            break
        cancel_transposes.run(graph)          # the pairs that met; drops the dead Transposes
    if changed:
        graph.remove_unused()
    return changed
