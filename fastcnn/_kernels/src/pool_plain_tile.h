/* pool_plain_tile.h -- ISA template of the plain-NCHW pooling rows (see pool_simd.h).
 * Included once per ISA with FC_SUF(name), FC_TGT and FC_AVX defined.
 *
 * One plane x[D][H][W] -> y[OD][OH][OW].  Vectors run along the output row: 8
 * consecutive output columns per vector, input columns ox*sw + kx*dw.  Loads:
 * stride 1 contiguous; stride 2 two loads + shuffle + permute (the second load
 * starts at +7, so nothing past the last tap is read); other strides a gather
 * (portable: an element loop).  Register tile of 4 (then 1) vectors; border
 * columns and the tail of the interior one output at a time.  2-D windows without
 * dilation take the separable rows below (fcpool_plain_sep_ok in pool_simd.h). */
#include "fc_vec_begin.h"
#if FC_AVX
#define VABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.f), (a))
#define VSQRT(a) _mm256_sqrt_ps(a)
#else
#define VABS(a) fcpool_p_abs(a)
#define VSQRT(a) fcpool_p_sqrt(a)
#endif

/* x[0], x[sw], ..., x[7 sw] (SW: 1, 2, or 0 = runtime sw) */
FC_ALWAYS_INLINE FC_TGT VT FC_SUF(fcpp_load)(const int SW, const float *FC_RESTRICT p, long sw) {
    if (SW == 1) return VLOAD(p);
#if FC_AVX
    if (SW == 2) {
        __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 7);
        __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));  /* p0 p2 p8 p10 | p4 p6 p12 p14 */
        return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    {
        const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                               _mm256_set1_epi32((int)sw));
        return _mm256_i32gather_ps(p, idx, 4);
    }
#else
    {
        fc_v8 r;
        int i;
        const long s = SW ? SW : sw;
        for (i = 0; i < 8; i++) r.v[i] = p[i * s];
        return r;
    }
#endif
}

