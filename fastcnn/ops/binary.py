"""Broadcasting binary and variadic elementwise ops.

Add/Sub/Mul/Div/Max/Min on float32 run through the Cython kernel when the
broadcast is one of the CNN cases: same shape, scalar, or one operand
varying along one contiguous run of axes (per-channel bias/scale).  The
pattern is classified once at prepare time and the kernel call pre-bound;
anything else uses numpy ufuncs with `out=`.

opset < 7 (Add-6, Mul-6, ...) used explicit `broadcast`/`axis` attributes:
B's shape is aligned at `axis` of A (default: right-aligned).
"""
from __future__ import annotations

import functools

import numpy as np

from .activation import F32, _k, keep_alive
from .base import Op, TensorInfo, broadcast_shape
from .attrs import flag_attr, float_attr, int_attr  # noqa: F401
from .registry import register


def classify(out_shape, operand_shape, blocked=False):
    """(mode, k0, k1) of an operand broadcast to out_shape: FULL, SCALAR, or CHANNEL
    varying over out axes [k0, k1); in a channel-blocked tensor (last axis = the lanes)
    also LANES, varying over [k0, k1) and the lanes; None when it is none of these."""
    r = len(out_shape)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    n = int(np.prod(operand_shape, dtype=np.int64))
    if n == n_out:
        return ("FULL", 0, r)
    if n == 1:
        return ("SCALAR", 0, 0)
    sh = (1,) * (r - len(operand_shape)) + tuple(operand_shape)
    nz = [k for k, d in enumerate(sh) if d != 1]
    k0, k1 = nz[0], nz[-1] + 1
    if all(sh[k] == out_shape[k] for k in range(k0, k1)):
        return ("CHANNEL", k0, k1)
    if blocked and sh[-1] == out_shape[-1] and len(nz) > 1:
        k1 = nz[-2] + 1
        if k1 < r - 1 and all(sh[k] == out_shape[k] for k in range(k0, k1)) \
                and all(d == 1 for d in sh[k1:-1]):
            return ("LANES", k0, k1)
    return None


def channel_geometry(out_shape, modes):
    """(outer, C, inner, lanes) of the [outer, C, inner] view shared by the CHANNEL or LANES
    operands (LANES: inner counts the lanes too)."""
    spans = {(m == "LANES", k0, k1) for m, k0, k1 in modes if m in ("CHANNEL", "LANES")}
    if len(spans) > 1:
        return None
    n = int(np.prod(out_shape, dtype=np.int64))
    if not spans:
        return 1, 1, n, 1
    lanes, k0, k1 = spans.pop()
    return (int(np.prod(out_shape[:k0], dtype=np.int64)), int(np.prod(out_shape[k0:k1], dtype=np.int64)),
            int(np.prod(out_shape[k1:], dtype=np.int64)), int(out_shape[-1]) if lanes else 1)


