"""Conv (opsets 1, 11): ONNX meaning, shape rules, and the choice of algorithm.

    Y[n, m, o] = act( B[m] + Σ_{c, k} Xpad[n, g·Cg + c, o·s + k·d] · W[m, c, k]  + Z[n, m, o] )
    g = m // (M / group),  Cg = C / group

`act` and `Z` exist only on internal nodes made by the fusion pass
(attributes `fastcnn_activation`, `fastcnn_activation_params`,
`fastcnn_residual=1` → input 3 is Z); a plain ONNX Conv has neither.

How an algorithm plugs in
-------------------------
`Conv.prepare` calls `Conv._choose(inputs, outputs)` — the one place an
algorithm is picked — which builds a `ConvProblem` (geometry, constant
weight/bias if any, epilogue, n_threads) and asks each factory in
`ALGORITHMS` in order; the first that returns a `ConvAlgorithm` wins.
`Im2colGemm` (last) accepts every problem: it is the fallback and the
oracle the fast paths are tested against.  A fast path is

    class Nchwc3x3(ConvAlgorithm):
        name = "conv2d_nchwc_direct"
        def __init__(self, problem): ...prepack problem.weight...
        def scratch(self): return [(shape, dtype), ...]
        def bind(self, x, w, b, z, y, scratch): return lambda: kernel(...)
    def make_nchwc(problem): return Nchwc3x3(problem) if <it applies> else None
    ALGORITHMS.insert(0, make_nchwc)       # or register_algorithm(make_nchwc)

`FASTCNN_CONV_ALGO=<name>` (or `Conv.forced_algorithm`) forces one algorithm
by name, e.g. `im2col_gemm` to compare a fast path with the generic one.

Layouts: the planner offers a channel block B through `Conv.layouts`, which
runs `_choose` with `ConvProblem.block = B`; an algorithm that works blocked
declares `in_layout` / `out_layout` (X / Y and Z), the planner inserts the
reorders, and `bind` receives the physical buffers.  The generic path is
plain NCHW (layouts 0), as is every float16 convolution (converted in bind).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from ..runtime.threads import threads_for
from .attrs import int_attr
from .base import Op, TensorInfo, optional
from .conv_util import (Epilogue, Window, WindowAttrs, check_float, compute_dtype, converting,
                        parse_epilogue)
from .registry import register

try:
    from .._kernels import gemm as _gemm
except ImportError:
    _gemm = None
try:
    from .._kernels import conv_generic as _k
except ImportError:  # not built: numpy im2col below (slower, same results)
    _k = None


def im2col_numpy(x, col, kernel, strides, pads_begin, dilations, out_spatial, n_threads=1):
    """Fallback twin of conv_generic.im2col_3d: x (C, D, H, W) -> col (C·K, OD·OH·OW)."""
    C = x.shape[0]
    need = [(out_spatial[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
            for i in range(3)]
    width = [(0, 0)] + [(pads_begin[i], max(0, need[i] - x.shape[1 + i] - pads_begin[i]))
                        for i in range(3)]
    xp = np.pad(x, width)
    c4 = col.reshape((C,) + tuple(kernel) + tuple(out_spatial))
    for kd in range(kernel[0]):
        for kh in range(kernel[1]):
            for kw in range(kernel[2]):
                o = (kd * dilations[0], kh * dilations[1], kw * dilations[2])
                c4[:, kd, kh, kw] = xp[:, o[0]:o[0] + need[0] - (kernel[0] - 1) * dilations[0]:strides[0],
                                       o[1]:o[1] + need[1] - (kernel[1] - 1) * dilations[1]:strides[1],
                                       o[2]:o[2] + need[2] - (kernel[2] - 1) * dilations[2]:strides[2]]


@dataclass(frozen=True)
class ConvGeometry:
    """Everything shape-related about one Conv, fixed at plan time."""
    n: int
    c_in: int
    c_out: int
    group: int
    window: Window
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return self.window.ndim

    @property
    def c_in_per_group(self) -> int:
        return self.c_in // self.group

    @property
    def c_out_per_group(self) -> int:
        return self.c_out // self.group

    @property
    def kernel_size(self) -> int:
        return int(np.prod(self.window.kernel))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.window.in_spatial))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.window.out_spatial))

    @property
    def macs(self) -> int:
        return self.n * self.c_out * self.out_size * self.c_in_per_group * self.kernel_size

    @property
    def is_depthwise(self) -> bool:
        return self.group == self.c_in and self.group > 1

    @property
    def is_pointwise(self) -> bool:
        w = self.window
        return (all(k == 1 for k in w.kernel) and all(s == 1 for s in w.strides)
                and not any(w.pads_begin) and not any(w.pads_end))


@dataclass
class ConvProblem:
    """What `_choose` hands to each algorithm factory."""
    geom: ConvGeometry
    weight: Optional[np.ndarray]     # W (M, C/group, *k) when constant, else None (read at run)
    bias: Optional[np.ndarray]       # B (M,) when constant, None when absent or not constant
    has_bias: bool
    epilogue: Epilogue
    n_threads: int
    block: int = 0                   # channel block the planner offers (0: plain NCHW only)


class ConvAlgorithm:
    """One way of computing a convolution, chosen once per plan."""
    name = "?"
    in_layout = 0       # layout of X it reads (0: plain NCHW, B: channel-blocked)
    out_layout = 0      # layout of Y (and of the residual Z) it writes

    def scratch(self):
        return []

    def bind(self, x, w, b, z, y, scratch) -> Callable[[], None]:
        """x (N, C, *in), w/b the node's inputs (may be ignored when prepacked), z residual
        or None, y (N, M, *out) written in place."""
        raise NotImplementedError


def apply_epilogue(y3, bias, z3, ep: Epilogue, n_threads: int) -> None:
    """y3 (N, M, P) ← act(y3 + bias[m] + z3), in place."""
    if y3.dtype == np.float32 and _k is not None:
        if bias is None and z3 is None and ep.kind == 0:
            return
        slope = None
        if ep.slope is not None:
            slope = np.ascontiguousarray(np.broadcast_to(ep.slope, (y3.shape[1],)), np.float32)
        _k.conv_epilogue(y3, bias, z3, ep.kind, ep.p0, ep.p1, slope,
                         threads_for(y3.size, n_threads))
        return
    if bias is not None:
        y3 += bias.reshape(1, -1, 1)
    if z3 is not None:
        y3 += z3
    ep.apply_numpy(y3)


class Im2colGemm(ConvAlgorithm):
    """Generic N-D grouped convolution: per image, im2col (Cython, parallel over C·K rows)
    then one batched GEMM over groups, W (G, M/G, C/G·K) @ col (G, C/G·K, P), written
    straight into Y; 1×1 stride-1 unpadded convolutions skip im2col.  Weights are
    reshaped once here when constant."""
    name = "im2col_gemm"

    def __init__(self, p: ConvProblem):
        g = p.geom
        self.geom = g
        self.ep = p.epilogue
        self.n_threads = p.n_threads
        G, Mg, CgK = g.group, g.c_out_per_group, g.c_in_per_group * g.kernel_size
        self.wshape = (G, Mg, CgK)
        self.w3 = None if p.weight is None else \
            np.array(p.weight.reshape(self.wshape), dtype=g.dtype)     # owned, writable
        self.b = None if p.bias is None else np.ascontiguousarray(p.bias, dtype=g.dtype)
        self.has_bias = p.has_bias
        self.w3d = g.window.as_3d()
        self.pointwise = g.is_pointwise
        self.im2col_threads = threads_for(g.c_in * g.kernel_size * g.out_size, p.n_threads)

    def scratch(self):
        g = self.geom
        if self.pointwise:
            return []
        return [((g.c_in * g.kernel_size, g.out_size), g.dtype)]

    def bind(self, x, w, b, z, y, scratch):
        g = self.geom
        N, G, Mg = g.n, g.group, g.c_out_per_group
        CgK, P = g.c_in_per_group * g.kernel_size, g.out_size
        w3, bias = self.w3, self.b
        wv = self.w3d
        x4 = x.reshape((N, g.c_in) + wv.in_spatial)
        y4 = y.reshape(N, G, Mg, P)
        y3 = y.reshape(N, g.c_out, P)
        z3 = None if z is None else z.reshape(N, g.c_out, P)
        if self.pointwise:
            cols = [x4[n].reshape(G, CgK, P) for n in range(N)]
            col = None
        else:
            col = scratch[0]
            cols = [col.reshape(G, CgK, P)] * N
        ep, nt, t_i2c = self.ep, self.n_threads, self.im2col_threads
        kernel, strides, pads, dil, outs = (wv.kernel, wv.strides, wv.pads_begin, wv.dilations,
                                            wv.out_spatial)
        matmul = np.matmul
        if _gemm is not None and g.dtype == np.float32 and w3 is not None and CgK > 0 \
                and P > 0:
            # our SGEMM with the session's threads: numpy's BLAS would start its own
            # thread pool next to fastcnn's and oversubscribe the cores
            sgemm = _gemm.sgemm

            def matmul(a, b, out):
                for k in range(G):
                    sgemm(a[k], b[k], out[k], nt)
        im2col = _k.im2col_3d if _k is not None else im2col_numpy
        has_bias = self.has_bias

        def run():
            wm = w3 if w3 is not None else np.ascontiguousarray(w, dtype=g.dtype).reshape(G, Mg, CgK)
            bb = bias if bias is not None else (
                np.ascontiguousarray(b, dtype=g.dtype) if has_bias else None)
            for n in range(N):
                if col is not None:
                    im2col(x4[n], col, kernel, strides, pads, dil, outs, t_i2c)
                matmul(wm, cols[n], out=y4[n])
            apply_epilogue(y3, bb, z3, ep, nt)
        return run


def _make_im2col(p: ConvProblem):
    return Im2colGemm(p)


#: Algorithm factories, tried in order; each returns a ConvAlgorithm or None.
#: The generic im2col+GEMM comes last and accepts everything.
ALGORITHMS: List[Callable[[ConvProblem], Optional[ConvAlgorithm]]] = [_make_im2col]
#: name -> factory, for FASTCNN_CONV_ALGO / Conv.forced_algorithm
ALGORITHMS_BY_NAME = {"im2col_gemm": _make_im2col}


def register_algorithm(factory, name: str, first: bool = True):
    """Add a fast path (tried before the generic one when `first`)."""
    if first:
        ALGORITHMS.insert(0, factory)
    else:
        ALGORITHMS.insert(len(ALGORITHMS) - 1, factory)
    ALGORITHMS_BY_NAME[name] = factory


@register("Conv", since_version=1)
@register("Conv", since_version=11)
class Conv(Op):
    #: force one algorithm by name (tests); FASTCNN_CONV_ALGO does the same per process
    forced_algorithm: Optional[str] = None
    #: activations the convolution epilogue applies while the tile is in registers or L1:
    #: the piecewise-linear ones in registers, the transcendental ones (Sigmoid, Tanh, SiLU,
    #: Mish, Elu) with the same vectorized branch-free loop as the elementwise kernels
    #: (src/transc.h), so fusing them saves a pass over memory and changes no result
    fused_activations = frozenset({"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish",
                                   "PRelu", "Sigmoid", "Tanh", "Silu", "Mish", "Elu"})

    def setup(self):
        self.win_attrs = WindowAttrs(self, kernel_required=False)
        self.group = int_attr(self, "group", 1, lo=1)
        self.epilogue = parse_epilogue(self)
        n_in = len(self.node.inputs)
        if n_in < 2:
            raise self.error(f"Conv needs inputs X and W, got {n_in} input(s)")
        max_in = 4 if self.epilogue.residual else 3
        if n_in > max_in:
            raise self.error(f"Conv takes at most {max_in} inputs, got {n_in}")
        if self.epilogue.residual and (n_in < 4 or not self.node.inputs[3]):
            raise self.error("fastcnn_residual=1 but input 3 (the residual) is missing")
        self.algorithm: Optional[ConvAlgorithm] = None

    # -- shapes -------------------------------------------------------------------------
    def infer(self, inputs):
        x, w = inputs[0], inputs[1]
        if x is None or w is None:
            raise self.error("inputs X and W are required")
        check_float(self, x, "X", extra=(np.float16,))
        if np.dtype(w.dtype) != np.dtype(x.dtype):
            raise self.error(f"W has dtype {np.dtype(w.dtype)} but X has {np.dtype(x.dtype)}")
        if len(x.shape) < 3:
            raise self.shape_error(f"X must have rank >= 3 (N, C, spatial...), got shape "
                                   f"{list(x.shape)}")
        if len(x.shape) > 5:
            raise self.shape_error(f"only 1-D, 2-D and 3-D convolutions are supported, X has "
                                   f"shape {list(x.shape)}")
        if len(w.shape) != len(x.shape):
            raise self.shape_error(f"W has rank {len(w.shape)} (shape {list(w.shape)}) but X has "
                                   f"rank {len(x.shape)} (shape {list(x.shape)})")
        N, C = x.shape[:2]
        M, Cg = w.shape[:2]
        if any(int(d) <= 0 for d in w.shape):
            raise self.shape_error(f"W has an empty dim (shape {list(w.shape)})")
        if int(C) <= 0:
            raise self.shape_error(f"X has no channels (shape {list(x.shape)})")
        G = self.group
        if C % G:
            raise self.shape_error(f"group {G} does not divide the {C} input channels")
        if M % G:
            raise self.shape_error(f"group {G} does not divide the {M} output channels (W dim 0)")
        if Cg * G != C:
            raise self.shape_error(f"channel mismatch: X has {C} channels but W expects "
                                   f"{Cg} x group {G} = {Cg * G} (W shape {list(w.shape)})")
        b = optional(inputs, 2)
        if b is not None:
            if tuple(b.shape) != (M,):
                raise self.shape_error(f"bias B has shape {list(b.shape)}, expected [{M}]")
        window = self.win_attrs.resolve(x.shape[2:], w.shape[2:])
        out_shape = (N, M) + window.out_spatial
        if any(d <= 0 for d in out_shape[2:]):
            raise self.shape_error(f"output spatial shape {list(window.out_spatial)} is empty")
        self.conv_shape, self.z_broadcast = out_shape, False
        if self.epilogue.residual:
            z = optional(inputs, 3)
            if z is None:
                raise self.shape_error("the residual Z is missing")
            if tuple(z.shape) != out_shape:
                # the fused Add broadcasts (fusion is decided before shapes are known): the
                # conv runs into scratch, then y = act(conv + z) with numpy broadcasting
                try:
                    out_shape = tuple(int(d) for d in np.broadcast_shapes(out_shape, tuple(z.shape)))
                except ValueError:
                    raise self.shape_error(f"residual Z has shape {list(z.shape)}, which does not "
                                           f"broadcast with the output {list(out_shape)}") from None
                self.z_broadcast = True
            if np.dtype(z.dtype) != np.dtype(x.dtype):
                raise self.error("residual Z dtype differs from X")
        if self.epilogue.slope is not None and self.epilogue.slope.size not in (1, M):
            raise self.error(f"PRelu slopes: {self.epilogue.slope.size} values for {M} channels")
        # float16 runs in float32 (converted on the way in and out, see bind)
        self.io_dtype = np.dtype(x.dtype)
        self.geom = ConvGeometry(int(N), int(C), int(M), G, window, compute_dtype(x.dtype))
        return [TensorInfo(out_shape, np.dtype(x.dtype))]

    # -- algorithm ----------------------------------------------------------------------
    def _choose(self, inputs, outputs, block: int = 0) -> ConvAlgorithm:
        """The one place a convolution algorithm is picked (see the module docstring)."""
        w = inputs[1]
        b = optional(inputs, 2)
        cd = self.geom.dtype
        problem = ConvProblem(
            geom=self.geom,
            weight=np.asarray(w.value, cd) if w.is_const else None,
            bias=np.asarray(b.value, cd) if (b is not None and b.is_const) else None,
            has_bias=b is not None,
            epilogue=Epilogue() if self.z_broadcast else self.epilogue,
            n_threads=self.n_threads,
            block=block if self.io_dtype == np.float32 else 0)
        forced = self.forced_algorithm or os.environ.get("FASTCNN_CONV_ALGO")
        if forced:
            factory = ALGORITHMS_BY_NAME.get(forced)
            if factory is None:
                raise self.error(f"unknown convolution algorithm {forced!r}; known: "
                                 f"{sorted(ALGORITHMS_BY_NAME)}")
            algo = factory(problem)
            if algo is not None:
                return algo
        for factory in ALGORITHMS:
            algo = factory(problem)
            if algo is not None:
                return algo
        raise self.error("no convolution algorithm accepted this node")  # unreachable

    def layouts(self, inputs, block):
        """Pick the algorithm now, with the blocked layout on offer; report its layouts."""
        self.infer(inputs)
        self.algorithm = self._choose(inputs, None, 0 if self.z_broadcast else block)
        self._chosen_for = [None if i is None else i.shape for i in inputs]
        a = self.algorithm
        if not (a.in_layout or a.out_layout):
            return None
        want = [0] * len(inputs)
        want[0] = a.in_layout
        if self.epilogue.residual:
            want[3] = a.out_layout
        return want, [a.out_layout]

    def prepare(self, inputs, outputs):
        self.infer(inputs)          # geometry for exactly these shapes
        if getattr(self, "_chosen_for", None) != [None if i is None else i.shape for i in inputs]:
            self.algorithm = self._choose(inputs, outputs)
        self._chosen_for = None

    def _converted(self):
        """(shape, dtype) of the compute-dtype copies of X, Y (and Z) when io dtype differs."""
        g = self.geom
        if self.io_dtype == g.dtype:
            return []
        w = g.window
        bufs = [((g.n, g.c_in) + w.in_spatial, g.dtype), ((g.n, g.c_out) + w.out_spatial, g.dtype)]
        if self.epilogue.residual and not self.z_broadcast:
            bufs.append(((g.n, g.c_out) + w.out_spatial, g.dtype))
        return bufs

    def scratch(self, inputs, outputs):
        own = list(self.algorithm.scratch()) + self._converted()
        return own + ([(self.conv_shape, self.io_dtype)] if self.z_broadcast else [])

    def bind(self, xs, ys, scratch=()):
        if not self.z_broadcast:
            return self._bind(xs, ys, scratch)
        c, z, y, ep = scratch[-1], xs[3], ys[0], self.epilogue
        conv = self._bind(xs[:3], [c], scratch[:-1])

        def run():
            conv()
            np.add(c, z, out=y)
            ep.apply_numpy(y)
        return run

    def _bind(self, xs, ys, scratch):
        x, w = xs[0], xs[1]
        b = xs[2] if len(xs) > 2 else None
        z = xs[3] if (self.epilogue.residual and len(xs) > 3) else None
        n_conv = len(self._converted())
        if not n_conv:
            return self.algorithm.bind(x, w, b, z, ys[0], scratch)
        own, conv = list(scratch[:len(scratch) - n_conv]), scratch[len(scratch) - n_conv:]
        xc, yc = conv[0], conv[1]
        zc = conv[2] if z is not None else None
        inner = self.algorithm.bind(xc, w, b, zc, yc, own)
        ins = [(xc, x)] + ([(zc, z)] if z is not None else [])
        return converting(inner, ins, [(ys[0], yc)])

    def compute(self, xs, ys, scratch=()):
        self.bind(xs, ys, scratch)()
