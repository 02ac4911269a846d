/* resize_nearest.h -- rows of an integer-factor nearest upsample.
 *
 *   fc_nearest_row_*(src, dst, n, f):   dst[o] = src[o / f]            for 0 <= o < n
 *   fc_nearest_vrow_*(src, dst, n, f, L): dst[o*L + l] = src[(o / f)*L + l]   (L lanes per
 *                                         element: the channel-blocked layout's W axis)
 *   fc_nearest_rows_*(x, y, iy, r0, r1, g): output rows r0..r1 of one plane, row r from
 *                                         input row iy[r], columns by the map g (below;
 *                                         the loop over rows lives here so the row bodies
 *                                         inline)
 *
 * f = 2, 3, 4 have SIMD bodies: 8 (AVX2: vpermps) or 4 (SSE2, the x86-64 baseline:
 * unpack/shuffle) inputs loaded once, f vectors stored; other f and the tails are the
 * plain loop.  Every output row is written from its input row: copying the output row
 * just written to the next (duplicated) row instead reads lines whose stores are still in
 * flight (Zen 4, 64x128x128 x2 back to back: 0.35 ms from the input, 0.48-0.60 with the
 * copy; a plain fill of the 16.8 MB output 0.30).
 *
 * Long AVX2 rows realign: numpy's arrays (a graph output handed to the caller) are only
 * 16-byte aligned, and a 32-byte store across two lines costs; one unaligned step, then
 * the body restarts on a 32-byte boundary.  AVX-512 (16-lane vpermps, 64-byte stores)
 * measured no faster than AVX2 here on any size (Zen 4 splits them; 1.1-1.2x slower on a
 * misaligned or L2-sized output), so AVX-512 machines run the AVX2 rows.
 *
 * fc_nearest_row_stream_sse2 is the f = 2 row with streaming stores (dst 16-byte
 * aligned): for outputs far beyond the last-level cache, where a plain store first reads
 * the line it overwrites (64x256x256 x2, 67 MB: 2.4 ms streaming, 2.9-3.5 plain; at 16.8
 * MB, cache-resident: 0.59 streaming, 0.35 plain).  Wider streaming stores measured the
 * same (DRAM-bound).
 */
#ifndef FASTCNN_RESIZE_NEAREST_H
#define FASTCNN_RESIZE_NEAREST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cpu.h"

/* inlined with a constant f where it matters: a division per output otherwise */
static inline void fc_nearest_tail(const float *src, float *dst, long o, long n, long f) {
    for (; o < n; o++)
        dst[o] = src[o / f];
}

static inline void fc_nearest_row_portable(const float *src, float *dst, long n, long f) {
    long o = 0;
    if (f == 1) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    for (long i = 0; o + f <= n; i++) {
        float v = src[i];
        for (long k = 0; k < f; k++)
            dst[o + k] = v;
        o += f;
    }
    fc_nearest_tail(src, dst, o, n, f);
}

/* Elements of L lanes: L == 8 and 16 (the blocks) as fixed-size copies the compiler turns
 * into vector moves of whatever the build allows; others lane by lane. */
static inline void fc_nearest_vrow_portable(const float *src, float *dst, long n, long f, long L) {
    for (long o = 0; o < n; o++) {
        const float *s = src + (o / f) * L;
        float *d = dst + o * L;
        if (L == 8)
            memcpy(d, s, 8 * sizeof(float));
        else if (L == 16)
            memcpy(d, s, 16 * sizeof(float));
        else
            for (long l = 0; l < L; l++)
                d[l] = s[l];
    }
}

