# cython: language_level=3
"""C-level contract of the resize kernels (see resize.pyx).

Resize is separable: along one axis, every output coordinate o reads K taps

    y[.., o, ..] = ext[o] ? e : sum_k w[o*K + k] * x[.., idx[o*K + k], ..]

with idx already clamped into [0, n_in) (edge padding) and w float32.  The ops
layer builds these per-axis tables once at plan time; kernels only loop.
All tensors are contiguous float32; `ext` may be NULL (no extrapolation).
"""

cdef void resize_axis_f32(
    const float* x,             # IN  [outer, n_in, inner]
    float* out,                 # OUT [outer, n_out, inner]
    Py_ssize_t outer, Py_ssize_t n_in, Py_ssize_t inner, Py_ssize_t n_out,
    const Py_ssize_t* idx,      # IN  [n_out, K]
    const float* w,             # IN  [n_out, K]
    Py_ssize_t K,
    const unsigned char* ext,   # IN  [n_out] or NULL
    float e,
    int n_threads) noexcept nogil

cdef void bilinear2d_f32(
    const float* x,             # IN  [P, H, W]
    float* out,                 # OUT [P, OH, OW]
    Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
    const Py_ssize_t* iy, const float* wy,   # IN [OH, 2]
    const Py_ssize_t* ix, const float* wx,   # IN [OW, 2]
    Py_ssize_t rows_per_item,
    int n_threads) noexcept nogil

cdef void nearest2d_f32(
    const float* x,             # IN  [P, H, W, lanes]
    float* out,                 # OUT [P, OH, OW, lanes]
    Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
    Py_ssize_t lanes,           # floats per element: 1, or the channel block
    const Py_ssize_t* iy,       # IN  [OH]
    const Py_ssize_t* ix,       # IN  [OW]
    Py_ssize_t fx,              # > 0: the column map is (fx, head, k0, nbody); 0: gather
    Py_ssize_t head,            # ix[o] = 0 for o < head,
    Py_ssize_t k0,              # k0 + (o - head) // fx for head <= o < head + nbody,
    Py_ssize_t nbody,           # W - 1 after them
    Py_ssize_t rows_per_item,
    int n_threads) noexcept nogil