class Binary(Op):
    inplace = {0: 0}
    ufunc = None
    kernel = None               # name in elementwise.BIN
    bool_out = False            # comparisons / logic
    dtypes = None               # allowed dtype kinds

    def setup(self):
        self.legacy = self.opset < 7 and "broadcast" in self.node.attrs
        if self.legacy:
            self.layout_agnostic = False    # axis-aligned broadcasting: plain layout only
            self.broadcast = flag_attr(self, "broadcast", 0)
            self.axis = self.attr("axis")

    def _legacy_b_shape(self, a, b):
        if not self.broadcast:
            if tuple(a) != tuple(b):
                raise self.shape_error(f"shapes {list(a)} and {list(b)} differ and broadcast=0")
            return tuple(b)
        if self.axis is None:
            return tuple(b)
        axis = self.axis + len(a) if self.axis < 0 else self.axis
        if not 0 <= axis <= len(a) - len(b):
            raise self.error(f"axis {self.axis} out of range for shapes {list(a)} and {list(b)}")
        return tuple(b) + (1,) * (len(a) - axis - len(b))

    def infer(self, inputs):
        if len(inputs) < 2 or inputs[0] is None or inputs[1] is None:
            raise self.error("needs two inputs")
        a, b = inputs[0], inputs[1]
        if self.dtypes is not None and (a.dtype.kind not in self.dtypes):
            raise self.error(f"does not support dtype {a.dtype}")
        bshape = self._legacy_b_shape(a.shape, b.shape) if self.legacy else b.shape
        shape = broadcast_shape(self, a.shape, bshape)
        if self.legacy and shape != tuple(a.shape):
            raise self.shape_error(f"B {list(b.shape)} does not broadcast to A {list(a.shape)}")
        self._bshape = bshape
        dt = np.dtype(np.bool_) if self.bool_out else self.result_dtype(a.dtype, b.dtype)
        return [TensorInfo(shape, dt)]

    def result_dtype(self, a, b):
        if a != b:
            raise self.error(f"inputs have different dtypes {a} and {b}")
        return a

    def func(self, a, b, out):
        type(self).ufunc(a, b, out=out)

    def prepare(self, inputs, outputs):
        self._kargs = None
        a, b, y = inputs[0], inputs[1], outputs[0]
        if self.kernel is None or _k is None or a.dtype != F32 or b.dtype != F32 \
                or y.dtype != F32 or y.size == 0:
            return
        # blocked layout: the planner passes physical shapes (and no legacy axis)
        blocked = bool(y.layout)
        ma = classify(y.shape, a.shape, blocked)
        mb = classify(y.shape, b.shape if blocked else self._bshape, blocked)
        if ma is None or mb is None:
            return
        geo = channel_geometry(y.shape, [ma, mb])
        if geo is None:
            return
        self._kargs = (_k.BIN[self.kernel], _k.OPERAND[ma[0]], _k.OPERAND[mb[0]]) + geo

    def compute(self, xs, ys, scratch=()):
        a, b = xs[0], xs[1]
        if self._kargs is not None:
            op, ma, mb, outer, C, inner, lanes = self._kargs
            _k.binary(op, np.ascontiguousarray(a, F32).reshape(-1), ma,
                      np.ascontiguousarray(b, F32).reshape(-1), mb, ys[0].reshape(-1),
                      outer, C, inner, 0, 0.0, 0.0, self.n_threads, lanes)
            return
        if self.legacy:
            b = b.reshape(self._bshape)
        with np.errstate(all="ignore"):
            self.func(a, b, ys[0])

    def bind(self, xs, ys, scratch=()):
        if self._kargs is not None:
            op, ma, mb, outer, C, inner, lanes = self._kargs
            a, b, y = xs[0], xs[1], ys[0]
            if not (a.flags.c_contiguous and b.flags.c_contiguous):
                return super().bind(xs, ys, scratch)
            return keep_alive(functools.partial(
                _k.binary_p, op, a.ctypes.data, ma, b.ctypes.data, mb, y.ctypes.data,
                outer, C, inner, lanes, 0, 0.0, 0.0, self.n_threads), a, b, y)
        return super().bind(xs, ys, scratch)


@register("Add", since_version=1)
class Add(Binary):
    layout_agnostic = True   # (not Div: zero padding lanes would divide by zero)
    ufunc = np.add
    kernel = "ADD"


@register("Sub", since_version=1)
class Sub(Binary):
    layout_agnostic = True   # (not Div: zero padding lanes would divide by zero)
    ufunc = np.subtract
    kernel = "SUB"


@register("Mul", since_version=1)
class Mul(Binary):
    layout_agnostic = True   # (not Div: zero padding lanes would divide by zero)
    ufunc = np.multiply
    kernel = "MUL"


@register("Div", since_version=1)
class Div(Binary):
    """Integer division truncates toward zero (C semantics), as ONNX specifies."""
    kernel = "DIV"

    def func(self, a, b, out):
        if out.dtype.kind in "iu":
            q = np.floor_divide(a, b)
            r = np.remainder(a, b)
            q += ((r != 0) & ((a < 0) ^ (b < 0))).astype(q.dtype)
            out[...] = q
        else:
            np.divide(a, b, out=out)


@register("Pow", since_version=1)
class Pow(Binary):
    """Result has the base's dtype (opset 12+ lets the exponent's differ)."""

    def result_dtype(self, a, b):
        return a

    def func(self, a, b, out):
        if a.dtype.kind == "f" and b.dtype.kind == "f":
            out[...] = np.power(a, b.astype(a.dtype, copy=False))
        else:
            out[...] = np.power(a, b).astype(out.dtype)


@register("Mod", since_version=10)
class Mod(Binary):
    def setup(self):
        super().setup()
        self.fmod = int_attr(self, "fmod", 0)
        if self.fmod not in (0, 1):
            raise self.error(f"fmod must be 0 or 1, got {self.fmod}")

    def func(self, a, b, out):
        if self.fmod:
            np.fmod(a, b, out=out)
        else:
            np.mod(a, b, out=out)


class Compare(Binary):
    bool_out = True
    inplace = {}

    def result_dtype(self, a, b):
        return np.dtype(np.bool_)

    def infer(self, inputs):
        if inputs[0].dtype != inputs[1].dtype:
            raise self.error(f"inputs have different dtypes {inputs[0].dtype} and {inputs[1].dtype}")
        return super().infer(inputs)


def _cmp(name, since, ufunc, logic=False):
    cls = type(name, (Compare,), {"ufunc": ufunc, "dtypes": "b" if logic else None})
    register(name, since_version=since)(cls)
    globals()[name] = cls


