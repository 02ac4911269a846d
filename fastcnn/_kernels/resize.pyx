# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Resize kernels (float32): separable passes from precomputed tap tables.

Design:
* resize_axis_f32 -- one axis of any rank, viewed as [outer, n_in, inner].
  inner == 1 (the last axis): work items are (row, chunk of outputs); each output
  is a K-tap gather-dot along the row (K == 1 and K == 2 unrolled).  inner <= 32
  (the W axis of the channel-blocked layout, inner = B): the same row items, each
  output a short vector of `inner` lanes (8 and 16 unrolled).  Larger inner: items
  are (outer, o); the output row of `inner` elements is a weighted sum of K
  contiguous input rows, a vectorizable axpy chain.
* bilinear2d_f32 -- linear on the last two axes in one pass over each plane:
  horizontal interpolation of the (at most two) input rows an output row needs
  into a per-thread 2-row cache (a row computed for one output row is reused by
  the next, so an x2 upsample does each horizontal pass once), then a vertical
  blend written straight into the output.  Items are (plane, block of output
  rows); the row caches of all threads are one malloc made before the job (each
  thread uses its thread_index()'s pair of rows).
* nearest2d_f32 -- nearest on the last two axes, of plain planes [P, H, W] or of
  channel-blocked ones [P, H, W, B] (elements of `lanes` = B floats).  When the column
  map is an integer upsampling (o // f, or that shifted and clamped at the edges: the
  (f, head, k0, nbody) of src/resize_nearest.h) every output row is written from its
  input row by the ISA's rows function (f = 2, 3, 4 permute bodies; B-lane elements
  stored f times); never a copy of the output row just written, which reads lines whose
  stores are still in flight (1.3-1.7x slower).  Other column maps gather (a plain row
  equal to the one before it is a memcpy).  A plain x2 output of 32 MB or more (beyond
  L3) is written with streaming stores.
Parallel axis: the items above, run by fastcnn's thread pool (parallel_for: guided
claims, the caller works too, FTZ/DAZ set by the pool); below SERIAL_ELEMENTS output
elements the calling thread does everything.  GIL released, and every
kernel has a native executor step (`*_call`) so a run costs no Python.
"""
from libc.stdint cimport uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from fastcnn._kernels.executor cimport Call, call_fn, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for, thread_index

SERIAL_ELEMENTS = 32768
cdef Py_ssize_t _SERIAL = 32768
# x2 nearest outputs of at least this many bytes (beyond this machine's 32 MB L3) use
# streaming stores.  Below that, plain stores win once the output array is recycled run to
# run (warm, cached): 1x64x112x112 x2 back to back, 0.38 ms plain vs 0.52 ms streaming
# (ORT 0.33-0.35); streaming won (0.71 vs 1.04 ms) only when caches were disturbed.
cdef Py_ssize_t _STREAM_BYTES = 32 << 20


def _set_stream_bytes(Py_ssize_t n):
    """Tuning knob: smallest x2 nearest output (bytes) written with streaming stores;
    returns the previous value."""
    global _STREAM_BYTES
    prev = _STREAM_BYTES
    _STREAM_BYTES = n
    return prev

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()

cdef extern from "resize_nearest.h" nogil:
    ctypedef struct fc_nearest_geom_t:
        long W, n, f, L, head, k0, nbody
    ctypedef void (*fc_nearest_rows_fn)(const float* x, float* y, const Py_ssize_t* iy,
                                        long r0, long r1, const fc_nearest_geom_t* g)
    fc_nearest_rows_fn fc_nearest_pick_rows(int isa)
    void fc_nearest_rows_stream(const float* x, float* y, const Py_ssize_t* iy, long r0,
                                long r1, long W, long n)
    int FASTCNN_HAVE_STREAM

cdef int _isa = fastcnn_cpu_level()
cdef int _isa_hw = _isa
_ISA_NAMES = {"scalar": -1, "portable": 0, "avx2": 1, "avx512": 2}


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force the ISA of the nearest row functions: 'scalar' (the plain C loops),
    'portable' (the x86-64 baseline: SSE2 bodies), 'avx2', 'avx512' (runs the AVX2 rows)
    or 'auto'.  More than the CPU supports raises ValueError.  Returns the previous name."""
    global _isa
    prev = get_isa()
    _isa = choose_isa(name, _ISA_NAMES, _isa_hw)
    return prev


