/* local_conv.h -- micro-kernels of the unshared / tiled convolutions (local_conv.pyx).
 *
 * The work unit is a "row tile": up to LC_ROWS rows, each row one (image, output
 * position) pair whose im2col patch col[r][0..K) (K = C/group · Πk) has been gathered,
 * all rows sharing one filter bank  w[K][ldw]  (packed so the output channels m are
 * contiguous, padded to a multiple of LC_LANES with zeros).  The tile computes
 *
 *     out[r][m] = Σ_j col[r][j] · w[j][m]        r < R, m < n_mb·LC_LANES
 *
 * j outermost: per j one load of each 16-lane weight vector, one broadcast of each
 * row's x, R·MB FMAs into register accumulators.  For a locally connected layer a
 * bank is used by one position only, so each weight is loaded exactly once per tile
 * (once per image block): the loop is a sequential stream over the bank and runs at
 * memory bandwidth.  For a tiled convolution a bank is shared by every position of
 * its phase, stays in L1/L2, and the same loop is an FMA-bound direct convolution.
 *
 * One source, three ISAs: GCC vector extensions (16 floats = one zmm, two ymm or four
 * xmm) compiled under per-function target attributes; contraction (-ffp-contract=fast,
 * GCC's default in GNU C) turns `acc += x * w` into FMAs on the AVX2/AVX-512 builds.
 * The register budget fixes how many accumulators a tile may hold: R·MB ≤ 16 on
 * AVX-512 (32 zmm), ≤ 4 (8 ymm) on AVX2, ≤ 2 on the portable SSE2 path.
 */
#ifndef FASTCNN_LOCAL_CONV_H
#define FASTCNN_LOCAL_CONV_H
#include <string.h>
#include "cpu.h"

/* lc_v16 values never cross a non-inlined call: the ABI note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define LC_ROWS 4
#define LC_LANES 16
#define LC_MAX_MB 4

typedef float lc_v16 __attribute__((vector_size(64)));

static inline __attribute__((always_inline)) lc_v16 lc_ld(const float *p) {
    lc_v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void lc_st(float *p, lc_v16 v) {
    memcpy(p, &v, sizeof v);
}

/* out[r*ldo + b*16 + l] = Σ_j x[r*ldx + j] · w[j*ldw + b*16 + l] */
static inline __attribute__((always_inline)) void
lc_tile_body(long K, const float *restrict w, long ldw, const float *restrict x, long ldx,
             float *restrict out, long ldo, const int R, const int MB) {
    lc_v16 acc[LC_ROWS][LC_MAX_MB];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < MB; b++)
            acc[r][b] = (lc_v16){0};
    for (long j = 0; j < K; j++) {
        const float *wj = w + j * ldw;
        lc_v16 wv[LC_MAX_MB];
        for (int b = 0; b < MB; b++)
            wv[b] = lc_ld(wj + LC_LANES * b);
        for (int r = 0; r < R; r++) {
            const float xv = x[r * ldx + j];
            for (int b = 0; b < MB; b++)
                acc[r][b] += xv * wv[b];
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < MB; b++)
            lc_st(out + r * ldo + LC_LANES * b, acc[r][b]);
}

#define LC_CASE(R_, MB_) case (R_) * 8 + (MB_): \
    lc_tile_body(K, w, ldw, x, ldx, out, ldo, R_, MB_); break;

/* One tile with R ≤ 4 rows and MB ≤ 4 blocks of 16 output channels. */
#define LC_DEFINE_TILE(SUFFIX, ATTR)                                                       \
    ATTR static void lc_tile_##SUFFIX(int R, int MB, long K, const float *w, long ldw,   \
                                      const float *x, long ldx, float *out, long ldo) {  \
        switch (R * 8 + MB) {                                                              \
        LC_CASE(1, 1) LC_CASE(1, 2) LC_CASE(1, 3) LC_CASE(1, 4)                            \
        LC_CASE(2, 1) LC_CASE(2, 2) LC_CASE(2, 3) LC_CASE(2, 4)                            \
        LC_CASE(3, 1) LC_CASE(3, 2) LC_CASE(3, 3) LC_CASE(3, 4)                            \
        LC_CASE(4, 1) LC_CASE(4, 2) LC_CASE(4, 3) LC_CASE(4, 4)                            \
        default: break;                                                                    \
        }                                                                                  \
    }

