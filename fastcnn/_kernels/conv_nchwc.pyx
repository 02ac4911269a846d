# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Direct convolution and layout reorders in the channel-blocked NCHWc layout.

Design:
  layout   NCHWc with block B = 8 (one ymm register of output channels), spatial
           dims flattened: x[N, C, S] <-> xb[N, ceil(C/8), S, 8], padding lanes 0.
  weights  packed once by pack_conv_weights into w[Mb, cbg, K, icb, 8]
           (oc block, input-channel block of the group, kernel tap, input channel,
           8 output channels).  icb = 8 for blocked input, icb = C for the plain
           NCHW-input variant used by small-C first layers (no 3->8 padding).
  loops    every conv is 3D (D,H,W); work item = (n, group, oc-tile, rectangle
           of R output rows x a column segment); parallel axis = all work
           items, run by the thread pool's parallel_for (guided claims: large
           contiguous chunks first = the locality of a static split, single
           items at the end, and no team barrier, so a thread delayed by another
           process does not stall the whole op: on this shared 2-core box a
           static OpenMP split measured 13 GFLOP/s vs onnxruntime's 102 with 2
           threads under load).  R ~ _RECT_PX / width rows (fewer when the
           threads would run out of items); rows wider than 256 columns are
           cut in segments of _SEG.  Inside a rectangle: input-channel-block
           chunks outer (~128 KiB of weights per chunk), pixel tiles inner.
  borders  the rectangle's rows are grouped in runs with equal valid kd/kh
           ranges and its columns in runs with equal valid kw range; each
           (row run x column run) block is one tap class whose pixels are cut
           row-major into balanced tiles of up to P pixels, each pixel with
           its own input/output offset.  So a border column of R rows is one
           R-pixel tile, dilation 18 on 33 columns (no interior at all) runs
           full tiles, 7-wide rows run 5..6-pixel tiles across rows, and taps
           outside the image are never visited (no zero padding, no P=1 tiles
           except at corners).
  tile     avx2: 2 oc-blocks x 6 pixels (12 ymm accumulators, FMA with broadcast);
           avx512 (AVX-512VL, still 8-wide ymm, 32 registers): 4 x 6; with blocked
           input the weights are packed in pairs of oc blocks ([.., 8, 16], lanes 16)
           and one zmm holds two blocks of a pixel: 8 blocks x 6 pixels, twice the
           work per tile for the same per-tile costs (1x1 16->64 at 55x55: 95 -> 83 us),
           and tiles of at most 4 blocks (32 channels) run 4 x 12 (_set_wide);
           portable plain C: 2 x 4.  Inner loops: kernel row, kw, input
           channel block, 8 channels (unrolled); the FMA is pinned to its
           in-place 231 form (see conv_nchwc_tile.h).
  1x1      stride-1 unpadded pointwise convs flatten the spatial dims into one
           long row cut in segments: a GEMM-like tile over many pixels, no im2col.
  epilogue y = act(acc + bias[c] + residual) in registers (transcendental
           activations are applied scalar on the stored tile).