#if FASTCNN_X86 && defined(__SSE2__)
static inline void fc_nearest_row_sse2(const float *src, float *dst, long n, long f) {
    long i = 0, o = 0;
    if (f == 2) {
        for (; o + 8 <= n; i += 4, o += 8) {
            __m128 v = _mm_loadu_ps(src + i);
            _mm_storeu_ps(dst + o, _mm_unpacklo_ps(v, v));
            _mm_storeu_ps(dst + o + 4, _mm_unpackhi_ps(v, v));
        }
        fc_nearest_tail(src, dst, o, n, 2);
    } else if (f == 3) {
        for (; o + 12 <= n; i += 4, o += 12) {
            __m128 v = _mm_loadu_ps(src + i);       /* a b c d -> aaab bbcc cddd */
            _mm_storeu_ps(dst + o, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 0, 0)));
            _mm_storeu_ps(dst + o + 4, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 2, 1, 1)));
            _mm_storeu_ps(dst + o + 8, _mm_shuffle_ps(v, v, _MM_SHUFFLE(3, 3, 3, 2)));
        }
        fc_nearest_tail(src, dst, o, n, 3);
    } else if (f == 4) {
        for (; o + 16 <= n; i += 4, o += 16) {
            __m128 v = _mm_loadu_ps(src + i);
            _mm_storeu_ps(dst + o, _mm_shuffle_ps(v, v, _MM_SHUFFLE(0, 0, 0, 0)));
            _mm_storeu_ps(dst + o + 4, _mm_shuffle_ps(v, v, _MM_SHUFFLE(1, 1, 1, 1)));
            _mm_storeu_ps(dst + o + 8, _mm_shuffle_ps(v, v, _MM_SHUFFLE(2, 2, 2, 2)));
            _mm_storeu_ps(dst + o + 12, _mm_shuffle_ps(v, v, _MM_SHUFFLE(3, 3, 3, 3)));
        }
        fc_nearest_tail(src, dst, o, n, 4);
    } else
        fc_nearest_row_portable(src, dst, n, f);
}

#define FASTCNN_HAVE_STREAM 1
static void fc_nearest_row_stream_sse2(const float *src, float *dst, long n) {
    long i = 0, o = 0;
    for (; o + 8 <= n; i += 4, o += 8) {
        __m128 v = _mm_loadu_ps(src + i);
        _mm_stream_ps(dst + o, _mm_unpacklo_ps(v, v));
        _mm_stream_ps(dst + o + 4, _mm_unpackhi_ps(v, v));
    }
    fc_nearest_tail(src, dst, o, n, 2);
}
static void fc_sfence(void) { _mm_sfence(); }
#else
#define FASTCNN_HAVE_STREAM 0
static inline void fc_nearest_row_sse2(const float *src, float *dst, long n, long f) {
    fc_nearest_row_portable(src, dst, n, f);
}
static void fc_nearest_row_stream_sse2(const float *src, float *dst, long n) {
    fc_nearest_row_portable(src, dst, n, 2);
}
static void fc_sfence(void) { }
#endif

#if FASTCNN_X86
/* Permutation table: lane j of output vector k (of f) takes input lane (8*k + j) / f. */
#define FC_IX(V, F, k, j) (((V) * (k) + (j)) / (F))
#define FC_IX8(F, k) {FC_IX(8, F, k, 0), FC_IX(8, F, k, 1), FC_IX(8, F, k, 2),                 \
    FC_IX(8, F, k, 3), FC_IX(8, F, k, 4), FC_IX(8, F, k, 5), FC_IX(8, F, k, 6), FC_IX(8, F, k, 7)}
static const int fc_nn_ix8[3][4][8] = {
    {FC_IX8(2, 0), FC_IX8(2, 1)},
    {FC_IX8(3, 0), FC_IX8(3, 1), FC_IX8(3, 2)},
    {FC_IX8(4, 0), FC_IX8(4, 1), FC_IX8(4, 2), FC_IX8(4, 3)}};

/* First output o > 0 with dst + o on a `bytes` boundary and o % f == 0 (o < V*f), or 0
 * when dst is aligned already or no such o exists.  The body takes one unaligned step at
 * o = 0 and restarts there with aligned stores (rewriting a few outputs with the same
 * values). */
