"""Custom ops of domain `com.fastcnn`, version 1 (the model imports opset com.fastcnn 1).

`kernel_shape`, `strides`, `pads` (all begins, then all ends), `dilations`, `group`
(and `auto_pad`) mean what they mean for ONNX Conv, and output sizes follow Conv's
formula (conv_util.WindowAttrs).  d = 1, 2 or 3 spatial dims; g(m) = m // (M/group).

LocallyConnected (unshared convolution)
    X [N, C, D1..Dd], W [O1..Od, M, C/group, k1..kd], B [M, O1..Od] optional
    Y[n, m, o] = Σ_{c, κ} W[o, m, c, κ] · Xpad[n, g(m)·C/group + c, o·s + κ·dil] + B[m, o]

TiledConv (tiled convolution)
    X, W [T1..Td, M, C/group, k1..kd], B [M] optional
    the same sum with the filter bank W[o mod T] (per axis): T = 1 is Conv,
    T = output size is LocallyConnected; banks beyond the output are unused.

WeightedAveragePool (average weighted by distance from the window's center)
    X, K [k1..kd] optional (constant, non-negative, positive sum)
    attributes kernel_shape (required), strides, pads, sigma (1.0), count_include_pad (0)
    without K: K[κ] = exp(-‖κ − c‖² / (2σ²)), c = (k − 1)/2 per axis
    Y[n, ch, o] = Σ_κ K[κ]·Xpad[n, ch, o·s + κ] / Σ_κ' K[κ']   (κ' over the taps inside
    the unpadded input when count_include_pad = 0, over the whole window when 1; a
    window whose inside taps all have weight 0 gives 0)

Algorithms (kernels in `_kernels/local_conv.pyx`): LocallyConnected and TiledConv
share one kernel over rows (image, position) grouped by filter bank — the position
for LocallyConnected, the tile phase for TiledConv, so each phase is an ordinary
strided convolution with its own weights — with W prepacked once per bank as
[G][C/g·Πk][M/g padded to 16] (float32).  float16 computes in float32; float64 takes
a numpy path (im2col per tap + einsum), which is also the path when W is not constant.
WeightedAveragePool normalizes K once and tabulates one correction factor per
combination of per-axis border cases.
"""
from __future__ import annotations

import numpy as np

from ..runtime.threads import threads_for
from .attrs import flag_attr, float_attr, int_attr
from .base import Op, TensorInfo, optional
from .conv_util import Window, WindowAttrs, check_float, compute_dtype, converting
from .registry import register

try:
    from .._kernels import local_conv as _k
except ImportError:  # not built: the numpy paths below still work (slowly)
    _k = None

DOMAIN = "com.fastcnn"
ROWS = 4      # rows per item (local_conv.h LC_ROWS)
LANES = 16    # output-channel padding of the packed weights (LC_LANES)


def _aligned_empty(n, dtype, align=64):
    dt = np.dtype(dtype)
    raw = np.empty(n * dt.itemsize + align, np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + n * dt.itemsize].view(dt)


def pack_banks(w_banks: np.ndarray, group: int) -> np.ndarray:
    """W [n_banks, M, C/g, k...] -> flat float32 [n_banks][G][C/g·Πk][Mgp], 64-byte aligned,
    output channels contiguous and zero-padded to a multiple of 16."""
    nb, M = w_banks.shape[:2]
    G = group
    Mg = M // G
    K = int(np.prod(w_banks.shape[2:]))
    Mgp = -(-Mg // LANES) * LANES
    out = _aligned_empty(nb * G * K * Mgp, np.float32)
    v = out.reshape(nb, G, K, Mgp)
    v[..., Mg:] = 0
    v[..., :Mg] = np.asarray(w_banks, np.float32).reshape(nb, G, Mg, K).transpose(0, 1, 3, 2)
    return out


def work_items(bank_of_p: np.ndarray, n_images: int):
    """(rows, items): rows n·P + p sorted by (bank, n, p); items [bank, first row, count ≤ 4]
    never mixing banks.  For a locally connected layer (bank = p) an item is up to 4
    images of one position; for a tiled convolution up to 4 positions of one phase."""
    P = bank_of_p.size
    N = n_images
    n = np.repeat(np.arange(N, dtype=np.int64), P)
    p = np.tile(np.arange(P, dtype=np.int64), N)
    key = bank_of_p.astype(np.int64)[p]
    order = np.lexsort((p, n, key))
    rows = np.ascontiguousarray(n[order] * P + p[order])
    key = key[order]
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    gstart = np.flatnonzero(first)
    gid = np.cumsum(first) - 1
    gend = np.append(gstart[1:], key.size)
    idx = np.arange(key.size)
    offset = idx - gstart[gid]
    starts = idx[offset % ROWS == 0]
    counts = np.minimum(ROWS, gend[gid[starts]] - starts)
    items = np.ascontiguousarray(np.stack([key[starts], starts, counts], axis=1), np.int64)
    return rows, items


def im2col_numpy(x: np.ndarray, w3: Window) -> np.ndarray:
    """x (N, C, D, H, W) -> cols (N, C, Πk, P) of the 3-D window w3 (zeros in the padding)."""
    N, C = x.shape[:2]
    pb, pe = w3.pads_begin, w3.pads_end
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pb[a], pe[a]) for a in range(3)])
    O, s, d, k = w3.out_spatial, w3.strides, w3.dilations, w3.kernel
    cols = np.empty((N, C, int(np.prod(k)), int(np.prod(O))), x.dtype)
    t = 0
    for kd in range(k[0]):
        for kh in range(k[1]):
            for kw in range(k[2]):
                sl = xp[:, :, kd * d[0]: kd * d[0] + (O[0] - 1) * s[0] + 1: s[0],
                        kh * d[1]: kh * d[1] + (O[1] - 1) * s[1] + 1: s[1],
                        kw * d[2]: kw * d[2] + (O[2] - 1) * s[2] + 1: s[2]]
                cols[:, :, t, :] = sl.reshape(N, C, -1)
                t += 1
    return cols


