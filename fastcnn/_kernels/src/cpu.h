/* cpu.h -- runtime CPU feature detection for fastcnn's SIMD dispatch.
 *
 * Kernels are compiled per ISA with function-level target attributes
 * (FASTCNN_TARGET_AVX2 / FASTCNN_TARGET_AVX512) so the default build stays
 * portable (no -march=native).  The Cython layer asks fastcnn_cpu_level()
 * once at import and picks the matching micro-kernel; the portable path is
 * always there.
 */
#ifndef FASTCNN_CPU_H
#define FASTCNN_CPU_H

#define FASTCNN_ISA_PORTABLE 0
#define FASTCNN_ISA_AVX2 1      /* AVX2 + FMA */
#define FASTCNN_ISA_AVX512 2    /* AVX-512 F + DQ + BW + VL */

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FASTCNN_X86 1
#include <immintrin.h>
#define FASTCNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FASTCNN_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#else
#define FASTCNN_X86 0
#define FASTCNN_TARGET_AVX2
#define FASTCNN_TARGET_AVX512
#endif

static int fastcnn_cpu_level(void) {
    static int level = -1;
    if (level >= 0) return level;
    level = FASTCNN_ISA_PORTABLE;
#if FASTCNN_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        level = FASTCNN_ISA_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
            level = FASTCNN_ISA_AVX512;
    }
#endif
    return level;
}

/* Flush-to-zero / denormals-are-zero for the calling thread only.
 * fastcnn_ftz_enter() returns the previous control word; pass it to
 * fastcnn_ftz_leave() before the thread returns to the caller's code. */
static unsigned int fastcnn_ftz_enter(void) {
#if FASTCNN_X86
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0u;
#endif
}

static void fastcnn_ftz_leave(unsigned int old) {
#if FASTCNN_X86
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

#endif
