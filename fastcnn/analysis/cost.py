"""FLOPs and parameter counts of one node, from its attributes and shapes.

FLOPs = 2 × multiply-accumulates, for the ops whose cost is a contraction:

    Conv, ConvInteger, QLinearConv   MACs = |Y| · (C/group) · Πk          (= |Y| · Π W.shape[1:])
    ConvTranspose                    MACs = |X| · (M/group) · Πk          (= |X| · Π W.shape[1:])
    LocallyConnected, TiledConv      MACs = |Y| · (C/group) · Πk          (one filter per position
                                                                           or tile: same count)
    Gemm                             MACs = |Y| · K
    MatMul                           MACs = |Y| · K   (K = A's last dim; batched as broadcast)

Bias additions are not counted.  Activations and residual Adds fused into a
conv's epilogue (optimized graphs) count as elementwise, one per output.  Everything else that
does arithmetic is counted *separately* as `elementwise_flops` (one per
output element for activations and binary ops; 2 for BatchNormalization and
other affine normalizations; Πk per output element for pooling windows;
one per input element for global pools and reductions; 0 for data movement
and shape plumbing).  Totals report both; `total_flops` is the MAC-based one.

Parameters are the elements of a node's floating-point constant inputs
(weights, biases, BatchNormalization's scale and B — its running mean and
variance are statistics, not parameters, as in PyTorch — a constant Add/Mul
operand), except the non-learned constants of data-movement ops (Resize
scales, Pad values, Clip bounds, ...).  A constant shared by several nodes
is counted once in the totals.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["node_cost"]

NON_PARAM_OPS = {"Resize", "Upsample", "Pad", "Clip", "Reshape", "Expand", "Tile", "Slice",
                 "Range", "ConstantOfShape", "Gather", "Concat", "Where", "Squeeze",
                 "Unsqueeze", "Transpose", "Split", "Shape", "Size", "Cast", "Identity",
                 "QuantizeLinear", "DequantizeLinear", "ReduceMean", "ReduceSum", "ReduceMax"}
DATA_MOVEMENT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout",
                 "Concat", "Split", "Slice", "Gather", "Pad", "Expand", "Tile", "Cast",
                 "DepthToSpace", "SpaceToDepth", "Shape", "Size", "Resize", "Upsample"}
AFFINE_NORMS = {"BatchNormalization", "InstanceNormalization", "LayerNormalization",
                "GroupNormalization", "LRN"}
POOLS = {"MaxPool", "AveragePool", "LpPool", "WeightedAveragePool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def node_cost(node, infos) -> Tuple[List[Tuple[str, int]], int, int]:
    """([(param name, elements)], flops, elementwise_flops) of one node."""
    ins = [infos.get(i) if i else None for i in node.inputs]
    outs = [infos.get(o) if o else None for o in node.outputs]
    y = outs[0] if outs else None
    op = node.op_type
    params: List[Tuple[str, int]] = []
    if op not in NON_PARAM_OPS:
        # BatchNormalization: scale and B are parameters; mean and var are statistics.
        pairs = list(zip(node.inputs, ins))
        if op == "BatchNormalization":
            pairs = pairs[1:3]
        for name, info in pairs:
            if info is not None and info.is_const and np.issubdtype(info.dtype, np.floating):
                params.append((name, info.size))
    macs = 0
    elem = 0
    y_size = _size(y.shape) if y is not None else 0
    try:
        if op in ("Conv", "ConvInteger") and ins[1] is not None:
            macs = y_size * _size(ins[1].shape[1:])
        elif op == "QLinearConv" and ins[3] is not None:
            macs = y_size * _size(ins[3].shape[1:])
        elif op == "ConvTranspose" and ins[1] is not None:
            macs = _size(ins[0].shape) * _size(ins[1].shape[1:])
        elif op in ("LocallyConnected", "TiledConv") and ins[1] is not None:
            nd = len(ins[0].shape) - 2
            macs = y_size * _size(ins[1].shape[-(nd + 1):])
        elif op == "Gemm":
            a = ins[0].shape
            k = a[0] if node.attrs.get("transA", 0) else a[1]
            macs = y_size * int(k)
        elif op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
            a = ins[0].shape
            macs = y_size * int(a[-1])
        elif op in POOLS:
            k = node.attrs.get("kernel_shape") or []
            elem = y_size * _size(k)
        elif op in GLOBAL_POOLS or op.startswith("Reduce"):
            elem = _size(ins[0].shape)
        elif op in AFFINE_NORMS:
            elem = 2 * y_size
        elif op in ("Softmax", "LogSoftmax"):
            elem = 3 * y_size
        elif op not in DATA_MOVEMENT and y is not None:
            elem = y_size
    except (AttributeError, IndexError, TypeError):
        pass
    # Epilogues fused into a conv by the optimization passes (optimized graphs).
    if node.attrs.get("fastcnn_activation"):
        elem += y_size
    if node.attrs.get("fastcnn_residual"):
        elem += y_size
    return params, 2 * macs, elem
