/* dwconv_plane.h -- depthwise rows through zero-padded row copies (included by
 * dwconv_nchwc.h after the AVX2 tile helpers; same row-function contract).
 *
 * For 2D kernels 3x3 / 5x5, stride 1 or 2 (both axes), dilation 1 (and 3D
 * problems with kd == 1, pd == 0): the row function keeps a ring of K
 * zero-padded input rows on its stack (column c of a slot = input column
 * c - pw; the padding columns are written as zeros once per call), copies
 * each input row of its range once when it is first needed, and points the
 * kernel rows that fall into the top/bottom padding at a zero row.  Every
 * output pixel is then "interior": one tile loop per row over the whole
 * width (tiles of 16 pixels in the AVX-512VL build, 8 in the AVX2 build,
 * then one remainder tile), no border code, no per-row tap clamping, the
 * K*K weight vectors loaded once per call (kept in registers when they fit).
 * Each loaded input column feeds every (pixel, tap) of the tile that reads
 * it.  Costs: one load + store per input vector for the copy, and the FMAs
 * of padding rows at the top/bottom of the map (on zeros).
 *
 * Used when the ring (K + 1 rows of (ow-1)*s + K vectors) fits
 * FCDW_PLANE_FLOATS, and for stride 2 on planes up to 64x64; fcdw_tune_flags
 * bit 2 disables it (A/B switch).
 */
#ifndef FASTCNN_DWCONV_PLANE_H
#define FASTCNN_DWCONV_PLANE_H

#if FASTCNN_X86

#define FCDW_PLANE_FLOATS 8192 /* 32 KiB of stack per row-function call */

/* One output tile of NP pixels at padded column ox*S: K kernel rows rp[ky]. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_ptile_avx2(const float *const *rp, long col, const __m256 *wv,
                                                  __m256 *acc, const int NP, const int S,
                                                  const int K, const int NPMAX) {
    __m256 b[16];
    const int split = 2 * NP <= NPMAX;
    if (split)
        for (int p = 0; p < NP; p++) b[p] = _mm256_setzero_ps();
#pragma GCC unroll 5
    for (int ky = 0; ky < K; ky++) {
        const float *xp = rp[ky] + col * FCDW_B;
        __m256 *a = (split && (ky & 1)) ? b : acc;
#pragma GCC unroll 64
        for (int j = 0; j < (NP - 1) * S + K; j++) {
            __m256 xv = _mm256_loadu_ps(xp + j * FCDW_B);
#pragma GCC unroll 16
            for (int p = 0; p < NP; p++) {
                int kx = j - p * S;
                if (kx >= 0 && kx < K) a[p] = _mm256_fmadd_ps(xv, wv[ky * K + kx], a[p]);
            }
        }
    }
    if (split)
        for (int p = 0; p < NP; p++) acc[p] = _mm256_add_ps(acc[p], b[p]);
}

#define FCDW_PTILE_CASE(NPc)                                                                       \
    case NPc: {                                                                                    \
        __m256 a[NPc];                                                                             \
        for (int p = 0; p < NPc; p++) a[p] = bv;                                                   \
        fcdw_ptile_avx2(rp, ox * S, wv, a, NPc, S, K, NPMAX);                                      \
        fcdw_store_avx2(&e, a, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, NPc);        \
        ox += NPc;                                                                                 \
        break;                                                                                     \
    }

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_pcopy_avx2(float *dst, const float *src, long n) {
    long i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256 a = _mm256_loadu_ps(src + (i + 0) * FCDW_B);
        __m256 b = _mm256_loadu_ps(src + (i + 1) * FCDW_B);
        __m256 c = _mm256_loadu_ps(src + (i + 2) * FCDW_B);
        __m256 d = _mm256_loadu_ps(src + (i + 3) * FCDW_B);
        _mm256_store_ps(dst + (i + 0) * FCDW_B, a);
        _mm256_store_ps(dst + (i + 1) * FCDW_B, b);
        _mm256_store_ps(dst + (i + 2) * FCDW_B, c);
        _mm256_store_ps(dst + (i + 3) * FCDW_B, d);
    }
    for (; i < n; i++) _mm256_store_ps(dst + i * FCDW_B, _mm256_loadu_ps(src + i * FCDW_B));
}

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_pzero_avx2(float *dst, long n) {
    for (long i = 0; i < n; i++) _mm256_store_ps(dst + i * FCDW_B, _mm256_setzero_ps());
}

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_plane_avx2_impl(const float *x, const float *w, const float *bias,
                                                       const float *res, float *y,
                                                       const fcdw_geom_t *g, long oz, long oy,
                                                       long oy_end, const fastcnn_act_t *act,
                                                       long c0, int n_valid, const int S,
                                                       const int K, const int NPMAX) {
    float buf[FCDW_PLANE_FLOATS] __attribute__((aligned(64)));
    const long ow = g->ow, iw = g->iw, ih = g->ih, pw = g->pw;
    const long Wp = (ow - 1) * S + K;
    const long WpB = Wp * FCDW_B;
    float *zrow = buf;
    float *slots = buf + WpB;
    /* slot columns: [0, l) zeros, [l, r) input columns 0 .. r-l-1, [r, Wp) zeros */
    const long l = pw < Wp ? pw : Wp;
    long r = pw + iw;
    if (r > Wp) r = Wp;
    for (int s = 0; s < K; s++) {
        fcdw_pzero_avx2(slots + s * WpB, l);
        fcdw_pzero_avx2(slots + s * WpB + r * FCDW_B, Wp - r);
    }
    const float *xz = x + oz * g->sd * ih * iw * FCDW_B; /* kd == 1, pd == 0 */
    int zdone = 0;
    long next = oy * S - g->ph; /* input rows < next are already in their slots */
    fcdw_epi_avx2_t e;
    fcdw_epi_avx2_init(&e, act, c0, n_valid);
    const __m256 bv = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    __m256 wv[25];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; t++) wv[t] = _mm256_loadu_ps(w + t * FCDW_B);
    for (; oy < oy_end; oy++, y += ow * FCDW_B, res = res ? res + ow * FCDW_B : 0) {
        const long iy0 = oy * S - g->ph;
        const float *rp[5];
#pragma GCC unroll 5
        for (int ky = 0; ky < K; ky++) {
            const long iy = iy0 + ky;
            if (iy < 0 || iy >= ih) {
                if (!zdone) {
                    fcdw_pzero_avx2(zrow, Wp);
                    zdone = 1;
                }
                rp[ky] = zrow;
            } else {
                float *sl = slots + (iy % K) * WpB;
                if (iy >= next) {
                    fcdw_pcopy_avx2(sl + l * FCDW_B, xz + iy * iw * FCDW_B, r - l);
                    next = iy + 1;
                }
                rp[ky] = sl;
            }
        }
        long ox = 0;
        if (NPMAX >= 16)
            for (; ox + 16 <= ow;) {
                switch (16) { FCDW_PTILE_CASE(16) }
            }
        else
            for (; ox + 8 <= ow;) {
                switch (8) { FCDW_PTILE_CASE(8) }
            }
        if (NPMAX >= 16) {
            switch (ow - ox) {
                FCDW_PTILE_CASE(15)
                FCDW_PTILE_CASE(14)
                FCDW_PTILE_CASE(13)
                FCDW_PTILE_CASE(12)
                FCDW_PTILE_CASE(11)
                FCDW_PTILE_CASE(10)
                FCDW_PTILE_CASE(9)
                FCDW_PTILE_CASE(8)
                FCDW_PTILE_CASE(7)
                FCDW_PTILE_CASE(6)
                FCDW_PTILE_CASE(5)
                FCDW_PTILE_CASE(4)
                FCDW_PTILE_CASE(3)
                FCDW_PTILE_CASE(2)
                FCDW_PTILE_CASE(1)
            default: break;
            }
        } else {
            switch (ow - ox) {
                FCDW_PTILE_CASE(7)
                FCDW_PTILE_CASE(6)
                FCDW_PTILE_CASE(5)
                FCDW_PTILE_CASE(4)
                FCDW_PTILE_CASE(3)
                FCDW_PTILE_CASE(2)
                FCDW_PTILE_CASE(1)
            default: break;
            }
        }
    }
}

