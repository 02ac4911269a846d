# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Stride-phase interleave of a transposed convolution, channel-blocked (NCHWc, block 8).

Design: a transposed convolution with strides (sd, sh, sw) splits into sd*sh*sw
phases; phase (rd, rh, rw) computes the outputs y[.., z, y, x] with z = rd + sd*qz,
y = rh + sh*qy, x = rw + sw*qx as an ordinary stride-1 convolution (run by the NCHWc
conv kernels, epilogue fused) into its own dense buffer [N, Mb, Qd*Qh*Qw, 8].  This
kernel scatters the phase buffers into y[N, Mb, D*H*W, 8].  A phase may also be a
constant per channel (no kernel tap reaches it: y = act(bias)), given as one [Mb*8]
vector with zero spatial strides.
  unit of work  one output row (n, mb, z, y): the sw phases of that row each
                contribute every sw-th pixel, 8 floats (one block) at a time, so the
                destination row is written whole while it sits in L1
  parallel      all N*Mb*D*H rows, run by fastcnn's thread pool (parallel_for);
                small outputs serial
  plain out     optionally y is plain NCHW: each phase row's 8 lanes go to 8 channel rows
                (the reorder out of the blocked layout fused in, for graph outputs; for
                sw <= 2 through 8x8 transposes, src/interleave_plain.h)
  memory        no allocation; GIL released; a `Call` runs it from the executor

