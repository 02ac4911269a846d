"""Softmax, LogSoftmax, Hardmax.

opset < 13: the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])]
and normalized over the second dimension (default axis 1).
opset >= 13: normalized over the single axis `axis` (default -1).

Either way the input is an [outer, S, inner] view normalized over S (before 13:
inner = 1).  float32 Softmax / LogSoftmax run as one native executor step
(`_kernels.softmax`: vectorized exp, max subtracted first); other dtypes, Hardmax and
builds without the kernels use numpy.
"""
from __future__ import annotations

import math

import numpy as np

from .attrs import int_attr
from .base import Op, TensorInfo
from .registry import register
from .tensor_ops import norm_axis

try:
    from .._kernels import softmax as _ks
except ImportError:   # no compiled kernels: numpy
    _ks = None

F32 = np.dtype(np.float32)


class _SoftmaxBase(Op):
    inplace = {0: 0}
    log = None          # kernel flag: 0 softmax, 1 log-softmax, None: numpy only

    def setup(self):
        int_attr(self, "axis", -1)

    def infer(self, inputs):
        x = inputs[0]
        if x.dtype.kind != "f":
            raise self.error(f"needs a floating-point input, got {x.dtype}")
        r = len(x.shape)
        if r == 0:
            raise self.shape_error("needs an input of rank >= 1")
        if self.opset >= 13:
            self.ax = norm_axis(self, self.attr("axis", -1), r)
            self.view = None
        else:
            axis = self.attr("axis", 1)
            if not isinstance(axis, int) or not -r <= axis <= r:
                raise self.error(f"axis {axis} out of range for rank {r}")
            axis = axis + r if axis < 0 else axis
            self.view = (int(np.prod(x.shape[:axis], dtype=np.int64)),
                         int(np.prod(x.shape[axis:], dtype=np.int64)))
            self.ax = 1
        shape = self.view if self.view is not None else x.shape
        self.geometry = (math.prod(shape[:self.ax]), int(shape[self.ax]),
                         math.prod(shape[self.ax + 1:]))      # (outer, S, inner)
        return [TensorInfo(x.shape, x.dtype)]

    def prepare(self, inputs, outputs):
        self._native = _ks is not None and self.log is not None and \
            inputs[0].dtype == F32 and outputs[0].size > 0

    def bind(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if getattr(self, "_native", False) and x.flags.c_contiguous and y.flags.c_contiguous:
            outer, S, inner = self.geometry
            return _ks.softmax_call(x.ctypes.data, y.ctypes.data, outer, S, inner, self.log,
                                    self.n_threads, (x, y))
        return super().bind(xs, ys, scratch)

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        if self.view is not None:
            x = x.reshape(self.view)
        with np.errstate(all="ignore"):
            y = self.f(x, self.ax)
        ys[0][...] = y.reshape(ys[0].shape)


@register("Softmax", since_version=1)
class Softmax(_SoftmaxBase):
    log = 0

    @staticmethod
    def f(x, ax):
        e = np.exp(x - np.max(x, axis=ax, keepdims=True))
        e /= np.sum(e, axis=ax, keepdims=True)
        return e


@register("LogSoftmax", since_version=1)
class LogSoftmax(_SoftmaxBase):
    log = 1

    @staticmethod
    def f(x, ax):
        s = x - np.max(x, axis=ax, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=ax, keepdims=True))


@register("Hardmax", since_version=1)
class Hardmax(_SoftmaxBase):
    inplace = {}

    @staticmethod
    def f(x, ax):
        i = np.argmax(x, axis=ax)
        y = np.zeros_like(x)
        np.put_along_axis(y, np.expand_dims(i, ax), 1, axis=ax)
        return y
