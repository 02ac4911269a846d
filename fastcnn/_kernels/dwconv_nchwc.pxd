# cython: language_level=3
"""C-level contract of the depthwise / grouped NCHWc kernels (see dwconv_nchwc.pyx)."""

cdef extern from "dwconv_nchwc.h" nogil:
    ctypedef struct fcdw_geom_t:
        long n
        long cb_in, cb_out
        long id, ih, iw
        long od, oh, ow
        long kd, kh, kw
        long sd, sh, sw
        long pd, ph, pw
        long dd, dh, dw


# Depthwise, channel multiplier 1: output block ob reads input block ob.
cdef void dwconv_nchwc_c(
    const float* xb,          # IN  [n][cb_in][id*ih*iw][8]
    const float* packed_w,    # IN  [cb_out][kd*kh*kw][8]  (pack_dw_weights)
    const float* bias,        # IN  [cb_out*8] zero-padded, or NULL
    float* out_b,             # OUT [n][cb_out][od*oh*ow][8]
    const fcdw_geom_t* g,     # IN  geometry (cb_in == cb_out)
    int act_kind, float act_p0, float act_p1,
    const float* slope,       # IN  [cb_out*8] zero-padded (PRELU only), or NULL
    const float* residual,    # IN  like out_b, or NULL
    int out_channels,         # real output channels (>0: padded lanes written as 0)
    int n_threads) noexcept nogil

# Grouped conv (and depthwise with multiplier > 1) through per-block term lists.
cdef void groupconv_nchwc_c(
    const float* xb,          # IN  [n][cb_in][id*ih*iw][8]
    const float* packed_w,    # IN  [cb_out][t_max][kd*kh*kw][8]
    long t_max,
    const int* n_terms,       # IN  [cb_out]
    const int* src,           # IN  [cb_out][t_max] source input block
    const int* mode,          # IN  [cb_out][t_max] 0 identity, 1 broadcast, 2 permute
    const int* idx,           # IN  [cb_out][t_max][8] lane map
    const float* bias,        # IN  [cb_out*8] zero-padded, or NULL
    float* out_b,             # OUT [n][cb_out][od*oh*ow][8]
    const fcdw_geom_t* g,
    int act_kind, float act_p0, float act_p1,
    const float* slope,       # IN  [cb_out*8] zero-padded (PRELU only), or NULL
    const float* residual,    # IN  like out_b, or NULL
    int out_channels,
    int n_threads) noexcept nogil
