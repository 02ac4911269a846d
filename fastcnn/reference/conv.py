"""Slow, obviously-correct numpy convolution and pooling: the test oracle.

Written from the definitions, one kernel offset at a time, accumulating in
float64.  Every function takes N-D tensors (N, C, *spatial) with 1, 2 or 3
spatial dims and explicit padding in ONNX order: all begins, then all ends
(`pads=[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`).  auto_pad is the
op layer's business (`fastcnn.ops.conv_util`); pass the resolved pads here.

    conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1)
        y[n, m, o] = b[m] + sum_{c, k} xpad[n, g*Cg + c, o*s + k*d] * w[m, c, k]
        with g = m // (M/group)                        (cross-correlation)
    conv_transpose(x, w, b=None, strides=None, pads=None, dilations=None,
                   group=1, output_padding=None)
        the adjoint of conv: y_full[n, g*Mg + m, i*s + k*d] += x[n, g*Cg + c, i] * w[g*Cg + c, m, k]
        then y = y_full[pads_begin : full + output_padding - pads_end]
        (negative pads are allowed: they extend the output with zeros)
    max_pool(x, kernel_shape, strides, pads, dilations, ceil_mode, storage_order,
             return_indices=False) -> y  or  (y, indices)
    average_pool(x, kernel_shape, strides, pads, dilations, ceil_mode, count_include_pad)
    lp_pool(x, kernel_shape, strides, pads, dilations, ceil_mode, p=2)
    pool_output_shape(in_spatial, kernel_shape, strides, pads, dilations, ceil_mode)

Pooling windows follow ONNX: with ceil_mode the output size is rounded up,
but a window that would start inside the right padding is dropped.  Max
ignores padding; average divides by the count of real elements
(count_include_pad=0) or of elements inside input+explicit pads
(count_include_pad=1; the extra cells added by ceil_mode never count); Lp is
(sum |x|^p)^(1/p) over the real elements (padding contributes zeros).
A window with no real element (possible with large pads and dilations) gives,
as in onnxruntime, the dtype's lowest value and index -1 for max, 0 for average.
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["conv", "conv_transpose", "max_pool", "average_pool", "lp_pool", "pool_output_shape"]


def _defaults(n, strides, pads, dilations):
    strides = [1] * n if strides is None else [int(s) for s in strides]
    pads = [0] * (2 * n) if pads is None else [int(p) for p in pads]
    dilations = [1] * n if dilations is None else [int(d) for d in dilations]
    assert len(strides) == n and len(pads) == 2 * n and len(dilations) == n
    return strides, pads, dilations


def conv(x, w, b=None, strides=None, pads=None, dilations=None, group=1):
    """N-D grouped convolution (ONNX Conv), float64 accumulation, returns x.dtype."""
    x = np.asarray(x)
    w = np.asarray(w)
    n = x.ndim - 2
    strides, pads, dilations = _defaults(n, strides, pads, dilations)
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    ks = w.shape[2:]
    assert Cg * group == C and M % group == 0, "channel/group mismatch"
    Mg = M // group
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(pads[i], pads[n + i]) for i in range(n)])
    out = [(xp.shape[2 + i] - ((ks[i] - 1) * dilations[i] + 1)) // strides[i] + 1 for i in range(n)]
    assert all(o > 0 for o in out), "kernel larger than padded input"
    y = np.zeros((N, M, *out), np.float64)
    w64 = w.astype(np.float64)
    for g in range(group):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        for off in itertools.product(*[range(k) for k in ks]):
            sl = tuple(slice(off[i] * dilations[i],
                             off[i] * dilations[i] + (out[i] - 1) * strides[i] + 1, strides[i])
                       for i in range(n))
            patch = xg[(slice(None), slice(None)) + sl]            # (N, Cg, *out)
            wk = w64[(slice(g * Mg, (g + 1) * Mg), slice(None)) + tuple(off)]   # (Mg, Cg)
            y[:, g * Mg:(g + 1) * Mg] += np.einsum("nc...,mc->nm...", patch, wk)
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, M) + (1,) * n)
    return y.astype(x.dtype)


def conv_transpose(x, w, b=None, strides=None, pads=None, dilations=None, group=1,
                   output_padding=None):
    """N-D grouped transposed convolution (ONNX ConvTranspose) with explicit pads."""
    x = np.asarray(x)
    w = np.asarray(w)
    n = x.ndim - 2
    strides, pads, dilations = _defaults(n, strides, pads, dilations)
    output_padding = [0] * n if output_padding is None else [int(p) for p in output_padding]
    N, C = x.shape[:2]
    assert w.shape[0] == C and C % group == 0, "channel/group mismatch"
    Cg = C // group
    Mg = w.shape[1]
    M = Mg * group
    ks = w.shape[2:]
    ins = x.shape[2:]
    out = [strides[i] * (ins[i] - 1) + output_padding[i] + (ks[i] - 1) * dilations[i] + 1
           - pads[i] - pads[n + i] for i in range(n)]
    assert all(o > 0 for o in out), "empty output"
    y = np.zeros((N, M, *out), np.float64)
    x64 = x.astype(np.float64)
    w64 = w.astype(np.float64)
    for off in itertools.product(*[range(k) for k in ks]):
        # input i lands on output i*s + off*d - pads_begin; keep those inside [0, out)
        src, dst = [], []
        empty = False
        for i in range(n):
            s, base = strides[i], off[i] * dilations[i] - pads[i]
            lo = max(0, -(-(-base) // s))           # smallest i with i*s + base >= 0
            hi = min(ins[i], (out[i] - 1 - base) // s + 1) if out[i] - 1 - base >= 0 else 0
            if hi <= lo:
                empty = True
                break
            src.append(slice(lo, hi))
            dst.append(slice(lo * s + base, (hi - 1) * s + base + 1, s))
        if empty:
            continue
        for g in range(group):
            xs = x64[(slice(None), slice(g * Cg, (g + 1) * Cg)) + tuple(src)]       # (N, Cg, ...)
            wk = w64[(slice(g * Cg, (g + 1) * Cg), slice(None)) + tuple(off)]       # (Cg, Mg)
            y[(slice(None), slice(g * Mg, (g + 1) * Mg)) + tuple(dst)] += \
                np.einsum("nc...,cm->nm...", xs, wk)
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, M) + (1,) * n)
    return y.astype(x.dtype)


def pool_output_shape(in_spatial, kernel_shape, strides=None, pads=None, dilations=None,
                      ceil_mode=False):
    """ONNX pooling output size; with ceil_mode, windows starting in the right padding drop."""
    n = len(in_spatial)
    strides, pads, dilations = _defaults(n, strides, pads, dilations)
    out = []
    for i in range(n):
        span = in_spatial[i] + pads[i] + pads[n + i] - ((kernel_shape[i] - 1) * dilations[i] + 1)
        o = (-(-span // strides[i]) if ceil_mode else span // strides[i]) + 1
        if ceil_mode and (o - 1) * strides[i] >= in_spatial[i] + pads[i]:
            o -= 1
        out.append(int(o))
    return out


def _padded(x, kernel_shape, strides, pads, dilations, ceil_mode, fill):
    """x padded with `fill` by the explicit pads and by the extra cells ceil_mode windows
    reach; returns (padded, out_spatial, extra per axis)."""
    n = x.ndim - 2
    strides, pads, dilations = _defaults(n, strides, pads, dilations)
    out = pool_output_shape(x.shape[2:], kernel_shape, strides, pads, dilations, ceil_mode)
    extra = [max(0, (out[i] - 1) * strides[i] + (kernel_shape[i] - 1) * dilations[i] + 1
                 - (x.shape[2 + i] + pads[i] + pads[n + i])) for i in range(n)]
    width = [(0, 0), (0, 0)] + [(pads[i], pads[n + i] + extra[i]) for i in range(n)]
    return np.pad(x.astype(np.float64), width, constant_values=fill), out, extra


def _windows(xp, kernel_shape, strides, dilations, out):
    """Stack of every window element of a padded array: (K, N, C, *out), row-major kernel order."""
    n = xp.ndim - 2
    strides, _, dilations = _defaults(n, strides, None, dilations)
    stack = []
    for off in itertools.product(*[range(k) for k in kernel_shape]):
        sl = tuple(slice(off[i] * dilations[i],
                         off[i] * dilations[i] + (out[i] - 1) * strides[i] + 1, strides[i])
                   for i in range(n))
        stack.append(xp[(slice(None), slice(None)) + sl])
    return np.stack(stack)


def max_pool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False,
             storage_order=0, return_indices=False):
    """Max over each window's real elements; indices are flat offsets into x
    (row-major, or column-major over the spatial dims when storage_order=1)."""
    x = np.asarray(x)
    xp, out, _ = _padded(x, kernel_shape, strides, pads, dilations, ceil_mode, np.nan)
    win = _windows(xp, kernel_shape, strides, dilations, out)
    empty = np.isnan(win).all(axis=0)
    lowest = np.finfo(x.dtype).min if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    y = np.where(empty, lowest, np.nanmax(np.where(empty[None], 0, win), axis=0)).astype(x.dtype)
    if not return_indices:
        return y
    N, C = x.shape[:2]
    sp = x.shape[2:]
    coords = np.indices(sp)
    if storage_order == 0:
        flat = np.ravel_multi_index(coords, sp)
    else:
        flat = np.zeros(sp, np.int64)
        mult = 1
        for i in range(len(sp)):
            flat = flat + coords[i] * mult
            mult *= sp[i]
    size = int(np.prod(sp))
    idx = (np.arange(N * C).reshape(N, C, *([1] * len(sp))) * size + flat).astype(np.float64)
    ip, _, _ = _padded(idx, kernel_shape, strides, pads, dilations, ceil_mode, np.nan)
    iwin = _windows(ip, kernel_shape, strides, dilations, out)
    k = np.argmax(np.where(np.isnan(win), -np.inf, win), axis=0)
    ind = np.where(empty, -1, np.take_along_axis(iwin, k[None], axis=0)[0])
    return y, ind.astype(np.int64)


def average_pool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False,
                 count_include_pad=0):
    """Window sum / count: count = real taps, or (count_include_pad) taps inside
    input + explicit pads on every axis."""
    x = np.asarray(x)
    n = x.ndim - 2
    xp, out, extra = _padded(x, kernel_shape, strides, pads, dilations, ceil_mode, 0.0)
    total = _windows(xp, kernel_shape, strides, dilations, out).sum(axis=0)
    if count_include_pad:
        mask = np.ones((1, 1) + xp.shape[2:])
        for i in range(n):
            m = np.ones(xp.shape[2 + i])
            if extra[i]:
                m[-extra[i]:] = 0          # cells only ceil_mode reaches never count
            mask = mask * m.reshape((1, 1) + (1,) * i + (-1,) + (1,) * (n - 1 - i))
    else:
        mask, _, _ = _padded(np.ones((1, 1) + x.shape[2:]), kernel_shape, strides, pads,
                             dilations, ceil_mode, 0.0)
    count = _windows(mask, kernel_shape, strides, dilations, out).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, 0).astype(x.dtype)


def lp_pool(x, kernel_shape, strides=None, pads=None, dilations=None, ceil_mode=False, p=2):
    """(sum |x|^p)^(1/p) over each window's real elements."""
    x = np.asarray(x)
    xp, out, _ = _padded(x, kernel_shape, strides, pads, dilations, ceil_mode, 0.0)
    win = _windows(np.abs(xp) ** p, kernel_shape, strides, dilations, out)
    return (win.sum(axis=0) ** (1.0 / p)).astype(x.dtype)
