# local_conv.pxd -- C-level contract of the com.fastcnn custom-op kernels (see local_conv.pyx).
#
# Geometry arrays hold 3 values (d, h, w); 1-D/2-D callers pad with size-1 dims.

ctypedef fused real:
    float
    double

# Unshared / tiled convolution over row tiles (one row = one (image, position) pair).
#   y[n, g·Mg + m, p] = Σ_j col(n, p)[j] · wpack[bank, g, j, m] + bias[(g·Mg + m)·bms + p·bps]
cdef void local_conv_c(
    const float* x,            # IN  [N][C][D][H][W]
    const float* wpack,        # IN  [n_banks][G][K][Mgp]  (K = C/G·Πk, Mgp = Mg padded to 16)
    const float* bias,         # IN  indexed (m·bms + p·bps), or NULL
    long bms, long bps,
    float* y,                  # OUT [N][M][P]
    const long long* rows,     # IN  [n_rows] n·P + p, grouped by bank
    const long long* items,    # IN  [n_items][3] (bank, first row, n rows ≤ 4)
    long n_items,
    long N, long C, long M, long G,
    const long* in_sp, const long* out_sp, const long* kernel, const long* strides,
    const long* pads_begin, const long* dilations,
    int n_threads) noexcept nogil

# Weighted average pooling over NC planes.
#   y = (Σ_{valid κ} kn[κ]·x) · scale[(case_d[od]·n_ch + case_h[oh])·n_cw + case_w[ow]]
cdef void wavg_pool_c(
    const real* x,             # IN  [NC][D][H][W]
    real* y,                   # OUT [NC][OD][OH][OW]
    const real* kn,            # IN  [kd·kh·kw] normalized kernel
    const real* scale,         # IN  [n_cd·n_ch·n_cw]
    const int* case_d, const int* case_h, const int* case_w,   # IN [OD], [OH], [OW]
    long n_ch, long n_cw,
    long NC, const long* in_sp, const long* out_sp, const long* kernel,
    const long* strides, const long* pads_begin,
    int n_threads) noexcept nogil