LC_DEFINE_TILE(portable, )
#if FASTCNN_X86
LC_DEFINE_TILE(avx2, FASTCNN_TARGET_AVX2)
LC_DEFINE_TILE(avx512, FASTCNN_TARGET_AVX512)
#endif

/* out[r][m] for r < R (≤ LC_ROWS), m < n_mb·16: the m blocks in chunks that fit the
 * ISA's register budget.  w: [K][ldw], x: [R][ldx], out: [R][ldo]. */
static void lc_gemm_rows(int isa, int R, long n_mb, long K, const float *w, long ldw,
                         const float *x, long ldx, float *out, long ldo) {
    long budget = isa == FASTCNN_ISA_AVX512 ? 16 : (isa == FASTCNN_ISA_AVX2 ? 4 : 2);
    long step = budget / R;
    if (step < 1) step = 1;
    if (step > LC_MAX_MB) step = LC_MAX_MB;
    for (long b0 = 0; b0 < n_mb; b0 += step) {
        int mb = (int)(n_mb - b0 < step ? n_mb - b0 : step);
        const float *wb = w + b0 * LC_LANES;
        float *ob = out + b0 * LC_LANES;
#if FASTCNN_X86
        if (isa == FASTCNN_ISA_AVX512) { lc_tile_avx512(R, mb, K, wb, ldw, x, ldx, ob, ldo); continue; }
        if (isa == FASTCNN_ISA_AVX2) { lc_tile_avx2(R, mb, K, wb, ldw, x, ldx, ob, ldo); continue; }
#endif
        lc_tile_portable(R, mb, K, wb, ldw, x, ldx, ob, ldo);
    }
}

/* im2col of one output position for Cg channels of one image:
 * col[c·Πk + (kd·kh_n + kh)·kw_n + kw] = x[c][id][ih][iw], 0 outside the input.
 * x points at channel 0 of the group in image n; geometry arrays are (d, h, w). */
static void lc_gather(const float *restrict x, long Cg, const long *in_sp, const long *k,
                      const long *s, const long *dil, const long *pb, long od, long oh,
                      long ow, float *restrict col) {
    const long D = in_sp[0], H = in_sp[1], W = in_sp[2];
    const long kd_n = k[0], kh_n = k[1], kw_n = k[2];
    const long d0 = od * s[0] - pb[0], h0 = oh * s[1] - pb[1], w0 = ow * s[2] - pb[2];
    const long plane = D * H * W;
    /* the kw taps inside [0, W): [a, b) */
    long a = 0, b = kw_n;
    if (w0 < 0) a = (-w0 + dil[2] - 1) / dil[2];
    if (W - 1 - w0 < 0) b = 0;
    else if ((W - 1 - w0) / dil[2] + 1 < b) b = (W - 1 - w0) / dil[2] + 1;
    if (a > b) a = b;
    for (long c = 0; c < Cg; c++) {
        const float *xc = x + c * plane;
        for (long kd = 0; kd < kd_n; kd++) {
            const long id = d0 + kd * dil[0];
            for (long kh = 0; kh < kh_n; kh++, col += kw_n) {
                const long ih = h0 + kh * dil[1];
                if (id < 0 || id >= D || ih < 0 || ih >= H) {
                    for (long kw = 0; kw < kw_n; kw++) col[kw] = 0.f;
                    continue;
                }
                const float *xr = xc + (id * H + ih) * W + w0;
                for (long kw = 0; kw < a; kw++) col[kw] = 0.f;
                if (dil[2] == 1)
                    for (long kw = a; kw < b; kw++) col[kw] = xr[kw];
                else
                    for (long kw = a; kw < b; kw++) col[kw] = xr[kw * dil[2]];
                for (long kw = b; kw < kw_n; kw++) col[kw] = 0.f;
            }
        }
    }
}

#endif
