/* conv_nchwc_simd.h -- 8-lane vector abstraction shared by the NCHWc conv
 * and the packed SGEMM micro-kernels.
 *
 * Every micro-kernel source (conv_nchwc_tile.h, gemm_tile.h) is written once
 * against the macros below and included once per ISA:
 *   FC_VEC_AVX = 1 : __m256 intrinsics; the including file wraps functions
 *                    with FASTCNN_TARGET_AVX2 or FASTCNN_TARGET_AVX512 (the
 *                    latter keeps 8-float ymm vectors -- the layout does not
 *                    change -- but gets 32 vector registers via AVX-512VL,
 *                    which allows bigger register tiles);
 *   FC_VEC_AVX = 0 : plain C, an 8-float struct with element loops (the
 *                    compiler's SLP vectorizer turns them into SSE2).
 */
#ifndef FASTCNN_CONV_NCHWC_SIMD_H
#define FASTCNN_CONV_NCHWC_SIMD_H
#include "cpu.h"
#include "epilogue.h"

#if defined(__GNUC__) || defined(__clang__)
#define FC_ALWAYS_INLINE static inline __attribute__((always_inline))
#define FC_RESTRICT __restrict__
#define FC_PREFETCH_L2(ptr) __builtin_prefetch((ptr), 0, 2)
#elif defined(_MSC_VER)
#define FC_ALWAYS_INLINE static __forceinline
#define FC_RESTRICT __restrict
#define FC_PREFETCH_L2(ptr) ((void)(ptr))
#else
#define FC_ALWAYS_INLINE static inline
#define FC_RESTRICT
#define FC_PREFETCH_L2(ptr) ((void)(ptr))
#endif

/* ---- plain-C vector of 8 floats ---- */
typedef struct { float v[8]; } fc_v8;

static inline fc_v8 fcp_zero(void) { fc_v8 r; int i; for (i = 0; i < 8; i++) r.v[i] = 0.f; return r; }
static inline fc_v8 fcp_load(const float *p) { fc_v8 r; int i; for (i = 0; i < 8; i++) r.v[i] = p[i]; return r; }
static inline void fcp_store(float *p, fc_v8 a) { int i; for (i = 0; i < 8; i++) p[i] = a.v[i]; }
static inline fc_v8 fcp_set1(float x) { fc_v8 r; int i; for (i = 0; i < 8; i++) r.v[i] = x; return r; }
static inline fc_v8 fcp_fma(fc_v8 a, fc_v8 b, fc_v8 c) { int i; for (i = 0; i < 8; i++) c.v[i] += a.v[i] * b.v[i]; return c; }
static inline fc_v8 fcp_add(fc_v8 a, fc_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] += b.v[i]; return a; }
static inline fc_v8 fcp_mul(fc_v8 a, fc_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] *= b.v[i]; return a; }
static inline fc_v8 fcp_max(fc_v8 a, fc_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return a; }
static inline fc_v8 fcp_min(fc_v8 a, fc_v8 b) { int i; for (i = 0; i < 8; i++) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i]; return a; }

/* Vectorized part of the fused epilogue.  Returns 1 when the activation was
 * applied in registers; 0 means the caller applies fastcnn_act_scalar() to
 * the stored tile (transcendental kinds).  The generic form is written with
 * the macros of the including ISA (see FC_EPI_BODY). */
static inline int fc_act_is_vector(int kind) {
    return kind == FASTCNN_ACT_NONE || kind == FASTCNN_ACT_RELU || kind == FASTCNN_ACT_CLIP ||
           kind == FASTCNN_ACT_LEAKY_RELU || kind == FASTCNN_ACT_HARD_SIGMOID ||
           kind == FASTCNN_ACT_HARD_SWISH || kind == FASTCNN_ACT_PRELU;
}

/* leaky/prelu use  max(x,0) + a*min(x,0)  (== x>=0 ? x : a*x for finite a). */
#define FC_ACT_VEC(VT, ADD, MUL, MAX, MIN, FMA, SET1, ZERO, LOAD, x, act, slope_ptr)          \
    do {                                                                                     \
        switch ((act)->kind) {                                                               \
        case FASTCNN_ACT_RELU: x = MAX(x, ZERO()); break;                                    \
        case FASTCNN_ACT_CLIP: x = MIN(MAX(x, SET1((act)->p0)), SET1((act)->p1)); break;     \
        case FASTCNN_ACT_LEAKY_RELU:                                                         \
            x = ADD(MAX(x, ZERO()), MUL(SET1((act)->p0), MIN(x, ZERO()))); break;            \
        case FASTCNN_ACT_HARD_SIGMOID:                                                       \
            x = MIN(MAX(FMA(x, SET1((act)->p0), SET1((act)->p1)), ZERO()), SET1(1.f)); break;\
        case FASTCNN_ACT_HARD_SWISH: {                                                       \
            VT t_ = MIN(MAX(FMA(x, SET1(1.f / 6.f), SET1(0.5f)), ZERO()), SET1(1.f));        \
            x = MUL(x, t_); break; }                                                         \
        case FASTCNN_ACT_PRELU:                                                              \
            x = ADD(MAX(x, ZERO()), MUL(LOAD(slope_ptr), MIN(x, ZERO()))); break;            \
        default: break;                                                                      \
        }                                                                                    \
    } while (0)

#endif
