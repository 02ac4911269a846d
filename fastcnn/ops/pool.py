"""Pooling ops: MaxPool, AveragePool, LpPool and their Global* forms.

    MaxPool      y = max over the window's real elements (padding ignored);
                 Indices = flat offset of the max in X (row-major over (N, C, *spatial),
                 or column-major over the spatial dims when storage_order=1)
    AveragePool  y = Σ window / count; count = real elements (count_include_pad=0) or
                 elements inside input + explicit pads (count_include_pad=1)
    LpPool       y = (Σ |x|^p)^(1/p) over the real elements
    Global*      the same over the whole spatial extent

Windows (conv_util): auto_pad, pads, strides, dilations; with ceil_mode the output
size rounds up, but a window starting inside the right padding is dropped
(ONNX reference and onnxruntime).  Kernels: `_kernels/pool.pyx` (SIMD rows in
`src/pool_simd.h`), GIL released, native executor steps.  MaxPool (without
Indices), AveragePool and LpPool on a channel-blocked input stay blocked
(`layouts`): one channel per lane, no reorders around the pool in a CNN.
"""
from __future__ import annotations

import numpy as np

from ..runtime.threads import threads_for
from .attrs import flag_attr
from .base import Op, TensorInfo
from .conv_util import Window, WindowAttrs, check_float, compute_dtype, converting
from .registry import register

try:
    from .._kernels import pool as _k
except ImportError:
    _k = None
try:
    from .._kernels import reduce as _kr
except ImportError:
    _kr = None

MODE_MAX, MODE_AVG_EXCLUDE, MODE_AVG_INCLUDE, MODE_LP = 0, 1, 2, 3


def _check_x(op, x):
    if x is None:
        raise op.error("input X is required")
    # float16 computes in float32; MaxPool's int8/uint8 (opset 12) in float64 (exact)
    check_float(op, x, "X", extra=op.extra_dtypes)
    if not 3 <= len(x.shape) <= 5:
        raise op.shape_error(f"X must be (N, C, spatial...) with 1 to 3 spatial dims, got shape "
                             f"{list(x.shape)}")


class _Pool(Op):
    """Shared plumbing: a resolved Window, a mode, and the pool_3d kernel."""
    mode = MODE_MAX
    p = 2.0
    extra_dtypes = (np.float16,)

    def _window(self, x) -> Window:
        raise NotImplementedError

    def infer(self, inputs):
        x = inputs[0]
        _check_x(self, x)
        w = self._window(x)
        if any(o <= 0 for o in w.out_spatial):
            raise self.shape_error(f"output spatial shape {list(w.out_spatial)} is empty")
        self.win = w
        shape = tuple(x.shape[:2]) + w.out_spatial
        outs = [TensorInfo(shape, np.dtype(x.dtype))]
        if self._wants_indices():
            outs.append(TensorInfo(shape, np.dtype(np.int64)))
        return outs

    def _wants_indices(self):
        return False

    def prepare(self, inputs, outputs):
        self.infer(inputs)
        x = inputs[0]
        w3 = self.win.as_3d()
        self.w3 = w3
        self.nc = int(x.shape[0]) * int(x.shape[1])
        work = self.nc * int(np.prod(w3.out_spatial)) * int(np.prod(w3.kernel))
        self.threads = threads_for(work, self.n_threads)
        self.io_dtype = np.dtype(x.dtype)
        self.dtype = compute_dtype(x.dtype)

    def scratch(self, inputs, outputs):
        if self.io_dtype == self.dtype:
            return []
        return [((self.nc,) + self.w3.in_spatial, self.dtype),
                ((self.nc,) + self.w3.out_spatial, self.dtype)]

    def bind(self, xs, ys, scratch=()):
        if self.io_dtype != self.dtype:
            xc, yc = scratch[0], scratch[1]
            inner = self._bind([xc], [yc] + list(ys[1:]))
            return converting(inner, [(xc, xs[0].reshape(xc.shape))],
                              [(ys[0].reshape(yc.shape), yc)])
        return self._bind(xs, ys)

    def _bind(self, xs, ys):
        w3 = self.w3
        x4 = xs[0].reshape((self.nc,) + w3.in_spatial)
        y4 = ys[0].reshape((self.nc,) + w3.out_spatial)
        ind = None
        if len(ys) > 1 and ys[1] is not None:
            ind = ys[1].reshape((self.nc,) + w3.out_spatial)
        args = (w3.kernel, w3.strides, w3.pads_begin, w3.pads_end, w3.dilations, self.mode,
                float(self.p), int(getattr(self, "storage_order", 0)), self.threads)
        if _k is None:                   # kernels not built: the numpy reference
            return lambda: self._reference(x4, y4, ind)
        if hasattr(_k, "pool_call"):     # native executor step: no Python per run
            return _k.pool_call(x4, y4, ind, *args)
        pool = _k.pool_3d
        return lambda: pool(x4, y4, ind, *args)

    def _reference(self, x4, y4, ind):
        from ..reference.conv import average_pool, lp_pool, max_pool
        w3 = self.w3
        ceil = bool(getattr(getattr(self, "win_attrs", None), "ceil_mode", False))
        geo = (w3.kernel, w3.strides, w3.pads, w3.dilations, ceil)
        x5 = x4[None]
        if self.mode == MODE_MAX:
            y, i = max_pool(x5, *geo, int(getattr(self, "storage_order", 0)), True)
            if ind is not None:
                ind[...] = i[0]
        elif self.mode == MODE_LP:
            y = lp_pool(x5, *geo, self.p)
        else:
            y = average_pool(x5, *geo, int(self.mode == MODE_AVG_INCLUDE))
        y4[...] = y[0]

    def compute(self, xs, ys, scratch=()):
        self.bind(xs, ys, scratch)()