def get_isa():
    """Name of the ISA the nearest row functions use."""
    for k, v in _ISA_NAMES.items():
        if v == _isa:
            return k
    return "portable"


# ---------------------------------------------------------------------------------------------
# one axis
cdef void _axis_last_item(const float* x, float* out, Py_ssize_t n_in, Py_ssize_t n_out,
                          const Py_ssize_t* idx, const float* w, Py_ssize_t K,
                          const unsigned char* ext, float e, Py_ssize_t row,
                          Py_ssize_t o0, Py_ssize_t o1) noexcept nogil:
    cdef const float* src = x + row * n_in
    cdef float* dst = out + row * n_out
    cdef Py_ssize_t o, k
    cdef float acc
    if K == 1:
        for o in range(o0, o1):
            dst[o] = src[idx[o]]
    elif K == 2:
        for o in range(o0, o1):
            dst[o] = w[2 * o] * src[idx[2 * o]] + w[2 * o + 1] * src[idx[2 * o + 1]]
    else:
        for o in range(o0, o1):
            acc = 0.0
            for k in range(K):
                acc = acc + w[o * K + k] * src[idx[o * K + k]]
            dst[o] = acc
    if ext != NULL:
        for o in range(o0, o1):
            if ext[o]:
                dst[o] = e


cdef void _axis_inner_item(const float* x, float* out, Py_ssize_t n_in, Py_ssize_t inner,
                           Py_ssize_t n_out, const Py_ssize_t* idx, const float* w, Py_ssize_t K,
                           const unsigned char* ext, float e, Py_ssize_t item) noexcept nogil:
    cdef Py_ssize_t o = item % n_out, ou = item // n_out, i, k
    cdef float* dst = out + item * inner
    cdef const float* base = x + ou * n_in * inner
    cdef const float* s0
    cdef const float* s1
    cdef float w0, w1
    if ext != NULL and ext[o]:
        for i in range(inner):
            dst[i] = e
        return
    if K == 1:
        memcpy(dst, base + idx[o] * inner, inner * sizeof(float))
        return
    s0 = base + idx[o * K] * inner
    s1 = base + idx[o * K + 1] * inner
    w0 = w[o * K]
    w1 = w[o * K + 1]
    for i in range(inner):
        dst[i] = w0 * s0[i] + w1 * s1[i]
    for k in range(2, K):
        s0 = base + idx[o * K + k] * inner
        w0 = w[o * K + k]
        for i in range(inner):
            dst[i] = dst[i] + w0 * s0[i]


