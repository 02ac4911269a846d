/* pool_nchwc_tile.h -- ISA template of the NCHWc pooling rows (see pool_simd.h).
 * Included once per ISA with FC_SUF(name), FC_TGT and FC_AVX defined. */
#include "fc_vec_begin.h"
#if FC_AVX
#define VABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.f), (a))
#define VSQRT(a) _mm256_sqrt_ps(a)
#else
#define VABS(a) fcpool_p_abs(a)
#define VSQRT(a) fcpool_p_sqrt(a)
#endif

/* P consecutive output pixels of one row: taps (kz, ky) over the clamped
 * ranges, kx over [kx0, kx1).  xo: the input at the first pixel's window
 * origin (may point before the row: only in-range taps are read). */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_tile)(
    const int R, const int P, const float *FC_RESTRICT xo, const fcpool_geom_t *g,
    long kz0, long kz1, long ky0, long ky1, long kx0, long kx1, float scale,
    float *FC_RESTRICT y)
{
    VT acc[8];
    int q;
    const long sz = g->dd * g->ih * g->iw * FCPOOL_B, sy = g->dh * g->iw * FCPOOL_B;
    const long sx = g->dw * FCPOOL_B, sp = g->sw * FCPOOL_B;
    for (q = 0; q < P; q++) acc[q] = R == FCPOOL_R_MAX ? VSET1(-FLT_MAX) : VZERO();
    for (long kz = kz0; kz < kz1; kz++) {
        const float *xz = xo + kz * sz;
        for (long ky = ky0; ky < ky1; ky++) {
            const float *xr = xz + ky * sy;
            for (long kx = kx0; kx < kx1; kx++) {
                const float *xp = xr + kx * sx;
                for (q = 0; q < P; q++) {
                    VT v = VLOAD(xp + q * sp);
                    if (R == FCPOOL_R_MAX) acc[q] = VMAX(acc[q], v);
                    else if (R == FCPOOL_R_SUM) acc[q] = VADD(acc[q], v);
                    else if (R == FCPOOL_R_SQ) acc[q] = VFMA(v, v, acc[q]);
                    else acc[q] = VADD(acc[q], VABS(v));
                }
            }
        }
    }
    for (q = 0; q < P; q++) {
        VT r = acc[q];
        if (R == FCPOOL_R_SUM) r = VMUL(r, VSET1(scale));
        else if (R == FCPOOL_R_SQ) r = VSQRT(r);
        VSTORE(y + q * FCPOOL_B, r);
    }
}

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_rows_r)(
    const int R, const float *FC_RESTRICT x, float *FC_RESTRICT y, const fcpool_geom_t *g,
    long oz, long oy0, long oy1, int n_valid)
{
    long kz0, kz1, cz, ky0, ky1, cy, kx0, kx1, ox;
    const long B = FCPOOL_B;
    fcpool_cols_t cols;
    fcpool_cols(g, &cols);
    const long a = cols.a, b = cols.b;
    const float rkw = 1.f / (float)g->kw;
    fcpool_taps(oz, g->sd, g->pd, g->dd, g->kd, g->id, g->qd, &kz0, &kz1, &cz);
    const long iz0 = oz * g->sd - g->pd;
    for (long oy = oy0; oy < oy1; oy++) {
        fcpool_taps(oy, g->sh, g->ph, g->dh, g->kh, g->ih, g->qh, &ky0, &ky1, &cy);
        const long iy0 = oy * g->sh - g->ph;
        /* the input at window origin (iz0, iy0, -pw): pixel ox adds ox*sw columns */
        const float *xo = x + ((iz0 * g->ih + iy0) * g->iw - g->pw) * B;
        float *yr = y + (oz * g->oh + oy) * g->ow * B;
        const float s_row = R == FCPOOL_R_SUM ? fcpool_row_scale(g, kz1 - kz0, ky1 - ky0, cz, cy)
                                              : 0.f;
        for (ox = 0; ox < g->ow; ox++) {
            if (ox == a) {          /* interior run [a, b): full kx range, tiles */
                const float s_in = s_row * rkw;
                for (; ox + 8 <= b; ox += 8)
                    FC_SUF(fcpool_tile)(R, 8, xo + ox * g->sw * B, g, kz0, kz1, ky0, ky1,
                                        0, g->kw, s_in, yr + ox * B);
                if (ox < b && b - a >= 8) {   /* the tail: one tile ending at b (overlaps) */
                    FC_SUF(fcpool_tile)(R, 8, xo + (b - 8) * g->sw * B, g, kz0, kz1, ky0, ky1,
                                        0, g->kw, s_in, yr + (b - 8) * B);
                    ox = b;
                }
                for (; ox + 4 <= b; ox += 4)
                    FC_SUF(fcpool_tile)(R, 4, xo + ox * g->sw * B, g, kz0, kz1, ky0, ky1,
                                        0, g->kw, s_in, yr + ox * B);
                for (; ox < b; ox++)
                    FC_SUF(fcpool_tile)(R, 1, xo + ox * g->sw * B, g, kz0, kz1, ky0, ky1,
                                        0, g->kw, s_in, yr + ox * B);
                if (ox >= g->ow) break;
            }
            float rx;
            fcpool_col(g, &cols, ox, &kx0, &kx1, &rx);
            FC_SUF(fcpool_tile)(R, 1, xo + ox * g->sw * B, g, kz0, kz1, ky0, ky1, kx0, kx1,
                                s_row * rx, yr + ox * B);
        }
        if (n_valid < FCPOOL_B) fcpool_zero_lanes(yr, g->ow, n_valid);
    }
}

