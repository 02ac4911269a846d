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

Fused epilogue: y = act(... + B) with the activations Conv's epilogue computes in
registers (`fastcnn_activation`, set by passes/fuse_activation.py; no residual).

Algorithms, chosen once in `layouts` (the planner offers the blocked layout):

* `phases` (fast, float32, constant W and B, channel-blocked NCHWc in and out):
  the stride-phase decomposition.  Along an axis with stride s, output o = s·q + r
  receives only the taps k with (r + pb − k·d) ≡ 0 (mod s), reading input
  i = q + (r + pb − k·d)/s.  Those taps are k0, k0 + t, ... (t = s/gcd(s, d)), so
  phase r is an ordinary stride-1 cross-correlation of X with the flipped sub-kernel
  W[k0 + (T−1−j)·t] (j < T), dilation d' = t·d/s and begin pad (T−1)·d' − e0
  (e0 = (r + pb − k0·d)/s; negative pads are crops), with C and M swapped per group.
  Each of the ∏s phases runs on the NCHWc conv kernels (`conv_fast.make_blocked`:
  dense, grouped, depthwise; weights packed once, bias and activation fused) into
  its own blocked buffer, and `_kernels/deconv.interleave_call` scatters the phases
  into Y (a phase no tap reaches is the constant act(B)).  Every MAC is a useful
  one: the work and speed of the equivalent forward convolution, not 1/s² of it.
  All strides 1: one phase, written straight into Y.  At the graph's edge (Y only
  leaves the graph and is the larger tensor) the planner keeps the node plain
  (`plain_at_edge`): X is reordered into scratch and the interleave writes plain NCHW
  rows, so the large output needs no reorder pass.
* `gemm_col2im` (generic, the oracle, every dtype and attribute): per image one
  batched GEMM over groups, col (G, Mg·K, P_in) = Wᵀ (G, Mg·K, Cg) @ X (G, Cg, P_in),
  then col2im (Cython, parallel over output channels) scatters col into Y; bias and
  activation through the shared conv epilogue.  W is transposed once in `prepare`
  when constant.  `ConvTranspose.forced_algorithm = "gemm_col2im"` (or the
  environment variable FASTCNN_CONV_TRANSPOSE_ALGO=gemm_col2im) forces it.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import List, Optional

import numpy as np

from ..runtime.threads import threads_for
from .attrs import int_attr
from .base import Op, TensorInfo, optional
from .conv import Conv, ConvGeometry, ConvProblem, apply_epilogue
from .conv_util import (Window, WindowAttrs, _ints, check_float, compute_dtype, converting,
                        parse_epilogue)
from .registry import register

try:
    from .._kernels import gemm as _gemm
except ImportError:
    _gemm = None
try:
    from .._kernels import conv_generic as _k
except ImportError:  # not built: numpy col2im below (slower, same results)
    _k = None
try:
    from .._kernels import deconv as _kdc
    from .._kernels.layout import reorder_call
    from .conv_fast import NchwcDirect, make_blocked
except ImportError:  # kernels not built: generic path only
    _kdc = None

BLOCK = 8


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


