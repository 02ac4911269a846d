"""Less common ops exported CNN graphs still carry: Swish, Shrink, LpNormalization,
RMSNormalization, EyeLike, OneHot, CumSum, ScatterND, ScatterElements, Bitwise*.
numpy implementations (none of these is on a hot path in CNNs)."""
from __future__ import annotations

import numpy as np

from .activation import Unary
from .attrs import flag_attr, float_attr, int_attr, str_attr
from .base import Op, TensorInfo
from .binary import Binary
from .registry import register
from .tensor_ops import _CASTABLE, check_size, norm_axis


@register("Swish", since_version=24)
class Swish(Unary):
    """y = x * sigmoid(alpha * x)  (the SILU kernel when alpha == 1)."""

    def setup(self):
        self.alpha = float_attr(self, "alpha", 1.0)
        self.act = "SILU" if self.alpha == 1.0 else None

    def np_func(self, x):
        return (x / (1 + np.exp(-self.alpha * x))).astype(x.dtype)


@register("Shrink", since_version=9)
class Shrink(Unary):
    def setup(self):
        self.bias = float_attr(self, "bias", 0.0)
        self.lambd = float_attr(self, "lambd", 0.5)

    def np_func(self, x):
        return np.where(x < -self.lambd, x + self.bias,
                        np.where(x > self.lambd, x - self.bias, 0)).astype(x.dtype)


@register("LpNormalization", since_version=1)
class LpNormalization(Op):
    inplace = {0: 0}

    def setup(self):
        self.p = int_attr(self, "p", 2, choices=(1, 2))
        self.axis = int_attr(self, "axis", -1)

    def infer(self, inputs):
        x = inputs[0]
        self.ax = norm_axis(self, self.axis, len(x.shape))
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        n = np.linalg.norm(x.astype(np.float64), ord=self.p, axis=self.ax, keepdims=True)
        with np.errstate(all="ignore"):
            ys[0][...] = np.where(n == 0, 0, x / n)


@register("RMSNormalization", since_version=23)
class RMSNormalization(Op):
    def setup(self):
        self.eps = float_attr(self, "epsilon", 1e-5)
        self.axis = int_attr(self, "axis", -1)
        int_attr(self, "stash_type", 1)

    def infer(self, inputs):
        x, s = inputs[0], inputs[1]
        self.ax = norm_axis(self, self.axis, len(x.shape))
        norm = tuple(x.shape[self.ax:])
        try:
            ok = np.broadcast_shapes(tuple(s.shape), norm) == norm
        except ValueError:
            ok = False
        if not ok:
            raise self.shape_error(f"scale {list(s.shape)} does not broadcast to {list(norm)}")
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0].astype(np.float64)
        axes = tuple(range(self.ax, x.ndim))
        r = np.sqrt((x * x).mean(axis=axes, keepdims=True) + self.eps)
        ys[0][...] = x / r * xs[1]


@register("EyeLike", since_version=9)
class EyeLike(Op):
    shape_only = True     # the output depends on the input's shape only

    def setup(self):
        self.k = int_attr(self, "k", 0)
        dt = int_attr(self, "dtype", 0)
        if dt and dt not in _CASTABLE:
            raise self.error(f"dtype {dt} is not supported")
        self.dtype = np.dtype(_CASTABLE[dt]) if dt else None

    def infer(self, inputs):
        x = inputs[0]
        if len(x.shape) != 2:
            raise self.shape_error(f"input must be 2-D, got {list(x.shape)}")
        return [TensorInfo.of(np.eye(x.shape[0], x.shape[1], self.k, dtype=self.dtype or x.dtype))]


@register("OneHot", since_version=9)
class OneHot(Op):
    def infer(self, inputs):
        idx, depth, values = inputs[0], inputs[1], inputs[2]
        d = self.const_input(inputs, 1, "depth")
        d = int(np.asarray(d).reshape(-1)[0])
        if d < 1:
            raise self.error(f"depth must be positive, got {d}")
        if values.size != 2:
            raise self.shape_error("values must hold [off_value, on_value]")
        r = len(idx.shape) + 1
        self.ax = norm_axis(self, int_attr(self, "axis", -1), r)
        self.depth = d
        shape = list(idx.shape)
        shape.insert(self.ax, d)
        return [TensorInfo(check_size(self, shape), values.dtype)]

    def compute(self, xs, ys, scratch=()):
        idx, values = xs[0], xs[2].reshape(-1)
        i = np.where(idx < 0, idx + self.depth, idx).astype(np.int64)
        hot = np.expand_dims(i, self.ax) == np.arange(self.depth).reshape(
            [-1 if k == self.ax else 1 for k in range(idx.ndim + 1)])
        ys[0][...] = np.where(hot, values[1], values[0])