/* ---- separable path (see pool_simd.h): kd = 1, no dilation, kh, kw >= 2, sh < kh.
 * Pass 1 reduces one input row along W into h[ow][8] (raw: no divisor, no root);
 * pass 2 combines the (clamped) kh rows of h of an output row and finalizes.  A ring
 * of kh h-rows is kept per call, so each input row goes through pass 1 once. */

/* P consecutive outputs of pass 1: taps [kx0, kx1) of one input row. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_htile)(
    const int R, const int P, const float *FC_RESTRICT xo, long sp, long kx0, long kx1,
    float *FC_RESTRICT h)
{
    VT acc[8];
    int q;
    for (q = 0; q < P; q++) acc[q] = R == FCPOOL_R_MAX ? VSET1(-FLT_MAX) : VZERO();
    for (long kx = kx0; kx < kx1; kx++) {
        const float *xp = xo + kx * FCPOOL_B;
        for (q = 0; q < P; q++) {
            VT v = VLOAD(xp + q * sp);
            if (R == FCPOOL_R_MAX) acc[q] = VMAX(acc[q], v);
            else if (R == FCPOOL_R_SUM) acc[q] = VADD(acc[q], v);
            else if (R == FCPOOL_R_SQ) acc[q] = VFMA(v, v, acc[q]);
            else acc[q] = VADD(acc[q], VABS(v));
        }
    }
    for (q = 0; q < P; q++) VSTORE(h + q * FCPOOL_B, acc[q]);
}

/* Stride 1, kw = 3: 8 outputs from 10 loads, pair sums shared by neighbours. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_htile3)(const int R, const float *FC_RESTRICT xo,
                                                   float *FC_RESTRICT h)
{
    VT v[10];
    int q;
    for (q = 0; q < 10; q++) {
        VT t = VLOAD(xo + q * FCPOOL_B);
        if (R == FCPOOL_R_SQ) t = VMUL(t, t);
        else if (R == FCPOOL_R_ABS) t = VABS(t);
        v[q] = t;
    }
    for (q = 0; q < 8; q += 2) {
        /* outputs q (taps q..q+2) and q+1 (taps q+1..q+3) share v[q+1] + v[q+2] */
        VT m = R == FCPOOL_R_MAX ? VMAX(v[q + 1], v[q + 2]) : VADD(v[q + 1], v[q + 2]);
        if (R == FCPOOL_R_MAX) {
            VSTORE(h + q * FCPOOL_B, VMAX(v[q], m));
            VSTORE(h + (q + 1) * FCPOOL_B, VMAX(m, v[q + 3]));
        } else {
            VSTORE(h + q * FCPOOL_B, VADD(v[q], m));
            VSTORE(h + (q + 1) * FCPOOL_B, VADD(m, v[q + 3]));
        }
    }
}

