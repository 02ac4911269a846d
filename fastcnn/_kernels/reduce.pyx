# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Reductions over the middle axis of an [outer, S, inner] float32 view.

    y[o, i] = finish( reduce_{s < S} x[o, s, i] )

SUM (then times `scale`: a mean when scale = 1/S), MAX, and SUMSQ (then sqrt: the L2
norm).  One kernel serves every pooling-style reduction of a CNN: global pools of NCHW
(inner = 1) and of channel-blocked NCHWc buffers (inner = the lanes), and spatial means of
NHWC tensors (inner = C).  Work items are (o, 8-lane chunk of inner), or runs of whole
rows (~512 elements) when inner == 1; four independent accumulators per item keep the add
latency hidden.  Items run on fastcnn's thread pool (parallel_for, up to `n_threads`
threads) when there are at least SERIAL_ELEMENTS elements, else on the caller.  The pool runs jobs under FTZ/DAZ; MAX items
clear it (workshare.fc_exact_enter: a denormal input is selected as itself).  The GIL is
released.

Entry points: `reduce_mid` (checked, arrays) and `reduce_mid_call` (a native executor step
over addresses the caller keeps alive).
"""
from libc.math cimport sqrtf
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc

from fastcnn._kernels.executor cimport Call, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for
from fastcnn._kernels.workshare cimport fc_exact_enter, fc_exact_leave

cdef enum:
    RED_SUM = 0
    RED_MAX = 1
    RED_SUMSQ = 2

MODE = dict(SUM=RED_SUM, MAX=RED_MAX, SUMSQ=RED_SUMSQ)
SERIAL_ELEMENTS = 32768
cdef Py_ssize_t _SERIAL = 32768


cdef inline float _fin(float v, int mode, float scale) noexcept nogil:
    if mode == RED_SUMSQ:
        return sqrtf(v)
    if mode == RED_SUM:
        return v * scale
    return v


cdef inline void _row(const float* x, Py_ssize_t S, float* y, int mode, float scale) noexcept nogil:
    """inner == 1: one contiguous row of S values -> y[0]."""
    cdef float acc[8]
    cdef Py_ssize_t s, l
    cdef float v, m
    if mode == RED_MAX:
        m = x[0]
        for l in range(8):
            acc[l] = m
    else:
        for l in range(8):
            acc[l] = 0.0
    s = 0
    while s + 8 <= S:
        if mode == RED_SUM:
            for l in range(8):
                acc[l] += x[s + l]
        elif mode == RED_SUMSQ:
            for l in range(8):
                acc[l] += x[s + l] * x[s + l]
        else:
            for l in range(8):
                v = x[s + l]
                acc[l] = v if v > acc[l] else acc[l]
        s += 8
    while s < S:
        v = x[s]
        if mode == RED_SUM:
            acc[0] += v
        elif mode == RED_SUMSQ:
            acc[0] += v * v
        else:
            acc[0] = v if v > acc[0] else acc[0]
        s += 1
    if mode == RED_MAX:
        m = acc[0]
        for l in range(1, 8):
            m = acc[l] if acc[l] > m else m
    else:
        m = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
    y[0] = _fin(m, mode, scale)


cdef inline void _lanes8(const float* x, Py_ssize_t S, Py_ssize_t inner, float* y, int mode,
                  float scale) noexcept nogil:
    """8 adjacent lanes of the inner axis (stride `inner` between s): 4 accumulators."""
    cdef float a0[8]
    cdef float a1[8]
    cdef float a2[8]
    cdef float a3[8]
    cdef Py_ssize_t s, l
    cdef const float* p
    cdef float v
    for l in range(8):
        if mode == RED_MAX:
            v = x[l]
        else:
            v = 0.0
        a0[l] = v
        a1[l] = v
        a2[l] = v
        a3[l] = v
    s = 0
    while s + 4 <= S:
        p = x + s * inner
        if mode == RED_SUM:
            for l in range(8):
                a0[l] += p[l]
                a1[l] += p[inner + l]
                a2[l] += p[2 * inner + l]
                a3[l] += p[3 * inner + l]
        elif mode == RED_SUMSQ:
            for l in range(8):
                a0[l] += p[l] * p[l]
                a1[l] += p[inner + l] * p[inner + l]
                a2[l] += p[2 * inner + l] * p[2 * inner + l]
                a3[l] += p[3 * inner + l] * p[3 * inner + l]
        else:
            for l in range(8):
                v = p[l]
                a0[l] = v if v > a0[l] else a0[l]
                v = p[inner + l]
                a1[l] = v if v > a1[l] else a1[l]
                v = p[2 * inner + l]
                a2[l] = v if v > a2[l] else a2[l]
                v = p[3 * inner + l]
                a3[l] = v if v > a3[l] else a3[l]
        s += 4
    while s < S:
        p = x + s * inner
        for l in range(8):
            v = p[l]
            if mode == RED_SUM:
                a0[l] += v
            elif mode == RED_SUMSQ:
                a0[l] += v * v
            else:
                a0[l] = v if v > a0[l] else a0[l]
        s += 1
    for l in range(8):
        if mode == RED_MAX:
            v = a0[l] if a0[l] > a1[l] else a1[l]
            v = a2[l] if a2[l] > v else v
            v = a3[l] if a3[l] > v else v
        else:
            v = (a0[l] + a1[l]) + (a2[l] + a3[l])
        y[l] = _fin(v, mode, scale)


cdef inline void _lane1(const float* x, Py_ssize_t S, Py_ssize_t inner, float* y, int mode,
                 float scale) noexcept nogil:
    """One lane of the inner axis (the tail when inner is not a multiple of 8)."""
    cdef Py_ssize_t s
    cdef float acc, v
    acc = x[0] if mode == RED_MAX else 0.0
    for s in range(S):
        v = x[s * inner]
        if mode == RED_SUM:
            acc += v
        elif mode == RED_SUMSQ:
            acc += v * v
        else:
            acc = v if v > acc else acc
    y[0] = _fin(acc, mode, scale)


cdef struct _red_job:
    const float* x
    float* y
    Py_ssize_t outer, S, inner, chunks
    Py_ssize_t rows          # inner == 1: rows per item
    int mode
    float scale


cdef void _item(void* ctx, long t) noexcept nogil:
    cdef const _red_job* r = <const _red_job*>ctx
    cdef unsigned int csr
    # a constant mode per call: the compiler specializes the inlined row loops
    if r.mode == RED_MAX:
        csr = fc_exact_enter()
        _item_run(r, t, RED_MAX)
        fc_exact_leave(csr)
    elif r.mode == RED_SUM:
        _item_run(r, t, RED_SUM)
    else:
        _item_run(r, t, RED_SUMSQ)


cdef inline void _item_run(const _red_job* r, Py_ssize_t t, int mode) noexcept nogil:
    cdef Py_ssize_t S = r.S, inner = r.inner
    cdef Py_ssize_t o, j, o_end
    if inner == 1:
        o = t * r.rows
        o_end = o + r.rows
        if o_end > r.outer:
            o_end = r.outer
        while o < o_end:
            _row(r.x + o * S, S, r.y + o, mode, r.scale)
            o += 1
        return
    o = t // r.chunks
    j = (t % r.chunks) * 8
    if j + 8 <= inner:
        _lanes8(r.x + o * S * inner + j, S, inner, r.y + o * inner + j, mode, r.scale)
    else:
        while j < inner:
            _lane1(r.x + o * S * inner + j, S, inner, r.y + o * inner + j, mode, r.scale)
            j += 1


cdef void reduce_mid_c(const float* x, float* y, Py_ssize_t outer, Py_ssize_t S,
                       Py_ssize_t inner, int mode, float scale, int n_threads) noexcept nogil:
    cdef _red_job r
    r.x, r.y, r.S, r.inner, r.mode, r.scale = x, y, S, inner, mode, scale
    r.outer = outer
    r.chunks = 1 if inner == 1 else (inner + 7) // 8
    # short rows (global pools: S = 49) go ~512 elements to an item, so the per-item costs
    # (the pool's call, MAX's control-word switch) stay small
    r.rows = 1 + 511 // S if inner == 1 else 1
    cdef int nt = n_threads
    if outer * S * inner < _SERIAL or nt < 1:
        nt = 1
    parallel_for(nt, (outer + r.rows - 1) // r.rows * r.chunks, _item, &r)


def reduce_mid(const float[::1] x, float[::1] y, Py_ssize_t outer, Py_ssize_t S,
               Py_ssize_t inner, int mode, float scale=1.0, int n_threads=1):
    """y[o, i] = reduce over s of x[o, s, i] (SUM times scale, MAX, or sqrt of SUMSQ)."""
    if mode < RED_SUM or mode > RED_SUMSQ:
        raise ValueError("bad reduction mode")
    if outer < 0 or S < 1 or inner < 1 or x.shape[0] != outer * S * inner \
            or y.shape[0] != outer * inner:
        raise ValueError("x / y do not match [outer, S, inner]")
    if outer == 0:
        return
    with nogil:
        reduce_mid_c(&x[0], &y[0], outer, S, inner, mode, scale, n_threads)


ctypedef struct red_args_t:
    const float* x
    float* y
    Py_ssize_t outer, S, inner
    int mode
    float scale
    int n_threads


cdef void _red_step(void* p) noexcept nogil:
    cdef red_args_t* a = <red_args_t*>p
    reduce_mid_c(a.x, a.y, a.outer, a.S, a.inner, a.mode, a.scale, a.n_threads)


def reduce_mid_call(uintptr_t x, uintptr_t y, Py_ssize_t outer, Py_ssize_t S, Py_ssize_t inner,
                    int mode, float scale, int n_threads, keep):
    """A native executor step running reduce_mid (unchecked addresses; `keep` holds the
    arrays alive)."""
    if S < 1 or inner < 1 or outer < 1:
        raise ValueError("empty reduction")
    cdef red_args_t* a = <red_args_t*>malloc(sizeof(red_args_t))
    if a == NULL:
        raise MemoryError()
    a.x, a.y, a.outer, a.S, a.inner = <const float*>x, <float*>y, outer, S, inner
    a.mode, a.scale, a.n_threads = mode, scale, n_threads
    return make_c_call(_red_step, a, keep)
