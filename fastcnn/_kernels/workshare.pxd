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
