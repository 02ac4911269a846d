/* conv_nchwc_params.h -- problem description shared by every ISA variant of
 * the NCHWc direct convolution (see conv_nchwc.h for the algorithm). */
#ifndef FASTCNN_CONV_NCHWC_PARAMS_H
#define FASTCNN_CONV_NCHWC_PARAMS_H
#include "epilogue.h"

typedef struct {
    const float *x;        /* blocked: [N, Cb, S_in, 8]; plain: [N, C, S_in] */
    const float *w;        /* packed [Mb, cbg, K, icb, 8] (or in pairs, see lanes) */
    const float *bias;     /* [M] or NULL */
    const float *res;      /* residual [N, Mb, S_out, 8] or NULL */
    float *y;              /* [N, Mb, S_out, 8] */
    long M;                /* real output channels (lanes >= M are zeroed) */
    long Mb;               /* output channel blocks (all groups) */
    long mbg;              /* output channel blocks per group */
    int lanes;             /* 8; or 16: w packed in pairs of oc blocks, [G*mbg2, cbg, K, 8, 16] */
    long mbg2;             /* pairs per group, ceil(mbg / 2) (16 lanes) */
    long cbg;              /* input channel blocks per group (plain input: 1) */
    long cb_total;         /* input channel blocks in x (blocked) */
    long icb;              /* input channels per block in the weights: 8, or C (plain) */
    int blocked;           /* 1: x is NCHWc; 0: x is plain NCHW (small-C first layer) */
    long id, ih, iw;       /* input spatial dims */
    long od, oh, ow;       /* output spatial dims */
    long kd, kh, kw;       /* kernel */
    long sd, sh, sw;       /* strides */
    long pd, ph, pw;       /* begin pads */
    long dd, dh, dw;       /* dilations */
    long K;                /* kd*kh*kw */
    long cb_chunk;         /* input channel blocks accumulated per pass over a row */
    fastcnn_act_t act;
    int wide;              /* AVX-512, 16 lanes: tiles of <= 2 zmm columns run 12 pixels */
} fc_conv_params;

#endif