"""
import numpy as np
cimport numpy as cnp
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from fastcnn._kernels.threadpool cimport parallel_for
from fastcnn._kernels.executor cimport make_c_call

cnp.import_array()

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()
    int FASTCNN_ISA_PORTABLE, FASTCNN_ISA_AVX2, FASTCNN_ISA_AVX512

cdef extern from "reorder.h" nogil:
    void fc_to_blocked(int isa, const float *x, float *xb, long S, long cc, long s0, long s1)
    void fc_from_blocked(int isa, const float *xb, float *x, long S, long cc, long s0, long s1)

cdef extern from "conv_nchwc.h" nogil:
    int fc_conv_ocb_max(int isa, int lanes)
    void fc_conv_rect(int isa, const fc_conv_params *p, long n, long ocb0, long nocb,
                      long r0, long r1, long c0, long c1)
    int FC_MAX_ROWS, FC_RECT_ROWS, FC_RECT_COLS

DEF BLOCK = 8

cdef int _hw_isa = fastcnn_cpu_level()
cdef int _isa = _hw_isa

_ISA_NAMES = {0: "portable", 1: "avx2", 2: "avx512"}


from fastcnn._kernels.isa import choose as choose_isa


def set_isa(name):
    """Force an ISA ("portable", "avx2", "avx512") or "auto"; for tests/benchmarks.
    Returns the previous name.  Asking for more than the CPU has raises."""
    global _isa
    prev = _ISA_NAMES[_isa]
    _isa = choose_isa(name, {v: k for k, v in _ISA_NAMES.items()}, _hw_isa)
    return prev


def isa_name():
    """Name of the dispatched ISA: 'portable', 'avx2' or 'avx512'."""
    return _ISA_NAMES[_isa]


def simd_block():
    """Channel block B of the NCHWc layout used by the dispatched ISA (always 8:
    the AVX-512 variant keeps 8-float ymm vectors and uses its 32 registers for a
    larger register tile instead of 16-wide blocks)."""
    return BLOCK


# ----------------------------------------------------------------------------- reorders

cdef struct _reorder_job:
    const float *src
    float *dst
    long C, S, Cb, nch
    bint to_blocked


cdef long _REORDER_SCH = 2048   # pixels per item


cdef void _reorder_item(void *ctx, long it) noexcept nogil:
    """Pixels [s0, s1) of one channel block of one image."""
    cdef _reorder_job *j = <_reorder_job *> ctx
    cdef long ch = it % j.nch
    cdef long cb = (it // j.nch) % j.Cb
    cdef long n = it // (j.nch * j.Cb)
    cdef long s0 = ch * _REORDER_SCH
    cdef long s1 = min(s0 + _REORDER_SCH, j.S)
    cdef long cc = min(j.C - cb * BLOCK, BLOCK)
    cdef long plain = (n * j.C + cb * BLOCK) * j.S
    cdef long blocked = ((n * j.Cb + cb) * j.S) * BLOCK
    if j.to_blocked:
        fc_to_blocked(_isa, j.src + plain, j.dst + blocked, j.S, cc, s0, s1)
    else:
        fc_from_blocked(_isa, j.src + blocked, j.dst + plain, j.S, cc, s0, s1)


cdef void _reorder(const float *src, float *dst, long N, long C, long S, int n_threads,
                   bint to_blocked) noexcept nogil:
    cdef _reorder_job j
    j.src, j.dst, j.C, j.S, j.to_blocked = src, dst, C, S, to_blocked
    j.Cb = (C + BLOCK - 1) // BLOCK
    j.nch = (S + _REORDER_SCH - 1) // _REORDER_SCH
    parallel_for(n_threads if N * C * S > 8192 else 1, N * j.Cb * j.nch, _reorder_item, &j)


cdef void reorder_to_blocked_c(const float *x, float *xb, long N, long C, long S,
                               int n_threads) noexcept nogil:
    _reorder(x, xb, N, C, S, n_threads, True)


cdef void reorder_from_blocked_c(const float *xb, float *x, long N, long C, long S,
                                 int n_threads) noexcept nogil:
    _reorder(xb, x, N, C, S, n_threads, False)


def _f32c(a, name):
    if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.c_contiguous:
        raise TypeError("%s must be a C-contiguous float32 ndarray" % name)
    return a


def reorder_to_blocked(x, out, int n_threads=1):
    """NCHW -> NCHWc.  x: float32 [N, C, *spatial] (C-contiguous, spatial flattened
    to S); out: float32 [N, ceil(C/8), S, 8] (any shape with that size, C-contig).
    Padding channels are written as 0."""
    _f32c(x, "x"); _f32c(out, "out")
    cdef long N = x.shape[0], C = x.shape[1]
    cdef long S = x.size // (N * C) if N * C > 0 else 0
    cdef long Cb = (C + BLOCK - 1) // BLOCK
    if out.size != N * Cb * S * BLOCK:
        raise ValueError("out must hold N*ceil(C/8)*S*8 = %d floats, has %d" % (N * Cb * S * BLOCK, out.size))
    cdef float[::1] xv = x.reshape(-1)
    cdef float[::1] ov = out.reshape(-1)
    if xv.shape[0] == 0:
        return out
    with nogil:
        reorder_to_blocked_c(&xv[0], &ov[0], N, C, S, n_threads)
    return out


def reorder_from_blocked(xb, out, int n_threads=1):
    """NCHWc -> NCHW.  xb: float32 [N, ceil(C/8), S, 8]; out: float32 [N, C, *spatial]
    (C = out.shape[1], S = prod(spatial)).  Padding lanes of xb are ignored."""
    _f32c(xb, "xb"); _f32c(out, "out")
    cdef long N = out.shape[0], C = out.shape[1]
    cdef long S = out.size // (N * C) if N * C > 0 else 0
    cdef long Cb = (C + BLOCK - 1) // BLOCK
    if xb.size != N * Cb * S * BLOCK:
        raise ValueError("xb must hold N*ceil(C/8)*S*8 = %d floats, has %d" % (N * Cb * S * BLOCK, xb.size))
    cdef float[::1] xv = xb.reshape(-1)
    cdef float[::1] ov = out.reshape(-1)
    if ov.shape[0] == 0:
        return out
    with nogil:
        reorder_from_blocked_c(&xv[0], &ov[0], N, C, S, n_threads)
    return out


# ----------------------------------------------------------------------------- weights

def aligned_empty(shape, long align=64):
    """float32 C-contiguous array of `shape` whose data starts on an `align`-byte
    boundary (numpy's default is 16: then every other 32-byte row of weights
    straddles two cache lines)."""
    cdef long n = int(np.prod(shape))
    raw = np.empty(n + align // 4, np.float32)
    cdef long skip = (-raw.ctypes.data % align) // 4
    return raw[skip:skip + n].reshape(shape)


def pack_lanes(bint blocked_input=True, long M=64, long group=1):
    """Lanes pack_conv_weights uses by default under the dispatched ISA for M output
    channels in `group` groups: 16 (pairs of oc blocks, for the zmm tile) on AVX-512
    and an even number >= 4 of oc blocks per group, else 8.  (Two
    blocks would make a tile of one zmm column, 6 FMA chains: a 1x1 64->16 ran 26%
    slower than 2 ymm columns; an odd count would compute a zero half-pair.)"""
    cdef long mbg = (M + BLOCK - 1) // BLOCK // group if group > 0 else 0
    if _isa == FASTCNN_ISA_AVX512 and mbg >= 4 and mbg % 2 == 0 and (blocked_input or group == 1):
        return 16
    return 8


def pack_conv_weights(w, long group=1, bint blocked_input=True, int lanes=0):
    """Pack ONNX conv weights w[M, C/group, *kernel] (float32; 1..3 spatial dims)
    into w_packed[Mb, cbg, K, icb, 8] for conv_nchwc:
      Mb  = ceil(M/8) output-channel blocks (all groups, zero padded),
      cbg = input-channel blocks per group = ceil((C/group)/8),
      K   = prod(kernel), icb = 8 (blocked input).
    blocked_input=False (group must be 1) packs for the plain NCHW-input variant:
      cbg = 1, icb = C (no channel padding) -- for small-C first layers.
    Grouped convs need C/group and M/group multiples of 8 (blocked input).
    lanes=16 (default on AVX-512 with blocked input, see pack_lanes) packs pairs of oc
    blocks of each group together: [G * ceil(Mb/G / 2), cbg, K, 8, 16], the upper
    half of a group's last pair zero when its block count is odd."""
    if lanes == 0:
        lanes = pack_lanes(blocked_input, w.shape[0], group)
    if lanes not in (8, 16):
        raise ValueError("lanes must be 8 or 16")
    if lanes == 16 and _hw_isa < FASTCNN_ISA_AVX512:
        raise ValueError("lanes=16 needs AVX-512")
    w = np.ascontiguousarray(w, dtype=np.float32)
    cdef long M = w.shape[0], Cg = w.shape[1]
    cdef long K = w.size // (M * Cg) if M * Cg > 0 else 1
    if group < 1 or M % group:
        raise ValueError("M=%d not divisible by group=%d" % (M, group))
    if group > 1 and (Cg % BLOCK or (M // group) % BLOCK):
        raise ValueError("grouped NCHWc conv needs C/group and M/group multiples of 8 "
                         "(got %d, %d)" % (Cg, M // group))
    Mb = (M + BLOCK - 1) // BLOCK
    w3 = w.reshape(M, Cg, K)
    if not blocked_input:
        if group != 1:
            raise ValueError("plain-input packing needs group == 1")
        nb = Mb if lanes == 8 else (Mb + 1) // 2     # blocks, or pairs of them
        wp = np.zeros((nb * lanes, Cg, K), np.float32)
        wp[:M] = w3
        # [nb, lanes, C, K] -> [nb, 1, K, C, lanes]
        out = aligned_empty((nb, 1, K, Cg, lanes))
        out[:, 0] = wp.reshape(nb, lanes, Cg, K).transpose(0, 3, 2, 1)
        return out
    cbg = (Cg + BLOCK - 1) // BLOCK
    cdef float[:, :, ::1] src = w3
    cdef float[:, :, :, :, ::1] dst
    cdef long cb, k, ic, c, m, lane, n_cb = cbg, n_reg, kk = K, n_lanes = lanes
    cdef long mbg = Mb // group, mbg2 = (Mb // group + 1) // 2, r, g, h, c_hi
    # [M, Cg, K] -> [registers, cbg, K, 8ic, lanes] (a register: one oc block, or a pair
    # of them within a group), zero padded.  Block by block: each (register, cb) is a few
    # KB of output gathered from `lanes` rows of 8*K contiguous floats, so both sides stay
    # in cache (scattered reads made ResNet-18's packing ~55 ms; numpy's pad + 5-D
    # transpose ~80 ms).  Register r, lane h*8+l is channel (g*mbg + h')*8 + l with
    # h' = 2*(r - g*mbg2) + h for pairs (g = r // mbg2), = r for single blocks.
    n_reg = Mb if lanes == BLOCK else group * mbg2
    out = aligned_empty((n_reg, cbg, K, BLOCK, lanes))
    dst = out
    with nogil:
        for r in range(n_reg):
            for lane in range(n_lanes):
                if n_lanes == BLOCK:
                    m = r * BLOCK + lane
                else:
                    g = r // mbg2
                    h = 2 * (r - g * mbg2) + lane // BLOCK
                    m = (g * mbg + h) * BLOCK + lane % BLOCK if h < mbg else M
                for cb in range(n_cb):
                    c_hi = min(BLOCK, Cg - cb * BLOCK)
                    for ic in range(BLOCK):
                        c = cb * BLOCK + ic
                        if m < M and ic < c_hi:
                            for k in range(kk):
                                dst[r, cb, k, ic, lane] = src[m, c, k]
                        else:
                            for k in range(kk):
                                dst[r, cb, k, ic, lane] = 0.0
    return out


def pack_conv_weights_inplace(w, long group=1, int lanes=0):
    """pack_conv_weights(w, group, True, lanes) written over w's own memory, returned as a
    view of it, or None when the packed layout does not fill w's bytes exactly (M/group
    or C/group not a multiple of the register's channels) or w is not a writable,
    C-contiguous, 64-byte aligned float32 array.

    Register r of the packed layout, [cbg, K, 8, lanes], holds output channels
    [r*lanes, (r+1)*lanes) -- the same bytes as their rows in w[M, C/group, K] -- so each
    register's rows are copied to a small buffer and gathered back in place: no fresh
    memory, where the copy pack_conv_weights makes is 45 MB of first-touched pages
    (~15 ms of page faults) for ResNet-18.  w's values are gone afterwards: only for a
    weight nothing else reads (the session decides; see conv_fast.consuming)."""
    if lanes == 0:
        lanes = pack_lanes(True, w.shape[0], group)
    if lanes not in (8, 16) or (lanes == 16 and _hw_isa < FASTCNN_ISA_AVX512):
        return None
    if not isinstance(w, np.ndarray) or w.dtype != np.float32 or w.ndim < 3 or \
            not w.flags.c_contiguous or not w.flags.writeable or w.ctypes.data % 64:
        return None
    cdef long M = w.shape[0], Cg = w.shape[1]
    if M == 0 or Cg == 0 or group < 1 or M % group or Cg % BLOCK or (M // group) % lanes:
        return None
    cdef long K = w.size // (M * Cg)
    cdef long cbg = Cg // BLOCK, n_reg = M // lanes, L = lanes
    cdef long row = Cg * K, span = L * row
    cdef float *base = <float *> cnp.PyArray_DATA(w)
    cdef float *tmp = <float *> malloc(span * sizeof(float))
    cdef float *dst
    cdef const float *src
    cdef long r, lane, cb, k, ic
    if tmp == NULL:
        raise MemoryError()
    with nogil:
        for r in range(n_reg):
            dst = base + r * span
            memcpy(tmp, dst, span * sizeof(float))
            # dst[cb, k, ic, lane] = tmp[lane, cb*8 + ic, k]
            for lane in range(L):
                src = tmp + lane * row
                for cb in range(cbg):
                    for ic in range(BLOCK):
                        for k in range(K):
                            dst[((cb * K + k) * BLOCK + ic) * L + lane] = src[(cb * BLOCK + ic) * K + k]
    free(tmp)
    return w.reshape(n_reg, cbg, K, BLOCK, L)


# ----------------------------------------------------------------------------- conv

cdef void conv_nchwc_exec(fc_conv_params *p, long N, int n_threads) noexcept nogil:
    """Run the prepared conv for N images.
    Work item = (n, g, oc-tile, rectangle of R output rows x a column segment)."""
    cdef int isa = _isa
    cdef long ocbm = fc_conv_ocb_max(isa, p.lanes)
    p.wide = _wide
    cdef long G = p.Mb // p.mbg
    cdef long n_oct = (p.mbg + ocbm - 1) // ocbm
    cdef long rows = p.od * p.oh
    cdef long seg = p.ow
    cdef long nseg, nrect, R, items, k
    cdef double flops
    cdef int nt = n_threads
    cdef bint flat = rows == 1 and p.K == 1
    if seg > FC_RECT_COLS:
        seg = _SEG
    nseg = (p.ow + seg - 1) // seg
    flops = 2.0 * N * p.Mb * 8 * p.od * p.oh * p.ow * p.cbg * p.icb * p.K
    if flops < 4e5:
        nt = 1
    if flat and nt > 1:
        # pointwise with few oc tiles (96 channels = 3 tiles on 2 threads: one thread
        # idles a third of the time): cut the pixels into more segments until the items
        # divide evenly among the threads or there are >= 4 per thread
        k = nseg
        while ((N * G * n_oct * nseg) % nt != 0 and N * G * n_oct * nseg < 4 * nt
               and k < p.ow // 24):
            k += 1
            nseg = k
    # rows per rectangle: about _RECT_PX output pixels (border columns of R rows
    # then run as one tile), fewer when there would be under 8 items per thread
    # (guided scheduling then still balances a thread delayed by another process)
    R = 1
    if nseg == 1:
        R = (_RECT_PX + p.ow - 1) // p.ow
        if R > FC_RECT_ROWS:
            R = FC_RECT_ROWS
        if R > rows:
            R = rows
        while R > 1 and nt > 1 and N * G * n_oct * ((rows + R - 1) // R) < 8 * nt:
            R = (R + 1) // 2
    nrect = (rows + R - 1) // R
    R = (rows + nrect - 1) // nrect
    nrect = (rows + R - 1) // R
    items = N * G * n_oct * nrect * nseg
    cdef _conv_job job
    job.p = p
    job.isa = isa
    job.flat = flat
    job.ocbm, job.G, job.n_oct, job.nseg, job.nrect, job.R, job.rows = ocbm, G, n_oct, nseg, nrect, R, rows
    job.unit = 2 if p.lanes == 16 else 1
    job.units = (p.mbg + job.unit - 1) // job.unit
    parallel_for(nt, items, _conv_item, &job)


cdef struct _conv_job:
    fc_conv_params *p
    int isa
    bint flat
    long ocbm, G, n_oct, nseg, nrect, R, rows, unit, units


cdef void _conv_item(void *ctx, long it) noexcept nogil:
    cdef _conv_job *j = <_conv_job *> ctx
    cdef fc_conv_params *p = j.p
    cdef long t, rest, g, s, n, rc, ocb0, nocb, r0, r1
    if j.flat:
        # pointwise: oc tiles innermost, so one input segment stays in cache
        t = it % j.n_oct
        rest = it // j.n_oct
        g = rest % j.G
        rest = rest // j.G
        s = rest % j.nseg
        n = rest // j.nseg
        rc = 0
    else:
        # rectangles innermost: the oc tile's weights stay in cache
        s = it % j.nseg
        rest = it // j.nseg
        rc = rest % j.nrect
        rest = rest // j.nrect
        t = rest % j.n_oct
        rest = rest // j.n_oct
        g = rest % j.G
        n = rest // j.G
    # balanced oc tiles (5 blocks: 3 + 2, not 4 + 1: a one-block tile has only 6 FMA
    # chains), cut on pairs of blocks with 16 lanes
    ocb0 = (t * j.units // j.n_oct) * j.unit
    nocb = ((t + 1) * j.units // j.n_oct) * j.unit
    if nocb > p.mbg:
        nocb = p.mbg
    nocb -= ocb0
    ocb0 += g * p.mbg
    r0 = rc * j.R
    r1 = r0 + j.R
    if r1 > j.rows:
        r1 = j.rows
    fc_conv_rect(j.isa, p, n, ocb0, nocb, r0, r1, _seg_start(s, j.nseg, p.ow),
                 _seg_start(s + 1, j.nseg, p.ow))


cdef inline long _seg_start(long s, long nseg, long ow) noexcept nogil:
    """First column of segment s of nseg near-equal segments of a row of ow columns,
    on a multiple of 6 (the pixel tile) so that only the row's last tile is partial."""
    if s >= nseg:
        return ow
    cdef long c = (s * ow // nseg + 3) // 6 * 6
    return c if c < ow else ow


cdef long _chunk_for(long ocbm, long K, long icb, long cbg, long chunk_bytes) noexcept nogil:
    cdef long per_cb = ocbm * K * icb * BLOCK * 4
    cdef long ch = chunk_bytes // per_cb
    cdef long nch
    if ch < 1:
        ch = 1
    if ch > cbg:
        ch = cbg
    nch = (cbg + ch - 1) // ch
    return (cbg + nch - 1) // nch      # balanced: 16 blocks -> 8 + 8, not 7 + 7 + 2


_CHUNK_BYTES = [131072]
cdef int _wide = 1


def _set_wide(bint on):
    """Tuning knob (A/B): with weights packed in pairs (16 lanes), tiles of at most two
    zmm columns run 12 pixels (default on) instead of 6.  Returns the previous setting."""
    global _wide
    prev = bool(_wide)
    _wide = on
    return prev
cdef long _SEG = 96
cdef long _RECT_PX = 224


def _set_seg(long s):
    """Tuning knob: pixels per row segment for long rows (> FC_RECT_COLS = 256
    columns, e.g. flattened pointwise convs); at most 256.  Returns the previous."""
    global _SEG
    if not 1 <= s <= FC_RECT_COLS:
        raise ValueError("segment must be in [1, %d]" % FC_RECT_COLS)
    prev = _SEG
    _SEG = s
    return prev


def _set_rect_px(long px):
    """Tuning knob: output pixels per work rectangle (rows x full width) for
    rows of at most 256 columns (default 224: 4 rows of a 56-wide map, so its
    two border columns run as 4-pixel tiles).  Returns the previous value."""
    global _RECT_PX
    if px < 1:
        raise ValueError("rect_px must be >= 1")
    prev = _RECT_PX
    _RECT_PX = px
    return prev


def _set_chunk_bytes(long b):
    """Tuning knob: bytes of weights per input-channel chunk (default 128 KiB,
    from L2: the accumulators are stored and reloaded between chunks, and each
    pass over a tile pays its pointer setup; measured 3x3 64ch 56x56: 16 KiB
    87%, 36 KiB 95%, 72+ KiB 97% of peak in a single-thread harness).
    Applies to convs prepared afterwards; returns the previous value."""
    prev = _CHUNK_BYTES[0]
    _CHUNK_BYTES[0] = b
    return prev


cdef object _fill_conv_params(fc_conv_params *p, xb, packed_w, bias, out_b, in_dhw, out_dhw,
                              kernel, strides, pads_begin, dilations, long group, int act_kind,
                              float act_p0, float act_p1, slope, residual, long n_out_channels):
    """Validate conv_nchwc's arguments and fill *p; return the arrays p points into
    (to keep alive), or None when the batch is empty."""
    cdef long N, Mb, cbg, K, icb, S_in, S_out
    _f32c(xb, "xb"); _f32c(packed_w, "packed_w"); _f32c(out_b, "out_b")
    if packed_w.ndim != 5 or packed_w.shape[4] not in (BLOCK, 2 * BLOCK):
        raise ValueError("packed_w must come from pack_conv_weights")
    cdef int lanes = packed_w.shape[4]
    Mb, cbg, K, icb = packed_w.shape[0], packed_w.shape[1], packed_w.shape[2], packed_w.shape[3]
    if lanes == 2 * BLOCK:
        # pairs of blocks: the block count comes from out_b
        if out_b.ndim != 4 or out_b.shape[3] != BLOCK:
            raise ValueError("out_b must be [N, Mb, S_out, 8]")
        if group < 1 or out_b.shape[1] % group or \
                packed_w.shape[0] != group * ((out_b.shape[1] // group + 1) // 2):
            raise ValueError("16-lane packed_w does not match out_b's %d channel blocks and "
                             "group %d" % (out_b.shape[1], group))
        if _hw_isa < FASTCNN_ISA_AVX512:
            raise ValueError("16-lane packed_w needs AVX-512")
        Mb = out_b.shape[1]
    if group < 1 or Mb % group:
        raise ValueError("bad group")
    in_dhw = [int(v) for v in in_dhw]; out_dhw = [int(v) for v in out_dhw]
    kernel = [int(v) for v in kernel]; strides = [int(v) for v in strides]
    pads_begin = [int(v) for v in pads_begin]; dilations = [int(v) for v in dilations]
    if len(in_dhw) != 3 or len(out_dhw) != 3 or len(kernel) != 3 or len(strides) != 3 \
            or len(pads_begin) != 3 or len(dilations) != 3:
        raise ValueError("in_dhw/out_dhw/kernel/strides/pads_begin/dilations need 3 entries (D, H, W)")
    if kernel[0] * kernel[1] * kernel[2] != K:
        raise ValueError("kernel %r does not match packed weights (K=%d)" % (kernel, K))
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1 or min(in_dhw) < 1 or min(out_dhw) < 1:
        raise ValueError("sizes/strides/dilations must be >= 1")
    if kernel[0] * kernel[1] > FC_MAX_ROWS:
        raise ValueError("kernel depth*height too large")
    S_in = in_dhw[0] * in_dhw[1] * in_dhw[2]
    S_out = out_dhw[0] * out_dhw[1] * out_dhw[2]
    N = xb.shape[0]
    if xb.ndim == 4:
        if icb != BLOCK or xb.shape[3] != BLOCK or xb.shape[2] != S_in or xb.shape[1] != cbg * group:
            raise ValueError("blocked xb shape %r does not match weights/in_dhw/group" % (xb.shape,))
        p[0].blocked = 1
        p[0].cb_total = xb.shape[1]
    elif xb.ndim == 3:
        if group != 1 or cbg != 1 or xb.shape[1] != icb or xb.shape[2] != S_in:
            raise ValueError("plain xb [N, C, S] needs weights packed with blocked_input=False, group 1")
        p[0].blocked = 0
        p[0].cb_total = 1
    else:
        raise ValueError("xb must be 3D (plain) or 4D (blocked)")
    if out_b.shape[0] != N or out_b.size != N * Mb * S_out * BLOCK:
        raise ValueError("out_b must be [N, Mb, S_out, 8] = [%d, %d, %d, 8]" % (N, Mb, S_out))
    cdef long M = n_out_channels
    if M < 0:
        if bias is not None:
            M = bias.shape[0]
        elif slope is not None:
            M = slope.shape[0]
        else:
            M = Mb * BLOCK
    if M > Mb * BLOCK or M <= (Mb - 1) * BLOCK:
        raise ValueError("n_out_channels=%d inconsistent with Mb=%d" % (M, Mb))
    cdef float[::1] bv, sv, rv
    p[0].bias = NULL
    p[0].res = NULL
    p[0].act.slope = NULL
    if bias is not None:
        _f32c(bias, "bias")
        if bias.shape[0] < M:
            raise ValueError("bias too short")
        bv = bias
        p[0].bias = &bv[0]
    if act_kind == 10:
        if slope is None:
            raise ValueError("PRELU needs slope")
        _f32c(slope, "slope")
        if slope.shape[0] < M:
            raise ValueError("slope too short")
        sv = slope
        p[0].act.slope = &sv[0]
    if residual is not None:
        _f32c(residual, "residual")
        if residual.size != out_b.size:
            raise ValueError("residual must have out_b's shape")
        rv = residual.reshape(-1)
        p[0].res = &rv[0]
    if N == 0:
        return None
    cdef float[::1] xv = xb.reshape(-1)
    cdef float[::1] wv = packed_w.reshape(-1)
    cdef float[::1] ov = out_b.reshape(-1)
    p[0].x = &xv[0]
    p[0].w = &wv[0]
    p[0].y = &ov[0]
    p[0].M = M
    p[0].Mb = Mb
    p[0].mbg = Mb // group
    p[0].lanes = lanes
    p[0].mbg2 = (Mb // group + 1) // 2
    p[0].cbg = cbg
    p[0].icb = icb
    p[0].id, p[0].ih, p[0].iw = in_dhw
    p[0].od, p[0].oh, p[0].ow = out_dhw
    p[0].kd, p[0].kh, p[0].kw = kernel
    p[0].sd, p[0].sh, p[0].sw = strides
    p[0].pd, p[0].ph, p[0].pw = pads_begin
    p[0].dd, p[0].dh, p[0].dw = dilations
    p[0].K = K
    p[0].act.kind = act_kind
    p[0].act.p0 = act_p0
    p[0].act.p1 = act_p1
    # pointwise, stride 1, no pad: one long flattened row (GEMM-like tile over pixels)
    if K == 1 and strides == [1, 1, 1] and pads_begin == [0, 0, 0] and in_dhw == out_dhw:
        p[0].id = p[0].ih = p[0].od = p[0].oh = 1
        p[0].iw = p[0].ow = S_in
    p[0].cb_chunk = _chunk_for(fc_conv_ocb_max(_isa, lanes), K, icb, cbg, _CHUNK_BYTES[0])
    return (xb, packed_w, bias, out_b, slope, residual)


def conv_nchwc(xb, packed_w, bias, out_b, in_dhw, out_dhw, kernel, strides, pads_begin,
               dilations, long group=1, int act_kind=0, float act_p0=0.0, float act_p1=0.0,
               slope=None, residual=None, int n_threads=1, long n_out_channels=-1):
    """Direct convolution, NCHWc in / NCHWc out, fused epilogue.

    xb        float32 [N, Cb, S_in, 8]  blocked input (Cb = group * cbg), or
              float32 [N, C, S_in]      plain NCHW input (weights packed with
                                        blocked_input=False, group 1)
    packed_w  from pack_conv_weights: [Mb, cbg, K, icb, 8], or 16-lane pairs (AVX-512)
    bias      float32 [M] or None
    out_b     float32 [N, Mb, S_out, 8] (written; padding lanes >= M set to 0)
    in_dhw, out_dhw, kernel, strides, pads_begin, dilations: 3 ints each (D, H, W);
              1D/2D convs pass 1 for the missing leading dims. End padding is
              implied by out_dhw.
    act_kind, act_p0, act_p1: epilogue.h activation code and parameters
    slope     float32 [M] for PRELU, else None
    residual  float32 like out_b, added before the activation, or None
    n_out_channels: real M (default: len(bias) or len(slope) or Mb*8)
    y = act(conv(x, w) + bias + residual)
    """
    cdef fc_conv_params p
    keep = _fill_conv_params(&p, xb, packed_w, bias, out_b, in_dhw, out_dhw, kernel, strides,
                             pads_begin, dilations, group, act_kind, act_p0, act_p1, slope,
                             residual, n_out_channels)
    if keep is None:
        return out_b
    cdef long N = xb.shape[0]
    with nogil:
        conv_nchwc_exec(&p, N, n_threads)
    return out_b


cdef struct conv_call_args:
    fc_conv_params p
    long N
    int n_threads


cdef void _conv_call(void *a) noexcept nogil:
    cdef conv_call_args *r = <conv_call_args *> a
    conv_nchwc_exec(&r.p, r.N, r.n_threads)


def conv_call(xb, packed_w, bias, out_b, in_dhw, out_dhw, kernel, strides, pads_begin,
              dilations, long group=1, int act_kind=0, float act_p0=0.0, float act_p1=0.0,
              slope=None, residual=None, int n_threads=1, long n_out_channels=-1):
    """conv_nchwc's arguments, validated once; returns an executor Call that runs it
    with no Python (the arrays are kept alive by the Call)."""
    cdef conv_call_args *r = <conv_call_args *> malloc(sizeof(conv_call_args))
    if r == NULL:
        raise MemoryError()
    try:
        keep = _fill_conv_params(&r.p, xb, packed_w, bias, out_b, in_dhw, out_dhw, kernel,
                                 strides, pads_begin, dilations, group, act_kind, act_p0,
                                 act_p1, slope, residual, n_out_channels)
    except BaseException:
        free(r)
        raise
    r.N = xb.shape[0] if keep is not None else 0
    r.n_threads = n_threads
    return make_c_call(_conv_call, r, keep)