@register("CumSum", since_version=11)
class CumSum(Op):
    def setup(self):
        self.exclusive = flag_attr(self, "exclusive", 0)
        self.reverse = flag_attr(self, "reverse", 0)

    def infer(self, inputs):
        x = inputs[0]
        a = self.const_input(inputs, 1, "axis")
        if a is None:
            raise self.error("input 'axis' is required")
        self.ax = norm_axis(self, int(np.asarray(a).reshape(-1)[0]), len(x.shape))
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        if self.reverse:
            x = np.flip(x, self.ax)
        y = np.cumsum(x, axis=self.ax, dtype=x.dtype)
        if self.exclusive:
            y = y - x
        if self.reverse:
            y = np.flip(y, self.ax)
        ys[0][...] = y


_REDUCTIONS = {"none": None, "add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


class _Scatter(Op):
    def setup(self):
        self.reduction = str_attr(self, "reduction", "none", choices=tuple(_REDUCTIONS)) \
            if self.opset >= 16 else "none"

    def infer(self, inputs):
        x = inputs[0]
        if inputs[2].dtype != x.dtype:
            raise self.error("updates must have the data's dtype")
        self.check(inputs)
        return [TensorInfo(x.shape, x.dtype)]

    def check(self, inputs):
        pass


@register("ScatterND", since_version=11)
class ScatterND(_Scatter):
    def check(self, inputs):
        x, i, u = inputs
        k = i.shape[-1] if i.shape else 0
        want = tuple(i.shape[:-1]) + tuple(x.shape[k:])
        if not i.shape or k > len(x.shape) or tuple(u.shape) != want:
            raise self.shape_error(f"updates {list(u.shape)} must be {list(want)}")

    def compute(self, xs, ys, scratch=()):
        x, i, u = xs
        y = x.copy()
        k = i.shape[-1]
        dims = np.array(x.shape[:k])
        idx = i.reshape(-1, k)
        idx = np.where(idx < 0, idx + dims, idx)
        if idx.size and ((idx < 0).any() or (idx >= dims).any()):
            raise self.error("indices out of range at run time")
        upd = u.reshape((-1,) + x.shape[k:])
        f = _REDUCTIONS[self.reduction]
        for j in range(idx.shape[0]):
            t = tuple(idx[j])
            y[t] = upd[j] if f is None else f(y[t], upd[j])
        ys[0][...] = y


@register("ScatterElements", since_version=11)
class ScatterElements(_Scatter):
    def check(self, inputs):
        x, i, u = inputs
        self.ax = norm_axis(self, int_attr(self, "axis", 0), len(x.shape))
        if tuple(i.shape) != tuple(u.shape) or len(i.shape) != len(x.shape):
            raise self.shape_error(f"indices {list(i.shape)} and updates {list(u.shape)} must "
                                   f"match and have the data's rank")

    def compute(self, xs, ys, scratch=()):
        x, i, u = xs
        d = x.shape[self.ax]
        if i.size and (i.min() < -d or i.max() >= d):
            raise self.error("indices out of range at run time")
        i = np.where(i < 0, i + d, i)
        y = x.copy()
        grid = list(np.indices(i.shape, sparse=True))
        grid[self.ax] = i
        f = _REDUCTIONS[self.reduction]
        if f is None:
            y[tuple(grid)] = u
        else:
            f.at(y, tuple(np.broadcast_arrays(*grid)), u)
        ys[0][...] = y


def _bitwise(name, ufunc):
    cls = type(name, (Binary,), {"ufunc": ufunc, "dtypes": "iu"})
    register(name, since_version=18)(cls)
    globals()[name] = cls


_bitwise("BitwiseAnd", np.bitwise_and)
_bitwise("BitwiseOr", np.bitwise_or)
_bitwise("BitwiseXor", np.bitwise_xor)


@register("BitwiseNot", since_version=18)
class BitwiseNot(Unary):
    dtypes = "iu"

    def np_func(self, x):
        return np.invert(x)
