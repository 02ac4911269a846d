# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pooling kernels: max (with ONNX indices), average (count_include_pad 0/1), Lp.

Design:
  SIMD rows  float32 max / average / L1 / L2 pooling runs the row functions of
             src/pool_simd.h, written once per ISA (AVX2+FMA, portable C; AVX-512
             machines run the AVX2 ones) and picked at import by CPU features:
             - NCHWc (x[N][CB][D][H][W][8], block 8): one channel per lane, each
               tap one vector load; register tile of 8/4/1 output pixels;
               2-D windows without dilation whose rows overlap (sh < kh), >= 9
               taps, run separable (set_separable(False): direct):
               3x3 with strides 1 or 2 two output rows per pass in registers
               (column reductions of 4 or 5 input rows, shared between the two
               rows and between neighbouring outputs); other windows reduce each
               input row along W once into a ring of kh rows (kw = 3 stride 1:
               pair sums shared), then combine the kh ring rows per output row;
             - plain NCHW planes: 8 output columns per vector (stride 1 loads,
               stride 2 load+shuffle, other strides a gather), tile of 4/1 vectors;
               2-D windows without dilation, >= 4 taps, sw 1 or 2 run separable:
               the clamped kh rows reduced into a row buffer padded with the
               identity, then kw shifted vector loads of it per 8 outputs, the
               divisor's column factors as a vector (no scalar border outputs).
             Kernel rows outside the input are clamped away once per output row;
             interior columns carry no bounds checks, border columns run one by one
             with their clamped kx range.
  threads    (plane, output depth, row chunk) items run by fastcnn's thread pool
             (parallel_for: guided claims, the caller works too); a plane
             is (n, channel block) or, plain, (n, c); rows are cut into chunks
             only when planes < 8 per thread, so 2 threads help at batch 1 with
             few channel blocks.  Pools under 2^19 lane-operations (output lanes x
             taps) run on the caller.  The pool runs jobs under FTZ/DAZ (sums of
             denormals); max items clear it (workshare.fc_exact_enter), so a
             denormal input is selected as itself, as without the pool.
  generic    everything else -- float64, MaxPool's Indices output, Lp with p not
             in {1, 2} on plain planes -- one output at a time (pool_3d_c below):
             per output the valid tap range of each axis ([lo, hi), taps inside the
             input), accumulating in double, one pool item per N·C plane.
  semantics  padding never contributes (max ignores it, Lp adds zeros).  A window
             with no real tap gives the lowest finite value (index -1) for max and
             0 otherwise, as onnxruntime does.  The average's divisor is the number
             of real taps (count_include_pad=0) or of the taps inside input +
             explicit pads (count_include_pad=1: cells that only ceil_mode reaches
             never count, as in the ONNX reference and onnxruntime).  NCHWc lanes
             past the real channels are written 0.
  native     pool_call / pool_nchwc_call return executor Calls (C function +
             argument block, checked once at bind time): no Python per run.
"""
from libc.math cimport fabs, pow, sqrt, INFINITY
from libc.float cimport FLT_MAX, DBL_MAX
from libc.stdlib cimport malloc, free

cimport numpy as cnp
import numpy as np

from fastcnn._kernels.executor cimport Call, call_fn, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for
from fastcnn._kernels.workshare cimport fc_exact_enter, fc_exact_leave, row_chunks

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()

cdef extern from "pool_simd.h" nogil:
    ctypedef void (*fcpool_row_fn)(const float*, float*, const fcpool_geom_t*, long, long, long,
                                   int)
    fcpool_row_fn fcpool_pick_row(int isa, const fcpool_geom_t* g, int sep)
    fcpool_row_fn fcpool_pick_plain_row(int isa, const fcpool_geom_t* g, int sep)

B = 8
cdef long _B = 8
cdef int _isa = fastcnn_cpu_level()
cdef int _isa_hw = _isa
cdef int _sep = 1
_ISA_NAMES = {"portable": 0, "avx2": 1, "avx512": 2}


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force the SIMD row functions' ISA: 'portable', 'avx2', 'avx512' (runs the AVX2 rows:
    the block is 8 lanes) or 'auto'.  More than the CPU supports raises ValueError.
    Returns the previous name."""
    global _isa
    prev = get_isa()
    _isa = choose_isa(name, _ISA_NAMES, _isa_hw)
    return prev


def set_separable(bint on):
    """Allow (default) or forbid the separable NCHWc rows (tests and benchmarks compare
    both paths).  Returns the previous setting."""
    global _sep
    prev = bool(_sep)
    _sep = on
    return prev