class _Custom(Op):
    """Shared checks of the com.fastcnn ops."""
    n_inputs = (1, 2)

    def setup(self):
        if self.opset < 1:
            raise self.error(f"{self.node.op_type} is in domain '{DOMAIN}', which the model does "
                             f"not import: add opset_import {{domain: '{DOMAIN}', version: 1}} "
                             f"(onnx.helper.make_opsetid('{DOMAIN}', 1))")
        n_in = len(self.node.inputs)
        lo, hi = self.n_inputs
        if not lo <= n_in <= hi:
            raise self.error(f"{self.node.op_type} takes {lo} to {hi} inputs, got {n_in}")
        for name in self.node.attrs:
            if name not in self.known_attrs:
                raise self.error(f"unknown attribute '{name}'; {self.node.op_type} takes "
                                 f"{', '.join(sorted(self.known_attrs))}")
        self.parse()

    def _check_x(self, x):
        if x is None:
            raise self.error("input X is required")
        check_float(self, x, "X", extra=(np.float16,))
        if not 3 <= len(x.shape) <= 5:
            raise self.shape_error(f"X must be (N, C, spatial...) with 1 to 3 spatial dims, got "
                                   f"shape {list(x.shape)}")

    def compute(self, xs, ys, scratch=()):
        self.bind(xs, ys, scratch)()


