/* dwconv_nchwc.h -- depthwise and few-channels-per-group convolution rows in
 * the channel-blocked NCHWc layout (block B = 8 floats, one channel per lane).
 *
 * Layout (shared with conv_nchwc):  x[N][CB][S][8], S = D*H*W flattened,
 * channels zero-padded up to CB*8.  1D/2D problems are 3D with size-1 dims.
 *
 * The Cython driver (dwconv_nchwc.pyx) walks (batch, channel block, output
 * depth, output rows) items on fastcnn's thread pool (parallel_for); each
 * output row is computed by a *row function* below:
 *
 *   - kernel rows (kz, ky) outside the input are skipped by clamping the tap
 *     range (no per-tap checks);
 *   - output columns whose whole kernel window lies inside the input
 *     ("interior") run a register tile of 8 (then 4, then 1) output pixels
 *     with no bounds checks: per tap one weight vector, 8 independent FMAs;
 *   - left/right border columns run a single-pixel loop over the clamped
 *     kx range.
 *
 * AVX2 row functions are instantiated per (stride_w in {1, 2, any}) x
 * (kernel_w in {3, 5, 7, any}) through always-inline helpers with constant
 * arguments; the portable row function is plain C and always correct.
 *
 * Grouped convolution ("terms"): output lane l of output block ob accumulates
 * over a short list of terms; each term names a source input block, a lane
 * map idx[8] (output lane l reads input lane idx[l] of that block) and a
 * weight vector per tap that is zero for lanes the term does not feed.  The
 * lane map is executed as a plain load (identity), a broadcast (all lanes
 * read the same input lane) or a vpermps (anything else).  Depthwise with
 * channel multiplier m > 1 is the grouped case with one input channel per
 * group.
 *
 * Epilogue: y = act(acc + bias[c] + residual); vector code for NONE, RELU,
 * CLIP, LEAKY_RELU, HARD_SIGMOID, HARD_SWISH, PRELU; other kinds store the
 * vector result then apply fastcnn_act_scalar per lane.  Lanes >= n_valid of
 * a block (channel padding) are written as 0.
 */
#ifndef FASTCNN_DWCONV_NCHWC_H
#define FASTCNN_DWCONV_NCHWC_H

#include "cpu.h"
#include "epilogue.h"
#include "transc.h"

#define FCDW_B 8

/* Developer A/B switch for benchmarks (0 = default kernels). */
static int fcdw_tune_flags = 0;

typedef struct {
    long n;                 /* batch */
    long cb_in, cb_out;     /* channel blocks of input / output */
    long id, ih, iw;        /* input spatial */
    long od, oh, ow;        /* output spatial */
    long kd, kh, kw;        /* kernel */
    long sd, sh, sw;        /* strides */
    long pd, ph, pw;        /* begin pads */
    long dd, dh, dw;        /* dilations */
} fcdw_geom_t;

/* Grouped-conv term tables for one output block (see header comment). */
typedef struct {
    long n_terms;           /* terms used by this output block */
    const int *src;         /* [n_terms] source input block */
    const int *mode;        /* [n_terms] 0 identity, 1 broadcast, 2 permute */
    const int *idx;         /* [n_terms][8] lane map */
} fcdw_terms_t;

#define FCDW_MODE_IDENT 0
#define FCDW_MODE_BCAST 1
#define FCDW_MODE_PERM 2

static inline int fcdw_act_is_vector(int kind) {
    return kind == FASTCNN_ACT_NONE || kind == FASTCNN_ACT_RELU || kind == FASTCNN_ACT_CLIP ||
           kind == FASTCNN_ACT_LEAKY_RELU || kind == FASTCNN_ACT_HARD_SIGMOID ||
           kind == FASTCNN_ACT_HARD_SWISH || kind == FASTCNN_ACT_PRELU;
}

/* Valid tap range [lo, hi) for output coordinate o: input o*s - p + k*d in [0, n). */
static inline void fcdw_krange(long o, long s, long p, long d, long k, long n, long *lo, long *hi) {
    long base = o * s - p;
    long l = 0, h = k;
    long lim = n - 1 - base;
    if (d == 1) {
        if (base < 0) l = -base;
        if (lim + 1 < h) h = lim < 0 ? 0 : lim + 1;
    } else {
        if (base < 0) l = (-base + d - 1) / d;
        if (lim < 0) h = 0;
        else { long t = lim / d + 1; if (t < h) h = t; }
    }
    if (l > h) l = h;
    *lo = l; *hi = h;
}

/* Interior output columns [lo, hi): whole kernel window inside the input. */
static inline void fcdw_interior(const fcdw_geom_t *g, long *lo, long *hi) {
    long l = (g->pw + g->sw - 1) / g->sw;
    long num = g->iw - 1 + g->pw - (g->kw - 1) * g->dw;
    long h = num < 0 ? 0 : num / g->sw + 1;
    if (h > g->ow) h = g->ow;
    if (l > g->ow) l = g->ow;
    if (h < l) h = l;
    *lo = l; *hi = h;
}