def axis_phases(n_in, n_out, k, s, d, pb):
    """The s phases of one axis: per r < s, (Q, taps, pad, dil) -- Q outputs o = s·q + r,
    the kernel taps reaching them in correlation order (flipped; () when none does), and
    the stride-1 correlation's begin pad (may be negative) and dilation (see the module
    docstring)."""
    out = []
    for r in range(s):
        q = max(0, -(-(n_out - r) // s))
        taps = [kk for kk in range(k) if (r + pb - kk * d) % s == 0]
        if not taps:
            out.append((q, (), 0, 1))
            continue
        t = s // math.gcd(s, d)
        e0 = (r + pb - taps[0] * d) // s
        dp = t * d // s
        out.append((q, tuple(reversed(taps)), (len(taps) - 1) * dp - e0, dp))
    return out


class PhaseDecomposition:
    """ConvTranspose as ∏strides stride-1 NCHWc convolutions plus a blocked interleave
    (see the module docstring); built by `make`, which returns None when a phase does not
    fit the blocked kernels (the generic path then runs)."""
    name = "phases"
    out_layout = BLOCK
    plain = False       # plain NCHW in and out (see go_plain)

    @classmethod
    def make(cls, op, w, b, block):
        if _kdc is None or block != BLOCK or op.io_dtype != np.float32 or w is None or \
                (op.has_bias and b is None) or op.N == 0:
            return None
        self = cls()
        win = op.window
        nd = win.ndim
        G, C, M = op.group, op.C, op.M
        Cg, Mg = C // G, M // G
        self.N, self.M, self.Mb = op.N, M, -(-M // BLOCK)
        self.n_threads = op.n_threads
        w = np.asarray(w, np.float32)
        per_axis = [axis_phases(win.in_spatial[i], win.out_spatial[i], win.kernel[i],
                                win.strides[i], win.dilations[i], win.pads_begin[i])
                    for i in range(nd)]
        # the value of a phase no tap reaches: act(B), padding lanes 0
        const = np.zeros((1, M, 1), np.float32) if b is None else \
            np.array(b, np.float32).reshape(1, M, 1)
        op.epilogue.apply_numpy(const)
        self.const = np.zeros(self.Mb * BLOCK, np.float32)
        self.const[:M] = const.ravel()
        self.phases = []              # (extent (3,), algorithm or None), in (rd, rh, rw) order
        self.in_layout = None
        for combo in itertools.product(*per_axis):
            q = tuple(c[0] for c in combo)
            ext = (1,) * (3 - nd) + q
            if any(v == 0 for v in q) or any(not c[1] for c in combo):
                self.phases.append((ext, None))
                continue
            sub = w
            for i, c in enumerate(combo):
                sub = np.take(sub, c[1], axis=2 + i)
            taps = tuple(len(c[1]) for c in combo)
            wc = sub.reshape((G, Cg, Mg) + taps).swapaxes(1, 2).reshape((M, Cg) + taps)
            pads = tuple(c[2] for c in combo)
            dils = tuple(c[3] for c in combo)
            algo = self._phase_conv(op, wc, b, pads, dils, q, block)
            if algo is None:
                return None
            if self.in_layout is None:
                self.in_layout = algo.in_layout
            elif algo.in_layout != self.in_layout:
                return None
            self.phases.append((ext, algo))
        if self.in_layout is None:       # no phase computes: y is act(B) everywhere
            self.in_layout = BLOCK
        self.out_dhw = (1,) * (3 - nd) + win.out_spatial
        self.strides = (1,) * (3 - nd) + win.strides
        self.direct = len(self.phases) == 1 and self.phases[0][1] is not None
        self.in_shape = (op.N, C) + win.in_spatial
        return self

    def go_plain(self):
        """Read and write plain NCHW (a node at the graph's edge, whose reorders the
        planner would otherwise add): X is reordered into scratch here, and the interleave
        writes Y's channel rows straight from the phase buffers (no reorder pass of the
        large output)."""
        self.plain = True
        self.direct = False
        self.name = "phases_plain_io"

    @staticmethod
    def _phase_conv(op, wc, b, pads, dils, q, block):
        """The blocked algorithm of one phase: the stride-1 correlation of X with wc."""
        win = op.window
        nd = win.ndim

        def problem(wc, pads, dils):
            taps = wc.shape[2:]
            ends = tuple((q[i] - 1) + (taps[i] - 1) * dils[i] + 1 - win.in_spatial[i] - pads[i]
                         for i in range(nd))
            pw = Window(win.in_spatial, q, taps, (1,) * nd, dils, pads, ends)
            return ConvProblem(ConvGeometry(op.N, op.C, op.M, op.group, pw, np.dtype(np.float32)),
                               np.ascontiguousarray(wc), None if b is None else
                               np.asarray(b, np.float32), op.has_bias, op.epilogue,
                               op.n_threads, block)

        algo = make_blocked(problem(wc, pads, dils))
        if algo is not None and min(pads) < 0 and not isinstance(algo, NchwcDirect):
            # only the dense kernel takes crops (negative pads): give the others zero taps
            # in front instead, X[q + c + j·d] = X[q + i·d'] with i = c/d + j (d' = d) when
            # d divides c, else i = c + j·d (d' = 1)
            for i in range(nd):
                c = -pads[i]
                if c <= 0:
                    continue
                d = dils[i]
                lead, step = (c // d, 1) if c % d == 0 else (c, d)
                dnew = d if step == 1 else 1
                t = wc.shape[2 + i]
                shape = list(wc.shape)
                shape[2 + i] = lead + (t - 1) * step + 1
                wz = np.zeros(shape, np.float32)
                idx = [slice(None)] * wc.ndim
                idx[2 + i] = slice(lead, None, step)
                wz[tuple(idx)] = wc
                wc = wz
                pads = pads[:i] + (0,) + pads[i + 1:]
                dils = dils[:i] + (dnew,) + dils[i + 1:]
            algo = make_blocked(problem(wc, pads, dils))
        rows = math.prod(((1,) * (3 - nd) + tuple(wc.shape[2:]))[:2])
        if algo is None or algo.scratch() or algo.out_layout != BLOCK or rows > 1024:
            return None       # (the dense kernel walks at most 1024 kernel rows: kd·kh)
        return algo

    def _x_blocked_size(self):
        n, c = self.in_shape[:2]
        return n * -(-c // BLOCK) * math.prod(self.in_shape[2:]) * BLOCK

    def scratch(self):
        if self.direct:
            return []
        n = sum(self.N * self.Mb * math.prod(ext) * BLOCK
                for ext, algo in self.phases if algo is not None)
        out = [((max(n, 1),), np.dtype(np.float32))]
        if self.plain and self.in_layout == BLOCK:
            out.append(((self._x_blocked_size(),), np.dtype(np.float32)))
        return out

    def bind(self, x, y, scratch):
        if self.direct:
            return self.phases[0][1].bind(x, None, None, None, y, [])
        calls, entries, off = [], [], 0
        if self.plain and self.in_layout == BLOCK:
            n, c = self.in_shape[:2]
            s = math.prod(self.in_shape[2:])
            xb = scratch[1].reshape(n, -(-c // BLOCK), s, BLOCK)
            calls.append(reorder_call(x, xb, n, c, s, True, self.n_threads))
            x = xb
        for ext, algo in self.phases:
            if algo is None:
                entries.append((self.const, ext))
                continue
            n = self.N * self.Mb * math.prod(ext) * BLOCK
            buf = scratch[0][off:off + n].reshape(self.N, self.Mb, math.prod(ext), BLOCK)
            off += n
            calls.append(algo.bind(x, None, None, None, buf, []))
            entries.append((buf, ext))
        calls.append(_kdc.interleave_call(y, entries, self.out_dhw, self.strides,
                                          self.n_threads, self.M if self.plain else 0))
        native = _kdc.seq_call(calls)
        if native is not None:
            return native

        def run():
            for c in calls:
                c()
        return run


@register("ConvTranspose", since_version=1)
@register("ConvTranspose", since_version=11)
class ConvTranspose(Op):
    #: force one algorithm by name ("phases", "gemm_col2im"; tests);
    #: FASTCNN_CONV_TRANSPOSE_ALGO does the same per process
    forced_algorithm: Optional[str] = None
    #: the activations fuse_activation may fold in: those Conv's epilogue computes in
    #: registers (the phase convolutions run on the same kernels)
    fused_activations = Conv.fused_activations
    #: at the graph's edge (its output only leaves the graph) the planner runs it plain;
    #: the phase path then reorders X itself and interleaves straight into plain Y
    plain_at_edge = True

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
        self.epilogue = parse_epilogue(self)
        if self.epilogue.residual:
            raise self.error("fastcnn_residual is not supported on ConvTranspose")
        self.fast = None
        self._chosen_for = None

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
        if self.epilogue.slope is not None and self.epilogue.slope.size not in (1, M):
            raise self.error(f"PRelu slopes: {self.epilogue.slope.size} values for {M} channels")
        self.window = self._window(tuple(int(v) for v in x.shape[2:]),
                                   tuple(int(k) for k in w.shape[2:]))
        self.N, self.C, self.M = N, C, M
        self.has_bias = b is not None
        self.io_dtype = np.dtype(x.dtype)
        self.dtype = compute_dtype(x.dtype)       # float16 runs in float32
        return [TensorInfo((N, M) + self.window.out_spatial, self.io_dtype)]

    # -- algorithm ----------------------------------------------------------------------
    def _algorithm_name(self):
        forced = self.forced_algorithm or os.environ.get("FASTCNN_CONV_TRANSPOSE_ALGO")
        if forced and forced not in ("phases", "gemm_col2im"):
            raise self.error(f"unknown ConvTranspose algorithm {forced!r}; known: "
                             f"['gemm_col2im', 'phases']")
        return forced

    def layouts(self, inputs, block):
        """Choose the algorithm with the blocked layout on offer; report its layouts."""
        self.infer(inputs)
        self.fast = None
        if self._algorithm_name() != "gemm_col2im":
            w, b = inputs[1], optional(inputs, 2)
            self.fast = PhaseDecomposition.make(
                self, w.value if w.is_const else None,
                None if b is None or not b.is_const else b.value, block)
        self._chosen_for = [None if i is None else i.shape for i in inputs]
        if self.fast is None:
            return None
        want = [0] * len(inputs)
        want[0] = self.fast.in_layout
        return want, [self.fast.out_layout]

    @property
    def algorithm_name(self) -> str:
        return self.fast.name if self.fast is not None else "gemm_col2im"

    def prepare(self, inputs, outputs):
        self.infer(inputs)
        shapes = [None if i is None else i.shape for i in inputs]
        if self._chosen_for != shapes:
            self.fast = None          # not planned through layouts (constant folding)
        elif self.fast is not None and not (inputs[0].layout or outputs[0].layout):
            self.fast.go_plain()      # the planner kept this node plain (graph edge)
        elif self.fast is not None and (inputs[0].layout != self.fast.in_layout or
                                        outputs[0].layout != self.fast.out_layout):
            self.fast = None
        self._chosen_for = None
        if self.fast is not None:
            return
        w = inputs[1]
        b = optional(inputs, 2)
        self.K = int(np.prod(self.window.kernel))
        self.wt = None
        if w.is_const:
            self.wt = self._transpose_w(w.value)
        self.b = None if b is None or not b.is_const else \
            np.ascontiguousarray(b.value, dtype=self.dtype)
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
        if self.fast is not None:
            return self.fast.scratch()
        return [((self.M * self.K, self.P_in), self.dtype)] + self._converted()

    def bind(self, xs, ys, scratch=()):
        if self.fast is not None:
            return self.fast.bind(xs[0], ys[0], scratch)
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
            # our SGEMM with the session's threads: numpy's BLAS would start its own
            # thread pool next to fastcnn's and oversubscribe the cores
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
