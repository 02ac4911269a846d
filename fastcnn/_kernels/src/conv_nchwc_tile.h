/* conv_nchwc_tile.h -- ISA template of the NCHWc direct convolution.
 * Included once per ISA by conv_nchwc.h with these macros defined:
 *   FC_SUF(name)  name suffixing (e.g. name##_avx2)
 *   FC_TGT        function target attribute
 *   FC_AVX        1: __m256 intrinsics, 0: plain C (fc_v8)
 *   FC_OCB_MAX    register columns of the tile (output-channel blocks, or pairs of them)
 *   FC_LANES      8, or 16 (AVX-512 only): one zmm register holds two adjacent output-
 *                 channel blocks of a pixel (planes 2o and 2o+1 of the tile) and the weights
 *                 are packed in pairs, [pairs, cbg, K, 8, 16] -- twice the work per tile
 *                 for the same per-tile costs (setup, epilogue, pipeline fill)
 *   FC_P_MAX      output pixels in the register tile (at most 12)
 *
 * Register tile: acc[OCB][P] 8-float vectors.  Per input channel: OCB weight
 * vectors are loaded, then for each pixel one input scalar is broadcast and
 * OCB FMAs issued.  The P pixels of a tile are any P output pixels that share
 * one set of in-image kernel taps (a "tap class"); each has its own input and
 * output offset, so a tile may run along a row, down a border column, or
 * across the end of one row into the next.  The tile walks (input-channel
 * block, valid kd/kh rows, valid kw range, 8 input channels) with no bounds
 * checks: taps outside the image are never visited (not multiplied by zeros).
 *
 * A work unit is a rectangle of output rows x columns (fc_conv_rect).  Its
 * rows are grouped in runs with equal valid kd/kh ranges, its columns in runs
 * with equal valid kw range (with dilation d and stride s, runs of about d/s
 * border pixels share one); every (row run x column run) block is one tap
 * class, cut into ceil(n/P_MAX) tiles of balanced size.  So border pixels run
 * in tiles as wide as interior ones (a border column of R rows is one tile),
 * a map with no interior at all (dilation 18 on 33 columns) runs full tiles,
 * and rows whose width is not a multiple of P_MAX leave no small remainder
 * tiles (7 columns: tiles of 5..6 across rows, not 6 + 1).
 */
#include "fc_vec_begin.h"
#ifndef FC_LANES
#define FC_LANES 8
#endif
/* Register column o of a tile at pixel offset off, in output-like buffer B (y or the
 * residual): one block plane, or (16 lanes) planes 2o and 2o+1, the upper one only when
 * it exists (HI: the tile's last column may hold one block). */
#if FC_LANES == 16
#define YLOAD(B, o, off, HI)                                                              \
    ((HI) ? _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps((B) + 2 * (o) * ys + (off))), \
                               _mm256_loadu_ps((B) + (2 * (o) + 1) * ys + (off)), 1)                \
          : _mm512_castps256_ps512(_mm256_loadu_ps((B) + 2 * (o) * ys + (off))))
#define YSTORE(B, o, off, HI, v)                                                          \
    do {                                                                                  \
        _mm256_storeu_ps((B) + 2 * (o) * ys + (off), _mm512_castps512_ps256(v));         \
        if (HI) _mm256_storeu_ps((B) + (2 * (o) + 1) * ys + (off), _mm512_extractf32x8_ps((v), 1)); \
    } while (0)
#else
#define YLOAD(B, o, off, HI) VLOAD((B) + (o) * ys + (off))
#define YSTORE(B, o, off, HI, v) VSTORE((B) + (o) * ys + (off), (v))
#endif

/* acc += a * b on a register accumulator.  With AVX the FMA is one inline asm
 * instruction in its 231 form: GCC 12 otherwise picks the 132/213 forms that
 * overwrite an input, rotates the 24 accumulators through other registers and
 * spills (55 extra vmovaps per 192 FMAs in the fully unrolled 4x6 tile). */