def get_isa():
    """Name of the ISA the SIMD row functions use."""
    for k, v in _ISA_NAMES.items():
        if v == _isa:
            return k
    return "portable"


# below this many lane-operations (~15 us of work) a pool runs on the caller: the 2-thread
# split would not pay for waking a sleeping pool worker
cdef double _SERIAL_WORK = 1 << 19


cdef inline double _work(const fcpool_geom_t* g, long lanes) noexcept nogil:
    """Lane-operations of a pool: output lanes times taps per output (kh + kw for the
    separable rows)."""
    cdef double taps = <double>(g.kd * g.kh * g.kw)
    if g.kd == 1 and g.kh * g.kw >= 9 and g.kh > 1 and g.kw > 1:
        taps = <double>(g.kh + g.kw)
    return <double>g.n * g.cb * g.od * g.oh * g.ow * lanes * taps


cdef struct _rows_job:
    const float* x
    float* y
    const fcpool_geom_t* g
    long lanes
    long channels
    fcpool_row_fn fn
    long n_chunks


cdef void _rows_item(void* ctx, long it) noexcept nogil:
    cdef const _rows_job* j = <const _rows_job*>ctx
    cdef const fcpool_geom_t* g = j.g
    cdef long c = it % j.n_chunks
    cdef long t = it // j.n_chunks
    cdef long oy = c * g.oh // j.n_chunks
    cdef long oy_end = (c + 1) * g.oh // j.n_chunks
    cdef long oz = t % g.od
    t = t // g.od                      # the plane: (n, block) or, plain, (n, c)
    cdef int nv = 8
    cdef unsigned int csr = 0
    if j.lanes == 8 and j.channels - (t % g.cb) * 8 < 8:
        nv = <int>(j.channels - (t % g.cb) * 8)
    if g.mode == POOL_MAX:
        csr = fc_exact_enter()
    j.fn(j.x + t * (g.id * g.ih * g.iw * j.lanes), j.y + t * (g.od * g.oh * g.ow * j.lanes), g,
         oz, oy, oy_end, nv)
    if g.mode == POOL_MAX:
        fc_exact_leave(csr)


cdef void _run_rows(const float* x, float* y, const fcpool_geom_t* g, long lanes, long channels,
                    fcpool_row_fn fn, int n_threads) noexcept nogil:
    """Every output row of every plane through fn, on the pool (see Design)."""
    cdef long planes = g.n * g.cb * g.od
    cdef _rows_job j
    if planes == 0 or g.oh == 0 or g.ow == 0:
        return
    if n_threads > 1 and _work(g, lanes) < _SERIAL_WORK:
        n_threads = 1
    j.x, j.y, j.g, j.lanes, j.channels, j.fn = x, y, g, lanes, channels, fn
    j.n_chunks = row_chunks(planes, g.oh, n_threads)
    parallel_for(n_threads, planes * j.n_chunks, _rows_item, &j)


cdef void pool_nchwc_c(const float* x, float* y, const fcpool_geom_t* g, long channels,
                       int n_threads) noexcept nogil:
    _run_rows(x, y, g, 8, channels, fcpool_pick_row(_isa, g, _sep), n_threads)


cdef inline void _set_geom(fcpool_geom_t* g, long n, long cb, const long* i_, const long* o_,
                           const long* k_, const long* s_, const long* pb_, const long* pe_,
                           const long* d_, int mode, double p) noexcept nogil:
    g.n, g.cb = n, cb
    g.id, g.ih, g.iw = i_[0], i_[1], i_[2]
    g.od, g.oh, g.ow = o_[0], o_[1], o_[2]
    g.kd, g.kh, g.kw = k_[0], k_[1], k_[2]
    g.sd, g.sh, g.sw = s_[0], s_[1], s_[2]
    g.pd, g.ph, g.pw = pb_[0], pb_[1], pb_[2]
    g.qd, g.qh, g.qw = pe_[0], pe_[1], pe_[2]
    g.dd, g.dh, g.dw = d_[0], d_[1], d_[2]
    g.mode = mode
    g.p = <float>p


# ---- generic kernel: any dtype, Indices, any p
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