/* Pass 1 over one input row xr (column 0) into h[ow][8]. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_hrow)(
    const int R, const float *FC_RESTRICT xr, const fcpool_geom_t *g, const fcpool_cols_t *cols,
    float *FC_RESTRICT h)
{
    const long B = FCPOOL_B, a = cols->a, b = cols->b, sp = g->sw * B;
    const float *xo = xr - g->pw * B;
    long ox, k0, k1;
    float rx;
    for (ox = 0; ox < g->ow; ox++) {
        if (ox == a) {
            if (g->sw == 1 && g->kw == 3) {
                for (; ox + 8 <= b; ox += 8) FC_SUF(fcpool_htile3)(R, xo + ox * B, h + ox * B);
                if (ox < b && b - a >= 8) {
                    FC_SUF(fcpool_htile3)(R, xo + (b - 8) * B, h + (b - 8) * B);
                    ox = b;
                }
            } else {
                for (; ox + 8 <= b; ox += 8)
                    FC_SUF(fcpool_htile)(R, 8, xo + ox * sp, sp, 0, g->kw, h + ox * B);
                if (ox < b && b - a >= 8) {
                    FC_SUF(fcpool_htile)(R, 8, xo + (b - 8) * sp, sp, 0, g->kw, h + (b - 8) * B);
                    ox = b;
                }
            }
            for (; ox + 4 <= b; ox += 4)
                FC_SUF(fcpool_htile)(R, 4, xo + ox * sp, sp, 0, g->kw, h + ox * B);
            for (; ox < b; ox++)
                FC_SUF(fcpool_htile)(R, 1, xo + ox * sp, sp, 0, g->kw, h + ox * B);
            if (ox >= g->ow) break;
        }
        fcpool_col(g, cols, ox, &k0, &k1, &rx);
        FC_SUF(fcpool_htile)(R, 1, xo + ox * sp, sp, k0, k1, h + ox * B);
    }
}

/* Pass 2: P outputs from the n rows hr[0..n) at column offset o; finalize. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_vtile)(
    const int R, const int P, float *const *hr, long n, long o, const float *cs, float s_row,
    float *FC_RESTRICT y)
{
    VT acc[8];
    int q;
    for (q = 0; q < P; q++) acc[q] = VLOAD(hr[0] + o + q * FCPOOL_B);
    for (long j = 1; j < n; j++)
        for (q = 0; q < P; q++) {
            VT v = VLOAD(hr[j] + o + q * FCPOOL_B);
            acc[q] = R == FCPOOL_R_MAX ? VMAX(acc[q], v) : VADD(acc[q], v);
        }
    for (q = 0; q < P; q++) {
        VT r = acc[q];
        if (R == FCPOOL_R_SUM) r = VMUL(r, VSET1(s_row * cs[q]));
        else if (R == FCPOOL_R_SQ) r = VSQRT(r);
        VSTORE(y + q * FCPOOL_B, r);
    }
}

/* Rows [oy0, oy1) of plane oz through the two passes; buf: kh*ow*8 + ow floats. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_sep_rows_r)(
    const int R, const float *FC_RESTRICT x, float *FC_RESTRICT y, const fcpool_geom_t *g,
    long oz, long oy0, long oy1, int n_valid, float *FC_RESTRICT buf)
{
    const long B = FCPOOL_B, ow = g->ow, kh = g->kh;
    const long iz = oz * g->sd - g->pd;     /* kd = 1; caller checked 0 <= iz < id */
    const float *xz = x + iz * g->ih * g->iw * B;
    float *cs = buf + kh * ow * B;          /* column factor of the divisor */
    float *hr[64];
    fcpool_cols_t cols;
    long ox, ky0, ky1, cy, next = -1;
    fcpool_cols(g, &cols);
    if (R == FCPOOL_R_SUM) {
        const float rkw = 1.f / (float)g->kw;
        for (ox = 0; ox < ow; ox++) {
            long k0, k1;
            if (ox >= cols.a && ox < cols.b) cs[ox] = rkw;
            else fcpool_col(g, &cols, ox, &k0, &k1, &cs[ox]);
        }
    }
    for (long oy = oy0; oy < oy1; oy++) {
        fcpool_taps(oy, g->sh, g->ph, 1, kh, g->ih, g->qh, &ky0, &ky1, &cy);
        const long iy0 = oy * g->sh - g->ph, r0 = iy0 + ky0, r1 = iy0 + ky1;
        float *yr = y + (oz * g->oh + oy) * ow * B;
        long n = r1 - r0;
        for (long iy = r0 > next ? r0 : next; iy < r1; iy++)
            FC_SUF(fcpool_hrow)(R, xz + iy * g->iw * B, g, &cols, buf + (iy % kh) * ow * B);
        if (r1 > next) next = r1;
        if (n <= 0) {
            const float e = R == FCPOOL_R_MAX ? -FLT_MAX : 0.f;
            for (ox = 0; ox < ow * B; ox++) yr[ox] = e;
        } else {
            const float s_row = R == FCPOOL_R_SUM ? fcpool_row_scale(g, 1, n, 1, cy) : 0.f;
            for (long j = 0; j < n; j++) hr[j] = buf + ((r0 + j) % kh) * ow * B;
            for (ox = 0; ox + 8 <= ow; ox += 8)
                FC_SUF(fcpool_vtile)(R, 8, hr, n, ox * B, cs + ox, s_row, yr + ox * B);
            if (ox < ow && ow >= 8)     /* the tail: one tile ending at ow (overlaps) */
                FC_SUF(fcpool_vtile)(R, 8, hr, n, (ow - 8) * B, cs + ow - 8, s_row,
                                     yr + (ow - 8) * B);
            else {
                for (; ox + 4 <= ow; ox += 4)
                    FC_SUF(fcpool_vtile)(R, 4, hr, n, ox * B, cs + ox, s_row, yr + ox * B);
                for (; ox < ow; ox++)
                    FC_SUF(fcpool_vtile)(R, 1, hr, n, ox * B, cs + ox, s_row, yr + ox * B);
            }
        }
        if (n_valid < FCPOOL_B) fcpool_zero_lanes(yr, ow, n_valid);
    }
}