`seq_call` chains several native steps (the phase convolutions, then the
interleave) into one executor step.
"""
from libc.stdint cimport uintptr_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from fastcnn._kernels.executor cimport Call, call_fn, make_c_call
from fastcnn._kernels.threadpool cimport parallel_for

from fastcnn._kernels.isa import choose as choose_isa, name_of

DEF BLOCK = 8
DEF SERIAL_FLOATS = 65536

cdef extern from "cpu.h" nogil:
    int fastcnn_cpu_level()

cdef extern from "interleave_plain.h" nogil:
    void fc_il_plain_row(int isa, const float *const *src, const long *sstep, const long *qw,
                         long sw, float *dst, long cs, long nl)

cdef int _isa = fastcnn_cpu_level()
cdef int _isa_hw = _isa
_ISA_NAMES = {"portable": 0, "avx2": 1, "avx512": 2}


def set_isa(name):
    """Force the plain interleave's ISA: 'portable', 'avx2', 'avx512' (runs the AVX2 rows)
    or 'auto'.  More than the CPU supports raises ValueError.  Returns the previous name."""
    global _isa
    prev = get_isa()
    _isa = choose_isa(name, _ISA_NAMES, _isa_hw)
    return prev


def get_isa():
    """Name of the ISA the plain interleave uses."""
    return name_of(_isa, _ISA_NAMES)

cdef struct phase_t:
    const float *src
    long sn, smb, sd, sh, sw      # strides in floats (0 on spatial axes: constant phase)
    long qd, qh, qw               # phase output extent

cdef struct interleave_args:
    float *y
    long N, Mb, od, oh, ow, sd, sh, sw
    long M                        # > 0: y is plain NCHW [N, M, D, H, W] (else blocked)
    int n_threads
    phase_t *ph                   # sd*sh*sw entries, in the same malloc block


cdef void _interleave_row(void *ctx, long it) noexcept nogil:
    """Output row it = (n, mb, z, y) of all N*Mb*D*H rows."""
    cdef interleave_args *a = <interleave_args *> ctx
    cdef long n, mb, z, yy, rw, q, rest, qz, qy, nq
    cdef long sw = a.sw, ow = a.ow
    cdef const phase_t *p
    cdef const float *src
    cdef float *dst
    yy = it % a.oh
    rest = it // a.oh
    z = rest % a.od
    rest = rest // a.od
    mb = rest % a.Mb
    n = rest // a.Mb
    qz = z // a.sd
    qy = yy // a.sh
    if a.M > 0:
        _row_plain(a, n, mb, z, yy, qz, qy)
        return
    dst = a.y + (((n * a.Mb + mb) * a.od + z) * a.oh + yy) * ow * BLOCK
    for rw in range(sw):
        p = &a.ph[((z % a.sd) * a.sh + yy % a.sh) * sw + rw]
        nq = p.qw
        src = p.src + n * p.sn + mb * p.smb + qz * p.sd + qy * p.sh
        if p.sw == BLOCK:
            for q in range(nq):
                memcpy(dst + (rw + q * sw) * BLOCK, src + q * BLOCK, BLOCK * sizeof(float))
        else:
            for q in range(nq):
                memcpy(dst + (rw + q * sw) * BLOCK, src + q * p.sw, BLOCK * sizeof(float))


cdef void interleave_c(interleave_args *a) noexcept nogil:
    cdef long rows = a.N * a.Mb * a.od * a.oh
    cdef int nt = a.n_threads
    if rows * a.ow * BLOCK < SERIAL_FLOATS or rows < 2:
        nt = 1
    parallel_for(nt, rows, _interleave_row, a)


cdef inline void _row_plain(interleave_args *a, long n, long mb, long z, long yy, long qz,
                            long qy) noexcept nogil:
    """One output row of the 8 channels of block mb, written to plain NCHW rows."""
    cdef long sw = a.sw, ow = a.ow, rw, q, l, nl = a.M - mb * BLOCK
    cdef const phase_t *p
    cdef const float *src
    cdef float *dst
    cdef const float *srcs[2]
    cdef long steps[2]
    cdef long qws[2]
    if nl > BLOCK:
        nl = BLOCK
    if sw <= 2:
        for rw in range(sw):
            p = &a.ph[((z % a.sd) * a.sh + yy % a.sh) * sw + rw]
            srcs[rw] = p.src + n * p.sn + mb * p.smb + qz * p.sd + qy * p.sh
            steps[rw] = p.sw
            qws[rw] = p.qw
        fc_il_plain_row(_isa, srcs, steps, qws, sw,
                        a.y + ((n * a.M + mb * BLOCK) * a.od + z) * a.oh * ow + yy * ow,
                        a.od * a.oh * ow, nl)
        return
    for rw in range(sw):
        p = &a.ph[((z % a.sd) * a.sh + yy % a.sh) * sw + rw]
        src = p.src + n * p.sn + mb * p.smb + qz * p.sd + qy * p.sh
        for l in range(nl):
            dst = a.y + (((n * a.M + mb * BLOCK + l) * a.od + z) * a.oh + yy) * ow + rw
            for q in range(p.qw):
                dst[q * sw] = src[q * p.sw + l]


cdef void _interleave_call(void *a) noexcept nogil:
    interleave_c(<interleave_args *> a)


def _ptr(a):
    return <uintptr_t> a.ctypes.data


def interleave_call(y, phases, out_dhw, strides, int n_threads=1, long plain_channels=0):
    """A native step scattering phase buffers into y.

    y        float32 [N, Mb, D*H*W, 8] (any shape of that size), C-contiguous   OUT
             plain_channels = M > 0: y is plain NCHW [N, M, D, H, W] instead (the
             interleave and the reorder out of the blocked layout in one pass)
    phases   sd*sh*sw entries in (rd, rh, rw) order, each
               (buf, (qd, qh, qw))  buf float32 [N, Mb, qd*qh*qw, 8] C-contiguous, or
                                    [Mb*8] for a constant phase (same vector everywhere)
             qd/qh/qw = ceil((D - rd)/sd), ... (the phase's output extent)      IN
    out_dhw, strides: (D, H, W) and (sd, sh, sw)
    """
    cdef long N = y.shape[0], Mb = y.shape[1]
    if plain_channels > 0:
        Mb = (plain_channels + BLOCK - 1) // BLOCK
        if y.shape[1] != plain_channels:
            raise ValueError("plain y must be [N, M, ...] with M = plain_channels")
    out_dhw = [int(v) for v in out_dhw]
    strides = [int(v) for v in strides]
    if len(out_dhw) != 3 or len(strides) != 3 or min(strides) < 1 or min(out_dhw) < 1:
        raise ValueError("out_dhw and strides need 3 positive entries")
    cdef long nph = strides[0] * strides[1] * strides[2]
    if len(phases) != nph:
        raise ValueError("need %d phases, got %d" % (nph, len(phases)))
    for a in [y] + [p[0] for p in phases]:
        if a.dtype.char != 'f' or not a.flags.c_contiguous:
            raise TypeError("interleave_call needs C-contiguous float32 arrays")
    S = out_dhw[0] * out_dhw[1] * out_dhw[2]
    if y.size != (N * plain_channels * S if plain_channels > 0 else N * Mb * S * BLOCK):
        raise ValueError("y must hold N*Mb*S*8 floats (plain: N*M*S)")
    cdef interleave_args *r = <interleave_args *> malloc(
        sizeof(interleave_args) + nph * sizeof(phase_t))
    if r == NULL:
        raise MemoryError()
    r.ph = <phase_t *> (<char *> r + sizeof(interleave_args))
    cdef long k = 0, sp
    try:
        rd = rh = rw = 0
        for k in range(nph):
            rw = k % strides[2]
            rh = (k // strides[2]) % strides[1]
            rd = k // (strides[2] * strides[1])
            buf, q = phases[k]
            q = [int(v) for v in q]
            want = [max(0, -(-(out_dhw[i] - (rd, rh, rw)[i]) // strides[i])) for i in range(3)]
            if q != want:
                raise ValueError("phase %d has extent %r, expected %r" % (k, q, want))
            sp = q[0] * q[1] * q[2]
            r.ph[k].qd, r.ph[k].qh, r.ph[k].qw = q
            r.ph[k].src = <const float *> <uintptr_t> buf.ctypes.data
            if buf.size == Mb * BLOCK and (buf.ndim == 1 or sp == 0):
                r.ph[k].sn = 0
                r.ph[k].smb = BLOCK
                r.ph[k].sd = r.ph[k].sh = r.ph[k].sw = 0
            elif buf.size == N * Mb * sp * BLOCK:
                r.ph[k].sn = Mb * sp * BLOCK
                r.ph[k].smb = sp * BLOCK
                r.ph[k].sd = q[1] * q[2] * BLOCK
                r.ph[k].sh = q[2] * BLOCK
                r.ph[k].sw = BLOCK
            else:
                raise ValueError("phase %d buffer has %d floats, expected %d (or a constant "
                                 "[%d])" % (k, buf.size, N * Mb * sp * BLOCK, Mb * BLOCK))
    except BaseException:
        free(r)
        raise
    r.y = <float *> <uintptr_t> y.ctypes.data
    r.N, r.Mb = N, Mb
    r.od, r.oh, r.ow = out_dhw
    r.sd, r.sh, r.sw = strides
    r.n_threads = n_threads
    r.M = plain_channels
    if N * Mb * S == 0:
        r.N = 0
    return make_c_call(_interleave_call, r, (y, [p[0] for p in phases]))


def interleave(y, phases, out_dhw, strides, int n_threads=1, long plain_channels=0):
    """interleave_call's step, run now (tests)."""
    interleave_call(y, phases, out_dhw, strides, n_threads, plain_channels)()
    return y


# ----------------------------------------------------------------------------- chaining

cdef struct seq_args:
    long n
    call_fn *fns
    void **args


cdef void _seq_call(void *a) noexcept nogil:
    cdef seq_args *s = <seq_args *> a
    cdef long i
    for i in range(s.n):
        s.fns[i](s.args[i])


def seq_call(calls):
    """One native step running `calls` (native Calls) in order, or None when any of
    them is a Python callable (the caller then chains them in Python)."""
    calls = list(calls)
    cdef Call c
    for f in calls:
        if not isinstance(f, Call) or (<Call> f).fn == NULL:
            return None
    cdef long n = len(calls), i
    cdef seq_args *s = <seq_args *> malloc(sizeof(seq_args) + n * (sizeof(call_fn) + sizeof(void *)))
    if s == NULL:
        raise MemoryError()
    s.n = n
    s.fns = <call_fn *> (<char *> s + sizeof(seq_args))
    s.args = <void **> (<char *> s.fns + n * sizeof(call_fn))
    for i in range(n):
        c = calls[i]
        s.fns[i] = c.fn
        s.args[i] = c.args
    return make_c_call(_seq_call, s, calls)