class _WindowPool(_Pool):
    allow_dilations = True
    allow_ceil = True

    def layouts(self, inputs, block):
        """Blocked in, blocked out when the input already is (float32, no Indices): one
        channel per SIMD lane, so the planner needs no reorder around the pool."""
        x = inputs[0]
        if _k is None or block != _k.B or not x.layout or x.dtype != np.float32 or \
                self._wants_indices():
            return None
        return [block], [block]

    def prepare(self, inputs, outputs):
        super().prepare(inputs, outputs)
        self.blocked = bool(inputs[0].layout)
        self.channels = int(inputs[0].shape[1])

    def scratch(self, inputs, outputs):
        return [] if self.blocked else super().scratch(inputs, outputs)

    def bind(self, xs, ys, scratch=()):
        if not self.blocked:
            return super().bind(xs, ys, scratch)
        w3 = self.w3
        x, y = xs[0], ys[0]
        xb = x.reshape(x.shape[0], x.shape[1], -1, x.shape[-1])
        yb = y.reshape(y.shape[0], y.shape[1], -1, y.shape[-1])
        return _k.pool_nchwc_call(xb, yb, w3.in_spatial, w3.out_spatial, w3.kernel,
                                  w3.strides, w3.pads_begin, w3.pads_end, w3.dilations,
                                  self.mode, float(self.p), self.channels, self.threads)

    def setup(self):
        self.win_attrs = WindowAttrs(self, kernel_required=True,
                                     allow_dilations=self.allow_dilations,
                                     allow_ceil=self.allow_ceil)

    def _window(self, x):
        n = len(x.shape) - 2
        if len(self.win_attrs.kernel_shape) != n:
            raise self.shape_error(f"kernel_shape has {len(self.win_attrs.kernel_shape)} dims "
                                   f"but X has {n} spatial dims (shape {list(x.shape)})")
        wa = self.win_attrs
        if wa.auto_pad == "NOTSET" and wa.pads is not None:
            k = wa.kernel_shape
            if any(p >= k[i % n] for i, p in enumerate(wa.pads)):
                # as onnxruntime: a pad reaching a whole kernel makes windows of pure padding
                raise self.error(f"pads {list(wa.pads)} must be smaller than kernel_shape "
                                 f"{list(k)}")
        return wa.resolve(x.shape[2:], pooling=True)


@register("MaxPool", since_version=1)
@register("MaxPool", since_version=8)
@register("MaxPool", since_version=10)
@register("MaxPool", since_version=11)
@register("MaxPool", since_version=12)
class MaxPool(_WindowPool):
    mode = MODE_MAX
    extra_dtypes = (np.float16, np.int8, np.uint8)

    def setup(self):
        super().setup()
        self.storage_order = flag_attr(self, "storage_order", 0)   # 1: column major
        if len(self.node.outputs) > 2:
            raise self.error(f"MaxPool has at most 2 outputs, got {len(self.node.outputs)}")
        if len(self.node.outputs) == 2 and self.node.outputs[1] and self.opset < 8:
            raise self.error("the Indices output needs opset >= 8")

    def _wants_indices(self):
        return len(self.node.outputs) > 1 and bool(self.node.outputs[1])