static FC_TGT void FC_SUF(fcpool_rows)(const float *x, float *y, const fcpool_geom_t *g, long oz,
                                       long oy0, long oy1, int n_valid);

/* 3x3 with strides (1, 1) or (2, 2) (S), two output rows at a time, all in
 * registers: per input column the 4 (S = 1) or 5 (S = 2) rows give both output
 * rows' column reductions (sharing the middle pair / the middle row), and
 * neighbouring outputs share columns (S = 1: the middle pair, S = 2: the edge
 * column).  Rows whose window leaves the input run the direct rows; border columns
 * run the direct pixel tile. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_k3_rows_r)(
    const int R, const int S, const float *FC_RESTRICT x, float *FC_RESTRICT y,
    const fcpool_geom_t *g, long oz, long oy0, long oy1, int n_valid)
{
    const long B = FCPOOL_B, ow = g->ow, iw = g->iw, sr = iw * B;
    const long iz = oz * g->sd - g->pd;
    const float *xz = x + iz * g->ih * sr;
    fcpool_cols_t cols;
    fcpool_cols(g, &cols);
    const long a = cols.a, b = cols.b;
    const float s_row = fcpool_row_scale(g, 1, 3, 1, 3);
#define OP(u, v) (R == FCPOOL_R_MAX ? VMAX((u), (v)) : VADD((u), (v)))
#define PRE(v) (R == FCPOOL_R_SQ ? VMUL((v), (v)) : R == FCPOOL_R_ABS ? VABS(v) : (v))
#define FIN(v) (R == FCPOOL_R_SUM ? VMUL((v), vs) : R == FCPOOL_R_SQ ? VSQRT(v) : (v))
#define LD(r, o) PRE(VLOAD(x0 + (r) * sr + (o)))
#define VCOL(c, P_, Q_) do {                                                   \
        const long o_ = (c) * B;                                               \
        if (S == 1) {                                                          \
            VT m_ = OP(LD(1, o_), LD(2, o_));                                  \
            P_ = OP(LD(0, o_), m_);                                            \
            Q_ = OP(m_, LD(3, o_));                                            \
        } else {                                                               \
            VT c_ = LD(2, o_);                                                 \
            P_ = OP(OP(LD(0, o_), LD(1, o_)), c_);                             \
            Q_ = OP(c_, OP(LD(3, o_), LD(4, o_)));                             \
        }                                                                      \
    } while (0)
    const VT vs = VSET1(s_row * (1.f / 3.f));
    long oy = oy0;
    while (oy < oy1) {
        const long iy0 = oy * S - g->ph;
        if (oy + 1 >= oy1 || iy0 < 0 || iy0 + S + 2 >= g->ih) {
            FC_SUF(fcpool_rows)(x, y, g, oz, oy, oy + 1, n_valid);
            oy++;
            continue;
        }
        /* x0: row iy0 at column -pw (the first output's window origin) */
        const float *x0 = xz + iy0 * sr - g->pw * B;
        float *y0 = y + (oz * g->oh + oy) * ow * B, *y1 = y0 + ow * B;
        long ox;
        for (ox = 0; ox < ow; ox++) {
            if (ox == a && b > a) {
                VT pa, qa, pb, qb, pc, qc, pd, qd;
                VCOL(ox * S, pa, qa);
                if (S == 1) {
                    VCOL(ox + 1, pb, qb);
                    for (; ox + 2 <= b; ox += 2) {
                        VCOL(ox + 2, pc, qc);
                        VCOL(ox + 3, pd, qd);
                        const VT mp = OP(pb, pc), mq = OP(qb, qc);
                        VSTORE(y0 + ox * B, FIN(OP(pa, mp)));
                        VSTORE(y0 + (ox + 1) * B, FIN(OP(mp, pd)));
                        VSTORE(y1 + ox * B, FIN(OP(qa, mq)));
                        VSTORE(y1 + (ox + 1) * B, FIN(OP(mq, qd)));
                        pa = pc; qa = qc; pb = pd; qb = qd;
                    }
                    if (ox < b) {
                        VCOL(ox + 2, pc, qc);
                        VSTORE(y0 + ox * B, FIN(OP(OP(pa, pb), pc)));
                        VSTORE(y1 + ox * B, FIN(OP(OP(qa, qb), qc)));
                        ox++;
                    }
                } else {
                    for (; ox < b; ox++) {
                        VCOL(2 * ox + 1, pb, qb);
                        VCOL(2 * ox + 2, pc, qc);
                        VSTORE(y0 + ox * B, FIN(OP(OP(pa, pb), pc)));
                        VSTORE(y1 + ox * B, FIN(OP(OP(qa, qb), qc)));
                        pa = pc; qa = qc;
                    }
                }
                (void)pd; (void)qd;
                if (ox >= ow) break;
            }
            long k0, k1;
            float rx;
            fcpool_col(g, &cols, ox, &k0, &k1, &rx);
            FC_SUF(fcpool_tile)(R, 1, x0 + ox * S * B, g, 0, 1, 0, 3, k0, k1, s_row * rx,
                                y0 + ox * B);
            FC_SUF(fcpool_tile)(R, 1, x0 + S * sr + ox * S * B, g, 0, 1, 0, 3, k0, k1,
                                s_row * rx, y1 + ox * B);
        }
        if (n_valid < FCPOOL_B) {
            fcpool_zero_lanes(y0, ow, n_valid);
            fcpool_zero_lanes(y1, ow, n_valid);
        }
        oy += 2;
    }
