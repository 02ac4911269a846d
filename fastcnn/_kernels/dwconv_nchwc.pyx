# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depthwise and few-channels-per-group convolution in NCHWc (block 8).

Design:
  layout     x[N][CB][S][8], S = D*H*W (1D/2D are 3D with size-1 dims),
             channels zero-padded to CB*8; output and residual likewise.
  weights    depthwise: [CB][K][8], K = kd*kh*kw (one channel per lane).
             grouped:   [CB_out][T][K][8] plus term tables (source block,
             lane map) -- each output lane accumulates over the few input
             channels of its own group; see src/dwconv_nchwc.h.
  loop order (n, block, out depth, out row) items -> row function:
             clamped kernel rows; output columns in register tiles of
             16 (AVX-512VL) / 8 / remainder pixels: interior tiles (whole
             window inside the input, no checks; with constant stride_w and
             kernel_w and dilation_w 1 each input column is loaded once per
             kernel row and feeds every (pixel, tap) that reads it), edge
             tiles at the left/right padding (each (pixel, tap) address
             selected branch-free between the input and a zero vector).
  threads    (n x blocks x od x row-chunk) items run by fastcnn's thread
             pool (parallel_for: guided claims, the caller works too, FTZ/DAZ
             set by the pool); whole planes per item unless planes < 8 per
             thread, then the rows of each plane are cut into chunks;
             problems under 2^17 lane-MACs run serial on the caller.
  tiles      AVX2 build: 8-pixel tiles (16 ymm); the AVX-512VL build of the
             same code (32 ymm registers) adds 16-pixel tiles.
  plane      2D 3x3/5x5, stride 1/2, dilation 1 (src/dwconv_plane.h): the row
             function copies the input rows of its range once into a ring of
             zero-padded rows on its stack, so every pixel runs interior tiles
             over the whole width (no edge code); the portable path and other
             kernels use the tiles above.
  alignment  any float32 C-contiguous arrays work; 32-byte aligned buffers
             (64 for whole cache lines) are ~2x faster than numpy's 16-byte
             default, because every other 32-byte load then splits a line.
  epilogue   y = act(acc + bias[c] + residual), vectorized for
             none/relu/clip/leaky/hardsigmoid/hardswish/prelu; other kinds
             apply fastcnn_act_scalar after the store.
  ISA        AVX2+FMA row functions chosen at runtime by fastcnn_cpu_level();
             portable plain C otherwise, or when forced with set_isa().
"""
from collections import namedtuple

import numpy as np
cimport numpy as cnp
from fastcnn._kernels.threadpool cimport parallel_for
from fastcnn._kernels.workshare cimport row_chunks

cnp.import_array()

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()
    int FASTCNN_ISA_PORTABLE
    int FASTCNN_ISA_AVX2
    int FASTCNN_ISA_AVX512

cdef extern from "epilogue.h" nogil:
    ctypedef struct fastcnn_act_t:
        int kind
        float p0, p1
        const float* slope

cdef extern from "dwconv_nchwc.h" nogil:
    ctypedef struct fcdw_terms_t:
        long n_terms
        const int* src
        const int* mode
        const int* idx
    ctypedef void (*fcdw_row_fn)(const float*, const float*, const float*, const float*, float*,
                                 const fcdw_geom_t*, long, long, long, const fastcnn_act_t*, long,
                                 int)
    ctypedef void (*fcdw_grow_fn)(const float*, const float*, const fcdw_terms_t*, const float*,
                                  const float*, float*, const fcdw_geom_t*, long, long, long,
                                  const fastcnn_act_t*, long, int)
    fcdw_row_fn fcdw_pick_row(int isa, const fcdw_geom_t* g)
    fcdw_grow_fn fcdw_pick_grow(int isa, const fcdw_geom_t* g)
    fcdw_row_fn fcdw_pick_plane(int isa, const fcdw_geom_t* g)
    int fcdw_tune_flags

B = 8
cdef long _B = 8
# Below this many lane-MACs a call runs on the calling thread only.
cdef long _SERIAL_MACS = 1 << 17

cdef int _isa = fastcnn_cpu_level()
cdef int _isa_hw = _isa

_ISA_NAMES = {"portable": 0, "avx2": 1, "avx512": 2}


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force the micro-kernel ISA: 'portable', 'avx2', or 'auto' (best available).

    Asking for more than the CPU supports raises ValueError.  'avx512' runs the
    AVX2 kernels (block 8; AVX-512 is double-pumped on Zen 4).  Returns the
    previous ISA name."""
    global _isa
    prev = get_isa()
    _isa = choose_isa(name, _ISA_NAMES, _isa_hw)
    return prev


