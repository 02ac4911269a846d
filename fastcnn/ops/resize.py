"""Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9).

Resize is separable.  Along one resized axis of input length n_in and output
length n_out, output coordinate o maps to the input coordinate x(o) of the
`coordinate_transformation_mode` (s = the axis' scale):

    half_pixel            (o + 0.5)/s - 0.5
    half_pixel_symmetric  n_in/2·(1 - n_out/(s·n_in)) + (o + 0.5)/s - 0.5
    pytorch_half_pixel    (o + 0.5)/s - 0.5, or -0.5 when s·n_in == 1
    align_corners         o·(n_in - 1)/(s·n_in - 1), or 0 when s·n_in == 1
    asymmetric            o/s
    tf_half_pixel_for_nn  (o + 0.5)/s   (tf2onnx's nearest resize; ONNX spells it so in
                          opsets 11-18; the misspelling tf_half_pixel_for_nearest is accepted)
    tf_crop_and_resize    roi_start·(n_in-1) + o·(roi_end-roi_start)·(n_in-1)/(s·n_in-1);
                          outside [0, n_in-1] the output is `extrapolation_value`

The corner-aligned modes divide by s·n_in - 1 as onnx.reference does (the oracle of the
ONNX node cases, e.g. test_resize_downsample_scales_linear_align_corners).  onnxruntime,
PyTorch, Paddle and TF divide by the integer n_out - 1; the two differ only when a
`scales` input makes s·n_in fractional (F.interpolate(scale_factor=0.5,
align_corners=True) on an odd size); with `sizes`, or whole products, they agree.

and reads K taps y[o] = Σ_k w[o,k]·x[idx[o,k]], indices clamped to [0, n_in)
(edge padding): nearest (K=1, by `nearest_mode`), linear (K=2: 1-r, r), cubic
(K=4, Keys with a = cubic_coeff_a; exclude_outside zeroes taps outside the input
and renormalizes); with antialias (18+) a downscaled axis stretches the linear or
cubic kernel by 1/s and normalizes.  This is exactly `onnx.reference`'s
separable `_interpolate_1d_along_axis`, including its tie rules (an integral x
takes the left window).  Upsample and Resize-10 have no attributes beyond
`mode`; they follow onnxruntime: asymmetric, nearest = floor when upscaling and
ceil when downscaling an axis.

Output sizes: from `scales`, floor(s·n_in); from `sizes`, s = n_out/n_in, or under
keep_aspect_ratio_policy not_larger/not_smaller one s = min/max over `axes` and
n_out = round_half_up(s·n_in).  An axis with s ≈ 1, n_out == n_in (and a trivial
roi for tf_crop_and_resize) is skipped.

Planning builds the per-axis tables once (`prepare`); `scales`, `sizes` and `roi`
must be constants then.  float32 runs Cython kernels as native executor steps:
nearest or linear on only the last two axes use one fused 2-D kernel
(`nearest2d`, integer factors specialized: `column_map_params`; `bilinear2d` with a
2-row cache); nearest stays one fused pass in the channel-blocked layout too (B-lane
elements); anything else is one separable pass per resized axis (downscaling axes
first) through arena scratch.  Other dtypes use numpy with the same tables (nearest is
an exact gather for every dtype; linear/cubic accumulate in float64 and cast back
as the reference does: round and saturate for integers).
"""
from __future__ import annotations

import math

import numpy as np

from .attrs import flag_attr, float_attr, ints_attr, str_attr
from .base import Op, TensorInfo
from .registry import register

try:
    from .._kernels import resize as _k
except ImportError:  # no compiled kernels: numpy
    _k = None

F32 = np.dtype(np.float32)
CTMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
        "tf_half_pixel_for_nn", "tf_half_pixel_for_nearest", "tf_crop_and_resize",
        "half_pixel_symmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


