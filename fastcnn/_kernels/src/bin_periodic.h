/* bin_periodic.h -- y = x op t for a float32 operand t that repeats with period P along
 * the flattened x (an inner-dimension broadcast: y[r, j] = x[r, j] op t[j], the
 * per-channel constant of an NHWC tensor, [N,H,W,C] * [C]), compiled per ISA (cpu.h
 * convention: one always_inline body, wrappers with target attributes, the level picked
 * per call).
 *
 *   fc_bin_periodic(op, x, t, t_first, y, rows, P)
 *       for r < rows, j < P:  y[r*P + j] = t_first ? t[j] op x[r*P + j] : x[r*P + j] op t[j]
 *
 * op: BIN_* of elementwise.pxd (0 add, 1 sub, 2 mul, 3 div, 4 max, 5 min; max / min as
 * `a >= b ? a : b` / `a <= b ? a : b`, like the other binary loops).  y may be x (in
 * place, the planner's usual case): that case has loops of its own over one pointer, since
 * GCC's overlap check sends an x -> y loop with y == x to its scalar version. */
#ifndef FASTCNN_BIN_PERIODIC_H
#define FASTCNN_BIN_PERIODIC_H
#include "cpu.h"

#define FC_BP_LOOP(EXPR)                                                                \
    do {                                                                                \
        long r_, j_;                                                                    \
        if (y == x) {                                                                   \
            for (r_ = 0; r_ < rows; r_++) {                                             \
                float *__restrict__ yr = y + r_ * P;                                    \
                for (j_ = 0; j_ < P; j_++) {                                            \
                    float a = t_first ? t[j_] : yr[j_], b = t_first ? yr[j_] : t[j_];   \
                    yr[j_] = (EXPR);                                                    \
                }                                                                       \
            }                                                                           \
        } else {                                                                        \
            for (r_ = 0; r_ < rows; r_++) {                                             \
                const float *__restrict__ xr = x + r_ * P;                              \
                float *__restrict__ yr = y + r_ * P;                                    \
                for (j_ = 0; j_ < P; j_++) {                                            \
                    float a = t_first ? t[j_] : xr[j_], b = t_first ? xr[j_] : t[j_];   \
                    yr[j_] = (EXPR);                                                    \
                }                                                                       \
            }                                                                           \
        }                                                                               \
    } while (0)

/* t_first is a compile-time constant in each instantiation (the loops stay branch-free) */
static inline __attribute__((always_inline)) void fc_bin_periodic_body(
        int op, const float *x, const float *__restrict__ t, const int t_first, float *y,
        long rows, long P) {
    switch (op) {
    case 0: FC_BP_LOOP(a + b); break;
    case 1: FC_BP_LOOP(a - b); break;
    case 2: FC_BP_LOOP(a * b); break;
    case 3: FC_BP_LOOP(a / b); break;
    case 4: FC_BP_LOOP(a >= b ? a : b); break;
    default: FC_BP_LOOP(a <= b ? a : b); break;
    }
}

#define FC_BP_WRAP(SUF, TGT)                                                            \
    TGT static void fc_bin_periodic_##SUF(int op, const float *x, const float *t,       \
                                          int t_first, float *y, long rows, long P) {   \
        if (t_first) fc_bin_periodic_body(op, x, t, 1, y, rows, P);                     \
        else fc_bin_periodic_body(op, x, t, 0, y, rows, P);                             \
    }
FC_BP_WRAP(portable, )
#if FASTCNN_X86
FC_BP_WRAP(avx2, FASTCNN_TARGET_AVX2)
FC_BP_WRAP(avx512, FASTCNN_TARGET_AVX512)
#endif
#undef FC_BP_WRAP

static int fc_bin_periodic_isa = -1;   /* -1: by CPU; else a forced FASTCNN_ISA_* (tests) */

static void fc_bin_periodic(int op, const float *x, const float *t, int t_first, float *y,
                            long rows, long P) {
    int level = fc_bin_periodic_isa >= 0 ? fc_bin_periodic_isa : fastcnn_cpu_level();
#if FASTCNN_X86
    if (level >= FASTCNN_ISA_AVX512) { fc_bin_periodic_avx512(op, x, t, t_first, y, rows, P); return; }
    if (level >= FASTCNN_ISA_AVX2) { fc_bin_periodic_avx2(op, x, t, t_first, y, rows, P); return; }
#endif
    (void)level;
    fc_bin_periodic_portable(op, x, t, t_first, y, rows, P);
}

#endif
