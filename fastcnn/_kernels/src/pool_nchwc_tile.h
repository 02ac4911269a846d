/* pool_nchwc_tile.h -- ISA template of the NCHWc pooling rows (see pool_nchwc.h).
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
