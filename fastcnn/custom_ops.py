"""Build ONNX nodes and models that use fastcnn's custom ops (domain `com.fastcnn`, v1).

    import numpy as np, fastcnn
    from fastcnn import custom_ops as co

    x_shape = (1, 3, 32, 32)
    w = np.random.randn(*co.locally_connected_weight_shape(x_shape, 8, [3, 3], pads=[1, 1, 1, 1]))
    model = co.make_model(
        [co.locally_connected_node("x", "h", w.astype(np.float32), pads=[1, 1, 1, 1]),
         co.weighted_average_pool_node("h", "y", [3, 3], strides=[2, 2], sigma=1.0)],
        inputs={"x": x_shape}, outputs=["y"])
    sess = fastcnn.InferenceSession(model.SerializeToString())

Each `*_node` helper returns a `CustomNode` (the NodeProto and the initializers holding
its weights); `make_model` collects them into a model importing the default ONNX opset
and `com.fastcnn` 1.  The op semantics are in `fastcnn/ops/custom.py`.
"""
from __future__ import annotations

import itertools
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

DOMAIN = "com.fastcnn"
VERSION = 1
__all__ = ["DOMAIN", "VERSION", "CustomNode", "conv_output_shape",
           "locally_connected_weight_shape", "locally_connected_node", "tiled_conv_node",
           "weighted_average_pool_node", "make_model"]

_counter = itertools.count()


class CustomNode(NamedTuple):
    node: onnx.NodeProto
    initializers: List[onnx.TensorProto]


def _window_lists(nd, kernel_shape, strides, pads, dilations):
    strides = list(strides) if strides is not None else [1] * nd
    pads = list(pads) if pads is not None else [0] * (2 * nd)
    dilations = list(dilations) if dilations is not None else [1] * nd
    if len(kernel_shape) != nd or len(strides) != nd or len(dilations) != nd or len(pads) != 2 * nd:
        raise ValueError(f"window attributes do not match {nd} spatial dims: kernel_shape "
                         f"{list(kernel_shape)}, strides {strides}, pads {pads}, dilations "
                         f"{dilations}")
    return list(kernel_shape), strides, pads, dilations


def conv_output_shape(in_spatial: Sequence[int], kernel_shape: Sequence[int], strides=None,
                      pads=None, dilations=None) -> tuple:
    """Conv's output spatial sizes: ⌊(in + pb + pe − ((k − 1)·d + 1)) / s⌋ + 1."""
    nd = len(in_spatial)
    k, s, p, d = _window_lists(nd, kernel_shape, strides, pads, dilations)
    out = tuple((in_spatial[a] + p[a] + p[a + nd] - (k[a] - 1) * d[a] - 1) // s[a] + 1
                for a in range(nd))
    if any(o <= 0 for o in out):
        raise ValueError(f"empty output {out} for input {list(in_spatial)} and kernel {k}")
    return out


