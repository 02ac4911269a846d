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
Rows are the unit of work: for each output row the clipped edge columns go
one output at a time (accumulating in double), the interior columns tap by tap
with the columns innermost (vectorizable, accumulating in the output dtype).
Max with indices and Lp with p ∉ {1, 2} take the per-output path everywhere.
Global pooling is the same kernel with a whole-plane window.
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


cdef inline void _pool_one(const real* x, real* y, long long* ind, long long base, long yi,
                           long D, long H, long W, long d0, long h0, long w0,
                           long sdd, long sdh, long sdw,
                           long dlo, long dhi, long dn, long hlo, long hhi, long hn,
                           long wlo, long whi, long wn,
                           int mode, double p, int storage_order) noexcept nogil:
    """One output from its tap ranges (any mode, clipped or not)."""
    cdef long jd, jh, jw, best_j, cnt
    cdef double acc, v
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef real xv, bx
    cdef const real* xh
    cdef const real* xw
    # x at the window's (virtual) origin; taps are origin + j·dil
    cdef const real* xd = x + (d0 * H + h0) * W + w0
    if dlo == dhi or hlo == hhi or wlo == whi:
        if mode == 0:
            # window entirely in padding: the lowest finite value, index -1 (onnxruntime)
            if real is float:
                y[yi] = -FLT_MAX
            else:
                y[yi] = -DBL_MAX
            if ind != NULL:
                ind[yi] = -1
        else:
            y[yi] = 0
        return
    if mode == 0:
        best_j = dlo * sdd + hlo * sdh + wlo * sdw
        bx = xd[best_j]
        for jd in range(dlo, dhi):
            for jh in range(hlo, hhi):
                for jw in range(wlo, whi):
                    xv = xd[jd * sdd + jh * sdh + jw * sdw]
                    if xv > bx:          # first maximum in scan order wins ties
                        bx = xv
                        best_j = jd * sdd + jh * sdh + jw * sdw
        y[yi] = bx
        if ind != NULL:
            best_j = best_j + (d0 * H + h0) * W + w0     # offset in the plane
            if storage_order == 0:
                ind[yi] = base + best_j
            else:
                ind[yi] = base + (best_j // (H * W)) + ((best_j // W) % H) * D \
                    + (best_j % W) * D * H
        return
    acc = 0
    for jd in range(dlo, dhi):
        xh = xd + jd * sdd
        for jh in range(hlo, hhi):
            xw = xh + jh * sdh
            if mode == 3:
                if p == 2.0:
                    for jw in range(wlo, whi):
                        v = xw[jw * sdw]
                        acc = acc + v * v
                elif p == 1.0:
                    for jw in range(wlo, whi):
                        acc = acc + fabs(xw[jw * sdw])
                else:
                    for jw in range(wlo, whi):
                        acc = acc + pow(fabs(xw[jw * sdw]), p)
            elif sdw == 1:
                # four independent chains: the sum is latency-bound otherwise
                jw = wlo
                while jw + 4 <= whi:
                    a0 = a0 + xw[jw]
                    a1 = a1 + xw[jw + 1]
                    a2 = a2 + xw[jw + 2]
                    a3 = a3 + xw[jw + 3]
                    jw = jw + 4
                while jw < whi:
                    acc = acc + xw[jw]
                    jw = jw + 1
            else:
                for jw in range(wlo, whi):
                    acc = acc + xw[jw * sdw]
    acc = acc + ((a0 + a1) + (a2 + a3))
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
        y[yi] = <real>(acc / <double>cnt)


cdef inline void _row_tap(real* yr, const real* xr, long a, long b, long SW, int mode,
                          double p) noexcept nogil:
    cdef long ow
    cdef real xv
    if mode == 0:
        for ow in range(a, b):
            xv = xr[ow * SW]
            yr[ow] = xv if xv > yr[ow] else yr[ow]
    elif mode == 3 and p == 2.0:
        for ow in range(a, b):
            xv = xr[ow * SW]
            yr[ow] = yr[ow] + xv * xv
    elif mode == 3:
        for ow in range(a, b):
            yr[ow] = yr[ow] + fabs(xr[ow * SW])
    else:
        for ow in range(a, b):
            yr[ow] = yr[ow] + xr[ow * SW]


cdef inline void _row_tap_unit(real* yr, const real* xr, long a, long b, int mode,
                               double p) noexcept nogil:
    # stride 1: contiguous loads, the compiler vectorizes these loops
    cdef long ow
    cdef real xv
    if mode == 0:
        for ow in range(a, b):
            xv = xr[ow]
            yr[ow] = xv if xv > yr[ow] else yr[ow]
    elif mode == 3 and p == 2.0:
        for ow in range(a, b):
            xv = xr[ow]
            yr[ow] = yr[ow] + xv * xv
    elif mode == 3:
        for ow in range(a, b):
            yr[ow] = yr[ow] + fabs(xr[ow])
    else:
        for ow in range(a, b):
            yr[ow] = yr[ow] + xr[ow]


cdef void _pool_plane(const real* x, real* y, long long* ind, long long base,
                      const long* in_sp, const long* out_sp, const long* kernel,
                      const long* strides, const long* pads_begin, const long* pads_end,
                      const long* dil, int mode, double p, int storage_order) noexcept nogil:
    cdef long D = in_sp[0], H = in_sp[1], W = in_sp[2]
    cdef long OW = out_sp[2], KW = kernel[2], SW = strides[2], PW = pads_begin[2]
    cdef long sdd = dil[0] * H * W, sdh = dil[1] * W, sdw = dil[2]
    cdef long od, oh, ow, jd, jh, jw, dlo, dhi, dn, hlo, hhi, hn, wlo, whi, wn
    cdef long d0, h0, a, b, cnt
    cdef real xv, acc
    cdef real scale
    cdef real* yr
    cdef const real* xr
    cdef bint fast
    # interior columns [a, b): every kernel column lands inside the row
    a = (PW + SW - 1) // SW
    if W - 1 + PW - (KW - 1) * sdw < 0:
        b = 0
    else:
        b = (W - 1 + PW - (KW - 1) * sdw) // SW + 1
    if b > OW:
        b = OW
    if a > b:
        a = b
    # the row path: taps outer, output columns inner (vectorizable); max without indices,
    # averages and L1/L2.  Everything else, and the clipped edge columns, go one by one.
    fast = (mode == 0 and ind == NULL) or mode == 1 or mode == 2 or \
        (mode == 3 and (p == 1.0 or p == 2.0))
    if OW == 1 and out_sp[0] == 1 and out_sp[1] == 1:
        fast = False      # one window per plane (global pooling): contiguous, double accumulator
    if not fast:
        a = b = 0
    for od in range(out_sp[0]):
        _taps(od, strides[0], pads_begin[0], dil[0], kernel[0], D, pads_end[0], &dlo, &dhi, &dn)
        d0 = od * strides[0] - pads_begin[0]
        for oh in range(out_sp[1]):
            _taps(oh, strides[1], pads_begin[1], dil[1], kernel[1], H, pads_end[1],
                  &hlo, &hhi, &hn)
            h0 = oh * strides[1] - pads_begin[1]
            yr = y + (od * out_sp[1] + oh) * OW
            for ow in range(OW):
                if ow == a:
                    if b > a:
                        break
                _taps(ow, SW, PW, sdw, KW, W, pads_end[2], &wlo, &whi, &wn)
                _pool_one(x, y, ind, base, (od * out_sp[1] + oh) * OW + ow, D, H, W,
                          d0, h0, ow * SW - PW, sdd, sdh, sdw, dlo, dhi, dn, hlo, hhi, hn,
                          wlo, whi, wn, mode, p, storage_order)
            if b <= a:
                continue
            for ow in range(b, OW):
                _taps(ow, SW, PW, sdw, KW, W, pads_end[2], &wlo, &whi, &wn)
                _pool_one(x, y, ind, base, (od * out_sp[1] + oh) * OW + ow, D, H, W,
                          d0, h0, ow * SW - PW, sdd, sdh, sdw, dlo, dhi, dn, hlo, hhi, hn,
                          wlo, whi, wn, mode, p, storage_order)
            # interior: taps outer, columns inner
            if dlo == dhi or hlo == hhi:
                for ow in range(a, b):
                    if mode == 0:
                        if real is float:
                            yr[ow] = -FLT_MAX
                        else:
                            yr[ow] = -DBL_MAX
                    else:
                        yr[ow] = 0
                continue
            if mode == 0:
                xr = x + ((d0 + dlo * dil[0]) * H + h0 + hlo * dil[1]) * W - PW
                for ow in range(a, b):
                    yr[ow] = xr[ow * SW]
            else:
                for ow in range(a, b):
                    yr[ow] = 0
            for jd in range(dlo, dhi):
                for jh in range(hlo, hhi):
                    for jw in range(KW):
                        xr = x + ((d0 + jd * dil[0]) * H + h0 + jh * dil[1]) * W - PW + jw * sdw
                        if SW == 1:
                            _row_tap_unit(yr, xr, a, b, mode, p)
                        else:
                            _row_tap(yr, xr, a, b, SW, mode, p)
            if mode == 1 or mode == 2:
                if mode == 2:
                    cnt = dn * hn * KW
                else:
                    cnt = (dhi - dlo) * (hhi - hlo) * KW
                scale = <real>(1.0 / <double>cnt)
                for ow in range(a, b):
                    yr[ow] = yr[ow] * scale
            elif mode == 3 and p == 2.0:
                for ow in range(a, b):
                    yr[ow] = sqrt(yr[ow])


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


# ---- native executor step (executor.pxd): C function + argument block, run without the GIL
from libc.stdlib cimport malloc, free
from fastcnn._kernels.executor cimport Call, call_fn, make_c_call

ctypedef struct pool_args_t:
    const void* x
    void* y
    long long* ind
    long nc
    long in_sp[3]
    long out_sp[3]
    long k[3]
    long s[3]
    long pb[3]
    long pe[3]
    long d[3]
    int mode
    double p
    int storage_order
    int n_threads
    int is_double


cdef void _pool_step(void* args) noexcept nogil:
    cdef pool_args_t* a = <pool_args_t*>args
    if a.nc == 0 or a.out_sp[0] * a.out_sp[1] * a.out_sp[2] == 0:
        return
    if a.is_double:
        pool_3d_c(<const double*>a.x, <double*>a.y, a.ind, a.nc, a.in_sp, a.out_sp, a.k, a.s,
                  a.pb, a.pe, a.d, a.mode, a.p, a.storage_order, a.n_threads)
    else:
        pool_3d_c(<const float*>a.x, <float*>a.y, a.ind, a.nc, a.in_sp, a.out_sp, a.k, a.s,
                  a.pb, a.pe, a.d, a.mode, a.p, a.storage_order, a.n_threads)


def pool_call(x, y, indices, kernel, strides, pads_begin, pads_end, dilations, int mode,
              double p=2.0, int storage_order=0, int n_threads=1):
    """pool_3d as a native executor step (same arguments; arrays checked here, once)."""
    cdef cnp.ndarray xa = x
    cdef cnp.ndarray ya = y
    cdef cnp.ndarray ia
    cdef int i
    if xa.ndim != 4 or ya.ndim != 4 or xa.dtype != ya.dtype or \
            xa.dtype not in (np.float32, np.float64) or \
            not xa.flags.c_contiguous or not ya.flags.c_contiguous or \
            not ya.flags.writeable or xa.shape[0] != ya.shape[0]:
        raise ValueError("pool_call: x and y must be C-contiguous 4-D float32/float64 "
                         "arrays of one dtype with the same N*C")
    if mode < 0 or mode > 3:
        raise ValueError("pool_call: mode must be 0..3")
    cdef pool_args_t* a = <pool_args_t*>malloc(sizeof(pool_args_t))
    if a == NULL:
        raise MemoryError()
    a.ind = NULL
    if indices is not None:
        ia = indices
        if mode != 0 or ia.dtype != np.int64 or not ia.flags.c_contiguous or ia.ndim != 4 or \
                ia.shape[0] != ya.shape[0] or ia.shape[1] != ya.shape[1] or \
                ia.shape[2] != ya.shape[2] or ia.shape[3] != ya.shape[3]:
            free(a)
            raise ValueError("pool_call: indices must be a C-contiguous int64 array shaped "
                             "like y (max pooling only)")
        a.ind = <long long*>cnp.PyArray_DATA(ia)
    a.x = cnp.PyArray_DATA(xa)
    a.y = cnp.PyArray_DATA(ya)
    a.nc = xa.shape[0]
    for i in range(3):
        a.in_sp[i] = xa.shape[1 + i]
        a.out_sp[i] = ya.shape[1 + i]
        a.k[i] = kernel[i]
        a.s[i] = strides[i]
        a.pb[i] = pads_begin[i]
        a.pe[i] = pads_end[i]
        a.d[i] = dilations[i]
        if a.k[i] <= 0 or a.s[i] <= 0 or a.d[i] <= 0:
            free(a)
            raise ValueError("pool_call: kernel, strides and dilations must be positive")
    a.mode, a.p, a.storage_order, a.n_threads = mode, p, storage_order, n_threads
    a.is_double = xa.dtype == np.float64
    return make_c_call(_pool_step, a, (x, y, indices))


# ---- channel-blocked (NCHWc, block 8) pooling: src/pool_nchwc.h row functions
from cython.parallel cimport parallel

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()
    unsigned int fastcnn_ftz_enter()
    void fastcnn_ftz_leave(unsigned int old)

cdef extern from "pool_nchwc.h" nogil:
    ctypedef void (*fcpool_row_fn)(const float*, float*, const fcpool_geom_t*, long, long, long,
                                   int)
    fcpool_row_fn fcpool_pick_row(int isa, const fcpool_geom_t* g)

B = 8
cdef long _B = 8
cdef int _isa = fastcnn_cpu_level()
cdef int _isa_hw = _isa
_ISA_NAMES = {"portable": 0, "avx2": 1, "avx512": 2}


def set_isa(name):
    """Force the blocked kernels' ISA: 'portable', 'avx2', 'avx512' (runs the AVX2 rows:
    the block is 8 lanes) or 'auto'.  More than the CPU supports raises ValueError.
    Returns the previous name."""
    global _isa
    prev = get_isa()
    if name == "auto":
        _isa = _isa_hw
        return prev
    if name not in _ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}; expected one of {sorted(_ISA_NAMES)} or 'auto'")
    if _ISA_NAMES[name] > _isa_hw:
        raise ValueError(f"ISA {name!r} not supported by this CPU")
    _isa = _ISA_NAMES[name]
    return prev


