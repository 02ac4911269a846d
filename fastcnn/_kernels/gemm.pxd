# gemm.pxd -- C-level contract of the packed SGEMM (see gemm.pyx).
cdef extern from "gemm_sgemm.h" nogil:
    ctypedef struct fastcnn_act_t:
        int kind
        float p0
        float p1
        const float *slope
    ctypedef struct fc_gemm_params:
        long M, N, K
        const float *a        # IN  raw [M, lda] row-major, or packed [ceil(M/6), K, 6]
        long lda
        int a_packed
        const float *b        # IN  raw [K, ldb] row-major, or packed [ceil(N/16), K, 16]
        long ldb
        int b_packed
        float *c              # IN/OUT [M, ldc]
        long ldc
        const float *bias     # IN  [M] (bias_axis 0) or [N] (bias_axis 1) or NULL
        int bias_axis
        int accumulate
        fastcnn_act_t act

# C = act(A @ B + bias (+ C if accumulate)); split over C blocks, n_threads threads.
cdef void sgemm_exec(fc_gemm_params *p, int n_threads) noexcept nogil
