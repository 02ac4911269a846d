# cython: language_level=3
"""C-level contract of the pixel-shuffle kernels (see pixel_shuffle.pyx).

One index relation covers DepthToSpace and SpaceToDepth in both channel orders:

    big[n, c, h*b + i, w*b + j]  <->  small[n, chan(c, i, j), h, w]
    chan = (i*b + j)*C + c      (PS_DCR: ONNX default)
    chan = c*b*b + i*b + j      (PS_CRD: PyTorch pixel_shuffle / pixel_unshuffle)

`big` is [N, C, H*b, W*b], `small` is [N, C*b*b, H, W]; both contiguous.
"""

cdef enum:
    PS_DCR = 0
    PS_CRD = 1

cdef void depth_to_space_f32(
    const float* small,     # IN  [N, C*b*b, H, W]
    float* big,             # OUT [N, C, H*b, W*b]
    Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t b,
    int mode, int n_threads) noexcept nogil

cdef void space_to_depth_f32(
    const float* big,       # IN  [N, C, H*b, W*b]
    float* small,           # OUT [N, C*b*b, H, W]
    Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t b,
    int mode, int n_threads) noexcept nogil
