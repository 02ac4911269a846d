/* transc.h -- branch-free float32 transcendental activations (exp, tanh, sigmoid, SiLU,
 * Mish, ELU, GELU, ...) for the elementwise kernels and the convolution epilogues.
 *
 * fc_transc_body(x, out, n, kind, p0, p1) applies activation `kind` (codes of epilogue.h,
 * plus ELT_* of elementwise.pxd) to n floats and returns 1, or returns 0 for kinds it does
 * not handle.  It is always_inline and branch-free, so each caller compiled for an ISA
 * (function target attributes, cpu.h) gets it auto-vectorized at that width.
 */
#ifndef FASTCNN_TRANSC_H
#define FASTCNN_TRANSC_H
#include <math.h>
#include "cpu.h"
/* always_inline: inside the large conv tile functions GCC would otherwise call these out of
 * line, per element, unvectorized */
#define FC_TI static inline __attribute__((always_inline))
typedef union { float f; int i; } fc_fbits;
FC_TI float fc_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
FC_TI float fc_fexp(float x) {
    fc_fbits s; float n, r, p;
    x = fc_clampf(x, -87.33654f, 88.37626f);
    n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    r = x - n * 0.693359375f + n * 2.12194440e-4f;
    p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
          + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    s.i = ((int)n + 127) << 23;
    return p * s.f;
}
FC_TI float fc_ftanh(float x) {
    float a = fabsf(x), z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397855454e-2f) * z
                    + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (fc_fexp(2.0f * fc_clampf(a, 0.0f, 10.0f)) + 1.0f);
    big = x >= 0.0f ? big : -big;
    return a < 0.625f ? small : big;
}
FC_TI float fc_fexpm1_neg(float x) {
    float t = ((((((1.0f / 5040) * x + 1.0f / 720) * x + 1.0f / 120) * x + 1.0f / 24) * x
                + 1.0f / 6) * x + 0.5f) * x * x + x;
    return x > -0.35f ? t : fc_fexp(x) - 1.0f;
}
FC_TI float fc_ferfc_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = t * (-0.82215223f + t * 0.17087277f);
    q = t * (1.48851587f + q); q = t * (-1.13520398f + q); q = t * (0.27886807f + q);
    q = t * (-0.18628806f + q); q = t * (0.09678418f + q); q = t * (0.37409196f + q);
    q = t * (1.00002368f + q);
    return t * fc_fexp(-z * z - 1.26551223f + q);
}
/* returns 1 when `kind` is handled here (codes of epilogue.h / elementwise.pxd) */
static inline __attribute__((always_inline)) int fc_transc_body(
        const float *x, float *out, long n, int kind, float p0, float p1) {
    long i;
    switch (kind) {
    case 4:  for (i = 0; i < n; i++) out[i] = fc_clampf(p0 * x[i] + p1, 0.0f, 1.0f); return 1;
    case 5:  for (i = 0; i < n; i++) { float v = x[i]; out[i] = v * fc_clampf(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f); } return 1;
    case 6:  for (i = 0; i < n; i++) out[i] = 1.0f / (1.0f + fc_fexp(-x[i])); return 1;
    case 7:  for (i = 0; i < n; i++) { float v = x[i]; out[i] = v / (1.0f + fc_fexp(-v)); } return 1;
    case 8:  for (i = 0; i < n; i++) out[i] = fc_ftanh(x[i]); return 1;
    case 9:  for (i = 0; i < n; i++) { float v = x[i]; float t = fc_fexp(v < 20.0f ? v : 20.0f);
                 t = t * (t + 2.0f); out[i] = v * t / (t + 2.0f); } return 1;
    case 11: for (i = 0; i < n; i++) { float v = x[i]; float t = p0 * fc_fexpm1_neg(v < 0.0f ? v : 0.0f);
                 out[i] = v >= 0.0f ? v : t; } return 1;
    case 12: for (i = 0; i < n; i++) { float v = x[i]; float t = fc_ferfc_pos(fabsf(v) * 0.70710678118654752f);
                 out[i] = 0.5f * v * (v < 0.0f ? t : 2.0f - t); } return 1;
    case 32: for (i = 0; i < n; i++) { float v = x[i]; float t = p0 * fc_fexpm1_neg(v < 0.0f ? v : 0.0f);
                 out[i] = p1 * (v > 0.0f ? v : t); } return 1;
    case 35: for (i = 0; i < n; i++) { float v = x[i];
                 out[i] = 0.5f * v * (1.0f + fc_ftanh(0.7978845608028654f * (v + 0.044715f * v * v * v))); } return 1;
    case 37: for (i = 0; i < n; i++) { float v = x[i], t = v / p0; t = p0 * fc_fexpm1_neg(t < 0.0f ? t : 0.0f);
                 out[i] = v > 0.0f ? v : t; } return 1;
    default: return 0;
    }
}

#endif