/* ------------------------------------------------------------------------ */
/* Portable scalar epilogue for one pixel (8 lanes).                         */
static inline void fcdw_epi_scalar(float *acc, const float *res, float *y, const fastcnn_act_t *act,
                                   long c0, int n_valid) {
    for (int l = 0; l < FCDW_B; l++) {
        float v = acc[l] + (res ? res[l] : 0.f);
        y[l] = l < n_valid ? fastcnn_act_scalar(act, v, c0 + l) : 0.f;
    }
}

/* Portable depthwise row.  x: (n, block) plane [S_in][8]; w: [K][8];
 * bias: [8] or NULL; res, y: output row [ow][8]. */
static void fcdw_row_portable(const float *x, const float *w, const float *bias, const float *res,
                              float *y, const fcdw_geom_t *g, long oz, long oy, long oy_end,
                              const fastcnn_act_t *act, long c0, int n_valid) {
    long kz0, kz1, ky0, ky1;
    fcdw_krange(oz, g->sd, g->pd, g->dd, g->kd, g->id, &kz0, &kz1);
    for (; oy < oy_end; oy++, y += g->ow * FCDW_B, res = res ? res + g->ow * FCDW_B : 0) {
    fcdw_krange(oy, g->sh, g->ph, g->dh, g->kh, g->ih, &ky0, &ky1);
    for (long ox = 0; ox < g->ow; ox++) {
        float acc[FCDW_B];
        for (int l = 0; l < FCDW_B; l++) acc[l] = bias ? bias[l] : 0.f;
        long kx0, kx1;
        fcdw_krange(ox, g->sw, g->pw, g->dw, g->kw, g->iw, &kx0, &kx1);
        for (long kz = kz0; kz < kz1; kz++) {
            long iz = oz * g->sd - g->pd + kz * g->dd;
            for (long ky = ky0; ky < ky1; ky++) {
                long iy = oy * g->sh - g->ph + ky * g->dh;
                const float *xr = x + (iz * g->ih + iy) * g->iw * FCDW_B;
                const float *wr = w + ((kz * g->kh + ky) * g->kw) * FCDW_B;
                for (long kx = kx0; kx < kx1; kx++) {
                    long ix = ox * g->sw - g->pw + kx * g->dw;
                    const float *xp = xr + ix * FCDW_B;
                    const float *wp = wr + kx * FCDW_B;
                    for (int l = 0; l < FCDW_B; l++) acc[l] += xp[l] * wp[l];
                }
            }
        }
        fcdw_epi_scalar(acc, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, n_valid);
    }
    }
}

/* Portable grouped row.  xn: batch base [CB_in][S_in][8]; w: [T][K][8]. */
static void fcdw_grow_portable(const float *xn, const float *w, const fcdw_terms_t *tm,
                               const float *bias, const float *res, float *y,
                               const fcdw_geom_t *g, long oz, long oy, long oy_end,
                               const fastcnn_act_t *act, long c0, int n_valid) {
    long kz0, kz1, ky0, ky1;
    long K = g->kd * g->kh * g->kw;
    long s_in = g->id * g->ih * g->iw;
    fcdw_krange(oz, g->sd, g->pd, g->dd, g->kd, g->id, &kz0, &kz1);
    for (; oy < oy_end; oy++, y += g->ow * FCDW_B, res = res ? res + g->ow * FCDW_B : 0) {
    fcdw_krange(oy, g->sh, g->ph, g->dh, g->kh, g->ih, &ky0, &ky1);
    for (long ox = 0; ox < g->ow; ox++) {
        float acc[FCDW_B];
        for (int l = 0; l < FCDW_B; l++) acc[l] = bias ? bias[l] : 0.f;
        long kx0, kx1;
        fcdw_krange(ox, g->sw, g->pw, g->dw, g->kw, g->iw, &kx0, &kx1);
        for (long t = 0; t < tm->n_terms; t++) {
            const float *x = xn + (long)tm->src[t] * s_in * FCDW_B;
            const int *idx = tm->idx + t * FCDW_B;
            const float *wt = w + t * K * FCDW_B;
            for (long kz = kz0; kz < kz1; kz++) {
                long iz = oz * g->sd - g->pd + kz * g->dd;
                for (long ky = ky0; ky < ky1; ky++) {
                    long iy = oy * g->sh - g->ph + ky * g->dh;
                    const float *xr = x + (iz * g->ih + iy) * g->iw * FCDW_B;
                    const float *wr = wt + ((kz * g->kh + ky) * g->kw) * FCDW_B;
                    for (long kx = kx0; kx < kx1; kx++) {
                        long ix = ox * g->sw - g->pw + kx * g->dw;
                        const float *xp = xr + ix * FCDW_B;
                        const float *wp = wr + kx * FCDW_B;
                        for (int l = 0; l < FCDW_B; l++) acc[l] += xp[idx[l]] * wp[l];
                    }
                }
            }
        }
        fcdw_epi_scalar(acc, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, n_valid);
    }
    }
}

/* ------------------------------------------------------------------------ */
#if FASTCNN_X86
#define FCDW_AI static inline __attribute__((always_inline))

/* Edge tiles read this instead of input columns that lie in the padding. */
static const float fcdw_zero8[FCDW_B] __attribute__((aligned(32))) = {0.f, 0.f, 0.f, 0.f,
                                                                       0.f, 0.f, 0.f, 0.f};