_cmp("Equal", 1, np.equal)
_cmp("Less", 1, np.less)
_cmp("Greater", 1, np.greater)
_cmp("LessOrEqual", 12, np.less_equal)
_cmp("GreaterOrEqual", 12, np.greater_equal)
_cmp("And", 1, np.logical_and, True)
_cmp("Or", 1, np.logical_or, True)
_cmp("Xor", 1, np.logical_xor, True)


@register("BitShift", since_version=11)
class BitShift(Binary):
    def setup(self):
        super().setup()
        d = self.attr("direction")
        if d not in ("LEFT", "RIGHT"):
            raise self.error(f"direction must be 'LEFT' or 'RIGHT', got {d!r}")
        self.ufunc_ = np.left_shift if d == "LEFT" else np.right_shift

    def func(self, a, b, out):
        self.ufunc_(a, b, out=out)


# -- variadic -------------------------------------------------------------------------------
class Variadic(Op):
    """Max/Min/Sum/Mean of 1..n broadcast inputs.  Two float32 inputs use the binary kernel."""
    inplace = {0: 0}
    layout_agnostic = True
    ufunc = None
    kernel = None

    def infer(self, inputs):
        ins = [x for x in inputs if x is not None]
        if not ins:
            raise self.error("needs at least one input")
        dts = {x.dtype for x in ins}
        if len(dts) > 1:
            raise self.error(f"inputs have different dtypes {sorted(map(str, dts))}")
        shape = broadcast_shape(self, *[x.shape for x in ins])
        if self.opset < 8 and any(tuple(x.shape) != shape for x in ins):
            raise self.shape_error("inputs must have equal shapes before opset 8")
        return [TensorInfo(shape, ins[0].dtype)]

    def prepare(self, inputs, outputs):
        self._kargs = None
        ins = [x for x in inputs if x is not None]
        y = outputs[0]
        if len(ins) != 2 or self.kernel is None or _k is None or y.size == 0 or \
                any(x.dtype != F32 for x in ins):
            return
        blocked = bool(y.layout)
        ma, mb = classify(y.shape, ins[0].shape, blocked), classify(y.shape, ins[1].shape, blocked)
        if ma is None or mb is None:
            return
        geo = channel_geometry(y.shape, [ma, mb])
        if geo is None:
            return
        self._kargs = (_k.BIN[self.kernel], _k.OPERAND[ma[0]], _k.OPERAND[mb[0]]) + geo

    def compute(self, xs, ys, scratch=()):
        xs = [x for x in xs if x is not None]
        out = ys[0]
        if self._kargs is not None:
            op, ma, mb, outer, C, inner, lanes = self._kargs
            _k.binary(op, np.ascontiguousarray(xs[0]).reshape(-1), ma,
                      np.ascontiguousarray(xs[1]).reshape(-1), mb, out.reshape(-1),
                      outer, C, inner, 0, 0.0, 0.0, self.n_threads, lanes)
        elif len(xs) == 1:
            out[...] = xs[0]
        else:
            with np.errstate(all="ignore"):
                self.ufunc(xs[0], xs[1], out=out)
                for x in xs[2:]:
                    self.ufunc(out, x, out=out)
        self.finish(out, len(xs))

    def finish(self, out, n):
        pass

    def bind(self, xs, ys, scratch=()):
        if self._kargs is not None and type(self).finish is Variadic.finish:
            op, ma, mb, outer, C, inner, lanes = self._kargs
            a, b = [x for x in xs if x is not None]
            y = ys[0]
            if a.flags.c_contiguous and b.flags.c_contiguous:
                return keep_alive(functools.partial(
                    _k.binary_p, op, a.ctypes.data, ma, b.ctypes.data, mb, y.ctypes.data,
                    outer, C, inner, lanes, 0, 0.0, 0.0, self.n_threads), a, b, y)
        return super().bind(xs, ys, scratch)


@register("Max", since_version=1)
class Max(Variadic):
    ufunc = np.maximum
    kernel = "MAX"


@register("Min", since_version=1)
class Min(Variadic):
    ufunc = np.minimum
    kernel = "MIN"


@register("Sum", since_version=1)
class Sum(Variadic):
    ufunc = np.add
    kernel = "ADD"


@register("Mean", since_version=1)
class Mean(Variadic):
    ufunc = np.add
    kernel = "ADD"

    def finish(self, out, n):
        if n > 1:
            out /= out.dtype.type(n)


@register("Where", since_version=9)
class Where(Op):
    def infer(self, inputs):
        if len(inputs) != 3 or any(x is None for x in inputs):
            raise self.error("needs three inputs (condition, X, Y)")
        c, x, y = inputs
        if c.dtype != np.bool_:
            raise self.error(f"condition must be bool, got {c.dtype}")
        if x.dtype != y.dtype:
            raise self.error(f"X and Y have different dtypes {x.dtype} and {y.dtype}")
        return [TensorInfo(broadcast_shape(self, c.shape, x.shape, y.shape), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = np.where(xs[0], xs[1], xs[2])