@register("AveragePool", since_version=1)
@register("AveragePool", since_version=7)
@register("AveragePool", since_version=10)
@register("AveragePool", since_version=11)
@register("AveragePool", since_version=19)
class AveragePool(_WindowPool):
    def setup(self):
        super().setup()
        cip = flag_attr(self, "count_include_pad", 0)
        self.mode = MODE_AVG_INCLUDE if cip else MODE_AVG_EXCLUDE


def _parse_p(op):
    p = op.attr("p", 2)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < float("inf"):
        raise op.error(f"p must be a positive number, got {p!r}")
    return float(p)


@register("LpPool", since_version=1)
@register("LpPool", since_version=2)
@register("LpPool", since_version=11)
@register("LpPool", since_version=18)
class LpPool(_WindowPool):
    mode = MODE_LP

    def setup(self):
        super().setup()
        self.p = _parse_p(self)


class _GlobalPool(_Pool):
    #: the reduce kernel's mode for this pool (None: the window kernel only)
    reduce_mode = None

    def _native(self, x):
        """Whether the [outer, S, inner] reduce kernel runs this pool (float32)."""
        return _kr is not None and self.reduce_mode is not None and x.dtype == np.float32 \
            and (self.mode != MODE_LP or self.p == 2.0)

    def layouts(self, inputs, block):
        """Blocked in, blocked out ([N, Cb, 1.., B]): one reduction over the pixels of each
        (image, channel block), lanes stay channels — no reorder around SE blocks."""
        x = inputs[0]
        if not x.layout or not self._native(x):
            return None
        return [block], [block]

    def prepare(self, inputs, outputs):
        x = inputs[0]
        self.blocked = bool(x.layout)
        self.native = self._native(x)
        if not self.native:
            super().prepare(inputs, outputs)

    def scratch(self, inputs, outputs):
        return [] if self.native else super().scratch(inputs, outputs)

    def bind(self, xs, ys, scratch=()):
        if not self.native:
            return super().bind(xs, ys, scratch)
        x, y = xs[0], ys[0]
        if self.blocked:      # [N, Cb, *spatial, B]: reduce the pixels, lanes stay inner
            outer, inner = x.shape[0] * x.shape[1], x.shape[-1]
        else:                 # [N, C, *spatial]: one contiguous row per (n, c)
            outer, inner = x.shape[0] * x.shape[1], 1
        S = x.size // max(outer * inner, 1)
        if y.size == 0:
            return lambda: None
        if not (x.flags.c_contiguous and y.flags.c_contiguous):
            mode, red = _kr.MODE[self.reduce_mode], _kr.reduce_mid

            def run():
                yc = np.empty(y.shape, np.float32)
                red(np.ascontiguousarray(x).reshape(-1), yc.reshape(-1), outer, S, inner, mode,
                    1.0 / S, self.n_threads)
                y[...] = yc
            return run
        return _kr.reduce_mid_call(x.ctypes.data, y.ctypes.data, outer, S, inner,
                                   _kr.MODE[self.reduce_mode], 1.0 / S, self.n_threads, (x, y))

    def _window(self, x):
        sp = tuple(int(d) for d in x.shape[2:])
        n = len(sp)
        if any(d <= 0 for d in sp):
            raise self.shape_error(f"X has an empty spatial dim (shape {list(x.shape)})")
        return Window(sp, (1,) * n, sp, (1,) * n, (1,) * n, (0,) * n, (0,) * n)


@register("GlobalMaxPool", since_version=1)
class GlobalMaxPool(_GlobalPool):
    mode = MODE_MAX
    reduce_mode = "MAX"


@register("GlobalAveragePool", since_version=1)
class GlobalAveragePool(_GlobalPool):
    mode = MODE_AVG_EXCLUDE
    reduce_mode = "SUM"


@register("GlobalLpPool", since_version=1)
@register("GlobalLpPool", since_version=2)
class GlobalLpPool(_GlobalPool):
    mode = MODE_LP
    reduce_mode = "SUMSQ"     # p = 2 only (see _native)

    def setup(self):
        self.p = _parse_p(self)
