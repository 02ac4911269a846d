/* pool_simd.h -- max / average / Lp pooling rows, float32, in the channel-blocked
 * NCHWc layout (block B = 8 floats, one channel per lane; pool_nchwc_tile.h) and
 * in plain NCHW (vectors along the output row; pool_plain_tile.h).
 *
 * NCHWc:
 * Layout:  x[N][CB][D][H][W][8], y[N][CB][OD][OH][OW][8]; 1D/2D problems are 3D
 * with size-1 dims.  Every tap of a window is one 8-lane vector load, and the
 * reduction runs lane-wise, so no shuffles are ever needed.
 *
 * The Cython driver (pool.pyx) walks (batch, channel block, output depth, row
 * chunk) items in a prange; each item calls a *row function* below for a run of
 * output rows of one plane:
 *
 *   - kernel rows (kz, ky) outside the input are skipped by clamping the tap
 *     ranges once per output row (no per-tap checks);
 *   - interior output columns (the whole kernel row inside the input) run a
 *     register tile of 8 (then 4, then 1) output pixels: per tap one load and
 *     one max/add/FMA per pixel, 8 independent dependency chains;
 *   - border columns run one pixel with its clamped kx range.
 *
 * Separable rows (fcpool_sep_rows, fcpool_sep_ok): max / average / L1 / L2 over a
 * 2-D window (kd = 1) without dilation, >= 9 taps, sh < kh.  Each window is a
 * reduction along W then along H, so input vectors are loaded ~once instead of
 * kh*kw times:
 *   - 3x3 with strides (1, 1) / (2, 2): two output rows per pass, in registers
 *     (fcpool_k3_rows_r): per input column the reductions of rows 0..2 and 1..3
 *     (2..4), then along W with the shared middle column pair (stride 1) / edge
 *     column (stride 2); rows whose window leaves the input take the direct rows;
 *   - otherwise a per-call ring of kh rows: every input row reduced along W once
 *     (raw sums / maxima), then the clamped kh ring rows combined per output row.
 * Border columns use the same clamped kx ranges and divisor factors as the direct
 * rows; only the order of the sums changes (rounding).
 *
 * Modes (see pool.pxd): max (windows of pure padding give -FLT_MAX, as
 * onnxruntime), average with count_include_pad 0 (divisor = real taps) or 1
 * (taps inside input + explicit pads; cells only ceil_mode reaches never
 * count), Lp = (sum |x|^p)^(1/p) over the real taps: p = 1 and p = 2 in
 * vectors, other p through powf per lane (fcpool_rows_generic).
 *
 * Lanes >= n_valid of a block (channel padding) are written as 0, the
 * convention of the other NCHWc kernels.
 *
 * The vector template is written once against fc_vec_begin.h and instantiated
 * for AVX2+FMA and for plain C (fc_v8, which the compiler turns into SSE2).
 */
#ifndef FASTCNN_POOL_SIMD_H
#define FASTCNN_POOL_SIMD_H
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "cpu.h"
#include "conv_nchwc_simd.h"

#define FCPOOL_B 8

/* modes: as POOL_* in pool.pxd */
#define FCPOOL_MAX 0
#define FCPOOL_AVG_EXCL 1
#define FCPOOL_AVG_INCL 2
#define FCPOOL_LP 3

/* reduction kinds of the vector template */
#define FCPOOL_R_MAX 0
#define FCPOOL_R_SUM 1
#define FCPOOL_R_SQ 2      /* Lp, p = 2 */
#define FCPOOL_R_ABS 3     /* Lp, p = 1 */

typedef struct {
    long n, cb;             /* batch, channel blocks */
    long id, ih, iw;        /* input spatial */
    long od, oh, ow;        /* output spatial */
    long kd, kh, kw;        /* kernel */
    long sd, sh, sw;        /* strides */
    long pd, ph, pw;        /* begin pads */
    long qd, qh, qw;        /* end pads (only count_include_pad reads them) */
    long dd, dh, dw;        /* dilations */
    int mode;
    float p;                /* Lp exponent */
} fcpool_geom_t;

/* Taps [lo, hi) of output o that land inside [0, n); *incl = taps at positions
 * < n + pad_end (all taps start at >= -pad_begin). */
static inline void fcpool_taps(long o, long s, long pad, long d, long k, long n, long pad_end,
                               long *lo, long *hi, long *incl) {
    long start = o * s - pad;
    long a = 0, b;
    if (start < 0) a = (-start + d - 1) / d;
    b = (n - 1 - start < 0) ? 0 : (n - 1 - start) / d + 1;
    if (b > k) b = k;
    if (a > k) a = k;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
    if (incl) {
        long e = n + pad_end - 1 - start;
        long c = e < 0 ? 0 : e / d + 1;
        *incl = c < k ? c : k;
    }
}