static inline long fc_nearest_realign(const float *dst, long f, long V, long bytes) {
    uintptr_t a = (uintptr_t)dst;
    if (a % sizeof(float))
        return 0;
    long o = (long)(((uintptr_t)0 - a) % (uintptr_t)bytes / sizeof(float));
    if (o == 0)
        return 0;                   /* aligned already */
    for (long k = 0; k < f && o % f; k++)
        o += bytes / (long)sizeof(float);
    return (o % f || o >= V * f) ? 0 : o;
}

/* One body step: V inputs from src + i, f vectors to dst + o. */
#define FC_NEAREST_BODY(V, IXT, LOADI, LOADF, STORE, PERM, F)                             \
    do {                                                                                  \
        __typeof__(LOADI(IXT[0][0])) ix_[F];                                              \
        for (int k_ = 0; k_ < (F); k_++)                                                  \
            ix_[k_] = LOADI(IXT[(F) - 2][k_]);                                            \
        if (n >= 4 * (V) * (F)) {       /* long rows: the extra step pays */              \
            long a_ = fc_nearest_realign(dst, F, V, (V) * 4);                             \
            if (a_ > 0) {                                                                 \
                __typeof__(LOADF(src)) v_ = LOADF(src);                                   \
                for (int k_ = 0; k_ < (F); k_++)                                          \
                    STORE(dst + (V) * k_, PERM(ix_[k_], v_));                             \
                o = a_;                                                                   \
                i = a_ / (F);                                                             \
            }                                                                             \
        }                                                                                 \
        for (; o + (V) * (F) <= n; i += (V), o += (V) * (F)) {                            \
            __typeof__(LOADF(src)) v_ = LOADF(src + i);                                   \
            for (int k_ = 0; k_ < (F); k_++)                                              \
                STORE(dst + o + (V) * k_, PERM(ix_[k_], v_));                             \
        }                                                                                 \
        if (o < n && n >= (V) * (F)) {  /* the last full step, overlapping the one before */ \
            o = (n - (V) * (F)) / (F) * (F);                                              \
            i = o / (F);                                                                  \
            __typeof__(LOADF(src)) v_ = LOADF(src + i);                                   \
            for (int k_ = 0; k_ < (F); k_++)                                              \
                STORE(dst + o + (V) * k_, PERM(ix_[k_], v_));                             \
            o += (V) * (F);                                                               \
        }                                                                                 \
        fc_nearest_tail(src, dst, o, n, F);   /* < F outputs, or a row shorter than V*F */ \
    } while (0)

#define FC_LOADI256(t) _mm256_loadu_si256((const __m256i *)(t))
#define FC_PERM256(ix, v) _mm256_permutevar8x32_ps(v, ix)
FASTCNN_TARGET_AVX2 static inline void fc_nearest_row_avx2(const float *src, float *dst,
                                                           long n, long f) {
    long i = 0, o = 0;
    if (f == 2)
        FC_NEAREST_BODY(8, fc_nn_ix8, FC_LOADI256, _mm256_loadu_ps, _mm256_storeu_ps,
                        FC_PERM256, 2);
    else if (f == 3)
        FC_NEAREST_BODY(8, fc_nn_ix8, FC_LOADI256, _mm256_loadu_ps, _mm256_storeu_ps,
                        FC_PERM256, 3);
    else if (f == 4)
        FC_NEAREST_BODY(8, fc_nn_ix8, FC_LOADI256, _mm256_loadu_ps, _mm256_storeu_ps,
                        FC_PERM256, 4);
    else
        fc_nearest_row_portable(src, dst, n, f);
}

/* L-lane elements: one load per input element, f stores of it (8 lanes: one ymm;
 * 16 lanes: two). */
FASTCNN_TARGET_AVX2 static inline void fc_nearest_vrow_avx2(const float *src, float *dst, long n,
                                                     long f, long L) {
    long i = 0, o = 0;
    if (L == 8) {
        for (; o + f <= n; i++) {
            __m256 v = _mm256_loadu_ps(src + i * 8);
            for (long k = 0; k < f; k++, o++)
                _mm256_storeu_ps(dst + o * 8, v);
        }
    } else if (L == 16) {
        for (; o + f <= n; i++) {
            __m256 a = _mm256_loadu_ps(src + i * 16), b = _mm256_loadu_ps(src + i * 16 + 8);
            for (long k = 0; k < f; k++, o++) {
                _mm256_storeu_ps(dst + o * 16, a);
                _mm256_storeu_ps(dst + o * 16 + 8, b);
            }
        }
    }
    if (o < n)          /* o == i * f here */
        fc_nearest_vrow_portable(src + i * L, dst + o * L, n - o, f, L);
}

