/* interleave_plain.h -- one output row of a transposed convolution's stride phases,
 * from channel-blocked phase buffers to plain NCHW channel rows.
 *
 * sw phases each hold qw[r] pixels of one 8-channel block (src[r][q * 8 + l], lanes
 * contiguous); output column rw + q * sw of channel row l (dst + l * cs) takes phase
 * rw's pixel q.  The scalar loop walks the phase side with a 32-byte stride and the
 * destination with an sw-float one (a tenth of the bandwidth the copy can have); the
 * AVX2 variant moves 8 pixels x 8 channels per phase through the in-register 8x8
 * transpose of reorder.h and, for sw == 2, zips the two phases' channel vectors so
 * each channel row gets 16 contiguous floats per step.
 */
#ifndef FASTCNN_INTERLEAVE_PLAIN_H
#define FASTCNN_INTERLEAVE_PLAIN_H

#include "cpu.h"
#include "reorder.h"

/* phases rw: src[rw] (pixel step sstep[rw]: 8, or 0 for a constant phase), qw[rw] pixels;
 * dst: channel 0's row, channel rows cs floats apart; nl <= 8 real channels */
static void fc_il_plain_row_portable(const float *const *src, const long *sstep,
                                     const long *qw, long sw, float *dst, long cs,
                                     long nl, long q0) {
    for (long rw = 0; rw < sw; rw++)
        for (long l = 0; l < nl; l++) {
            float *d = dst + l * cs + rw;
            const float *s = src[rw] + l;
            for (long q = q0; q < qw[rw]; q++)
                d[q * sw] = s[q * sstep[rw]];
        }
}

#if FASTCNN_X86
FASTCNN_TARGET_AVX2 static void fc_il_plain_row_avx2(const float *const *src, const long *sstep,
                                                      const long *qw, long sw, float *dst,
                                                      long cs, long nl, long q0) {
    long q = q0, n;
    __m256 a[8], b[8];
    if (sw > 2 || sstep[0] != 8 || (sw == 2 && sstep[1] != 8)) {
        fc_il_plain_row_portable(src, sstep, qw, sw, dst, cs, nl, q0);
        return;
    }
    n = sw == 2 && qw[1] < qw[0] ? qw[1] : qw[0];
    for (; q + 8 <= n; q += 8) {
        for (int i = 0; i < 8; i++) a[i] = _mm256_loadu_ps(src[0] + (q + i) * 8);
        fc_tr8x8(a);
        if (sw == 1) {
            for (long l = 0; l < nl; l++) _mm256_storeu_ps(dst + l * cs + q, a[l]);
            continue;
        }
        for (int i = 0; i < 8; i++) b[i] = _mm256_loadu_ps(src[1] + (q + i) * 8);
        fc_tr8x8(b);
        for (long l = 0; l < nl; l++) {
            /* a0 b0 a1 b1 | a4 b4 a5 b5  and  a2 b2 a3 b3 | a6 b6 a7 b7 */
            const __m256 lo = _mm256_unpacklo_ps(a[l], b[l]), hi = _mm256_unpackhi_ps(a[l], b[l]);
            float *d = dst + l * cs + 2 * q;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_storeu_ps(d + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
        }
    }
    if (q < qw[0] || (sw == 2 && q < qw[1]))
        fc_il_plain_row_portable(src, sstep, qw, sw, dst, cs, nl, q);
}
#endif

static void fc_il_plain_row(int isa, const float *const *src, const long *sstep, const long *qw,
                            long sw, float *dst, long cs, long nl) {
#if FASTCNN_X86
    if (isa >= FASTCNN_ISA_AVX2) {
        fc_il_plain_row_avx2(src, sstep, qw, sw, dst, cs, nl, 0);
        return;
    }
#endif
    (void)isa;
    fc_il_plain_row_portable(src, sstep, qw, sw, dst, cs, nl, 0);
}

#endif