typedef struct {
    int kind, vec, masked;
    __m256 p0, p1, slope, mask, zero;
} fcdw_epi_avx2_t;

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_epi_avx2_init(fcdw_epi_avx2_t *e, const fastcnn_act_t *act,
                                                     long c0, int n_valid) {
    e->kind = act->kind;
    e->vec = fcdw_act_is_vector(act->kind);
    e->p0 = _mm256_set1_ps(act->p0);
    e->p1 = _mm256_set1_ps(act->p1);
    e->zero = _mm256_setzero_ps();
    e->slope = (act->kind == FASTCNN_ACT_PRELU && act->slope) ? _mm256_loadu_ps(act->slope + c0)
                                                              : e->zero;
    e->masked = n_valid < FCDW_B;
    int m[FCDW_B];
    for (int l = 0; l < FCDW_B; l++) m[l] = l < n_valid ? -1 : 0;
    e->mask = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)m));
}

/* Store NP pixels of accumulators with the fused epilogue; the activation
 * switch runs once per tile, not per pixel. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_store_avx2(const fcdw_epi_avx2_t *e, __m256 *acc,
                                                  const float *res, float *y, const fastcnn_act_t *act,
                                                  long c0, const int NP) {
    if (res) {
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) acc[p] = _mm256_add_ps(acc[p], _mm256_loadu_ps(res + p * FCDW_B));
    }
    if (!e->vec) {
        /* transcendental kinds: store, then the branch-free vector loop of transc.h over
         * the tile's NP*8 floats (inlined here, so vectorized at this ISA's width) */
        const int mk = _mm256_movemask_ps(e->mask);
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) _mm256_storeu_ps(y + p * FCDW_B, acc[p]);
        if (!fc_transc_body(y, y, (long)NP * FCDW_B, act->kind, act->p0, act->p1))
            for (int p = 0; p < NP; p++)
                for (int l = 0; l < FCDW_B; l++)
                    y[p * FCDW_B + l] = fastcnn_act_scalar(act, y[p * FCDW_B + l], c0 + l);
        if (e->masked)
            for (int p = 0; p < NP; p++)
                for (int l = 0; l < FCDW_B; l++)
                    if (!(mk >> l & 1)) y[p * FCDW_B + l] = 0.f;
        return;
    }
    const __m256 z = e->zero;
    switch (e->kind) {
    case FASTCNN_ACT_RELU:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) acc[p] = _mm256_max_ps(acc[p], z);
        break;
    case FASTCNN_ACT_CLIP:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) acc[p] = _mm256_min_ps(_mm256_max_ps(acc[p], e->p0), e->p1);
        break;
    case FASTCNN_ACT_LEAKY_RELU:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++)
            acc[p] = _mm256_blendv_ps(_mm256_mul_ps(acc[p], e->p0), acc[p],
                                      _mm256_cmp_ps(acc[p], z, _CMP_GE_OQ));
        break;
    case FASTCNN_ACT_HARD_SIGMOID:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++)
            acc[p] = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(acc[p], e->p0, e->p1), z),
                                   _mm256_set1_ps(1.f));
        break;
    case FASTCNN_ACT_HARD_SWISH:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) {
            __m256 t = _mm256_fmadd_ps(acc[p], _mm256_set1_ps(1.f / 6.f), _mm256_set1_ps(0.5f));
            t = _mm256_min_ps(_mm256_max_ps(t, z), _mm256_set1_ps(1.f));
            acc[p] = _mm256_mul_ps(acc[p], t);
        }
        break;
    case FASTCNN_ACT_PRELU:
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++)
            acc[p] = _mm256_blendv_ps(_mm256_mul_ps(acc[p], e->slope), acc[p],
                                      _mm256_cmp_ps(acc[p], z, _CMP_GE_OQ));
        break;
    default:
        break;
    }
    if (e->masked) {
#pragma GCC unroll 16
        for (int p = 0; p < NP; p++) acc[p] = _mm256_and_ps(acc[p], e->mask);
    }
#pragma GCC unroll 16
    for (int p = 0; p < NP; p++) _mm256_storeu_ps(y + p * FCDW_B, acc[p]);
}

/* ---- interior tiles: the whole kernel window of every pixel is inside ---- */