#endif

/* The column map of a plane: ix[o] = 0 for o < head, k0 + (o - head) / f for the nbody
 * outputs after them, W - 1 for the rest (n outputs in all).  Every nearest
 * coordinate_transformation_mode / nearest_mode pair that upsamples by an integer factor
 * maps columns so (head = 0, k0 = 0, nbody = n: o / f, e.g. asymmetric + floor or the
 * half_pixel default; a shift, e.g. tf_half_pixel_for_nn or ceil, clamped at the ends). */
typedef struct {
    long W, n, f, L;            /* input and output row lengths (elements), factor, lanes */
    long head, k0, nbody;
} fc_nearest_geom_t;

static inline void fc_nearest_fill(const float *s, float *d, long count, long L) {
    for (long o = 0; o < count; o++)
        for (long l = 0; l < L; l++)
            d[o * L + l] = s[l];
}

/* output rows r0..r1 of one plane: x [H, W*L], y [OH, n*L] */
#define FC_NEAREST_ROWS(NAME, ATTR, ROW, VROW)                                            \
    ATTR static void NAME(const float *x, float *y, const ptrdiff_t *iy, long r0, long r1,  \
                          const fc_nearest_geom_t *g) {                                   \
        const long W = g->W, n = g->n, f = g->f, L = g->L, h = g->head, nb = g->nbody;    \
        for (long r = r0; r < r1; r++) {                                                  \
            const float *s = x + iy[r] * W * L;                                           \
            float *d = y + r * n * L;                                                     \
            if (h > 0)                                                                    \
                fc_nearest_fill(s, d, h, L);                                              \
            if (L == 1)                                                                   \
                ROW(s + g->k0, d + h, nb, f);                                             \
            else                                                                          \
                VROW(s + g->k0 * L, d + h * L, nb, f, L);                                 \
            if (h + nb < n)                                                               \
                fc_nearest_fill(s + (W - 1) * L, d + (h + nb) * L, n - h - nb, L);        \
        }                                                                                 \
    }
#define FC_NO_ATTR
FC_NEAREST_ROWS(fc_nearest_rows_portable, FC_NO_ATTR, fc_nearest_row_portable,
                fc_nearest_vrow_portable)
FC_NEAREST_ROWS(fc_nearest_rows_sse2, FC_NO_ATTR, fc_nearest_row_sse2, fc_nearest_vrow_portable)
#if FASTCNN_X86
FC_NEAREST_ROWS(fc_nearest_rows_avx2, FASTCNN_TARGET_AVX2, fc_nearest_row_avx2,
                fc_nearest_vrow_avx2)
#endif

/* x2 rows with streaming stores (n a multiple of 4, y 16-byte aligned); ends with sfence */
static void fc_nearest_rows_stream(const float *x, float *y, const ptrdiff_t *iy, long r0,
                                   long r1, long W, long n) {
    for (long r = r0; r < r1; r++)
        fc_nearest_row_stream_sse2(x + iy[r] * W, y + r * n, n);
    fc_sfence();
}

typedef void (*fc_nearest_rows_fn)(const float *x, float *y, const ptrdiff_t *iy, long r0,
                                   long r1, const fc_nearest_geom_t *g);

static fc_nearest_rows_fn fc_nearest_pick_rows(int isa) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2)            /* AVX-512 too: see the header comment */
        return fc_nearest_rows_avx2;
#endif
    if (isa < 0)            /* the plain C loops (tests reach them on x86 too) */
        return fc_nearest_rows_portable;
    return fc_nearest_rows_sse2;
}

#endif
