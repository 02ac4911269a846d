"""Shape-only walk over a graph: what the planner knows, without planning.

`infer_infos(graph, input_shapes)` visits the nodes in order and, like
`runtime.plan.Plan`, calls each registered op's `infer` and folds nodes
whose inputs are all constant (or that are `shape_only`) with the op's
`evaluate`.  Unlike the planner it never prepares kernels or plans memory,
and it does not stop at an op fastcnn cannot run yet:

  * an unregistered ONNX op gets its output shapes from ONNX's own shape
    inference on a one-node model (and its value from `onnx.reference` when
    all its inputs are constant);
  * the `com.fastcnn` conv-like ops (LocallyConnected, TiledConv,
    WeightedAveragePool) follow Conv's output-size formula, as their
    definition says;
  * anything else leaves its outputs unknown (None), with a note.

Returns (infos, folded, notes): value name → TensorInfo (or None when
unknown), the names of nodes folded to constants, and [(node, message)].
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from ..errors import FastCNNError, ShapeError, node_error
from ..ops import lookup
from ..ops.base import TensorInfo
from ..ops.control import expand_ifs

__all__ = ["infer_infos"]

_CUSTOM_CONV = {"LocallyConnected", "TiledConv", "WeightedAveragePool"}


def infer_infos(graph, input_shapes: Dict[str, Tuple[int, ...]]):
    infos: Dict[str, Optional[TensorInfo]] = {}
    for name, arr in graph.initializers.items():
        infos[name] = TensorInfo.of(arr)
    for v in graph.inputs:
        infos[v.name] = TensorInfo(tuple(int(d) for d in input_shapes[v.name]), v.dtype)
    folded: Set[str] = set()
    notes: List[Tuple[object, str]] = []
    # like the planner: a condition known from the shapes selects the branch
    make_if = lambda n: lookup("If", graph.opset(""))(n, graph.opset(""))  # noqa: E731
    for node in expand_ifs(graph.nodes, infos, make_if, skip_unknown=True):
        ins = [infos.get(i) if i else None for i in node.inputs]
        if any(i and infos.get(i) is None for i in node.inputs):
            for o in node.outputs:
                if o:
                    infos[o] = None
            continue
        outs, const = _infer_node(graph, node, ins, notes)
        if const:
            folded.add(node.name)
        for k, o in enumerate(node.outputs):
            if o:
                infos[o] = outs[k] if k < len(outs) else None
    return infos, folded, notes


def _infer_node(graph, node, ins, notes):
    """(outputs, folded?) for one node."""
    real = [x for x in ins if x is not None]
    all_const = all(x.is_const for x in real)
    cls = lookup(node.op_type, graph.opset(node.domain), node.domain)
    if cls is not None:
        op = cls(node, graph.opset(node.domain))
        try:
            outs = list(op.infer(ins))
        except FastCNNError:
            raise
        except NotImplementedError:
            outs = None
        except Exception as e:
            raise node_error(node, f"shape inference failed for input shapes "
                                   f"{[None if x is None else list(x.shape) for x in ins]}: {e}",
                             ShapeError) from e
        if outs is not None:
            if op.shape_only or all_const:
                if not all(o is None or o.is_const for o in outs):
                    vals = op.evaluate(ins, list(outs))
                    outs = [None if o is None else TensorInfo(o.shape, o.dtype, v)
                            for o, v in zip(outs, vals)]
                return outs, True
            return [None if o is None else TensorInfo(o.shape, o.dtype) for o in outs], False
    # Not registered (yet): fall back.
    if node.domain == "com.fastcnn" and node.op_type in _CUSTOM_CONV:
        return _custom_conv_shape(node, ins), False
    if node.domain == "":
        try:
            return _onnx_fallback(graph, node, ins, all_const)
        except Exception as e:  # the spec's inference could not help either
            notes.append((node, f"no shape inference for {node.op_type}: {e}"))
            return [], False
    notes.append((node, f"unknown op {node.domain}::{node.op_type}: output shapes unknown"))
    return [], False


def _custom_conv_shape(node, ins):
    x = ins[0]
    nd = len(x.shape) - 2
    k = node.attr("kernel_shape")
    if k is None and len(ins) > 1 and ins[1] is not None:
        k = ins[1].shape[-nd:]
    s = node.attr("strides") or [1] * nd
    d = node.attr("dilations") or [1] * nd
    p = node.attr("pads") or [0] * (2 * nd)
    spatial = tuple((x.shape[2 + a] + p[a] + p[a + nd] - (d[a] * (k[a] - 1) + 1)) // s[a] + 1
                    for a in range(nd))
    if node.op_type == "WeightedAveragePool":
        m = x.shape[1]
    else:
        w = ins[1].shape
        m = w[-(nd + 2)]
    return [TensorInfo((x.shape[0], m) + spatial, x.dtype)]


def _onnx_fallback(graph, node, ins, all_const):
    import onnx
    from onnx import helper, numpy_helper

    attrs = {}
    for k, v in node.attrs.items():
        if isinstance(v, np.ndarray):
            v = numpy_helper.from_array(v)
        attrs[k] = v
    names = [f"in{k}" if i else "" for k, i in enumerate(node.inputs)]
    outs = [f"out{k}" if o else "" for k, o in enumerate(node.outputs)]
    pnode = helper.make_node(node.op_type, names, outs, domain=node.domain or None, **attrs)
    g_inputs, inits = [], []
    for n, info in zip(names, ins):
        if not n:
            continue
        if info.is_const:
            inits.append(numpy_helper.from_array(np.asarray(info.value), n))
        else:
            g_inputs.append(helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(info.dtype), list(info.shape)))
    g_outputs = [helper.make_tensor_value_info(o, 0, None) for o in outs if o]
    pg = helper.make_graph([pnode], "one", g_inputs, g_outputs, inits)
    opsets = [helper.make_opsetid(d, v) for d, v in graph.opsets.items()]
    model = helper.make_model(pg, opset_imports=opsets)
    if all_const:
        from onnx.reference import ReferenceEvaluator
        vals = ReferenceEvaluator(model).run(None, {})
        return [TensorInfo.of(np.asarray(v)) for v in vals], True
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    by_name = {v.name: v for v in inferred.graph.output}
    res = []
    for o in outs:
        if not o:
            res.append(None)
            continue
        tt = by_name[o].type.tensor_type
        if not tt.HasField("shape") or any(not d.HasField("dim_value") for d in tt.shape.dim):
            raise ValueError(f"output {o} has no static shape")
        res.append(TensorInfo(tuple(int(d.dim_value) for d in tt.shape.dim),
                              np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))))
    return res, False

