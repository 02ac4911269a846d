# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Kernels of the com.fastcnn custom ops: LocallyConnected, TiledConv (one kernel) and
WeightedAveragePool.

Design (local_conv_c): the output is a set of rows, one per (image n, output position
p), each tied to a filter bank: the position itself for a locally connected layer, the
position's tile phase (o mod T per axis) for a tiled convolution.  The ops layer sorts
the rows by bank and cuts them into items of ≤ 4 rows sharing a bank (LC: the images
of one position; TiledConv: positions of one phase, i.e. one strided convolution with
its own weights).  Items run on fastcnn's thread pool (parallel_for; it sets FTZ/DAZ),
GIL released.  Per item and group: gather the rows' im2col patches (K = C/G·Πk floats
each) into the running thread's buffer (one malloc of n_threads buffers per call,
indexed by thread_index()), then the register-tiled rows × output-channel product of
local_conv.h against the bank's packed weights [K][Mgp] (m contiguous, FMA over m in
16-lane vectors), then scatter to y[n, m, p] with the bias.  A locally connected bank
is a contiguous K·Mgp block read once per item: with N ≤ 4 images once per image
batch, so the loop streams its weights at memory bandwidth.

Design (wavg_pool_c): N·C planes of (D, H, W); parallel (the pool) over output rows
(plane, od, oh).  The kernel is normalized once (kn = K / ΣK); each output is Σ over its valid
taps of kn·x times a per-border-case factor (ΣK / Σ_valid K when count_include_pad=0,
1 otherwise), tabulated per combination of per-axis border cases, so interior windows
all use kn unchanged.  Interior columns of a row run tap by tap with the columns
innermost (stride-1 specialization: vectorizable), border columns one by one.
"""
from libc.stdlib cimport malloc, free

cimport numpy as cnp
import numpy as np
from fastcnn._kernels.executor cimport Call, call_fn, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for, thread_index

cdef extern from "local_conv.h" nogil:
    enum:
        LC_ROWS
        LC_LANES
    void lc_gemm_rows(int isa, int R, long n_mb, long K, const float *w, long ldw,
                      const float *x, long ldx, float *out, long ldo)
    void lc_gather(const float *x, long Cg, const long *in_sp, const long *k, const long *s,
                   const long *dil, const long *pb, long od, long oh, long ow, float *col)
    void wap_row_f32(int isa, const float *xp, float *yr, const float *kn, const float *scale,
                     const int *case_w, long base_case, long H, long W, long OW, long kh_n,
                     long kw_n, long sw, long pw, long d0, long h0, long dlo, long dhi,
                     long hlo, long hhi)

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()

ROWS = LC_ROWS
LANES = LC_LANES
_ISA_NAMES = {0: "portable", 1: "avx2", 2: "avx512"}
cdef int _hw_isa = fastcnn_cpu_level()
cdef int _isa = _hw_isa


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force the dispatched ISA ('portable', 'avx2', 'avx512'; tests); returns the previous."""
    global _isa
    prev = _ISA_NAMES[_isa]
    _isa = choose_isa(name, {v: k for k, v in _ISA_NAMES.items()}, _hw_isa)
    return prev


def isa_name():
    return _ISA_NAMES[_isa]


# ------------------------------------------------------------------------ local / tiled conv