def _set_tune_flags(int flags):
    """Developer A/B switch for benchmarks; 0 = default kernels."""
    global fcdw_tune_flags
    fcdw_tune_flags = flags


def _uses_plane(in_dhw, out_dhw, kernel, strides, pads_begin, dilations):
    """Whether a depthwise call of this geometry takes the padded-rows plane kernel
    (src/dwconv_plane.h) at the current ISA; for tests."""
    cdef fcdw_geom_t g
    g.n, g.cb_in, g.cb_out = 1, 1, 1
    g.id, g.ih, g.iw = _triple(in_dhw, "in_dhw")
    g.od, g.oh, g.ow = _triple(out_dhw, "out_dhw")
    g.kd, g.kh, g.kw = _triple(kernel, "kernel")
    g.sd, g.sh, g.sw = _triple(strides, "strides")
    g.pd, g.ph, g.pw = _triple(pads_begin, "pads_begin")
    g.dd, g.dh, g.dw = _triple(dilations, "dilations")
    return fcdw_pick_plane(_isa, &g) != NULL


def get_isa():
    """Name of the ISA the kernels currently use."""
    for k, v in _ISA_NAMES.items():
        if v == _isa:
            return k
    return "portable"


GroupedPacked = namedtuple(
    "GroupedPacked", "weights n_terms src mode idx in_channels out_channels group")
GroupedPacked.__doc__ = """Grouped-conv weights for groupconv_nchwc.

weights  float32 [CB_out, T, K, 8]   per output block, per term, per tap, per lane
n_terms  int32   [CB_out]            terms used by each output block (<= T)
src      int32   [CB_out, T]         input channel block read by the term
mode     int32   [CB_out, T]         0 identity load, 1 broadcast idx[0], 2 permute
idx      int32   [CB_out, T, 8]      output lane l reads input lane idx[l]
in_channels, out_channels, group     the problem the tables were built for
"""


def _as5d(w):
    w = np.asarray(w, dtype=np.float32)
    if w.ndim < 3 or w.ndim > 5:
        raise ValueError(f"weights must be [M, C/g, k...] with 1-3 spatial dims, got shape {w.shape}")
    while w.ndim < 5:
        w = w.reshape(w.shape[:2] + (1,) + w.shape[2:])
    return w


