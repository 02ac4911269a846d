/* softmax_tile.h -- the softmax / log-softmax template of softmax.h, included once per ISA.
 * No include guard on purpose.  The including file defines
 *   FC_SUF(name)  the per-ISA name (name##_avx512, ...)
 *   FC_TGT        the function target attribute (cpu.h)
 *   FC_SM_ISA     2 = AVX-512 (16 lanes, masked tails), 1 = AVX2 + FMA (8 lanes, masked
 *                 tails), 0 = portable C (one float per "vector", four accumulators)
 * and this file defines the vector vocabulary S* and two kernels:
 *   FC_SUF(fc_sm_row)  (x, y, S, lg)                 one contiguous row of S floats
 *   FC_SUF(fc_sm_cols) (x, y, S, inner, w, lg)       w <= 4 * SL columns of an [S, inner]
 *                                                    block (column stride `inner`)
 * Each does three passes: the maximum m; e = exp(x - m) (stored, softmax only) and its sum;
 * then y = e / sum (as e * (1 / sum)) or y = (x - m) - log(sum).  Exponents are <= 0 so
 * the exp only ever underflows: below -87.34 it is 0 (a flushed denormal), -inf gives 0,
 * NaN stays NaN.  Tail lanes are loaded as -inf (exp 0) and never stored. */