def get_isa():
    """Name of the ISA the blocked kernels use."""
    for k, v in _ISA_NAMES.items():
        if v == _isa:
            return k
    return "portable"


cdef inline long _row_chunks(long planes, long oh, int nt) noexcept nogil:
    """Rows of a plane are cut into chunks only when planes alone cannot keep nt
    threads evenly busy (>= 8 items per thread)."""
    cdef long want, c
    if nt <= 1:
        return 1
    want = 8 * nt
    if planes >= want:
        return 1
    c = (want + planes - 1) // planes
    if c > oh:
        c = oh
    return c


cdef inline void _nchwc_item(long it, const float* x, float* y, const fcpool_geom_t* g,
                             long channels, fcpool_row_fn fn, long n_chunks) noexcept nogil:
    cdef long c = it % n_chunks
    cdef long t = it // n_chunks
    cdef long oy = c * g.oh // n_chunks
    cdef long oy_end = (c + 1) * g.oh // n_chunks
    cdef long oz = t % g.od
    t = t // g.od                      # (n, block) plane
    cdef long cb = t % g.cb
    cdef int nv = 8
    if channels - cb * 8 < 8:
        nv = <int>(channels - cb * 8)
    fn(x + t * (g.id * g.ih * g.iw * _B), y + t * (g.od * g.oh * g.ow * _B), g, oz, oy, oy_end,
       nv)