/* One kernel row of an interior tile: NP pixels, taps kx = 0..kw-1.
 * REUSE (dilation_w == 1, constant SW and KW): every input column of the
 * window is loaded once and feeds all (pixel, kx) pairs that read it --
 * (NP-1)*SW + KW loads instead of NP*KW. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_trow_avx2(const float *xp, const float *wr, long kw, long sw,
                                                 long dwB, __m256 *acc, const int NP, const int SWc,
                                                 const int KWc, const int REUSE) {
    if (REUSE) {
        __m256 wv[8];
#pragma GCC unroll 8
        for (int kx = 0; kx < KWc; kx++) wv[kx] = _mm256_loadu_ps(wr + kx * FCDW_B);
#pragma GCC unroll 64
        for (int j = 0; j < (NP - 1) * SWc + KWc; j++) {
            __m256 xv = _mm256_loadu_ps(xp + j * FCDW_B);
#pragma GCC unroll 16
            for (int p = 0; p < NP; p++) {
                int kx = j - p * SWc;
                if (kx >= 0 && kx < KWc) acc[p] = _mm256_fmadd_ps(xv, wv[kx], acc[p]);
            }
        }
    } else {
#pragma GCC unroll 7
        for (long kx = 0; kx < kw; kx++) {
            __m256 wv = _mm256_loadu_ps(wr + kx * FCDW_B);
#pragma GCC unroll 16
            for (int p = 0; p < NP; p++)
                acc[p] = _mm256_fmadd_ps(_mm256_loadu_ps(xp + p * sw * FCDW_B), wv, acc[p]);
            xp += dwB;
        }
    }
}

/* Interior tile: NP output pixels starting at input column ix0 (no checks).
 * 2*NP <= NPMAX splits odd kernel rows into a second accumulator set so the FMA
 * dependency chains stay short. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_tile_avx2(const float *x, const float *w, const fcdw_geom_t *g,
                                                 long iz0, long iy0, long kz0, long kz1, long ky0,
                                                 long ky1, long ix0, __m256 *acc, const int NP,
                                                 const int SWc, const int KWc, const int REUSE,
                                                 const int NPMAX) {
    const long sw = SWc ? SWc : g->sw;
    const long kw = KWc ? KWc : g->kw;
    const long dwB = g->dw * FCDW_B;
    const long rowB = g->iw * FCDW_B * g->dh;
    __m256 b[16];
    if (2 * NP <= NPMAX)
        for (int p = 0; p < NP; p++) b[p] = _mm256_setzero_ps();
    for (long kz = kz0; kz < kz1; kz++) {
        long iz = iz0 + kz * g->dd;
        const float *xp = x + ((iz * g->ih + iy0 + ky0 * g->dh) * g->iw + ix0) * FCDW_B;
        const float *wr = w + ((kz * g->kh + ky0) * kw) * FCDW_B;
        long ky = ky0;
        if (2 * NP <= NPMAX) {
            for (; ky + 1 < ky1; ky += 2) {
                fcdw_trow_avx2(xp, wr, kw, sw, dwB, acc, NP, SWc, KWc, REUSE);
                fcdw_trow_avx2(xp + rowB, wr + kw * FCDW_B, kw, sw, dwB, b, NP, SWc, KWc, REUSE);
                xp += 2 * rowB;
                wr += 2 * kw * FCDW_B;
            }
        }
        for (; ky < ky1; ky++) {
            fcdw_trow_avx2(xp, wr, kw, sw, dwB, acc, NP, SWc, KWc, REUSE);
            xp += rowB;
            wr += kw * FCDW_B;
        }
    }
    if (2 * NP <= NPMAX)
        for (int p = 0; p < NP; p++) acc[p] = _mm256_add_ps(acc[p], b[p]);
}

/* ---- edge tiles: some taps of some pixels fall into the left/right padding ----
 * Same register tile, but each (pixel, tap) load address is selected
 * branch-free between the input column and fcdw_zero8. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_erow_avx2(const float *xr, const float *wr, long ixb, long sw,
                                                 long dw, long iw, long kw, __m256 *acc,
                                                 const int NP) {
#pragma GCC unroll 7
    for (long kx = 0; kx < kw; kx++) {
        __m256 wv = _mm256_loadu_ps(wr + kx * FCDW_B);
        long ix = ixb + kx * dw;
#pragma GCC unroll 8
        for (int p = 0; p < NP; p++) {
            long i = ix + p * sw;
            const float *q = (unsigned long)i < (unsigned long)iw ? xr + i * FCDW_B : fcdw_zero8;
            acc[p] = _mm256_fmadd_ps(_mm256_loadu_ps(q), wv, acc[p]);
        }
    }
}

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_etile_avx2(const float *x, const float *w, const fcdw_geom_t *g,
                                                  long iz0, long iy0, long kz0, long kz1, long ky0,
                                                  long ky1, long ox, __m256 *acc, const int NP,
                                                  const int SWc, const int KWc) {
    const long sw = SWc ? SWc : g->sw;
    const long kw = KWc ? KWc : g->kw;
    const long ixb = ox * sw - g->pw;
    const long rowB = g->iw * FCDW_B * g->dh;
    __m256 b[8];
    for (int p = 0; p < NP; p++) b[p] = _mm256_setzero_ps();
    for (long kz = kz0; kz < kz1; kz++) {
        long iz = iz0 + kz * g->dd;
        const float *xr = x + (iz * g->ih + iy0 + ky0 * g->dh) * g->iw * FCDW_B;
        const float *wr = w + ((kz * g->kh + ky0) * kw) * FCDW_B;
        long ky = ky0;
        for (; ky + 1 < ky1; ky += 2) {
            fcdw_erow_avx2(xr, wr, ixb, sw, g->dw, g->iw, kw, acc, NP);
            fcdw_erow_avx2(xr + rowB, wr + kw * FCDW_B, ixb, sw, g->dw, g->iw, kw, b, NP);
            xr += 2 * rowB;
            wr += 2 * kw * FCDW_B;
        }
        if (ky < ky1) fcdw_erow_avx2(xr, wr, ixb, sw, g->dw, g->iw, kw, acc, NP);
    }
    for (int p = 0; p < NP; p++) acc[p] = _mm256_add_ps(acc[p], b[p]);
}

#define FCDW_TILE_CASE(NPc)                                                                        \
    case NPc: {                                                                                    \
        __m256 a[NPc];                                                                             \
        for (int p = 0; p < NPc; p++) a[p] = bv;                                                   \
        fcdw_tile_avx2(x, w, g, iz0, iy0, kz0, kz1, ky0, ky1, ox * sw - g->pw, a, NPc, SWc, KWc,   \
                       SWc && KWc, NPMAX);                                                         \
        fcdw_store_avx2(&e, a, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, NPc);        \
        ox += NPc;                                                                                 \
        break;                                                                                     \
    }

#define FCDW_ETILE_CASE(NPc)                                                                       \
    case NPc: {                                                                                    \
        __m256 a[NPc];                                                                             \
        for (int p = 0; p < NPc; p++) a[p] = bv;                                                   \
        fcdw_etile_avx2(x, w, g, iz0, iy0, kz0, kz1, ky0, ky1, ox, a, NPc, SWc, 0);                \
        fcdw_store_avx2(&e, a, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, NPc);        \
        ox += NPc;                                                                                 \
        break;                                                                                     \
    }

/* Output columns [ox, end) as edge tiles of up to 8 pixels. */
#define FCDW_EDGE_RUN(end)                                                                         \
    while (ox < (end)) {                                                                           \
        long r_ = (end) - ox;                                                                      \
        switch (r_ >= 8 ? 8 : r_) {                                                                \
            FCDW_ETILE_CASE(8)                                                                     \
            FCDW_ETILE_CASE(7)                                                                     \
            FCDW_ETILE_CASE(6)                                                                     \
            FCDW_ETILE_CASE(5)                                                                     \
            FCDW_ETILE_CASE(4)                                                                     \
            FCDW_ETILE_CASE(3)                                                                     \
            FCDW_ETILE_CASE(2)                                                                     \
            FCDW_ETILE_CASE(1)                                                                     \
        default: ox = (end);                                                                       \
        }                                                                                          \
    }