/* Interior output columns [lo, hi): the whole kernel row lies inside the input. */
static inline void fcpool_interior(const fcpool_geom_t *g, long *lo, long *hi) {
    long l = (g->pw + g->sw - 1) / g->sw;
    long num = g->iw - 1 + g->pw - (g->kw - 1) * g->dw;
    long h = num < 0 ? 0 : num / g->sw + 1;
    if (h > g->ow) h = g->ow;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Divisor of an average: 1/count, or 0 for an empty window (output 0). */
static inline float fcpool_scale(const fcpool_geom_t *g, long nz, long ny, long nx,
                                 long cz, long cy, long cx) {
    long cnt = g->mode == FCPOOL_AVG_INCL ? cz * cy * cx : nz * ny * nx;
    return cnt > 0 ? (float)(1.0 / (double)cnt) : 0.f;
}

/* Output columns of a row, the same for every row of a call: interior run
 * [a, b), and for the border columns (left then right, up to FCPOOL_MAXB in
 * all) the clamped kx range and the column factor of the average's divisor
 * (counts factor over the axes: 1/count = 1/(count_z count_y) * 1/count_x). */
#define FCPOOL_MAXB 128
typedef struct {
    long a, b;
    int tab;                        /* 0: too many border columns, compute per pixel */
    long k0[FCPOOL_MAXB], k1[FCPOOL_MAXB];
    float rx[FCPOOL_MAXB];
} fcpool_cols_t;

static inline void fcpool_cols(const fcpool_geom_t *g, fcpool_cols_t *c) {
    fcpool_interior(g, &c->a, &c->b);
    c->tab = c->a + (g->ow - c->b) <= FCPOOL_MAXB;
    if (!c->tab) return;
    long j = 0;
    for (long ox = 0; ox < g->ow; ox++) {
        if (ox == c->a) ox = c->b;
        if (ox >= g->ow) break;
        long incl;
        fcpool_taps(ox, g->sw, g->pw, g->dw, g->kw, g->iw, g->qw, &c->k0[j], &c->k1[j], &incl);
        long n = g->mode == FCPOOL_AVG_INCL ? incl : c->k1[j] - c->k0[j];
        c->rx[j] = n > 0 ? (float)(1.0 / (double)n) : 0.f;
        j++;
    }
}

/* Border column ox: kx range and column factor (from the table, or computed). */
static inline void fcpool_col(const fcpool_geom_t *g, const fcpool_cols_t *c, long ox,
                              long *k0, long *k1, float *rx) {
    if (c->tab) {
        long j = ox < c->a ? ox : c->a + (ox - c->b);
        *k0 = c->k0[j];
        *k1 = c->k1[j];
        *rx = c->rx[j];
        return;
    }
    long incl;
    fcpool_taps(ox, g->sw, g->pw, g->dw, g->kw, g->iw, g->qw, k0, k1, &incl);
    long n = g->mode == FCPOOL_AVG_INCL ? incl : *k1 - *k0;
    *rx = n > 0 ? (float)(1.0 / (double)n) : 0.f;
}

/* Row factor of the divisor: 1/(count_z count_y), 0 when empty. */
static inline float fcpool_row_scale(const fcpool_geom_t *g, long nz, long ny, long cz, long cy) {
    long n = g->mode == FCPOOL_AVG_INCL ? cz * cy : nz * ny;
    return n > 0 ? (float)(1.0 / (double)n) : 0.f;
}

static inline void fcpool_zero_lanes(float *y, long n_pix, int n_valid) {
    for (long i = 0; i < n_pix; i++)
        for (int l = n_valid; l < FCPOOL_B; l++) y[i * FCPOOL_B + l] = 0.f;
}

/* Any mode, any p, one pixel at a time, scalar lanes: Lp with p not in {1, 2}. */
static void fcpool_rows_generic(const float *x, float *y, const fcpool_geom_t *g, long oz,
                                long oy0, long oy1, int n_valid) {
    long kz0, kz1, cz, ky0, ky1, cy, kx0, kx1, cx;
    const float p = g->p, inv_p = 1.f / g->p;
    fcpool_taps(oz, g->sd, g->pd, g->dd, g->kd, g->id, g->qd, &kz0, &kz1, &cz);
    for (long oy = oy0; oy < oy1; oy++) {
        fcpool_taps(oy, g->sh, g->ph, g->dh, g->kh, g->ih, g->qh, &ky0, &ky1, &cy);
        float *yr = y + (oz * g->oh + oy) * g->ow * FCPOOL_B;
        for (long ox = 0; ox < g->ow; ox++) {
            float acc[FCPOOL_B];
            fcpool_taps(ox, g->sw, g->pw, g->dw, g->kw, g->iw, g->qw, &kx0, &kx1, &cx);
            for (int l = 0; l < FCPOOL_B; l++) acc[l] = g->mode == FCPOOL_MAX ? -FLT_MAX : 0.f;
            for (long kz = kz0; kz < kz1; kz++) {
                long iz = oz * g->sd - g->pd + kz * g->dd;
                for (long ky = ky0; ky < ky1; ky++) {
                    long iy = oy * g->sh - g->ph + ky * g->dh;
                    const float *xr = x + (iz * g->ih + iy) * g->iw * FCPOOL_B;
                    for (long kx = kx0; kx < kx1; kx++) {
                        const float *xp = xr + (ox * g->sw - g->pw + kx * g->dw) * FCPOOL_B;
                        for (int l = 0; l < FCPOOL_B; l++) {
                            float v = xp[l];
                            if (g->mode == FCPOOL_MAX) acc[l] = v > acc[l] ? v : acc[l];
                            else if (g->mode == FCPOOL_LP) acc[l] += powf(fabsf(v), p);
                            else acc[l] += v;
                        }
                    }
                }
            }
            float s = 1.f;
            if (g->mode == FCPOOL_AVG_EXCL || g->mode == FCPOOL_AVG_INCL)
                s = fcpool_scale(g, kz1 - kz0, ky1 - ky0, kx1 - kx0, cz, cy, cx);
            for (int l = 0; l < FCPOOL_B; l++) {
                float v = acc[l];
                if (g->mode == FCPOOL_LP) v = powf(v, inv_p);
                else if (g->mode != FCPOOL_MAX) v *= s;
                yr[ox * FCPOOL_B + l] = l < n_valid ? v : 0.f;
            }
        }
    }
}

/* the two vector ops the shared vocabulary lacks, for the portable template */
static inline fc_v8 fcpool_p_abs(fc_v8 a) { int i; for (i = 0; i < 8; i++) a.v[i] = fabsf(a.v[i]); return a; }
static inline fc_v8 fcpool_p_sqrt(fc_v8 a) { int i; for (i = 0; i < 8; i++) a.v[i] = sqrtf(a.v[i]); return a; }

typedef void (*fcpool_row_fn)(const float *x, float *y, const fcpool_geom_t *g, long oz,
                              long oy0, long oy1, int n_valid);

/* portable */
#define FC_SUF(name) name##_portable
#define FC_TGT
#define FC_AVX 0
#include "pool_nchwc_tile.h"
#include "pool_plain_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX

#if FASTCNN_X86
#define FC_SUF(name) name##_avx2
#define FC_TGT FASTCNN_TARGET_AVX2
#define FC_AVX 1
#include "pool_nchwc_tile.h"
#include "pool_plain_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#endif

/* The row function for this ISA and geometry (AVX-512 machines run the AVX2
 * functions: the block is 8 lanes either way).  Plain layout: Lp with p not in
 * {1, 2} has no row function here (NULL: the caller's own kernel runs it). */
/* Plain geometries the separable rows take: a 2-D window without dilation, >= 4
 * taps, stride along W 1 or 2. */
static inline int fcpool_plain_sep_ok(const fcpool_geom_t *g) {
    return g->kd == 1 && g->dh == 1 && g->dw == 1 && g->kh * g->kw >= 4 && g->kh >= 2 &&
           (g->sw == 1 || g->sw == 2);
}

static inline fcpool_row_fn fcpool_pick_plain_row(int isa, const fcpool_geom_t *g, int sep) {
    if (g->mode == FCPOOL_LP && g->p != 1.f && g->p != 2.f) return 0;
    sep = sep && fcpool_plain_sep_ok(g);
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) return sep ? fcpool_plain_sep_rows_avx2 : fcpool_plain_rows_avx2;
#endif
    (void)isa;
    return sep ? fcpool_plain_sep_rows_portable : fcpool_plain_rows_portable;
}

/* Geometries the separable rows take: a 2-D window (kd = 1) without dilation,
 * both sides >= 2 and at least 9 taps (2x2 and 3x2 gain nothing), rows shared by
 * consecutive outputs (sh < kh), ring <= 1 MiB. */
static inline int fcpool_sep_ok(const fcpool_geom_t *g) {
    return g->kd == 1 && g->dh == 1 && g->dw == 1 && g->kh >= 2 && g->kw >= 2 &&
           g->kh * g->kw >= 9 &&
           g->kh <= 64 && g->sh < g->kh && g->kh * g->ow * FCPOOL_B * 4 <= (1L << 20);
}

/* sep: allow the separable rows (0 forces the direct ones, for tests / benchmarks). */
static inline fcpool_row_fn fcpool_pick_row(int isa, const fcpool_geom_t *g, int sep) {
    if (g->mode == FCPOOL_LP && g->p != 1.f && g->p != 2.f) return fcpool_rows_generic;
    sep = sep && fcpool_sep_ok(g);
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) return sep ? fcpool_sep_rows_avx2 : fcpool_rows_avx2;
#endif
    (void)isa;
    return sep ? fcpool_sep_rows_portable : fcpool_rows_portable;
}

#endif