cdef void _pool_plane(const real* x, real* y, long long* ind, long long base,
                      const long* in_sp, const long* out_sp, const long* kernel,
                      const long* strides, const long* pads_begin, const long* pads_end,
                      const long* dil, int mode, double p, int storage_order) noexcept nogil:
    cdef long D = in_sp[0], H = in_sp[1], W = in_sp[2]
    cdef long sdd = dil[0] * H * W, sdh = dil[1] * W, sdw = dil[2]
    cdef long od, oh, ow, dlo, dhi, dn, hlo, hhi, hn, wlo, whi, wn, d0, h0
    for od in range(out_sp[0]):
        _taps(od, strides[0], pads_begin[0], dil[0], kernel[0], D, pads_end[0], &dlo, &dhi, &dn)
        d0 = od * strides[0] - pads_begin[0]
        for oh in range(out_sp[1]):
            _taps(oh, strides[1], pads_begin[1], dil[1], kernel[1], H, pads_end[1],
                  &hlo, &hhi, &hn)
            h0 = oh * strides[1] - pads_begin[1]
            for ow in range(out_sp[2]):
                _taps(ow, strides[2], pads_begin[2], dil[2], kernel[2], W, pads_end[2],
                      &wlo, &whi, &wn)
                _pool_one(x, y, ind, base, (od * out_sp[1] + oh) * out_sp[2] + ow, D, H, W,
                          d0, h0, ow * strides[2] - pads_begin[2], sdd, sdh, sdw,
                          dlo, dhi, dn, hlo, hhi, hn, wlo, whi, wn, mode, p, storage_order)


cdef struct _planes_job:
    const void* x
    void* y
    long long* ind
    long P, Q
    const long* in_sp
    const long* out_sp
    const long* kernel
    const long* strides
    const long* pads_begin
    const long* pads_end
    const long* dil
    int mode
    double p
    int storage_order


cdef void _plane_item_f32(void* ctx, long c) noexcept nogil:
    cdef const _planes_job* j = <const _planes_job*>ctx
    cdef unsigned int csr = 0
    if j.mode == POOL_MAX:
        csr = fc_exact_enter()
    _pool_plane(<const float*>j.x + c * j.P, <float*>j.y + c * j.Q,
                (j.ind + c * j.Q) if j.ind != NULL else NULL, <long long>c * j.P, j.in_sp,
                j.out_sp, j.kernel, j.strides, j.pads_begin, j.pads_end, j.dil, j.mode, j.p,
                j.storage_order)
    if j.mode == POOL_MAX:
        fc_exact_leave(csr)


cdef void _plane_item_f64(void* ctx, long c) noexcept nogil:
    cdef const _planes_job* j = <const _planes_job*>ctx
    cdef unsigned int csr = 0
    if j.mode == POOL_MAX:
        csr = fc_exact_enter()
    _pool_plane(<const double*>j.x + c * j.P, <double*>j.y + c * j.Q,
                (j.ind + c * j.Q) if j.ind != NULL else NULL, <long long>c * j.P, j.in_sp,
                j.out_sp, j.kernel, j.strides, j.pads_begin, j.pads_end, j.dil, j.mode, j.p,
                j.storage_order)
    if j.mode == POOL_MAX:
        fc_exact_leave(csr)


cdef void pool_3d_c(const real* x, real* y, long long* indices, long NC,
                    const long* in_sp, const long* out_sp, const long* kernel,
                    const long* strides, const long* pads_begin, const long* pads_end,
                    const long* dilations, int mode, double p, int storage_order,
                    int n_threads) noexcept nogil:
    cdef fcpool_geom_t g
    cdef fcpool_row_fn fn
    cdef _planes_job j
    if real is float:
        if indices == NULL:            # the SIMD rows, planes of one channel
            _set_geom(&g, NC, 1, in_sp, out_sp, kernel, strides, pads_begin, pads_end,
                      dilations, mode, p)
            fn = fcpool_pick_plain_row(_isa, &g, _sep)
            if fn != NULL:
                _run_rows(x, y, &g, 1, 8, fn, n_threads)
                return
    j.x, j.y, j.ind = x, y, indices
    j.P = in_sp[0] * in_sp[1] * in_sp[2]
    j.Q = out_sp[0] * out_sp[1] * out_sp[2]
    j.in_sp, j.out_sp, j.kernel, j.strides = in_sp, out_sp, kernel, strides
    j.pads_begin, j.pads_end, j.dil = pads_begin, pads_end, dilations
    j.mode, j.p, j.storage_order = mode, p, storage_order
    if real is float:
        parallel_for(n_threads, NC, _plane_item_f32, &j)
    else:
        parallel_for(n_threads, NC, _plane_item_f64, &j)


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


# ---- native executor steps (executor.pxd): C function + argument block, run without the GIL

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


# ---- channel-blocked (NCHWc, block 8) entry points
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
    _set_geom(g, xa.shape[0], xa.shape[1], i_, o_, k_, s_, pb_, pe_, d_, mode, p)
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