/* Output rows [oy, oy_end) of one (batch, channel block, output depth) plane:
 * left edge tiles, interior tiles (16 with AVX-512VL's 32 registers, then 8,
 * then one remainder tile), right edge tiles.  Rows whose interior is shorter
 * than 4 pixels run as edge tiles only. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_row_avx2_impl(const float *x, const float *w, const float *bias,
                                                     const float *res, float *y, const fcdw_geom_t *g,
                                                     long oz, long oy, long oy_end, const fastcnn_act_t *act,
                                                     long c0, int n_valid, const int SWc,
                                                     const int KWc, const int NPMAX) {
    long kz0, kz1, ky0, ky1, lo, hi;
    fcdw_krange(oz, g->sd, g->pd, g->dd, g->kd, g->id, &kz0, &kz1);
    fcdw_interior(g, &lo, &hi);
    if (hi - lo < 4) lo = hi = g->ow;
    const long iz0 = oz * g->sd - g->pd;
    const long sw = SWc ? SWc : g->sw;
    fcdw_epi_avx2_t e;
    fcdw_epi_avx2_init(&e, act, c0, n_valid);
    const __m256 bv = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    for (; oy < oy_end; oy++, y += g->ow * FCDW_B, res = res ? res + g->ow * FCDW_B : 0) {
        fcdw_krange(oy, g->sh, g->ph, g->dh, g->kh, g->ih, &ky0, &ky1);
        const long iy0 = oy * g->sh - g->ph;
        long ox = 0;
        FCDW_EDGE_RUN(lo)
        if (NPMAX >= 16 && !(fcdw_tune_flags & 2))
            for (; ox + 16 <= hi;) {
                switch (16) { FCDW_TILE_CASE(16) }
            }
        while (ox < hi) {
            long r = hi - ox;
            switch (r >= 8 ? 8 : r) {
                FCDW_TILE_CASE(8)
                FCDW_TILE_CASE(7)
                FCDW_TILE_CASE(6)
                FCDW_TILE_CASE(5)
                FCDW_TILE_CASE(4)
                FCDW_TILE_CASE(3)
                FCDW_TILE_CASE(2)
                FCDW_TILE_CASE(1)
            default: ox = hi;
            }
        }
        FCDW_EDGE_RUN(g->ow)
    }
}

#define FCDW_ROW_INST(NAME, SWc, KWc)                                                               \
    FASTCNN_TARGET_AVX2 static void NAME(const float *x, const float *w, const float *bias,          \
                                         const float *res, float *y, const fcdw_geom_t *g, long oz,  \
                                         long oy, long oy_end, const fastcnn_act_t *act, long c0,    \
                                         int n_valid) {                                              \
        fcdw_row_avx2_impl(x, w, bias, res, y, g, oz, oy, oy_end, act, c0, n_valid, SWc, KWc, 8);  \
    }                                                                                               \
    FASTCNN_TARGET_AVX512 static void NAME##_512(const float *x, const float *w, const float *bias,  \
                                         const float *res, float *y, const fcdw_geom_t *g, long oz,  \
                                         long oy, long oy_end, const fastcnn_act_t *act, long c0,    \
                                         int n_valid) {                                              \
        fcdw_row_avx2_impl(x, w, bias, res, y, g, oz, oy, oy_end, act, c0, n_valid, SWc, KWc, 16); \
    }
FCDW_ROW_INST(fcdw_row_avx2_s1k3, 1, 3)
FCDW_ROW_INST(fcdw_row_avx2_s1k5, 1, 5)
FCDW_ROW_INST(fcdw_row_avx2_s1k7, 1, 7)
FCDW_ROW_INST(fcdw_row_avx2_s1kx, 1, 0)
FCDW_ROW_INST(fcdw_row_avx2_s2k3, 2, 3)
FCDW_ROW_INST(fcdw_row_avx2_s2k5, 2, 5)
FCDW_ROW_INST(fcdw_row_avx2_s2k7, 2, 7)
FCDW_ROW_INST(fcdw_row_avx2_s2kx, 2, 0)
FCDW_ROW_INST(fcdw_row_avx2_sxkx, 0, 0)
FCDW_ROW_INST(fcdw_row_avx2_s1k1, 1, 1)

/* ---- grouped (terms) ---------------------------------------------------- */
FASTCNN_TARGET_AVX2 FCDW_AI __m256 fcdw_gload(const float *p, const int MODE, int lane, __m256i idx) {
    if (MODE == FCDW_MODE_IDENT) return _mm256_loadu_ps(p);
    if (MODE == FCDW_MODE_BCAST) return _mm256_broadcast_ss(p + lane);
    return _mm256_permutevar8x32_ps(_mm256_loadu_ps(p), idx);
}

