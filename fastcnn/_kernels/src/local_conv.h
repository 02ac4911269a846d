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
 * One source, three ISAs: GCC vector extensions of each ISA's native width (zmm, ymm,
 * xmm; a 16-lane block is 1, 2 or 4 of them) compiled under per-function target
 * attributes; contraction (-ffp-contract=fast, GCC's default in GNU C; clang contracts
 * within a statement) turns `acc += x * w` into FMAs on the AVX2/AVX-512 builds.
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

typedef float lc_v8 __attribute__((vector_size(32)));
typedef float lc_v4 __attribute__((vector_size(16)));

/* out[r*ldo + b*16 + l] = Σ_j x[r*ldx + j] · w[j*ldw + b*16 + l], in the ISA's native
 * vector VT of NL lanes (16/NL vectors per block), arrays sized exactly per (R, MB)
 * case so GCC keeps every accumulator in a register (a 64-byte type on AVX2, or
 * oversized arrays, make it keep them in memory). */
#define LC_BODY(VT, NL, R_, MB_) {                                                         \
    enum { VPB = LC_LANES / NL, NV = (MB_) * (LC_LANES / NL) };                              \
    VT acc[R_][NV];                                                                         \
    for (int r = 0; r < (R_); r++)                                                          \
        for (int b = 0; b < NV; b++)                                                        \
            acc[r][b] = (VT){0};                                                            \
    for (long j = 0; j < K; j++) {                                                          \
        const float *wj = w + j * ldw;                                                      \
        VT wv[NV];                                                                          \
        for (int b = 0; b < NV; b++)                                                        \
            memcpy(&wv[b], wj + NL * b, sizeof(VT));                                        \
        for (int r = 0; r < (R_); r++) {                                                    \
            const float xv = x[r * ldx + j];                                                \
            for (int b = 0; b < NV; b++)                                                    \
                acc[r][b] += xv * wv[b];                                                    \
        }                                                                                   \
    }                                                                                       \
    for (int r = 0; r < (R_); r++)                                                          \
        for (int b = 0; b < NV; b++)                                                        \
            memcpy(out + r * ldo + NL * b, &acc[r][b], sizeof(VT));                         \
}

#define LC_CASE(VT, NL, R_, MB_) case (R_) * 8 + (MB_): LC_BODY(VT, NL, R_, MB_) break;

/* One tile with R ≤ 4 rows and MB ≤ 4 blocks of 16 output channels. */
#define LC_DEFINE_TILE(SUFFIX, ATTR, VT, NL)                                               \
    ATTR static void lc_tile_##SUFFIX(int R, int MB, long K, const float *w, long ldw,   \
                                      const float *x, long ldx, float *out, long ldo) {  \
        switch (R * 8 + MB) {                                                              \
        LC_CASE(VT, NL, 1, 1) LC_CASE(VT, NL, 1, 2) LC_CASE(VT, NL, 1, 3)                  \
        LC_CASE(VT, NL, 1, 4) LC_CASE(VT, NL, 2, 1) LC_CASE(VT, NL, 2, 2)                  \
        LC_CASE(VT, NL, 2, 3) LC_CASE(VT, NL, 2, 4) LC_CASE(VT, NL, 3, 1)                  \
        LC_CASE(VT, NL, 3, 2) LC_CASE(VT, NL, 3, 3) LC_CASE(VT, NL, 3, 4)                  \
        LC_CASE(VT, NL, 4, 1) LC_CASE(VT, NL, 4, 2) LC_CASE(VT, NL, 4, 3)                  \
        LC_CASE(VT, NL, 4, 4)                                                              \
        default: break;                                                                    \
        }                                                                                  \
    }

LC_DEFINE_TILE(portable, , lc_v4, 4)
#if FASTCNN_X86
LC_DEFINE_TILE(avx2, FASTCNN_TARGET_AVX2, lc_v8, 8)
LC_DEFINE_TILE(avx512, FASTCNN_TARGET_AVX512, lc_v16, 16)
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

/* ---------------------------------------------------------------- weighted average pool
 * One output row (plane nc, od, oh) of WeightedAveragePool in float32:
 *   y[ow] = (Σ_{valid κ} kn[κ]·x[...]) · scale[base_case + case_w[ow]]
 * Interior columns (every kw tap inside the row), stride 1: 4 register blocks of one
 * vector of columns each, all taps accumulated, one store (blocks past the end are
 * clamped onto the last full block: recomputed, not read out of bounds); other strides tap by tap with the columns
 * innermost.  Border columns one by one over their valid taps. */