#if FC_AVX
#define VFMA_ACC(acc, a, b) __asm__("vfmadd231ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
#else
#define VFMA_ACC(acc, a, b) ((acc) = fcp_fma((a), (b), (acc)))
#endif

/* One register tile: OCB output-channel blocks x P output pixels of one tap
 * class.  BLK=1: x is NCHWc (8 channels per block, contiguous); BLK=0: x is
 * plain NCHW (icb channels, stride s_in).  xo[q]: offset (floats) in one
 * input channel block of pixel q's tap (0,0,0) -- possibly outside the image,
 * only valid taps are added to it; yo[q]: offset (floats) of pixel q in an
 * output block.  first: start from 0 (else accumulate into y); last: apply
 * the fused epilogue. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fc_conv_tile)(
    const fc_conv_params *FC_RESTRICT p, const int OCB, const int P, const int BLK,
    const float *FC_RESTRICT xg, const float *FC_RESTRICT wt, long wocb, long cb0, long cb1,
    const long *FC_RESTRICT rowoff, const long *FC_RESTRICT rowk, long nrows, long kw0, long kw1,
    const long *FC_RESTRICT xo, const long *FC_RESTRICT yo, float *FC_RESTRICT yt,
    const float *FC_RESTRICT rt, long ys, int first, int last, const float *const *bptr,
    const float *const *sptr, long oc0, const char *pf, long *pf_n, int nblk)
{
    VT acc[FC_OCB_MAX][FC_P_MAX];
    /* (16 lanes) whether the upper half of column o is a real block */