cdef inline void _lanes2(float* dst, const float* s0, const float* s1, float w0, float w1,
                         Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t i
    if inner == 8:
        for i in range(8):
            dst[i] = w0 * s0[i] + w1 * s1[i]
    elif inner == 16:
        for i in range(16):
            dst[i] = w0 * s0[i] + w1 * s1[i]
    else:
        for i in range(inner):
            dst[i] = w0 * s0[i] + w1 * s1[i]


cdef inline void _lanes1(float* dst, const float* s0, Py_ssize_t inner) noexcept nogil:
    cdef Py_ssize_t i
    if inner == 8:
        for i in range(8):
            dst[i] = s0[i]
    elif inner == 16:
        for i in range(16):
            dst[i] = s0[i]
    else:
        for i in range(inner):
            dst[i] = s0[i]


cdef void _axis_lanes_item(const float* x, float* out, Py_ssize_t n_in, Py_ssize_t inner,
                           Py_ssize_t n_out, const Py_ssize_t* idx, const float* w, Py_ssize_t K,
                           const unsigned char* ext, float e, Py_ssize_t row, Py_ssize_t o0,
                           Py_ssize_t o1) noexcept nogil:
    """Outputs o0..o1 of one row whose elements are short vectors of `inner` lanes (the
    channel-blocked layout's B, or a small trailing extent)."""
    cdef const float* base = x + row * n_in * inner
    cdef float* dst
    cdef Py_ssize_t o, k, i
    cdef float wk
    for o in range(o0, o1):
        dst = out + (row * n_out + o) * inner
        if ext != NULL and ext[o]:
            for i in range(inner):
                dst[i] = e
        elif K == 1:
            _lanes1(dst, base + idx[o] * inner, inner)
        else:
            _lanes2(dst, base + idx[o * K] * inner, base + idx[o * K + 1] * inner, w[o * K],
                    w[o * K + 1], inner)
            for k in range(2, K):
                wk = w[o * K + k]
                for i in range(inner):
                    dst[i] = dst[i] + wk * base[idx[o * K + k] * inner + i]


cdef struct _axis_job:
    const float* x
    float* out
    Py_ssize_t n_in, inner, n_out, K, n_chunks, chunk
    const Py_ssize_t* idx
    const float* w
    const unsigned char* ext
    float e


cdef void _axis_rows_item(void* ctx, long it) noexcept nogil:
    """Item it of the inner <= 32 split: outputs [o0, o1) of row it // n_chunks."""
    cdef _axis_job* j = <_axis_job*>ctx
    cdef Py_ssize_t o0 = (it % j.n_chunks) * j.chunk
    cdef Py_ssize_t o1 = o0 + j.chunk
    if o1 > j.n_out:
        o1 = j.n_out
    if o0 >= o1:
        return
    if j.inner == 1:
        _axis_last_item(j.x, j.out, j.n_in, j.n_out, j.idx, j.w, j.K, j.ext, j.e,
                        it // j.n_chunks, o0, o1)
    else:
        _axis_lanes_item(j.x, j.out, j.n_in, j.inner, j.n_out, j.idx, j.w, j.K, j.ext, j.e,
                         it // j.n_chunks, o0, o1)


cdef void _axis_inner_job_item(void* ctx, long it) noexcept nogil:
    cdef _axis_job* j = <_axis_job*>ctx
    _axis_inner_item(j.x, j.out, j.n_in, j.inner, j.n_out, j.idx, j.w, j.K, j.ext, j.e, it)


cdef void resize_axis_f32(const float* x, float* out, Py_ssize_t outer, Py_ssize_t n_in,
                          Py_ssize_t inner, Py_ssize_t n_out, const Py_ssize_t* idx,
                          const float* w, Py_ssize_t K, const unsigned char* ext, float e,
                          int n_threads) noexcept nogil:
    cdef _axis_job j
    cdef int nt = n_threads
    if outer * n_out * inner * K < _SERIAL:
        nt = 1
    j.x, j.out, j.n_in, j.inner, j.n_out, j.K = x, out, n_in, inner, n_out, K
    j.idx, j.w, j.ext, j.e = idx, w, ext, e
    if inner <= 32:
        j.n_chunks = 1
        if nt > 1 and outer < 4 * nt:
            j.n_chunks = (4 * nt + outer - 1) // outer
            if j.n_chunks > n_out:
                j.n_chunks = n_out
        j.chunk = (n_out + j.n_chunks - 1) // j.n_chunks
        parallel_for(nt, outer * j.n_chunks, _axis_rows_item, &j)
    else:
        parallel_for(nt, outer * n_out, _axis_inner_job_item, &j)


# ---------------------------------------------------------------------------------------------
# bilinear on the last two axes
cdef inline void _hrow(const float* src, float* dst, Py_ssize_t OW, const Py_ssize_t* ix,
                       const float* wx) noexcept nogil:
    cdef Py_ssize_t o
    for o in range(OW):
        dst[o] = wx[2 * o] * src[ix[2 * o]] + wx[2 * o + 1] * src[ix[2 * o + 1]]


cdef void _bilinear_item(const float* x, float* out, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t OH, Py_ssize_t OW, const Py_ssize_t* iy, const float* wy,
                         const Py_ssize_t* ix, const float* wx, Py_ssize_t rows_per_item,
                         Py_ssize_t n_blocks, Py_ssize_t item, float* buf) noexcept nogil:
    cdef Py_ssize_t p = item // n_blocks
    cdef Py_ssize_t r0 = (item % n_blocks) * rows_per_item
    cdef Py_ssize_t r1 = r0 + rows_per_item
    cdef const float* plane = x + p * H * W
    cdef float* dst
    cdef float* ra = buf
    cdef float* rb = buf + OW
    cdef float* tmp
    cdef Py_ssize_t ta = -1, tb = -1, t, oy, o, y0, y1
    cdef float w0, w1
    if r1 > OH:
        r1 = OH
    for oy in range(r0, r1):
        y0 = iy[2 * oy]
        y1 = iy[2 * oy + 1]
        w0 = wy[2 * oy]
        w1 = wy[2 * oy + 1]
        # slot a holds row y0, slot b row y1 (reusing what the previous output row computed)
        if ta != y0:
            if tb == y0:
                tmp = ra; ra = rb; rb = tmp
                t = ta; ta = tb; tb = t
            else:
                if ta == y1:   # keep y1's row: move it to slot b first
                    tmp = ra; ra = rb; rb = tmp
                    t = ta; ta = tb; tb = t
                _hrow(plane + y0 * W, ra, OW, ix, wx)
                ta = y0
        dst = out + (p * OH + oy) * OW
        if y1 == y0 or w1 == 0.0:
            if w0 == 1.0 and w1 == 0.0:
                memcpy(dst, ra, OW * sizeof(float))
            else:
                for o in range(OW):
                    dst[o] = w0 * ra[o] + w1 * ra[o]
            continue
        if tb != y1:
            _hrow(plane + y1 * W, rb, OW, ix, wx)
            tb = y1
        for o in range(OW):
            dst[o] = w0 * ra[o] + w1 * rb[o]


cdef struct _plane_job:
    const float* x
    float* out
    Py_ssize_t H, W, OH, OW, fx, rows_per_item, n_blocks
    const Py_ssize_t* iy
    const float* wy
    const Py_ssize_t* ix
    const float* wx
    float* bufs                 # bilinear: 2*OW floats per thread, one block
    Py_ssize_t buf_stride       # floats between two threads' row caches (64-byte multiple)
    bint stream                 # nearest: x2 rows with streaming stores
    Py_ssize_t lanes            # nearest: floats per element (1, or the channel block)
    fc_nearest_rows_fn rows     # nearest: the ISA's rows function
    fc_nearest_geom_t geom      # nearest: the column map when fx > 0


cdef void _bilinear_job_item(void* ctx, long it) noexcept nogil:
    cdef _plane_job* j = <_plane_job*>ctx
    _bilinear_item(j.x, j.out, j.H, j.W, j.OH, j.OW, j.iy, j.wy, j.ix, j.wx, j.rows_per_item,
                   j.n_blocks, it, j.bufs + thread_index() * j.buf_stride)


cdef void bilinear2d_f32(const float* x, float* out, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t OH, Py_ssize_t OW, const Py_ssize_t* iy, const float* wy,
                         const Py_ssize_t* ix, const float* wx, Py_ssize_t rows_per_item,
                         int n_threads) noexcept nogil:
    cdef _plane_job j
    cdef int nt = n_threads
    if P * OH * OW < _SERIAL:
        nt = 1
    if nt < 1:
        nt = 1
    j.x, j.out, j.H, j.W, j.OH, j.OW = x, out, H, W, OH, OW
    j.iy, j.wy, j.ix, j.wx, j.rows_per_item = iy, wy, ix, wx, rows_per_item
    j.n_blocks = (OH + rows_per_item - 1) // rows_per_item
    # thread_index() < nt: one pair of row caches per thread that may join, each on its
    # own cache lines
    j.buf_stride = (2 * OW + 15) // 16 * 16
    j.bufs = <float*>malloc(nt * j.buf_stride * sizeof(float))
    if j.bufs == NULL:
        return
    parallel_for(nt, P * j.n_blocks, _bilinear_job_item, &j)
    free(j.bufs)


# ---------------------------------------------------------------------------------------------
# nearest on the last two axes
cdef void _nearest_item(const _plane_job* j, Py_ssize_t item) noexcept nogil:
    cdef Py_ssize_t p = item // j.n_blocks
    cdef Py_ssize_t r0 = (item % j.n_blocks) * j.rows_per_item
    cdef Py_ssize_t r1 = r0 + j.rows_per_item
    cdef Py_ssize_t L = j.lanes, OW = j.OW, row = j.OW * j.lanes, oy, o, l
    cdef const Py_ssize_t* ix = j.ix
    cdef const float* plane = j.x + p * j.H * j.W * L
    cdef float* out = j.out + p * j.OH * row
    cdef const float* src
    cdef const float* s
    cdef float* dst
    cdef float* d
    if r1 > j.OH:
        r1 = j.OH
    if j.stream:
        # a large x2 output: streaming stores, every row from the input
        fc_nearest_rows_stream(plane, out, j.iy, r0, r1, j.W, OW)
        return
    if j.fx > 0:
        # integer factor: every row from its input row (not a copy of the output row
        # just written, whose stores are still in flight)
        j.rows(plane, out, j.iy, r0, r1, &j.geom)
        return
    for oy in range(r0, r1):
        dst = out + oy * row
        src = plane + j.iy[oy] * j.W * L
        if L == 8:
            for o in range(OW):
                memcpy(dst + o * 8, src + ix[o] * 8, 8 * sizeof(float))
        elif L > 1:
            for o in range(OW):
                s = src + ix[o] * L
                d = dst + o * L
                for l in range(L):
                    d[l] = s[l]
        elif oy > r0 and j.iy[oy] == j.iy[oy - 1]:
            memcpy(dst, dst - row, row * sizeof(float))
        else:
            for o in range(OW):
                dst[o] = src[ix[o]]


cdef void _nearest_job_item(void* ctx, long it) noexcept nogil:
    _nearest_item(<_plane_job*>ctx, it)


cdef inline bint _streams(const float* out, Py_ssize_t P, Py_ssize_t OH, Py_ssize_t OW,
                          Py_ssize_t lanes, Py_ssize_t fx, Py_ssize_t head, Py_ssize_t k0,
                          Py_ssize_t nbody) noexcept nogil:
    """Streaming stores: a plain x2 map (o // 2), 16-byte aligned rows, >= _STREAM_BYTES."""
    return fx == 2 and head == 0 and k0 == 0 and nbody == OW and lanes == 1 and \
        OW % 4 == 0 and (<uintptr_t> out) % 16 == 0 and FASTCNN_HAVE_STREAM and \
        P * OH * OW * 4 >= _STREAM_BYTES


cdef void nearest2d_f32(const float* x, float* out, Py_ssize_t P, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t lanes, const Py_ssize_t* iy,
                        const Py_ssize_t* ix, Py_ssize_t fx, Py_ssize_t head, Py_ssize_t k0,
                        Py_ssize_t nbody, Py_ssize_t rows_per_item,
                        int n_threads) noexcept nogil:
    cdef _plane_job j
    cdef int nt = n_threads
    j.stream = _streams(out, P, OH, OW, lanes, fx, head, k0, nbody)
    if P * OH * OW * lanes < _SERIAL:
        nt = 1
    j.x, j.out, j.H, j.W, j.OH, j.OW, j.lanes = x, out, H, W, OH, OW, lanes
    j.iy, j.ix, j.fx, j.rows_per_item = iy, ix, fx, rows_per_item
    j.wy, j.wx, j.bufs, j.buf_stride = NULL, NULL, NULL, 0
    j.rows = fc_nearest_pick_rows(_isa)
    j.geom.W, j.geom.n, j.geom.f, j.geom.L = W, OW, fx, lanes
    j.geom.head, j.geom.k0, j.geom.nbody = head, k0, nbody
    j.n_blocks = (OH + rows_per_item - 1) // rows_per_item
    parallel_for(nt, P * j.n_blocks, _nearest_job_item, &j)


# ---------------------------------------------------------------------------------------------
# Python entry points (checked arrays: tests and one-off use)
def resize_axis(const float[::1] x, float[::1] out, Py_ssize_t outer, Py_ssize_t n_in,
                Py_ssize_t inner, Py_ssize_t n_out, const Py_ssize_t[:, ::1] idx,
                const float[:, ::1] w, const unsigned char[::1] ext=None, float e=0.0,
                int n_threads=1):
    """out[outer, n_out, inner] from x[outer, n_in, inner] along the middle axis."""
    cdef Py_ssize_t K = idx.shape[1]
    if x.shape[0] != outer * n_in * inner or out.shape[0] != outer * n_out * inner or \
            idx.shape[0] != n_out or w.shape[0] != n_out or w.shape[1] != K or K < 1 or \
            (ext is not None and ext.shape[0] != n_out):
        raise ValueError("resize_axis: inconsistent extents")
    for i in range(n_out * K):
        if not 0 <= idx[i // K, i % K] < n_in:
            raise ValueError("resize_axis: tap index out of range")
    if out.shape[0] == 0:
        return
    with nogil:
        resize_axis_f32(&x[0], &out[0], outer, n_in, inner, n_out, &idx[0, 0], &w[0, 0], K,
                        NULL if ext is None else &ext[0], e, n_threads)


def _check_taps(const Py_ssize_t[:, ::1] t, Py_ssize_t n_out, Py_ssize_t n_in, Py_ssize_t K):
    if t.shape[0] != n_out or t.shape[1] != K:
        raise ValueError("tap table has the wrong shape")
    for i in range(n_out):
        for k in range(K):
            if not 0 <= t[i, k] < n_in:
                raise ValueError("tap index out of range")


def bilinear2d(const float[:, :, ::1] x, float[:, :, ::1] out, const Py_ssize_t[:, ::1] iy,
               const float[:, ::1] wy, const Py_ssize_t[:, ::1] ix, const float[:, ::1] wx,
               Py_ssize_t rows_per_item=0, int n_threads=1):
    """out[P, OH, OW] = separable 2-tap interpolation of x[P, H, W]."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = out.shape[1], OW = out.shape[2]
    if out.shape[0] != P or wy.shape[0] != OH or wx.shape[0] != OW or wy.shape[1] != 2 \
            or wx.shape[1] != 2:
        raise ValueError("bilinear2d: inconsistent extents")
    _check_taps(iy, OH, H, 2)
    _check_taps(ix, OW, W, 2)
    if out.size == 0:
        return
    if rows_per_item <= 0:
        rows_per_item = OH
    with nogil:
        bilinear2d_f32(&x[0, 0, 0], &out[0, 0, 0], P, H, W, OH, OW, &iy[0, 0], &wy[0, 0],
                       &ix[0, 0], &wx[0, 0], rows_per_item, n_threads)


def nearest2d(const float[:, :, ::1] x, float[:, :, ::1] out, const Py_ssize_t[::1] iy,
              const Py_ssize_t[::1] ix, Py_ssize_t fx=0, Py_ssize_t rows_per_item=0,
              int n_threads=1, Py_ssize_t lanes=1, Py_ssize_t head=0, Py_ssize_t k0=0,
              Py_ssize_t nbody=-1):
    """out[P, OH, OW] = x[P, iy[oy], ix[ox]].  fx > 0 promises the column map of
    `column_map` (head, k0, nbody; nbody -1: OW - head); fx 0 gathers by ix.  With lanes
    L > 1 the last axes are W*L and OW*L: elements of L floats (the channel-blocked layout
    [N*C/B, H, W, B] viewed as [P, H, W*B])."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W, OH = out.shape[1], OW, o
    if lanes < 1 or x.shape[2] % lanes or out.shape[2] % lanes:
        raise ValueError("nearest2d: last extents not a multiple of lanes")
    W, OW = x.shape[2] // lanes, out.shape[2] // lanes
    if out.shape[0] != P or iy.shape[0] != OH or ix.shape[0] != OW:
        raise ValueError("nearest2d: inconsistent extents")
    if nbody < 0:
        nbody = OW - head
    for o in range(OH):
        if not 0 <= iy[o] < H:
            raise ValueError("row index out of range")
    for o in range(OW):
        if not 0 <= ix[o] < W:
            raise ValueError("column index out of range")
    if fx > 0 and (head < 0 or nbody < 0 or head + nbody > OW or
                   column_map(fx, head, k0, nbody, OW, W) != list(ix)):
        raise ValueError("column map is not (fx, head, k0, nbody)")
    if out.size == 0:
        return
    if rows_per_item <= 0:
        rows_per_item = OH
    with nogil:
        nearest2d_f32(&x[0, 0, 0], &out[0, 0, 0], P, H, W, OH, OW, lanes, &iy[0], &ix[0], fx,
                      head, k0, nbody, rows_per_item, n_threads)


def nearest2d_streams(float[:, :, ::1] out, Py_ssize_t fx=2, Py_ssize_t lanes=1,
                      Py_ssize_t head=0, Py_ssize_t k0=0, Py_ssize_t nbody=-1):
    """Whether nearest2d writes `out` (with this column map) with streaming stores."""
    cdef Py_ssize_t OW = out.shape[2] // lanes
    if out.size == 0:
        return False
    return bool(_streams(&out[0, 0, 0], out.shape[0], out.shape[1], OW, lanes, fx, head, k0,
                         OW - head if nbody < 0 else nbody))


def column_map(Py_ssize_t f, Py_ssize_t head, Py_ssize_t k0, Py_ssize_t nbody, Py_ssize_t n,
               Py_ssize_t W):
    """The column map nearest2d's fx > 0 path writes: 0 for o < head, k0 + (o - head) // f
    for the next nbody outputs, W - 1 after them (a list of n indices)."""
    return [0 if o < head else (k0 + (o - head) // f if o < head + nbody else W - 1)
            for o in range(n)]


# ---------------------------------------------------------------------------------------------
# Native executor steps (unchecked addresses; `keep` holds arrays and tables alive)
cdef enum:
    MAX_PASSES = 8
MAX_AXIS_PASSES = 8

ctypedef struct axis_pass_t:
    const float* x
    float* out
    Py_ssize_t outer, n_in, inner, n_out, K
    const Py_ssize_t* idx
    const float* w
    const unsigned char* ext
    float e

ctypedef struct passes_args_t:
    int n_pass
    int n_threads
    axis_pass_t p[MAX_PASSES]

ctypedef struct plane2d_args_t:
    const float* x
    float* out
    Py_ssize_t P, H, W, OH, OW, fx, rows_per_item, lanes, head, k0, nbody
    const Py_ssize_t* iy
    const float* wy
    const Py_ssize_t* ix
    const float* wx
    int n_threads


cdef void _passes_step(void* p) noexcept nogil:
    cdef passes_args_t* a = <passes_args_t*>p
    cdef int k
    for k in range(a.n_pass):
        resize_axis_f32(a.p[k].x, a.p[k].out, a.p[k].outer, a.p[k].n_in, a.p[k].inner,
                        a.p[k].n_out, a.p[k].idx, a.p[k].w, a.p[k].K, a.p[k].ext, a.p[k].e,
                        a.n_threads)


cdef void _bilinear_step(void* p) noexcept nogil:
    cdef plane2d_args_t* a = <plane2d_args_t*>p
    bilinear2d_f32(a.x, a.out, a.P, a.H, a.W, a.OH, a.OW, a.iy, a.wy, a.ix, a.wx,
                   a.rows_per_item, a.n_threads)


cdef void _nearest_step(void* p) noexcept nogil:
    cdef plane2d_args_t* a = <plane2d_args_t*>p
    nearest2d_f32(a.x, a.out, a.P, a.H, a.W, a.OH, a.OW, a.lanes, a.iy, a.ix, a.fx, a.head,
                  a.k0, a.nbody, a.rows_per_item, a.n_threads)


def axis_passes_call(list passes, int n_threads, keep):
    """A native step running resize_axis for each pass in order.  Each pass is
    (x, out, outer, n_in, inner, n_out, idx, w, K, ext, e) with addresses as ints
    (ext 0: none)."""
    if not 0 < len(passes) <= MAX_PASSES:
        raise ValueError(f"1..{MAX_PASSES} passes")
    cdef passes_args_t* a = <passes_args_t*>malloc(sizeof(passes_args_t))
    if a == NULL:
        raise MemoryError()
    a.n_pass = len(passes)
    a.n_threads = n_threads
    cdef int k
    for k in range(a.n_pass):
        x, out, outer, n_in, inner, n_out, idx, w, K, ext, e = passes[k]
        a.p[k].x = <const float*><uintptr_t>x
        a.p[k].out = <float*><uintptr_t>out
        a.p[k].outer, a.p[k].n_in, a.p[k].inner, a.p[k].n_out, a.p[k].K = \
            outer, n_in, inner, n_out, K
        a.p[k].idx = <const Py_ssize_t*><uintptr_t>idx
        a.p[k].w = <const float*><uintptr_t>w
        a.p[k].ext = <const unsigned char*><uintptr_t>ext
        a.p[k].e = e
    return make_c_call(_passes_step, a, keep)


def plane2d_call(bint bilinear, uintptr_t x, uintptr_t out, Py_ssize_t P, Py_ssize_t H,
                 Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, uintptr_t iy, uintptr_t wy,
                 uintptr_t ix, uintptr_t wx, Py_ssize_t fx, Py_ssize_t rows_per_item,
                 int n_threads, keep, Py_ssize_t lanes=1, Py_ssize_t head=0, Py_ssize_t k0=0,
                 Py_ssize_t nbody=-1):
    """A native step running bilinear2d (bilinear) or nearest2d (with `lanes` floats per
    element, bilinear: 1 only; the column map (fx, head, k0, nbody) as nearest2d takes
    it, unchecked)."""
    if lanes < 1 or (bilinear and lanes != 1):
        raise ValueError("plane2d_call: lanes")
    cdef plane2d_args_t* a = <plane2d_args_t*>malloc(sizeof(plane2d_args_t))
    if a == NULL:
        raise MemoryError()
    a.x, a.out = <const float*>x, <float*>out
    a.P, a.H, a.W, a.OH, a.OW, a.fx, a.rows_per_item = P, H, W, OH, OW, fx, rows_per_item
    a.lanes, a.head, a.k0, a.nbody = lanes, head, k0, (OW - head if nbody < 0 else nbody)
    a.iy, a.wy = <const Py_ssize_t*>iy, <const float*>wy
    a.ix, a.wx = <const Py_ssize_t*>ix, <const float*>wx
    a.n_threads = n_threads
    return make_c_call(_bilinear_step if bilinear else _nearest_step, a, keep)