/* One kernel row of one term for NP interior pixels; REUSE as fcdw_trow_avx2
 * (each input column is loaded -- and permuted -- once). */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_gtrow_avx2(const float *xp, const float *wr, long kw, long sw,
                                                  long dwB, __m256 *acc, int lane, __m256i idx,
                                                  const int NP, const int SWc, const int KWc,
                                                  const int REUSE, const int MODE) {
    if (REUSE) {
        __m256 wv[8];
#pragma GCC unroll 8
        for (int kx = 0; kx < KWc; kx++) wv[kx] = _mm256_loadu_ps(wr + kx * FCDW_B);
#pragma GCC unroll 64
        for (int j = 0; j < (NP - 1) * SWc + KWc; j++) {
            __m256 xv = fcdw_gload(xp + j * FCDW_B, MODE, lane, idx);
#pragma GCC unroll 16
            for (int p = 0; p < NP; p++) {
                int kx = j - p * SWc;
                if (kx >= 0 && kx < KWc) acc[p] = _mm256_fmadd_ps(xv, wv[kx], acc[p]);
            }
        }
    } else {
#pragma GCC unroll 7
        for (long kx = 0; kx < kw; kx++) {
            __m256 wv = _mm256_loadu_ps(wr + kx * FCDW_B);
#pragma GCC unroll 16
            for (int p = 0; p < NP; p++)
                acc[p] = _mm256_fmadd_ps(fcdw_gload(xp + p * sw * FCDW_B, MODE, lane, idx), wv,
                                         acc[p]);
            xp += dwB;
        }
    }
}

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_gtile_avx2(const float *x, const float *w, const fcdw_geom_t *g,
                                                  long iz0, long iy0, long kz0, long kz1, long ky0,
                                                  long ky1, long ix0, __m256 *acc, int lane,
                                                  __m256i idx, const int NP, const int SWc,
                                                  const int KWc, const int REUSE, const int MODE) {
    const long sw = SWc ? SWc : g->sw;
    const long kw = KWc ? KWc : g->kw;
    const long dwB = g->dw * FCDW_B;
    const long rowB = g->iw * FCDW_B * g->dh;
    for (long kz = kz0; kz < kz1; kz++) {
        long iz = iz0 + kz * g->dd;
        const float *xp = x + ((iz * g->ih + iy0 + ky0 * g->dh) * g->iw + ix0) * FCDW_B;
        const float *wr = w + ((kz * g->kh + ky0) * kw) * FCDW_B;
        for (long ky = ky0; ky < ky1; ky++) {
            fcdw_gtrow_avx2(xp, wr, kw, sw, dwB, acc, lane, idx, NP, SWc, KWc, REUSE, MODE);
            xp += rowB;
            wr += kw * FCDW_B;
        }
    }
}

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_gtile_terms(const float *xn, const float *w, const fcdw_terms_t *tm,
                                                   const fcdw_geom_t *g, long iz0, long iy0, long kz0,
                                                   long kz1, long ky0, long ky1, long ix0, __m256 *acc,
                                                   const int NP, const int SWc, const int KWc,
                                                   const int REUSE) {
    const long K = g->kd * g->kh * g->kw;
    const long s_in = g->id * g->ih * g->iw;
    for (long t = 0; t < tm->n_terms; t++) {
        const float *x = xn + (long)tm->src[t] * s_in * FCDW_B;
        const float *wt = w + t * K * FCDW_B;
        const int *ip = tm->idx + t * FCDW_B;
        __m256i idx = _mm256_loadu_si256((const __m256i *)ip);
        switch (tm->mode[t]) {
        case FCDW_MODE_IDENT:
            fcdw_gtile_avx2(x, wt, g, iz0, iy0, kz0, kz1, ky0, ky1, ix0, acc, 0, idx, NP, SWc,
                            KWc, REUSE, FCDW_MODE_IDENT);
            break;
        case FCDW_MODE_BCAST:
            fcdw_gtile_avx2(x, wt, g, iz0, iy0, kz0, kz1, ky0, ky1, ix0, acc, ip[0], idx, NP, SWc,
                            KWc, REUSE, FCDW_MODE_BCAST);
            break;
        default:
            fcdw_gtile_avx2(x, wt, g, iz0, iy0, kz0, kz1, ky0, ky1, ix0, acc, 0, idx, NP, SWc,
                            KWc, REUSE, FCDW_MODE_PERM);
        }
    }
}

