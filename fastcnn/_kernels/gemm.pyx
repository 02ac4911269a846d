# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Packed SGEMM with fused epilogue, and the FMA peak probe.

Design:
  C[M,N] = act(A[M,K] @ B[K,N] + bias (+ C if accumulate)), float32 row-major.
  tile     6 x 16 register tile (12 ymm accumulators, FMA with A broadcast),
           AVX2+FMA (also used on AVX-512 CPUs) or portable plain C.
  packing  the constant operand is packed once: pack_b -> [ceil(N/16), K, 16]
           (weights on the right: Gemm/MatMul), pack_a -> [ceil(M/6), K, 6]
           (weights on the left: conv-as-GEMM Y[M,S] = W[M,K] @ col[K,S]).
           The dynamic operand is read in place (row-major, any leading dim).
  blocking K in chunks of 256 (one 16-column B slab = 16 KiB in L1); partial
           sums accumulate in C; epilogue after the last chunk.
  threads  fastcnn's thread pool (parallel_for: guided claims) over C blocks
           (MC rows x NC cols, shrunk until there are >= 4 per thread); tiny
           problems run serially; the pool sets FTZ/DAZ on every thread.
"""
import time

import numpy as np
cimport numpy as cnp
from libc.stdlib cimport malloc, free
from fastcnn._kernels.threadpool cimport parallel_for
from fastcnn._kernels.executor cimport make_c_call

cnp.import_array()

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()

cdef extern from "gemm_sgemm.h" nogil:
    void fc_gemm_block(int isa, const fc_gemm_params *p, long i0, long i1, long j0, long j1)

cdef extern from "peak.h" nogil:
    float fc_peak_run(int isa, long iters, float seed)
    int FC_PEAK_FLOPS_PER_ITER

cdef int _hw_isa = fastcnn_cpu_level()
cdef int _isa = _hw_isa
_ISA_NAMES = {0: "portable", 1: "avx2", 2: "avx512"}


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force "portable"/"avx2"/"avx512" or "auto" (tests).  Returns the previous name."""
    global _isa
    prev = _ISA_NAMES[_isa]
    _isa = choose_isa(name, {v: k for k, v in _ISA_NAMES.items()}, _hw_isa)
    return prev


def isa_name():
    return _ISA_NAMES[_isa]


DEF MR = 6
DEF NR = 16


cdef struct _gemm_job:
    fc_gemm_params *p
    int isa
    long MC, NC, nnb


