"""Reductions: ReduceMean/Max/Min/Sum/Prod/L1/L2/SumSquare/LogSum/LogSumExp, ArgMax, ArgMin.

Axes: attribute before ReduceSum-13 / the other Reduce*-18, optional input
after (must be a constant).  Empty axes reduce everything, unless
`noop_with_empty_axes` (which makes the op an identity).  Reductions over an
empty set give the operation's identity (0, 1, -inf, +inf).
"""
from __future__ import annotations

import numpy as np

from .base import Op, TensorInfo
from .attrs import flag_attr, int_attr, ints_attr
from .registry import register
from .tensor_ops import norm_axis

try:
    from .._kernels import reduce as _kr
except ImportError:
    _kr = None


class Reduce(Op):
    axes_input_since = 18
    identity = 0.0
    #: (reduce-kernel mode, whether to divide by the count) for float32 reductions over one
    #: run of adjacent axes (a spatial mean of an NHWC tensor is TF's global average pool)
    native = None

    def setup(self):
        self.keepdims = flag_attr(self, "keepdims", 1)
        self.noop = flag_attr(self, "noop_with_empty_axes", 0)
        if self.opset < self.axes_input_since:
            ints_attr(self, "axes")

    def infer(self, inputs):
        x = inputs[0]
        r = len(x.shape)
        if self.opset >= self.axes_input_since:
            axes = self.const_input(inputs, 1, "axes")
            axes = None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
        else:
            axes = self.attr("axes")
        if not axes:
            axes = None if (axes is None or len(axes) == 0) else axes
        if axes is None:
            self.axes = None if self.noop else tuple(range(r))
        else:
            self.axes = tuple(sorted({norm_axis(self, a, max(r, 1), "axes entry") for a in axes}))
            if len(self.axes) != len(axes):
                raise self.error(f"axes {axes} repeat an axis")
        if self.axes is None:
            return [TensorInfo(x.shape, x.dtype)]
        if self.keepdims:
            shape = tuple(1 if k in self.axes else d for k, d in enumerate(x.shape))
        else:
            shape = tuple(d for k, d in enumerate(x.shape) if k not in self.axes)
        return [TensorInfo(shape, self.out_dtype(x.dtype))]

    def out_dtype(self, dt):
        return dt

    def reduce(self, x, axes):
        raise NotImplementedError

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        if self.axes is None:
            ys[0][...] = self.post_identity(x)
            return
        if any(x.shape[a] == 0 for a in self.axes) and x.ndim:
            ys[0][...] = self.empty_value(x.dtype)
            return
        with np.errstate(all="ignore"):
            y = self.reduce(x, self.axes)
        ys[0][...] = np.asarray(y).reshape(ys[0].shape)

    def prepare(self, inputs, outputs):
        """[outer, S, inner] geometry when the native kernel can run this reduction."""
        self.geometry = None
        x = inputs[0]
        if _kr is None or self.native is None or self.axes is None or x.dtype != np.float32 \
                or x.layout or x.size == 0 or self.axes != tuple(range(self.axes[0], self.axes[-1] + 1)):
            return
        a0, a1 = self.axes[0], self.axes[-1] + 1
        shp = [int(d) for d in x.shape]
        self.geometry = (int(np.prod(shp[:a0])), int(np.prod(shp[a0:a1])), int(np.prod(shp[a1:])))

    def bind(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if getattr(self, "geometry", None) is None or not x.flags.c_contiguous \
                or not y.flags.c_contiguous:
            return super().bind(xs, ys, scratch)
        outer, S, inner = self.geometry
        mode, mean = self.native
        return _kr.reduce_mid_call(x.ctypes.data, y.ctypes.data, outer, S, inner, _kr.MODE[mode],
                                   1.0 / S if mean else 1.0, self.n_threads, (x, y))

    def post_identity(self, x):
        return x

    def empty_value(self, dt):
        return self.identity


def _reducer(name, axes_since, func, identity=0.0, post=None, native=None):
    def reduce(self, x, axes):
        return func(x, axes)
    attrs = {"reduce": reduce, "axes_input_since": axes_since, "identity": identity,
             "native": native}
    if post is not None:
        attrs["post_identity"] = lambda self, x: post(x)
    cls = type(name, (Reduce,), attrs)
    register(name, since_version=1)(cls)
    globals()[name] = cls
    return cls


def _max_identity(self, dt):
    return False if dt.kind == "b" else -np.inf if dt.kind == "f" else np.iinfo(dt).min


def _min_identity(self, dt):
    return True if dt.kind == "b" else np.inf if dt.kind == "f" else np.iinfo(dt).max


def _lse(x, axes):
    xd = x.astype(np.float64)
    m = np.max(xd, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    return (np.log(np.sum(np.exp(xd - m), axis=axes, keepdims=True)) + m).astype(x.dtype)


_reducer("ReduceMean", 18, lambda x, a: np.mean(x, axis=a, dtype=np.float64 if x.dtype.kind == "f"
                                                 else None).astype(x.dtype), np.nan,
         native=("SUM", True))
_reducer("ReduceSum", 13, lambda x, a: np.sum(x, axis=a, dtype=x.dtype), native=("SUM", False))
_reducer("ReduceProd", 18, lambda x, a: np.prod(x, axis=a, dtype=x.dtype), 1.0)
_reducer("ReduceL1", 18, lambda x, a: np.sum(np.abs(x), axis=a, dtype=x.dtype), 0.0,
         lambda x: np.abs(x))
_reducer("ReduceL2", 18, lambda x, a: np.sqrt(np.sum(np.square(x.astype(np.float64)), axis=a))
         .astype(x.dtype), 0.0, lambda x: np.abs(x), native=("SUMSQ", False))
_reducer("ReduceSumSquare", 18, lambda x, a: np.sum(np.square(x), axis=a, dtype=x.dtype), 0.0,
         lambda x: np.square(x))
_reducer("ReduceLogSum", 18, lambda x, a: np.log(np.sum(x, axis=a, dtype=np.float64))
         .astype(x.dtype), -np.inf, lambda x: np.log(x))
_reducer("ReduceLogSumExp", 18, _lse, -np.inf)
ReduceMax = _reducer("ReduceMax", 18, lambda x, a: np.max(x, axis=a), native=("MAX", False))
ReduceMax.empty_value = _max_identity
ReduceMin = _reducer("ReduceMin", 18, lambda x, a: np.min(x, axis=a))
ReduceMin.empty_value = _min_identity


class _Arg(Op):
    func = None

    def setup(self):
        self.keepdims = flag_attr(self, "keepdims", 1)
        self.last = flag_attr(self, "select_last_index", 0) if self.opset >= 12 else 0
        int_attr(self, "axis", 0)

    def infer(self, inputs):
        x = inputs[0]
        self.ax = norm_axis(self, self.attr("axis", 0), len(x.shape))
        if x.shape[self.ax] == 0:
            raise self.shape_error(f"cannot take {self.node.op_type} over an empty axis")
        shape = list(x.shape)
        if self.keepdims:
            shape[self.ax] = 1
        else:
            del shape[self.ax]
        return [TensorInfo(tuple(shape), np.dtype(np.int64))]

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        if self.last:
            x = np.flip(x, self.ax)
            i = x.shape[self.ax] - 1 - type(self).func(x, axis=self.ax)
        else:
            i = type(self).func(x, axis=self.ax)
        ys[0][...] = i.reshape(ys[0].shape)


@register("ArgMax", since_version=1)
class ArgMax(_Arg):
    func = np.argmax


@register("ArgMin", since_version=1)
class ArgMin(_Arg):
    func = np.argmin
