"""Elementwise unary ops: activations and math functions.

Every op here is `y = f(x)` with y of x's shape (in place when x dies).
float32 inputs run through the Cython kernel `_kernels.elementwise`
(activation codes of epilogue.h, plus the ELT_* codes), pre-bound at plan
time to the buffer addresses so a run is one C call per node; other dtypes,
and builds without the compiled kernels, use numpy with `out=`.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .base import Op, TensorInfo, broadcast_shape, optional
from .attrs import flag_attr, float_attr, int_attr  # noqa: F401
from .registry import register

try:
    from .._kernels import elementwise as _k
except ImportError:   # no compiled kernels: numpy everywhere
    _k = None

F32 = np.dtype(np.float32)


def kernel_code(name):
    """Activation code of the elementwise kernel, or None without the kernel."""
    return None if _k is None else _k.ACT[name]


def keep_alive(fn, *arrays):
    """The executor step for a pre-bound kernel call `fn` (a partial of an `*_p` entry
    point): a native executor `Call` (C function + argument block, run without the GIL
    or any Python) when the kernel module provides one, else the partial itself.
    Either way `arrays` are kept alive, so the addresses bound in stay valid."""
    native = _NATIVE.get(fn.func) if _NATIVE else None
    if native is not None:
        return native(*fn.args, arrays)
    fn.keep = arrays
    return fn


_NATIVE = {} if _k is None or not hasattr(_k, "activation_call") else {
    _k.activation_p: _k.activation_call, _k.binary_p: _k.binary_call,
    _k.affine_channel_p: _k.affine_channel_call}


def _noop():
    pass


def _errstate(fn):
    @functools.wraps(fn)
    def wrapped(*a, **k):
        with np.errstate(all="ignore"):
            return fn(*a, **k)
    return wrapped


class Unary(Op):
    """y = f(x).  Subclasses give `act` (kernel code name) and/or `np_func(x) -> array`."""
    inplace = {0: 0}
    act = None               # name in elementwise.ACT, or None: numpy only
    dtypes = None            # allowed input dtype kinds (None: any)
    out_dtype = None         # fixed output dtype (None: x's)

    def params(self):
        return 0.0, 0.0

    def infer(self, inputs):
        x = inputs[0]
        if x is None:
            raise self.error("input 0 is required")
        if self.dtypes is not None and x.dtype.kind not in self.dtypes:
            raise self.error(f"does not support input dtype {x.dtype}")
        return [TensorInfo(x.shape, np.dtype(self.out_dtype or x.dtype))]

    def np_func(self, x):
        raise NotImplementedError

    def prepare(self, inputs, outputs):
        self._code = None
        if self.act is not None and _k is not None and inputs[0].dtype == F32 \
                and outputs[0].dtype == F32:
            self._code = _k.ACT[self.act]

    def compute(self, xs, ys, scratch=()):
        if getattr(self, "_code", None) is not None:
            x = np.ascontiguousarray(xs[0], F32).reshape(-1)
            p0, p1 = self.params()
            _k.activation(x, ys[0].reshape(-1), self._code, p0, p1, None, 1, 1, self.n_threads)
        else:
            with np.errstate(all="ignore"):
                ys[0][...] = self.np_func(xs[0])

    def bind(self, xs, ys, scratch=()):
        if self._code is not None:
            x, y = xs[0], ys[0]
            if y.size == 0:
                return _noop
            p0, p1 = self.params()
            return keep_alive(functools.partial(
                _k.activation_p, x.ctypes.data, y.ctypes.data, y.size, self._code, p0, p1,
                0, 1, 1, self.n_threads), x, y)
        return super().bind(xs, ys, scratch)


def _float_attr(op, name, default):
    v = op.attr(name, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise op.error(f"attribute '{name}' must be a float, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise op.error(f"attribute '{name}' must be finite, got {v}")
    return v


# -- activations ----------------------------------------------------------------------------
@register("Relu", since_version=1)
class Relu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "RELU"

    def np_func(self, x):
        return np.maximum(x, np.zeros((), x.dtype))


@register("LeakyRelu", since_version=1)
class LeakyRelu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "LEAKY_RELU"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 0.01)

    def params(self):
        return self.alpha, 0.0

    def np_func(self, x):
        return np.where(x >= 0, x, x * x.dtype.type(self.alpha))


@register("Elu", since_version=1)
class Elu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "ELU"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 1.0)

    def params(self):
        return self.alpha, 0.0

    def np_func(self, x):
        return np.where(x >= 0, x, self.alpha * np.expm1(x)).astype(x.dtype)


@register("Celu", since_version=12)
class Celu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "CELU"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 1.0)
        if self.alpha == 0:
            raise self.error("alpha must be non-zero")

    def params(self):
        return self.alpha, 0.0

    def np_func(self, x):
        return (np.maximum(x, 0) + np.minimum(0, self.alpha * np.expm1(x / self.alpha))).astype(x.dtype)


@register("Selu", since_version=1)
class Selu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "SELU"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 1.67326319217681884765625)
        self.gamma = _float_attr(self, "gamma", 1.05070102214813232421875)

    def params(self):
        return self.alpha, self.gamma

    def np_func(self, x):
        return (self.gamma * np.where(x > 0, x, self.alpha * np.expm1(x))).astype(x.dtype)


@register("ThresholdedRelu", since_version=10)
class ThresholdedRelu(Unary):
    act = "THRESHOLDED_RELU"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 1.0)

    def params(self):
        return self.alpha, 0.0

    def np_func(self, x):
        return np.where(x > self.alpha, x, 0).astype(x.dtype)


@register("Sigmoid", since_version=1)
class Sigmoid(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "SIGMOID"

    def np_func(self, x):
        return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


@register("HardSigmoid", since_version=1)
class HardSigmoid(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "HARD_SIGMOID"

    def setup(self):
        self.alpha = _float_attr(self, "alpha", 0.2)
        self.beta = _float_attr(self, "beta", 0.5)

    def params(self):
        return self.alpha, self.beta

    def np_func(self, x):
        return np.clip(self.alpha * x + self.beta, 0, 1).astype(x.dtype)


@register("HardSwish", since_version=14)
class HardSwish(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "HARD_SWISH"

    def np_func(self, x):
        return (x * np.clip(x / 6.0 + 0.5, 0, 1)).astype(x.dtype)


@register("Tanh", since_version=1)
class Tanh(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "TANH"

    def np_func(self, x):
        return np.tanh(x)


@register("Softplus", since_version=1)
class Softplus(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "SOFTPLUS"

    def np_func(self, x):
        return np.logaddexp(x, 0).astype(x.dtype)


@register("Softsign", since_version=1)
class Softsign(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "SOFTSIGN"

    def np_func(self, x):
        return (x / (1 + np.abs(x))).astype(x.dtype)


@register("Mish", since_version=18)
class Mish(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    act = "MISH"

    def np_func(self, x):
        return (x * np.tanh(np.logaddexp(x, 0))).astype(x.dtype)


@register("Gelu", since_version=20)
class Gelu(Unary):
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers
    def setup(self):
        self.approximate = self.attr("approximate", "none")
        if self.approximate not in ("none", "tanh"):
            raise self.error(f"approximate must be 'none' or 'tanh', got {self.approximate!r}")
        self.act = "GELU" if self.approximate == "none" else "GELU_TANH"

    def np_func(self, x):
        xd = x.astype(np.float64)
        if self.approximate == "tanh":
            y = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
        else:
            y = 0.5 * xd * (1 + _erf(xd / math.sqrt(2)))
        return y.astype(x.dtype)


@register("PRelu", since_version=1)
class PRelu(Unary):
    """y = x >= 0 ? x : slope * x, slope broadcast (unidirectionally) to x."""
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers

    def infer(self, inputs):
        x, s = inputs[0], optional(inputs, 1)
        if s is None:
            raise self.error("needs the slope input")
        shape = broadcast_shape(self, x.shape, s.shape)
        if shape != tuple(x.shape):
            raise self.shape_error(f"slope {list(s.shape)} does not broadcast to X {list(x.shape)}")
        return [TensorInfo(x.shape, x.dtype)]

    def prepare(self, inputs, outputs):
        self._code = None
        x, s = inputs[0], inputs[1]
        if _k is None or x.dtype != F32 or s.dtype != F32 or s.value is None:
            return
        slope = np.asarray(s.value, F32)
        r = len(x.shape)
        sh = (1,) * (r - slope.ndim) + tuple(slope.shape)
        nz = [k for k, d in enumerate(sh) if d != 1]
        if not nz:
            self._slope = np.ascontiguousarray(slope.reshape(1))
            self._stride, self._nch = max(x.size, 1), 1
        elif nz == list(range(nz[0], nz[-1] + 1)):
            self._slope = np.ascontiguousarray(slope.reshape(-1))
            self._nch = self._slope.size
            self._stride = int(np.prod(x.shape[nz[-1] + 1:], dtype=np.int64))
            if self._stride == 0:
                return
        else:
            return
        self._code = _k.ACT["PRELU"]

    def compute(self, xs, ys, scratch=()):
        if getattr(self, "_code", None) is not None:
            x = np.ascontiguousarray(xs[0], F32).reshape(-1)
            _k.activation(x, ys[0].reshape(-1), self._code, 0.0, 0.0, self._slope,
                          self._stride, self._nch, self.n_threads)
        else:
            x, s = xs[0], xs[1]
            ys[0][...] = np.where(x >= 0, x, x * s)

    def bind(self, xs, ys, scratch=()):
        if self._code is not None:
            x, y = xs[0], ys[0]
            if y.size == 0:
                return _noop
            return keep_alive(functools.partial(
                _k.activation_p, x.ctypes.data, y.ctypes.data, y.size, self._code, 0.0, 0.0,
                self._slope.ctypes.data, self._stride, self._nch, self.n_threads),
                x, y, self._slope)
        return Op.bind(self, xs, ys, scratch)


@register("Clip", since_version=1)
class Clip(Unary):
    """y = min(max(x, min), max).  opset < 11: `min`/`max` attributes;
    opset >= 11: optional inputs 1 and 2 (may be runtime values)."""
    layout_agnostic = True   # finite in, finite out: safe on blocked buffers

    def setup(self):
        if self.opset < 11:
            self.lo = _float_attr(self, "min", -3.4028234663852886e38) \
                if "min" in self.node.attrs else -np.inf
            self.hi = _float_attr(self, "max", 3.4028234663852886e38) \
                if "max" in self.node.attrs else np.inf

    def infer(self, inputs):
        x = inputs[0]
        if self.opset >= 11:
            for k in (1, 2):
                b = optional(inputs, k)
                if b is not None and b.size != 1:
                    raise self.shape_error(f"input {k} (min/max) must be a scalar, got shape "
                                           f"{list(b.shape)}")
        return [TensorInfo(x.shape, x.dtype)]

    def _bounds(self, inputs):
        if self.opset < 11:
            return self.lo, self.hi, True
        vals = []
        const = True
        for k, d in ((1, -np.inf), (2, np.inf)):
            b = optional(inputs, k)
            if b is None:
                vals.append(d)
            elif b.value is None:
                const = False
                vals.append(d)
            else:
                vals.append(float(np.asarray(b.value).reshape(-1)[0]))
        return vals[0], vals[1], const

    def prepare(self, inputs, outputs):
        self._code = None
        lo, hi, const = self._bounds(inputs)
        self._lo, self._hi = lo, hi
        if _k is not None and const and inputs[0].dtype == F32:
            self._code = _k.ACT["CLIP"]

    def params(self):
        return float(np.float32(self._lo)) if np.isfinite(self._lo) else -np.inf, \
            float(np.float32(self._hi)) if np.isfinite(self._hi) else np.inf

    def compute(self, xs, ys, scratch=()):
        if self._code is not None:
            return Unary.compute(self, xs, ys, scratch)
        x = xs[0]
        if self.opset < 11:
            lo, hi = self.lo, self.hi
        else:
            lo = xs[1] if len(xs) > 1 and xs[1] is not None else None
            hi = xs[2] if len(xs) > 2 and xs[2] is not None else None
        y = x
        if lo is not None:
            y = np.maximum(y, lo.reshape(()) if isinstance(lo, np.ndarray) else lo)
        if hi is not None:
            y = np.minimum(y, hi.reshape(()) if isinstance(hi, np.ndarray) else hi)
        ys[0][...] = y


# -- math -----------------------------------------------------------------------------------
try:
    from math import erf as _math_erf
    _erf = np.vectorize(_math_erf, otypes=[np.float64])
except ImportError:  # pragma: no cover
    _erf = None


def _simple(op_type, since, func, act=None, dtypes=None, out_dtype=None):
    cls = type(op_type, (Unary,), {"act": act, "dtypes": dtypes, "out_dtype": out_dtype,
                                  "np_func": staticmethod(func)})
    register(op_type, since_version=since)(cls)
    globals()[op_type] = cls
    return cls


def _same(f):
    return lambda x: f(x).astype(x.dtype, copy=False)


_simple("Exp", 1, _same(np.exp), "EXP", "f")
_simple("Log", 1, _same(np.log), "LOG", "f")
_simple("Sqrt", 1, _same(np.sqrt), "SQRT", "f")
_simple("Neg", 1, np.negative, "NEG", "fi")
_simple("Abs", 1, np.abs, "ABS", "fiu")
_simple("Reciprocal", 1, _same(lambda x: 1 / x), "RECIPROCAL", "f")
_simple("Erf", 9, lambda x: _erf(x).astype(x.dtype), "ERF", "fiu")
_simple("Floor", 1, np.floor, None, "f")
_simple("Ceil", 1, np.ceil, None, "f")
_simple("Round", 11, np.round, None, "f")
_simple("Sign", 9, np.sign, None, "fiu")
_simple("Not", 1, np.logical_not, None, "b")
_simple("IsNaN", 9, np.isnan, None, "f", np.bool_)
for _name, _f in (("Sin", np.sin), ("Cos", np.cos), ("Tan", np.tan), ("Asin", np.arcsin),
                  ("Acos", np.arccos), ("Atan", np.arctan)):
    _simple(_name, 7, _same(_f), None, "f")
for _name, _f in (("Sinh", np.sinh), ("Cosh", np.cosh), ("Asinh", np.arcsinh),
                  ("Acosh", np.arccosh), ("Atanh", np.arctanh)):
    _simple(_name, 9, _same(_f), None, "f")


@register("IsInf", since_version=10)
class IsInf(Unary):
    dtypes = "f"
    out_dtype = np.bool_

    def setup(self):
        self.neg = flag_attr(self, "detect_negative", 1)
        self.pos = flag_attr(self, "detect_positive", 1)

    def np_func(self, x):
        return np.isinf(x) & (((x < 0) & bool(self.neg)) | ((x > 0) & bool(self.pos)))