#define HI_OK(o) (FC_LANES == 8 || (o) < OCB - 1 || nblk == 2 * OCB)
    long pfi = 0;
    const long pfn = *pf_n;
    long xq[FC_P_MAX];
    int o, q;
    const long s_in = p->id * p->ih * p->iw;
    const long icn = BLK ? 8 : p->icb;
    const long ics = BLK ? 1 : s_in;
    const long kstep = BLK ? p->dw * 8 : p->dw;
    const long wk = icn * FC_LANES;   /* floats per kernel tap in the weights */
    const long wcb = p->K * wk;       /* floats per input-channel block */
    const long cstride = s_in * 8;    /* floats per input channel block (blocked) */
    long cb, r, kw, ic;

    _Pragma("GCC unroll 12")
    for (q = 0; q < P; q++) xq[q] = xo[q];
    if (first) {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 12")
            for (q = 0; q < P; q++) acc[o][q] = VZERO();
    } else {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 12")
            for (q = 0; q < P; q++) acc[o][q] = YLOAD(yt, o, yo[q], HI_OK(o));
    }
    /* taps outer, input-channel blocks inner: moving to the next block or tap
     * is one add per pointer (the setup is paid once per kernel row) */
    for (r = 0; r < nrows; r++) {
        const long xoff = cb0 * cstride + rowoff[r] + kw0 * kstep;
        const long woff = cb0 * wcb + (rowk[r] + kw0) * wk;
        const long xback = kstep - (cb1 - cb0) * cstride, wback = wk - (cb1 - cb0) * wcb;
        const float *xs[FC_P_MAX], *ws[FC_OCB_MAX];
        _Pragma("GCC unroll 12")
        for (q = 0; q < P; q++) xs[q] = xg + (xq[q] + xoff);
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++) ws[o] = wt + o * wocb + woff;
#define FC_TILE_IC_BODY(IC)                                                       \
        do {                                                                      \
            VT wv[FC_OCB_MAX];                                                    \
            _Pragma("GCC unroll 8")                                               \
            for (o = 0; o < OCB; o++) wv[o] = VLOAD(ws[o] + (IC) * FC_LANES);     \
            _Pragma("GCC unroll 12")                                               \
            for (q = 0; q < P; q++) {                                             \
                VT b = VBCAST(xs[q] + (IC) * ics);                                \
                _Pragma("GCC unroll 8")                                           \
                for (o = 0; o < OCB; o++) VFMA_ACC(acc[o][q], wv[o], b);          \
            }                                                                     \
        } while (0)
        if (BLK) {
            for (kw = kw0; kw < kw1; kw++) {
                for (cb = cb0; cb < cb1; cb++) {
                    /* the next chunk's weights, four lines per block step (see fc_conv_rect) */
                    if (pfi < pfn) {
                        FC_PREFETCH_L2(pf + pfi * 64);
                        FC_PREFETCH_L2(pf + pfi * 64 + 64);
                        FC_PREFETCH_L2(pf + pfi * 64 + 128);
                        FC_PREFETCH_L2(pf + pfi * 64 + 192);
                        pfi += 4;
                    }
                    FC_PRAGMA_X(GCC unroll FC_IC_UNROLL)
                    for (ic = 0; ic < 8; ic++) FC_TILE_IC_BODY(ic);
                    _Pragma("GCC unroll 8")
                    for (o = 0; o < OCB; o++) ws[o] += wcb;
                    _Pragma("GCC unroll 12")
                    for (q = 0; q < P; q++) xs[q] += cstride;
                }
                _Pragma("GCC unroll 8")
                for (o = 0; o < OCB; o++) ws[o] += wback;
                _Pragma("GCC unroll 12")
                for (q = 0; q < P; q++) xs[q] += xback;
            }
        } else {
            /* plain input: one channel "block" of icn channels s_in apart; the
             * weights of consecutive (kw, ic) are contiguous */
            if (icn == 3) {   /* RGB: straight-line channels, no inner loop */
                for (kw = kw0; kw < kw1; kw++) {
                    FC_TILE_IC_BODY(0);
                    FC_TILE_IC_BODY(1);
                    FC_TILE_IC_BODY(2);
                    _Pragma("GCC unroll 8")
                    for (o = 0; o < OCB; o++) ws[o] += wk;
                    _Pragma("GCC unroll 12")
                    for (q = 0; q < P; q++) xs[q] += kstep;
                }
            } else {
                for (kw = kw0; kw < kw1; kw++) {
                    for (ic = 0; ic < icn; ic++) FC_TILE_IC_BODY(ic);
                    _Pragma("GCC unroll 8")
                    for (o = 0; o < OCB; o++) ws[o] += wk;
                    _Pragma("GCC unroll 12")
                    for (q = 0; q < P; q++) xs[q] += kstep;
                }
            }
        }
#undef FC_TILE_IC_BODY
    }
    *pf_n = pfi < pfn ? pfi : pfn;
    if (!last) {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 12")
            for (q = 0; q < P; q++) YSTORE(yt, o, yo[q], HI_OK(o), acc[o][q]);
        return;
    }
    /* epilogue: one switch per tile, the activation inlined in each case */
