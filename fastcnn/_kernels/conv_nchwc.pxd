# conv_nchwc.pxd -- C-level contract of the NCHWc kernels (see conv_nchwc.pyx).
cdef extern from "conv_nchwc.h" nogil:
    ctypedef struct fastcnn_act_t:
        int kind
        float p0
        float p1
        const float *slope
    ctypedef struct fc_conv_params:
        const float *x        # IN  blocked [N, Cb, S_in, 8] or plain [N, C, S_in]
        const float *w        # IN  packed [Mb, cbg, K, icb, 8]
        const float *bias     # IN  [M] or NULL
        const float *res      # IN  [N, Mb, S_out, 8] or NULL
        float *y              # OUT [N, Mb, S_out, 8]
        long M, Mb, mbg, cbg, cb_total, icb
        int lanes             # 8, or 16: w packed in pairs of oc blocks [G*mbg2, cbg, K, 8, 16]
        long mbg2
        int blocked
        long id, ih, iw, od, oh, ow, kd, kh, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw
        long K, cb_chunk
        fastcnn_act_t act
        int wide              # AVX-512, 16 lanes: tiles of <= 2 zmm columns run 12 pixels

# Run a prepared convolution over the batch (N images), n_threads OpenMP threads.
cdef void conv_nchwc_exec(fc_conv_params *p, long N, int n_threads) noexcept nogil
# Layout reorders: x[N, C, S] (IN) <-> xb[N, ceil(C/8), S, 8] (OUT / IN).
cdef void reorder_to_blocked_c(const float *x, float *xb, long N, long C, long S, int n_threads) noexcept nogil
cdef void reorder_from_blocked_c(const float *xb, float *x, long N, long C, long S, int n_threads) noexcept nogil
