# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Elementwise float32 kernels: activations, broadcast binary ops, per-channel affine.

Design: flat loops over contiguous float32 memory.  The switch on the
operation sits outside the element loop so each loop is a tight, vectorizable
body.  Threading: fastcnn's thread pool (threadpool.pxd parallel_for) runs the
extent cut into up to 4 * n_threads contiguous parts (a thread delayed by another
process only shortens its share) -- element chunks on 64-float boundaries for
flat/scalar operands (so exp's 64-element blocks are those of the serial run),
row chunks (rows of the [outer, C, inner] view) when an operand or the PReLU
slope varies per channel, or runs of whole periods for an inner-dimension broadcast
(a per-channel operand with inner < 64, [N,H,W,C] op [C]: the operand expanded once per
item into a stack tile of whole periods, then one vectorized loop per run of rows,
bin_periodic.h per ISA).  Below SERIAL_ELEMENTS elements everything is one
item, run on the calling thread.  FTZ/DAZ are on for every run (the pool's, serial
ones included), so results do not depend on the thread count.  The GIL is released
around every loop.  Kernels know nothing of ONNX: the ops layer maps ONNX
ops to activation codes (epilogue.h, plus ELT_* in elementwise.pxd).

Each kernel has two Python entry points: a checked one taking arrays
(`activation`, `binary`, `affine_channel`: tests and one-off use), and an
unchecked one taking addresses (`*_p`) that the ops layer pre-binds with
functools.partial, so a run costs one C call per node.
"""
from fastcnn._kernels.threadpool cimport parallel_for
from libc.math cimport expf, log1pf, erff, fabsf, sqrtf, logf
from libc.stdint cimport uintptr_t

cdef extern from "epilogue.h" nogil:
    enum:
        FASTCNN_ACT_NONE
        FASTCNN_ACT_RELU
        FASTCNN_ACT_CLIP
        FASTCNN_ACT_LEAKY_RELU
        FASTCNN_ACT_HARD_SIGMOID
        FASTCNN_ACT_HARD_SWISH
        FASTCNN_ACT_SIGMOID
        FASTCNN_ACT_SILU
        FASTCNN_ACT_TANH
        FASTCNN_ACT_MISH
        FASTCNN_ACT_PRELU
        FASTCNN_ACT_ELU
        FASTCNN_ACT_GELU

# Per-ISA builds of the transcendental activation loops (cpu.h convention: the same C body
# compiled for portable / AVX2+FMA / AVX-512 with function-level target attributes, picked
# once by CPU level).  The loops are branch-free so each build auto-vectorizes at its width.
cdef extern from *:
    """
    #include "transc.h"
    static int fc_transc_portable(const float *x, float *out, long n, int kind, float p0, float p1) {
        return fc_transc_body(x, out, n, kind, p0, p1);
    }
    #if FASTCNN_X86
    FASTCNN_TARGET_AVX2 static int fc_transc_avx2(const float *x, float *out, long n, int kind, float p0, float p1) {
        return fc_transc_body(x, out, n, kind, p0, p1);
    }
    FASTCNN_TARGET_AVX512 static int fc_transc_avx512(const float *x, float *out, long n, int kind, float p0, float p1) {
        return fc_transc_body(x, out, n, kind, p0, p1);
    }
    #endif
    static int fc_transc_isa = -1;   /* -1: by CPU; else forced FASTCNN_ISA_* (tests) */
    static int fc_transc(const float *x, float *out, long n, int kind, float p0, float p1) {
        int level = fc_transc_isa >= 0 ? fc_transc_isa : fastcnn_cpu_level();
    #if FASTCNN_X86
        if (level >= FASTCNN_ISA_AVX512) return fc_transc_avx512(x, out, n, kind, p0, p1);
        if (level >= FASTCNN_ISA_AVX2) return fc_transc_avx2(x, out, n, kind, p0, p1);
    #endif
        (void)level;
        return fc_transc_portable(x, out, n, kind, p0, p1);
    }
    """
    int fc_transc(const float* x, float* out, long n, int kind, float p0, float p1) noexcept nogil
    int fc_transc_isa
    int fastcnn_cpu_level() noexcept nogil


# The periodic binary loops (bin_periodic.h): an operand that repeats along the flattened
# output with a short period (an inner-dimension broadcast, [N,H,W,C] op [C]), per ISA.
cdef extern from "bin_periodic.h" nogil:
    void fc_bin_periodic(int op, const float* x, const float* t, int t_first, float* y,
                         long rows, long P)
    int fc_bin_periodic_isa


def set_isa(int level):
    """Force the ISA of the transcendental and periodic binary loops: -1 = by CPU (default), 0 portable,
    1 AVX2, 2 AVX-512 (tests; a level above the CPU's is clamped).  Returns the previous."""
    global fc_transc_isa, fc_bin_periodic_isa
    prev = fc_transc_isa
    fc_transc_isa = -1 if level < 0 else min(level, fastcnn_cpu_level())
    fc_bin_periodic_isa = fc_transc_isa
    return prev


def cpu_level():
    return fastcnn_cpu_level()


SERIAL_ELEMENTS = 32768
cdef Py_ssize_t _SERIAL = 32768

# Python-visible codes (the ops layer imports these names).
ACT = dict(NONE=FASTCNN_ACT_NONE, RELU=FASTCNN_ACT_RELU, CLIP=FASTCNN_ACT_CLIP,
           LEAKY_RELU=FASTCNN_ACT_LEAKY_RELU, HARD_SIGMOID=FASTCNN_ACT_HARD_SIGMOID,
           HARD_SWISH=FASTCNN_ACT_HARD_SWISH, SIGMOID=FASTCNN_ACT_SIGMOID, SILU=FASTCNN_ACT_SILU,
           TANH=FASTCNN_ACT_TANH, MISH=FASTCNN_ACT_MISH, PRELU=FASTCNN_ACT_PRELU,
           ELU=FASTCNN_ACT_ELU, GELU=FASTCNN_ACT_GELU,
           SELU=ELT_SELU, SOFTPLUS=ELT_SOFTPLUS, SOFTSIGN=ELT_SOFTSIGN, GELU_TANH=ELT_GELU_TANH,
           THRESHOLDED_RELU=ELT_THRESHOLDED_RELU, CELU=ELT_CELU, EXP=ELT_EXP, NEG=ELT_NEG,
           ABS=ELT_ABS, SQRT=ELT_SQRT, RECIPROCAL=ELT_RECIPROCAL, LOG=ELT_LOG, ERF=ELT_ERF,
           AFFINE=ELT_AFFINE)
BIN = dict(ADD=BIN_ADD, SUB=BIN_SUB, MUL=BIN_MUL, DIV=BIN_DIV, MAX=BIN_MAX, MIN=BIN_MIN)
OPERAND = dict(FULL=OPERAND_FULL, CHANNEL=OPERAND_CHANNEL, SCALAR=OPERAND_SCALAR,
               LANES=OPERAND_LANES)


# ---------------------------------------------------------------------------------------------
# scalar helpers
cdef inline float _clampf(float v, float lo, float hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


ctypedef union _fbits:
    float f
    int i


cdef inline float _fexp(float x) noexcept nogil:
    """expf without branches or libm calls (Cephes: 2^n * p(r), |rel err| < 2 ulp), so
    loops calling it auto-vectorize.  Rounding through the 1.5*2^23 magic constant."""
    cdef float n, r, p
    cdef _fbits s
    x = _clampf(x, -87.33654, 88.37626)
    n = (x * <float>1.44269504088896341 + <float>12582912.0) - <float>12582912.0
    r = x - n * <float>0.693359375 + n * <float>2.12194440e-4
    p = ((((<float>1.9875691500e-4 * r + <float>1.3981999507e-3) * r + <float>8.3334519073e-3) * r
          + <float>4.1665795894e-2) * r + <float>1.6666665459e-1) * r + <float>5.0000001201e-1
    p = p * r * r + r + <float>1.0
    s.i = (<int>n + 127) << 23
    return p * s.f


cdef inline float _ftanh(float x) noexcept nogil:
    """tanhf without branches (Cephes: odd polynomial below |x| 0.625, else
    1 - 2 / (exp(2|x|) + 1) with the sign restored)."""
    cdef float a = fabsf(x)
    cdef float z = x * x
    cdef float small = ((((<float>-5.70498872745e-3 * z + <float>2.06390887954e-2) * z
                          - <float>5.37397855454e-2) * z + <float>1.33314422036e-1) * z
                        - <float>3.33332819422e-1) * z * x + x
    cdef float big = <float>1.0 - <float>2.0 / (_fexp(<float>2.0 * _clampf(a, 0.0, 10.0)) + <float>1.0)
    big = big if x >= 0.0 else -big
    return small if a < <float>0.625 else big


cdef inline float _fexpm1_neg(float x) noexcept nogil:
    """exp(x) - 1 for x <= 0 without cancellation near 0 (Taylor below 0.35 in size)."""
    cdef float t = ((((((<float>(1.0 / 5040) * x + <float>(1.0 / 720)) * x + <float>(1.0 / 120)) * x
                       + <float>(1.0 / 24)) * x + <float>(1.0 / 6)) * x + <float>0.5) * x + <float>1.0) * x
    return t if x > <float>-0.35 else _fexp(x) - <float>1.0


cdef inline float _ferfc_pos(float z) noexcept nogil:
    """erfc(z) for z >= 0 with relative error ~1e-7 (Numerical Recipes' erfcc Chebyshev fit),
    branch-free; 0.5 x erfc(-x / sqrt 2) is GELU without the 1 + erf cancellation."""
    cdef float t = <float>1.0 / (<float>1.0 + <float>0.5 * z)
    cdef float q = t * (<float>-0.82215223 + t * <float>0.17087277)
    q = t * (<float>1.48851587 + q)
    q = t * (<float>-1.13520398 + q)
    q = t * (<float>0.27886807 + q)
    q = t * (<float>-0.18628806 + q)
    q = t * (<float>0.09678418 + q)
    q = t * (<float>0.37409196 + q)
    q = t * (<float>1.00002368 + q)
    return t * _fexp(-z * z - <float>1.26551223 + q)


cdef inline float _fsigmoid(float x) noexcept nogil:
    return <float>1.0 / (<float>1.0 + _fexp(-x))


cdef inline float _softplus(float x) noexcept nogil:
    if x > 20.0:
        return x
    return log1pf(expf(x))


# ---------------------------------------------------------------------------------------------
# activations on one contiguous range (no PReLU: that needs the channel)
cdef void act_range(const float* x, float* out, Py_ssize_t n, int kind,
                    float p0, float p1) noexcept nogil:
    cdef Py_ssize_t i
    cdef float v, t
    if fc_transc(x, out, n, kind, p0, p1):
        return
    if kind == FASTCNN_ACT_NONE:
        if out != x:
            for i in range(n):
                out[i] = x[i]
    elif kind == FASTCNN_ACT_RELU:
        for i in range(n):
            v = x[i]
            out[i] = v if v > 0.0 else 0.0
    elif kind == FASTCNN_ACT_CLIP:
        for i in range(n):
            v = x[i]
            v = p0 if v < p0 else v
            out[i] = p1 if v > p1 else v
    elif kind == FASTCNN_ACT_LEAKY_RELU:
        for i in range(n):
            v = x[i]
            out[i] = v if v >= 0.0 else p0 * v
    elif kind == FASTCNN_ACT_HARD_SIGMOID:
        for i in range(n):
            out[i] = _clampf(p0 * x[i] + p1, 0.0, 1.0)
    elif kind == FASTCNN_ACT_HARD_SWISH:
        for i in range(n):
            v = x[i]
            out[i] = v * _clampf(v * <float>(1.0 / 6.0) + 0.5, 0.0, 1.0)
    elif kind == FASTCNN_ACT_SIGMOID:
        for i in range(n):
            out[i] = _fsigmoid(x[i])
    elif kind == FASTCNN_ACT_SILU:
        for i in range(n):
            v = x[i]
            out[i] = v * _fsigmoid(v)
    elif kind == FASTCNN_ACT_TANH:
        for i in range(n):
            out[i] = _ftanh(x[i])
    elif kind == FASTCNN_ACT_MISH:
        # tanh(log(1 + e^x)) = m / (m + 2) with m = e^x (e^x + 2); e^x capped at x = 20
        for i in range(n):
            v = x[i]
            t = _fexp(v if v < 20.0 else <float>20.0)
            t = t * (t + <float>2.0)
            out[i] = v * t / (t + <float>2.0)
    elif kind == FASTCNN_ACT_ELU:
        for i in range(n):
            v = x[i]
            t = p0 * _fexpm1_neg(v if v < 0.0 else <float>0.0)
            out[i] = v if v >= 0.0 else t
    elif kind == FASTCNN_ACT_GELU:
        for i in range(n):
            v = x[i]
            t = _ferfc_pos(fabsf(v) * <float>0.70710678118654752)
            out[i] = <float>0.5 * v * (t if v < 0.0 else <float>2.0 - t)
    elif kind == ELT_SELU:
        for i in range(n):
            v = x[i]
            t = p0 * _fexpm1_neg(v if v < 0.0 else <float>0.0)
            out[i] = p1 * (v if v > 0.0 else t)
    elif kind == ELT_SOFTPLUS:
        for i in range(n):
            out[i] = _softplus(x[i])
    elif kind == ELT_SOFTSIGN:
        for i in range(n):
            v = x[i]
            out[i] = v / (1.0 + fabsf(v))
    elif kind == ELT_GELU_TANH:
        for i in range(n):
            v = x[i]
            out[i] = <float>0.5 * v * (<float>1.0 + _ftanh(<float>0.7978845608028654 * (v + <float>0.044715 * v * v * v)))
    elif kind == ELT_THRESHOLDED_RELU:
        for i in range(n):
            v = x[i]
            out[i] = v if v > p0 else 0.0
    elif kind == ELT_CELU:
        for i in range(n):
            v = x[i]
            t = v / p0
            t = p0 * _fexpm1_neg(t if t < 0.0 else <float>0.0)
            out[i] = v if v > 0.0 else t
    elif kind == ELT_EXP:
        exp_range(x, out, n)
    elif kind == ELT_NEG:
        for i in range(n):
            out[i] = -x[i]
    elif kind == ELT_ABS:
        for i in range(n):
            out[i] = fabsf(x[i])
    elif kind == ELT_SQRT:
        for i in range(n):
            out[i] = sqrtf(x[i])
    elif kind == ELT_RECIPROCAL:
        for i in range(n):
            out[i] = 1.0 / x[i]
    elif kind == ELT_LOG:
        for i in range(n):
            out[i] = logf(x[i])
    elif kind == ELT_ERF:
        for i in range(n):
            out[i] = erff(x[i])
    elif kind == ELT_AFFINE:
        for i in range(n):
            out[i] = p0 * x[i] + p1


cdef void exp_range(const float* x, float* out, Py_ssize_t n) noexcept nogil:
    """exp in blocks of 64: the vectorized polynomial when the whole block is inside
    [-87.3, 88.3], libm expf (overflow to inf, denormals) for a block that is not."""
    cdef Py_ssize_t b, i, e
    cdef int outside
    cdef float v
    for b in range(0, n, 64):
        e = b + 64 if b + 64 < n else n
        outside = 0
        for i in range(b, e):
            v = x[i]
            outside |= (v < <float>-87.33654) | (v > <float>88.37626) | (v != v)
        if outside:
            for i in range(b, e):
                out[i] = expf(x[i])
        else:
            for i in range(b, e):
                out[i] = _fexp(x[i])


cdef inline void prelu_rows(const float* x, float* out, const float* slope, Py_ssize_t r0,
                            Py_ssize_t r1, Py_ssize_t inner, Py_ssize_t n_channels) noexcept nogil:
    cdef Py_ssize_t r, i
    cdef float s, v
    cdef const float* xr
    cdef float* yr
    for r in range(r0, r1):
        s = slope[r % n_channels]
        xr = x + r * inner
        yr = out + r * inner
        for i in range(inner):
            v = xr[i]
            yr[i] = v if v >= 0.0 else s * v


cdef inline int _nt(Py_ssize_t n, int n_threads) noexcept nogil:
    if n < _SERIAL or n_threads <= 1:
        return 1
    return n_threads


# Every run goes through the pool's parallel_for: with nt > 1 the extent (elements or rows)
# is cut into _PARTS_PER_THREAD * nt contiguous parts, one item each; with nt == 1 it is one
# item that the pool runs on the caller.  Either way the pool sets FTZ/DAZ for the run, so
# denormal results are the same (flushed) for every thread count.  One job struct serves
# every kernel; each uses its own fields.
cdef int _PARTS_PER_THREAD = 4

cdef struct _elt_job:
    const float* x          # activation / affine input
    const float* a          # binary operands
    const float* b
    const float* slope      # PReLU slopes
    const float* scale      # affine
    const float* bias
    float* out
    Py_ssize_t extent       # elements (flat kernels) or rows (row kernels)
    Py_ssize_t chunk        # elements or rows per item
    Py_ssize_t C, inner, lanes, n_channels
    int op, a_mode, b_mode, kind
    bint a_one, b_one
    float p0, p1


cdef inline long _split(_elt_job* j, Py_ssize_t extent, int nt, Py_ssize_t align) noexcept nogil:
    """Set j.extent / j.chunk (a multiple of `align`) for nt threads; returns the item count."""
    cdef Py_ssize_t parts = 1 if nt <= 1 else <Py_ssize_t>nt * _PARTS_PER_THREAD
    j.extent = extent
    if extent <= 0:
        j.chunk = 1
        return 0
    if parts > extent:
        parts = extent
    j.chunk = ((extent + parts - 1) // parts + align - 1) // align * align
    return (extent + j.chunk - 1) // j.chunk


cdef inline bint _range(_elt_job* j, long it, Py_ssize_t* s, Py_ssize_t* e) noexcept nogil:
    s[0] = it * j.chunk
    e[0] = s[0] + j.chunk
    if e[0] > j.extent:
        e[0] = j.extent
    return s[0] < e[0]


cdef void _act_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e
    if _range(j, it, &s, &e):
        act_range(j.x + s, j.out + s, e - s, j.kind, j.p0, j.p1)


cdef void _prelu_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e
    if _range(j, it, &s, &e):
        prelu_rows(j.x, j.out, j.slope, s, e, j.inner, j.n_channels)


cdef void activation_c(const float* x, float* out, Py_ssize_t n, int kind, float p0, float p1,
                       const float* slope, Py_ssize_t channel_stride, Py_ssize_t n_channels,
                       int n_threads) noexcept nogil:
    cdef int nt = _nt(n, n_threads)
    cdef Py_ssize_t rows
    cdef _elt_job j
    j.x, j.out, j.kind, j.p0, j.p1 = x, out, kind, p0, p1
    if kind == FASTCNN_ACT_PRELU:
        rows = n // channel_stride if channel_stride > 0 else 0
        j.slope, j.inner, j.n_channels = slope, channel_stride, n_channels
        parallel_for(nt, _split(&j, rows, nt, 1), _prelu_item, &j)
    else:
        parallel_for(nt, _split(&j, n, nt, 64), _act_item, &j)


# ---------------------------------------------------------------------------------------------
# binary ops on one row: a and b are either full rows or broadcast single values
cdef void bin_row(int op, const float* a, bint a_one, const float* b, bint b_one, float* out,
                  Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef float va, vb, x, y
    if a_one and b_one:
        va = a[0]
        vb = b[0]
        if op == BIN_ADD: x = va + vb
        elif op == BIN_SUB: x = va - vb
        elif op == BIN_MUL: x = va * vb
        elif op == BIN_DIV: x = va / vb
        elif op == BIN_MAX: x = va if va >= vb else vb
        else: x = va if va <= vb else vb
        for i in range(n):
            out[i] = x
    elif b_one:
        vb = b[0]
        if op == BIN_ADD:
            for i in range(n):
                out[i] = a[i] + vb
        elif op == BIN_SUB:
            for i in range(n):
                out[i] = a[i] - vb
        elif op == BIN_MUL:
            for i in range(n):
                out[i] = a[i] * vb
        elif op == BIN_DIV:
            for i in range(n):
                out[i] = a[i] / vb
        elif op == BIN_MAX:
            for i in range(n):
                x = a[i]
                out[i] = x if x >= vb else vb
        else:
            for i in range(n):
                x = a[i]
                out[i] = x if x <= vb else vb
    elif a_one:
        va = a[0]
        if op == BIN_ADD:
            for i in range(n):
                out[i] = va + b[i]
        elif op == BIN_SUB:
            for i in range(n):
                out[i] = va - b[i]
        elif op == BIN_MUL:
            for i in range(n):
                out[i] = va * b[i]
        elif op == BIN_DIV:
            for i in range(n):
                out[i] = va / b[i]
        elif op == BIN_MAX:
            for i in range(n):
                y = b[i]
                out[i] = va if va >= y else y
        else:
            for i in range(n):
                y = b[i]
                out[i] = va if va <= y else y
    else:
        if op == BIN_ADD:
            for i in range(n):
                out[i] = a[i] + b[i]
        elif op == BIN_SUB:
            for i in range(n):
                out[i] = a[i] - b[i]
        elif op == BIN_MUL:
            for i in range(n):
                out[i] = a[i] * b[i]
        elif op == BIN_DIV:
            for i in range(n):
                out[i] = a[i] / b[i]
        elif op == BIN_MAX:
            for i in range(n):
                x = a[i]
                y = b[i]
                out[i] = x if x >= y else y
        else:
            for i in range(n):
                x = a[i]
                y = b[i]
                out[i] = x if x <= y else y


cdef inline const float* _operand_row(const float* x, int mode, Py_ssize_t r, Py_ssize_t c,
                                      Py_ssize_t inner, Py_ssize_t lanes) noexcept nogil:
    if mode == OPERAND_FULL:
        return x + r * inner
    if mode == OPERAND_CHANNEL:
        return x + c
    if mode == OPERAND_LANES:
        return x + c * lanes
    return x


cdef inline void bin_lanes8(int op, const float* a, bint a_vec, const float* b, bint b_vec,
                            float* out, Py_ssize_t n) noexcept nogil:
    """out = a op b over n (a multiple of 8) floats, where the operand flagged *_vec is one
    8-float vector repeated (the channel-blocked per-channel operand); the other is full."""
    cdef float v[8]
    cdef Py_ssize_t j, l
    cdef const float* f = b if a_vec else a
    for l in range(8):
        v[l] = a[l] if a_vec else b[l]
    if op == BIN_MUL:
        for j in range(n // 8):
            for l in range(8):
                out[j * 8 + l] = f[j * 8 + l] * v[l]
    elif op == BIN_ADD:
        for j in range(n // 8):
            for l in range(8):
                out[j * 8 + l] = f[j * 8 + l] + v[l]
    elif op == BIN_SUB and b_vec:
        for j in range(n // 8):
            for l in range(8):
                out[j * 8 + l] = f[j * 8 + l] - v[l]
    elif op == BIN_SUB:
        for j in range(n // 8):
            for l in range(8):
                out[j * 8 + l] = v[l] - f[j * 8 + l]
    else:
        for j in range(n // 8):
            bin_row(op, a if a_vec else a + j * 8, False, b if b_vec else b + j * 8, False,
                    out + j * 8, 8)


cdef inline void bin_rows(int op, const float* a, int a_mode, const float* b, int b_mode,
                          float* out, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                          Py_ssize_t inner, Py_ssize_t lanes, int act_kind, float p0,
                          float p1) noexcept nogil:
    cdef Py_ssize_t r, c, j
    cdef const float* ar
    cdef const float* br
    cdef bint a_one = a_mode == OPERAND_CHANNEL or a_mode == OPERAND_SCALAR
    cdef bint b_one = b_mode == OPERAND_CHANNEL or b_mode == OPERAND_SCALAR
    cdef bint periodic = a_mode == OPERAND_LANES or b_mode == OPERAND_LANES
    for r in range(r0, r1):
        c = r % C
        ar = _operand_row(a, a_mode, r, c, inner, lanes)
        br = _operand_row(b, b_mode, r, c, inner, lanes)
        if periodic and lanes == 8 and (a_mode == OPERAND_FULL or b_mode == OPERAND_FULL):
            bin_lanes8(op, ar, a_mode == OPERAND_LANES, br, b_mode == OPERAND_LANES,
                       out + r * inner, inner)
        elif periodic:
            # a LANES operand is one `lanes`-vector per channel, repeated over the row
            j = 0
            while j < inner:
                bin_row(op, ar + j if a_mode == OPERAND_FULL else ar, a_one,
                        br + j if b_mode == OPERAND_FULL else br, b_one, out + r * inner + j,
                        lanes)
                j += lanes
        else:
            bin_row(op, ar, a_one, br, b_one, out + r * inner, inner)
        if act_kind != FASTCNN_ACT_NONE:
            act_range(out + r * inner, out + r * inner, inner, act_kind, p0, p1)


cdef void _bin_flat_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e
    if _range(j, it, &s, &e):
        bin_row(j.op, j.a if j.a_one else j.a + s, j.a_one, j.b if j.b_one else j.b + s,
                j.b_one, j.out + s, e - s)
        if j.kind != FASTCNN_ACT_NONE:
            act_range(j.out + s, j.out + s, e - s, j.kind, j.p0, j.p1)


cdef void _bin_rows_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e
    if _range(j, it, &s, &e):
        bin_rows(j.op, j.a, j.a_mode, j.b, j.b_mode, j.out, s, e, j.C, j.inner, j.lanes,
                 j.kind, j.p0, j.p1)


# Inner-dimension broadcast: a CHANNEL operand over [outer, C, inner] with a short inner
# (inner == 1: the constant of the last axis, y[o, c] = x[o, c] op v[c]) repeats with
# period P = C * inner along the output.  The row path above would take P rows of `inner`
# elements (one call per element at inner == 1: 6 ms for [1,112,112,96] * [96]); instead
# v is expanded once per item into a tile of k whole periods (P * k <= _TILE floats, on the
# stack) and each run of k rows is one vectorized loop over x and the tile.  At inner == 1
# with P > _TILE, v itself is the period.  Items are runs of rows.
cdef enum:
    _TILE = 2048
cdef Py_ssize_t _PERIODIC_INNER = 64     # from this inner on, rows of `inner` are long enough


cdef inline bint _periodic(int a_mode, int b_mode, Py_ssize_t C, Py_ssize_t inner,
                           Py_ssize_t lanes) noexcept nogil:
    if lanes != 1 or inner >= _PERIODIC_INNER:
        return False
    if not ((a_mode == OPERAND_CHANNEL and b_mode == OPERAND_FULL) or
            (a_mode == OPERAND_FULL and b_mode == OPERAND_CHANNEL)):
        return False
    return inner == 1 or C * inner <= _TILE


cdef void _bin_periodic_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e, P, k, q, c, i, r, n
    cdef float tile[_TILE]
    cdef int t_first = j.a_mode == OPERAND_CHANNEL
    cdef const float* v = j.a if t_first else j.b
    cdef const float* x = j.b if t_first else j.a
    cdef const float* t = v
    if not _range(j, it, &s, &e):
        return
    P = j.C * j.inner
    k = 1
    if P <= _TILE:
        k = _TILE // P
        if k > e - s:
            k = e - s
        for q in range(k):
            if j.inner == 1:
                for c in range(j.C):
                    tile[q * P + c] = v[c]
            else:
                for c in range(j.C):
                    for i in range(j.inner):
                        tile[q * P + c * j.inner + i] = v[c]
        t = tile
    r = s
    while r < e:
        n = k if r + k <= e else e - r
        fc_bin_periodic(j.op, x + r * P, t, t_first, j.out + r * P, 1, n * P)
        if j.kind != FASTCNN_ACT_NONE:
            act_range(j.out + r * P, j.out + r * P, n * P, j.kind, j.p0, j.p1)
        r += n


cdef void binary_c(int op, const float* a, int a_mode, const float* b, int b_mode, float* out,
                   Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes,
                   int act_kind, float p0, float p1, int n_threads) noexcept nogil:
    cdef Py_ssize_t n = outer * C * inner
    cdef int nt = _nt(n, n_threads)
    cdef _elt_job j
    j.op, j.a, j.a_mode, j.b, j.b_mode, j.out = op, a, a_mode, b, b_mode, out
    j.kind, j.p0, j.p1 = act_kind, p0, p1
    if a_mode != OPERAND_CHANNEL and b_mode != OPERAND_CHANNEL and \
            a_mode != OPERAND_LANES and b_mode != OPERAND_LANES:
        # flat: element chunks
        j.a_one = a_mode == OPERAND_SCALAR
        j.b_one = b_mode == OPERAND_SCALAR
        parallel_for(nt, _split(&j, n, nt, 64), _bin_flat_item, &j)
    elif _periodic(a_mode, b_mode, C, inner, lanes):
        # inner-dimension broadcast: runs of whole periods (rows of the [outer, P] view)
        j.C, j.inner = C, inner
        parallel_for(nt, _split(&j, outer, nt, 1), _bin_periodic_item, &j)
    else:
        # an operand varies per channel: row chunks
        j.C, j.inner, j.lanes = C, inner, lanes
        parallel_for(nt, _split(&j, outer * C, nt, 1), _bin_rows_item, &j)


# ---------------------------------------------------------------------------------------------
cdef inline void affine8_loop(const float* x, float* out, const float* s, const float* t,
                              Py_ssize_t n, int act_kind, float p0, float p1) noexcept nogil:
    cdef float v
    cdef Py_ssize_t j, l
    if act_kind == FASTCNN_ACT_RELU:
        for j in range(n // 8):
            for l in range(8):
                v = x[j * 8 + l] * s[l] + t[l]
                out[j * 8 + l] = v if v > 0.0 else 0.0
    elif act_kind == FASTCNN_ACT_CLIP:
        for j in range(n // 8):
            for l in range(8):
                v = x[j * 8 + l] * s[l] + t[l]
                v = p0 if v < p0 else v
                out[j * 8 + l] = p1 if v > p1 else v
    else:
        for j in range(n // 8):
            for l in range(8):
                out[j * 8 + l] = x[j * 8 + l] * s[l] + t[l]


cdef inline void affine8_inplace(float* y, const float* s, const float* t, Py_ssize_t n,
                                 int act_kind, float p0, float p1) noexcept nogil:
    cdef float v
    cdef Py_ssize_t j, l
    if act_kind == FASTCNN_ACT_RELU:
        for j in range(n // 8):
            for l in range(8):
                v = y[j * 8 + l] * s[l] + t[l]
                y[j * 8 + l] = v if v > 0.0 else 0.0
    elif act_kind == FASTCNN_ACT_CLIP:
        for j in range(n // 8):
            for l in range(8):
                v = y[j * 8 + l] * s[l] + t[l]
                v = p0 if v < p0 else v
                y[j * 8 + l] = p1 if v > p1 else v
    else:
        for j in range(n // 8):
            for l in range(8):
                y[j * 8 + l] = y[j * 8 + l] * s[l] + t[l]


cdef inline void affine_lanes8(const float* x, const float* scale, const float* bias,
                               float* out, Py_ssize_t n, int act_kind, float p0,
                               float p1) noexcept nogil:
    """out = x * s + t over n (a multiple of 8) floats, s and t one 8-float vector repeated
    (a channel block's scale and bias); ReLU and Clip are applied in the same loop.  The
    planner runs BN in place (out == x): that case has a loop of its own over one pointer,
    since the compiler's overlap check sends an x -> out loop with out == x to scalar code
    (ReLU fused in place measured 1.5x slower than out of place)."""
    cdef float s[8]
    cdef float t[8]
    cdef Py_ssize_t l
    for l in range(8):
        s[l] = scale[l]
        t[l] = bias[l]
    if <const float*>out == x:
        affine8_inplace(out, s, t, n, act_kind, p0, p1)
    else:
        affine8_loop(x, out, s, t, n, act_kind, p0, p1)


cdef inline void affine_rows(const float* x, const float* scale, const float* bias, float* out,
                             Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C, Py_ssize_t inner,
                             Py_ssize_t lanes, int act_kind, float p0, float p1) noexcept nogil:
    cdef Py_ssize_t r, i, c, l
    cdef float sc, bi
    cdef const float* xr
    cdef const float* sp
    cdef const float* bp
    cdef float* yr
    for r in range(r0, r1):
        c = r % C
        xr = x + r * inner
        yr = out + r * inner
        if lanes == 8:      # channel-blocked, 8 lanes: one vectorizable loop per row
            affine_lanes8(xr, scale + c * 8, bias + c * 8, yr, inner, act_kind, p0, p1)
            if act_kind == FASTCNN_ACT_RELU or act_kind == FASTCNN_ACT_CLIP:
                continue    # applied in the same loop
        elif lanes > 1:     # channel-blocked: one scale/bias vector per channel block
            sp = scale + c * lanes
            bp = bias + c * lanes
            i = 0
            while i < inner:
                for l in range(lanes):
                    yr[i + l] = xr[i + l] * sp[l] + bp[l]
                i += lanes
        else:
            sc = scale[c]
            bi = bias[c]
            for i in range(inner):
                yr[i] = xr[i] * sc + bi
        if act_kind != FASTCNN_ACT_NONE:
            act_range(yr, yr, inner, act_kind, p0, p1)


cdef void _affine_item(void* ctx, long it) noexcept nogil:
    cdef _elt_job* j = <_elt_job*>ctx
    cdef Py_ssize_t s, e
    if _range(j, it, &s, &e):
        affine_rows(j.x, j.scale, j.bias, j.out, s, e, j.C, j.inner, j.lanes, j.kind, j.p0,
                    j.p1)


cdef void affine_channel_c(const float* x, const float* scale, const float* bias, float* out,
                           Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes,
                           int act_kind, float p0, float p1, int n_threads) noexcept nogil:
    cdef Py_ssize_t rows = outer * C
    cdef int nt = _nt(rows * inner, n_threads)
    cdef _elt_job j
    j.x, j.scale, j.bias, j.out = x, scale, bias, out
    j.C, j.inner, j.lanes, j.kind, j.p0, j.p1 = C, inner, lanes, act_kind, p0, p1
    parallel_for(nt, _split(&j, rows, nt, 1), _affine_item, &j)


# ---------------------------------------------------------------------------------------------
# Python entry points.  Checked (arrays) ...
def activation(const float[::1] x, float[::1] out, int kind, float p0=0.0, float p1=0.0,
               slope=None, Py_ssize_t channel_stride=1, Py_ssize_t n_channels=1,
               int n_threads=1):
    """out = act(x) elementwise (float32, contiguous 1-D views).  PRELU takes `slope`
    [n_channels]: element i uses slope[(i // channel_stride) % n_channels]."""
    cdef Py_ssize_t n = x.shape[0]
    cdef const float[::1] sl
    cdef const float* sp = NULL
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} elements, x has {n}")
    if kind == FASTCNN_ACT_PRELU:
        if slope is None:
            raise ValueError("PRELU needs slope")
        sl = slope
        if n_channels < 1 or sl.shape[0] < n_channels or channel_stride < 1 \
                or n % channel_stride:
            raise ValueError("bad slope / channel geometry")
        sp = &sl[0]
    if n == 0:
        return
    with nogil:
        activation_c(&x[0], &out[0], n, kind, p0, p1, sp, channel_stride, n_channels, n_threads)


def _operand_size(int mode, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                  Py_ssize_t lanes):
    if mode == OPERAND_FULL:
        return outer * C * inner
    if mode == OPERAND_CHANNEL:
        return C
    return C * lanes if mode == OPERAND_LANES else 1


def binary(int op, const float[::1] a, int a_mode, const float[::1] b, int b_mode,
           float[::1] out, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
           int act_kind=0, float p0=0.0, float p1=0.0, int n_threads=1, Py_ssize_t lanes=1):
    """out[o,c,i] = act(a op b) over the [outer, C, inner] view of out; each operand is
    FULL, CHANNEL ([C]), SCALAR ([1]) or LANES ([C, lanes], repeated along the row: the
    per-channel operand of a channel-blocked tensor, inner = spatial * lanes)."""
    if op < 0 or op > BIN_MIN or a_mode < 0 or a_mode > 3 or b_mode < 0 or b_mode > 3:
        raise ValueError("bad op or operand mode")
    if outer < 0 or C < 1 or inner < 0 or out.shape[0] != outer * C * inner:
        raise ValueError("out does not match outer*C*inner")
    if lanes < 1 or inner % lanes:
        raise ValueError("inner must be a multiple of lanes")
    if a.shape[0] < _operand_size(a_mode, outer, C, inner, lanes) or \
            b.shape[0] < _operand_size(b_mode, outer, C, inner, lanes):
        raise ValueError("operand too small for its mode")
    if out.shape[0] == 0:
        return
    with nogil:
        binary_c(op, &a[0], a_mode, &b[0], b_mode, &out[0], outer, C, inner, lanes, act_kind,
                 p0, p1, n_threads)


def affine_channel(const float[::1] x, const float[::1] scale, const float[::1] bias,
                   float[::1] out, Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
                   int act_kind=0, float p0=0.0, float p1=0.0, int n_threads=1,
                   Py_ssize_t lanes=1):
    """out[o,c,i] = act(x[o,c,i] * scale[c] + bias[c]); with lanes > 1 (a channel-blocked
    tensor, inner = spatial * lanes) scale and bias are [C, lanes] and lane l of each
    inner vector uses scale[c, l]."""
    if outer < 0 or C < 1 or inner < 0 or x.shape[0] != outer * C * inner \
            or out.shape[0] != x.shape[0] or scale.shape[0] < C * lanes \
            or bias.shape[0] < C * lanes or lanes < 1 or inner % lanes:
        raise ValueError("bad geometry")
    if x.shape[0] == 0:
        return
    with nogil:
        affine_channel_c(&x[0], &scale[0], &bias[0], &out[0], outer, C, inner, lanes, act_kind,
                         p0, p1, n_threads)


# ... and unchecked (addresses; the caller guarantees extents and keeps the arrays alive).
def activation_p(uintptr_t x, uintptr_t out, Py_ssize_t n, int kind, float p0, float p1,
                 uintptr_t slope, Py_ssize_t channel_stride, Py_ssize_t n_channels,
                 int n_threads):
    with nogil:
        activation_c(<const float*>x, <float*>out, n, kind, p0, p1, <const float*>slope,
                     channel_stride, n_channels, n_threads)


def binary_p(int op, uintptr_t a, int a_mode, uintptr_t b, int b_mode, uintptr_t out,
             Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes, int act_kind,
             float p0, float p1, int n_threads):
    with nogil:
        binary_c(op, <const float*>a, a_mode, <const float*>b, b_mode, <float*>out, outer, C,
                 inner, lanes, act_kind, p0, p1, n_threads)


def affine_channel_p(uintptr_t x, uintptr_t scale, uintptr_t bias, uintptr_t out,
                     Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes,
                     int act_kind, float p0, float p1, int n_threads):
    with nogil:
        affine_channel_c(<const float*>x, <const float*>scale, <const float*>bias, <float*>out,
                         outer, C, inner, lanes, act_kind, p0, p1, n_threads)


# ---------------------------------------------------------------------------------------------
# Native steps for the executor (executor.pxd): a C function + a malloc'd argument block,
# run back to back with the GIL released.  `keep` holds the arrays the addresses point into.
from libc.stdlib cimport malloc
from fastcnn._kernels.executor cimport Call, call_fn, make_c_call

ctypedef struct act_args_t:
    const float* x
    float* out
    Py_ssize_t n
    int kind
    float p0, p1
    const float* slope
    Py_ssize_t channel_stride, n_channels
    int n_threads

ctypedef struct bin_args_t:
    int op
    const float* a
    int a_mode
    const float* b
    int b_mode
    float* out
    Py_ssize_t outer, C, inner, lanes
    int act_kind
    float p0, p1
    int n_threads

ctypedef struct affine_args_t:
    const float* x
    const float* scale
    const float* bias
    float* out
    Py_ssize_t outer, C, inner, lanes
    int act_kind
    float p0, p1
    int n_threads


cdef void _act_step(void* p) noexcept nogil:
    cdef act_args_t* a = <act_args_t*>p
    activation_c(a.x, a.out, a.n, a.kind, a.p0, a.p1, a.slope, a.channel_stride, a.n_channels,
                 a.n_threads)


cdef void _bin_step(void* p) noexcept nogil:
    cdef bin_args_t* a = <bin_args_t*>p
    binary_c(a.op, a.a, a.a_mode, a.b, a.b_mode, a.out, a.outer, a.C, a.inner, a.lanes,
             a.act_kind, a.p0, a.p1, a.n_threads)


cdef void _affine_step(void* p) noexcept nogil:
    cdef affine_args_t* a = <affine_args_t*>p
    affine_channel_c(a.x, a.scale, a.bias, a.out, a.outer, a.C, a.inner, a.lanes, a.act_kind,
                     a.p0, a.p1, a.n_threads)


def activation_call(uintptr_t x, uintptr_t out, Py_ssize_t n, int kind, float p0, float p1,
                    uintptr_t slope, Py_ssize_t channel_stride, Py_ssize_t n_channels,
                    int n_threads, keep):
    """A native executor step running activation_p's computation (unchecked addresses)."""
    cdef act_args_t* a = <act_args_t*>malloc(sizeof(act_args_t))
    if a == NULL:
        raise MemoryError()
    a.x, a.out, a.n, a.kind, a.p0, a.p1 = <const float*>x, <float*>out, n, kind, p0, p1
    a.slope, a.channel_stride, a.n_channels = <const float*>slope, channel_stride, n_channels
    a.n_threads = n_threads
    return make_c_call(_act_step, a, keep)


def binary_call(int op, uintptr_t a_, int a_mode, uintptr_t b_, int b_mode, uintptr_t out,
                Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes,
                int act_kind, float p0, float p1, int n_threads, keep):
    """A native executor step running binary_p's computation (unchecked addresses)."""
    cdef bin_args_t* a = <bin_args_t*>malloc(sizeof(bin_args_t))
    if a == NULL:
        raise MemoryError()
    a.op, a.a, a.a_mode, a.b, a.b_mode = op, <const float*>a_, a_mode, <const float*>b_, b_mode
    a.out, a.outer, a.C, a.inner, a.lanes = <float*>out, outer, C, inner, lanes
    a.act_kind, a.p0, a.p1, a.n_threads = act_kind, p0, p1, n_threads
    return make_c_call(_bin_step, a, keep)


def affine_channel_call(uintptr_t x, uintptr_t scale, uintptr_t bias, uintptr_t out,
                        Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner, Py_ssize_t lanes,
                        int act_kind, float p0, float p1, int n_threads, keep):
    """A native executor step running affine_channel_p's computation (unchecked addresses)."""
    cdef affine_args_t* a = <affine_args_t*>malloc(sizeof(affine_args_t))
    if a == NULL:
        raise MemoryError()
    a.x, a.scale, a.bias, a.out = <const float*>x, <const float*>scale, <const float*>bias, <float*>out
    a.outer, a.C, a.inner, a.lanes = outer, C, inner, lanes
    a.act_kind, a.p0, a.p1, a.n_threads = act_kind, p0, p1, n_threads
    return make_c_call(_affine_step, a, keep)