#define FC_EPI_LOOP(STMT)                                                             \
    do {                                                                              \
        _Pragma("GCC unroll 8")                                                       \
        for (o = 0; o < OCB; o++) {                                                   \
            const VT bv = bptr[o] ? VLOAD(bptr[o]) : VZERO();                         \
            _Pragma("GCC unroll 12")                                                   \
            for (q = 0; q < P; q++) {                                                 \
                VT v = VADD(acc[o][q], bv);                                           \
                if (rt) v = VADD(v, YLOAD(rt, o, yo[q], HI_OK(o)));                   \
                STMT;                                                                 \
                YSTORE(yt, o, yo[q], HI_OK(o), v);                                    \
            }                                                                         \
        }                                                                             \
    } while (0)
    {
        const fastcnn_act_t *a = &p->act;
        const VT zero = VZERO();
        switch (a->kind) {
        case FASTCNN_ACT_RELU: FC_EPI_LOOP(v = VMAX(v, zero)); break;
        case FASTCNN_ACT_CLIP: {
            const VT lo = VSET1(a->p0), hi = VSET1(a->p1);
            FC_EPI_LOOP(v = VMIN(VMAX(v, lo), hi));
            break;
        }
        case FASTCNN_ACT_LEAKY_RELU: {
            const VT al = VSET1(a->p0);
            FC_EPI_LOOP(v = VADD(VMAX(v, zero), VMUL(al, VMIN(v, zero))));
            break;
        }
        case FASTCNN_ACT_HARD_SIGMOID: {
            const VT al = VSET1(a->p0), be = VSET1(a->p1), one = VSET1(1.f);
            FC_EPI_LOOP(v = VMIN(VMAX(VFMA(v, al, be), zero), one));
            break;
        }
        case FASTCNN_ACT_HARD_SWISH: {
            const VT sixth = VSET1(1.f / 6.f), half = VSET1(0.5f), one = VSET1(1.f);
            FC_EPI_LOOP(v = VMUL(v, VMIN(VMAX(VFMA(v, sixth, half), zero), one)));
            break;
        }
        case FASTCNN_ACT_PRELU:
            FC_EPI_LOOP(v = VADD(VMAX(v, zero), VMUL(VLOAD(sptr[o]), VMIN(v, zero))));
            break;
        default: FC_EPI_LOOP((void)0); break;   /* none, or scalar kinds below */
        }
    }
#undef FC_EPI_LOOP
    /* transcendental kinds: applied by fc_conv_rect over whole row spans (fc_act_span) */
    if ((oc0 + nblk * 8) > p->M) {   /* zero the padding lanes of a partial block */
        for (o = 0; o < nblk; o++)
            _Pragma("GCC unroll 12")
            for (q = 0; q < P; q++) {
                float *yy = yt + o * ys + yo[q];
                int l;
                for (l = 0; l < 8; l++)
                    if (oc0 + o * 8 + l >= p->M) yy[l] = 0.f;
            }
    }
#undef HI_OK
}

#define FC_TILE_CASE(OCB_, P_, BLK_)                                                              \
    FC_SUF(fc_conv_tile)(p, OCB_, P_, BLK_, xg, wt, wocb, cb0, cb1, rowoff, rowk, nrows, kw0, kw1, \
                         xo, yo, yt, rt, ys, first, last, bptr, sptr, oc0, pf, pf_n, nblk)

#define FC_TILE_P_SWITCH(OCB_, BLK_)                                       \
    switch (P) {                                                           \
    case 1: FC_TILE_CASE(OCB_, 1, BLK_); break;                            \
    case 2: if (FC_P_MAX >= 2) FC_TILE_CASE(OCB_, 2, BLK_); break;         \
    case 3: if (FC_P_MAX >= 3) FC_TILE_CASE(OCB_, 3, BLK_); break;         \
    case 4: if (FC_P_MAX >= 4) FC_TILE_CASE(OCB_, 4, BLK_); break;         \
    case 5: if (FC_P_MAX >= 5) FC_TILE_CASE(OCB_, 5, BLK_); break;         \
    case 6: if (FC_P_MAX >= 6) FC_TILE_CASE(OCB_, 6, BLK_); break;         \
    case 7: if (FC_P_MAX >= 7) FC_TILE_CASE(OCB_, 7, BLK_); break;         \
    case 8: if (FC_P_MAX >= 8) FC_TILE_CASE(OCB_, 8, BLK_); break;         \
    case 9: if (FC_P_MAX >= 9) FC_TILE_CASE(OCB_, 9, BLK_); break;         \
    case 10: if (FC_P_MAX >= 10) FC_TILE_CASE(OCB_, 10, BLK_); break;        \
    case 11: if (FC_P_MAX >= 11) FC_TILE_CASE(OCB_, 11, BLK_); break;        \
    case 12: if (FC_P_MAX >= 12) FC_TILE_CASE(OCB_, 12, BLK_); break;        \
    default: break;                                                        \
    }