#undef OP
#undef PRE
#undef FIN
#undef LD
#undef VCOL
}

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpool_k3_rows)(
    const int S, const float *x, float *y, const fcpool_geom_t *g, long oz, long oy0, long oy1,
    int n_valid)
{
    switch (g->mode) {
    case FCPOOL_MAX: FC_SUF(fcpool_k3_rows_r)(FCPOOL_R_MAX, S, x, y, g, oz, oy0, oy1, n_valid); break;
    case FCPOOL_AVG_EXCL:
    case FCPOOL_AVG_INCL:
        FC_SUF(fcpool_k3_rows_r)(FCPOOL_R_SUM, S, x, y, g, oz, oy0, oy1, n_valid); break;
    default:
        if (g->p == 2.f) FC_SUF(fcpool_k3_rows_r)(FCPOOL_R_SQ, S, x, y, g, oz, oy0, oy1, n_valid);
        else FC_SUF(fcpool_k3_rows_r)(FCPOOL_R_ABS, S, x, y, g, oz, oy0, oy1, n_valid);
        break;
    }
}


/* The separable rows when the geometry allows and the ring buffer can be had,
 * else the direct rows. */
static FC_TGT void FC_SUF(fcpool_sep_rows)(const float *x, float *y, const fcpool_geom_t *g,
                                           long oz, long oy0, long oy1, int n_valid) {
    const long iz = oz * g->sd - g->pd;
    float *buf = 0;
    if (g->kh == 3 && g->kw == 3 && g->sh == g->sw && g->sh <= 2 && iz >= 0 && iz < g->id) {
        if (g->sh == 1) FC_SUF(fcpool_k3_rows)(1, x, y, g, oz, oy0, oy1, n_valid);
        else FC_SUF(fcpool_k3_rows)(2, x, y, g, oz, oy0, oy1, n_valid);
        return;
    }
    if (iz >= 0 && iz < g->id)
        buf = (float *)malloc(sizeof(float) * (size_t)(g->kh * g->ow * FCPOOL_B + g->ow));
    if (!buf) {
        FC_SUF(fcpool_rows)(x, y, g, oz, oy0, oy1, n_valid);
        return;
    }
    switch (g->mode) {
    case FCPOOL_MAX:
        FC_SUF(fcpool_sep_rows_r)(FCPOOL_R_MAX, x, y, g, oz, oy0, oy1, n_valid, buf); break;
    case FCPOOL_AVG_EXCL:
    case FCPOOL_AVG_INCL:
        FC_SUF(fcpool_sep_rows_r)(FCPOOL_R_SUM, x, y, g, oz, oy0, oy1, n_valid, buf); break;
    default:
        if (g->p == 2.f) FC_SUF(fcpool_sep_rows_r)(FCPOOL_R_SQ, x, y, g, oz, oy0, oy1, n_valid, buf);
        else FC_SUF(fcpool_sep_rows_r)(FCPOOL_R_ABS, x, y, g, oz, oy0, oy1, n_valid, buf);
        break;
    }
    free(buf);
}

static FC_TGT void FC_SUF(fcpool_rows)(const float *x, float *y, const fcpool_geom_t *g, long oz,
                                       long oy0, long oy1, int n_valid) {
    switch (g->mode) {
    case FCPOOL_MAX: FC_SUF(fcpool_rows_r)(FCPOOL_R_MAX, x, y, g, oz, oy0, oy1, n_valid); break;
    case FCPOOL_AVG_EXCL:
    case FCPOOL_AVG_INCL: FC_SUF(fcpool_rows_r)(FCPOOL_R_SUM, x, y, g, oz, oy0, oy1, n_valid); break;
    default:
        if (g->p == 2.f) FC_SUF(fcpool_rows_r)(FCPOOL_R_SQ, x, y, g, oz, oy0, oy1, n_valid);
        else FC_SUF(fcpool_rows_r)(FCPOOL_R_ABS, x, y, g, oz, oy0, oy1, n_valid);
        break;
    }
}

#undef VABS
#undef VSQRT
#include "fc_vec_end.h"