cdef inline void _lc_item(const float* x, const float* wpack, const float* bias, long bms,
                          long bps, float* y, const long long* rows, long bank, long r0,
                          long nr, long N, long C, long M, long G, const long* in_sp,
                          const long* out_sp, const long* kernel, const long* strides,
                          const long* pads_begin, const long* dilations, float* col,
                          float* out, int isa) noexcept nogil:
    cdef long Cg = C // G, Mg = M // G
    cdef long KK = kernel[0] * kernel[1] * kernel[2]
    cdef long K = Cg * KK
    cdef long Mgp = (Mg + LC_LANES - 1) // LC_LANES * LC_LANES
    cdef long P = out_sp[0] * out_sp[1] * out_sp[2]
    cdef long plane = in_sp[0] * in_sp[1] * in_sp[2]
    cdef long OHW = out_sp[1] * out_sp[2]
    cdef long g, r, n, p, m, code
    cdef float* yp
    cdef const float* orow
    for g in range(G):
        for r in range(nr):
            code = rows[r0 + r]
            n = code // P
            p = code - n * P
            lc_gather(x + (n * C + g * Cg) * plane, Cg, in_sp, kernel, strides, dilations,
                      pads_begin, p // OHW, (p // out_sp[2]) % out_sp[1], p % out_sp[2],
                      col + r * K)
        lc_gemm_rows(isa, <int>nr, Mgp // LC_LANES, K, wpack + (bank * G + g) * K * Mgp, Mgp,
                     col, K, out, Mgp)
        for r in range(nr):
            code = rows[r0 + r]
            n = code // P
            p = code - n * P
            yp = y + (n * M + g * Mg) * P + p
            orow = out + r * Mgp
            if bias != NULL:
                for m in range(Mg):
                    yp[m * P] = orow[m] + bias[(g * Mg + m) * bms + p * bps]
            else:
                for m in range(Mg):
                    yp[m * P] = orow[m]


cdef struct _lc_job:
    const float* x
    const float* wpack
    const float* bias
    long bms, bps
    float* y
    const long long* rows
    const long long* items
    long N, C, M, G
    const long* in_sp
    const long* out_sp
    const long* kernel
    const long* strides
    const long* pads_begin
    const long* dilations
    float* col                  # per thread: col_stride floats (LC_ROWS·K patches)
    float* out                  # per thread: out_stride floats (LC_ROWS·Mgp products)
    long col_stride, out_stride
    int isa


cdef void _lc_job_item(void* ctx, long it) noexcept nogil:
    cdef _lc_job* j = <_lc_job*>ctx
    cdef int t = thread_index()
    _lc_item(j.x, j.wpack, j.bias, j.bms, j.bps, j.y, j.rows, j.items[3 * it],
             j.items[3 * it + 1], j.items[3 * it + 2], j.N, j.C, j.M, j.G, j.in_sp, j.out_sp,
             j.kernel, j.strides, j.pads_begin, j.dilations, j.col + t * j.col_stride,
             j.out + t * j.out_stride, j.isa)