# ---------------------------------------------------------------------------------------------
# per-axis tables
def source_coords(ctm, n_in, n_out, scale, roi=None):
    """x(o) for o in [0, n_out) (float64) and the extrapolation mask (or None)."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in                       # the float output width of the spec
    ext = None
    if ctm == "align_corners":
        x = np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm in ("tf_half_pixel_for_nn", "tf_half_pixel_for_nearest"):
        x = (y + 0.5) / scale
    elif ctm == "tf_crop_and_resize":
        r0, r1 = roi      # numpy scalars of roi's dtype: the reference's float32 rounding
        if width == 1:
            x = np.full(n_out, (r1 - r0) * (n_in - 1) / 2)
        else:
            x = y * (r1 - r0) * (n_in - 1) / (width - 1)
        x = x + r0 * (n_in - 1)
        ext = (x < 0) | (x > n_in - 1)
    elif ctm == "pytorch_half_pixel":
        x = np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel_symmetric":
        adjustment = n_out / width
        offset = n_in / 2 * (1 - adjustment)
        x = offset + (y + 0.5) / scale - 0.5
    else:  # validated in setup
        raise ValueError(ctm)
    return x, ext


def _cubic(t, A):
    t = np.abs(t)
    t2, t3 = t * t, t * t * t
    return np.where(t <= 1, (A + 2) * t3 - (A + 3) * t2 + 1,
                    np.where(t < 2, A * t3 - 5 * A * t2 + 8 * A * t - 4 * A, 0.0))


def axis_table(n_in, n_out, scale, *, mode, ctm, nearest_mode="round_prefer_floor",
               cubic_coeff_a=-0.75, exclude_outside=False, antialias=False, roi=None):
    """(idx [n_out, K] intp, w [n_out, K] float64, ext [n_out] bool or None) of one axis.

    nearest_mode "simple": Upsample / Resize-10 (floor when scale >= 1, else ceil)."""
    x, ext = source_coords(ctm, n_in, n_out, scale, roi)
    fl = np.floor(x)
    xi = fl.astype(np.int64)
    if mode == "nearest" and nearest_mode == "simple":
        pick = xi + ((scale < 1) & (x != fl))
        idx = np.clip(pick, 0, max(n_in - 1, 0))[:, None]
        return idx.astype(np.intp), np.ones((n_out, 1)), ext
    ratio = np.where(x == fl, 1.0, x - fl)      # in (0, 1]: prefer the left window
    s = min(scale, 1.0)
    if mode == "nearest":     # a 2-tap window with one-hot weights, then the chosen tap
        n = 2
        c1 = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
              "floor": np.zeros(n_out, bool), "ceil": np.ones(n_out, bool)}[nearest_mode]
        c1 = np.where(ratio == 1.0, True, c1)
        w = np.stack([~c1, c1], axis=1).astype(np.float64)
    elif mode == "linear":
        if antialias:
            start = int(np.floor(-1 / s) + 1)
            n = 2 - 2 * start
            args = (np.arange(start, start + n)[None, :] - ratio[:, None]) * s
            w = np.clip(1 - np.abs(args), 0, 1)
            w = w / w.sum(axis=1, keepdims=True)
        else:
            n = 2
            w = np.stack([1 - ratio, ratio], axis=1)
    else:  # cubic
        A = cubic_coeff_a
        if antialias:
            i0 = int(np.floor(-2 / s) + 1)
            n = 2 - 2 * i0
            args = s * (np.arange(i0, i0 + n)[None, :] - ratio[:, None])
            w = _cubic(args, A)
            w = w / w.sum(axis=1, keepdims=True)
        else:
            n = 4
            r = ratio[:, None]
            w = _cubic(np.concatenate([r + 1, r, 1 - r, 2 - r], axis=1), A)
    # the n nearest (edge-padded) indices, ties to the left, as the reference picks them
    pad = int(math.ceil(n / 2))
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if n % 2 == 0:
        off = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        base = -((n - 1) // 2)
        off = np.where(frac <= 0.5, base, base + 1)
    idx = (p + off)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        tot = w.sum(axis=1, keepdims=True)
        w = w / np.where(tot == 0, 1.0, tot)
    idx = np.clip(idx, 0, max(n_in - 1, 0)).astype(np.intp)
    if mode == "nearest":
        pick = np.where(c1, idx[:, 1], idx[:, 0])[:, None]
        wp = np.where(c1, w[:, 1], w[:, 0])[:, None]
        if np.all(wp == 1):
            return pick, np.ones((n_out, 1)), ext
        # exclude_outside zeroed a chosen tap outside the input: keep its weight (0)
        return np.concatenate([pick, pick], 1), np.concatenate([wp, 0 * wp], 1), ext
    return idx, w, ext


def _saturate_cast(v, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        v = np.round(v)
    elif dtype.kind == "f":
        info = np.finfo(dtype)
    else:
        return v.astype(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def column_map_params(ix, n_in, max_factor=8):
    """(f, head, k0, nbody) when the nearest column map `ix` (n outputs from n_in inputs)
    is an integer upsampling: ix[o] = 0 for o < head, k0 + (o - head) // f for the next
    nbody outputs, n_in - 1 after them; else None.  o // f (head 0, k0 0, nbody n) is what
    asymmetric + floor and the half_pixel default give; the shifted maps (head > 0) are
    e.g. tf_half_pixel_for_nn, or half_pixel with floor or ceil, clamped at the edges."""
    ix = np.asarray(ix)
    n = len(ix)
    if n == 0 or n_in < 1:
        return None
    for f in range(1, max_factor + 1):
        for s in range(-(f - 1), f):        # ix[o] = clip((o + s) // f, 0, n_in - 1)
            head = (-s) % f
            k0 = (head + s) // f
            nbody = max(0, min(n - head, (n_in - k0) * f))
            if head > n or k0 > n_in - 1:
                continue
            want = np.full(n, n_in - 1, np.intp)
            want[:head] = 0
            want[head:head + nbody] = k0 + np.arange(nbody) // f
            if np.array_equal(want, ix):
                return f, head, k0, nbody
    return None


class _Pass:
    """One separable pass: the tensor viewed as [outer, n_in, inner] -> [outer, n_out, inner]."""
    __slots__ = ("axis", "outer", "n_in", "inner", "n_out", "idx", "w", "w32", "ext", "ext8")

    def __init__(self, axis, shape, n_out, idx, w, ext):
        self.axis = axis
        self.outer = int(np.prod(shape[:axis], dtype=np.int64))
        self.inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
        self.n_in, self.n_out = int(shape[axis]), int(n_out)
        self.idx = np.ascontiguousarray(idx, dtype=np.intp)
        self.w = np.ascontiguousarray(w, dtype=np.float64)
        self.w32 = np.ascontiguousarray(w, dtype=np.float32)
        self.ext = None if ext is None or not ext.any() else np.asarray(ext, bool)
        self.ext8 = None if self.ext is None else self.ext.astype(np.uint8)

    @property
    def K(self):
        return self.idx.shape[1]


# ---------------------------------------------------------------------------------------------
class _ResizeBase(Op):
    legacy = False          # Upsample / Resize-10: asymmetric, ORT's nearest rule
    plain_at_edge = True    # an upsampling head's output leaves plain: reorder its input

    def setup(self):
        if self.legacy:
            self.mode = str_attr(self, "mode", "nearest", choices=("nearest", "linear", "bilinear"))
            if self.mode == "bilinear":
                self.mode = "linear"
            self.ctm = "asymmetric"
            self.nearest_mode = "simple"
            self.cubic_coeff_a, self.exclude_outside, self.antialias = -0.75, 0, 0
            self.extrapolation_value = 0.0
            self.axes_attr, self.policy = None, "stretch"
            return
        self.mode = str_attr(self, "mode", "nearest", choices=("nearest", "linear", "cubic"))
        self.ctm = str_attr(self, "coordinate_transformation_mode", "half_pixel", choices=CTMS)
        self.nearest_mode = str_attr(self, "nearest_mode", "round_prefer_floor",
                                     choices=NEAREST_MODES)
        self.cubic_coeff_a = float_attr(self, "cubic_coeff_a", -0.75)
        self.exclude_outside = flag_attr(self, "exclude_outside", 0)
        self.extrapolation_value = float_attr(self, "extrapolation_value", 0.0, finite=False)
        self.antialias = flag_attr(self, "antialias", 0)
        self.axes_attr = ints_attr(self, "axes")
        self.policy = str_attr(self, "keep_aspect_ratio_policy", "stretch",
                               choices=("stretch", "not_larger", "not_smaller"))
        if self.mode == "nearest":
            self.antialias = 0       # antialias applies to linear and cubic only

    # -- inputs ---------------------------------------------------------------------------
    def _inputs(self, inputs):
        """(roi, scales, sizes) as arrays or None (absent or empty)."""
        raise NotImplementedError

    def _present(self, inputs, k, what):
        v = self.const_input(inputs, k, what)
        if v is None or np.asarray(v).size == 0:
            return None
        return np.asarray(v)

    def infer(self, inputs):
        x = inputs[0]
        if x is None:
            raise self.error("input 0 (X) is required")
        shape = tuple(x.shape)
        r = len(shape)
        roi, scales, sizes = self._inputs(inputs)
        if scales is not None and sizes is not None:
            raise self.error("only one of 'scales' and 'sizes' may be given")
        if scales is None and sizes is None:
            raise self.error("one of 'scales' and 'sizes' is required")
        if self.axes_attr is not None:
            axes = []
            for a in self.axes_attr:
                if not -r <= a < r:
                    raise self.error(f"axis {a} is out of range for rank {r}")
                axes.append(a % r)
            if len(set(axes)) != len(axes):
                raise self.error(f"axes {self.axes_attr} has duplicates")
        else:
            axes = list(range(r))
        n = len(axes)
        if scales is not None:
            if scales.ndim != 1 or scales.dtype.kind != "f":
                raise self.error(f"'scales' must be a 1-D float tensor, got {scales.dtype} "
                                 f"of shape {list(scales.shape)}")
            if len(scales) != n:
                raise self.error(f"'scales' has {len(scales)} values, expected {n} (one per "
                                 f"{'axis in axes' if self.axes_attr is not None else 'dim of X'})")
            sc = scales.astype(np.float64)
            if not np.all(np.isfinite(sc)) or np.any(sc <= 0):
                raise self.error(f"'scales' must be positive and finite, got {scales.tolist()}")
            if self.legacy:   # onnxruntime: float32 product
                outs = [int(np.float32(shape[a]) * np.float32(s)) for a, s in zip(axes, scales)]
            else:
                outs = [int(float(s) * shape[a]) for a, s in zip(axes, sc)]
            fs = [float(s) for s in sc]
        else:
            if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
                raise self.error(f"'sizes' must be a 1-D int64 tensor, got {sizes.dtype} "
                                 f"of shape {list(sizes.shape)}")
            if len(sizes) != n:
                raise self.error(f"'sizes' has {len(sizes)} values, expected {n} (one per "
                                 f"{'axis in axes' if self.axes_attr is not None else 'dim of X'})")
            if np.any(sizes < 0):
                raise self.error(f"'sizes' must be non-negative, got {sizes.tolist()}")
            outs = [int(v) for v in sizes]
            if any(shape[a] == 0 for a in axes):
                raise self.shape_error(f"cannot resize an empty axis of {list(shape)} by sizes")
            fs = [o / shape[a] for a, o in zip(axes, outs)]
            if self.policy != "stretch":
                s = min(fs) if self.policy == "not_larger" else max(fs)
                fs = [s] * n
                outs = [int(s * shape[a] + 0.5) for a in axes]
        if self.ctm == "tf_crop_and_resize":
            if roi is None:
                raise self.error("coordinate_transformation_mode tf_crop_and_resize needs 'roi'")
            if roi.dtype.kind != "f":
                raise self.error(f"'roi' must be a float tensor, got {roi.dtype}")
            roi = roi.ravel()
            if len(roi) != 2 * n:
                raise self.error(f"'roi' has {len(roi)} values, expected {2 * n}")
            rois = [(roi[k], roi[n + k]) for k in range(n)]
        else:
            rois = [None] * n
        out_shape = list(shape)
        self.axis_params = []
        for k, a in enumerate(axes):
            out_shape[a] = outs[k]
            trivial = rois[k] is None or (math.isclose(rois[k][0], 0.0) and
                                          math.isclose(rois[k][1], 1.0))
            if math.isclose(fs[k], 1.0) and outs[k] == shape[a] and trivial:
                continue
            self.axis_params.append((a, fs[k], outs[k], rois[k]))
        if self.mode != "nearest" and x.dtype.kind not in "iuf":
            raise self.error(f"mode '{self.mode}' does not support input dtype {x.dtype}")
        self.in_shape, self.out_shape = shape, tuple(out_shape)
        return [TensorInfo(self.out_shape, x.dtype)]

    # -- planning -------------------------------------------------------------------------
    def layouts(self, inputs, block):
        """Run channel-blocked ([N, C/B, *spatial, B]) when X arrives blocked and the channel
        axis is not resized: the separable passes then treat each B-lane vector as one
        element (inner extent × B), so a decoder's Conv → Resize → Conv needs no reorder.
        Padding lanes stay finite (taps of zeros, or a finite extrapolation_value)."""
        x = inputs[0]
        if x is None or not x.layout or x.layout != block or len(x.shape) < 3 or \
                x.dtype != F32 or _k is None or not math.isfinite(self.extrapolation_value):
            return None
        self.infer(inputs)
        if any(a == 1 for a, *_ in self.axis_params):
            return None
        want = [0] * len(inputs)
        want[0] = block
        return want, [block]

    def prepare(self, inputs, outputs):
        self.block = int(getattr(inputs[0], "layout", 0) or 0)
        shape = list(self.in_shape)
        tables = {}
        for a, s, n_out, roi in self.axis_params:
            tables[a] = axis_table(shape[a], n_out, s, mode=self.mode, ctm=self.ctm,
                                   nearest_mode=self.nearest_mode,
                                   cubic_coeff_a=self.cubic_coeff_a,
                                   exclude_outside=bool(self.exclude_outside),
                                   antialias=bool(self.antialias), roi=roi)
        self.tables = tables
        self.dtype = inputs[0].dtype
        self.kind = "copy"
        self.passes = []
        self.lanes = 1
        if not tables or 0 in self.out_shape or 0 in self.in_shape:
            self.kind = "copy" if tables == {} else "empty"
            return
        r = len(shape)
        native = _k is not None and self.dtype == F32
        last2 = r >= 2 and set(tables) <= {r - 2, r - 1} and \
            all(t[2] is None or not t[2].any() for t in tables.values())
        one_tap = all(t[0].shape[1] == 1 for t in tables.values())
        if self.block and r >= 4 and last2 and self.mode == "nearest" and one_tap:
            # physical [N, C/B, *spatial, B]: one fused pass with B-lane elements
            self.kind = "nearest2d"
            self.lanes = self.block
            self._plane2d(tables)
            return
        if self.block:       # physical [N, C/B, *spatial, B]: passes with B-lane elements
            phys = [shape[0], -(-shape[1] // self.block)] + shape[2:] + [self.block]
            order = sorted(tables, key=lambda a: (self.out_shape[a] / shape[a], a))
            for a in order:
                idx, w, ext = tables[a]
                self.passes.append(_Pass(a, tuple(phys), self.out_shape[a], idx, w, ext))
                phys[a] = self.out_shape[a]
            self.kind = "passes"
            return
        if native and last2 and self.mode == "nearest" and one_tap:
            self.kind = "nearest2d"
            self._plane2d(tables)
            return
        if native and last2 and self.mode == "linear" and len(tables) == 2 and \
                all(t[0].shape[1] == 2 for t in tables.values()):
            self.kind = "bilinear2d"
            self._plane2d(tables)
            return
        # separable passes, shrinking axes first
        order = sorted(tables, key=lambda a: (self.out_shape[a] / shape[a], a))
        for a in order:
            idx, w, ext = tables[a]
            self.passes.append(_Pass(a, tuple(shape), self.out_shape[a], idx, w, ext))
            shape[a] = self.out_shape[a]
        self.kind = "passes" if native and len(self.passes) <= _k.MAX_AXIS_PASSES else "numpy"

    def _plane2d(self, tables):
        r = len(self.in_shape)
        H, W = self.in_shape[-2:]
        OH, OW = self.out_shape[-2:]
        lead = list(self.in_shape[:-2])
        if self.lanes > 1:          # [N, C/B, *spatial[:-2]] planes of [H, W, B]
            lead[1] = -(-lead[1] // self.lanes)
        self.P = int(np.prod(lead, dtype=np.int64))
        self.fx, self.head, self.k0, self.nbody = 0, 0, 0, OW
        if self.mode == "nearest":
            iy = tables[r - 2][0][:, 0] if r - 2 in tables else np.arange(H)
            ix = tables[r - 1][0][:, 0] if r - 1 in tables else np.arange(W)
            self.iy = np.ascontiguousarray(iy, np.intp)
            self.ix = np.ascontiguousarray(ix, np.intp)
            self.wy = self.wx = np.zeros((1,), np.float32)
            cmap = column_map_params(self.ix, W)
            if cmap is not None:
                self.fx, self.head, self.k0, self.nbody = cmap
        else:
            self.iy = np.ascontiguousarray(tables[r - 2][0], np.intp)
            self.wy = np.ascontiguousarray(tables[r - 2][1], np.float32)
            self.ix = np.ascontiguousarray(tables[r - 1][0], np.intp)
            self.wx = np.ascontiguousarray(tables[r - 1][1], np.float32)
            self.fx = 0
        nt = max(1, self.n_threads)
        n_blocks = 1 if self.P >= 4 * nt else -(-4 * nt // self.P)
        self.rows_per_item = max(1, -(-OH // n_blocks))

    def scratch(self, inputs, outputs):
        if self.kind != "passes":
            return []
        out = []
        shape = list(self.in_shape)
        if self.block:
            shape = [shape[0], -(-shape[1] // self.block)] + shape[2:] + [self.block]
        for p in self.passes[:-1]:
            shape[p.axis] = p.n_out
            out.append((tuple(shape), F32))
        return out

    # -- running --------------------------------------------------------------------------
    def _numpy(self, x, y):
        if self.kind == "copy":
            np.copyto(y, x)
            return
        if self.kind == "empty":
            return
        if self.mode == "nearest" and all(p.K == 1 for p in self.passes):
            v = x
            for p in self.passes:
                v = np.take(v, p.idx[:, 0], axis=p.axis)
                if p.ext is not None:
                    m = p.ext.reshape((-1,) + (1,) * (v.ndim - p.axis - 1))
                    v = np.where(m, np.asarray(self.extrapolation_value).astype(v.dtype), v)
            np.copyto(y, v)
            return
        v = x.astype(np.float64)
        for p in self.passes:
            g = np.take(v, p.idx, axis=p.axis)          # [..., n_out, K, ...]
            wshape = (1,) * p.axis + p.w.shape + (1,) * (v.ndim - p.axis - 1)
            v = (g * p.w.reshape(wshape)).sum(axis=p.axis + 1)
            if p.ext is not None:
                m = p.ext.reshape((-1,) + (1,) * (v.ndim - p.axis - 1))
                v = np.where(m, self.extrapolation_value, v)
        np.copyto(y, _saturate_cast(v, y.dtype))

    def bind(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        kind = self.kind
        if kind == "empty":
            return lambda: None
        if kind == "copy":
            return lambda: np.copyto(y, x)
        if kind in ("numpy",) or self.dtype != F32 or _k is None or not x.flags.c_contiguous:
            if kind in ("nearest2d", "bilinear2d") or not self.passes:
                self._ensure_passes()
            fn = self._numpy
            return lambda: fn(x, y)
        if kind in ("nearest2d", "bilinear2d"):
            H, W = self.in_shape[-2:]
            OH, OW = self.out_shape[-2:]
            return _k.plane2d_call(kind == "bilinear2d", x.ctypes.data, y.ctypes.data, self.P,
                                   H, W, OH, OW, self.iy.ctypes.data, self.wy.ctypes.data,
                                   self.ix.ctypes.data, self.wx.ctypes.data, self.fx,
                                   self.rows_per_item, self.n_threads,
                                   (x, y, self.iy, self.wy, self.ix, self.wx), self.lanes,
                                   self.head, self.k0, self.nbody)
        bufs = [x] + [s.reshape(-1) for s in scratch] + [y]
        spec, keep = [], [x, y] + list(scratch)
        for k, p in enumerate(self.passes):
            keep += [p.idx, p.w32, p.ext8]
            spec.append((bufs[k].ctypes.data, bufs[k + 1].ctypes.data, p.outer, p.n_in, p.inner,
                         p.n_out, p.idx.ctypes.data, p.w32.ctypes.data, p.K,
                         0 if p.ext8 is None else p.ext8.ctypes.data,
                         float(self.extrapolation_value)))
        return _k.axis_passes_call(spec, self.n_threads, tuple(keep))

    def _ensure_passes(self):
        if self.passes:
            return
        shape = list(self.in_shape)
        for a in sorted(self.tables):
            idx, w, ext = self.tables[a]
            self.passes.append(_Pass(a, tuple(shape), self.out_shape[a], idx, w, ext))
            shape[a] = self.out_shape[a]

    def compute(self, xs, ys, scratch=()):
        x = np.ascontiguousarray(xs[0])
        self.bind([x] + list(xs[1:]), ys, scratch)()


@register("Resize", since_version=11)
@register("Resize", since_version=13)
@register("Resize", since_version=18)
@register("Resize", since_version=19)
class Resize(_ResizeBase):
    """Resize 11+: inputs X, roi, scales, sizes (each optional after X)."""

    def _inputs(self, inputs):
        roi = self._present(inputs, 1, "roi") if self.ctm == "tf_crop_and_resize" else None
        return roi, self._present(inputs, 2, "scales"), self._present(inputs, 3, "sizes")


@register("Resize", since_version=10)
@register("Upsample", since_version=9)
class ResizeLegacy(_ResizeBase):
    """Resize-10 and Upsample-9: inputs X, scales."""
    legacy = True

    def _inputs(self, inputs):
        return None, self._present(inputs, 1, "scales"), None


@register("Upsample", since_version=7)
class Upsample7(_ResizeBase):
    """Upsample-7: the `scales` attribute."""
    legacy = True

    def setup(self):
        super().setup()
        v = self.attr("scales")
        if v is None:
            raise self.error("attribute 'scales' is required")
        if not isinstance(v, (list, tuple)) or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) for s in v):
            raise self.error(f"attribute 'scales' must be a list of floats, got {v!r}")
        self.scales_attr = np.array(v, np.float32)

    def _inputs(self, inputs):
        return None, self.scales_attr, None
