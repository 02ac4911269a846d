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
    const float* x,             # IN  [P, H, W]
    float* out,                 # OUT [P, OH, OW]
    Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
    const Py_ssize_t* iy,       # IN  [OH]
    const Py_ssize_t* ix,       # IN  [OW]
    Py_ssize_t fx,              # ix[o] == o // fx for every o (fx > 0), else 0
    Py_ssize_t rows_per_item,
    int n_threads) noexcept nogil
