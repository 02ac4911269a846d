# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pooling kernels: max (with ONNX indices), average (count_include_pad 0/1), Lp.

Design: layout N·C planes of (D, H, W) (1-D/2-D callers pad with size-1 dims);
parallel over the N·C planes (prange, static), GIL released.  Per output
position the valid kernel range of each axis is computed once
([lo, hi): the taps that land inside the input), so the inner loops carry no
bounds test; padding never contributes (max ignores it, Lp adds zeros).
A window with no real tap gives the lowest finite value (index -1) for max
and 0 for average, as onnxruntime does.  The
average's divisor is the number of real taps (count_include_pad=0) or of the
taps inside input + explicit pads (count_include_pad=1: cells that only
ceil_mode reaches never count, as in the ONNX reference and onnxruntime).
Accumulation in double.  Global pooling is the same kernel with a
whole-plane window.
"""
from cython.parallel cimport prange
from libc.math cimport fabs, pow, sqrt, INFINITY
from libc.float cimport FLT_MAX, DBL_MAX

cimport numpy as cnp
import numpy as np


cdef inline void _taps(long o, long stride, long pad, long dil, long k, long n_in, long pad_end,
                       long* lo, long* hi, long* n_incl) noexcept nogil:
    # taps j in [lo, hi) have 0 <= o*stride - pad + j*dil < n_in;
    # n_incl = taps with position < n_in + pad_end (and >= -pad, always true)
    cdef long start = o * stride - pad
    cdef long a = 0, b
    if start < 0:
        a = (-start + dil - 1) // dil
    if n_in - 1 - start < 0:
        b = 0
    else:
        b = (n_in - 1 - start) // dil + 1
    if b > k:
        b = k
    if a > k:
        a = k
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b
    if n_in + pad_end - 1 - start < 0:
        n_incl[0] = 0
    else:
        b = (n_in + pad_end - 1 - start) // dil + 1
        n_incl[0] = b if b < k else k


cdef void _pool_plane(const real* x, real* y, long long* ind, long long base,
                      const long* in_sp, const long* out_sp, const long* kernel,
                      const long* strides, const long* pads_begin, const long* pads_end,
                      const long* dil, int mode, double p, int storage_order) noexcept nogil:
    cdef long D = in_sp[0], H = in_sp[1], W = in_sp[2]
    cdef long od, oh, ow, jd, jh, jw, dlo, dhi, dn, hlo, hhi, hn, wlo, whi, wn
    cdef long idd, ih, iw, best_i, cnt
    cdef double acc, v, best
    cdef real xv, bx
    cdef long yi = 0
    for od in range(out_sp[0]):
        _taps(od, strides[0], pads_begin[0], dil[0], kernel[0], D, pads_end[0], &dlo, &dhi, &dn)
        for oh in range(out_sp[1]):
            _taps(oh, strides[1], pads_begin[1], dil[1], kernel[1], H, pads_end[1],
                  &hlo, &hhi, &hn)
            for ow in range(out_sp[2]):
                _taps(ow, strides[2], pads_begin[2], dil[2], kernel[2], W, pads_end[2],
                      &wlo, &whi, &wn)
                if mode == 0:
                    bx = -INFINITY
                    best_i = -1
                    for jd in range(dlo, dhi):
                        idd = od * strides[0] - pads_begin[0] + jd * dil[0]
                        for jh in range(hlo, hhi):
                            ih = oh * strides[1] - pads_begin[1] + jh * dil[1]
                            for jw in range(wlo, whi):
                                iw = ow * strides[2] - pads_begin[2] + jw * dil[2]
                                xv = x[(idd * H + ih) * W + iw]
                                if xv > bx or best_i < 0:
                                    bx = xv
                                    if ind != NULL:
                                        if storage_order == 0:
                                            best_i = (idd * H + ih) * W + iw
                                        else:
                                            best_i = idd + ih * D + iw * D * H
                                    else:
                                        best_i = 0
                    if dlo == dhi or hlo == hhi or wlo == whi:
                        # window entirely in padding: the lowest finite value, index -1
                        # (onnxruntime's convention)
                        if real is float:
                            bx = -FLT_MAX
                        else:
                            bx = -DBL_MAX
                        best_i = -1
                    y[yi] = bx
                    if ind != NULL:
                        ind[yi] = base + best_i if best_i >= 0 else -1
                else:
                    acc = 0
                    for jd in range(dlo, dhi):
                        idd = od * strides[0] - pads_begin[0] + jd * dil[0]
                        for jh in range(hlo, hhi):
                            ih = oh * strides[1] - pads_begin[1] + jh * dil[1]
                            for jw in range(wlo, whi):
                                iw = ow * strides[2] - pads_begin[2] + jw * dil[2]
                                v = x[(idd * H + ih) * W + iw]
                                if mode == 3:
                                    if p == 2.0:
                                        acc = acc + v * v
                                    elif p == 1.0:
                                        acc = acc + fabs(v)
                                    else:
                                        acc = acc + pow(fabs(v), p)
                                else:
                                    acc = acc + v
                    if mode == 3:
                        if p == 2.0:
                            y[yi] = <real>sqrt(acc)
                        elif p == 1.0:
                            y[yi] = <real>acc
                        else:
                            y[yi] = <real>pow(acc, 1.0 / p)
                    else:
                        if mode == 2:
                            cnt = dn * hn * wn
                        else:
                            cnt = (dhi - dlo) * (hhi - hlo) * (whi - wlo)
                        y[yi] = <real>(acc / <double>cnt) if cnt > 0 else 0
                yi = yi + 1


cdef void pool_3d_c(const real* x, real* y, long long* indices, long NC,
                    const long* in_sp, const long* out_sp, const long* kernel,
                    const long* strides, const long* pads_begin, const long* pads_end,
                    const long* dilations, int mode, double p, int storage_order,
                    int n_threads) noexcept nogil:
    cdef long P = in_sp[0] * in_sp[1] * in_sp[2]
    cdef long Q = out_sp[0] * out_sp[1] * out_sp[2]
    cdef long c
    for c in prange(NC, schedule='static', num_threads=n_threads):
        _pool_plane(x + c * P, y + c * Q, (indices + c * Q) if indices != NULL else NULL,
                    <long long>c * P, in_sp, out_sp, kernel, strides, pads_begin, pads_end,
                    dilations, mode, p, storage_order)


def pool_3d(const real[:, :, :, ::1] x, real[:, :, :, ::1] y, indices, kernel, strides,
            pads_begin, pads_end, dilations, int mode, double p=2.0, int storage_order=0,
            int n_threads=1):
    """x (NC, D, H, W) -> y (NC, OD, OH, OW); indices (NC, OD, OH, OW) int64 or None.
    mode: 0 max, 1 average excluding pads, 2 average including pads, 3 Lp."""
    cdef long in_sp[3]
    cdef long out_sp[3]
    cdef long k[3]
    cdef long s[3]
    cdef long pb[3]
    cdef long pe[3]
    cdef long d[3]
    cdef long long[:, :, :, ::1] ind
    cdef long long* ip = NULL
    cdef int i
    if x.shape[0] != y.shape[0]:
        raise ValueError("pool_3d: x and y disagree on N*C")
    for i in range(3):
        in_sp[i] = x.shape[1 + i]
        out_sp[i] = y.shape[1 + i]
        k[i] = kernel[i]
        s[i] = strides[i]
        pb[i] = pads_begin[i]
        pe[i] = pads_end[i]
        d[i] = dilations[i]
        if k[i] <= 0 or s[i] <= 0 or d[i] <= 0:
            raise ValueError("pool_3d: kernel, strides and dilations must be positive")
    if mode < 0 or mode > 3:
        raise ValueError("pool_3d: mode must be 0..3")
    if indices is not None:
        if mode != 0:
            raise ValueError("pool_3d: indices only for max pooling")
        ind = indices
        if (ind.shape[0] != y.shape[0] or ind.shape[1] != y.shape[1]
                or ind.shape[2] != y.shape[2] or ind.shape[3] != y.shape[3]):
            raise ValueError("pool_3d: indices shape differs from y")
        ip = &ind[0, 0, 0, 0]
    if y.shape[0] * out_sp[0] * out_sp[1] * out_sp[2] == 0:
        return
    with nogil:
        pool_3d_c(&x[0, 0, 0, 0], &y[0, 0, 0, 0], ip, x.shape[0], in_sp, out_sp, k, s, pb, pe,
                  d, mode, p, storage_order, n_threads)