#define FC_TILE_OCB_SWITCH(BLK_)                                           \
    switch (OCB) {                                                         \
    case 1: FC_TILE_P_SWITCH(1, BLK_); break;                              \
    case 2: if (FC_OCB_MAX >= 2) { FC_TILE_P_SWITCH(2, BLK_); } break;     \
    case 3: if (FC_OCB_MAX >= 3) { FC_TILE_P_SWITCH(3, BLK_); } break;     \
    case 4: if (FC_OCB_MAX >= 4) { FC_TILE_P_SWITCH(4, BLK_); } break;     \
    default: break;                                                        \
    }

static FC_TGT void FC_SUF(fc_conv_tile_blk)(
    const fc_conv_params *p, int OCB, int P, const float *xg, const float *wt, long wocb,
    long cb0, long cb1, const long *rowoff, const long *rowk, long nrows, long kw0, long kw1,
    const long *xo, const long *yo, float *yt, const float *rt, long ys, int first, int last,
    const float *const *bptr, const float *const *sptr, long oc0, const char *pf, long *pf_n,
    int nblk)
{
    FC_TILE_OCB_SWITCH(1)
}

static FC_TGT void FC_SUF(fc_conv_tile_plain)(
    const fc_conv_params *p, int OCB, int P, const float *xg, const float *wt, long wocb,
    long cb0, long cb1, const long *rowoff, const long *rowk, long nrows, long kw0, long kw1,
    const long *xo, const long *yo, float *yt, const float *rt, long ys, int first, int last,
    const float *const *bptr, const float *const *sptr, long oc0, const char *pf, long *pf_n,
    int nblk)
{
    FC_TILE_OCB_SWITCH(0)
}

/* Valid tap range [*k0, *k1) of a kernel dim (size k, dilation d) for an
 * output whose tap 0 sits at input index i0 of an input of size n. */
FC_ALWAYS_INLINE void FC_SUF(fc_tap_range)(long i0, long k, long d, long n, long *k0, long *k1)
{
    long a = 0, b = k;
    if (i0 < 0) a = (-i0 + d - 1) / d;
    if (i0 > n - 1) b = 0;
    else {
        long m = (n - 1 - i0) / d + 1;
        if (m < b) b = m;
    }
    if (b < a) b = a;
    *k0 = a;
    *k1 = b;
}

/* The transcendental activations (fc_act_is_vector() == 0) over n contiguous floats, with
 * the branch-free loops of transc.h vectorized at this ISA's width.  Kept out of line and
 * applied to a work unit's finished row spans: inside the large tile function GCC would
 * not vectorize them. */
static FC_TGT __attribute__((noinline)) void FC_SUF(fc_act_span)(float *y, long n,
                                                                  const fastcnn_act_t *a)
{
    long i;
    if (!fc_transc_body(y, y, n, a->kind, a->p0, a->p1))
        for (i = 0; i < n; i++) y[i] = fastcnn_act_scalar(a, y[i], 0);
}

/* One work unit: output rows [r0, r1) (flattened od*oh + oh) x columns
 * [c0, c1) for output-channel blocks [ocb0, ocb0+nocb) (nocb <= FC_OCB_MAX * FC_LANES / 8,
 * all in one group; with 16 lanes ocb0 is even within its group) of image n.  r1 - r0 <= FC_RECT_ROWS, c1 - c0 <= FC_RECT_COLS.
 * The row runs, column runs and per-row offsets are computed once here (they
 * need divisions); the input-channel chunk passes only walk them. */
