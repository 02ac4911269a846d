# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""DepthToSpace / SpaceToDepth (pixel shuffle / unshuffle) copy kernels, float32.

Design: the unit of work is one row of the big (spatial) tensor, (n, c, y) with
y = h*b + i; it interleaves (DepthToSpace) or de-interleaves (SpaceToDepth) the
b rows small[n, chan(c, i, j), h, :] for j < b.  Rows are contiguous on the big
side, so every thread writes (or reads) whole cache lines there; the small side
is read (written) as b sequential streams.  b == 2 and b == 3 have unrolled
bodies (the PixelShuffle x2/x3 heads); any b has a generic loop.  Parallel axis:
the N*C*H*b rows, one item each of fastcnn's thread pool (parallel_for: guided
claims of contiguous row ranges); below SERIAL_ELEMENTS elements the calling
thread does it all.  No allocation, GIL released.
"""
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc

from fastcnn._kernels.executor cimport Call, call_fn, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for

cdef extern from *:
    """
    /* out[2w] = a[w], out[2w+1] = b[w]: SSE2 (x86-64 baseline) unpacks, else scalar;
       and the inverse split. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline void fastcnn_zip2(const float *a, const float *b, float *out, Py_ssize_t n) {
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            __m128 va = _mm_loadu_ps(a + i), vb = _mm_loadu_ps(b + i);
            _mm_storeu_ps(out + 2 * i, _mm_unpacklo_ps(va, vb));
            _mm_storeu_ps(out + 2 * i + 4, _mm_unpackhi_ps(va, vb));
        }
        for (; i < n; i++) { out[2 * i] = a[i]; out[2 * i + 1] = b[i]; }
    }
    static inline void fastcnn_unzip2(const float *in, float *a, float *b, Py_ssize_t n) {
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            __m128 lo = _mm_loadu_ps(in + 2 * i), hi = _mm_loadu_ps(in + 2 * i + 4);
            _mm_storeu_ps(a + i, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
            _mm_storeu_ps(b + i, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)));
        }
        for (; i < n; i++) { a[i] = in[2 * i]; b[i] = in[2 * i + 1]; }
    }
    #else
    static inline void fastcnn_zip2(const float *a, const float *b, float *out, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) { out[2 * i] = a[i]; out[2 * i + 1] = b[i]; }
    }
    static inline void fastcnn_unzip2(const float *in, float *a, float *b, Py_ssize_t n) {
        for (Py_ssize_t i = 0; i < n; i++) { a[i] = in[2 * i]; b[i] = in[2 * i + 1]; }
    }
    #endif
    """
    void fastcnn_zip2(const float* a, const float* b, float* out, Py_ssize_t n) noexcept nogil
    void fastcnn_unzip2(const float* inp, float* a, float* b, Py_ssize_t n) noexcept nogil

SERIAL_ELEMENTS = 32768
cdef Py_ssize_t _SERIAL = 32768
MODES = dict(DCR=PS_DCR, CRD=PS_CRD)


cdef inline Py_ssize_t _chan(Py_ssize_t c, Py_ssize_t i, Py_ssize_t j, Py_ssize_t C,
                             Py_ssize_t b, int mode) noexcept nogil:
    if mode == PS_CRD:
        return c * b * b + i * b + j
    return (i * b + j) * C + c


cdef void _d2s_row(const float* small, float* big, Py_ssize_t row, Py_ssize_t C,
                   Py_ssize_t H, Py_ssize_t W, Py_ssize_t b, int mode) noexcept nogil:
    # row = (n*C + c)*H*b + y
    cdef Py_ssize_t Hb = H * b
    cdef Py_ssize_t y = row % Hb
    cdef Py_ssize_t nc = row // Hb
    cdef Py_ssize_t c = nc % C
    cdef Py_ssize_t n = nc // C
    cdef Py_ssize_t h = y // b, i = y % b, j, w
    cdef Py_ssize_t plane = H * W
    cdef const float* base = small + n * C * b * b * plane + h * W
    cdef float* out = big + row * W * b
    cdef const float* s0
    cdef const float* s1
    cdef const float* s2
    if b == 2:
        s0 = base + _chan(c, i, 0, C, b, mode) * plane
        s1 = base + _chan(c, i, 1, C, b, mode) * plane
        fastcnn_zip2(s0, s1, out, W)
    elif b == 3:
        s0 = base + _chan(c, i, 0, C, b, mode) * plane
        s1 = base + _chan(c, i, 1, C, b, mode) * plane
        s2 = base + _chan(c, i, 2, C, b, mode) * plane
        for w in range(W):
            out[3 * w] = s0[w]
            out[3 * w + 1] = s1[w]
            out[3 * w + 2] = s2[w]
    else:
        for j in range(b):
            s0 = base + _chan(c, i, j, C, b, mode) * plane
            for w in range(W):
                out[w * b + j] = s0[w]


cdef void _s2d_row(const float* big, float* small, Py_ssize_t row, Py_ssize_t C,
                   Py_ssize_t H, Py_ssize_t W, Py_ssize_t b, int mode) noexcept nogil:
    cdef Py_ssize_t Hb = H * b
    cdef Py_ssize_t y = row % Hb
    cdef Py_ssize_t nc = row // Hb
    cdef Py_ssize_t c = nc % C
    cdef Py_ssize_t n = nc // C
    cdef Py_ssize_t h = y // b, i = y % b, j, w
    cdef Py_ssize_t plane = H * W
    cdef float* base = small + n * C * b * b * plane + h * W
    cdef const float* src = big + row * W * b
    cdef float* d0
    cdef float* d1
    cdef float* d2
    if b == 2:
        d0 = base + _chan(c, i, 0, C, b, mode) * plane
        d1 = base + _chan(c, i, 1, C, b, mode) * plane
        fastcnn_unzip2(src, d0, d1, W)
    elif b == 3:
        d0 = base + _chan(c, i, 0, C, b, mode) * plane
        d1 = base + _chan(c, i, 1, C, b, mode) * plane
        d2 = base + _chan(c, i, 2, C, b, mode) * plane
        for w in range(W):
            d0[w] = src[3 * w]
            d1[w] = src[3 * w + 1]
            d2[w] = src[3 * w + 2]
    else:
        for j in range(b):
            d0 = base + _chan(c, i, j, C, b, mode) * plane
            for w in range(W):
                d0[w] = src[w * b + j]


cdef struct _ps_job:
    const float* src
    float* dst
    Py_ssize_t C, H, W, b
    int mode


cdef void _d2s_item(void* ctx, long r) noexcept nogil:
    cdef _ps_job* j = <_ps_job*>ctx
    _d2s_row(j.src, j.dst, r, j.C, j.H, j.W, j.b, j.mode)


cdef void _s2d_item(void* ctx, long r) noexcept nogil:
    cdef _ps_job* j = <_ps_job*>ctx
    _s2d_row(j.src, j.dst, r, j.C, j.H, j.W, j.b, j.mode)


cdef void depth_to_space_f32(const float* small, float* big, Py_ssize_t N, Py_ssize_t C,
                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t b, int mode,
                             int n_threads) noexcept nogil:
    cdef Py_ssize_t rows = N * C * H * b, r
    cdef _ps_job j
    if rows * W * b < _SERIAL or n_threads <= 1:
        for r in range(rows):
            _d2s_row(small, big, r, C, H, W, b, mode)
    else:
        j.src, j.dst, j.C, j.H, j.W, j.b, j.mode = small, big, C, H, W, b, mode
        parallel_for(n_threads, rows, _d2s_item, &j)


cdef void space_to_depth_f32(const float* big, float* small, Py_ssize_t N, Py_ssize_t C,
                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t b, int mode,
                             int n_threads) noexcept nogil:
    cdef Py_ssize_t rows = N * C * H * b, r
    cdef _ps_job j
    if rows * W * b < _SERIAL or n_threads <= 1:
        for r in range(rows):
            _s2d_row(big, small, r, C, H, W, b, mode)
    else:
        j.src, j.dst, j.C, j.H, j.W, j.b, j.mode = big, small, C, H, W, b, mode
        parallel_for(n_threads, rows, _s2d_item, &j)


# ---------------------------------------------------------------------------------------------
# Python entry points: checked (arrays) for tests, and native executor steps (addresses).
def depth_to_space(const float[:, :, :, ::1] small, float[:, :, :, ::1] big, Py_ssize_t b,
                   int mode, int n_threads=1):
    """big[N, C, H*b, W*b] = pixel-shuffle of small[N, C*b*b, H, W] (mode: MODES)."""
    cdef Py_ssize_t N = small.shape[0], C = small.shape[1] // (b * b)
    cdef Py_ssize_t H = small.shape[2], W = small.shape[3]
    if b < 1 or small.shape[1] != C * b * b or big.shape[0] != N or big.shape[1] != C \
            or big.shape[2] != H * b or big.shape[3] != W * b:
        raise ValueError("depth_to_space: shapes do not match the blocksize")
    if big.size == 0:
        return
    with nogil:
        depth_to_space_f32(&small[0, 0, 0, 0], &big[0, 0, 0, 0], N, C, H, W, b, mode, n_threads)


def space_to_depth(const float[:, :, :, ::1] big, float[:, :, :, ::1] small, Py_ssize_t b,
                   int mode, int n_threads=1):
    """small[N, C*b*b, H, W] = pixel-unshuffle of big[N, C, H*b, W*b] (mode: MODES)."""
    cdef Py_ssize_t N = big.shape[0], C = big.shape[1]
    cdef Py_ssize_t H = big.shape[2] // b if b > 0 else 0, W = big.shape[3] // b if b > 0 else 0
    if b < 1 or big.shape[2] != H * b or big.shape[3] != W * b or small.shape[0] != N \
            or small.shape[1] != C * b * b or small.shape[2] != H or small.shape[3] != W:
        raise ValueError("space_to_depth: shapes do not match the blocksize")
    if big.size == 0:
        return
    with nogil:
        space_to_depth_f32(&big[0, 0, 0, 0], &small[0, 0, 0, 0], N, C, H, W, b, mode, n_threads)


ctypedef struct ps_args_t:
    const float* src
    float* dst
    Py_ssize_t N, C, H, W, b
    int mode, n_threads


cdef void _d2s_step(void* p) noexcept nogil:
    cdef ps_args_t* a = <ps_args_t*>p
    depth_to_space_f32(a.src, a.dst, a.N, a.C, a.H, a.W, a.b, a.mode, a.n_threads)


cdef void _s2d_step(void* p) noexcept nogil:
    cdef ps_args_t* a = <ps_args_t*>p
    space_to_depth_f32(a.src, a.dst, a.N, a.C, a.H, a.W, a.b, a.mode, a.n_threads)


def pixel_shuffle_call(bint to_space, uintptr_t src, uintptr_t dst, Py_ssize_t N, Py_ssize_t C,
                       Py_ssize_t H, Py_ssize_t W, Py_ssize_t b, int mode, int n_threads, keep):
    """A native executor step (unchecked addresses; `keep` holds the arrays alive).
    to_space: DepthToSpace (src small, dst big); else SpaceToDepth (src big, dst small).
    C is the big tensor's channel count, H, W the small tensor's spatial dims."""
    cdef ps_args_t* a = <ps_args_t*>malloc(sizeof(ps_args_t))
    if a == NULL:
        raise MemoryError()
    a.src, a.dst = <const float*>src, <float*>dst
    a.N, a.C, a.H, a.W, a.b, a.mode, a.n_threads = N, C, H, W, b, mode, n_threads
    return make_c_call(_d2s_step if to_space else _s2d_step, a, keep)
