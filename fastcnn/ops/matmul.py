"""Gemm, MatMul, Einsum.

Gemm: Y = alpha * A' B' + beta * C with A' = transA ? A^T : A, B' likewise.
A constant B is prepacked once at prepare time as alpha * B': float32 goes to
the packed SGEMM kernel (`_kernels.gemm`, session threads) with beta * C folded
into a per-column / per-row bias (or copied in and accumulated when it is a
full matrix); other dtypes use numpy's matmul plus the pre-scaled,
pre-broadcast beta * C.  MatMul with a constant 2-D float32 B uses the same
kernel on the [prod(batch) * M, K] view of A.  MatMul follows numpy.matmul (batched, broadcast,
1-D operands promoted and their axis removed).
"""
from __future__ import annotations

import numpy as np

from .attrs import flag_attr, float_attr, int_attr  # noqa: F401
from .base import Op, TensorInfo, broadcast_shape, optional
from .registry import register

try:
    from .._kernels import gemm as _G
except ImportError:   # no compiled kernels: numpy (BLAS) everywhere
    _G = None

F32 = np.dtype(np.float32)


def _packed_gemm_step(a, pb, y, bias, bias_axis, accumulate, c_full, n_threads):
    """y = a @ B (+ bias) (+ c_full) through the packed SGEMM, arguments pre-bound."""
    if c_full is None:
        if hasattr(_G, "sgemm_packed_call"):       # native executor step
            return _G.sgemm_packed_call(a, pb, y, bias, bias_axis, accumulate, n_threads)
        sg = _G.sgemm_packed
        return lambda: sg(a, pb, y, bias, bias_axis, 0, 0.0, 0.0, None, accumulate, n_threads)
    sg = _G.sgemm_packed
    copyto = np.copyto

    def run():
        copyto(y, c_full)
        sg(a, pb, y, bias, bias_axis, 0, 0.0, 0.0, None, True, n_threads)
    return run


@register("Gemm", since_version=1)
class Gemm(Op):
    def setup(self):
        self.alpha = float_attr(self, "alpha", 1.0)
        self.beta = float_attr(self, "beta", 1.0)
        self.transA = flag_attr(self, "transA", 0)
        self.transB = flag_attr(self, "transB", 0)
        if self.transA not in (0, 1) or self.transB not in (0, 1):
            raise self.error("transA and transB must be 0 or 1")

    def infer(self, inputs):
        a, b, c = inputs[0], inputs[1], optional(inputs, 2)
        if a is None or b is None:
            raise self.error("needs inputs A and B")
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise self.shape_error(f"A {list(a.shape)} and B {list(b.shape)} must be 2-D")
        m, k = a.shape[::-1] if self.transA else a.shape
        k2, n = b.shape[::-1] if self.transB else b.shape
        if k != k2:
            raise self.shape_error(f"inner dims differ: A' is {m}x{k}, B' is {k2}x{n}")
        if c is not None:
            if broadcast_shape(self, (m, n), c.shape) != (m, n):
                raise self.shape_error(f"C {list(c.shape)} does not broadcast to {[m, n]}")
        elif self.opset < 11:
            raise self.error("input C is required before opset 11")
        if a.dtype != b.dtype:
            raise self.error(f"A and B have different dtypes {a.dtype} and {b.dtype}")
        return [TensorInfo((m, n), a.dtype)]

    def prepare(self, inputs, outputs):
        b, c = inputs[1], optional(inputs, 2)
        self._b = None
        self._packed = None
        if b.value is not None:
            bt = b.value.T if self.transB else b.value
            # alpha * B' (B' as a view when alpha is 1: numpy's matmul takes it as is)
            self._b = bt * bt.dtype.type(self.alpha) if self.alpha != 1.0 else bt
        self._c = None
        if c is not None and c.value is not None and self.beta != 0.0:
            cv = c.value * c.value.dtype.type(self.beta) if self.beta != 1.0 else c.value
            self._c = np.ascontiguousarray(np.broadcast_to(cv, outputs[0].shape)
                                           .astype(outputs[0].dtype))
        # float32 with a constant B: the packed SGEMM kernel (session threads), C folded
        # into a per-column or per-row bias when it is one, else copied in and accumulated
        if _G is not None and self._b is not None and not self.transA and \
                inputs[0].dtype == F32 and self._b.dtype == F32 and outputs[0].size:
            m, n = outputs[0].shape
            bias, axis, full = None, 1, None
            if self._c is not None:
                cs = tuple(c.shape)
                if len(cs) <= 1 and (not cs or cs[0] in (1, n)) or cs == (1, n) or cs == (1, 1):
                    bias = np.ascontiguousarray(self._c[0], F32)
                elif cs == (m, 1):
                    bias, axis = np.ascontiguousarray(self._c[:, 0], F32), 0
                else:
                    full = self._c
            elif c is not None and c.value is None and self.beta != 0.0:
                return          # runtime C: numpy path
            self._packed = (_G.pack_b(self._b), bias, axis, full)

    def compute(self, xs, ys, scratch=()):
        a = xs[0].T if self.transA else xs[0]
        y = ys[0]
        if self._b is not None:
            np.matmul(a, self._b, out=y)
        else:
            b = xs[1].T if self.transB else xs[1]
            np.matmul(a, b, out=y)
            if self.alpha != 1.0:
                y *= y.dtype.type(self.alpha)
        if self._c is not None:
            y += self._c
        elif len(xs) > 2 and xs[2] is not None and self.beta != 0.0:
            y += (xs[2] * xs[2].dtype.type(self.beta)).astype(y.dtype, copy=False)

    def bind(self, xs, ys, scratch=()):
        if self._packed is not None and xs[0].flags.c_contiguous:
            pb, bias, axis, full = self._packed
            return _packed_gemm_step(xs[0], pb, ys[0], bias, axis, False, full, self.n_threads)
        if self._b is not None:
            a = xs[0].T if self.transA else xs[0]
            b, y, c, mm = self._b, ys[0], self._c, np.matmul
            if c is None and (len(xs) < 3 or xs[2] is None or self.beta == 0.0):
                return lambda: mm(a, b, out=y)
            if c is not None:
                add = np.add

                def run():
                    mm(a, b, out=y)
                    add(y, c, out=y)
                return run
        return super().bind(xs, ys, scratch)