static FC_TGT void FC_SUF(fc_conv_rect)(const fc_conv_params *p, long n, long ocb0, long nocb,
                                         long r0, long r1, long c0, long c1)
{
    long rowoff[FC_MAX_ROWS], rowk[FC_MAX_ROWS];
    long xo[FC_P_MAX], yo[FC_P_MAX];
    long rrun[FC_RECT_ROWS][5];         /* row runs: end row, kd0, kd1, kh0, kh1 */
    long crun[FC_RECT_COLS][3];         /* column runs: end column, kw0, kw1 */
    long xrow[FC_RECT_ROWS];            /* input offset of tap (0,0,0) at column 0, per row */
    float btmp[FC_OCB_MAX][FC_LANES], stmp[FC_OCB_MAX][FC_LANES];
    const float *bptr[FC_OCB_MAX], *sptr[FC_OCB_MAX];
    const long s_in = p->id * p->ih * p->iw, s_out = p->od * p->oh * p->ow;
    const long g = ocb0 / p->mbg;
    const long unit = p->blocked ? 8 : 1;
    const float *xg;
    /* register columns, the weights of one, and where this tile's start */
    const long nreg = (nocb * 8 + FC_LANES - 1) / FC_LANES;
    const long wocb = p->cbg * p->K * p->icb * FC_LANES;
    const long reg0 = FC_LANES == 8 ? ocb0 : g * p->mbg2 + (ocb0 - g * p->mbg) / 2;
    const long nreg_all = FC_LANES == 8 ? p->Mb : (p->Mb / p->mbg) * p->mbg2;
    const float *wt = p->w + reg0 * wocb;
    const long ys = s_out * 8;
    float *yt = p->y + (n * p->Mb + ocb0) * s_out * 8;
    const float *rt = p->res ? p->res + (n * p->Mb + ocb0) * s_out * 8 : 0;
    const long oc0 = ocb0 * 8;
    const long KH = p->kh, KW = p->kw, xcs = p->sw * unit, ow_ = p->ow;
    const long wcb = p->K * p->icb * FC_LANES;   /* floats per input-channel block of a column */
    long o, cb0, r, c, nrr = 0, ncr = 0, ntl = 0;

    if (p->blocked) xg = p->x + (n * p->cb_total + g * p->cbg) * s_in * 8;
    else xg = p->x + n * p->icb * s_in;

    for (o = 0; o < nreg; o++) {
        long cc = oc0 + o * FC_LANES, l;
        bptr[o] = 0;
        sptr[o] = 0;
        if (p->bias) {
            if (cc + FC_LANES <= p->M) bptr[o] = p->bias + cc;
            else {
                for (l = 0; l < FC_LANES; l++) btmp[o][l] = (cc + l < p->M) ? p->bias[cc + l] : 0.f;
                bptr[o] = btmp[o];
            }
        }
        if (p->act.kind == FASTCNN_ACT_PRELU && p->act.slope) {
            if (cc + FC_LANES <= p->M) sptr[o] = p->act.slope + cc;
            else {
                for (l = 0; l < FC_LANES; l++)
                    stmp[o][l] = (cc + l < p->M) ? p->act.slope[cc + l] : 0.f;
                sptr[o] = stmp[o];
            }
        }
    }
    /* runs of rows with equal valid kd/kh ranges; input offset of each row */
    for (r = r0; r < r1; r++) {
        const long od_ = r / p->oh, oh_ = r % p->oh;
        const long iz = od_ * p->sd - p->pd, iy = oh_ * p->sh - p->ph;
        long a0, a1, b0, b1;
        FC_SUF(fc_tap_range)(iz, p->kd, p->dd, p->id, &a0, &a1);
        FC_SUF(fc_tap_range)(iy, KH, p->dh, p->ih, &b0, &b1);
        xrow[r - r0] = ((iz * p->ih + iy) * p->iw - p->pw) * unit;
        if (nrr == 0 || rrun[nrr - 1][1] != a0 || rrun[nrr - 1][2] != a1 ||
            rrun[nrr - 1][3] != b0 || rrun[nrr - 1][4] != b1) {
            rrun[nrr][1] = a0;
            rrun[nrr][2] = a1;
            rrun[nrr][3] = b0;
            rrun[nrr][4] = b1;
            nrr++;
        }
        rrun[nrr - 1][0] = r + 1;
    }
    /* runs of columns with equal valid kw range: the interior [lo, hi) (every
     * tap inside) is one run, border columns are classified one by one */
    {
        long lo = p->pw > 0 ? (p->pw + p->sw - 1) / p->sw : 0, hi;
        long num = p->iw - 1 + p->pw - (KW - 1) * p->dw;
        hi = num < 0 ? 0 : num / p->sw + 1;
        if (hi < lo) hi = lo;
        for (c = c0; c < c1;) {
            long a0 = 0, a1 = KW, e;
            if (c >= lo && c < hi) e = hi < c1 ? hi : c1;
            else {
                FC_SUF(fc_tap_range)(c * p->sw - p->pw, KW, p->dw, p->iw, &a0, &a1);
                e = c + 1;
            }
            if (ncr == 0 || crun[ncr - 1][1] != a0 || crun[ncr - 1][2] != a1) {
                crun[ncr][1] = a0;
                crun[ncr][2] = a1;
                ncr++;
            }
            crun[ncr - 1][0] = e;
            c = e;
        }
    }

    /* tiles per chunk pass (the same for every chunk) */
    {
        long ir, jc, ra = r0;
        for (ir = 0; ir < nrr; ir++) {
            long ca = c0;
            for (jc = 0; jc < ncr; jc++) {
                ntl += ((rrun[ir][0] - ra) * (crun[jc][0] - ca) + FC_P_MAX - 1) / FC_P_MAX;
                ca = crun[jc][0];
            }
            ra = rrun[ir][0];
        }
    }

    for (cb0 = 0; cb0 < p->cbg; cb0 += p->cb_chunk) {
        const long cb1 = cb0 + p->cb_chunk < p->cbg ? cb0 + p->cb_chunk : p->cbg;
        const int first = cb0 == 0, last = cb1 == p->cbg;
        long ir, ra = r0;
        /* The weights of the next chunk (after the last chunk: the first chunk of the
         * next oc tile, which follows in memory and is usually this thread's next work
         * item) are prefetched into L2 while this chunk's tiles run from L2, spread over
         * the first 3/4 of the tiles.  Without it the first tile of every chunk waits on
         * DRAM: a ResNet's 45 MB of weights do not stay in L3 from run to run, and the
         * 512-channel 7x7 layers (9.4 MB each) ran 25% slower than with hot weights. */
        const float *pfb[FC_OCB_MAX];
        long pf_nreg = 0, pf_lines = 0, pf_rg = 0, pf_ln = 0, pf_per = 0;
        if (!last) {
            const long nxt = (cb1 + p->cb_chunk < p->cbg ? cb1 + p->cb_chunk : p->cbg) - cb1;
            for (o = 0; o < nreg; o++) pfb[o] = wt + o * wocb + cb1 * wcb;
            pf_nreg = nreg;
            pf_lines = (nxt * wcb * 4 + 63) / 64;
        } else {
            for (o = 0; o < nreg && reg0 + nreg + o < nreg_all; o++)
                pfb[o] = wt + (nreg + o) * wocb;
            pf_nreg = o;
            pf_lines = ((p->cb_chunk < p->cbg ? p->cb_chunk : p->cbg) * wcb * 4 + 63) / 64;
        }
        if (pf_nreg > 0) {
            const long spread = ntl > 1 ? (3 * ntl + 3) / 4 : 1;
            pf_per = (pf_nreg * pf_lines + spread - 1) / spread;
        }
        for (ir = 0; ir < nrr; ir++) {
            const long rb = rrun[ir][0];
            const long kd0 = rrun[ir][1], kd1 = rrun[ir][2], kh0 = rrun[ir][3], kh1 = rrun[ir][4];
            long nrows = 0, kd, kh, jc, ca = c0;
            for (kd = kd0; kd < kd1; kd++)
                for (kh = kh0; kh < kh1; kh++) {
                    rowoff[nrows] = ((kd * p->dd) * p->ih + kh * p->dh) * p->iw * unit;
                    rowk[nrows] = (kd * KH + kh) * KW;
                    nrows++;
                }
            for (jc = 0; jc < ncr; jc++) {
                /* block rows [ra, rb) x columns [ca, cz): one tap class, pixels
                 * row-major, cut into balanced tiles */
                const long cz = crun[jc][0], kw0 = crun[jc][1], kw1 = crun[jc][2];
                const long npix = (rb - ra) * (cz - ca);
                const long ntile = (npix + FC_P_MAX - 1) / FC_P_MAX;
                /* balanced: the first npix % ntile tiles take one pixel more.  Offsets and
                 * the prefetch position advance incrementally -- with few input channels
                 * (a 16 -> 64 pointwise conv) the divisions and reloads of p->ow here were
                 * a tenth of the time */
                const long tq = ntile ? npix / ntile : 0, tr = ntile ? npix % ntile : 0;
                long t, rr = ra, cc = ca;
                long xr = xrow[ra - r0], yr = ra * ow_ * 8;
                for (t = 0; t < ntile; t++) {
                    const int np = (int)(tq + (t < tr));
                    int k;
                    for (k = 0; k < np; k++) {
                        xo[k] = xr + cc * xcs;
                        yo[k] = yr + cc * 8;
                        if (++cc == cz) {
                            cc = ca;
                            rr++;
                            yr += ow_ * 8;
                            if (rr < rb) xr = xrow[rr - r0];
                        }
                    }
                    /* this tile's share of the prefetch, within one region */
                    const char *pf = 0;
                    long pf_n = 0;
                    if (pf_rg < pf_nreg) {
                        pf = (const char *)pfb[pf_rg] + pf_ln * 64;
                        pf_n = pf_lines - pf_ln < pf_per ? pf_lines - pf_ln : pf_per;
                    }
                    if (!p->blocked)
                        FC_SUF(fc_conv_tile_plain)(p, (int)nreg, np, xg, wt, wocb, cb0, cb1, rowoff,
                                                   rowk, nrows, kw0, kw1, xo, yo, yt, rt, ys, first,
                                                   last, bptr, sptr, oc0, pf, &pf_n, (int)nocb);
                    else
                        FC_SUF(fc_conv_tile_blk)(p, (int)nreg, np, xg, wt, wocb, cb0, cb1, rowoff,
                                                 rowk, nrows, kw0, kw1, xo, yo, yt, rt, ys, first,
                                                 last, bptr, sptr, oc0, pf, &pf_n, (int)nocb);
                    pf_ln += pf_n;
                    if (pf_ln >= pf_lines) { pf_rg++; pf_ln = 0; }
                }
                ca = cz;
            }
            ra = rb;
        }
    }
    if (!fc_act_is_vector(p->act.kind)) {
        /* y = act(acc + bias + residual) for the transcendental kinds, row span by row span
         * while the unit's output is still in cache; padding lanes back to 0 after */
        for (o = 0; o < nocb; o++) {
            const int partial = oc0 + o * 8 + 8 > p->M;
            for (r = r0; r < r1; r++) {
                float *ys0 = yt + o * ys + (r * p->ow + c0) * 8;
                FC_SUF(fc_act_span)(ys0, (c1 - c0) * 8, &p->act);
                if (partial) {
                    long q, l;
                    for (q = 0; q < c1 - c0; q++)
                        for (l = p->M - (oc0 + o * 8); l < 8; l++) ys0[q * 8 + l] = 0.f;
                }
            }
        }
    }
}

#include "fc_vec_end.h"
#undef YLOAD
#undef YSTORE
#undef FC_LANES
#undef VFMA_ACC
#undef FC_TILE_CASE
#undef FC_TILE_P_SWITCH
#undef FC_TILE_OCB_SWITCH
