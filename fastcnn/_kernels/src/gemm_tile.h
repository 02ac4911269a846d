/* gemm_tile.h -- ISA template of the packed SGEMM micro-kernel (6 x 16 tile:
 * 12 accumulators of 8 floats, 2 B vectors, 1 broadcast of A).  Included once
 * per ISA by gemm_sgemm.h with FC_SUF / FC_TGT / FC_AVX defined.
 *
 * A operand: element (r, k) at a[r*a_rs + k*a_ks]   (packed: a_rs=1, a_ks=6;
 *            raw row-major: a_rs=lda, a_ks=1)
 * B operand: 16 contiguous floats per k at b[k*b_ks]  (packed: b_ks=16)
 * C:         c[r*ldc + j], all 16 columns valid (the driver redirects tails
 *            through a scratch tile)
 * mode: 0 start from 0, 1 start from C.   last: apply the epilogue.
 */
#include "fc_vec_begin.h"

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fc_gemm_tile)(
    const int MR, long kc, const float *FC_RESTRICT a, long a_rs, long a_ks,
    const float *FC_RESTRICT b, long b_ks, float *FC_RESTRICT c, long ldc, int mode, int last,
    const float *bias_row, const float *bias_col, const fastcnn_act_t *act, long row0, long col0,
    int bias_axis)
{
    VT acc[6][2];
    int r;
    long k;
    _Pragma("GCC unroll 6")
    for (r = 0; r < MR; r++) {
        if (mode) { acc[r][0] = VLOAD(c + r * ldc); acc[r][1] = VLOAD(c + r * ldc + 8); }
        else { acc[r][0] = VZERO(); acc[r][1] = VZERO(); }
    }
    if (MR <= 2) {
        /* 1-2 rows (a GEMV, a batch-1 Linear): 2-4 accumulator chains would wait on the
         * FMA latency every k; four k phases in separate accumulators (summed at the
         * end) keep 8-16 chains in flight */
        VT e[2][3][2];
        int q;
        _Pragma("GCC unroll 2")
        for (r = 0; r < MR; r++)
            for (q = 0; q < 3; q++) { e[r][q][0] = VZERO(); e[r][q][1] = VZERO(); }
        for (k = 0; k + 4 <= kc; k += 4) {
            _Pragma("GCC unroll 4")
            for (q = 0; q < 4; q++) {
                VT b0 = VLOAD(b + (k + q) * b_ks), b1 = VLOAD(b + (k + q) * b_ks + 8);
                _Pragma("GCC unroll 2")
                for (r = 0; r < MR; r++) {
                    VT av = VBCAST(a + r * a_rs + (k + q) * a_ks);
                    if (q == 0) {
                        acc[r][0] = VFMA(b0, av, acc[r][0]);
                        acc[r][1] = VFMA(b1, av, acc[r][1]);
                    } else {
                        e[r][q - 1][0] = VFMA(b0, av, e[r][q - 1][0]);
                        e[r][q - 1][1] = VFMA(b1, av, e[r][q - 1][1]);
                    }
                }
            }
        }
        for (; k < kc; k++) {
            VT b0 = VLOAD(b + k * b_ks), b1 = VLOAD(b + k * b_ks + 8);
            _Pragma("GCC unroll 2")
            for (r = 0; r < MR; r++) {
                VT av = VBCAST(a + r * a_rs + k * a_ks);
                acc[r][0] = VFMA(b0, av, acc[r][0]);
                acc[r][1] = VFMA(b1, av, acc[r][1]);
            }
        }
        _Pragma("GCC unroll 2")
        for (r = 0; r < MR; r++) {
            acc[r][0] = VADD(acc[r][0], VADD(VADD(e[r][0][0], e[r][1][0]), e[r][2][0]));
            acc[r][1] = VADD(acc[r][1], VADD(VADD(e[r][0][1], e[r][1][1]), e[r][2][1]));
        }
    } else {
        _Pragma("GCC unroll 2")
        for (k = 0; k < kc; k++) {
            VT b0 = VLOAD(b + k * b_ks), b1 = VLOAD(b + k * b_ks + 8);
            _Pragma("GCC unroll 6")
            for (r = 0; r < MR; r++) {
                VT av = VBCAST(a + r * a_rs + k * a_ks);
                acc[r][0] = VFMA(b0, av, acc[r][0]);
                acc[r][1] = VFMA(b1, av, acc[r][1]);
            }
        }
    }
    if (last) {
        int vec = fc_act_is_vector(act->kind) && act->kind != FASTCNN_ACT_PRELU;
        VT bc0 = VZERO(), bc1 = VZERO();
        if (bias_col) { bc0 = VLOAD(bias_col); bc1 = VLOAD(bias_col + 8); }
        _Pragma("GCC unroll 6")
        for (r = 0; r < MR; r++) {
            VT v0 = acc[r][0], v1 = acc[r][1];
            if (bias_row) { VT br = VSET1(bias_row[r]); v0 = VADD(v0, br); v1 = VADD(v1, br); }
            if (bias_col) { v0 = VADD(v0, bc0); v1 = VADD(v1, bc1); }
            if (vec) {
                FC_ACT_VEC(VT, VADD, VMUL, VMAX, VMIN, VFMA, VSET1, VZERO, VLOAD, v0, act, (const float *)0);
                FC_ACT_VEC(VT, VADD, VMUL, VMAX, VMIN, VFMA, VSET1, VZERO, VLOAD, v1, act, (const float *)0);
            }
            acc[r][0] = v0; acc[r][1] = v1;
        }
        _Pragma("GCC unroll 6")
        for (r = 0; r < MR; r++) { VSTORE(c + r * ldc, acc[r][0]); VSTORE(c + r * ldc + 8, acc[r][1]); }
        if (!vec) {
            for (r = 0; r < MR; r++) {
                int j;
                for (j = 0; j < 16; j++)
                    c[r * ldc + j] = fastcnn_act_scalar(act, c[r * ldc + j], bias_axis == 0 ? row0 + r : col0 + j);
            }
        }
    } else {
        _Pragma("GCC unroll 6")
        for (r = 0; r < MR; r++) { VSTORE(c + r * ldc, acc[r][0]); VSTORE(c + r * ldc + 8, acc[r][1]); }
    }
}

static FC_TGT void FC_SUF(fc_gemm_tile_any)(
    int MR, long kc, const float *a, long a_rs, long a_ks, const float *b, long b_ks, float *c,
    long ldc, int mode, int last, const float *bias_row, const float *bias_col,
    const fastcnn_act_t *act, long row0, long col0, int bias_axis)
{
#define FC_G(MR_) FC_SUF(fc_gemm_tile)(MR_, kc, a, a_rs, a_ks, b, b_ks, c, ldc, mode, last, bias_row, \
                                       bias_col, act, row0, col0, bias_axis)
    switch (MR) {
    case 6: FC_G(6); break;
    case 5: FC_G(5); break;
    case 4: FC_G(4); break;
    case 3: FC_G(3); break;
    case 2: FC_G(2); break;
    default: FC_G(1); break;
    }
#undef FC_G
}

#include "fc_vec_end.h"
