/* conv_nchwc_tile.h -- ISA template of the NCHWc direct convolution.
 * Included once per ISA by conv_nchwc.h with these macros defined:
 *   FC_SUF(name)  name suffixing (e.g. name##_avx2)
 *   FC_TGT        function target attribute
 *   FC_AVX        1: __m256 intrinsics, 0: plain C (fc_v8)
 *   FC_OCB_MAX    output-channel blocks in the register tile
 *   FC_P_MAX      output pixels (along W) in the register tile
 *
 * Register tile: acc[OCB][P] 8-float vectors.  Per input channel: OCB weight
 * vectors are loaded, then for each pixel one input scalar is broadcast and
 * OCB FMAs issued.  The tile walks (input-channel block, valid kd/kh rows,
 * kw range, 8 input channels); rows out of the image are skipped per output
 * row, kw taps out of the image are skipped per border pixel (P=1 tiles), so
 * interior tiles carry no bounds checks at all.
 */
#include "fc_vec_begin.h"

/* One register tile: OCB output-channel blocks x P consecutive output pixels
 * of one output row.  BLK=1: x is NCHWc (8 channels per block, contiguous);
 * BLK=0: x is plain NCHW (icb channels, stride s_in).  first: start from 0
 * (else accumulate into y); last: apply the fused epilogue. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fc_conv_tile)(
    const fc_conv_params *FC_RESTRICT p, const int OCB, const int P, const int BLK, const int SW1,
    const float *FC_RESTRICT xg, const float *FC_RESTRICT wt, long wocb, long cb0, long cb1,
    const long *FC_RESTRICT rowoff, const long *FC_RESTRICT rowk, long nrows,
    long ix0, long kw0, long kw1, float *FC_RESTRICT yt, const float *FC_RESTRICT rt, long ys,
    int first, int last, const float *const *bptr, const float *const *sptr, long oc0)
{
    VT acc[FC_OCB_MAX][FC_P_MAX];
    int o, q;
    const long s_in = p->id * p->ih * p->iw;
    const long unit = BLK ? 8 : 1;
    const long icn = BLK ? 8 : p->icb;
    const long ics = BLK ? 1 : s_in;
    const long pstep = (BLK && SW1) ? 8 : p->sw * unit;   /* constant for unit stride */
    const long kstep = p->dw * unit;
    const long wk = icn * 8;          /* floats per kernel tap in the weights */
    const long wcb = p->K * wk;       /* floats per input-channel block */
    long cb, r, kw, ic;

    if (first) {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 8")
            for (q = 0; q < P; q++) acc[o][q] = VZERO();
    } else {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 8")
            for (q = 0; q < P; q++) acc[o][q] = VLOAD(yt + o * ys + q * 8);
    }
    for (cb = cb0; cb < cb1; cb++) {
        const float *xc = xg + cb * s_in * 8;
        const float *wc = wt + cb * wcb;
        for (r = 0; r < nrows; r++) {
            const float *xr = xc + (rowoff[r] + ix0) * unit;
            const float *wr = wc + rowk[r] * wk;
            for (kw = kw0; kw < kw1; kw++) {
                const float *xp = xr + kw * kstep;
                const float *wp = wr + kw * wk;
                FC_PRAGMA_X(GCC unroll FC_IC_UNROLL)
                for (ic = 0; ic < icn; ic++) {
                    VT wv[FC_OCB_MAX];
                    _Pragma("GCC unroll 8")
                    for (o = 0; o < OCB; o++) wv[o] = VLOAD(wp + o * wocb + ic * 8);
                    _Pragma("GCC unroll 8")
                    for (q = 0; q < P; q++) {
                        VT b = VBCAST(xp + q * pstep + ic * ics);
                        _Pragma("GCC unroll 8")
                        for (o = 0; o < OCB; o++) acc[o][q] = VFMA(wv[o], b, acc[o][q]);
                    }
                }
            }
        }
    }
    if (!last) {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 8")
            for (q = 0; q < P; q++) VSTORE(yt + o * ys + q * 8, acc[o][q]);
        return;
    }
    _Pragma("GCC unroll 8")
    for (o = 0; o < OCB; o++) {
        VT bv = bptr[o] ? VLOAD(bptr[o]) : VZERO();
        _Pragma("GCC unroll 8")
        for (q = 0; q < P; q++) {
            VT v = VADD(acc[o][q], bv);
            if (rt) v = VADD(v, VLOAD(rt + o * ys + q * 8));
            FC_ACT_VEC(VT, VADD, VMUL, VMAX, VMIN, VFMA, VSET1, VZERO, VLOAD, v, &p->act, sptr[o]);
            VSTORE(yt + o * ys + q * 8, v);
        }
    }
    if (!fc_act_is_vector(p->act.kind)) {
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 8")
            for (q = 0; q < P; q++) {
                float *yy = yt + o * ys + q * 8;
                int l;
                for (l = 0; l < 8; l++) yy[l] = fastcnn_act_scalar(&p->act, yy[l], oc0 + o * 8 + l);
            }
    }
    if ((oc0 + OCB * 8) > p->M) {   /* zero the padding lanes of a partial block */
        _Pragma("GCC unroll 8")
        for (o = 0; o < OCB; o++)
            _Pragma("GCC unroll 8")
            for (q = 0; q < P; q++) {
                float *yy = yt + o * ys + q * 8;
                int l;
                for (l = 0; l < 8; l++)
                    if (oc0 + o * 8 + l >= p->M) yy[l] = 0.f;
            }
    }
}

