/* reorder.h -- NCHW <-> NCHWc (block 8) copies of one channel block over a pixel range.
 *
 * blocked: xb[s * 8 + c] (one channel block of S pixels); plain: x[c * S + s] for the
 * block's cc <= 8 real channels (to_blocked writes zeros into lanes cc..7).
 * The AVX2 variants move 8 pixels x 8 channels per step through an in-register 8x8
 * transpose (the scalar loops walk one side with a 32-byte stride: ~10 GB/s, a third
 * of what the copy can do); the portable ones are the plain loops.
 */
#ifndef FASTCNN_REORDER_H
#define FASTCNN_REORDER_H

#include "cpu.h"

static void fc_from_blocked_portable(const float *xb, float *x, long S, long cc, long s0, long s1) {
    for (long c = 0; c < cc; c++)
        for (long s = s0; s < s1; s++)
            x[c * S + s] = xb[s * 8 + c];
}

static void fc_to_blocked_portable(const float *x, float *xb, long S, long cc, long s0, long s1) {
    for (long s = s0; s < s1; s++) {
        for (long c = 0; c < cc; c++)
            xb[s * 8 + c] = x[c * S + s];
        for (long c = cc; c < 8; c++)
            xb[s * 8 + c] = 0.0f;
    }
}

#if FASTCNN_X86
FASTCNN_TARGET_AVX2 static inline void fc_tr8x8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

FASTCNN_TARGET_AVX2 static void fc_from_blocked_avx2(const float *xb, float *x, long S, long cc,
                                                     long s0, long s1) {
    long s = s0;
    __m256 r[8];
    for (; s + 8 <= s1; s += 8) {
        for (int i = 0; i < 8; i++)
            r[i] = _mm256_loadu_ps(xb + (s + i) * 8);
        fc_tr8x8(r);
        for (long c = 0; c < cc; c++)
            _mm256_storeu_ps(x + c * S + s, r[c]);
    }
    if (s < s1)
        fc_from_blocked_portable(xb, x, S, cc, s, s1);
}

FASTCNN_TARGET_AVX2 static void fc_to_blocked_avx2(const float *x, float *xb, long S, long cc,
                                                   long s0, long s1) {
    long s = s0;
    __m256 r[8];
    for (; s + 8 <= s1; s += 8) {
        for (long c = 0; c < 8; c++)
            r[c] = c < cc ? _mm256_loadu_ps(x + c * S + s) : _mm256_setzero_ps();
        fc_tr8x8(r);
        for (int i = 0; i < 8; i++)
            _mm256_storeu_ps(xb + (s + i) * 8, r[i]);
    }
    if (s < s1)
        fc_to_blocked_portable(x, xb, S, cc, s, s1);
}
#endif

static void fc_from_blocked(int isa, const float *xb, float *x, long S, long cc, long s0, long s1) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) {
        fc_from_blocked_avx2(xb, x, S, cc, s0, s1);
        return;
    }
#endif
    (void)isa;
    fc_from_blocked_portable(xb, x, S, cc, s0, s1);
}

static void fc_to_blocked(int isa, const float *x, float *xb, long S, long cc, long s0, long s1) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) {
        fc_to_blocked_avx2(x, xb, S, cc, s0, s1);
        return;
    }
#endif
    (void)isa;
    fc_to_blocked_portable(x, xb, S, cc, s0, s1);
}

#endif