/* Edge tile of the grouped kernel: every term through the lane permutation
 * (exact for all three modes), padding columns read fcdw_zero8. */
FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_getile_terms(const float *xn, const float *w,
                                                    const fcdw_terms_t *tm, const fcdw_geom_t *g,
                                                    long iz0, long iy0, long kz0, long kz1,
                                                    long ky0, long ky1, long ox, __m256 *acc,
                                                    const int NP, const int SWc, const int KWc) {
    const long sw = SWc ? SWc : g->sw;
    const long kw = KWc ? KWc : g->kw;
    const long ixb = ox * sw - g->pw;
    const long K = g->kd * g->kh * g->kw;
    const long s_in = g->id * g->ih * g->iw;
    const long iw = g->iw, dw = g->dw;
    for (long t = 0; t < tm->n_terms; t++) {
        const float *x = xn + (long)tm->src[t] * s_in * FCDW_B;
        const float *wt = w + t * K * FCDW_B;
        __m256i idx = _mm256_loadu_si256((const __m256i *)(tm->idx + t * FCDW_B));
        for (long kz = kz0; kz < kz1; kz++) {
            long iz = iz0 + kz * g->dd;
            for (long ky = ky0; ky < ky1; ky++) {
                long iy = iy0 + ky * g->dh;
                const float *xr = x + (iz * g->ih + iy) * iw * FCDW_B;
                const float *wr = wt + ((kz * g->kh + ky) * kw) * FCDW_B;
#pragma GCC unroll 7
                for (long kx = 0; kx < kw; kx++) {
                    __m256 wv = _mm256_loadu_ps(wr + kx * FCDW_B);
                    long ix = ixb + kx * dw;
#pragma GCC unroll 8
                    for (int p = 0; p < NP; p++) {
                        long i = ix + p * sw;
                        const float *q =
                            (unsigned long)i < (unsigned long)iw ? xr + i * FCDW_B : fcdw_zero8;
                        acc[p] = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(q), idx),
                                                 wv, acc[p]);
                    }
                }
            }
        }
    }
}

#define FCDW_GTILE_CASE(NPc)                                                                       \
    case NPc: {                                                                                    \
        __m256 a[NPc];                                                                             \
        for (int p = 0; p < NPc; p++) a[p] = bv;                                                   \
        fcdw_gtile_terms(xn, w, tm, g, iz0, iy0, kz0, kz1, ky0, ky1, ox * sw - g->pw, a, NPc, SWc, \
                         KWc, SWc && KWc);                                                         \
        fcdw_store_avx2(&e, a, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, NPc);        \
        ox += NPc;                                                                                 \
        break;                                                                                     \
    }

#define FCDW_GETILE_CASE(NPc)                                                                      \
    case NPc: {                                                                                    \
        __m256 a[NPc];                                                                             \
        for (int p = 0; p < NPc; p++) a[p] = bv;                                                   \
        fcdw_getile_terms(xn, w, tm, g, iz0, iy0, kz0, kz1, ky0, ky1, ox, a, NPc, SWc, 0);         \
        fcdw_store_avx2(&e, a, res ? res + ox * FCDW_B : 0, y + ox * FCDW_B, act, c0, NPc);        \
        ox += NPc;                                                                                 \
        break;                                                                                     \
    }

#define FCDW_GEDGE_RUN(end)                                                                        \
    while (ox < (end)) {                                                                           \
        long r_ = (end) - ox;                                                                      \
        switch (r_ >= 8 ? 8 : r_) {                                                                \
            FCDW_GETILE_CASE(8)                                                                    \
            FCDW_GETILE_CASE(7)                                                                    \
            FCDW_GETILE_CASE(6)                                                                    \
            FCDW_GETILE_CASE(5)                                                                    \
            FCDW_GETILE_CASE(4)                                                                    \
            FCDW_GETILE_CASE(3)                                                                    \
            FCDW_GETILE_CASE(2)                                                                    \
            FCDW_GETILE_CASE(1)                                                                    \
        default: ox = (end);                                                                       \
        }                                                                                          \
    }

