"""Broadcasting binary ops (placeholder numpy versions)."""
from __future__ import annotations

import numpy as np

from .base import Op, TensorInfo, broadcast_shape
from .registry import register


class _Binary(Op):
    inplace = {0: 0}
    ufunc = None

    def infer(self, inputs):
        a, b = inputs[0], inputs[1]
        return [TensorInfo(broadcast_shape(self, a.shape, b.shape), np.result_type(a.dtype, b.dtype))]

    def compute(self, xs, ys, scratch=()):
        type(self).ufunc(xs[0], xs[1], out=ys[0])


@register("Add", since_version=7)
class Add(_Binary):
    ufunc = np.add