def pack_dw_weights(w, multiplier=1):
    """Pack depthwise weights w[C*m, 1, (kd,) (kh,) kw] (float32).

    multiplier == 1 -> ndarray float32 [ceil(C/8), kd*kh*kw, 8] (zero-padded lanes),
    lane l of block cb holds channel cb*8 + l, taps in (kd, kh, kw) row-major order.
    multiplier m > 1 -> GroupedPacked (output channel o reads input channel o // m),
    accepted by dwconv_nchwc and groupconv_nchwc.
    """
    w = _as5d(w)
    if w.shape[1] != 1:
        raise ValueError(f"depthwise weights need shape[1] == 1, got {w.shape}")
    M = w.shape[0]
    if multiplier != 1:
        if M % multiplier:
            raise ValueError("out channels not divisible by multiplier")
        return pack_grouped_weights(w, M // multiplier)
    K = w.shape[2] * w.shape[3] * w.shape[4]
    MB = (M + 7) // 8
    out = np.zeros((MB * 8, K), dtype=np.float32)
    out[:M] = w.reshape(M, K)
    return np.ascontiguousarray(out.reshape(MB, 8, K).transpose(0, 2, 1))


def pack_grouped_weights(w, group):
    """Pack grouped-conv weights w[M, C/group, (kd,) (kh,) kw] into a GroupedPacked.

    Output channel o (group g = o // (M/group)) reads input channels
    g*C/group ... (g+1)*C/group - 1.  Every (group, C/group, M/group) works; fast when
    an output block spans few input channels: M/group <= 8 with 8 % (M/group) == 0 and
    C/group small (ResNeXt 4 ch/group: 4 permute terms per block; depthwise multiplier m:
    1 term).  Cost is one FMA per (term, tap, pixel), i.e. T/1 of a depthwise conv.
    """
    w = _as5d(w)
    M, Cg = w.shape[0], w.shape[1]
    if M % group:
        raise ValueError(f"out channels {M} not divisible by group {group}")
    opg = M // group
    C = Cg * group
    K = w.shape[2] * w.shape[3] * w.shape[4]
    wf = w.reshape(M, Cg, K)
    MB = (M + 7) // 8
    blocks = []
    for ob in range(MB):
        terms = []
        for j in range(Cg):
            by_blk = {}
            for l in range(8):
                o = ob * 8 + l
                if o >= M:
                    continue
                c = (o // opg) * Cg + j
                by_blk.setdefault(c // 8, []).append((l, c % 8, o))
            for blk in sorted(by_blk):
                terms.append((blk, j, by_blk[blk]))
        blocks.append(terms)
    T = max(1, max(len(t) for t in blocks))
    wp = np.zeros((MB, T, K, 8), dtype=np.float32)
    n_terms = np.zeros(MB, dtype=np.int32)
    src = np.zeros((MB, T), dtype=np.int32)
    mode = np.zeros((MB, T), dtype=np.int32)
    idx = np.tile(np.arange(8, dtype=np.int32), (MB, T, 1))
    for ob, terms in enumerate(blocks):
        n_terms[ob] = len(terms)
        for t, (blk, j, lanes) in enumerate(terms):
            src[ob, t] = blk
            in_lanes = {il for _, il, _ in lanes}
            for l, il, o in lanes:
                idx[ob, t, l] = il
                wp[ob, t, :, l] = wf[o, j]
            if all(il == l for l, il, _ in lanes):
                mode[ob, t] = 0
                idx[ob, t] = np.arange(8)
            elif len(in_lanes) == 1:
                mode[ob, t] = 1
                idx[ob, t] = lanes[0][1]
            else:
                mode[ob, t] = 2
    return GroupedPacked(wp, n_terms, src, mode, idx, C, M, group)


# ---------------------------------------------------------------------------
cdef struct _dw_job:
    # one depthwise / grouped call, on the caller's stack while parallel_for runs
    const float* xb
    const float* w
    const float* bias
    float* y
    const float* res
    const fcdw_geom_t* g
    const fastcnn_act_t* act
    int out_channels
    long n_chunks
    fcdw_row_fn fn           # depthwise
    fcdw_grow_fn gfn         # grouped
    long t_max
    const int* n_terms
    const int* src
    const int* mode
    const int* idx


cdef inline long _item_rows(const _dw_job* j, long it, long* oz, long* oy, long* oy_end,
                            long* ob, long* n) noexcept nogil:
    """Item it -> (n, ob, oz, row range); returns the output offset of its first row."""
    cdef const fcdw_geom_t* g = j.g
    cdef long c = it % j.n_chunks
    cdef long t = it // j.n_chunks
    oy[0] = c * g.oh // j.n_chunks
    oy_end[0] = (c + 1) * g.oh // j.n_chunks
    oz[0] = t % g.od
    t = t // g.od
    ob[0] = t % g.cb_out
    n[0] = t // g.cb_out
    return ((n[0] * g.cb_out + ob[0]) * (g.od * g.oh * g.ow) + (oz[0] * g.oh + oy[0]) * g.ow) * _B


cdef inline int _valid_lanes(int out_channels, long ob) noexcept nogil:
    cdef int nv = 8
    if out_channels > 0:
        nv = <int>(out_channels - ob * 8)
        if nv > 8:
            nv = 8
    return nv


cdef void _dw_item(void* ctx, long it) noexcept nogil:
    cdef const _dw_job* j = <const _dw_job*>ctx
    cdef const fcdw_geom_t* g = j.g
    cdef long oz, oy, oy_end, ob, n
    cdef long yoff = _item_rows(j, it, &oz, &oy, &oy_end, &ob, &n)
    cdef long s_in = g.id * g.ih * g.iw
    cdef long K = g.kd * g.kh * g.kw
    j.fn(j.xb + (n * g.cb_in + ob) * s_in * _B, j.w + ob * K * _B,
         (j.bias + ob * _B) if j.bias != NULL else NULL,
         (j.res + yoff) if j.res != NULL else NULL,
         j.y + yoff, g, oz, oy, oy_end, j.act, ob * _B, _valid_lanes(j.out_channels, ob))


cdef void dwconv_nchwc_c(const float* xb, const float* packed_w, const float* bias, float* out_b,
                         const fcdw_geom_t* g, int act_kind, float act_p0, float act_p1,
                         const float* slope, const float* residual, int out_channels,
                         int n_threads) noexcept nogil:
    cdef fastcnn_act_t act
    act.kind = act_kind
    act.p0 = act_p0
    act.p1 = act_p1
    act.slope = slope
    cdef long planes = g.n * g.cb_out * g.od
    cdef long macs = planes * g.oh * g.ow * g.kd * g.kh * g.kw * _B
    cdef int nt = n_threads
    if macs < _SERIAL_MACS:
        nt = 1
    cdef _dw_job j
    j.xb, j.w, j.bias, j.y, j.res = xb, packed_w, bias, out_b, residual
    j.g = g
    j.act = &act
    j.out_channels = out_channels
    j.n_chunks = row_chunks(planes, g.oh, nt)
    j.fn = fcdw_pick_row(_isa, g)
    parallel_for(nt, planes * j.n_chunks, _dw_item, &j)


cdef void _g_item(void* ctx, long it) noexcept nogil:
    cdef const _dw_job* j = <const _dw_job*>ctx
    cdef const fcdw_geom_t* g = j.g
    cdef long oz, oy, oy_end, ob, n
    cdef long yoff = _item_rows(j, it, &oz, &oy, &oy_end, &ob, &n)
    cdef long s_in = g.id * g.ih * g.iw
    cdef long K = g.kd * g.kh * g.kw
    cdef fcdw_terms_t tm
    tm.n_terms = j.n_terms[ob]
    tm.src = j.src + ob * j.t_max
    tm.mode = j.mode + ob * j.t_max
    tm.idx = j.idx + ob * j.t_max * _B
    j.gfn(j.xb + n * g.cb_in * s_in * _B, j.w + ob * j.t_max * K * _B, &tm,
          (j.bias + ob * _B) if j.bias != NULL else NULL,
          (j.res + yoff) if j.res != NULL else NULL,
          j.y + yoff, g, oz, oy, oy_end, j.act, ob * _B, _valid_lanes(j.out_channels, ob))


cdef void groupconv_nchwc_c(const float* xb, const float* packed_w, long t_max,
                            const int* n_terms, const int* src, const int* mode, const int* idx,
                            const float* bias, float* out_b, const fcdw_geom_t* g,
                            int act_kind, float act_p0, float act_p1, const float* slope,
                            const float* residual, int out_channels, int n_threads) noexcept nogil:
    cdef fastcnn_act_t act
    act.kind = act_kind
    act.p0 = act_p0
    act.p1 = act_p1
    act.slope = slope
    cdef long planes = g.n * g.cb_out * g.od
    cdef long macs = planes * g.oh * g.ow * g.kd * g.kh * g.kw * _B * t_max
    cdef int nt = n_threads
    if macs < _SERIAL_MACS:
        nt = 1
    cdef _dw_job j
    j.xb, j.w, j.bias, j.y, j.res = xb, packed_w, bias, out_b, residual
    j.g = g
    j.act = &act
    j.out_channels = out_channels
    j.n_chunks = row_chunks(planes, g.oh, nt)
    j.gfn = fcdw_pick_grow(_isa, g)
    j.t_max, j.n_terms, j.src, j.mode, j.idx = t_max, n_terms, src, mode, idx
    parallel_for(nt, planes * j.n_chunks, _g_item, &j)


# ---------------------------------------------------------------------------
def _triple(v, name):
    t = tuple(int(a) for a in v)
    if len(t) != 3:
        raise ValueError(f"{name} must have 3 entries (D, H, W), got {v!r}")
    return t


def _padded_vec(v, n, name):
    """float32 contiguous copy of a per-channel vector, zero-padded to n."""
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float32).reshape(-1)
    if a.shape[0] > n:
        raise ValueError(f"{name} has {a.shape[0]} entries, more than {n} padded channels")
    out = np.zeros(n, dtype=np.float32)
    out[:a.shape[0]] = a
    return out


def _check_blocked(a, name, writable=False):
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 4 \
            or a.shape[3] != 8 or not a.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous float32 ndarray [N, CB, S, 8]")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writable")


cdef _fill_geom(fcdw_geom_t* g, xb, out_b, in_dhw, out_dhw, kernel, strides, pads_begin, dilations):
    _check_blocked(xb, "xb")
    _check_blocked(out_b, "out_b", writable=True)
    i3 = _triple(in_dhw, "in_dhw")
    o3 = _triple(out_dhw, "out_dhw")
    k3 = _triple(kernel, "kernel")
    s3 = _triple(strides, "strides")
    p3 = _triple(pads_begin, "pads_begin")
    d3 = _triple(dilations, "dilations")
    if min(i3 + o3 + k3 + s3 + d3) < 1 or min(p3) < 0:
        raise ValueError("sizes, kernel, strides, dilations must be >= 1 and pads >= 0")
    if xb.shape[2] != i3[0] * i3[1] * i3[2]:
        raise ValueError(f"xb spatial size {xb.shape[2]} != prod(in_dhw) {i3}")
    if out_b.shape[2] != o3[0] * o3[1] * o3[2] or out_b.shape[0] != xb.shape[0]:
        raise ValueError(f"out_b shape {out_b.shape} does not match batch {xb.shape[0]} / out_dhw {o3}")
    g.n = xb.shape[0]
    g.cb_in = xb.shape[1]
    g.cb_out = out_b.shape[1]
    g.id, g.ih, g.iw = i3
    g.od, g.oh, g.ow = o3
    g.kd, g.kh, g.kw = k3
    g.sd, g.sh, g.sw = s3
    g.pd, g.ph, g.pw = p3
    g.dd, g.dh, g.dw = d3


def _prep_epilogue(bias_or_None, slope_or_None, residual_or_None, out_b, act_kind):
    n = out_b.shape[1] * 8
    bias = _padded_vec(bias_or_None, n, "bias")
    slope = _padded_vec(slope_or_None, n, "slope")
    if act_kind == 10 and slope is None:
        raise ValueError("PRELU needs a slope array")
    res = residual_or_None
    if res is not None:
        _check_blocked(res, "residual")
        if res.shape != out_b.shape:
            raise ValueError(f"residual shape {res.shape} != out_b shape {out_b.shape}")
    return bias, slope, res


cdef inline const float* _fptr(a):
    cdef cnp.ndarray arr
    if a is None:
        return NULL
    arr = <cnp.ndarray>a
    return <const float*>cnp.PyArray_DATA(arr)


cdef inline const int* _iptr(a):
    return <const int*>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef _grouped_args(fcdw_geom_t* g, xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel,
                   strides, pads_begin, dilations, int act_kind, slope_or_None, residual_or_None,
                   int group, int in_channels, int out_channels):
    """Validate a grouped call; fill g; return (weights, term tables, epilogue arrays, M)."""
    if not isinstance(packed_w, GroupedPacked):
        raise ValueError("packed_w must come from pack_grouped_weights")
    if packed_w.group != group or packed_w.in_channels != in_channels:
        raise ValueError(f"packed_w was built for group={packed_w.group}, "
                         f"in_channels={packed_w.in_channels}")
    _fill_geom(g, xb, out_b, in_dhw, out_dhw, kernel, strides, pads_begin, dilations)
    wp = np.ascontiguousarray(packed_w.weights, dtype=np.float32)
    if wp.ndim != 4 or wp.shape[0] != g.cb_out or wp.shape[2] != g.kd * g.kh * g.kw \
            or wp.shape[3] != 8:
        raise ValueError(f"packed weights {wp.shape} do not match {g.cb_out} output blocks, "
                         f"K={g.kd*g.kh*g.kw}")
    if (in_channels + 7) // 8 != g.cb_in:
        raise ValueError(f"xb has {g.cb_in} blocks, in_channels={in_channels}")
    if out_channels <= 0:
        out_channels = packed_w.out_channels
    t_max = wp.shape[1]
    tables = (np.ascontiguousarray(packed_w.n_terms, dtype=np.int32),
              np.ascontiguousarray(packed_w.src, dtype=np.int32),
              np.ascontiguousarray(packed_w.mode, dtype=np.int32),
              np.ascontiguousarray(packed_w.idx, dtype=np.int32))
    if tables[0].shape != (g.cb_out,) or tables[1].shape != (g.cb_out, t_max) \
            or tables[2].shape != (g.cb_out, t_max) or tables[3].shape != (g.cb_out, t_max, 8):
        raise ValueError("grouped term tables do not match the packed weights")
    if tables[0].size and (tables[0].min() < 0 or tables[0].max() > t_max):
        raise ValueError("grouped term counts out of range")
    if tables[1].size and (tables[1].min() < 0 or tables[1].max() >= g.cb_in):
        raise ValueError("grouped term source blocks out of range")
    if tables[3].size and (tables[3].min() < 0 or tables[3].max() > 7):
        raise ValueError("grouped lane map out of range")
    return wp, tables, _prep_epilogue(bias_or_None, slope_or_None, residual_or_None, out_b,
                                      act_kind), out_channels


def dwconv_nchwc(xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides, pads_begin,
                 dilations, int act_kind, float act_p0, float act_p1, slope_or_None,
                 residual_or_None, int n_threads, int out_channels=0):
    """Depthwise convolution in NCHWc, writes out_b; returns out_b.

    xb         float32 [N, CB, Di*Hi*Wi, 8] C-contiguous, channels zero-padded
    packed_w   pack_dw_weights(w) ndarray [CB, kd*kh*kw, 8] (multiplier 1: CB_out == CB),
               or a GroupedPacked (multiplier > 1; forwarded to groupconv_nchwc)
    bias_or_None   float32 [M] (or already padded [CB_out*8])
    out_b      float32 [N, CB_out, Do*Ho*Wo, 8] C-contiguous, written (OUT)
    in_dhw, out_dhw, kernel, strides, pads_begin, dilations: 3 ints each (D, H, W);
               end pads are implied by out_dhw
    act_kind, act_p0, act_p1: epilogue.h activation code and parameters
    slope_or_None  float32 [M] (PRELU)
    residual_or_None  float32 like out_b, added before the activation
    n_threads  threads of fastcnn's pool (tiny problems run serial)
    out_channels  real output channel count M; when > 0 the padded lanes of the last
               block are written as 0 (otherwise they hold act(residual)).
    """
    if isinstance(packed_w, GroupedPacked):
        return groupconv_nchwc(xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel,
                               strides, pads_begin, dilations, act_kind, act_p0, act_p1,
                               slope_or_None, residual_or_None, n_threads, packed_w.group,
                               packed_w.in_channels, out_channels)
    cdef fcdw_geom_t g
    _fill_geom(&g, xb, out_b, in_dhw, out_dhw, kernel, strides, pads_begin, dilations)
    pw = packed_w
    if not isinstance(pw, np.ndarray) or pw.dtype != np.float32 or not pw.flags.c_contiguous \
            or pw.ndim != 3 or pw.shape[2] != 8:
        raise ValueError("packed_w must be the C-contiguous float32 [CB, K, 8] from pack_dw_weights")
    if pw.shape[0] != g.cb_out or pw.shape[1] != g.kd * g.kh * g.kw:
        raise ValueError(f"packed_w shape {pw.shape} does not match {g.cb_out} blocks x K={g.kd*g.kh*g.kw}")
    if g.cb_in != g.cb_out:
        raise ValueError("depthwise multiplier 1 needs as many input as output channel blocks")
    bias, slope, res = _prep_epilogue(bias_or_None, slope_or_None, residual_or_None, out_b, act_kind)
    cdef const float* px = _fptr(xb)
    cdef const float* pwp = _fptr(pw)
    cdef const float* pb = _fptr(bias)
    cdef float* py = <float*>_fptr(out_b)
    cdef const float* ps = _fptr(slope)
    cdef const float* pr = _fptr(res)
    with nogil:
        dwconv_nchwc_c(px, pwp, pb, py, &g, act_kind, act_p0, act_p1, ps, pr, out_channels,
                       n_threads)
    return out_b


def groupconv_nchwc(xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides,
                    pads_begin, dilations, int act_kind, float act_p0, float act_p1, slope_or_None,
                    residual_or_None, int n_threads, int group, int in_channels,
                    int out_channels=0):
    """Grouped convolution in NCHWc (each lane an output channel), writes out_b; returns it.

    Arguments as dwconv_nchwc, plus
    packed_w     GroupedPacked from pack_grouped_weights(w[M, C/group, k...], group)
    group, in_channels  must match the ones packed_w was built for
    xb           float32 [N, ceil(in_channels/8), S_in, 8]; out_b [N, ceil(M/8), S_out, 8]
    """
    cdef fcdw_geom_t g
    wp, tables, (bias, slope, res), out_channels = _grouped_args(
        &g, xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides, pads_begin,
        dilations, act_kind, slope_or_None, residual_or_None, group, in_channels, out_channels)
    cdef long t_max = wp.shape[1]
    cdef const float* px = _fptr(xb)
    cdef const float* pwp = _fptr(wp)
    cdef const float* pb = _fptr(bias)
    cdef float* py = <float*>_fptr(out_b)
    cdef const float* ps = _fptr(slope)
    cdef const float* pr = _fptr(res)
    cdef const int* pnt = _iptr(tables[0])
    cdef const int* psrc = _iptr(tables[1])
    cdef const int* pmode = _iptr(tables[2])
    cdef const int* pidx = _iptr(tables[3])
    with nogil:
        groupconv_nchwc_c(px, pwp, t_max, pnt, psrc, pmode, pidx, pb, py, &g, act_kind, act_p0,
                          act_p1, ps, pr, out_channels, n_threads)
    return out_b


# ---------------------------------------------------------------------------
# Native executor steps: the same calls as dwconv_nchwc / groupconv_nchwc,
# validated once at bind time, then run by the executor without Python.
from libc.stdlib cimport free, malloc
from fastcnn._kernels.executor cimport make_c_call


cdef struct dw_call_args:
    const float *xb
    const float *w
    const float *bias
    float *y
    const float *slope
    const float *res
    fcdw_geom_t g
    int act_kind
    float p0, p1
    int out_channels
    int n_threads


cdef void _dw_call(void *a) noexcept nogil:
    cdef dw_call_args *r = <dw_call_args *> a
    dwconv_nchwc_c(r.xb, r.w, r.bias, r.y, &r.g, r.act_kind, r.p0, r.p1, r.slope, r.res,
                   r.out_channels, r.n_threads)


def dwconv_call(xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides, pads_begin,
                dilations, int act_kind, float act_p0, float act_p1, slope_or_None,
                residual_or_None, int n_threads, int out_channels=0):
    """dwconv_nchwc's arguments (multiplier 1); returns an executor Call that runs it."""
    cdef dw_call_args *r
    if isinstance(packed_w, GroupedPacked):
        raise ValueError("dwconv_call takes multiplier-1 depthwise weights")
    pw = packed_w
    if not isinstance(pw, np.ndarray) or pw.dtype != np.float32 or not pw.flags.c_contiguous \
            or pw.ndim != 3 or pw.shape[2] != 8:
        raise ValueError("packed_w must be the C-contiguous float32 [CB, K, 8] from pack_dw_weights")
    bias, slope, res = _prep_epilogue(bias_or_None, slope_or_None, residual_or_None, out_b, act_kind)
    r = <dw_call_args *> malloc(sizeof(dw_call_args))
    if r == NULL:
        raise MemoryError()
    try:
        _fill_geom(&r.g, xb, out_b, in_dhw, out_dhw, kernel, strides, pads_begin, dilations)
        if pw.shape[0] != r.g.cb_out or pw.shape[1] != r.g.kd * r.g.kh * r.g.kw \
                or r.g.cb_in != r.g.cb_out:
            raise ValueError(f"packed_w shape {pw.shape} does not match the geometry")
    except BaseException:
        free(r)
        raise
    r.xb = _fptr(xb)
    r.w = _fptr(pw)
    r.bias = _fptr(bias)
    r.y = <float*>_fptr(out_b)
    r.slope = _fptr(slope)
    r.res = _fptr(res)
    r.act_kind, r.p0, r.p1 = act_kind, act_p0, act_p1
    r.out_channels, r.n_threads = out_channels, n_threads
    return make_c_call(_dw_call, r, (xb, pw, bias, out_b, slope, res))


cdef struct g_call_args:
    const float *xb
    const float *w
    long t_max
    const int *n_terms
    const int *src
    const int *mode
    const int *idx
    const float *bias
    float *y
    const float *slope
    const float *res
    fcdw_geom_t g
    int act_kind
    float p0, p1
    int out_channels
    int n_threads


cdef void _g_call(void *a) noexcept nogil:
    cdef g_call_args *r = <g_call_args *> a
    groupconv_nchwc_c(r.xb, r.w, r.t_max, r.n_terms, r.src, r.mode, r.idx, r.bias, r.y, &r.g,
                      r.act_kind, r.p0, r.p1, r.slope, r.res, r.out_channels, r.n_threads)


def groupconv_call(xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides,
                   pads_begin, dilations, int act_kind, float act_p0, float act_p1, slope_or_None,
                   residual_or_None, int n_threads, int group, int in_channels,
                   int out_channels=0):
    """groupconv_nchwc's arguments; returns an executor Call that runs it (also the
    depthwise multiplier > 1 weights from pack_dw_weights, which are a GroupedPacked)."""
    cdef g_call_args *r = <g_call_args *> malloc(sizeof(g_call_args))
    if r == NULL:
        raise MemoryError()
    try:
        wp, tables, (bias, slope, res), out_channels = _grouped_args(
            &r.g, xb, packed_w, bias_or_None, out_b, in_dhw, out_dhw, kernel, strides,
            pads_begin, dilations, act_kind, slope_or_None, residual_or_None, group, in_channels,
            out_channels)
    except BaseException:
        free(r)
        raise
    r.xb = _fptr(xb)
    r.w = _fptr(wp)
    r.t_max = wp.shape[1]
    r.n_terms = _iptr(tables[0])
    r.src = _iptr(tables[1])
    r.mode = _iptr(tables[2])
    r.idx = _iptr(tables[3])
    r.bias = _fptr(bias)
    r.y = <float*>_fptr(out_b)
    r.slope = _fptr(slope)
    r.res = _fptr(res)
    r.act_kind, r.p0, r.p1 = act_kind, act_p0, act_p1
    r.out_channels, r.n_threads = out_channels, n_threads
    return make_c_call(_g_call, r, (xb, wp, tables, bias, out_b, slope, res))
