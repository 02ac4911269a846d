# cython: language_level=3
"""C-level contract of the elementwise kernels (see elementwise.pyx).

Every kernel writes into its OUT buffer and takes `n_threads` (fastcnn's
thread pool; FTZ/DAZ on for the run whatever the thread count); below
SERIAL_ELEMENTS elements it runs on the calling thread.  `out` may alias
an IN buffer of the same extent (in-place).  Activation codes are those of
epilogue.h (0..12) plus the unary codes ELT_* below (32 and up).
"""

cdef enum:
    ELT_SELU = 32           # p1 * (x > 0 ? x : p0*(exp(x)-1))   (p0 = alpha, p1 = gamma)
    ELT_SOFTPLUS = 33       # log(1 + exp(x))
    ELT_SOFTSIGN = 34       # x / (1 + |x|)
    ELT_GELU_TANH = 35      # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    ELT_THRESHOLDED_RELU = 36  # x > p0 ? x : 0
    ELT_CELU = 37           # max(0,x) + min(0, p0*(exp(x/p0)-1))
    ELT_EXP = 38
    ELT_NEG = 39
    ELT_ABS = 40
    ELT_SQRT = 41
    ELT_RECIPROCAL = 42
    ELT_LOG = 43
    ELT_ERF = 44
    ELT_AFFINE = 45         # p0 * x + p1

cdef enum:
    BIN_ADD = 0
    BIN_SUB = 1
    BIN_MUL = 2
    BIN_DIV = 3
    BIN_MAX = 4
    BIN_MIN = 5

cdef enum:
    OPERAND_FULL = 0        # same extent as the output
    OPERAND_CHANNEL = 1     # one value per channel c of the [outer, C, inner] view
                            # (inner 1: a trailing-axes broadcast, y[o, c] = x[o, c] op v[c])
    OPERAND_SCALAR = 2      # one value
    OPERAND_LANES = 3       # [C, lanes]: channel c's vector, repeated along each row (NCHWc)

cdef void activation_c(
    const float* x,         # IN  [n]
    float* out,             # OUT [n]
    Py_ssize_t n,
    int kind, float p0, float p1,
    const float* slope,     # IN  [n_channels] (PRELU only), or NULL
    Py_ssize_t channel_stride,  # elements per channel plane (PRELU)
    Py_ssize_t n_channels,
    int n_threads) noexcept nogil

cdef void binary_c(
    int op,
    const float* a, int a_mode,   # IN  operand a and its broadcast mode
    const float* b, int b_mode,   # IN  operand b and its broadcast mode
    float* out,                   # OUT [outer * C * inner]
    Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
    Py_ssize_t lanes,             # LANES operands: vector length (inner is a multiple)
    int act_kind, float p0, float p1,
    int n_threads) noexcept nogil

cdef void affine_channel_c(
    const float* x,         # IN  [outer, C, inner]
    const float* scale,     # IN  [C] (or [C, lanes])
    const float* bias,      # IN  [C] (or [C, lanes])
    float* out,             # OUT [outer, C, inner]
    Py_ssize_t outer, Py_ssize_t C, Py_ssize_t inner,
    Py_ssize_t lanes,       # > 1: channel-blocked, per-lane scale/bias vectors
    int act_kind, float p0, float p1,
    int n_threads) noexcept nogil