/* P vectors of one row, whole kx range: vector q covers outputs off_q .. off_q + 7
 * (off_q = 8 q, except the last at `last`: the row's tail vector may overlap). */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpp_tile)(
    const int R, const int SW, const int P, const float *FC_RESTRICT xo, const fcpool_geom_t *g,
    long kz0, long kz1, long ky0, long ky1, float scale, float *FC_RESTRICT y, long last)
{
    VT acc[4];
    long off[4];
    int q;
    const long sz = g->dd * g->ih * g->iw, sy = g->dh * g->iw;
    for (q = 0; q < P; q++) off[q] = q == P - 1 ? last : 8 * q;
    for (q = 0; q < P; q++) acc[q] = R == FCPOOL_R_MAX ? VSET1(-FLT_MAX) : VZERO();
    for (long kz = kz0; kz < kz1; kz++) {
        for (long ky = ky0; ky < ky1; ky++) {
            const float *xr = xo + kz * sz + ky * sy;
            for (long kx = 0; kx < g->kw; kx++) {
                const float *xp = xr + kx * g->dw;
                for (q = 0; q < P; q++) {
                    VT v = FC_SUF(fcpp_load)(SW, xp + off[q] * g->sw, g->sw);
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
        VSTORE(y + off[q], r);
    }
}

/* One output from its clamped ranges, scalar. */
FC_ALWAYS_INLINE FC_TGT float FC_SUF(fcpp_one)(
    const int R, const float *FC_RESTRICT xo, const fcpool_geom_t *g,
    long kz0, long kz1, long ky0, long ky1, long kx0, long kx1, float scale)
{
    float acc = R == FCPOOL_R_MAX ? -FLT_MAX : 0.f;
    const long sz = g->dd * g->ih * g->iw, sy = g->dh * g->iw;
    for (long kz = kz0; kz < kz1; kz++)
        for (long ky = ky0; ky < ky1; ky++) {
            const float *xr = xo + kz * sz + ky * sy;
            for (long kx = kx0; kx < kx1; kx++) {
                float v = xr[kx * g->dw];
                if (R == FCPOOL_R_MAX) acc = v > acc ? v : acc;
                else if (R == FCPOOL_R_SUM) acc += v;
                else if (R == FCPOOL_R_SQ) acc += v * v;
                else acc += fabsf(v);
            }
        }
    if (R == FCPOOL_R_SUM) return acc * scale;
    if (R == FCPOOL_R_SQ) return sqrtf(acc);
    return acc;
}

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpp_rows_r)(
    const int R, const int SW, const float *FC_RESTRICT x, float *FC_RESTRICT y,
    const fcpool_geom_t *g, long oz, long oy0, long oy1)
{
    long kz0, kz1, cz, ky0, ky1, cy, kx0, kx1, ox;
    fcpool_cols_t cols;
    fcpool_cols(g, &cols);
    const long a = cols.a, b = cols.b;
    const float rkw = 1.f / (float)g->kw;
    fcpool_taps(oz, g->sd, g->pd, g->dd, g->kd, g->id, g->qd, &kz0, &kz1, &cz);
    const long iz0 = oz * g->sd - g->pd;
    for (long oy = oy0; oy < oy1; oy++) {
        fcpool_taps(oy, g->sh, g->ph, g->dh, g->kh, g->ih, g->qh, &ky0, &ky1, &cy);
        const long iy0 = oy * g->sh - g->ph;
        const float *xo = x + (iz0 * g->ih + iy0) * g->iw - g->pw;   /* window origin, ox 0 */
        float *yr = y + (oz * g->oh + oy) * g->ow;
        const float s_row = R == FCPOOL_R_SUM ? fcpool_row_scale(g, kz1 - kz0, ky1 - ky0, cz, cy)
                                              : 0.f;
        for (ox = 0; ox < g->ow; ox++) {
            if (ox == a) {
                const float s_in = s_row * rkw;
                for (; ox + 32 <= b; ox += 32)
                    FC_SUF(fcpp_tile)(R, SW, 4, xo + ox * g->sw, g, kz0, kz1, ky0, ky1, s_in,
                                      yr + ox, 24);
                if (ox < b && b - a >= 8) {
                    /* the rest in one tile of 1-4 vectors, the last one ending at b */
                    const long r = b - ox, last = r - 8;
                    const float *xt = xo + ox * g->sw;
                    if (r > 24) FC_SUF(fcpp_tile)(R, SW, 4, xt, g, kz0, kz1, ky0, ky1, s_in, yr + ox, last);
                    else if (r > 16) FC_SUF(fcpp_tile)(R, SW, 3, xt, g, kz0, kz1, ky0, ky1, s_in, yr + ox, last);
                    else if (r > 8) FC_SUF(fcpp_tile)(R, SW, 2, xt, g, kz0, kz1, ky0, ky1, s_in, yr + ox, last);
                    else FC_SUF(fcpp_tile)(R, SW, 1, xo + (b - 8) * g->sw, g, kz0, kz1, ky0, ky1, s_in, yr + b - 8, 0);
                    ox = b;
                }
                for (; ox < b; ox++)
                    yr[ox] = FC_SUF(fcpp_one)(R, xo + ox * g->sw, g, kz0, kz1, ky0, ky1, 0,
                                              g->kw, s_in);
                if (ox >= g->ow) break;
            }
            float rx;
            fcpool_col(g, &cols, ox, &kx0, &kx1, &rx);
            yr[ox] = FC_SUF(fcpp_one)(R, xo + ox * g->sw, g, kz0, kz1, ky0, ky1, kx0, kx1,
                                      s_row * rx);
        }
    }
}

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpp_rows_s)(
    const int R, const float *x, float *y, const fcpool_geom_t *g, long oz, long oy0, long oy1)
{
    if (g->sw == 1) FC_SUF(fcpp_rows_r)(R, 1, x, y, g, oz, oy0, oy1);
    else if (g->sw == 2) FC_SUF(fcpp_rows_r)(R, 2, x, y, g, oz, oy0, oy1);
    else FC_SUF(fcpp_rows_r)(R, 0, x, y, g, oz, oy0, oy1);
}

/* Separable plain rows (kd = 1, no dilation, sw 1 or 2): per output row the clamped
 * kh input rows are reduced into a row buffer padded with the identity (pads: -FLT_MAX
 * / 0), then each vector of 8 outputs reduces kw shifted loads of the buffer and takes
 * its divisor factors as a vector (cs: per output column).  No scalar border outputs.
 * buf: L = max(pw + iw, (ow - 1) sw + kw) + 16 floats, then ow + 8 floats of cs. */
FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpp_sep_rows_r)(
    const int R, const int SW, const float *FC_RESTRICT x, float *FC_RESTRICT y,
    const fcpool_geom_t *g, long oz, long oy0, long oy1, float *FC_RESTRICT buf, long L)
{
    const long iw = g->iw, ow = g->ow, pw = g->pw;
    const long iz = oz * g->sd - g->pd;     /* kd = 1; caller checked 0 <= iz < id */
    const float *xz = x + iz * g->ih * iw;
    const float e = R == FCPOOL_R_MAX ? -FLT_MAX : 0.f;
    float *cs = buf + L;
    long ox, c, ky0, ky1, cy;
    fcpool_cols_t cols;
    fcpool_cols(g, &cols);
    for (ox = 0; ox < ow + 8; ox++) {
        long k0, k1;
        if (ox >= ow) cs[ox] = 0.f;
        else if (ox >= cols.a && ox < cols.b) cs[ox] = 1.f / (float)g->kw;
        else fcpool_col(g, &cols, ox, &k0, &k1, &cs[ox]);
    }
    for (c = 0; c < L; c++) buf[c] = e;
    for (long oy = oy0; oy < oy1; oy++) {
        fcpool_taps(oy, g->sh, g->ph, 1, g->kh, g->ih, g->qh, &ky0, &ky1, &cy);
        const long n = ky1 - ky0;
        const float *xr = xz + (oy * g->sh - g->ph + ky0) * iw;
        float *yr = y + (oz * g->oh + oy) * ow;
        float *bi = buf + pw;                /* input column 0 */
        if (n <= 0) {
            for (c = 0; c < iw; c++) bi[c] = e;
        } else {
            for (c = 0; c < iw; c += 8) {
                if (c + 8 > iw) {
                    if (iw < 8) {
                        for (long j = c; j < iw; j++) {
                            float acc = e;
                            for (long r = 0; r < n; r++) {
                                float v = xr[r * iw + j];
                                if (R == FCPOOL_R_MAX) acc = v > acc ? v : acc;
                                else if (R == FCPOOL_R_SUM) acc += v;
                                else if (R == FCPOOL_R_SQ) acc += v * v;
                                else acc += fabsf(v);
                            }
                            bi[j] = acc;
                        }
                        break;
                    }
                    c = iw - 8;              /* the tail: one vector ending at iw */
                }
                VT acc = R == FCPOOL_R_MAX ? VSET1(-FLT_MAX) : VZERO();
                for (long r = 0; r < n; r++) {
                    VT v = VLOAD(xr + r * iw + c);
                    if (R == FCPOOL_R_MAX) acc = VMAX(acc, v);
                    else if (R == FCPOOL_R_SUM) acc = VADD(acc, v);
                    else if (R == FCPOOL_R_SQ) acc = VFMA(v, v, acc);
                    else acc = VADD(acc, VABS(v));
                }
                VSTORE(bi + c, acc);
            }
        }
        const float s_row = R == FCPOOL_R_SUM ? fcpool_row_scale(g, 1, n, 1, cy) : 0.f;
        const VT vrow = VSET1(s_row);
        for (ox = 0; ox < ow; ox += 8) {
            if (ox + 8 > ow) {
                if (ow < 8) {
                    for (long j = ox; j < ow; j++) {
                        float acc = e;
                        for (long kx = 0; kx < g->kw; kx++) {
                            float v = buf[j * g->sw + kx];
                            if (R == FCPOOL_R_MAX) acc = v > acc ? v : acc;
                            else acc += v;
                        }
                        if (R == FCPOOL_R_SUM) acc *= s_row * cs[j];
                        else if (R == FCPOOL_R_SQ) acc = sqrtf(acc);
                        yr[j] = acc;
                    }
                    break;
                }
                ox = ow - 8;
            }
            const float *bp = buf + ox * g->sw;
            VT acc = FC_SUF(fcpp_load)(SW, bp, g->sw);
            for (long kx = 1; kx < g->kw; kx++) {
                VT v = FC_SUF(fcpp_load)(SW, bp + kx, g->sw);
                acc = R == FCPOOL_R_MAX ? VMAX(acc, v) : VADD(acc, v);
            }
            if (R == FCPOOL_R_SUM) acc = VMUL(acc, VMUL(vrow, VLOAD(cs + ox)));
            else if (R == FCPOOL_R_SQ) acc = VSQRT(acc);
            VSTORE(yr + ox, acc);
        }
    }
}

