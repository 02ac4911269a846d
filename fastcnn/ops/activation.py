"""Elementwise activations (placeholder numpy versions; Cython kernels replace them)."""
from __future__ import annotations

import numpy as np

from .base import Op, TensorInfo
from .registry import register


class _Unary(Op):
    inplace = {0: 0}

    def infer(self, inputs):
        x = inputs[0]
        return [TensorInfo(x.shape, x.dtype)]


@register("Relu", since_version=6)
class Relu(_Unary):
    def compute(self, xs, ys, scratch=()):
        np.maximum(xs[0], 0, out=ys[0])
