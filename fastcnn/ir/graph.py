"""Graph IR: plain nodes, value infos and constant initializers.

The IR is deliberately small.  A `Graph` is a list of `Node`s in any order,
the graph's inputs/outputs as `ValueInfo`s, and a dict of constant numpy
arrays (initializers and folded `Constant` nodes).  Passes rewrite it in
place; the planner turns it into steps for one set of input shapes.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import InvalidGraphError

Dim = Any  # int, or str (symbolic), or None (unknown)


@dataclass
class ValueInfo:
    name: str
    dtype: np.dtype
    shape: Optional[Tuple[Dim, ...]]  # None: rank unknown


@dataclass
class Node:
    op_type: str
    name: str
    inputs: List[str]            # "" marks an omitted optional input
    outputs: List[str]
    attrs: Dict[str, Any] = field(default_factory=dict)
    domain: str = ""

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def __repr__(self):
        return f"Node({self.op_type} '{self.name}': {self.inputs} -> {self.outputs})"


def _memory_owner(a):
    """The object that owns an array's memory (numpy collapses view chains onto it)."""
    return a if not isinstance(a, np.ndarray) or a.base is None else a.base


@dataclass
class Graph:
    nodes: List[Node]
    inputs: List[ValueInfo]
    outputs: List[ValueInfo]
    initializers: Dict[str, np.ndarray]
    opsets: Dict[str, int]
    name: str = "graph"
    value_info: Dict[str, ValueInfo] = field(default_factory=dict)
    #: a subgraph (If's branch): the values of enclosing scopes it reads
    captures: List[str] = field(default_factory=list)

    def opset(self, domain: str = "") -> int:
        return self.opsets.get(domain, self.opsets.get("ai.onnx", 0) if domain == "" else 0)

    def producers(self) -> Dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> Dict[str, List[Node]]:
        out: Dict[str, List[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def output_names(self):
        return [v.name for v in self.outputs]

    def exclusive_initializers(self, consumers: Optional[Dict[str, List[Node]]] = None
                               ) -> Dict[str, Node]:
        """{name: node} of the initializers that node alone reads and that may be
        overwritten: writable arrays in memory no other initializer shares (the importer's
        copies; a view of another initializer's memory never is), neither graph inputs nor
        outputs, and not read by subgraphs (If branches)."""
        if consumers is None:
            consumers = self.consumers()
        owners: Dict[int, int] = {}
        for a in self.initializers.values():
            o = _memory_owner(a)
            owners[id(o)] = owners.get(id(o), 0) + 1
        blocked = set(self.output_names()) | {v.name for v in self.inputs}
        for n in self.nodes:
            for v in n.attrs.values():
                if isinstance(v, Graph):
                    blocked.update(v.captures)
        out = {}
        for name, a in self.initializers.items():
            users = consumers.get(name, [])
            if name in blocked or len(users) != 1 or not isinstance(a, np.ndarray) or \
                    not a.flags.writeable:
                continue
            o = _memory_owner(a)
            if isinstance(o, np.ndarray) and o.flags.owndata and owners[id(o)] == 1:
                out[name] = users[0]
        return out

    def toposort(self) -> None:
        """Order nodes so every input is produced before use; raise on cycles or undefined inputs."""
        available = set(self.initializers) | {v.name for v in self.inputs} | {""}
        producer = {}
        for n in self.nodes:
            for o in n.outputs:
                if o:
                    if o in producer or o in available:
                        raise InvalidGraphError(
                            f"value '{o}' is produced twice (node '{n.name}')")
                    producer[o] = n
        for n in self.nodes:
            for i in n.inputs:
                if i not in available and i not in producer:
                    raise InvalidGraphError(
                        f"{n.op_type} node '{n.name}' reads '{i}', which no node, "
                        f"initializer or graph input defines")
        # Kahn's algorithm, stable with respect to the original order.
        waiting = {id(n): sum(1 for i in set(n.inputs) if i in producer) for n in self.nodes}
        readers: Dict[str, List[Node]] = {}
        for n in self.nodes:
            for i in set(n.inputs):
                if i in producer:
                    readers.setdefault(i, []).append(n)
        ready = deque(n for n in self.nodes if waiting[id(n)] == 0)
        order = []
        while ready:
            n = ready.popleft()
            order.append(n)
            for o in n.outputs:
                for r in readers.get(o, ()):
                    waiting[id(r)] -= 1
                    if waiting[id(r)] == 0:
                        ready.append(r)
        if len(order) != len(self.nodes):
            stuck = [n.name or n.op_type for n in self.nodes if waiting[id(n)] > 0]
            raise InvalidGraphError(f"the graph has a cycle through node(s) {stuck[:5]}")
        self.nodes = order
        for v in self.outputs:
            if v.name not in available and v.name not in producer:
                raise InvalidGraphError(f"graph output '{v.name}' is never produced")

    def remove_unused(self) -> bool:
        """Drop nodes whose outputs nobody reads and initializers nobody uses."""
        needed = set(self.output_names())
        keep = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs if o):
                keep.append(n)
                needed.update(i for i in n.inputs if i)
        changed = len(keep) != len(self.nodes)
        self.nodes = keep[::-1]
        for k in [k for k in self.initializers if k not in needed]:
            del self.initializers[k]
        return changed

    def fresh_name(self, base: str) -> str:
        used = set(self.initializers) | {v.name for v in self.inputs}
        used |= {o for n in self.nodes for o in n.outputs}
        name, k = base, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        return name
