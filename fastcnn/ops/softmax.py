"""Softmax, LogSoftmax, Hardmax.

opset < 13: the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])]
and normalized over the second dimension (default axis 1).
opset >= 13: normalized over the single axis `axis` (default -1).
"""
from __future__ import annotations

import numpy as np

from .attrs import int_attr
from .base import Op, TensorInfo
from .registry import register
from .tensor_ops import norm_axis


class _SoftmaxBase(Op):
    inplace = {0: 0}

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
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        if self.view is not None:
            x = x.reshape(self.view)
        with np.errstate(all="ignore"):
            y = self.f(x, self.ax)
        ys[0][...] = y.reshape(ys[0].shape)


@register("Softmax", since_version=1)
class Softmax(_SoftmaxBase):
    @staticmethod
    def f(x, ax):
        e = np.exp(x - np.max(x, axis=ax, keepdims=True))
        e /= np.sum(e, axis=ax, keepdims=True)
        return e


@register("LogSoftmax", since_version=1)
class LogSoftmax(_SoftmaxBase):
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
