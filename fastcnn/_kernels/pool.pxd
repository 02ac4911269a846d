# cython: language_level=3
"""C-level contract of the pooling kernels (see pool.pyx)."""

ctypedef fused real:
    float
    double

# Pooling modes
cdef enum:
    POOL_MAX = 0
    POOL_AVG_EXCLUDE_PAD = 1
    POOL_AVG_INCLUDE_PAD = 2
    POOL_LP = 3

# Windowed pooling over NC planes seen as 3-D (D, H, W).  Every geometry array
# holds 3 values (d, h, w).  `indices` (MAX only, may be NULL) receives flat
# offsets into the whole input: row-major, or column-major over the spatial
# dims when storage_order == 1.
cdef void pool_3d_c(
    const real* x,            # IN  [NC][D][H][W]
    real* y,                  # OUT [NC][OD][OH][OW]
    long long* indices,       # OUT [NC][OD][OH][OW] or NULL
    long NC,
    const long* in_sp,        # IN  [3] D, H, W
    const long* out_sp,       # IN  [3]
    const long* kernel,       # IN  [3]
    const long* strides,      # IN  [3]
    const long* pads_begin,   # IN  [3]
    const long* pads_end,     # IN  [3] (only AVG_INCLUDE_PAD reads it)
    const long* dilations,    # IN  [3]
    int mode, double p, int storage_order,
    int n_threads) noexcept nogil
