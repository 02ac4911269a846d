/* conv_nchwc.h -- direct convolution in the channel-blocked NCHWc layout.
 *
 * Layouts (B = 8 floats per channel block, spatial dims flattened, S = D*H*W):
 *   input  blocked  x[N, Cb, S_in, 8]   (or plain x[N, C, S_in] for the small-C
 *                                        "NCHW -> NCHWc" first-layer variant)
 *   weights packed  w[Mb, cbg, K, icb, 8]  (K = kd*kh*kw; icb = 8, or C when plain)
 *   output          y[N, Mb, S_out, 8]     (residual has the output's layout)
 * Every conv is 3D (1D/2D have size-1 dims).  The unit of work is a rectangle
 * of output rows x columns for a tile of up to FC_OCB_MAX output-channel
 * blocks; see conv_nchwc_tile.h for the tap classes and the register tile.
 * Input channel blocks are accumulated in chunks (cb_chunk) through the
 * rectangle (the accumulators are stored and reloaded between chunks); the
 * epilogue y = act(acc + bias + residual) is applied in registers after the
 * last chunk.
 *
 * ISA variants (selected at run time):
 *   portable : plain C, tile 2 oc-blocks x 4 pixels
 *   avx2     : AVX2+FMA, 16 ymm -> tile 2 oc-blocks x 6 pixels (12 accumulators;
 *              measured a bit faster than 3x4 on Zen 4)
 *   avx512   : same 8-wide ymm code with AVX-512VL's 32 registers ->
 *              tile 4 oc-blocks x 6 pixels (24 accumulators); and, for weights
 *              packed in pairs of oc blocks (lanes 16, blocked input), zmm registers
 *              holding two blocks -> tile 8 oc-blocks x 6 pixels, or, for tiles of
 *              at most 4 blocks (32 channels), 4 oc-blocks x 12 pixels
 */
#ifndef FASTCNN_CONV_NCHWC_H
#define FASTCNN_CONV_NCHWC_H
#include "cpu.h"
#include "epilogue.h"
#include "transc.h"
#include "conv_nchwc_simd.h"
#include "conv_nchwc_params.h"

#define FC_MAX_ROWS 1024   /* max kd*kh */
#define FC_RECT_ROWS 64    /* max output rows of one work unit (fc_conv_rect) */
#define FC_RECT_COLS 256   /* max output columns of one work unit */
#define FC_PRAGMA_S(x) _Pragma(#x)
#define FC_PRAGMA_X(x) FC_PRAGMA_S(x)
#ifndef FC_IC_UNROLL
#define FC_IC_UNROLL 8
#endif

/* portable */
#define FC_SUF(name) name##_portable
#define FC_TGT
#define FC_AVX 0
#define FC_OCB_MAX 2
#define FC_P_MAX 4
#include "conv_nchwc_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#undef FC_OCB_MAX
#undef FC_P_MAX

#if FASTCNN_X86
#ifndef FC_AVX2_OCB
#define FC_AVX2_OCB 2
#define FC_AVX2_P 6
#endif
#define FC_SUF(name) name##_avx2
#define FC_TGT FASTCNN_TARGET_AVX2
#define FC_AVX 1
#define FC_OCB_MAX FC_AVX2_OCB
#define FC_P_MAX FC_AVX2_P
#include "conv_nchwc_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#undef FC_OCB_MAX
#undef FC_P_MAX

#define FC_SUF(name) name##_avx512
#define FC_TGT FASTCNN_TARGET_AVX512
#define FC_AVX 1
#define FC_OCB_MAX 4
#define FC_P_MAX 6
#include "conv_nchwc_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#undef FC_OCB_MAX
#undef FC_P_MAX

/* avx512, 16 lanes, tiles of at most 2 zmm columns (fc_conv_params.wide): 2 columns x 12
 * pixels, the same 24 accumulators as 4 x 6 -- twice the pixels per tile set-up for convs
 * with 32 output channels (DenseNet's 3x3s: -1.7% in the model) or a transposed conv's
 * few-tap phases (k3s2 64->32: -2..4%).  The 8-lane twin for 16 channels measured 2% slower
 * on a 1x1 32->16 and is not built. */
#define FC_SUF(name) name##_avx512w16p12
#define FC_TGT FASTCNN_TARGET_AVX512
#define FC_AVX 1
#define FC_LANES 16
#define FC_OCB_MAX 2
#define FC_P_MAX 12
#include "conv_nchwc_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#undef FC_OCB_MAX
#undef FC_P_MAX

/* avx512, 16 lanes: 4 zmm columns (8 oc blocks) x 6 pixels, weights packed in pairs */
#define FC_SUF(name) name##_avx512w16
#define FC_TGT FASTCNN_TARGET_AVX512
#define FC_AVX 1
#define FC_LANES 16
#define FC_OCB_MAX 4
#define FC_P_MAX 6
#include "conv_nchwc_tile.h"
#undef FC_SUF
#undef FC_TGT
#undef FC_AVX
#undef FC_OCB_MAX
#undef FC_P_MAX
#endif

/* Output-channel blocks per work unit: the register tile's columns, x 2 for weights packed
 * in pairs (lanes 16: 4 zmm columns of 2 blocks). */
static inline int fc_conv_ocb_max(int isa, int lanes) {
    if (lanes == 16) return 8;
    return isa == FASTCNN_ISA_AVX512 ? 4 : (isa == FASTCNN_ISA_AVX2 ? FC_AVX2_OCB : 2);
}

/* Output rows [r0, r1) (flattened od*oh + oh) x columns [c0, c1) of image n
 * for output-channel blocks [ocb0, ocb0 + nocb) (nocb <= fc_conv_ocb_max(isa, p->lanes),
 * all in one group). */
static inline void fc_conv_rect(int isa, const fc_conv_params *p, long n, long ocb0, long nocb,
                                long r0, long r1, long c0, long c1) {
#if FASTCNN_X86
    if (p->lanes == 16) {
        if (p->wide && nocb <= 4) fc_conv_rect_avx512w16p12(p, n, ocb0, nocb, r0, r1, c0, c1);
        else fc_conv_rect_avx512w16(p, n, ocb0, nocb, r0, r1, c0, c1);
        return;
    }
    if (isa == FASTCNN_ISA_AVX512) { fc_conv_rect_avx512(p, n, ocb0, nocb, r0, r1, c0, c1); return; }
    if (isa == FASTCNN_ISA_AVX2) { fc_conv_rect_avx2(p, n, ocb0, nocb, r0, r1, c0, c1); return; }
#endif
    fc_conv_rect_portable(p, n, ocb0, nocb, r0, r1, c0, c1);
}

#endif