FASTCNN_TARGET_AVX2 FCDW_AI void fcdw_grow_avx2_impl(const float *xn, const float *w,
                                                      const fcdw_terms_t *tm, const float *bias,
                                                      const float *res, float *y, const fcdw_geom_t *g,
                                                      long oz, long oy, long oy_end, const fastcnn_act_t *act,
                                                      long c0, int n_valid, const int SWc, const int KWc) {
    long kz0, kz1, ky0, ky1, lo, hi;
    fcdw_krange(oz, g->sd, g->pd, g->dd, g->kd, g->id, &kz0, &kz1);
    fcdw_interior(g, &lo, &hi);
    if (hi - lo < 4) lo = hi = g->ow;
    const long iz0 = oz * g->sd - g->pd;
    const long sw = SWc ? SWc : g->sw;
    fcdw_epi_avx2_t e;
    fcdw_epi_avx2_init(&e, act, c0, n_valid);
    const __m256 bv = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    for (; oy < oy_end; oy++, y += g->ow * FCDW_B, res = res ? res + g->ow * FCDW_B : 0) {
        fcdw_krange(oy, g->sh, g->ph, g->dh, g->kh, g->ih, &ky0, &ky1);
        const long iy0 = oy * g->sh - g->ph;
        long ox = 0;
        FCDW_GEDGE_RUN(lo)
        while (ox < hi) {
            long r = hi - ox;
            switch (r >= 8 ? 8 : r) {
                FCDW_GTILE_CASE(8)
                FCDW_GTILE_CASE(7)
                FCDW_GTILE_CASE(6)
                FCDW_GTILE_CASE(5)
                FCDW_GTILE_CASE(4)
                FCDW_GTILE_CASE(3)
                FCDW_GTILE_CASE(2)
                FCDW_GTILE_CASE(1)
            default: ox = hi;
            }
        }
        FCDW_GEDGE_RUN(g->ow)
    }
}

#define FCDW_GROW_INST(NAME, SWc, KWc)                                                              \
    FASTCNN_TARGET_AVX2 static void NAME(const float *xn, const float *w, const fcdw_terms_t *tm,    \
                                         const float *bias, const float *res, float *y,              \
                                         const fcdw_geom_t *g, long oz, long oy, long oy_end,        \
                                         const fastcnn_act_t *act, long c0, int n_valid) {           \
        fcdw_grow_avx2_impl(xn, w, tm, bias, res, y, g, oz, oy, oy_end, act, c0, n_valid, SWc, KWc); \
    }
FCDW_GROW_INST(fcdw_grow_avx2_s1k3, 1, 3)
FCDW_GROW_INST(fcdw_grow_avx2_s2k3, 2, 3)
FCDW_GROW_INST(fcdw_grow_avx2_s1kx, 1, 0)
FCDW_GROW_INST(fcdw_grow_avx2_s2kx, 2, 0)
FCDW_GROW_INST(fcdw_grow_avx2_sxkx, 0, 0)
#endif /* FASTCNN_X86 */

/* ------------------------------------------------------------------------ */
typedef void (*fcdw_row_fn)(const float *, const float *, const float *, const float *, float *,
                            const fcdw_geom_t *, long, long, long, const fastcnn_act_t *, long, int);
typedef void (*fcdw_grow_fn)(const float *, const float *, const fcdw_terms_t *, const float *,
                             const float *, float *, const fcdw_geom_t *, long, long, long,
                             const fastcnn_act_t *, long, int);

#include "dwconv_plane.h"

/* Pick the row function once per call.  isa: FASTCNN_ISA_* actually usable.
 * Constant (stride_w, kernel_w) variants load each input column once per
 * kernel row (register reuse); they need dilation_w == 1.  Dilated and other
 * widths take the runtime-kw variants.  fcdw_tune_flags bit 0 forces those
 * (A/B switch for benchmarks). */
static fcdw_row_fn fcdw_pick_row(int isa, const fcdw_geom_t *g) {
#if FASTCNN_X86
#define FCDW_PICK(NAME) return isa >= FASTCNN_ISA_AVX512 ? NAME##_512 : NAME
    if (isa >= FASTCNN_ISA_AVX2) {
        fcdw_row_fn pf = fcdw_pick_plane(isa, g);
        if (pf) return pf;
        const long kw = (g->dw == 1 && !(fcdw_tune_flags & 1)) ? g->kw : 0;
        if (g->sw == 1) {
            switch (kw) {
            case 1: FCDW_PICK(fcdw_row_avx2_s1k1);
            case 3: FCDW_PICK(fcdw_row_avx2_s1k3);
            case 5: FCDW_PICK(fcdw_row_avx2_s1k5);
            case 7: FCDW_PICK(fcdw_row_avx2_s1k7);
            default: FCDW_PICK(fcdw_row_avx2_s1kx);
            }
        }
        if (g->sw == 2) {
            switch (kw) {
            case 3: FCDW_PICK(fcdw_row_avx2_s2k3);
            case 5: FCDW_PICK(fcdw_row_avx2_s2k5);
            case 7: FCDW_PICK(fcdw_row_avx2_s2k7);
            default: FCDW_PICK(fcdw_row_avx2_s2kx);
            }
        }
        FCDW_PICK(fcdw_row_avx2_sxkx);
    }
#undef FCDW_PICK
#endif
    (void)g;
    return fcdw_row_portable;
}

static fcdw_grow_fn fcdw_pick_grow(int isa, const fcdw_geom_t *g) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) {
        const int k3 = g->kw == 3 && g->dw == 1 && !(fcdw_tune_flags & 1);
        if (g->sw == 1) return k3 ? fcdw_grow_avx2_s1k3 : fcdw_grow_avx2_s1kx;
        if (g->sw == 2) return k3 ? fcdw_grow_avx2_s2k3 : fcdw_grow_avx2_s2kx;
        return fcdw_grow_avx2_sxkx;
    }
#endif
    (void)g;
    return fcdw_grow_portable;
}

#endif
