# cython: language_level=3
"""C-level contract of the generic convolution kernels (see conv_generic.pyx).

Every tensor is C-contiguous and seen as 3 spatial dims (1-D/2-D callers pad the
shape on the left with size-1 dims, stride 1, no padding).
"""

ctypedef fused real:
    float
    double

# im2col of one image: row (c, kd, kh, kw), column (od, oh, ow).
cdef void im2col_3d_c(
    const real* x,            # IN  [C][D][H][W]
    real* col,                # OUT [C*KD*KH*KW][OD*OH*OW]
    long C, long D, long H, long W,
    long OD, long OH, long OW,
    long KD, long KH, long KW,
    long SD, long SH, long SW,
    long PD, long PH, long PW,      # begin pads
    long DD, long DH, long DW,
    int n_threads) noexcept nogil

# col2im of one image (the adjoint of im2col): y = 0, then scatter-add every column.
# Pads may be negative (the output then extends past the full transposed size).
cdef void col2im_3d_c(
    const real* col,          # IN  [C*KD*KH*KW][ID*IH*IW]
    real* y,                  # OUT [C][OD][OH][OW]
    long C, long ID, long IH, long IW,
    long OD, long OH, long OW,
    long KD, long KH, long KW,
    long SD, long SH, long SW,
    long PD, long PH, long PW,
    long DD, long DH, long DW,
    int n_threads) noexcept nogil

# y[n, m, :] = act(y[n, m, :] + bias[m] + residual[n, m, :])  (float32 only)
cdef void conv_epilogue_c(
    float* y,                 # IN/OUT [N][M][P]
    const float* bias,        # IN [M] or NULL
    const float* residual,    # IN [N][M][P] or NULL
    long N, long M, long P,
    int act_kind, float p0, float p1,
    const float* slope,       # IN [M] (PRelu) or NULL
    int n_threads) noexcept nogil