#define FCDW_PLANE_INST(NAME, S, K)                                                                 \
    FASTCNN_TARGET_AVX2 static void NAME(const float *x, const float *w, const float *bias,          \
                                         const float *res, float *y, const fcdw_geom_t *g, long oz,  \
                                         long oy, long oy_end, const fastcnn_act_t *act, long c0,    \
                                         int n_valid) {                                              \
        fcdw_plane_avx2_impl(x, w, bias, res, y, g, oz, oy, oy_end, act, c0, n_valid, S, K, 8);    \
    }                                                                                               \
    FASTCNN_TARGET_AVX512 static void NAME##_512(const float *x, const float *w, const float *bias,  \
                                         const float *res, float *y, const fcdw_geom_t *g, long oz,  \
                                         long oy, long oy_end, const fastcnn_act_t *act, long c0,    \
                                         int n_valid) {                                              \
        fcdw_plane_avx2_impl(x, w, bias, res, y, g, oz, oy, oy_end, act, c0, n_valid, S, K, 16);   \
    }
FCDW_PLANE_INST(fcdw_plane_s1k3, 1, 3)
FCDW_PLANE_INST(fcdw_plane_s2k3, 2, 3)
FCDW_PLANE_INST(fcdw_plane_s1k5, 1, 5)
FCDW_PLANE_INST(fcdw_plane_s2k5, 2, 5)

/* The padded-rows function for g, or 0 when it does not apply. */
static fcdw_row_fn fcdw_pick_plane(int isa, const fcdw_geom_t *g) {
    if (isa < FASTCNN_ISA_AVX2 || (fcdw_tune_flags & 4)) return 0;
    if (g->kd != 1 || g->pd != 0) return 0;
    if (g->kh != g->kw || (g->kw != 3 && g->kw != 5)) return 0;
    if (g->sh != g->sw || (g->sw != 1 && g->sw != 2)) return 0;
    if (g->dh != 1 || g->dw != 1) return 0;
    if (((g->ow - 1) * g->sw + g->kw) * (g->kw + 1) * FCDW_B > FCDW_PLANE_FLOATS) return 0;
    /* stride 2 on planes past L2 (MobileNetV2 96x112x112 s2: memory-bound, the copy's extra
     * stores made it ~4% slower); stride 2 on 56x56 was 12% faster */
    if (g->sw == 2 && g->ih * g->iw > 64 * 64) return 0;
    const int x5 = isa >= FASTCNN_ISA_AVX512;
    if (g->kw == 3) {
        if (g->sw == 1) return x5 ? fcdw_plane_s1k3_512 : fcdw_plane_s1k3;
        return x5 ? fcdw_plane_s2k3_512 : fcdw_plane_s2k3;
    }
    if (g->sw == 1) return x5 ? fcdw_plane_s1k5_512 : fcdw_plane_s1k5;
    return x5 ? fcdw_plane_s2k5_512 : fcdw_plane_s2k5;
}

#endif /* FASTCNN_X86 */
#endif
