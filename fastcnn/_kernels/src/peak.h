/* peak.h -- register-resident FMA throughput probe (for % of peak reports).
 * Each call runs `iters` iterations of 12 independent FMA chains on 8-float
 * vectors (2 FLOP per lane per FMA) and returns a value that depends on the
 * result so the work cannot be optimized away. */
#ifndef FASTCNN_PEAK_H
#define FASTCNN_PEAK_H
#include "cpu.h"

#define FC_PEAK_FLOPS_PER_ITER (12 * 8 * 2)

#if FASTCNN_X86
#define FC_PEAK_BODY                                                                  \
    __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_set1_ps(seed + 1), a2 = _mm256_set1_ps(seed + 2); \
    __m256 a3 = _mm256_set1_ps(seed + 3), a4 = _mm256_set1_ps(seed + 4), a5 = _mm256_set1_ps(seed + 5); \
    __m256 a6 = _mm256_set1_ps(seed + 6), a7 = _mm256_set1_ps(seed + 7), a8 = _mm256_set1_ps(seed + 8); \
    __m256 a9 = _mm256_set1_ps(seed + 9), a10 = _mm256_set1_ps(seed + 10), a11 = _mm256_set1_ps(seed + 11); \
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);          \
    long i;                                                                          \
    for (i = 0; i < iters; i++) {                                                    \
        a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c);              \
        a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);              \
        a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);              \
        a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);              \
        a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);              \
        a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);          \
        __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5)); \
        __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11)); \
    }                                                                                \
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),  \
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7))); \
    a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))); \
    {                                                                                \
        float out[8];                                                                \
        _mm256_storeu_ps(out, a0);                                                   \
        return out[0];                                                               \
    }

static FASTCNN_TARGET_AVX2 float fc_peak_avx2(long iters, float seed) { FC_PEAK_BODY }
static FASTCNN_TARGET_AVX512 float fc_peak_avx512(long iters, float seed) { FC_PEAK_BODY }
#undef FC_PEAK_BODY
#endif

static float fc_peak_portable(long iters, float seed) {
    float a[12][8];
    int j, l;
    long i;
    for (j = 0; j < 12; j++)
        for (l = 0; l < 8; l++) a[j][l] = seed + j;
    for (i = 0; i < iters; i++)
        for (j = 0; j < 12; j++)
            for (l = 0; l < 8; l++) a[j][l] = a[j][l] * 0.999999f + 1e-7f;
    for (j = 1; j < 12; j++)
        for (l = 0; l < 8; l++) a[0][l] += a[j][l];
    return a[0][0];
}

static float fc_peak_run(int isa, long iters, float seed) {
#if FASTCNN_X86
    if (isa == FASTCNN_ISA_AVX512) return fc_peak_avx512(iters, seed);
    if (isa == FASTCNN_ISA_AVX2) return fc_peak_avx2(iters, seed);
#endif
    return fc_peak_portable(iters, seed);
}

#endif
