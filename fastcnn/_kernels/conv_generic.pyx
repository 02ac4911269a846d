# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Generic convolution kernels: im2col, col2im and the fused epilogue.

Design: the generic (fallback, oracle-grade) convolution is im2col + BLAS GEMM
(numpy matmul, batched over groups) and transposed convolution is GEMM +
col2im.  Layout NCDHW (1-D/2-D seen as 3-D with size-1 leading dims).
im2col parallelizes over the C·K rows of the column matrix (each row is one
(channel, kernel offset) plane: contiguous writes, strided reads, valid
column range computed once per row so the inner loop has no branch);
col2im over output channels (each channel's rows scatter only into that
channel, so threads never collide).  The epilogue parallelizes over N·M rows
and applies bias, residual and activation in one pass (epilogue.h).  Every
parallel loop runs its rows as items on fastcnn's thread pool (parallel_for).
float32 and float64 through a fused type; no allocation anywhere.
"""
from libc.string cimport memset, memcpy

cimport numpy as cnp
import numpy as np
from fastcnn._kernels.threadpool cimport parallel_for

cdef extern from "epilogue.h" nogil:
    ctypedef struct fastcnn_act_t:
        int kind
        float p0, p1
        const float *slope
    float fastcnn_act_scalar(const fastcnn_act_t *a, float x, long channel)


cdef inline long _ceil_div(long a, long b) noexcept nogil:
    # ceil(a / b) for b > 0, any sign of a
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


cdef inline void _valid_range(long n_out, long stride, long off, long n_in,
                              long* lo, long* hi) noexcept nogil:
    # outputs o in [lo, hi) have 0 <= o*stride + off < n_in
    cdef long a = 0, b = n_out
    if off < 0:
        a = _ceil_div(-off, stride)
    if n_in - 1 - off < 0:
        b = 0
    else:
        b = (n_in - 1 - off) // stride + 1
        if b > n_out:
            b = n_out
    if a > n_out:
        a = n_out
    if b < a:
        b = a
    lo[0] = a
    hi[0] = b


cdef void _im2col_row(const real* x, real* out, long D, long H, long W,
                      long OD, long OH, long OW, long kd, long kh, long kw,
                      long SD, long SH, long SW, long PD, long PH, long PW,
                      long DD, long DH, long DW) noexcept nogil:
    cdef long od, oh, ow, idd, ih, lo, hi, offw
    cdef const real* xr
    cdef real* o
    offw = kw * DW - PW
    _valid_range(OW, SW, offw, W, &lo, &hi)
    for od in range(OD):
        idd = od * SD - PD + kd * DD
        for oh in range(OH):
            o = out + (od * OH + oh) * OW
            ih = oh * SH - PH + kh * DH
            if idd < 0 or idd >= D or ih < 0 or ih >= H:
                memset(o, 0, OW * sizeof(real))
                continue
            xr = x + (idd * H + ih) * W + offw
            for ow in range(lo):
                o[ow] = 0
            if SW == 1:
                if hi > lo:
                    memcpy(o + lo, xr + lo, (hi - lo) * sizeof(real))
            else:
                for ow in range(lo, hi):
                    o[ow] = xr[ow * SW]
            for ow in range(hi, OW):
                o[ow] = 0


cdef struct _geo_job:
    # one im2col / col2im job; src/dst point to float or double (the caller's `real`)
    const void* src
    void* dst
    long C, D, H, W, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW


cdef inline void _im2col_run(const _geo_job* j, long r, const real* x, real* col) noexcept nogil:
    cdef long K = j.KD * j.KH * j.KW
    cdef long P = j.OD * j.OH * j.OW
    cdef long c = r // K
    cdef long k = r - c * K
    cdef long kd = k // (j.KH * j.KW)
    cdef long kh = (k // j.KW) % j.KH
    cdef long kw = k % j.KW
    _im2col_row(x + c * j.D * j.H * j.W, col + r * P, j.D, j.H, j.W, j.OD, j.OH, j.OW,
                kd, kh, kw, j.SD, j.SH, j.SW, j.PD, j.PH, j.PW, j.DD, j.DH, j.DW)


cdef void _im2col_item_f32(void* ctx, long r) noexcept nogil:
    cdef _geo_job* j = <_geo_job*>ctx
    _im2col_run(j, r, <const float*>j.src, <float*>j.dst)


cdef void _im2col_item_f64(void* ctx, long r) noexcept nogil:
    cdef _geo_job* j = <_geo_job*>ctx
    _im2col_run(j, r, <const double*>j.src, <double*>j.dst)


cdef inline void _set_geo(_geo_job* j, long C, long D, long H, long W, long OD, long OH,
                          long OW, long KD, long KH, long KW, long SD, long SH, long SW,
                          long PD, long PH, long PW, long DD, long DH, long DW) noexcept nogil:
    j.C, j.D, j.H, j.W, j.OD, j.OH, j.OW = C, D, H, W, OD, OH, OW
    j.KD, j.KH, j.KW, j.SD, j.SH, j.SW = KD, KH, KW, SD, SH, SW
    j.PD, j.PH, j.PW, j.DD, j.DH, j.DW = PD, PH, PW, DD, DH, DW


cdef void im2col_3d_c(const real* x, real* col,
                      long C, long D, long H, long W, long OD, long OH, long OW,
                      long KD, long KH, long KW, long SD, long SH, long SW,
                      long PD, long PH, long PW, long DD, long DH, long DW,
                      int n_threads) noexcept nogil:
    cdef _geo_job j
    j.src, j.dst = x, col
    _set_geo(&j, C, D, H, W, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW)
    if real is float:
        parallel_for(n_threads, C * KD * KH * KW, _im2col_item_f32, &j)
    else:
        parallel_for(n_threads, C * KD * KH * KW, _im2col_item_f64, &j)


cdef void _col2im_channel(const real* col, real* y, long ID, long IH, long IW,
                          long OD, long OH, long OW, long KD, long KH, long KW,
                          long SD, long SH, long SW, long PD, long PH, long PW,
                          long DD, long DH, long DW) noexcept nogil:
    cdef long kd, kh, kw, i_d, ih, iw, dlo, dhi, hlo, hhi, wlo, whi, offd, offh, offw
    cdef long P = ID * IH * IW
    cdef const real* c
    cdef real* yr
    memset(y, 0, OD * OH * OW * sizeof(real))
    for kd in range(KD):
        offd = kd * DD - PD
        _valid_range(ID, SD, offd, OD, &dlo, &dhi)
        for kh in range(KH):
            offh = kh * DH - PH
            _valid_range(IH, SH, offh, OH, &hlo, &hhi)
            for kw in range(KW):
                offw = kw * DW - PW
                _valid_range(IW, SW, offw, OW, &wlo, &whi)
                c = col + ((kd * KH + kh) * KW + kw) * P
                for i_d in range(dlo, dhi):
                    for ih in range(hlo, hhi):
                        yr = y + ((i_d * SD + offd) * OH + ih * SH + offh) * OW + offw
                        for iw in range(wlo, whi):
                            yr[iw * SW] += c[(i_d * IH + ih) * IW + iw]


# col2im jobs reuse _geo_job: (D, H, W) is the input extent (ID, IH, IW) of the columns,
# (OD, OH, OW) the output's
cdef inline void _col2im_run(const _geo_job* j, long c, const real* col, real* y) noexcept nogil:
    cdef long K = j.KD * j.KH * j.KW
    cdef long P = j.D * j.H * j.W
    cdef long Q = j.OD * j.OH * j.OW
    _col2im_channel(col + c * K * P, y + c * Q, j.D, j.H, j.W, j.OD, j.OH, j.OW, j.KD, j.KH,
                    j.KW, j.SD, j.SH, j.SW, j.PD, j.PH, j.PW, j.DD, j.DH, j.DW)


cdef void _col2im_item_f32(void* ctx, long c) noexcept nogil:
    cdef _geo_job* j = <_geo_job*>ctx
    _col2im_run(j, c, <const float*>j.src, <float*>j.dst)


cdef void _col2im_item_f64(void* ctx, long c) noexcept nogil:
    cdef _geo_job* j = <_geo_job*>ctx
    _col2im_run(j, c, <const double*>j.src, <double*>j.dst)


cdef void col2im_3d_c(const real* col, real* y,
                      long C, long ID, long IH, long IW, long OD, long OH, long OW,
                      long KD, long KH, long KW, long SD, long SH, long SW,
                      long PD, long PH, long PW, long DD, long DH, long DW,
                      int n_threads) noexcept nogil:
    cdef _geo_job j
    j.src, j.dst = col, y
    _set_geo(&j, C, ID, IH, IW, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW)
    if real is float:
        parallel_for(n_threads, C, _col2im_item_f32, &j)
    else:
        parallel_for(n_threads, C, _col2im_item_f64, &j)


cdef struct _epi_job:
    float* y
    const float* bias
    const float* residual
    long M, P
    fastcnn_act_t act


cdef void _epilogue_row(void* ctx, long r) noexcept nogil:
    cdef _epi_job* j = <_epi_job*>ctx
    cdef long m = r % j.M, i, P = j.P
    cdef float* yr = j.y + r * P
    cdef float b = j.bias[m] if j.bias != NULL else 0.0
    cdef const float* zr
    if j.residual != NULL:
        zr = j.residual + r * P
        for i in range(P):
            yr[i] = yr[i] + b + zr[i]
    elif j.bias != NULL:
        for i in range(P):
            yr[i] = yr[i] + b
    if j.act.kind == 1:
        for i in range(P):
            yr[i] = yr[i] if yr[i] > 0 else 0
    elif j.act.kind != 0:
        for i in range(P):
            yr[i] = fastcnn_act_scalar(&j.act, yr[i], m)


cdef void conv_epilogue_c(float* y, const float* bias, const float* residual,
                          long N, long M, long P, int act_kind, float p0, float p1,
                          const float* slope, int n_threads) noexcept nogil:
    cdef _epi_job j
    j.y, j.bias, j.residual, j.M, j.P = y, bias, residual, M, P
    j.act.kind = act_kind
    j.act.p0 = p0
    j.act.p1 = p1
    j.act.slope = slope
    parallel_for(n_threads, N * M, _epilogue_row, &j)


# ---- def twins ------------------------------------------------------------------------

def im2col_3d(const real[:, :, :, ::1] x, real[:, ::1] col, kernel, strides, pads_begin, dilations,
              out_spatial, int n_threads=1):
    """x (C, D, H, W) -> col (C*KD*KH*KW, OD*OH*OW)."""
    cdef long C = x.shape[0], D = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef long KD = kernel[0], KH = kernel[1], KW = kernel[2]
    cdef long OD = out_spatial[0], OH = out_spatial[1], OW = out_spatial[2]
    if col.shape[0] != C * KD * KH * KW or col.shape[1] != OD * OH * OW:
        raise ValueError("im2col_3d: col has the wrong shape")
    cdef long SD = strides[0], SH = strides[1], SW = strides[2]
    cdef long PD = pads_begin[0], PH = pads_begin[1], PW = pads_begin[2]
    cdef long DD = dilations[0], DH = dilations[1], DW = dilations[2]
    with nogil:
        im2col_3d_c(&x[0, 0, 0, 0], &col[0, 0], C, D, H, W, OD, OH, OW, KD, KH, KW,
                    SD, SH, SW, PD, PH, PW, DD, DH, DW, n_threads)


def col2im_3d(const real[:, ::1] col, real[:, :, :, ::1] y, kernel, strides, pads_begin, dilations,
              in_spatial, int n_threads=1):
    """col (C*KD*KH*KW, ID*IH*IW) -> y (C, OD, OH, OW), overwriting y."""
    cdef long C = y.shape[0], OD = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef long KD = kernel[0], KH = kernel[1], KW = kernel[2]
    cdef long ID = in_spatial[0], IH = in_spatial[1], IW = in_spatial[2]
    if col.shape[0] != C * KD * KH * KW or col.shape[1] != ID * IH * IW:
        raise ValueError("col2im_3d: col has the wrong shape")
    cdef long SD = strides[0], SH = strides[1], SW = strides[2]
    cdef long PD = pads_begin[0], PH = pads_begin[1], PW = pads_begin[2]
    cdef long DD = dilations[0], DH = dilations[1], DW = dilations[2]
    with nogil:
        col2im_3d_c(&col[0, 0], &y[0, 0, 0, 0], C, ID, IH, IW, OD, OH, OW, KD, KH, KW,
                    SD, SH, SW, PD, PH, PW, DD, DH, DW, n_threads)


def conv_epilogue(float[:, :, ::1] y, bias, residual, int act_kind=0, float p0=0, float p1=0,
                  slope=None, int n_threads=1):
    """In place: y[n, m, :] = act(y + bias[m] + residual[n, m, :]) (bias/residual may be None)."""
    cdef const float[::1] b
    cdef const float[:, :, ::1] z
    cdef const float[::1] s
    cdef const float* bp = NULL
    cdef const float* zp = NULL
    cdef const float* sp = NULL
    cdef long N = y.shape[0], M = y.shape[1], P = y.shape[2]
    if bias is not None:
        b = bias
        if b.shape[0] != M:
            raise ValueError("conv_epilogue: bias length")
        bp = &b[0]
    if residual is not None:
        z = residual
        if z.shape[0] != N or z.shape[1] != M or z.shape[2] != P:
            raise ValueError("conv_epilogue: residual shape")
        zp = &z[0, 0, 0]
    if slope is not None:
        s = slope
        if s.shape[0] != M:
            raise ValueError("conv_epilogue: slope length")
        sp = &s[0]
    if N * M * P == 0:
        return
    with nogil:
        conv_epilogue_c(&y[0, 0, 0], bp, zp, N, M, P, act_kind, p0, p1, sp, n_threads)
