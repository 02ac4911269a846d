# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Softmax and log-softmax over the middle axis of an [outer, S, inner] float32 view.

    m[o, i] = max_s x[o, s, i]
    softmax:      y[o, s, i] = exp(x[o, s, i] - m) / sum_s exp(x[o, s, i] - m)
    log-softmax:  y[o, s, i] = (x[o, s, i] - m) - log(sum_s exp(x[o, s, i] - m))

Design: the SIMD code is src/softmax.h (softmax_tile.h per ISA: AVX-512 16 lanes,
AVX2 + FMA 8 lanes, portable C; masked tails, a branch-free polynomial exp whose
argument x - m is <= 0, so it only ever underflows, to 0).  Three passes per row or
column block (max; exp and sum, the exps stored; scale), each over data that is in L1
after the first.  inner == 1 (the last axis: every classifier's [N, 1000]): work items
are runs of whole rows of ~2048 elements, four independent vector accumulators per
pass.  inner > 1 (a non-last axis: per-pixel class scores of a segmentation head): items
are (o, block of 64 columns), the columns in vector lanes and S walked with stride
`inner`.  Items run on fastcnn's thread pool (parallel_for, up to `n_threads`) from
SERIAL_ELEMENTS elements, else on the caller, with the GIL released; the pool's
FTZ/DAZ is on either way (denormal exps are 0 at every thread count).  `y` may be `x`.

Entry points: `softmax` (checked, arrays), `softmax_call` (a native executor step over
addresses the caller keeps alive), `set_isa` (tests).
"""
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc

from fastcnn._kernels.executor cimport Call, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for

cdef extern from "softmax.h" nogil:
    enum:
        FC_SM_COLS
    void fc_sm_rows(const float* x, float* y, long r0, long r1, long S, int lg)
    void fc_sm_cols(const float* x, float* y, long S, long inner, long w, int lg)
    int fc_sm_isa
    int fastcnn_cpu_level()

SERIAL_ELEMENTS = 32768
cdef Py_ssize_t _SERIAL = 32768
cdef Py_ssize_t _ITEM_ELEMENTS = 2048     # rows per item: ~this many elements
COLS = FC_SM_COLS


def set_isa(int level):
    """Force the ISA: -1 = by CPU (default), 0 portable, 1 AVX2, 2 AVX-512 (a level above
    the CPU's is clamped).  Returns the previous setting."""
    global fc_sm_isa
    prev = fc_sm_isa
    fc_sm_isa = -1 if level < 0 else min(level, fastcnn_cpu_level())
    return prev


cdef struct _sm_job:
    const float* x
    float* y
    Py_ssize_t outer, S, inner
    Py_ssize_t rows          # inner == 1: rows per item
    Py_ssize_t blocks        # inner > 1: column blocks per o
    int lg


cdef void _item(void* ctx, long t) noexcept nogil:
    cdef const _sm_job* j = <const _sm_job*>ctx
    cdef Py_ssize_t r0, r1, o, c, w
    if j.inner == 1:
        r0 = t * j.rows
        r1 = r0 + j.rows
        if r1 > j.outer:
            r1 = j.outer
        fc_sm_rows(j.x, j.y, r0, r1, j.S, j.lg)
        return
    o = t // j.blocks
    c = (t % j.blocks) * FC_SM_COLS
    w = j.inner - c
    if w > FC_SM_COLS:
        w = FC_SM_COLS
    fc_sm_cols(j.x + o * j.S * j.inner + c, j.y + o * j.S * j.inner + c, j.S, j.inner, w, j.lg)


cdef void softmax_c(const float* x, float* y, Py_ssize_t outer, Py_ssize_t S,
                    Py_ssize_t inner, int lg, int n_threads) noexcept nogil:
    cdef _sm_job j
    cdef long n_items
    cdef int nt = n_threads
    if outer <= 0 or S <= 0 or inner <= 0:
        return
    j.x, j.y, j.outer, j.S, j.inner, j.lg = x, y, outer, S, inner, lg
    if inner == 1:
        j.rows = 1 + (_ITEM_ELEMENTS - 1) // S
        j.blocks = 1
        n_items = (outer + j.rows - 1) // j.rows
    else:
        j.rows = 1
        j.blocks = (inner + FC_SM_COLS - 1) // FC_SM_COLS
        n_items = outer * j.blocks
    if outer * S * inner < _SERIAL or nt < 1:
        nt = 1
    parallel_for(nt, n_items, _item, &j)


def softmax(const float[::1] x, float[::1] y, Py_ssize_t outer, Py_ssize_t S,
            Py_ssize_t inner, int lg=0, int n_threads=1):
    """y = softmax (lg=0) or log-softmax (lg=1) of x over s in its [outer, S, inner] view
    (flat contiguous float32 arrays; y may be x)."""
    if outer < 0 or S < 1 or inner < 1 or x.shape[0] != outer * S * inner \
            or y.shape[0] != x.shape[0]:
        raise ValueError("x / y do not match [outer, S, inner]")
    if lg not in (0, 1):
        raise ValueError("lg must be 0 (softmax) or 1 (log-softmax)")
    if outer == 0:
        return
    with nogil:
        softmax_c(&x[0], &y[0], outer, S, inner, lg, n_threads)


ctypedef struct sm_args_t:
    const float* x
    float* y
    Py_ssize_t outer, S, inner
    int lg
    int n_threads


cdef void _sm_step(void* p) noexcept nogil:
    cdef sm_args_t* a = <sm_args_t*>p
    softmax_c(a.x, a.y, a.outer, a.S, a.inner, a.lg, a.n_threads)


def softmax_call(uintptr_t x, uintptr_t y, Py_ssize_t outer, Py_ssize_t S, Py_ssize_t inner,
                 int lg, int n_threads, keep):
    """A native executor step running softmax (unchecked addresses; `keep` holds the arrays
    alive)."""
    if outer < 1 or S < 1 or inner < 1 or lg not in (0, 1):
        raise ValueError("bad softmax geometry")
    cdef sm_args_t* a = <sm_args_t*>malloc(sizeof(sm_args_t))
    if a == NULL:
        raise MemoryError()
    a.x, a.y, a.outer, a.S, a.inner = <const float*>x, <float*>y, outer, S, inner
    a.lg, a.n_threads = lg, n_threads
    return make_c_call(_sm_step, a, keep)
