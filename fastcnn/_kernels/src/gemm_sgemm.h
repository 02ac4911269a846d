/* gemm_sgemm.h -- packed SGEMM  C[M,N] = act(A[M,K] @ B[K,N] (+bias) (+C)).
 *
 * Packed layouts (zero padded):
 *   B packed: [ceil(N/16), K, 16]   (panel of 16 columns, k-major)
 *   A packed: [ceil(M/6),  K, 6]    (panel of 6 rows, k-major)
 * Either operand may also be raw row-major (lda / ldb).  Blocking: K in
 * chunks of FC_GEMM_KC (a 16-column B slab of KC rows = 16 KiB stays in L1),
 * C block [i0,i1) x [j0,j1) is one work item of the caller's parallel loop;
 * partial sums live in C between K chunks, the epilogue runs after the last.
 */
#ifndef FASTCNN_GEMM_SGEMM_H
#define FASTCNN_GEMM_SGEMM_H
#include "cpu.h"
#include "epilogue.h"
#include "conv_nchwc_simd.h"

#define FC_GEMM_MR 6
#define FC_GEMM_NR 16
#define FC_GEMM_KC 256

#define FC_SUF(name) name##_portable
#define FC_TGT
#define FC_AVX 0
#include "gemm_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#if FASTCNN_X86
#define FC_SUF(name) name##_avx2
#define FC_TGT FASTCNN_TARGET_AVX2
#define FC_AVX 1
#include "gemm_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#endif

typedef struct {
    long M, N, K;
    const float *a; long lda; int a_packed;   /* packed: [ceil(M/6), K, 6] */
    const float *b; long ldb; int b_packed;   /* packed: [ceil(N/16), K, 16] */
    float *c; long ldc;
    const float *bias; int bias_axis;         /* bias[M] (axis 0) or bias[N] (axis 1) */
    int accumulate;                           /* C += ... */
    fastcnn_act_t act;
} fc_gemm_params;

static void fc_gemm_tile_dispatch(int isa, int MR, long kc, const float *a, long a_rs, long a_ks,
                                  const float *b, long b_ks, float *c, long ldc, int mode, int last,
                                  const float *bias_row, const float *bias_col,
                                  const fastcnn_act_t *act, long row0, long col0, int bias_axis) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) {
        fc_gemm_tile_any_avx2(MR, kc, a, a_rs, a_ks, b, b_ks, c, ldc, mode, last, bias_row, bias_col,
                              act, row0, col0, bias_axis);
        return;
    }
#endif
    fc_gemm_tile_any_portable(MR, kc, a, a_rs, a_ks, b, b_ks, c, ldc, mode, last, bias_row, bias_col,
                              act, row0, col0, bias_axis);
}

/* One C block rows [i0,i1) x cols [j0,j1); j0 multiple of 16, i0 multiple of 6. */
static void fc_gemm_block(int isa, const fc_gemm_params *p, long i0, long i1, long j0, long j1) {
    float btmp[FC_GEMM_KC * FC_GEMM_NR];
    float ctmp[FC_GEMM_MR * FC_GEMM_NR];
    float bcol_tmp[FC_GEMM_NR];
    long k0, i, j, r, jj, jo, ko;
    /* One row tile (batch-1 Linear / GEMV): column slabs outer, so each packed B slab
     * streams from memory front to back; otherwise K chunks outer (a B chunk stays in
     * L1 across the row tiles). */
    int slabs_outer = i1 - i0 <= FC_GEMM_MR;
    long n_k = (p->K + FC_GEMM_KC - 1) / FC_GEMM_KC, n_j = (j1 - j0 + FC_GEMM_NR - 1) / FC_GEMM_NR;
    for (ko = 0; ko < (slabs_outer ? n_j : n_k); ko++)
    for (jo = 0; jo < (slabs_outer ? n_k : n_j); jo++) {
        k0 = (slabs_outer ? jo : ko) * FC_GEMM_KC;
        j = j0 + (slabs_outer ? ko : jo) * FC_GEMM_NR;
        long kc = p->K - k0 < FC_GEMM_KC ? p->K - k0 : FC_GEMM_KC;
        int first = k0 == 0, last = k0 + kc == p->K;
        int mode = first ? p->accumulate : 1;
        {
            long nc = p->N - j < FC_GEMM_NR ? p->N - j : FC_GEMM_NR;
            const float *bp;
            long b_ks;
            const float *bias_col = 0;
            if (p->b_packed) {
                bp = p->b + (j / FC_GEMM_NR) * p->K * FC_GEMM_NR + k0 * FC_GEMM_NR;
                b_ks = FC_GEMM_NR;
            } else if (nc == FC_GEMM_NR) {
                bp = p->b + k0 * p->ldb + j;
                b_ks = p->ldb;
            } else {
                long k;
                for (k = 0; k < kc; k++)
                    for (jj = 0; jj < FC_GEMM_NR; jj++)
                        btmp[k * FC_GEMM_NR + jj] = jj < nc ? p->b[(k0 + k) * p->ldb + j + jj] : 0.f;
                bp = btmp;
                b_ks = FC_GEMM_NR;
            }
            if (last && p->bias && p->bias_axis == 1) {
                if (nc == FC_GEMM_NR) bias_col = p->bias + j;
                else {
                    for (jj = 0; jj < FC_GEMM_NR; jj++) bcol_tmp[jj] = jj < nc ? p->bias[j + jj] : 0.f;
                    bias_col = bcol_tmp;
                }
            }
            for (i = i0; i < i1; i += FC_GEMM_MR) {
                int mr = (int)(p->M - i < FC_GEMM_MR ? p->M - i : FC_GEMM_MR);
                const float *ap;
                long a_rs, a_ks;
                const float *bias_row = (last && p->bias && p->bias_axis == 0) ? p->bias + i : 0;
                float *cp = p->c + i * p->ldc + j;
                long ldc = p->ldc;
                if (p->a_packed) {
                    ap = p->a + (i / FC_GEMM_MR) * p->K * FC_GEMM_MR + k0 * FC_GEMM_MR;
                    a_rs = 1; a_ks = FC_GEMM_MR;
                } else {
                    ap = p->a + i * p->lda + k0;
                    a_rs = p->lda; a_ks = 1;
                }
                if (nc < FC_GEMM_NR) {
                    if (mode)
                        for (r = 0; r < mr; r++)
                            for (jj = 0; jj < FC_GEMM_NR; jj++)
                                ctmp[r * FC_GEMM_NR + jj] = jj < nc ? cp[r * ldc + jj] : 0.f;
                    fc_gemm_tile_dispatch(isa, mr, kc, ap, a_rs, a_ks, bp, b_ks, ctmp, FC_GEMM_NR, mode,
                                          last, bias_row, bias_col, &p->act, i, j, p->bias_axis);
                    for (r = 0; r < mr; r++)
                        for (jj = 0; jj < nc; jj++) cp[r * ldc + jj] = ctmp[r * FC_GEMM_NR + jj];
                } else {
                    fc_gemm_tile_dispatch(isa, mr, kc, ap, a_rs, a_ks, bp, b_ks, cp, ldc, mode, last,
                                          bias_row, bias_col, &p->act, i, j, p->bias_axis);
                }
            }
        }
    }
}

#endif
