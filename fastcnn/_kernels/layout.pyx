# cython: language_level=3, boundscheck=False, wraparound=False
# Design: native executor steps for the NCHW <-> NCHWc reorders (the kernels
# themselves live in conv_nchwc: parallel over N x channel blocks, block 8) and
# for copies of byte pieces (Concat: each input into its slice of the output),
# parallel over pieces of at most PIECE_BYTES on fastcnn's pool.
# A step is a C trampoline plus an argument block of raw pointers, so a
# reorder or a copy between two native steps costs no Python.
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc
from libc.string cimport memcpy
cimport numpy as cnp
from fastcnn._kernels.threadpool cimport parallel_for

from fastcnn._kernels.conv_nchwc cimport reorder_from_blocked_c, reorder_to_blocked_c
from fastcnn._kernels.executor cimport Call, make_c_call

cnp.import_array()

cdef struct reorder_args:
    const float *src
    float *dst
    long N, C, S
    int n_threads

cdef void _to_blocked(void *a) noexcept nogil:
    cdef reorder_args *r = <reorder_args *> a
    reorder_to_blocked_c(r.src, r.dst, r.N, r.C, r.S, r.n_threads)

cdef void _from_blocked(void *a) noexcept nogil:
    cdef reorder_args *r = <reorder_args *> a
    reorder_from_blocked_c(r.src, r.dst, r.N, r.C, r.S, r.n_threads)


def reorder_call(src, dst, long N, long C, long S, bint to_blocked, int n_threads):
    """A native step: src/dst float32 C-contiguous arrays (kept alive by the step).
    to_blocked: src [N, C, S] -> dst [N, ceil(C/8), S, 8]; else the inverse.
    Cheap (well under a microsecond): the planner rebinds reorders at the graph's edges
    to the caller's own feed and output arrays."""
    cdef cnp.ndarray a = _f32_c(src, "src"), b = _f32_c(dst, "dst")
    cdef long cb = (C + 7) // 8
    if N < 0 or C < 0 or S < 0 or cnp.PyArray_SIZE(a if to_blocked else b) < N * C * S \
            or cnp.PyArray_SIZE(b if to_blocked else a) < N * cb * S * 8:
        raise ValueError("reorder_call: arrays too small for N, C, S")
    cdef reorder_args *r = <reorder_args *> malloc(sizeof(reorder_args))
    if r == NULL:
        raise MemoryError()
    r.src = <const float *> cnp.PyArray_DATA(a)
    r.dst = <float *> cnp.PyArray_DATA(b)
    r.N, r.C, r.S, r.n_threads = N, C, S, n_threads
    return make_c_call(_to_blocked if to_blocked else _from_blocked, r, (src, dst))


cdef cnp.ndarray _f32_c(a, name):
    if not isinstance(a, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray> a) != cnp.NPY_FLOAT32 \
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a):
        raise TypeError(f"reorder_call needs C-contiguous float32 arrays ({name})")
    return <cnp.ndarray> a


# -- piece copies ---------------------------------------------------------------------
PIECE_BYTES = 1 << 17      # 128 KiB: enough pieces for 2+ threads, each one long memcpy
MIN_PARALLEL_BYTES = 1 << 16

cdef struct copy_args:
    long n_pieces
    int n_threads
    # then n_pieces x (dst, src, n_bytes), as longs

cdef void _copy_item(void *a, long k) noexcept nogil:
    cdef copy_args *c = <copy_args *> a
    cdef uintptr_t *p = <uintptr_t *> (<char *> a + sizeof(copy_args)) + 3 * k
    memcpy(<void *> p[0], <const void *> p[1], p[2])

cdef void _copy_step(void *a) noexcept nogil:
    cdef copy_args *c = <copy_args *> a
    parallel_for(c.n_threads, c.n_pieces, _copy_item, a)


def copy_pieces_call(pieces, int n_threads, keep):
    """A native step copying each (dst address, src address, n_bytes) of `pieces` (no two
    overlapping; the arrays behind the addresses are kept alive by `keep`).  Pieces longer
    than PIECE_BYTES are cut, so the pool's threads share long copies."""
    cut = []
    cdef long total = 0
    for d, s_, n in pieces:
        if n < 0:
            raise ValueError("negative piece length")
        total += n
        while n > PIECE_BYTES:
            cut.append((d, s_, PIECE_BYTES))
            d += PIECE_BYTES
            s_ += PIECE_BYTES
            n -= PIECE_BYTES
        if n:
            cut.append((d, s_, n))
    cdef copy_args *c = <copy_args *> malloc(sizeof(copy_args) + 3 * sizeof(uintptr_t) * max(len(cut), 1))
    if c == NULL:
        raise MemoryError()
    c.n_pieces = len(cut)
    c.n_threads = n_threads if total >= MIN_PARALLEL_BYTES else 1
    cdef uintptr_t *p = <uintptr_t *> (<char *> c + sizeof(copy_args))
    cdef long k
    for k in range(len(cut)):
        p[3 * k], p[3 * k + 1], p[3 * k + 2] = cut[k]
    return make_c_call(_copy_step, c, keep)