#define FC_TILE_CASE(OCB_, P_, BLK_)                                                              \
    FC_SUF(fc_conv_tile)(p, OCB_, P_, BLK_, SW1_, xg, wt, wocb, cb0, cb1, rowoff, rowk, nrows, ix0, kw0, \
                         kw1, yt, rt, ys, first, last, bptr, sptr, oc0)

#define FC_TILE_P_SWITCH(OCB_, BLK_)                                       \
    switch (P) {                                                           \
    case 1: FC_TILE_CASE(OCB_, 1, BLK_); break;                            \
    case 2: if (FC_P_MAX >= 2) FC_TILE_CASE(OCB_, 2, BLK_); break;         \
    case 3: if (FC_P_MAX >= 3) FC_TILE_CASE(OCB_, 3, BLK_); break;         \
    case 4: if (FC_P_MAX >= 4) FC_TILE_CASE(OCB_, 4, BLK_); break;         \
    case 5: if (FC_P_MAX >= 5) FC_TILE_CASE(OCB_, 5, BLK_); break;         \
    case 6: if (FC_P_MAX >= 6) FC_TILE_CASE(OCB_, 6, BLK_); break;         \
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

#define SW1_ 0
static FC_TGT void FC_SUF(fc_conv_tile_blk)(
    const fc_conv_params *p, int OCB, int P, const float *xg, const float *wt, long wocb,
    long cb0, long cb1, const long *rowoff, const long *rowk, long nrows, long ix0, long kw0,
    long kw1, float *yt, const float *rt, long ys, int first, int last,
    const float *const *bptr, const float *const *sptr, long oc0)
{
    FC_TILE_OCB_SWITCH(1)
}

#undef SW1_
#define SW1_ 1
static FC_TGT void FC_SUF(fc_conv_tile_blk1)(
    const fc_conv_params *p, int OCB, int P, const float *xg, const float *wt, long wocb,
    long cb0, long cb1, const long *rowoff, const long *rowk, long nrows, long ix0, long kw0,
    long kw1, float *yt, const float *rt, long ys, int first, int last,
    const float *const *bptr, const float *const *sptr, long oc0)
{
    FC_TILE_OCB_SWITCH(1)
}

#undef SW1_
#define SW1_ 0
static FC_TGT void FC_SUF(fc_conv_tile_plain)(
    const fc_conv_params *p, int OCB, int P, const float *xg, const float *wt, long wocb,
    long cb0, long cb1, const long *rowoff, const long *rowk, long nrows, long ix0, long kw0,
    long kw1, float *yt, const float *rt, long ys, int first, int last,
    const float *const *bptr, const float *const *sptr, long oc0)
{
    FC_TILE_OCB_SWITCH(0)
}

/* One output row segment [ow0, ow1) of output-channel blocks [ocb0, ocb0+nocb)
 * (nocb <= FC_OCB_MAX, all in one group) at output (n, od_, oh_). */
static FC_TGT void FC_SUF(fc_conv_row)(const fc_conv_params *p, long n, long ocb0, long nocb,
                                        long od_, long oh_, long ow0, long ow1)
{
    long rowoff[FC_MAX_ROWS], rowk[FC_MAX_ROWS];
    float btmp[FC_OCB_MAX][8], stmp[FC_OCB_MAX][8];
    const float *bptr[FC_OCB_MAX], *sptr[FC_OCB_MAX];
    const long s_in = p->id * p->ih * p->iw, s_out = p->od * p->oh * p->ow;
    const long g = ocb0 / p->mbg;
    const float *xg;
    const float *wt = p->w + ocb0 * (p->cbg * p->K * p->icb * 8);
    const long wocb = p->cbg * p->K * p->icb * 8;
    const long ys = s_out * 8;
    float *y0 = p->y + ((n * p->Mb + ocb0) * s_out + (od_ * p->oh + oh_) * p->ow) * 8;
    const float *r0 = p->res ? p->res + ((n * p->Mb + ocb0) * s_out + (od_ * p->oh + oh_) * p->ow) * 8 : 0;
    const long oc0 = ocb0 * 8;
    long nrows = 0, kd, kh, o, cb0, ow, a, b, ow_lo, ow_hi;
    const long KW = p->kw;

    if (p->blocked) xg = p->x + (n * p->cb_total + g * p->cbg) * s_in * 8;
    else xg = p->x + n * p->icb * s_in;

    for (kd = 0; kd < p->kd; kd++) {
        long iz = od_ * p->sd - p->pd + kd * p->dd;
        if (iz < 0 || iz >= p->id) continue;
        for (kh = 0; kh < p->kh; kh++) {
            long iy = oh_ * p->sh - p->ph + kh * p->dh;
            if (iy < 0 || iy >= p->ih) continue;
            rowoff[nrows] = (iz * p->ih + iy) * p->iw;
            rowk[nrows] = (kd * p->kh + kh) * KW;
            nrows++;
        }
    }
    for (o = 0; o < nocb; o++) {
        long c = oc0 + o * 8, l;
        bptr[o] = 0;
        sptr[o] = 0;
        if (p->bias) {
            if (c + 8 <= p->M) bptr[o] = p->bias + c;
            else {
                for (l = 0; l < 8; l++) btmp[o][l] = (c + l < p->M) ? p->bias[c + l] : 0.f;
                bptr[o] = btmp[o];
            }
        }
        if (p->act.kind == FASTCNN_ACT_PRELU && p->act.slope) {
            if (c + 8 <= p->M) sptr[o] = p->act.slope + c;
            else {
                for (l = 0; l < 8; l++) stmp[o][l] = (c + l < p->M) ? p->act.slope[c + l] : 0.f;
                sptr[o] = stmp[o];
            }
        }
    }
    /* interior output columns: every kw tap inside the image */
    ow_lo = p->pw > 0 ? (p->pw + p->sw - 1) / p->sw : 0;
    {
        long num = p->iw - 1 + p->pw - (KW - 1) * p->dw;
        ow_hi = num < 0 ? 0 : num / p->sw + 1;
    }
    a = ow0 > ow_lo ? ow0 : ow_lo;
    b = ow1 < ow_hi ? ow1 : ow_hi;
    if (a > b) { a = ow0; b = ow0; }   /* no interior: all pixels go through the border path */

    for (cb0 = 0; cb0 < p->cbg; cb0 += p->cb_chunk) {
        long cb1 = cb0 + p->cb_chunk < p->cbg ? cb0 + p->cb_chunk : p->cbg;
        int first = cb0 == 0, last = cb1 == p->cbg;
        for (ow = ow0; ow < ow1;) {
            long ix0 = ow * p->sw - p->pw, kw0 = 0, kw1 = KW, np;
            if (ow >= a && ow < b) {
                np = b - ow;
                if (np > FC_P_MAX) np = FC_P_MAX;
            } else {
                np = 1;
                if (ix0 < 0) kw0 = (-ix0 + p->dw - 1) / p->dw;
                if (ix0 > p->iw - 1) kw1 = 0;
                else {
                    long m = (p->iw - 1 - ix0) / p->dw + 1;
                    if (m < kw1) kw1 = m;
                }
                if (kw1 < kw0) kw1 = kw0;
            }
            if (p->blocked && p->sw == 1)
                FC_SUF(fc_conv_tile_blk1)(p, (int)nocb, (int)np, xg, wt, wocb, cb0, cb1, rowoff, rowk,
                                          nrows, ix0, kw0, kw1, y0 + ow * 8,
                                          r0 ? r0 + ow * 8 : 0, ys, first, last, bptr, sptr, oc0);
            else if (p->blocked)
                FC_SUF(fc_conv_tile_blk)(p, (int)nocb, (int)np, xg, wt, wocb, cb0, cb1, rowoff, rowk,
                                         nrows, ix0, kw0, kw1, y0 + (ow - 0) * 8,
                                         r0 ? r0 + ow * 8 : 0, ys, first, last, bptr, sptr, oc0);
            else
                FC_SUF(fc_conv_tile_plain)(p, (int)nocb, (int)np, xg, wt, wocb, cb0, cb1, rowoff, rowk,
                                           nrows, ix0, kw0, kw1, y0 + ow * 8,
                                           r0 ? r0 + ow * 8 : 0, ys, first, last, bptr, sptr, oc0);
            ow += np;
        }
    }
}

#include "fc_vec_end.h"
#undef FC_TILE_CASE
#undef FC_TILE_P_SWITCH
#undef FC_TILE_OCB_SWITCH
#undef SW1_