cdef void local_conv_c(const float* x, const float* wpack, const float* bias, long bms, long bps,
                       float* y, const long long* rows, const long long* items, long n_items,
                       long N, long C, long M, long G,
                       const long* in_sp, const long* out_sp, const long* kernel,
                       const long* strides, const long* pads_begin, const long* dilations,
                       int n_threads) noexcept nogil:
    cdef long K = (C // G) * kernel[0] * kernel[1] * kernel[2]
    cdef long Mgp = (M // G + LC_LANES - 1) // LC_LANES * LC_LANES
    cdef _lc_job j
    cdef int nt = n_threads if n_items > 1 else 1
    if nt < 1:
        nt = 1
    j.x, j.wpack, j.bias, j.bms, j.bps, j.y = x, wpack, bias, bms, bps, y
    j.rows, j.items, j.N, j.C, j.M, j.G = rows, items, N, C, M, G
    j.in_sp, j.out_sp, j.kernel, j.strides = in_sp, out_sp, kernel, strides
    j.pads_begin, j.dilations, j.isa = pads_begin, dilations, _isa
    # scratch of every thread that may join (thread_index() < nt), each buffer on its
    # own 64-byte lines: one malloc
    j.col_stride = (LC_ROWS * K + 15) // 16 * 16
    j.out_stride = (LC_ROWS * Mgp + 15) // 16 * 16
    j.col = <float*>malloc(nt * (j.col_stride + j.out_stride) * sizeof(float))
    if j.col == NULL:
        return
    j.out = j.col + nt * j.col_stride
    parallel_for(nt, n_items, _lc_job_item, &j)
    free(j.col)


cdef inline void _3(tuple t, long* a):
    a[0], a[1], a[2] = t[0], t[1], t[2]


# Native executor steps (executor.pxd): C function + malloc'd argument block; `keep` holds
# the arrays the pointers point into.
ctypedef struct lc_args_t:
    const float* x
    const float* wpack
    const float* bias
    long bms, bps
    float* y
    const long long* rows
    const long long* items
    long n_items, N, C, M, G
    long in_sp[3]
    long out_sp[3]
    long k[3]
    long s[3]
    long pb[3]
    long d[3]
    int n_threads


cdef void _lc_step(void* p) noexcept nogil:
    cdef lc_args_t* a = <lc_args_t*>p
    local_conv_c(a.x, a.wpack, a.bias, a.bms, a.bps, a.y, a.rows, a.items, a.n_items, a.N, a.C,
                 a.M, a.G, a.in_sp, a.out_sp, a.k, a.s, a.pb, a.d, a.n_threads)


def local_conv_call(const float[:, :, :, :, ::1] x, const float[::1] wpack, bias, long bms,
                    long bps, float[:, :, ::1] y, const long long[::1] rows,
                    const long long[:, ::1] items, long group, tuple kernel, tuple strides,
                    tuple pads_begin, tuple pads_end, tuple dilations, int n_threads):
    """A native executor step computing local_conv_c on these arrays (checked once here):
    x (N, C, D, H, W), wpack flat [banks·G·K·Mgp], bias flat float32 or None (element
    (m, p) at m·bms + p·bps), y (N, M, P) written in place, rows/items as in the pxd."""
    cdef lc_args_t* a = <lc_args_t*>malloc(sizeof(lc_args_t))
    if a == NULL:
        raise MemoryError()
    cdef Call call = make_c_call(_lc_step, a, (x, wpack, bias, y, rows, items))
    cdef long N = x.shape[0], C = x.shape[1], M = y.shape[1]
    cdef long pe[3]
    _3(pads_end, pe)
    _3((x.shape[2], x.shape[3], x.shape[4]), a.in_sp)
    _3(kernel, a.k)
    _3(strides, a.s)
    _3(pads_begin, a.pb)
    _3(dilations, a.d)
    cdef long i
    for i in range(3):
        if a.k[i] < 1 or a.s[i] < 1 or a.d[i] < 1 or a.pb[i] < 0 or pe[i] < 0:
            raise ValueError("bad window")
        a.out_sp[i] = (a.in_sp[i] + a.pb[i] + pe[i] - (a.k[i] - 1) * a.d[i] - 1) // a.s[i] + 1
        if a.out_sp[i] < 1:
            raise ValueError("empty output")
    cdef long P = a.out_sp[0] * a.out_sp[1] * a.out_sp[2]
    if y.shape[0] != N or P != y.shape[2]:
        raise ValueError("y shape does not match x and the window")
    if group < 1 or C % group or M % group:
        raise ValueError("group does not divide the channels")
    cdef long K = (C // group) * a.k[0] * a.k[1] * a.k[2]
    cdef long Mgp = (M // group + LC_LANES - 1) // LC_LANES * LC_LANES
    if wpack.shape[0] % (group * K * Mgp):
        raise ValueError("wpack size is not a multiple of G·K·Mgp")
    cdef long n_banks = wpack.shape[0] // (group * K * Mgp)
    for i in range(items.shape[0]):
        if not (0 <= items[i, 0] < n_banks and 1 <= items[i, 2] <= LC_ROWS
                and 0 <= items[i, 1] and items[i, 1] + items[i, 2] <= rows.shape[0]):
            raise ValueError("bad item %d" % i)
    for i in range(rows.shape[0]):
        if not 0 <= rows[i] < N * P:
            raise ValueError("bad row %d" % i)
    cdef const float[::1] b
    a.bias = NULL
    if bias is not None:
        b = bias
        if M and P and not (bms >= 0 and bps >= 0 and (M - 1) * bms + (P - 1) * bps < b.shape[0]):
            raise ValueError("bias too small for its strides")
        a.bias = &b[0]
    a.x, a.wpack, a.y = &x[0, 0, 0, 0, 0], &wpack[0], &y[0, 0, 0]
    a.rows, a.items = &rows[0], &items[0, 0]
    a.bms, a.bps, a.n_items = bms, bps, items.shape[0]
    a.N, a.C, a.M, a.G, a.n_threads = N, C, M, group, n_threads
    return call


def local_conv(x, wpack, bias, long bms, long bps, y, rows, items, long group, tuple kernel,
               tuple strides, tuple pads_begin, tuple pads_end, tuple dilations, int n_threads):
    """Checked one-off entry (tests): local_conv_call(...)() (see local_conv_call)."""
    local_conv_call(x, wpack, bias, bms, bps, y, rows, items, group, kernel, strides, pads_begin,
                    pads_end, dilations, n_threads)()


# ------------------------------------------------------------------------ weighted avg pool

cdef inline void _range(long start, long k, long n_in, long* lo, long* hi) noexcept nogil:
    # taps j in [lo, hi) with 0 <= start + j < n_in
    cdef long a = 0, b = k
    if start < 0:
        a = -start
    if start + k > n_in:
        b = n_in - start
    if a > k:
        a = k
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b


cdef inline void _wavg_row(const real* x, real* y, const real* kn, const real* scale,
                           const int* case_d, const int* case_h, const int* case_w,
                           long n_ch, long n_cw, long row, const long* in_sp,
                           const long* out_sp, const long* kernel, const long* strides,
                           const long* pads_begin) noexcept nogil:
    cdef long D = in_sp[0], H = in_sp[1], W = in_sp[2]
    cdef long OD = out_sp[0], OH = out_sp[1], OW = out_sp[2]
    cdef long kd_n = kernel[0], kh_n = kernel[1], kw_n = kernel[2]
    cdef long sw = strides[2], pw = pads_begin[2]
    cdef long oh = row % OH
    cdef long od = (row // OH) % OD
    cdef long nc = row // (OH * OD)
    cdef const real* xp = x + nc * D * H * W
    cdef real* yr = y + row * OW
    cdef long d0 = od * strides[0] - pads_begin[0], h0 = oh * strides[1] - pads_begin[1]
    cdef long dlo, dhi, hlo, hhi, wlo, whi, kd, kh, kw, ow, w0, off
    _range(d0, kd_n, D, &dlo, &dhi)
    _range(h0, kh_n, H, &hlo, &hhi)
    cdef long base_case = (case_d[od] * n_ch + case_h[oh]) * n_cw
    if real is float:     # float32: the per-ISA C row (local_conv.h)
        wap_row_f32(_isa, <const float*>xp, <float*>yr, <const float*>kn, <const float*>scale,
                    case_w, base_case, H, W, OW, kh_n, kw_n, sw, pw, d0, h0, dlo, dhi, hlo, hhi)
        return
    # interior columns: every kw tap inside [0, W)
    cdef long lo = (pw + sw - 1) // sw
    cdef long hi = 0
    if W - kw_n + pw >= 0:
        hi = (W - kw_n + pw) // sw + 1
    if hi > OW:
        hi = OW
    if lo > hi:
        lo = hi
    cdef real kv, acc, sc
    cdef const real* xr
    cdef const real* xs
    for ow in range(lo, hi):
        yr[ow] = 0
    if hi > lo:
        for kd in range(dlo, dhi):
            for kh in range(hlo, hhi):
                xr = xp + ((d0 + kd) * H + (h0 + kh)) * W
                for kw in range(kw_n):
                    kv = kn[(kd * kh_n + kh) * kw_n + kw]
                    off = kw - pw
                    if sw == 1:
                        xs = xr + off
                        for ow in range(lo, hi):
                            yr[ow] += kv * xs[ow]
                    else:
                        for ow in range(lo, hi):
                            yr[ow] += kv * xr[ow * sw + off]
        sc = scale[base_case + case_w[lo]]
        if sc != 1:
            for ow in range(lo, hi):
                yr[ow] *= sc
    # border columns
    for ow in range(OW):
        if lo <= ow < hi:
            continue
        w0 = ow * sw - pw
        _range(w0, kw_n, W, &wlo, &whi)
        acc = 0
        for kd in range(dlo, dhi):
            for kh in range(hlo, hhi):
                xr = xp + ((d0 + kd) * H + (h0 + kh)) * W + w0
                for kw in range(wlo, whi):
                    acc = acc + kn[(kd * kh_n + kh) * kw_n + kw] * xr[kw]
        yr[ow] = acc * scale[base_case + case_w[ow]]


cdef struct _wap_job:
    const void* x               # real
    void* y
    const void* kn
    const void* scale
    const int* case_d
    const int* case_h
    const int* case_w
    long n_ch, n_cw
    const long* in_sp
    const long* out_sp
    const long* kernel
    const long* strides
    const long* pads_begin


cdef void _wap_row_f32(void* ctx, long row) noexcept nogil:
    cdef _wap_job* j = <_wap_job*>ctx
    _wavg_row(<const float*>j.x, <float*>j.y, <const float*>j.kn, <const float*>j.scale,
              j.case_d, j.case_h, j.case_w, j.n_ch, j.n_cw, row, j.in_sp, j.out_sp, j.kernel,
              j.strides, j.pads_begin)


cdef void _wap_row_f64(void* ctx, long row) noexcept nogil:
    cdef _wap_job* j = <_wap_job*>ctx
    _wavg_row(<const double*>j.x, <double*>j.y, <const double*>j.kn, <const double*>j.scale,
              j.case_d, j.case_h, j.case_w, j.n_ch, j.n_cw, row, j.in_sp, j.out_sp, j.kernel,
              j.strides, j.pads_begin)


cdef void wavg_pool_c(const real* x, real* y, const real* kn, const real* scale,
                      const int* case_d, const int* case_h, const int* case_w,
                      long n_ch, long n_cw, long NC, const long* in_sp, const long* out_sp,
                      const long* kernel, const long* strides, const long* pads_begin,
                      int n_threads) noexcept nogil:
    cdef long n_rows = NC * out_sp[0] * out_sp[1]
    cdef _wap_job j
    j.x, j.y, j.kn, j.scale = x, y, kn, scale
    j.case_d, j.case_h, j.case_w, j.n_ch, j.n_cw = case_d, case_h, case_w, n_ch, n_cw
    j.in_sp, j.out_sp, j.kernel, j.strides, j.pads_begin = in_sp, out_sp, kernel, strides, \
        pads_begin
    if real is float:
        parallel_for(n_threads if n_rows > 1 else 1, n_rows, _wap_row_f32, &j)
    else:
        parallel_for(n_threads if n_rows > 1 else 1, n_rows, _wap_row_f64, &j)


cdef long _n_cases(const int[::1] c):
    """max id + 1, or -1 when an id is negative."""
    cdef long i, m = 0
    for i in range(c.shape[0]):
        if c[i] < 0:
            return -1
        if c[i] + 1 > m:
            m = c[i] + 1
    return m


def wavg_pool(const real[:, :, :, ::1] x, real[:, :, :, ::1] y, const real[::1] kn,
              const real[::1] scale, const int[::1] case_d, const int[::1] case_h,
              const int[::1] case_w, tuple kernel, tuple strides, tuple pads_begin,
              int n_threads):
    """Checked entry: x (NC, D, H, W), y (NC, OD, OH, OW) written in place; kn the
    normalized kernel (flat), scale[case_d, case_h, case_w] flat; see wavg_pool_c."""
    cdef long in_sp[3]
    cdef long out_sp[3]
    cdef long k[3]
    cdef long s[3]
    cdef long pb[3]
    _3((x.shape[1], x.shape[2], x.shape[3]), in_sp)
    _3((y.shape[1], y.shape[2], y.shape[3]), out_sp)
    _3(kernel, k)
    _3(strides, s)
    _3(pads_begin, pb)
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y have different plane counts")
    if kn.shape[0] != k[0] * k[1] * k[2]:
        raise ValueError("kn has the wrong size")
    if case_d.shape[0] != out_sp[0] or case_h.shape[0] != out_sp[1] or case_w.shape[0] != out_sp[2]:
        raise ValueError("case tables do not match the output")
    cdef long n_cd = _n_cases(case_d), n_ch = _n_cases(case_h), n_cw = _n_cases(case_w)
    if n_cd < 0 or n_ch < 0 or n_cw < 0 or scale.shape[0] < n_cd * n_ch * n_cw:
        raise ValueError("case ids out of range of the scale table")
    cdef long NC = x.shape[0]
    with nogil:
        wavg_pool_c(&x[0, 0, 0, 0], &y[0, 0, 0, 0], &kn[0], &scale[0], &case_d[0], &case_h[0],
                    &case_w[0], n_ch, n_cw, NC, in_sp, out_sp, k, s, pb, n_threads)


ctypedef struct wap_args_t:
    const float* x
    float* y
    const float* kn
    const float* scale
    const int* case_d
    const int* case_h
    const int* case_w
    long n_ch, n_cw, NC
    long in_sp[3]
    long out_sp[3]
    long k[3]
    long s[3]
    long pb[3]
    int n_threads


cdef void _wap_step(void* p) noexcept nogil:
    cdef wap_args_t* a = <wap_args_t*>p
    wavg_pool_c(a.x, a.y, a.kn, a.scale, a.case_d, a.case_h, a.case_w, a.n_ch, a.n_cw, a.NC,
                a.in_sp, a.out_sp, a.k, a.s, a.pb, a.n_threads)


def wavg_pool_call(const float[:, :, :, ::1] x, float[:, :, :, ::1] y, const float[::1] kn,
                   const float[::1] scale, const int[::1] case_d, const int[::1] case_h,
                   const int[::1] case_w, tuple kernel, tuple strides, tuple pads_begin,
                   int n_threads):
    """A native executor step running wavg_pool (float32) on these arrays, checked once."""
    cdef wap_args_t* a = <wap_args_t*>malloc(sizeof(wap_args_t))
    if a == NULL:
        raise MemoryError()
    cdef Call call = make_c_call(_wap_step, a, (x, y, kn, scale, case_d, case_h, case_w))
    _3((x.shape[1], x.shape[2], x.shape[3]), a.in_sp)
    _3((y.shape[1], y.shape[2], y.shape[3]), a.out_sp)
    _3(kernel, a.k)
    _3(strides, a.s)
    _3(pads_begin, a.pb)
    if x.shape[0] != y.shape[0]:
        raise ValueError("x and y have different plane counts")
    if kn.shape[0] != a.k[0] * a.k[1] * a.k[2]:
        raise ValueError("kn has the wrong size")
    if case_d.shape[0] != a.out_sp[0] or case_h.shape[0] != a.out_sp[1] or \
            case_w.shape[0] != a.out_sp[2]:
        raise ValueError("case tables do not match the output")
    cdef long n_cd = _n_cases(case_d)
    a.n_ch, a.n_cw = _n_cases(case_h), _n_cases(case_w)
    if n_cd < 0 or a.n_ch < 0 or a.n_cw < 0 or scale.shape[0] < n_cd * a.n_ch * a.n_cw:
        raise ValueError("case ids out of range of the scale table")
    a.x, a.y, a.kn, a.scale = &x[0, 0, 0, 0], &y[0, 0, 0, 0], &kn[0], &scale[0]
    a.case_d, a.case_h, a.case_w = &case_d[0], &case_h[0], &case_w[0]
    a.NC, a.n_threads = x.shape[0], n_threads
    return call
