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


cdef extern from "pool_simd.h" nogil:
    ctypedef struct fcpool_geom_t:
        long n, cb
        long id, ih, iw
        long od, oh, ow
        long kd, kh, kw
        long sd, sh, sw
        long pd, ph, pw          # begin pads
        long qd, qh, qw          # end pads (AVG_INCLUDE_PAD reads them)
        long dd, dh, dw
        int mode
        float p

# Windowed pooling in the channel-blocked layout (block 8, one channel per lane):
# parallel over (n, block, out depth, row chunk).  Lanes >= channels of the last
# block are written 0.
cdef void pool_nchwc_c(
    const float* x,           # IN  [N][CB][D][H][W][8]
    float* y,                 # OUT [N][CB][OD][OH][OW][8]
    const fcpool_geom_t* g,   # IN
    long channels,            # real channels, (CB-1)*8 < channels <= CB*8
    int n_threads) noexcept nogil