cdef void _gemm_item(void *ctx, long it) noexcept nogil:
    cdef _gemm_job *j = <_gemm_job *> ctx
    cdef fc_gemm_params *p = j.p
    cdef long i0 = (it // j.nnb) * j.MC
    cdef long j0 = (it % j.nnb) * j.NC
    cdef long i1 = min(i0 + j.MC, p.M)
    cdef long j1 = min(j0 + j.NC, p.N)
    fc_gemm_block(j.isa, p, i0, i1, j0, j1)


cdef void sgemm_exec(fc_gemm_params *p, int n_threads) noexcept nogil:
    cdef long MC = 96, NC = 256
    cdef long nmb, nnb
    cdef int nt = n_threads
    cdef double flops = 2.0 * p.M * p.N * p.K
    cdef _gemm_job job
    if p.M <= 0 or p.N <= 0:
        return
    if flops < 2e5:
        nt = 1
    nmb = (p.M + MC - 1) // MC
    nnb = (p.N + NC - 1) // NC
    while nmb * nnb < 4 * nt and NC > NR:
        NC = NC // 2
        nnb = (p.N + NC - 1) // NC
    while nmb * nnb < 4 * nt and MC > MR:
        MC = ((MC // 2 + MR - 1) // MR) * MR
        nmb = (p.M + MC - 1) // MC
    job.p, job.isa, job.MC, job.NC, job.nnb = p, _isa, MC, NC, nnb
    parallel_for(nt, nmb * nnb, _gemm_item, &job)


def _f32c(a, name):
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.c_contiguous:
        raise TypeError("%s must be a C-contiguous float32 ndarray" % name)
    return a


def pack_b(b, bint trans=False):
    """Pack the right operand once: b[K, N] (or b[N, K] with trans=True, i.e. use
    b.T) -> float32 [ceil(N/16), K, 16], zero padded columns."""
    b = np.asarray(b, dtype=np.float32)      # (any strides: a transposed view is fine)
    if trans:
        b = b.T
    K, N = b.shape
    cdef long full = N // NR, nb = (N + NR - 1) // NR
    # the panels written in one pass, with no contiguous copy of a transposed b and no
    # zero-padded intermediate (a fresh process spent 5-9 ms in those for a 1000x512 /
    # 1000x1280 classifier)
    out = np.empty((nb, K, NR), np.float32)
    out[:full] = b[:, :full * NR].reshape(K, full, NR).transpose(1, 0, 2)
    if full < nb:
        out[full] = 0
        out[full, :, :N - full * NR] = b[:, full * NR:]
    return out


def pack_a(a, bint trans=False):
    """Pack the left operand once: a[M, K] (or a[K, M] with trans=True) ->
    float32 [ceil(M/6), K, 6], zero padded rows.  For conv-as-GEMM the conv
    weights W[M, C/g*kh*kw] are the packed left operand."""
    a = np.asarray(a, dtype=np.float32)
    if trans:
        a = a.T
    M, K = a.shape
    na = (M + MR - 1) // MR
    ap = np.zeros((na * MR, K), np.float32)
    ap[:M] = a
    return np.ascontiguousarray(ap.reshape(na, MR, K).transpose(0, 2, 1))


cdef _fill(fc_gemm_params *p, c, bias, int bias_axis, int act_kind, float p0, float p1, slope,
           bint accumulate):
    _f32c(c, "c")
    if c.ndim != 2:
        raise ValueError("c must be 2D [M, N]")
    cdef float[:, ::1] cv = c
    p.c = &cv[0, 0] if c.size else NULL
    p.ldc = c.shape[1]
    p.M = c.shape[0]
    p.N = c.shape[1]
    p.bias = NULL
    p.bias_axis = bias_axis
    p.accumulate = accumulate
    p.act.kind = act_kind
    p.act.p0 = p0
    p.act.p1 = p1
    p.act.slope = NULL
    cdef const float[::1] bv, sv
    if bias is not None:
        _f32c(bias, "bias")
        if bias_axis not in (0, 1) or bias.shape[0] != c.shape[bias_axis]:
            raise ValueError("bias must have length c.shape[bias_axis]")
        bv = bias
        p.bias = &bv[0]
    if act_kind == 10:
        if slope is None:
            raise ValueError("PRELU needs slope (length of c.shape[bias_axis])")
        _f32c(slope, "slope")
        if slope.shape[0] != c.shape[bias_axis]:
            raise ValueError("slope must have length c.shape[bias_axis]")
        sv = slope
        p.act.slope = &sv[0]


def sgemm_packed(a, packed_b, c, bias=None, int bias_axis=1, int act_kind=0, float act_p0=0.0,
                 float act_p1=0.0, slope=None, bint accumulate=False, int n_threads=1):
    """c[M, N] = act(a[M, K] @ B + bias (+ c if accumulate)).
    a: float32 [M, K] C-contiguous; packed_b: pack_b(B[K, N]) -> [ceil(N/16), K, 16];
    bias: [M] (bias_axis=0, per row) or [N] (bias_axis=1, per column) or None;
    slope: PRELU slopes along bias_axis.  Returns c."""
    cdef fc_gemm_params p
    _f32c(a, "a"); _f32c(packed_b, "packed_b")
    _fill(&p, c, bias, bias_axis, act_kind, act_p0, act_p1, slope, accumulate)
    if a.ndim != 2 or a.shape[0] != p.M or packed_b.ndim != 3 or packed_b.shape[2] != NR \
            or packed_b.shape[1] != a.shape[1] or packed_b.shape[0] != (p.N + NR - 1) // NR:
        raise ValueError("shape mismatch: a %r, packed_b %r, c %r" % (a.shape, packed_b.shape, c.shape))
    p.K = a.shape[1]
    if p.K == 0:
        raise ValueError("K must be > 0")
    cdef const float[:, ::1] av = a
    cdef const float[:, :, ::1] bv = packed_b
    p.a = &av[0, 0] if a.size else NULL
    p.lda = a.shape[1]
    p.a_packed = 0
    p.b = &bv[0, 0, 0]
    p.ldb = 0
    p.b_packed = 1
    with nogil:
        sgemm_exec(&p, n_threads)
    return c


cdef struct _gemm_step_args:
    fc_gemm_params p
    int n_threads


cdef void _gemm_step(void *a) noexcept nogil:
    cdef _gemm_step_args *g = <_gemm_step_args *> a
    sgemm_exec(&g.p, g.n_threads)


def sgemm_packed_call(a, packed_b, c, bias=None, int bias_axis=1, bint accumulate=False,
                      int n_threads=1):
    """sgemm_packed(a, packed_b, c, bias, bias_axis, accumulate=..., n_threads=...) as a
    native executor step (the arrays are checked now and kept alive by the step)."""
    cdef _gemm_step_args *g = <_gemm_step_args *> malloc(sizeof(_gemm_step_args))
    if g == NULL:
        raise MemoryError()
    try:
        _f32c(a, "a"); _f32c(packed_b, "packed_b")
        _fill(&g.p, c, bias, bias_axis, 0, 0.0, 0.0, None, accumulate)
        if a.ndim != 2 or a.shape[0] != g.p.M or packed_b.ndim != 3 or packed_b.shape[2] != NR \
                or packed_b.shape[1] != a.shape[1] or packed_b.shape[0] != (g.p.N + NR - 1) // NR \
                or a.shape[1] == 0:
            raise ValueError("shape mismatch: a %r, packed_b %r, c %r" % (a.shape, packed_b.shape, c.shape))
    except BaseException:
        free(g)
        raise
    cdef const float[:, ::1] av = a
    cdef const float[:, :, ::1] bv = packed_b
    g.p.K = a.shape[1]
    g.p.a = &av[0, 0] if a.size else NULL
    g.p.lda = a.shape[1]
    g.p.a_packed = 0
    g.p.b = &bv[0, 0, 0]
    g.p.ldb = 0
    g.p.b_packed = 1
    g.n_threads = n_threads
    return make_c_call(_gemm_step, g, (a, packed_b, c, bias))


def sgemm_packed_a(packed_a, b, c, bias=None, int bias_axis=0, int act_kind=0, float act_p0=0.0,
                   float act_p1=0.0, slope=None, bint accumulate=False, int n_threads=1):
    """c[M, N] = act(A @ b[K, N] + bias (+ c)), A = the packed constant left operand
    (pack_a(A[M, K]) -> [ceil(M/6), K, 6]), b float32 [K, N] C-contiguous.
    Conv-as-GEMM: Y[M, S] = W[M, K] @ col[K, S] with bias per row (bias_axis=0)."""
    cdef fc_gemm_params p
    _f32c(packed_a, "packed_a"); _f32c(b, "b")
    _fill(&p, c, bias, bias_axis, act_kind, act_p0, act_p1, slope, accumulate)
    if b.ndim != 2 or b.shape[1] != p.N or packed_a.ndim != 3 or packed_a.shape[2] != MR \
            or packed_a.shape[1] != b.shape[0] or packed_a.shape[0] != (p.M + MR - 1) // MR:
        raise ValueError("shape mismatch: packed_a %r, b %r, c %r" % (packed_a.shape, b.shape, c.shape))
    p.K = b.shape[0]
    if p.K == 0:
        raise ValueError("K must be > 0")
    cdef const float[:, :, ::1] av = packed_a
    cdef const float[:, ::1] bv = b
    p.a = &av[0, 0, 0]
    p.lda = 0
    p.a_packed = 1
    p.b = &bv[0, 0] if b.size else NULL
    p.ldb = b.shape[1]
    p.b_packed = 0
    with nogil:
        sgemm_exec(&p, n_threads)
    return c


def sgemm(a, b, c, int n_threads=1, bint accumulate=False, bias=None, int bias_axis=1,
          int act_kind=0, float act_p0=0.0, float act_p1=0.0, slope=None):
    """Unpacked convenience for dynamic operands: c[M, N] = act(a[M, K] @ b[K, N]
    + bias (+ c)); a, b, c float32 C-contiguous.  Returns c."""
    cdef fc_gemm_params p
    _f32c(a, "a"); _f32c(b, "b")
    _fill(&p, c, bias, bias_axis, act_kind, act_p0, act_p1, slope, accumulate)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != p.M or b.shape[1] != p.N or a.shape[1] != b.shape[0]:
        raise ValueError("shape mismatch: a %r, b %r, c %r" % (a.shape, b.shape, c.shape))
    p.K = a.shape[1]
    if p.K == 0:
        raise ValueError("K must be > 0")
    cdef const float[:, ::1] av = a
    cdef const float[:, ::1] bv = b
    p.a = &av[0, 0] if a.size else NULL
    p.lda = a.shape[1]
    p.a_packed = 0
    p.b = &bv[0, 0] if b.size else NULL
    p.ldb = b.shape[1]
    p.b_packed = 0
    with nogil:
        sgemm_exec(&p, n_threads)
    return c


# ----------------------------------------------------------------------------- peak probe

cdef struct _peak_job:
    int isa
    long iters
    float *res


cdef void _peak_item(void *ctx, long t) noexcept nogil:
    # one probe per item, n_threads items: each thread of the job runs one concurrently
    cdef _peak_job *j = <_peak_job *> ctx
    j.res[t] = fc_peak_run(j.isa, j.iters, 1.0 + t)


cdef double _peak_run(int isa, int nt, long iters) noexcept nogil:
    cdef _peak_job job
    cdef float one = 0
    cdef double s = 0
    cdef int t
    if nt < 1:
        nt = 1
    job.isa, job.iters = isa, iters
    job.res = <float *> malloc(nt * sizeof(float)) if nt > 1 else &one
    if job.res == NULL:
        return -1
    parallel_for(nt, nt, _peak_item, &job)
    for t in range(nt):
        s += job.res[t]
    if nt > 1:
        free(job.res)
    return s


def fma_peak_gflops(int n_threads=1, double seconds=0.2, isa=None, clock="wall"):
    """Achieved GFLOP/s of a register-resident FMA loop (12 independent 8-wide
    chains per thread, dispatched ISA) on n_threads threads for ~seconds.
    clock="cpu" divides by CPU time (thread time for 1 thread, process time / n
    otherwise) instead of wall time: robust on a loaded, shared machine."""
    cdef int use = _isa
    if isa is not None:
        use = {v: k for k, v in _ISA_NAMES.items()}[isa]
    cdef long iters = 100000
    cdef double t0, dt, div = 1.0
    clk = time.perf_counter
    if clock == "cpu":
        if n_threads == 1:
            clk = time.thread_time
        else:
            clk = time.process_time
            div = n_threads
    while True:
        t0 = clk()
        with nogil:
            _peak_run(use, n_threads, iters)
        dt = (clk() - t0) / div
        if dt > seconds * 0.25 or iters > (1 << 40):
            break
        iters *= 4
    best = 0.0
    for _ in range(3):
        t0 = clk()
        with nogil:
            _peak_run(use, n_threads, iters)
        dt = (clk() - t0) / div
        best = max(best, FC_PEAK_FLOPS_PER_ITER * iters * n_threads / dt * 1e-9)
    return best