cdef void pool_nchwc_c(const float* x, float* y, const fcpool_geom_t* g, long channels,
                       int n_threads) noexcept nogil:
    cdef fcpool_row_fn fn = fcpool_pick_row(_isa, g)
    cdef long planes = g.n * g.cb * g.od
    cdef int nt = n_threads
    cdef long it, n_chunks, total
    cdef unsigned int ftz = 0
    cdef bint arith = g.mode != POOL_MAX      # sums of denormals: FTZ/DAZ in the workers
    if planes == 0 or g.oh == 0 or g.ow == 0:
        return
    n_chunks = _row_chunks(planes, g.oh, nt)
    total = planes * n_chunks
    if nt <= 1:
        if arith:
            ftz = fastcnn_ftz_enter()
        for it in range(total):
            _nchwc_item(it, x, y, g, channels, fn, n_chunks)
        if arith:
            fastcnn_ftz_leave(ftz)
        return
    with parallel(num_threads=nt):
        if arith:
            ftz = fastcnn_ftz_enter()
        for it in prange(total, schedule='static'):
            _nchwc_item(it, x, y, g, channels, fn, n_chunks)
        if arith:
            fastcnn_ftz_leave(ftz)


cdef int _nchwc_geom(fcpool_geom_t* g, x, y, in_dhw, out_dhw, kernel, strides, pads_begin,
                     pads_end, dilations, int mode, double p, long channels) except -1:
    """Check blocked x (N, CB, S_in, 8) / y (N, CB, S_out, 8) float32 C-contiguous against
    the geometry and fill g."""
    cdef cnp.ndarray xa = x
    cdef cnp.ndarray ya = y
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray) or \
            xa.dtype != np.float32 or ya.dtype != np.float32 or \
            not xa.flags.c_contiguous or not ya.flags.c_contiguous or not ya.flags.writeable:
        raise ValueError("pool_nchwc: x and y must be C-contiguous float32 arrays")
    if xa.ndim != 4 or ya.ndim != 4 or xa.shape[3] != 8 or ya.shape[3] != 8 or \
            xa.shape[0] != ya.shape[0] or xa.shape[1] != ya.shape[1]:
        raise ValueError("pool_nchwc: x and y must be blocked (N, CB, S, 8) with the same N, CB")
    if mode < 0 or mode > 3:
        raise ValueError("pool_nchwc: mode must be 0..3")
    if mode == POOL_LP and not p > 0:
        raise ValueError("pool_nchwc: p must be positive")
    cdef long i_[3]
    cdef long o_[3]
    cdef long k_[3]
    cdef long s_[3]
    cdef long pb_[3]
    cdef long pe_[3]
    cdef long d_[3]
    cdef int i
    for i in range(3):
        i_[i], o_[i], k_[i], s_[i] = in_dhw[i], out_dhw[i], kernel[i], strides[i]
        pb_[i], pe_[i], d_[i] = pads_begin[i], pads_end[i], dilations[i]
        if k_[i] <= 0 or s_[i] <= 0 or d_[i] <= 0 or i_[i] <= 0 or o_[i] < 0 or \
                pb_[i] < 0 or pe_[i] < 0:
            raise ValueError("pool_nchwc: kernel, strides, dilations, input sizes must be "
                             "positive; pads and output sizes non-negative")
    if xa.shape[2] != i_[0] * i_[1] * i_[2] or ya.shape[2] != o_[0] * o_[1] * o_[2]:
        raise ValueError("pool_nchwc: spatial sizes disagree with x / y")
    if not 0 < channels <= xa.shape[1] * 8 or channels <= (xa.shape[1] - 1) * 8:
        raise ValueError("pool_nchwc: channels must fill the last block (CB = ceil(C/8))")
    g.n, g.cb = xa.shape[0], xa.shape[1]
    g.id, g.ih, g.iw = i_[0], i_[1], i_[2]
    g.od, g.oh, g.ow = o_[0], o_[1], o_[2]
    g.kd, g.kh, g.kw = k_[0], k_[1], k_[2]
    g.sd, g.sh, g.sw = s_[0], s_[1], s_[2]
    g.pd, g.ph, g.pw = pb_[0], pb_[1], pb_[2]
    g.qd, g.qh, g.qw = pe_[0], pe_[1], pe_[2]
    g.dd, g.dh, g.dw = d_[0], d_[1], d_[2]
    g.mode = mode
    g.p = <float>p
    return 0


