"""Layout negotiation: channel-blocked (NCHWc) values between ops that want them.

The planner asks each op `op.layouts(inputs, block)`; layout-aware ops (the
fast convolutions, pools, ...) answer with the layouts they read and write.
Elementwise ops marked `layout_agnostic` follow their operands: when a
runtime operand is blocked and every runtime operand has the output's rank
and channel count, they run blocked (constants are converted at plan time:
a per-channel constant is padded and blocked, a channel-broadcast one gets a
trailing axis of 1, so numpy broadcasting stays exact).  Everything else runs
in plain NCHW, and the planner inserts a reorder wherever a value's layout
differs from what its reader wants — one per (value, layout), shared by all
readers — and before every graph output.
"""
from __future__ import annotations

import numpy as np

from ..ops.base import Op, TensorInfo, physical_shape

try:
    from .._kernels import conv_nchwc as _kc
    from .._kernels.layout import reorder_call
    BLOCK = int(_kc.simd_block())
except ImportError:   # kernels not built: everything runs in plain NCHW
    _kc = None
    BLOCK = 0


def blocked_const(value: np.ndarray, out_rank: int, channels: int, block: int) -> np.ndarray:
    """A constant operand of an elementwise op, in the blocked layout."""
    a = np.asarray(value)
    a = a.reshape((1,) * (out_rank - a.ndim) + a.shape)
    if a.shape[1] == 1:
        return np.ascontiguousarray(a[..., None])
    cb = -(-channels // block)
    pad = [(0, 0)] * a.ndim
    pad[1] = (0, cb * block - channels)
    a = np.pad(a, pad)
    a = a.reshape(a.shape[:1] + (cb, block) + a.shape[2:])
    return np.ascontiguousarray(np.moveaxis(a, 2, -1))


def agnostic_layouts(op: Op, inputs, outputs, block: int):
    """Layouts for a layout_agnostic op: ([in layouts], [out layouts]) or None (plain)."""
    runtime = [x for x in inputs if x is not None and not x.is_const]
    if not block or not any(x.layout for x in runtime) or len(outputs) != 1:
        return None
    out = outputs[0]
    if len(out.shape) < 3 or out.dtype != np.float32:
        return None
    c = out.shape[1]
    for x in runtime:
        if len(x.shape) != len(out.shape) or x.shape[1] != c or x.dtype != np.float32:
            return None
    for x in inputs:
        if x is not None and x.is_const:
            shp = (1,) * (len(out.shape) - len(x.shape)) + tuple(x.shape)
            if len(shp) != len(out.shape) or shp[1] not in (1, c):
                return None
    want = [block if (x is not None and not x.is_const) else 0 for x in inputs]
    return want, [block]


class Reorder(Op):
    """Internal step: plain NCHW <-> blocked.  Not an ONNX op."""

    cheap_bind = True

    def __init__(self, node, to_block: int, n_threads: int):
        self.to_block = to_block
        super().__init__(node, 0)
        self.n_threads = n_threads

    def infer(self, inputs):
        x = inputs[0]
        return [TensorInfo(x.shape, x.dtype, layout=self.to_block)]

    def bind(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if self.to_block:
            n, c = x.shape[0], x.shape[1]
            s = x.size // max(n * c, 1)
            return reorder_call(x, y, n, c, s, True, self.n_threads)
        n, c = self.logical[0], self.logical[1]
        s = y.size // max(n * c, 1)
        return reorder_call(x, y, n, c, s, False, self.n_threads)


def physical(info: TensorInfo) -> TensorInfo:
    """The info an agnostic op sees: physical shape, constant value converted."""
    return TensorInfo(physical_shape(info.shape, info.layout), info.dtype, info.value,
                      info.layout)
