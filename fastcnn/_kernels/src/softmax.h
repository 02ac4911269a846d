/* softmax.h -- softmax / log-softmax of float32 over the middle axis of an [outer, S, inner]
 * view, per ISA (softmax_tile.h instantiated for AVX-512, AVX2 + FMA and portable C; the
 * level is chosen per call from fastcnn_cpu_level(), or forced by fc_sm_isa for tests).
 *
 *   fc_sm_rows(x, y, r0, r1, S, lg)          inner == 1: rows r0..r1 of [outer, S]
 *   fc_sm_cols(x, y, S, inner, w, lg)        inner > 1: w <= FC_SM_COLS columns of one
 *                                            [S, inner] block (x, y point at its column 0)
 * lg = 0: softmax, 1: log-softmax.  y may be x (in place). */
#ifndef FASTCNN_SOFTMAX_H
#define FASTCNN_SOFTMAX_H
#include <math.h>
#include "cpu.h"
#include "transc.h"

#define FC_SM_COLS 64     /* columns per cols call: 4 AVX-512 vectors, 8 AVX2, 64 scalars */

#define FC_SUF(name) name##_portable
#define FC_TGT
#define FC_SM_ISA 0
#include "softmax_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_SM_ISA

#if FASTCNN_X86
#define FC_SUF(name) name##_avx2
#define FC_TGT FASTCNN_TARGET_AVX2
#define FC_SM_ISA 1
#include "softmax_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_SM_ISA

#define FC_SUF(name) name##_avx512
#define FC_TGT FASTCNN_TARGET_AVX512
#define FC_SM_ISA 2
#include "softmax_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_SM_ISA
#endif

static int fc_sm_isa = -1;      /* -1: by CPU; else a forced FASTCNN_ISA_* (tests) */

static inline int fc_sm_level(void) {
    return fc_sm_isa >= 0 ? fc_sm_isa : fastcnn_cpu_level();
}

static void fc_sm_rows(const float *x, float *y, long r0, long r1, long S, int lg) {
    long r;
    int level = fc_sm_level();
#if FASTCNN_X86
    if (level >= FASTCNN_ISA_AVX512) {
        for (r = r0; r < r1; r++) fc_sm_row_avx512(x + r * S, y + r * S, S, lg);
        return;
    }
    if (level >= FASTCNN_ISA_AVX2) {
        for (r = r0; r < r1; r++) fc_sm_row_avx2(x + r * S, y + r * S, S, lg);
        return;
    }
#endif
    (void)level;
    for (r = r0; r < r1; r++) fc_sm_row_portable(x + r * S, y + r * S, S, lg);
}

static void fc_sm_cols(const float *x, float *y, long S, long inner, long w, int lg) {
    int level = fc_sm_level();
    long c, n;
    /* each ISA's kernel takes up to 4 of its vectors: AVX2 and portable run the 64
     * columns as several calls */
#if FASTCNN_X86
    if (level >= FASTCNN_ISA_AVX512) {
        fc_sm_cols_avx512(x, y, S, inner, w, lg);
        return;
    }
    if (level >= FASTCNN_ISA_AVX2) {
        for (c = 0; c < w; c += 32) {
            n = w - c < 32 ? w - c : 32;
            fc_sm_cols_avx2(x + c, y + c, S, inner, n, lg);
        }
        return;
    }
#endif
    (void)level;
    for (c = 0; c < w; c += 4) {
        n = w - c < 4 ? w - c : 4;
        fc_sm_cols_portable(x + c, y + c, S, inner, n, lg);
    }
}

#endif