def pool_nchwc(x, y, in_dhw, out_dhw, kernel, strides, pads_begin, pads_end, dilations,
               int mode, double p=2.0, long channels=-1, int n_threads=1):
    """Blocked pooling: x (N, CB, D*H*W, 8) -> y (N, CB, OD*OH*OW, 8), float32.
    Geometry as (d, h, w) triples; mode 0 max, 1 average excluding pads, 2 average
    including pads, 3 Lp.  channels: the real channel count (default CB*8); lanes past
    it are written 0."""
    cdef fcpool_geom_t g
    if channels < 0:
        channels = x.shape[1] * 8
    _nchwc_geom(&g, x, y, in_dhw, out_dhw, kernel, strides, pads_begin, pads_end, dilations,
                mode, p, channels)
    cdef const float* xp = <const float*>cnp.PyArray_DATA(x)
    cdef float* yp = <float*>cnp.PyArray_DATA(y)
    with nogil:
        pool_nchwc_c(xp, yp, &g, channels, n_threads)


ctypedef struct pool_nchwc_args_t:
    const float* x
    float* y
    fcpool_geom_t g
    long channels
    int n_threads


cdef void _pool_nchwc_step(void* args) noexcept nogil:
    cdef pool_nchwc_args_t* a = <pool_nchwc_args_t*>args
    pool_nchwc_c(a.x, a.y, &a.g, a.channels, a.n_threads)


def pool_nchwc_call(x, y, in_dhw, out_dhw, kernel, strides, pads_begin, pads_end, dilations,
                    int mode, double p=2.0, long channels=-1, int n_threads=1):
    """pool_nchwc as a native executor step (arguments checked here, once)."""
    cdef pool_nchwc_args_t* a = <pool_nchwc_args_t*>malloc(sizeof(pool_nchwc_args_t))
    if a == NULL:
        raise MemoryError()
    if channels < 0:
        channels = x.shape[1] * 8
    try:
        _nchwc_geom(&a.g, x, y, in_dhw, out_dhw, kernel, strides, pads_begin, pads_end,
                    dilations, mode, p, channels)
    except BaseException:
        free(a)
        raise
    a.x = <const float*>cnp.PyArray_DATA(x)
    a.y = <float*>cnp.PyArray_DATA(y)
    a.channels = channels
    a.n_threads = n_threads
    return make_c_call(_pool_nchwc_step, a, (x, y))