@register("MatMul", since_version=1)
class MatMul(Op):
    def infer(self, inputs):
        a, b = inputs[0], inputs[1]
        sa, sb = list(a.shape), list(b.shape)
        if not sa or not sb:
            raise self.shape_error("MatMul operands must have rank >= 1")
        if a.dtype != b.dtype:
            raise self.error(f"inputs have different dtypes {a.dtype} and {b.dtype}")
        va = [1] + sa if len(sa) == 1 else sa
        vb = sb + [1] if len(sb) == 1 else sb
        if va[-1] != vb[-2]:
            raise self.shape_error(f"inner dims differ: {sa} @ {sb}")
        batch = broadcast_shape(self, tuple(va[:-2]), tuple(vb[:-2]))
        shape = list(batch) + [va[-2], vb[-1]]
        if len(sa) == 1:
            del shape[-2]
        if len(sb) == 1:
            del shape[-1]
        return [TensorInfo(tuple(shape), a.dtype)]

    def prepare(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        self._pb = None
        if _G is not None and b.value is not None and len(b.shape) == 2 and len(a.shape) >= 2 \
                and a.dtype == F32 and b.dtype == F32 and y.size:
            self._pb = _G.pack_b(b.value)

    def compute(self, xs, ys, scratch=()):
        if xs[0].ndim >= 2 and xs[1].ndim >= 2:
            np.matmul(xs[0], xs[1], out=ys[0])
        else:
            ys[0][...] = np.matmul(xs[0], xs[1])

    def bind(self, xs, ys, scratch=()):
        a, b, y = xs[0], xs[1], ys[0]
        if self._pb is not None and a.flags.c_contiguous:
            # [..., M, K] @ B[K, N] is one [prod(...) * M, K] @ [K, N] product
            return _packed_gemm_step(a.reshape(-1, a.shape[-1]), self._pb,
                                     y.reshape(-1, y.shape[-1]), None, 1, False, None,
                                     self.n_threads)
        if a.ndim >= 2 and b.ndim >= 2:
            mm = np.matmul
            return lambda: mm(a, b, out=y)
        return super().bind(xs, ys, scratch)


@register("Einsum", since_version=12)
class Einsum(Op):
    def setup(self):
        eq = self.attr("equation")
        if not isinstance(eq, str) or not eq:
            raise self.error("attribute 'equation' is required")
        self.eq = eq.replace(" ", "")

    def infer(self, inputs):
        probes = [np.broadcast_to(np.zeros((), x.dtype), x.shape) for x in inputs]
        try:
            out = np.einsum(self.eq, *probes)
        except ValueError as e:
            raise self.shape_error(f"equation {self.eq!r}: {e}") from None
        return [TensorInfo(tuple(out.shape), np.result_type(*[x.dtype for x in inputs]))]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = np.einsum(self.eq, *xs)
