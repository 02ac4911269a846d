# cython: language_level=3
# How the parallel kernels cut (plane, row) work into items; cimported, no module of its own.

cdef inline long row_chunks(long planes, long oh, int nt) noexcept nogil:
    """Rows of a plane are cut into chunks only when planes alone cannot keep nt threads
    evenly busy (>= 8 items per thread); serial runs take whole planes."""
    cdef long want, c
    if nt <= 1:
        return 1
    want = 8 * nt
    if planes >= want:
        return 1
    c = (want + planes - 1) // planes
    if c > oh:
        c = oh
    return c


# The pool runs every job under FTZ/DAZ.  Max / argmax items select values and compute
# nothing (no denormal slowdown to avoid), but under DAZ a denormal input would compare and
# come out as 0; they clear FTZ/DAZ for the item: fc_exact_enter() returns the control word
# to give back to fc_exact_leave().
cdef extern from *:
    """
    #ifndef FASTCNN_WORKSHARE_EXACT
    #define FASTCNN_WORKSHARE_EXACT
    #include "cpu.h"
    static inline unsigned int fc_exact_enter(void) {
    #if FASTCNN_X86
        unsigned int old = _mm_getcsr();
        if (old & 0x8040u)
            _mm_setcsr(old & ~0x8040u);
        return old;
    #else
        return 0u;
    #endif
    }
    static inline void fc_exact_leave(unsigned int old) {
    #if FASTCNN_X86
        if (old & 0x8040u)
            _mm_setcsr(old);
    #else
        (void)old;
    #endif
    }
    #endif
    """
    unsigned int fc_exact_enter() noexcept nogil
    void fc_exact_leave(unsigned int old) noexcept nogil
