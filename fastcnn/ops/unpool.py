"""MaxUnpool (opset 9, 11): the partial inverse of MaxPool (SegNet decoders; paddle2onnx's
export of paddle.nn.MaxUnPool2D).

    Y = zeros(output_shape);  Y.flat[I[i]] = X[i]   for every i

`I` holds MaxPool's Indices: flat offsets into the whole (N, C, *spatial) tensor.
Default output spatial size: (in - 1)·stride - pad_begin - pad_end + kernel; the optional
third input `output_shape` (full shape, a constant at plan time, e.g. Shape of the tensor
MaxPool read) overrides it.  As in onnxruntime, a repeated index keeps the last value.
numpy scatter: not on any hot path.
"""
from __future__ import annotations

import math

import numpy as np

from .attrs import ints_attr
from .base import Op, TensorInfo, optional
from .registry import register


@register("MaxUnpool", since_version=9)
class MaxUnpool(Op):
    def setup(self):
        self.kernel_shape = ints_attr(self, "kernel_shape")
        if not self.kernel_shape or any(k < 1 for k in self.kernel_shape):
            raise self.error(f"attribute 'kernel_shape' must be positive integers, "
                             f"got {self.kernel_shape}")
        d = len(self.kernel_shape)
        self.strides = ints_attr(self, "strides", [1] * d)
        self.pads = ints_attr(self, "pads", [0] * (2 * d))
        if len(self.strides) != d or any(s < 1 for s in self.strides):
            raise self.error(f"attribute 'strides' must be {d} positive integers, got {self.strides}")
        if len(self.pads) != 2 * d or any(p < 0 for p in self.pads):
            raise self.error(f"attribute 'pads' must be {2 * d} non-negative integers, "
                             f"got {self.pads}")

    def infer(self, inputs):
        x, ind = inputs[0], inputs[1]
        d = len(self.kernel_shape)
        if len(x.shape) != d + 2:
            raise self.shape_error(f"X has rank {len(x.shape)}, kernel_shape needs rank {d + 2}")
        if x.dtype.kind != "f":
            raise self.error(f"X must be floating point, got {x.dtype}")
        if ind.dtype != np.int64:
            raise self.error(f"I must be int64, got {ind.dtype}")
        if tuple(ind.shape) != tuple(x.shape):
            raise self.shape_error(f"I has shape {list(ind.shape)}, X {list(x.shape)}: "
                                   "they must be equal")
        shp = self.const_input(inputs, 2, "output_shape") if optional(inputs, 2) is not None \
            else None
        if shp is not None:
            shp = [int(v) for v in np.asarray(shp).ravel()]
            if len(shp) != d + 2 or any(v < 0 for v in shp):
                raise self.shape_error(f"output_shape {shp} must be {d + 2} non-negative dims")
            if shp[:2] != list(x.shape[:2]):
                raise self.shape_error(f"output_shape {shp} must keep X's N, C {list(x.shape[:2])}")
            out = tuple(shp)
        else:
            sp = [(n - 1) * s - self.pads[k] - self.pads[k + d] + kk
                  for k, (n, s, kk) in enumerate(zip(x.shape[2:], self.strides, self.kernel_shape))]
            if any(v < 0 for v in sp):
                raise self.shape_error(f"output spatial size {sp} is negative")
            out = tuple(x.shape[:2]) + tuple(sp)
        self.n_out = math.prod(out)
        if ind.value is not None:
            self._check(ind.value)
        return [TensorInfo(out, x.dtype)]

    def _check(self, ind):
        if ind.size and (ind.min() < 0 or ind.max() >= self.n_out):
            bad = int(ind.min()) if ind.min() < 0 else int(ind.max())
            raise self.error(f"index {bad} is outside the output of {self.n_out} elements")

    def compute(self, xs, ys, scratch=()):
        x, ind = xs[0], xs[1]
        self._check(ind)
        y = np.zeros(self.n_out, x.dtype)
        y[ind.reshape(-1)] = x.reshape(-1)
        ys[0][...] = y.reshape(ys[0].shape)
