"""ConvTranspose (opsets 1, 11): the adjoint of Conv.

    Yfull[n, g·Mg + m, i·s + k·d] += X[n, g·Cg + c, i] · W[g·Cg + c, m, k]
    Y = Yfull[pads_begin : pads_begin + out]  (+ B[m])
    out = s·(in − 1) + output_padding + (k − 1)·d + 1 − pads_begin − pads_end

Pads: explicit (NOTSET), VALID (0), or — for SAME_UPPER/SAME_LOWER, or when
`output_shape` is given — derived from the wanted output size:
    total = s·(in − 1) + output_padding + (k − 1)·d + 1 − out
    SAME_UPPER: begin = ⌊total/2⌋; otherwise begin = total − ⌊total/2⌋; end = total − begin
(out = in·s for SAME without output_shape).  A negative total (output longer
than the full transposed size) extends the output at the end, like
output_padding — onnxruntime's rule for an explicit output_shape; an
output_shape more than max(stride, dilation) − 1 past the full size is an
error.  (The ONNX reference instead extends at the beginning for SAME_UPPER,
and onnxruntime clamps auto-SAME's total at 0 giving a shorter output.)

Algorithm (generic, the oracle for later fast paths): per image one batched
GEMM over groups, col (G, Mg·K, P_in) = Wᵀ (G, Mg·K, Cg) @ X (G, Cg, P_in),
then col2im (Cython, parallel over output channels) scatters col into Y;
bias through the shared conv epilogue.  W is transposed once in `prepare`
when constant.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..runtime.threads import threads_for
from .attrs import int_attr
from .base import Op, TensorInfo, optional
from .conv import apply_epilogue
from .conv_util import (Epilogue, Window, WindowAttrs, _ints, check_float, compute_dtype,
                        converting)
from .registry import register

try:
    from .._kernels import gemm as _gemm
except ImportError:
    _gemm = None
try:
    from .._kernels import conv_generic as _k
except ImportError:  # not built: numpy col2im below (slower, same results)
    _k = None


def col2im_numpy(col, y, kernel, strides, pads_begin, dilations, in_spatial, n_threads=1):
    """Fallback twin of conv_generic.col2im_3d: col (C·K, ID·IH·IW) -> y (C, OD, OH, OW)."""
    C = y.shape[0]
    c6 = col.reshape((C,) + tuple(kernel) + tuple(in_spatial))
    y[...] = 0
    for off in np.ndindex(*kernel):
        src, dst = [slice(None)], [slice(None)]     # channel axis, then d, h, w
        for i in range(3):
            s, base = strides[i], off[i] * dilations[i] - pads_begin[i]
            lo = max(0, -(base // s))                      # first input with i·s + base >= 0
            hi = min(in_spatial[i], (y.shape[1 + i] - 1 - base) // s + 1)
            if hi <= lo:
                break
            src.append(slice(lo, hi))
            dst.append(slice(lo * s + base, (hi - 1) * s + base + 1, s))
        else:
            y[tuple(dst)] += c6[(slice(None),) + tuple(off)][tuple(src)]


@register("ConvTranspose", since_version=1)
@register("ConvTranspose", since_version=11)
class ConvTranspose(Op):
    def setup(self):
        self.win_attrs = WindowAttrs(self, kernel_required=False)
        self.group = int_attr(self, "group", 1, lo=1)
        self.output_padding = _ints(self, "output_padding", self.attr("output_padding"))
        self.output_shape = _ints(self, "output_shape", self.attr("output_shape"))
        if self.output_padding is not None and any(p < 0 for p in self.output_padding):
            raise self.error(f"output_padding must be non-negative, got "
                             f"{list(self.output_padding)}")
        if self.output_shape is not None and any(p <= 0 for p in self.output_shape):
            raise self.error(f"output_shape must be positive, got {list(self.output_shape)}")
        n_in = len(self.node.inputs)
        if not 2 <= n_in <= 3:
            raise self.error(f"ConvTranspose takes inputs X, W and optional B, got {n_in}")
        self.epilogue = Epilogue()

    def _window(self, x_spatial, kernel) -> Window:
        wa = self.win_attrs
        n = len(x_spatial)
        wa.check_rank(n)
        if wa.kernel_shape is not None and tuple(kernel) != wa.kernel_shape:
            raise self.shape_error(f"kernel_shape {list(wa.kernel_shape)} does not match the "
                                   f"weight's spatial shape {list(kernel)}")
        s = wa.strides or (1,) * n
        d = wa.dilations or (1,) * n
        op_ = self.output_padding or (0,) * n
        if len(op_) != n:
            raise self.error(f"output_padding has {len(op_)} values, expected {n}")
        for i in range(n):
            if op_[i] >= max(s[i], d[i]):
                raise self.error(f"output_padding {list(op_)} must be smaller than the stride or "
                                 f"the dilation on every axis (strides {list(s)}, dilations "
                                 f"{list(d)})")
        full = [s[i] * (x_spatial[i] - 1) + op_[i] + (kernel[i] - 1) * d[i] + 1 for i in range(n)]
        out_shape = self.output_shape
        if out_shape is not None and len(out_shape) == n + 2:
            out_shape = out_shape[2:]
        if out_shape is not None and len(out_shape) != n:
            raise self.error(f"output_shape has {len(self.output_shape)} values, expected {n}")
        if out_shape is None and wa.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out_shape = tuple(x_spatial[i] * s[i] for i in range(n))
        if out_shape is not None:
            total = [full[i] - out_shape[i] for i in range(n)]
            for i in range(n):
                if total[i] < 0 and self.output_shape is not None and \
                        -total[i] >= max(s[i], d[i]):
                    raise self.shape_error(
                        f"output_shape {list(out_shape)} cannot be reached from input "
                        f"{list(x_spatial)} (kernel {list(kernel)}, strides {list(s)}, "
                        f"dilations {list(d)}): at most {full[i] + max(s[i], d[i]) - 1} on "
                        f"axis {i}")
            # total < 0: the output is longer than the full transposed size; the extra
            # cells go at the end, as output_padding does (onnxruntime)
            if wa.auto_pad == "SAME_UPPER":
                pb = [t // 2 if t > 0 else 0 for t in total]
            else:
                pb = [t - t // 2 if t > 0 else 0 for t in total]
            pe = [t - b for t, b in zip(total, pb)]
            out = list(out_shape)
        else:
            if wa.auto_pad == "VALID" or wa.pads is None:
                pb, pe = [0] * n, [0] * n
            else:
                pb, pe = list(wa.pads[:n]), list(wa.pads[n:])
            out = [full[i] - pb[i] - pe[i] for i in range(n)]
            if any(o <= 0 for o in out):
                raise self.shape_error(f"pads {pb + pe} leave an empty output {out} "
                                       f"(input {list(x_spatial)}, kernel {list(kernel)})")
        return Window(tuple(int(v) for v in x_spatial), tuple(int(v) for v in out),
                      tuple(int(k) for k in kernel), tuple(s), tuple(d),
                      tuple(int(v) for v in pb), tuple(int(v) for v in pe))

    def infer(self, inputs):
        x, w = inputs[0], inputs[1]
        if x is None or w is None:
            raise self.error("inputs X and W are required")
        check_float(self, x, "X", extra=(np.float16,))
        if np.dtype(w.dtype) != np.dtype(x.dtype):
            raise self.error(f"W has dtype {np.dtype(w.dtype)} but X has {np.dtype(x.dtype)}")
        if not 3 <= len(x.shape) <= 5:
            raise self.shape_error(f"X must be (N, C, spatial...) with 1 to 3 spatial dims, got "
                                   f"shape {list(x.shape)}")
        if len(w.shape) != len(x.shape):
            raise self.shape_error(f"W has rank {len(w.shape)} (shape {list(w.shape)}) but X has "
                                   f"rank {len(x.shape)}")
        N, C = (int(v) for v in x.shape[:2])
        if any(int(d) <= 0 for d in x.shape[2:]):
            raise self.shape_error(f"X has an empty spatial dim (shape {list(x.shape)})")
        G = self.group
        if int(w.shape[0]) != C:
            raise self.shape_error(f"channel mismatch: X has {C} channels but W (shape "
                                   f"{list(w.shape)}) expects {w.shape[0]}")
        if C % G:
            raise self.shape_error(f"group {G} does not divide the {C} input channels")
        M = int(w.shape[1]) * G
        if any(int(d) <= 0 for d in w.shape):
            raise self.shape_error(f"W has an empty dim: {list(w.shape)}")
        b = optional(inputs, 2)
        if b is not None and tuple(b.shape) != (M,):
            raise self.shape_error(f"bias B has shape {list(b.shape)}, expected [{M}]")
        self.window = self._window(tuple(int(v) for v in x.shape[2:]),
                                   tuple(int(k) for k in w.shape[2:]))
        self.N, self.C, self.M = N, C, M
        self.io_dtype = np.dtype(x.dtype)
        self.dtype = compute_dtype(x.dtype)       # float16 runs in float32
        return [TensorInfo((N, M) + self.window.out_spatial, self.io_dtype)]

    def prepare(self, inputs, outputs):
        self.infer(inputs)
        w = inputs[1]
        b = optional(inputs, 2)
        G, Cg, Mg = self.group, self.C // self.group, self.M // self.group
        self.K = int(np.prod(self.window.kernel))
        self.wt = None
        if w.is_const:
            self.wt = self._transpose_w(w.value)
        self.b = None if b is None or not b.is_const else \
            np.ascontiguousarray(b.value, dtype=self.dtype)
        self.has_bias = b is not None
        self.w3 = self.window.as_3d()
        P_in = int(np.prod(self.window.in_spatial))
        self.P_in = P_in
        self.col2im_threads = threads_for(self.M * self.K * P_in, self.n_threads)

    def _transpose_w(self, w):
        G, Cg, Mg = self.group, self.C // self.group, self.M // self.group
        return np.ascontiguousarray(
            np.asarray(w, dtype=self.dtype).reshape(G, Cg, Mg * self.K).transpose(0, 2, 1))

    def _converted(self):
        if self.io_dtype == self.dtype:
            return []
        return [((self.N, self.C) + self.window.in_spatial, self.dtype),
                ((self.N, self.M) + self.window.out_spatial, self.dtype)]

    def scratch(self, inputs, outputs):
        return [((self.M * self.K, self.P_in), self.dtype)] + self._converted()

    def bind(self, xs, ys, scratch=()):
        if self._converted():
            xc, yc = scratch[1], scratch[2]
            inner = self._bind([xc] + list(xs[1:]), [yc], scratch[:1])
            return converting(inner, [(xc, xs[0])], [(ys[0], yc)])
        return self._bind(xs, ys, scratch)

    def _bind(self, xs, ys, scratch):
        x, w, y = xs[0], xs[1], ys[0]
        b = xs[2] if len(xs) > 2 else None
        N, G = self.N, self.group
        Cg, Mg, K, P = self.C // G, self.M // G, self.K, self.P_in
        w3 = self.w3
        x4 = x.reshape(N, G, Cg, P)
        y5 = y.reshape((N, self.M) + w3.out_spatial)
        y3 = y.reshape(N, self.M, int(np.prod(w3.out_spatial)))
        col = scratch[0]
        colg = col.reshape(G, Mg * K, P)
        wt_const, b_const, has_bias = self.wt, self.b, self.has_bias
        args = (w3.kernel, w3.strides, w3.pads_begin, w3.dilations, w3.in_spatial,
                self.col2im_threads)
        col2im, matmul = (_k.col2im_3d if _k is not None else col2im_numpy), np.matmul
        ep, nt, transpose_w, dtype = self.epilogue, self.n_threads, self._transpose_w, self.dtype

        writable = x.flags.writeable and (wt_const is None or wt_const.flags.writeable)
        if _gemm is not None and dtype == np.float32 and K * P > 0 and Cg > 0 and writable:
            # our OpenMP SGEMM with the session's threads: numpy's BLAS would start its
            # own thread pool next to OpenMP's spinning workers and oversubscribe the cores
            sgemm = _gemm.sgemm

            def matmul(a, b, out):
                for g in range(G):
                    sgemm(a[g], b[g], out[g], nt)

        def run():
            wt = wt_const if wt_const is not None else transpose_w(w)
            bb = b_const if b_const is not None else (
                np.ascontiguousarray(b, dtype=dtype) if has_bias else None)
            for n in range(N):
                matmul(wt, x4[n], out=colg)
                col2im(col, y5[n], *args)
            apply_epilogue(y3, bb, None, ep, nt)
        return run

    def compute(self, xs, ys, scratch=()):
        self.bind(xs, ys, scratch)()