def locally_connected_weight_shape(x_shape: Sequence[int], out_channels: int,
                                   kernel_shape: Sequence[int], strides=None, pads=None,
                                   dilations=None, group: int = 1) -> tuple:
    """W's shape [O1..Od, M, C/group, k1..kd] for an input of shape x_shape (N, C, D1..Dd)."""
    out = conv_output_shape(x_shape[2:], kernel_shape, strides, pads, dilations)
    if x_shape[1] % group:
        raise ValueError(f"group {group} does not divide {x_shape[1]} channels")
    return out + (out_channels, x_shape[1] // group) + tuple(kernel_shape)


def _name(kind, name):
    return name or f"{kind}_{next(_counter)}"


def _banked_node(op, x, y, W, B, nd_from_w, strides, pads, dilations, group, name):
    W = np.asarray(W)
    if W.ndim % 2 or W.ndim < 4:
        raise ValueError(f"{op}: W must have rank 2·d + 2, got shape {list(W.shape)}")
    nd = (W.ndim - 2) // 2
    kernel = list(W.shape[nd + 2:])
    k, s, p, d = _window_lists(nd, kernel, strides, pads, dilations)
    name = _name(op, name)
    inits = [numpy_helper.from_array(W, f"{name}.W")]
    inputs = [x, f"{name}.W"]
    if B is not None:
        inits.append(numpy_helper.from_array(np.asarray(B, W.dtype), f"{name}.B"))
        inputs.append(f"{name}.B")
    node = helper.make_node(op, inputs, [y], name=name, domain=DOMAIN, kernel_shape=k,
                            strides=s, pads=p, dilations=d, group=int(group))
    return CustomNode(node, inits)


def locally_connected_node(x: str, y: str, W: np.ndarray, B: Optional[np.ndarray] = None, *,
                           strides=None, pads=None, dilations=None, group: int = 1,
                           name: Optional[str] = None) -> CustomNode:
    """LocallyConnected: W [O1..Od, M, C/group, k1..kd] (one filter bank per output
    position; see `locally_connected_weight_shape`), B [M, O1..Od] or None."""
    return _banked_node("LocallyConnected", x, y, W, B, True, strides, pads, dilations, group,
                        name)


def tiled_conv_node(x: str, y: str, W: np.ndarray, B: Optional[np.ndarray] = None, *,
                    strides=None, pads=None, dilations=None, group: int = 1,
                    name: Optional[str] = None) -> CustomNode:
    """TiledConv: W [T1..Td, M, C/group, k1..kd]; output position o uses W[o mod T] (per
    axis); B [M] or None."""
    return _banked_node("TiledConv", x, y, W, B, False, strides, pads, dilations, group, name)


def weighted_average_pool_node(x: str, y: str, kernel_shape: Sequence[int], *, K=None,
                               strides=None, pads=None, sigma: float = 1.0,
                               count_include_pad: int = 0,
                               name: Optional[str] = None) -> CustomNode:
    """WeightedAveragePool: K [k1..kd] non-negative weights, or None for the Gaussian
    exp(-‖κ − c‖² / (2σ²)) centred on the window."""
    nd = len(kernel_shape)
    k, s, p, _ = _window_lists(nd, kernel_shape, strides, pads, None)
    name = _name("WeightedAveragePool", name)
    inputs, inits = [x], []
    if K is not None:
        K = np.asarray(K, np.float32)
        inits.append(numpy_helper.from_array(K, f"{name}.K"))
        inputs.append(f"{name}.K")
    node = helper.make_node("WeightedAveragePool", inputs, [y], name=name, domain=DOMAIN,
                            kernel_shape=k, strides=s, pads=p, sigma=float(sigma),
                            count_include_pad=int(count_include_pad))
    return CustomNode(node, inits)


def make_model(nodes: Iterable[Union[CustomNode, onnx.NodeProto]],
               inputs: Dict[str, Sequence[Optional[int]]], outputs: Sequence[str], *,
               dtype=np.float32, initializers: Sequence[onnx.TensorProto] = (),
               opset: int = 17, name: str = "fastcnn_custom") -> onnx.ModelProto:
    """A model from custom (and ordinary ONNX) nodes, importing opset `opset` and
    com.fastcnn 1.  `inputs` maps input names to shapes (None for a free dim); output
    shapes are left to inference."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    protos, inits = [], list(initializers)
    for n in nodes:
        if isinstance(n, CustomNode):
            protos.append(n.node)
            inits.extend(n.initializers)
        else:
            protos.append(n)
    g_in = [helper.make_tensor_value_info(k, elem, list(v)) for k, v in inputs.items()]
    g_out = [helper.make_tensor_value_info(o, elem, None) for o in outputs]
    graph = helper.make_graph(protos, name, g_in, g_out, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                   helper.make_opsetid(DOMAIN, VERSION)],
                             producer_name="fastcnn.custom_ops")