#if FC_SM_ISA == 2
#define SL 16
#define SV __m512
typedef __mmask16 FC_SUF(fc_sm_mask);
FC_TGT static inline __mmask16 FC_SUF(sm_mask)(long k) {
    return (__mmask16)(k >= 16 ? 0xFFFFu : ((1u << k) - 1u));
}
#define SSET1(v) _mm512_set1_ps(v)
#define SLOAD(p) _mm512_loadu_ps(p)
#define SSTORE(p, v) _mm512_storeu_ps((p), (v))
#define SLOADM(p, k, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (k), (p))
#define SSTOREM(p, k, v) _mm512_mask_storeu_ps((p), (k), (v))
#define SADD(a, b) _mm512_add_ps((a), (b))
#define SSUB(a, b) _mm512_sub_ps((a), (b))
#define SMUL(a, b) _mm512_mul_ps((a), (b))
#define SDIV(a, b) _mm512_div_ps((a), (b))
#define SMAX(a, b) _mm512_max_ps((a), (b))
#define SHMAX(a) _mm512_reduce_max_ps(a)
#define SHSUM(a) _mm512_reduce_add_ps(a)
FC_TGT static inline __m512 FC_SUF(sm_exp)(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    /* max/min return their second operand when one is NaN: NaN passes through */
    __m512 t = _mm512_min_ps(_mm512_set1_ps(88.37626f), _mm512_max_ps(lo, x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps((__mmask16)~under, p, _mm512_castsi512_ps(e));
}
#elif FC_SM_ISA == 1
#define SL 8
#define SV __m256
typedef __m256i FC_SUF(fc_sm_mask);
FC_TGT static inline __m256i FC_SUF(sm_mask)(long k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(k >= 8 ? 8 : k)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#define SSET1(v) _mm256_set1_ps(v)
#define SLOAD(p) _mm256_loadu_ps(p)
#define SSTORE(p, v) _mm256_storeu_ps((p), (v))
#define SLOADM(p, k, fill) _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps((p), (k)), \
                                            _mm256_castsi256_ps(k))
#define SSTOREM(p, k, v) _mm256_maskstore_ps((p), (k), (v))
#define SADD(a, b) _mm256_add_ps((a), (b))
#define SSUB(a, b) _mm256_sub_ps((a), (b))
#define SMUL(a, b) _mm256_mul_ps((a), (b))
#define SDIV(a, b) _mm256_div_ps((a), (b))
#define SMAX(a, b) _mm256_max_ps((a), (b))
FC_TGT static inline float FC_SUF(sm_hmax)(__m256 a) {
    __m128 v = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    v = _mm_max_ps(v, _mm_movehl_ps(v, v));
    v = _mm_max_ss(v, _mm_shuffle_ps(v, v, 1));
    return _mm_cvtss_f32(v);
}
FC_TGT static inline float FC_SUF(sm_hsum)(__m256 a) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
    return _mm_cvtss_f32(v);
}
#define SHMAX(a) FC_SUF(sm_hmax)(a)
#define SHSUM(a) FC_SUF(sm_hsum)(a)
FC_TGT static inline __m256 FC_SUF(sm_exp)(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 t = _mm256_min_ps(_mm256_set1_ps(88.37626f), _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), t);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
#else
#define SL 1
#define SV float
typedef int FC_SUF(fc_sm_mask);
static inline int FC_SUF(sm_mask)(long k) { return k > 0; }
#define SSET1(v) ((float)(v))
#define SLOAD(p) (*(p))
#define SSTORE(p, v) (*(p) = (v))
#define SLOADM(p, k, fill) (*(p))          /* a one-lane tail is the whole vector */
#define SSTOREM(p, k, v) (*(p) = (v))
#define SADD(a, b) ((a) + (b))
#define SSUB(a, b) ((a) - (b))
#define SMUL(a, b) ((a) * (b))
#define SDIV(a, b) ((a) / (b))
#define SMAX(a, b) ((b) > (a) ? (b) : (a))
#define SHMAX(a) (a)
#define SHSUM(a) (a)
static inline float FC_SUF(sm_exp)(float x) {
    return x < -87.33654f ? 0.0f : fc_fexp(x);
}
#endif
#define SEXP(v) FC_SUF(sm_exp)(v)

FC_TGT static void FC_SUF(fc_sm_row)(const float *x, float *y, long S, int lg) {
    long i, k;
    SV m0 = SSET1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    for (i = 0; i + 4 * SL <= S; i += 4 * SL) {
        m0 = SMAX(m0, SLOAD(x + i));
        m1 = SMAX(m1, SLOAD(x + i + SL));
        m2 = SMAX(m2, SLOAD(x + i + 2 * SL));
        m3 = SMAX(m3, SLOAD(x + i + 3 * SL));
    }
    for (; i + SL <= S; i += SL)
        m0 = SMAX(m0, SLOAD(x + i));
    k = S - i;
    if (k > 0)
        m0 = SMAX(m0, SLOADM(x + i, FC_SUF(sm_mask)(k), -INFINITY));
    const float m = SHMAX(SMAX(SMAX(m0, m1), SMAX(m2, m3)));
    const SV vm = SSET1(m);
    SV s0 = SSET1(0.0f), s1 = s0, s2 = s0, s3 = s0, e0, e1, e2, e3;
    for (i = 0; i + 4 * SL <= S; i += 4 * SL) {
        e0 = SEXP(SSUB(SLOAD(x + i), vm));
        e1 = SEXP(SSUB(SLOAD(x + i + SL), vm));
        e2 = SEXP(SSUB(SLOAD(x + i + 2 * SL), vm));
        e3 = SEXP(SSUB(SLOAD(x + i + 3 * SL), vm));
        if (!lg) {
            SSTORE(y + i, e0);
            SSTORE(y + i + SL, e1);
            SSTORE(y + i + 2 * SL, e2);
            SSTORE(y + i + 3 * SL, e3);
        }
        s0 = SADD(s0, e0);
        s1 = SADD(s1, e1);
        s2 = SADD(s2, e2);
        s3 = SADD(s3, e3);
    }
    for (; i + SL <= S; i += SL) {
        e0 = SEXP(SSUB(SLOAD(x + i), vm));
        if (!lg)
            SSTORE(y + i, e0);
        s0 = SADD(s0, e0);
    }
    if (k > 0) {
        e0 = SEXP(SSUB(SLOADM(x + i, FC_SUF(sm_mask)(k), -INFINITY), vm));
        if (!lg)
            SSTOREM(y + i, FC_SUF(sm_mask)(k), e0);
        s0 = SADD(s0, e0);
    }
    const float sum = SHSUM(SADD(SADD(s0, s1), SADD(s2, s3)));
    if (!lg) {
        const SV r = SSET1(1.0f / sum);
        for (i = 0; i + SL <= S; i += SL)
            SSTORE(y + i, SMUL(SLOAD(y + i), r));
        if (k > 0)
            SSTOREM(y + i, FC_SUF(sm_mask)(k), SMUL(SLOADM(y + i, FC_SUF(sm_mask)(k), 0.0f), r));
    } else {
        const SV ls = SSET1(logf(sum));
        for (i = 0; i + SL <= S; i += SL)
            SSTORE(y + i, SSUB(SSUB(SLOAD(x + i), vm), ls));
        if (k > 0)
            SSTOREM(y + i, FC_SUF(sm_mask)(k),
                    SSUB(SSUB(SLOADM(x + i, FC_SUF(sm_mask)(k), 0.0f), vm), ls));
    }
}

FC_TGT static void FC_SUF(fc_sm_cols)(const float *x, float *y, long S, long inner, long w,
                                      int lg) {
    SV m[4], s[4];
    FC_SUF(fc_sm_mask) mk[4];
    long g, t;
    const long ng = (w + SL - 1) / SL;
    for (g = 0; g < ng; g++) {
        mk[g] = FC_SUF(sm_mask)(w - g * SL);
        m[g] = SSET1(-INFINITY);
        s[g] = SSET1(0.0f);
    }
    (void)mk;   /* the portable loads ignore it */
    for (t = 0; t < S; t++) {
        const float *xr = x + t * inner;
        for (g = 0; g < ng; g++)
            m[g] = SMAX(m[g], SLOADM(xr + g * SL, mk[g], -INFINITY));
    }
    for (t = 0; t < S; t++) {
        const float *xr = x + t * inner;
        float *yr = y + t * inner;
        for (g = 0; g < ng; g++) {
            SV e = SEXP(SSUB(SLOADM(xr + g * SL, mk[g], -INFINITY), m[g]));
            if (!lg)
                SSTOREM(yr + g * SL, mk[g], e);
            s[g] = SADD(s[g], e);
        }
    }
    if (!lg) {
        for (g = 0; g < ng; g++)
            s[g] = SDIV(SSET1(1.0f), s[g]);
        for (t = 0; t < S; t++) {
            float *yr = y + t * inner;
            for (g = 0; g < ng; g++)
                SSTOREM(yr + g * SL, mk[g], SMUL(SLOADM(yr + g * SL, mk[g], 0.0f), s[g]));
        }
    } else {
        for (g = 0; g < ng; g++) {
            float v[SL];
            int l;
            SSTORE(v, s[g]);
            for (l = 0; l < SL; l++)
                v[l] = logf(v[l]);      /* tail lanes hold 0: log -inf, never stored */
            s[g] = SLOAD(v);
        }
        for (t = 0; t < S; t++) {
            const float *xr = x + t * inner;
            float *yr = y + t * inner;
            for (g = 0; g < ng; g++)
                SSTOREM(yr + g * SL, mk[g],
                        SSUB(SSUB(SLOADM(xr + g * SL, mk[g], 0.0f), m[g]), s[g]));
        }
    }
}

#undef SL
#undef SV
#undef SSET1
#undef SLOAD
#undef SSTORE
#undef SLOADM
#undef SSTOREM
#undef SADD
#undef SSUB
#undef SMUL
#undef SDIV
#undef SMAX
#undef SHMAX
#undef SHSUM
#undef SEXP