FC_ALWAYS_INLINE FC_TGT void FC_SUF(fcpp_sep_rows_s)(
    const int R, const float *x, float *y, const fcpool_geom_t *g, long oz, long oy0, long oy1,
    float *buf, long L)
{
    if (g->sw == 1) FC_SUF(fcpp_sep_rows_r)(R, 1, x, y, g, oz, oy0, oy1, buf, L);
    else FC_SUF(fcpp_sep_rows_r)(R, 2, x, y, g, oz, oy0, oy1, buf, L);
}

static FC_TGT void FC_SUF(fcpool_plain_rows)(const float *x, float *y, const fcpool_geom_t *g,
                                             long oz, long oy0, long oy1, int n_valid);

/* The separable plain rows (fcpool_plain_sep_ok), direct when no buffer can be had. */
static FC_TGT void FC_SUF(fcpool_plain_sep_rows)(const float *x, float *y, const fcpool_geom_t *g,
                                                 long oz, long oy0, long oy1, int n_valid) {
    const long iz = oz * g->sd - g->pd;
    long L = g->pw + g->iw, m = (g->ow - 1) * g->sw + g->kw;
    float *buf = 0;
    if (m > L) L = m;
    L += 16;
    if (iz >= 0 && iz < g->id) buf = (float *)malloc(sizeof(float) * (size_t)(L + g->ow + 8));
    if (!buf) {
        FC_SUF(fcpool_plain_rows)(x, y, g, oz, oy0, oy1, n_valid);
        return;
    }
    switch (g->mode) {
    case FCPOOL_MAX: FC_SUF(fcpp_sep_rows_s)(FCPOOL_R_MAX, x, y, g, oz, oy0, oy1, buf, L); break;
    case FCPOOL_AVG_EXCL:
    case FCPOOL_AVG_INCL: FC_SUF(fcpp_sep_rows_s)(FCPOOL_R_SUM, x, y, g, oz, oy0, oy1, buf, L); break;
    default:
        if (g->p == 2.f) FC_SUF(fcpp_sep_rows_s)(FCPOOL_R_SQ, x, y, g, oz, oy0, oy1, buf, L);
        else FC_SUF(fcpp_sep_rows_s)(FCPOOL_R_ABS, x, y, g, oz, oy0, oy1, buf, L);
        break;
    }
    free(buf);
}

/* Row function of the plain layout (same signature as the blocked ones; n_valid unused). */
static FC_TGT void FC_SUF(fcpool_plain_rows)(const float *x, float *y, const fcpool_geom_t *g,
                                             long oz, long oy0, long oy1, int n_valid) {
    (void)n_valid;
    switch (g->mode) {
    case FCPOOL_MAX: FC_SUF(fcpp_rows_s)(FCPOOL_R_MAX, x, y, g, oz, oy0, oy1); break;
    case FCPOOL_AVG_EXCL:
    case FCPOOL_AVG_INCL: FC_SUF(fcpp_rows_s)(FCPOOL_R_SUM, x, y, g, oz, oy0, oy1); break;
    default:
        if (g->p == 2.f) FC_SUF(fcpp_rows_s)(FCPOOL_R_SQ, x, y, g, oz, oy0, oy1);
        else FC_SUF(fcpp_rows_s)(FCPOOL_R_ABS, x, y, g, oz, oy0, oy1);
        break;
    }
}

#undef VABS
#undef VSQRT
#include "fc_vec_end.h"