/* Interior blocks: NL consecutive outputs per vector, 4 vectors per group (independent
 * FMA chains), all taps accumulated before one store.  LOAD(v, p) loads the NL inputs
 * of the NL outputs starting at input p: contiguous for stride 1, the even elements of
 * 2·NL contiguous ones (one two-source shuffle) for stride 2. */
#define WAP_BLOCKS(VT, NL, LOAD, SW)                                                         \
    for (long ow0 = lo; ow0 < hv; ow0 += 4 * NL) {                                           \
        long o[4];                                                                           \
        for (int i = 0; i < 4; i++)                                                          \
            o[i] = ow0 + (i + 1) * NL <= hv ? ow0 + i * NL : hv - NL;                        \
        VT acc[4] = {(VT){0}, (VT){0}, (VT){0}, (VT){0}};                                    \
        for (long kd = dlo; kd < dhi; kd++)                                                  \
            for (long kh = hlo; kh < hhi; kh++) {                                            \
                const float *xr = xp + ((d0 + kd) * H + (h0 + kh)) * W - pw;                 \
                const float *kr = kn + (kd * kh_n + kh) * kw_n;                              \
                for (long kw = 0; kw < kw_n; kw++) {                                         \
                    const float kv = kr[kw];                                                 \
                    for (int i = 0; i < 4; i++) {                                            \
                        VT v;                                                                \
                        LOAD(v, xr + (SW) * o[i] + kw);                                      \
                        acc[i] += kv * v;                                                    \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        for (int i = 0; i < 4; i++) {                                                        \
            acc[i] *= sc;                                                                    \
            memcpy(yr + o[i], &acc[i], sizeof acc[i]);                                       \
        }                                                                                    \
    }

/* GCC's two-source shuffle; elsewhere stride 2 takes the tap-by-tap path */
#if defined(__GNUC__) && !defined(__clang__)
#define LC_HAVE_SHUFFLE 1
#else
#define LC_HAVE_SHUFFLE 0
#define __builtin_shuffle(a, b, m) (a)
#endif
#define WAP_LOAD1(v, p) memcpy(&(v), (p), sizeof(v))
#define WAP_LOAD2(v, p) do {                                                                 \
        __typeof__(v) lo_, hi_;                                                              \
        memcpy(&lo_, (p), sizeof lo_);                                                       \
        memcpy(&hi_, (p) + sizeof lo_ / sizeof(float), sizeof hi_);                          \
        (v) = __builtin_shuffle(lo_, hi_, EVEN);                                             \
    } while (0)

/* VT: the ISA's native float vector (NL lanes) and IT the matching int vector; a wider
 * type makes GCC keep the accumulator in memory on AVX2.
 * Columns: [lo, hv) in vector blocks (stride 1 or 2; hv < hi for stride 2 so a block's
 * last pair load stays inside the row), [lo, hi) tap by tap with the columns innermost
 * (other strides), everything else one column at a time over its valid taps. */
#define WAP_DEFINE_ROW(SUFFIX, ATTR, VT, IT, NL, EVEN_INIT)                                  \
ATTR static void wap_row_##SUFFIX(                                                           \
        const float *restrict xp, float *restrict yr, const float *restrict kn,              \
        const float *restrict scale, const int *restrict case_w, long base_case, long H,     \
        long W, long OW, long kh_n, long kw_n, long sw, long pw, long d0, long h0,           \
        long dlo, long dhi, long hlo, long hhi) {                                            \
    const IT EVEN = EVEN_INIT;                                                               \
    long lo = (pw + sw - 1) / sw, hi = 0, hv;                                                \
    if (W - kw_n + pw >= 0) hi = (W - kw_n + pw) / sw + 1;                                   \
    if (hi > OW) hi = OW;                                                                    \
    if (lo > hi) lo = hi;                                                                    \
    hv = lo;                                                                                 \
    const float sc = hi > lo ? scale[base_case + case_w[lo]] : 1.f;                          \
    if (sw == 1 && hi - lo >= NL) {                                                          \
        hv = hi;                                                                             \
        WAP_BLOCKS(VT, NL, WAP_LOAD1, 1)                                                     \
    } else if (sw == 2 && LC_HAVE_SHUFFLE) {                                                 \
        /* last block load ends at 2·(hv − 1) + kw_n − pw + 1 ≤ W − 1 */                     \
        hv = W - 1 - kw_n + pw >= 0 ? (W - 1 - kw_n + pw) / 2 : lo;                          \
        if (hv > hi) hv = hi;                                                                \
        if (hv - lo >= NL) {                                                                 \
            WAP_BLOCKS(VT, NL, WAP_LOAD2, 2)                                                 \
        } else {                                                                             \
            hv = lo;                                                                         \
        }                                                                                    \
    } else if (hi > lo) {                                                                    \
        hv = hi;                                                                             \
        for (long ow = lo; ow < hi; ow++) yr[ow] = 0.f;                                      \
        for (long kd = dlo; kd < dhi; kd++)                                                  \
            for (long kh = hlo; kh < hhi; kh++) {                                            \
                const float *xr = xp + ((d0 + kd) * H + (h0 + kh)) * W;                      \
                const float *kr = kn + (kd * kh_n + kh) * kw_n;                              \
                for (long kw = 0; kw < kw_n; kw++) {                                         \
                    const float kv = kr[kw];                                                 \
                    const long off = kw - pw;                                                \
                    for (long ow = lo; ow < hi; ow++) yr[ow] += kv * xr[ow * sw + off];      \
                }                                                                            \
            }                                                                                \
        if (sc != 1.f)                                                                       \
            for (long ow = lo; ow < hi; ow++) yr[ow] *= sc;                                  \
    }                                                                                        \
    for (long ow = 0; ow < OW; ow++) {                                                       \
        if (ow == lo && hv > lo) {            /* skip the block-computed columns */          \
            ow = hv - 1;                                                                     \
            continue;                                                                        \
        }                                                                                    \
        const long w0 = ow * sw - pw;                                                        \
        long a = w0 < 0 ? -w0 : 0, b = W - w0 < kw_n ? W - w0 : kw_n;                        \
        if (a > kw_n) a = kw_n;                                                              \
        if (b < a) b = a;                                                                    \
        float acc = 0.f;                                                                     \
        for (long kd = dlo; kd < dhi; kd++)                                                  \
            for (long kh = hlo; kh < hhi; kh++) {                                            \
                const float *xr = xp + ((d0 + kd) * H + (h0 + kh)) * W + w0;                 \
                const float *kr = kn + (kd * kh_n + kh) * kw_n;                              \
                for (long kw = a; kw < b; kw++) acc += kr[kw] * xr[kw];                      \
            }                                                                                \
        yr[ow] = acc * scale[base_case + case_w[ow]];                                        \
    }                                                                                        \
}

typedef int lc_i4 __attribute__((vector_size(16)));
typedef int lc_i8 __attribute__((vector_size(32)));
typedef int lc_i16 __attribute__((vector_size(64)));
#define WAP_EVEN4 ((lc_i4){0, 2, 4, 6})
#define WAP_EVEN8 ((lc_i8){0, 2, 4, 6, 8, 10, 12, 14})
#define WAP_EVEN16 ((lc_i16){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})

WAP_DEFINE_ROW(portable, , lc_v4, lc_i4, 4, WAP_EVEN4)
#if FASTCNN_X86
WAP_DEFINE_ROW(avx2, FASTCNN_TARGET_AVX2, lc_v8, lc_i8, 8, WAP_EVEN8)
WAP_DEFINE_ROW(avx512, FASTCNN_TARGET_AVX512, lc_v16, lc_i16, 16, WAP_EVEN16)
#endif

static void wap_row_f32(int isa, const float *xp, float *yr, const float *kn,
                        const float *scale, const int *case_w, long base_case, long H, long W,
                        long OW, long kh_n, long kw_n, long sw, long pw, long d0, long h0,
                        long dlo, long dhi, long hlo, long hhi) {
#if FASTCNN_X86
    if (isa == FASTCNN_ISA_AVX512) {
        wap_row_avx512(xp, yr, kn, scale, case_w, base_case, H, W, OW, kh_n, kw_n, sw, pw, d0,
                       h0, dlo, dhi, hlo, hhi);
        return;
    }
    if (isa == FASTCNN_ISA_AVX2) {
        wap_row_avx2(xp, yr, kn, scale, case_w, base_case, H, W, OW, kh_n, kw_n, sw, pw, d0, h0,
                     dlo, dhi, hlo, hhi);
        return;
    }
#endif
    wap_row_portable(xp, yr, kn, scale, case_w, base_case, H, W, OW, kh_n, kw_n, sw, pw, d0, h0,
                     dlo, dhi, hlo, hhi);
}

#endif
