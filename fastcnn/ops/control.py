"""Control flow: If, resolved when the plan is made.

Exporters emit `If` for checks on shapes, not on data: PyTorch's `squeeze(dim)` of a
dimension it cannot see at export time becomes `If(Shape(x)[dim] == 1, Squeeze, Identity)`
(F.local_response_norm, any `x.squeeze(1)` under dynamic axes).  A plan is made for one
set of input shapes, so there the condition is a constant: the planner asks `If.inline`
for the chosen branch's nodes, renamed into the enclosing graph, and plans them like any
other node.  A condition that depends on the input data is refused, naming the node.

Inputs of the fastcnn node: the condition, then the enclosing-scope values the branches
read (`attrs['fastcnn_captures']`: their names inside the branches, in the same order;
passes may rename the node's inputs, never the branches').
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Dict, Iterable, Iterator, List, Tuple

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Graph, Node
from .base import Op, TensorInfo
from .registry import lookup, register, supported_ops


def branch_nodes(graph: Graph):
    """Every node of `graph` and of the subgraphs inside it, depth first."""
    for n in graph.nodes:
        yield n
        for v in n.attrs.values():
            if isinstance(v, Graph):
                yield from branch_nodes(v)


def expand_ifs(nodes: Iterable[Node], infos: dict, make_if: Callable[[Node], "If"],
               skip_unknown: bool = False) -> Iterator[Node]:
    """`nodes` in order, each If replaced by its chosen branch's nodes (a branch may hold
    Ifs of its own); the branch's initializers are added to `infos` as constants.  The
    caller fills `infos` as it goes, so a condition computed by an earlier node is known
    when its If comes up.  With `skip_unknown` (analysis) an If whose condition is not a
    known constant is yielded as it is; otherwise If.inline raises, naming it (planner)."""
    pending = deque(nodes)
    while pending:
        node = pending.popleft()
        if node.op_type == "If" and node.domain == "":
            cond = infos.get(node.inputs[0]) if node.inputs and node.inputs[0] else None
            if not skip_unknown or (cond is not None and cond.is_const):
                branch, inits = make_if(node).inline(cond)
                for name, arr in inits.items():
                    infos[name] = TensorInfo.of(arr)
                pending.extendleft(reversed(branch))
                continue
        yield node


@register("If", since_version=1)
class If(Op):
    def setup(self):
        n_out = len(self.node.outputs)
        missing = []
        for key in ("then_branch", "else_branch"):
            g = self.attr(key)
            if not isinstance(g, Graph):
                raise self.error(f"attribute '{key}' must be a graph")
            if len(g.outputs) != n_out:
                raise self.error(f"{key} has {len(g.outputs)} outputs; the node has {n_out}")
            if g.inputs:
                raise self.error(f"{key} declares inputs {[v.name for v in g.inputs]}; "
                                 "If branches take none")
            for n in g.nodes:
                cls = lookup(n.op_type, g.opset(n.domain), n.domain)
                if cls is None:
                    missing.append((n.domain, n.op_type, g.opset(n.domain), n.name))
                else:
                    cls(n, g.opset(n.domain))      # parse and validate its attributes now
        if missing:
            raise UnsupportedOpError(missing, supported_ops(""))
        self.captures = list(self.attr("fastcnn_captures", []))
        if len(self.node.inputs) != 1 + len(self.captures):
            raise self.error("inputs do not match the values its branches read")

    def infer(self, inputs):
        raise self.error("If is resolved by the planner (Plan inlines the chosen branch)")

    def choose(self, cond: TensorInfo) -> str:
        if cond is None:
            raise self.error("the condition input is missing")
        if not cond.is_const:      # a valid graph fastcnn cannot run: NotImplementedError
            raise UnsupportedOpError([(self.node.domain, "If with a condition that depends on "
                                      "the input data (fastcnn runs an If whose condition is "
                                      "known once the input shapes are)", self.opset,
                                      self.node.name)])
        v = np.asarray(cond.value)
        if v.size != 1:
            raise self.error(f"the condition must hold one element, got shape {list(v.shape)}")
        return "then_branch" if bool(v.reshape(-1)[0]) else "else_branch"

    def inline(self, cond: TensorInfo) -> Tuple[List[Node], Dict[str, np.ndarray]]:
        """The chosen branch as (nodes, initializers) of the enclosing graph: its values
        renamed under '<node name>/<branch>/', its captures to this node's inputs, and its
        outputs written to this node's outputs (an Identity where the branch returns a
        value it does not compute itself)."""
        key = self.choose(cond)
        g: Graph = self.attr(key)
        prefix = f"{self.node.name}/{key}/"
        rename = {c: new for c, new in zip(self.captures, self.node.inputs[1:])}
        for name in g.initializers:
            rename[name] = prefix + name
        produced = {o for n in g.nodes for o in n.outputs if o}
        for n in g.nodes:
            for o in n.outputs:
                if o:
                    rename[o] = prefix + o
        tail = []
        taken = set()
        for v, out in zip(g.outputs, self.node.outputs):
            if not out:
                continue
            if v.name in produced and v.name not in taken:
                rename[v.name] = out
                taken.add(v.name)
            else:
                tail.append((v.name, out))
        nodes = []
        for n in g.nodes:
            attrs = dict(n.attrs)
            nodes.append(Node(n.op_type, prefix + n.name,
                              [rename.get(i, i) if i else "" for i in n.inputs],
                              [rename.get(o, o) if o else "" for o in n.outputs],
                              attrs, n.domain))
        for src, out in tail:
            nodes.append(Node("Identity", f"{prefix}{out}/Identity", [rename.get(src, src)],
                              [out]))
        inits = {prefix + k: v for k, v in g.initializers.items()}
        return nodes, inits
