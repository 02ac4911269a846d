/* epilogue.h -- the fused epilogue every convolution-like kernel applies
 * to its output tile:  y = act(acc + bias[c] + residual)
 *
 * `residual` (optional) is a tensor of the output's shape and layout that is
 * added before the activation (ResNet's relu(conv(x) + identity)).
 * Activation codes are shared by every kernel and by the ops layer, which
 * maps ONNX ops to them; kernels never see ONNX names.
 */
#ifndef FASTCNN_EPILOGUE_H
#define FASTCNN_EPILOGUE_H
#include <math.h>

enum fastcnn_act {
    FASTCNN_ACT_NONE = 0,
    FASTCNN_ACT_RELU = 1,
    FASTCNN_ACT_CLIP = 2,        /* min(max(x, p0), p1) */
    FASTCNN_ACT_LEAKY_RELU = 3,  /* x >= 0 ? x : p0*x */
    FASTCNN_ACT_HARD_SIGMOID = 4,/* clip(p0*x + p1, 0, 1) */
    FASTCNN_ACT_HARD_SWISH = 5,  /* x * clip(x/6 + 1/2, 0, 1) */
    FASTCNN_ACT_SIGMOID = 6,
    FASTCNN_ACT_SILU = 7,        /* x * sigmoid(x) */
    FASTCNN_ACT_TANH = 8,
    FASTCNN_ACT_MISH = 9,        /* x * tanh(softplus(x)) */
    FASTCNN_ACT_PRELU = 10,      /* x >= 0 ? x : slope[c]*x (slope array per channel) */
    FASTCNN_ACT_ELU = 11,        /* x >= 0 ? x : p0*(exp(x)-1) */
    FASTCNN_ACT_GELU = 12        /* 0.5 x (1 + erf(x/sqrt 2)) */
};

typedef struct {
    int kind;              /* enum fastcnn_act */
    float p0, p1;          /* parameters, see above */
    const float *slope;    /* PRELU: one slope per output channel (NULL otherwise) */
} fastcnn_act_t;

/* Scalar reference of the activation, for tails and transcendental kinds. */
static inline float fastcnn_act_scalar(const fastcnn_act_t *a, float x, long channel) {
    switch (a->kind) {
    case FASTCNN_ACT_RELU: return x > 0.f ? x : 0.f;
    case FASTCNN_ACT_CLIP: return x < a->p0 ? a->p0 : (x > a->p1 ? a->p1 : x);
    case FASTCNN_ACT_LEAKY_RELU: return x >= 0.f ? x : a->p0 * x;
    case FASTCNN_ACT_HARD_SIGMOID: { float t = a->p0 * x + a->p1; return t < 0.f ? 0.f : (t > 1.f ? 1.f : t); }
    case FASTCNN_ACT_HARD_SWISH: { float t = x * (1.f / 6.f) + 0.5f; t = t < 0.f ? 0.f : (t > 1.f ? 1.f : t); return x * t; }
    case FASTCNN_ACT_SIGMOID: return 1.f / (1.f + expf(-x));
    case FASTCNN_ACT_SILU: return x / (1.f + expf(-x));
    case FASTCNN_ACT_TANH: return tanhf(x);
    case FASTCNN_ACT_MISH: { float sp = x > 20.f ? x : log1pf(expf(x)); return x * tanhf(sp); }
    case FASTCNN_ACT_PRELU: return x >= 0.f ? x : a->slope[channel] * x;
    case FASTCNN_ACT_ELU: return x >= 0.f ? x : a->p0 * (expf(x) - 1.f);
    case FASTCNN_ACT_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

#endif
