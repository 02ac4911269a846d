# cython: language_level=3, boundscheck=False, wraparound=False
# Design: native executor steps for the NCHW <-> NCHWc reorders (the kernels
# themselves live in conv_nchwc: parallel over N x channel blocks, block 8).
# A step is a C trampoline plus an argument block of raw pointers, so a
# reorder between two native steps costs no Python.
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc

from fastcnn._kernels.conv_nchwc cimport reorder_from_blocked_c, reorder_to_blocked_c
from fastcnn._kernels.executor cimport Call, make_c_call

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
    to_blocked: src [N, C, S] -> dst [N, ceil(C/8), S, 8]; else the inverse."""
    for a in (src, dst):
        if a.dtype.char != 'f' or not a.flags.c_contiguous:
            raise TypeError("reorder_call needs C-contiguous float32 arrays")
    cdef reorder_args *r = <reorder_args *> malloc(sizeof(reorder_args))
    if r == NULL:
        raise MemoryError()
    r.src = <const float *> <uintptr_t> src.ctypes.data
    r.dst = <float *> <uintptr_t> dst.ctypes.data
    r.N, r.C, r.S, r.n_threads = N, C, S, n_threads
    return make_c_call(_to_blocked if to_blocked else _from_blocked, r, (src, dst))
