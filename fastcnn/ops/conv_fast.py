"""Fast convolution algorithms in the channel-blocked layout (NCHWc, block 8).

Chosen by `Conv._choose` only when the planner offers the blocked layout
(`ConvProblem.block`), for float32 convolutions with constant weights; the
weights are packed once here.  All three read blocked input (except the
small-C first layer, which reads plain NCHW) and write blocked output, with
the fused epilogue y = act(conv + bias + Z):

    conv_nchwc_direct   dense and grouped (C/g, M/g multiples of 8) k×k, any
                        stride/pad/dilation, 1D/2D/3D; 1×1 stride-1 runs as a
                        GEMM-like tile over a flattened row (no im2col)
    conv_nchwc_plain_in first layers with C ≤ 4 (RGB stems): plain NCHW input,
                        no 3→8 channel padding
    dwconv_nchwc        depthwise (group == C, any multiplier): one channel per lane
    groupconv_nchwc     every other grouping (ResNeXt 4 ch/group, C/g or M/g not
                        multiples of 8): each lane an output channel accumulating
                        its group's inputs through per-block term tables
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import numpy as np

from .conv import ConvAlgorithm, ConvProblem, register_algorithm

try:
    from .._kernels import conv_nchwc as _kc
    from .._kernels import dwconv_nchwc as _kd
except ImportError:   # kernels not built: only the generic path exists
    _kc = _kd = None

SMALL_C = 4          # first layers with at most this many input channels read plain NCHW


# Packed weights shared by every plan of a session (one per input shape): keyed by the
# weight array's identity and how it is packed, dropped when the array is freed.
_PACKED: dict = {}

# Weights the session lets the dense kernel pack over their own memory (thread-local: the
# set of id()s of arrays nothing else will read, see `consuming`), and those it did.
_CONSUME = threading.local()


@contextlib.contextmanager
def consuming(arrays):
    """Within the block, dense NCHWc convs whose weight is one of `arrays` pack it in
    place (conv_nchwc.pack_conv_weights_inplace: no fresh 45 MB for ResNet-18) when its
    layout allows.  The caller promises nothing reads those arrays afterwards -- the
    session, for the weights one node alone reads in its first plan -- until it unpacks
    them (Session._restore_weights).  Yields the list
    of (array, its packed view) actually overwritten."""
    prev = getattr(_CONSUME, "ids", None), getattr(_CONSUME, "done", None)
    _CONSUME.ids, _CONSUME.done = {id(a): a for a in arrays}, []
    try:
        yield _CONSUME.done
    finally:
        _CONSUME.ids, _CONSUME.done = prev


def _pack_dense(w, group, blocked, lanes):
    ids = getattr(_CONSUME, "ids", None)
    if blocked and ids and ids.get(id(w)) is w:
        out = _kc.pack_conv_weights_inplace(w, group, lanes)
        if out is not None:
            del ids[id(w)]
            _CONSUME.done.append((w, out))
            return out
    return _kc.pack_conv_weights(w, group, blocked, lanes)


def _packed(pack, w, *how):
    key = (id(w), pack, how)
    hit = _PACKED.get(key)
    if hit is not None and hit[0]() is w:
        return hit[1]
    out = pack(w, *how)
    _remember(key, w, out)
    return out


def _remember(key, w, out):
    try:
        ref = weakref.ref(w, lambda _, k=key, d=_PACKED: d.pop(k, None))
    except TypeError:      # not weak-referenceable: no sharing
        return
    _PACKED[key] = (ref, out)


def adopt_packed(new, old):
    """`new` (old's values back, see Session._restore_weights) shares what `old` was
    packed into: plans of other batch sizes reuse the first plan's packing."""
    for (i, pack, how), (ref, out) in list(_PACKED.items()):
        if i == id(old) and ref() is old:
            _remember((id(new), pack, how), new, out)


def _dhw(v, fill):
    v = tuple(int(x) for x in v)
    return (fill,) * (3 - len(v)) + v


class _Blocked(ConvAlgorithm):
    """Shared geometry, epilogue and argument setup of the blocked kernels."""
    in_layout = 8
    out_layout = 8

    def __init__(self, p: ConvProblem):
        g = p.geom
        w = g.window
        self.geom = g
        self.n_threads = p.n_threads
        self.in_dhw = _dhw(w.in_spatial, 1)
        self.out_dhw = _dhw(w.out_spatial, 1)
        self.kernel = _dhw(w.kernel, 1)
        self.strides = _dhw(w.strides, 1)
        self.pads = _dhw(w.pads_begin, 0)
        self.dilations = _dhw(w.dilations, 1)
        ep = p.epilogue
        self.act = (int(ep.kind), float(ep.p0), float(ep.p1))
        self.slope = None
        if ep.slope is not None:
            self.slope = np.array(
                np.broadcast_to(np.asarray(ep.slope, np.float32).ravel(), (g.c_out,)))
        # own, writable copies: kernels take typed memoryviews, which refuse read-only buffers
        self.bias = None if p.bias is None else np.array(p.bias, np.float32)
        self.s_in = int(np.prod(self.in_dhw))
        self.s_out = int(np.prod(self.out_dhw))

    def _views(self, x, y, z):
        g = self.geom
        cb_in, cb_out = -(-g.c_in // 8), -(-g.c_out // 8)
        xb = x.reshape(g.n, cb_in, self.s_in, 8) if self.in_layout else \
            x.reshape(g.n, g.c_in, self.s_in)
        yb = y.reshape(g.n, cb_out, self.s_out, 8)
        zb = None if z is None else z.reshape(g.n, cb_out, self.s_out, 8)
        return xb, yb, zb


class NchwcDirect(_Blocked):
    name = "conv_nchwc_direct"

    def __init__(self, p: ConvProblem, plain_input: bool = False):
        super().__init__(p)
        if plain_input:
            self.name = "conv_nchwc_plain_in"
            self.in_layout = 0
        blocked, group = not plain_input, p.geom.group
        self.lanes = _kc.pack_lanes(blocked, p.geom.c_out, group)  # per ISA: in the cache key
        self.blocked_in = blocked
        self._weight = p.weight
        self._packed_w = None

    @property
    def packed(self):
        """The packed weights, made at the first bind: once the planner's choice is final
        (a weight packed in place, see `consuming`, must not be needed by another path)."""
        if self._packed_w is None:
            self._packed_w = _packed(_pack_dense, self._weight, self.geom.group,
                                     self.blocked_in, self.lanes)
            self._weight = None
        return self._packed_w

    def bind(self, x, w, b, z, y, scratch):
        xb, yb, zb = self._views(x, y, z)
        a = self.act
        args = (xb, self.packed, self.bias, yb, self.in_dhw, self.out_dhw, self.kernel,
                self.strides, self.pads, self.dilations, self.geom.group, a[0], a[1], a[2],
                self.slope, zb, self.n_threads, self.geom.c_out)
        if hasattr(_kc, "conv_call"):
            return _kc.conv_call(*args)                     # native executor step
        kernel = _kc.conv_nchwc
        return lambda: kernel(*args)


class NchwcDepthwise(_Blocked):
    name = "dwconv_nchwc"

    def __init__(self, p: ConvProblem, grouped: bool = False):
        super().__init__(p)
        g = p.geom
        self.grouped = grouped
        if grouped:
            self.name = "groupconv_nchwc"
            self.packed = _packed(_kd.pack_grouped_weights, p.weight, g.group)
        else:
            self.packed = _packed(_kd.pack_dw_weights, p.weight, g.c_out // g.c_in)

    def bind(self, x, w, b, z, y, scratch):
        xb, yb, zb = self._views(x, y, z)
        a, g = self.act, self.geom
        common = (xb, self.packed, self.bias, yb, self.in_dhw, self.out_dhw, self.kernel,
                  self.strides, self.pads, self.dilations, a[0], a[1], a[2], self.slope, zb,
                  self.n_threads)
        # native executor steps (no Python per run)
        if isinstance(self.packed, _kd.GroupedPacked):   # grouped, or depthwise multiplier > 1
            return _kd.groupconv_call(*common, g.group, g.c_in, g.c_out)
        return _kd.dwconv_call(*common, g.c_out)


def make_blocked(p: ConvProblem):
    """The blocked algorithm for this problem, or None (generic path)."""
    g = p.geom
    if not p.block or _kc is None or p.weight is None or g.dtype != np.float32 \
            or p.block != 8 or (p.has_bias and p.bias is None) or g.n == 0:
        return None
    if g.group == 1:
        return NchwcDirect(p, plain_input=g.c_in <= SMALL_C)
    if g.group == g.c_in and g.c_out % g.c_in == 0:
        return NchwcDepthwise(p)
    if g.c_in_per_group % 8 == 0 and g.c_out_per_group % 8 == 0:
        return NchwcDirect(p)
    # every other grouping (ResNeXt 4 ch/group, 12 or 24 in -> 4 out, 2 in -> 16 out, ...):
    # each output lane accumulates its own group's inputs, no per-group loops
    return NchwcDepthwise(p, grouped=True)


register_algorithm(make_blocked, "nchwc")
