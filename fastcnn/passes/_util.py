"""Small graph-rewriting helpers shared by the passes."""
from __future__ import annotations

import numpy as np


def single_consumer(graph, value, consumers=None):
    """The only node reading `value`, or None (also None when it is a graph output)."""
    consumers = graph.consumers() if consumers is None else consumers
    if value in graph.output_names():
        return None
    readers = consumers.get(value, [])
    if len(readers) != 1:
        return None
    return readers[0]


def const(graph, name):
    return graph.initializers.get(name) if name else None


def set_const(graph, base, array):
    """Add an initializer under a fresh name (never overwrite a shared weight)."""
    name = graph.fresh_name(base)
    array = np.asarray(array)
    graph.initializers[name] = array if array.flags.c_contiguous else array.copy()
    return name


def rename_value(graph, old, new):
    """Make every reader of `old` read `new` (graph outputs keep their names: see bypass)."""
    for n in graph.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]


def bypass(graph, node, keep_output_of):
    """Remove `node`; its output value is now produced by `keep_output_of` (a node)."""
    out = node.outputs[0]
    old = keep_output_of.outputs[0]
    keep_output_of.outputs[0] = out
    rename_value(graph, old, out)
    graph.nodes.remove(node)


def fused_names(node):
    return list(node.attrs.get("fastcnn_fused", [node.name]))