class _BankedConv(_Custom):
    """LocallyConnected and TiledConv: a conv whose output position picks a filter bank."""
    n_inputs = (2, 3)
    known_attrs = {"auto_pad", "kernel_shape", "strides", "pads", "dilations", "group"}
    bank_name = "?"

    def parse(self):
        self.win_attrs = WindowAttrs(self, kernel_required=False)
        self.group = int_attr(self, "group", 1, lo=1)

    def _bias_shape(self, M, out_spatial):
        raise NotImplementedError

    def _check_banks(self, banks, window):
        raise NotImplementedError

    def bank_of_position(self):
        raise NotImplementedError

    def infer(self, inputs):
        x, w = inputs[0], inputs[1] if len(inputs) > 1 else None
        self._check_x(x)
        if w is None:
            raise self.error("input W is required")
        if np.dtype(w.dtype) != np.dtype(x.dtype):
            raise self.error(f"W has dtype {np.dtype(w.dtype)} but X has {np.dtype(x.dtype)}")
        nd = len(x.shape) - 2
        if len(w.shape) != 2 * nd + 2:
            raise self.shape_error(
                f"W must be [{self.bank_name}1..{self.bank_name}{nd}, M, C/group, k1..k{nd}] "
                f"(rank {2 * nd + 2} for {nd} spatial dims), got shape {list(w.shape)}")
        N, C = (int(v) for v in x.shape[:2])
        banks = tuple(int(v) for v in w.shape[:nd])
        M, Cg = int(w.shape[nd]), int(w.shape[nd + 1])
        kernel = tuple(int(v) for v in w.shape[nd + 2:])
        G = self.group
        if C % G:
            raise self.shape_error(f"group {G} does not divide the {C} input channels")
        if M == 0 or M % G:
            raise self.shape_error(f"group {G} does not divide the {M} output channels "
                                   f"(W dim {nd})")
        if Cg * G != C:
            raise self.shape_error(f"channel mismatch: X has {C} channels but W expects "
                                   f"{Cg} x group {G} = {Cg * G} (W shape {list(w.shape)})")
        window = self.win_attrs.resolve(x.shape[2:], kernel)
        self._check_banks(banks, window, w)
        b = optional(inputs, 2)
        if b is not None:
            want = self._bias_shape(M, window.out_spatial)
            if tuple(b.shape) != want:
                raise self.shape_error(f"bias B has shape {list(b.shape)}, expected {list(want)}")
            if np.dtype(b.dtype) != np.dtype(x.dtype):
                raise self.error(f"B has dtype {np.dtype(b.dtype)} but X has {np.dtype(x.dtype)}")
        self.window, self.N, self.C, self.M, self.banks = window, N, C, M, banks
        self.io_dtype = np.dtype(x.dtype)
        self.dtype = compute_dtype(x.dtype)
        return [TensorInfo((N, M) + window.out_spatial, np.dtype(x.dtype))]

    # -- planning ------------------------------------------------------------------------
    def prepare(self, inputs, outputs):
        self.infer(inputs)
        w, b = inputs[1], optional(inputs, 2)
        w3 = self.window.as_3d()
        self.w3 = w3
        self.P = int(np.prod(w3.out_spatial))
        self.n_banks = int(np.prod(self.banks))
        self.native = self.dtype == np.float32 and _k is not None
        self.wpack = self.bias = self.wbanks = None
        if w.is_const:
            self.wbanks = np.asarray(w.value, self.dtype).reshape(
                (self.n_banks, self.M) + tuple(w.shape[len(self.banks) + 1:]))
            if self.native:
                self.wpack = pack_banks(self.wbanks, self.group)
                self.wbanks = None      # drop the original layout
        self.has_bias = b is not None
        if b is not None and b.is_const:
            self.bias = np.ascontiguousarray(np.asarray(b.value, self.dtype).reshape(-1))
        bank = self.bank_of_position()
        self.bank_of_p = bank
        if self.native:
            self.rows, self.items = work_items(bank, self.N)
            macs = self.N * self.M * self.P * (self.C // self.group) * int(np.prod(w3.kernel))
            self.threads = threads_for(macs, self.n_threads)

    def _converted(self):
        if self.io_dtype == self.dtype:
            return []
        w3 = self.w3
        return [((self.N, self.C) + w3.in_spatial, self.dtype),
                ((self.N, self.M) + w3.out_spatial, self.dtype)]

    def scratch(self, inputs, outputs):
        return self._converted()

    def bind(self, xs, ys, scratch=()):
        x, w = xs[0], xs[1]
        b = xs[2] if len(xs) > 2 else None
        if self._converted():
            xc, yc = scratch[0], scratch[1]
            inner = self._bind(xc, w, b, yc)
            return converting(inner, [(xc, x.reshape(xc.shape))], [(ys[0].reshape(yc.shape), yc)])
        return self._bind(x, w, b, ys[0])

    def _bias_strides(self):
        raise NotImplementedError

    def _bind(self, x, w, b, y):
        w3, G, dt = self.w3, self.group, self.dtype
        N, C, M, P = self.N, self.C, self.M, self.P
        x5 = x.reshape((N, C) + w3.in_spatial)
        y3 = y.reshape(N, M, P)
        nb, wshape = self.n_banks, (self.n_banks, M) + (C // G,) + w3.kernel
        wpack, wbanks, bias, has_bias = self.wpack, self.wbanks, self.bias, self.has_bias
        bms, bps = self._bias_strides()
        if self.native:
            rows, items, nt = self.rows, self.items, self.threads
            args = (G, w3.kernel, w3.strides, w3.pads_begin, w3.pads_end, w3.dilations)
            if wpack is not None and (bias is not None or not has_bias):
                # everything constant: a native step (no Python per run)
                return _k.local_conv_call(x5, wpack, bias, bms, bps, y3, rows, items, *args, nt)
            kern = _k.local_conv

            def run():
                wp = wpack if wpack is not None else pack_banks(
                    np.asarray(w, np.float32).reshape(wshape), G)
                bb = bias if (bias is not None or not has_bias) else \
                    np.ascontiguousarray(b, np.float32).reshape(-1)
                kern(x5, wp, bb, bms, bps, y3, rows, items, *args, nt)
            return run
        bank_of_p = self.bank_of_p

        def run_numpy():
            wb = wbanks if wbanks is not None else np.asarray(w, dt).reshape(wshape)
            bb = bias if (bias is not None or not has_bias) else np.asarray(b, dt).reshape(-1)
            cols = im2col_numpy(np.asarray(x5, dt), w3)                  # (N, C, KK, P)
            cols = cols.reshape(N, G, -1, P)                             # (N, G, K, P)
            wp = wb.reshape(nb, G, M // G, -1)[bank_of_p]                # (P, G, Mg, K)
            out = np.einsum("pgmj,ngjp->ngmp", wp, cols, optimize=True).reshape(N, M, P)
            if bb is not None:
                idx = np.arange(M)[:, None] * bms + np.arange(P)[None, :] * bps
                out += bb[idx]
            np.copyto(y3, out, casting="unsafe")
        return run_numpy


@register("LocallyConnected", since_version=0, domain=DOMAIN)   # 0: domain not imported
@register("LocallyConnected", since_version=1, domain=DOMAIN)
class LocallyConnected(_BankedConv):
    bank_name = "O"

    def _check_banks(self, banks, window, w):
        if banks != window.out_spatial:
            raise self.shape_error(
                f"W has one filter bank per output position {list(banks)} but the output "
                f"spatial shape is {list(window.out_spatial)} (input {list(window.in_spatial)}, "
                f"kernel {list(window.kernel)}, strides {list(window.strides)}, pads "
                f"{window.pads}, dilations {list(window.dilations)}); W shape {list(w.shape)}")

    def _bias_shape(self, M, out_spatial):
        return (M,) + tuple(out_spatial)

    def _bias_strides(self):
        return self.P, 1

    def bank_of_position(self):
        return np.arange(self.P, dtype=np.int64)


@register("TiledConv", since_version=0, domain=DOMAIN)
@register("TiledConv", since_version=1, domain=DOMAIN)
class TiledConv(_BankedConv):
    bank_name = "T"

    def _check_banks(self, banks, window, w):
        if any(t < 1 for t in banks):
            raise self.shape_error(f"tile sizes T (W dims 0..{len(banks) - 1}) must be >= 1, "
                                   f"W shape {list(w.shape)}")

    def _bias_shape(self, M, out_spatial):
        return (M,)

    def _bias_strides(self):
        return 1, 0

    def bank_of_position(self):
        O = self.window.out_spatial
        T = self.banks
        grids = np.meshgrid(*[np.arange(o) % t for o, t in zip(O, T)], indexing="ij")
        return np.ravel_multi_index([g.reshape(-1) for g in grids], T).astype(np.int64)


def gaussian_kernel(kernel_shape, sigma: float = 1.0) -> np.ndarray:
    """K[κ] = exp(-‖κ − c‖² / (2σ²)), c = (k − 1)/2 per axis (float64)."""
    r2 = np.zeros(tuple(kernel_shape))
    for a, k in enumerate(kernel_shape):
        shape = [1] * len(kernel_shape)
        shape[a] = k
        r2 = r2 + ((np.arange(k) - (k - 1) / 2.0) ** 2).reshape(shape)
    return np.exp(-r2 / (2.0 * sigma * sigma))


def _border_cases(n_in, n_out, k, s, pb):
    """Per output index along one axis: a case id for its valid tap range [lo, hi)."""
    start = np.arange(n_out) * s - pb
    lo = np.clip(-start, 0, k)
    hi = np.clip(n_in - start, lo, k)
    pairs = list(zip(lo.tolist(), hi.tolist()))
    uniq = sorted(set(pairs))
    ids = {p: i for i, p in enumerate(uniq)}
    return np.array([ids[p] for p in pairs], np.int32), uniq


@register("WeightedAveragePool", since_version=0, domain=DOMAIN)
@register("WeightedAveragePool", since_version=1, domain=DOMAIN)
class WeightedAveragePool(_Custom):
    n_inputs = (1, 2)
    known_attrs = {"auto_pad", "kernel_shape", "strides", "pads", "sigma", "count_include_pad"}

    def parse(self):
        self.win_attrs = WindowAttrs(self, kernel_required=True, allow_dilations=False)
        self.sigma = float_attr(self, "sigma", 1.0)
        if not self.sigma > 0:
            raise self.error(f"sigma must be > 0, got {self.sigma}")
        self.count_include_pad = flag_attr(self, "count_include_pad", 0)

    def _weights(self, inputs, nd):
        ks = self.win_attrs.kernel_shape
        kin = optional(inputs, 1)
        if kin is None:
            return gaussian_kernel(ks, self.sigma)
        if kin.value is None:
            raise self.error("input K (the window weights) must be a constant (an initializer)")
        K = np.asarray(kin.value)
        if not np.issubdtype(K.dtype, np.floating):
            raise self.error(f"K must be a float tensor, got dtype {K.dtype}")
        if tuple(K.shape) != tuple(ks):
            raise self.shape_error(f"K has shape {list(K.shape)} but kernel_shape is {list(ks)}")
        K = K.astype(np.float64)
        if not np.all(np.isfinite(K)):
            raise self.error("K has non-finite weights")
        if np.any(K < 0):
            raise self.error(f"K must be non-negative; min weight {K.min()}")
        if not K.sum() > 0:
            raise self.error("K sums to zero: the average is undefined")
        return K

    def infer(self, inputs):
        x = inputs[0]
        self._check_x(x)
        nd = len(x.shape) - 2
        if len(self.win_attrs.kernel_shape) != nd:
            raise self.shape_error(f"kernel_shape has {len(self.win_attrs.kernel_shape)} dims "
                                   f"but X has {nd} spatial dims (shape {list(x.shape)})")
        self.K = self._weights(inputs, nd)
        self.window = self.win_attrs.resolve(x.shape[2:])
        if any(o <= 0 for o in self.window.out_spatial):
            raise self.shape_error(f"output spatial shape {list(self.window.out_spatial)} is empty")
        self.io_dtype = np.dtype(x.dtype)
        self.dtype = compute_dtype(x.dtype)
        return [TensorInfo(tuple(x.shape[:2]) + self.window.out_spatial, np.dtype(x.dtype))]

    def prepare(self, inputs, outputs):
        self.infer(inputs)
        x = inputs[0]
        w3 = self.window.as_3d()
        self.w3 = w3
        K3 = self.K.reshape(w3.kernel)
        total = K3.sum()
        self.kn = np.ascontiguousarray((K3 / total).reshape(-1), self.dtype)
        cases = [_border_cases(w3.in_spatial[a], w3.out_spatial[a], w3.kernel[a], w3.strides[a],
                               w3.pads_begin[a]) for a in range(3)]
        self.case_ids = [c[0] for c in cases]
        shape = tuple(len(c[1]) for c in cases)
        scale = np.ones(shape)
        if not self.count_include_pad:
            for i, (dl, dh) in enumerate(cases[0][1]):
                for j, (hl, hh) in enumerate(cases[1][1]):
                    for k, (wl, wh) in enumerate(cases[2][1]):
                        part = K3[dl:dh, hl:hh, wl:wh].sum()
                        scale[i, j, k] = total / part if part > 0 else 0.0
        self.scale = np.ascontiguousarray(scale.reshape(-1), self.dtype)
        self.nc = int(x.shape[0]) * int(x.shape[1])
        work = self.nc * int(np.prod(w3.out_spatial)) * int(np.prod(w3.kernel))
        self.threads = threads_for(work, self.n_threads)

    def scratch(self, inputs, outputs):
        if self.io_dtype == self.dtype:
            return []
        return [((self.nc,) + self.w3.in_spatial, self.dtype),
                ((self.nc,) + self.w3.out_spatial, self.dtype)]

    def bind(self, xs, ys, scratch=()):
        if self.io_dtype != self.dtype:
            xc, yc = scratch[0], scratch[1]
            inner = self._bind(xc, yc)
            return converting(inner, [(xc, xs[0].reshape(xc.shape))],
                              [(ys[0].reshape(yc.shape), yc)])
        return self._bind(xs[0], ys[0])

    def _bind(self, x, y):
        w3 = self.w3
        x4 = x.reshape((self.nc,) + w3.in_spatial)
        y4 = y.reshape((self.nc,) + w3.out_spatial)
        cd, ch, cw = self.case_ids
        kn, scale = self.kn, self.scale
        if _k is not None:
            args = (kn, scale, cd, ch, cw, w3.kernel, w3.strides, w3.pads_begin, self.threads)
            if self.dtype == np.float32:
                return _k.wavg_pool_call(x4, y4, *args)      # a native step
            kern = _k.wavg_pool
            return lambda: kern(x4, y4, *args)
        K3 = kn.reshape(w3.kernel)
        sc = scale.reshape(int(cd.max()) + 1, int(ch.max()) + 1, int(cw.max()) + 1)
        fac = sc[cd[:, None, None], ch[None, :, None], cw[None, None, :]].reshape(-1)

        def run_numpy():
            cols = im2col_numpy(x4[:, None], w3)[:, 0]               # (NC, KK, P)
            out = np.einsum("k,nkp->np", K3.reshape(-1), cols) * fac
            np.copyto(y4.reshape(out.shape), out, casting="unsafe")
        return run_numpy
