"""Receptive-field arithmetic over a graph, in input-pixel units of the image.

Every value that depends on the image input carries, per spatial axis of
the image, the lecture's three numbers (n, the feature count, is the shape):

    r      receptive field size: how many input pixels one feature sees
    j      jump: distance in input pixels between two adjacent features
    start  centre of the first feature's field, in input-pixel coordinates
           (pixel p covers [p, p+1), so the image itself has r=1, j=1, start=0.5)

Numbers are exact fractions internally (fractional jumps stay exact) and are
reported as ints when integral, floats otherwise.

Sliding windows (Conv, ConvInteger, QLinearConv, MaxPool, AveragePool,
LpPool, com.fastcnn LocallyConnected / TiledConv / WeightedAveragePool,
and SpaceToDepth as a b×b window of stride b), with the effective kernel
k_eff = d·(k − 1) + 1 and the *begin* pad p (auto_pad resolved for the shapes):

    j_out = j·s,   r_out = r + (k_eff − 1)·j,   start_out = start + ((k_eff − 1)/2 − p)·j

Transpose moves axes, not pixels: (r, j, start) are unchanged and the analysis tracks,
per value, which tensor axes hold the image's spatial axes (2, 3, ... for an NCHW
input; 1 .. r-2 for a channels-last one, found as an input that reaches a Transpose
[0, r-1, 1, ..., r-2], directly or through a Pad / Cast / per-channel arithmetic, as
tf2onnx exports it).  Pad, Slice, Reduce* and the pass-through rules use those axes,
so the NHWC stretches between a tf2onnx model's Transpose pairs keep their fields;
windows, resizes and DepthToSpace apply only where the spatial axes are at 2, 3, ...

Pass-through ops (activations, BatchNormalization, normalizations whose
statistics we ignore, Cast, Dropout, channel-only reshapes, ...) leave
(r, j, start) unchanged.  Pad moves start by −p_begin·j; Slice on a spatial
axis moves start by first_index·j and multiplies j by its step.

Merges (any node with several image-dependent inputs: Add, Mul, Sum, Concat,
Where, a Conv with a fused residual input, ...) take, per axis, the larger
field r of their *local* inputs, with that input's jump and start; when the
local inputs disagree on the jump, a `jump_mismatch` warning names the node.
A global input (jump undefined, e.g. the 1×1 gate of a squeeze-and-excitation
Mul, broadcast over space) does not enlarge the field: the reported field is
the local, spatially structured dependence (every feature after such a gate
also depends on the whole image through it, which r would otherwise swamp).
Only when all inputs are global is the result the largest global field.

Global ops (GlobalAveragePool/MaxPool/LpPool, Reduce* over spatial axes, and
anything that flattens the spatial layout away: Flatten, Reshape, Gemm,
MatMul, unknown ops that change the spatial shape) see every input feature:
the field becomes the union r + (n − 1)·j (measured like the lecture's r,
padding included, so it may exceed the image), start its centre
start + (n − 1)/2·j, and the jump is undefined (null).  A later window on a
global value keeps it unchanged.

Upsampling ops give fractional jumps.  Our rules (one per op family):

* ConvTranspose (stride s, begin pad p, output_padding irrelevant here):
  `j_out = j/s`.  `start_out = start + (p − (k_eff − 1)/2)/s · j`: output
  o sits at input-feature coordinate (o + p − (k_eff − 1)/2)/s, the exact
  adjoint of the conv rule, so a ConvTranspose undoes the geometry of the
  Conv with the same attributes.  `r_out = r + span·j` where span is the
  largest distance between the input features one output pixel reads,
  maximized over the s output phases: the taps m with m·d ≡ φ (mod s) land
  on input features (m_max − m_min)·d/s apart.  For d = 1 that is
  ⌈k/s⌉ − 1 (k=4,s=2 → 1; k=3,s=2 → 1; k=5,s=2 → 2), an exact worst case;
  phases with different tap counts are also what the `checkerboard` lint
  reports.
* Resize / Upsample with scale σ on an axis (the `scales` input, else
  n_out/n_in): `j_out = j/σ`; start follows the coordinate transformation:
  half_pixel (and pytorch_half_pixel, half_pixel_symmetric,
  tf_crop_and_resize, approximately) maps output 0 to input coordinate
  0.5/σ − 0.5, so `start_out = start + (0.5/σ − 0.5)·j`; asymmetric keeps
  `start`; align_corners uses `j_out = j·(n_in − 1)/(n_out − 1)` and keeps
  `start`.  `r_out = r + (taps − 1)·j` with taps = 1 (nearest), 2 (linear),
  4 (cubic), times 1/σ when antialiasing a downsample (worst case over
  output pixels; nearest rounding jitter is ignored).  An axis with σ = 1
  and an identity transformation is unchanged.
* DepthToSpace (block b): each output reads one input feature, so `r` is
  unchanged, `j_out = j/b`, and the b outputs of one input feature split
  its step evenly: `start_out = start + (1/(2b) − 1/2)·j` (the half_pixel
  rule with σ = b).

Lints (warnings with `kind`): `checkerboard` (ConvTranspose whose output
phases get different tap counts: k not divisible by s when d = 1),
`rf_exceeds_input` (a convolution with k_eff > 1 whose output field is
larger than the image along some axis: its outer taps only reach padding),
`stride_gt_kernel` (a window whose stride exceeds k_eff: input pixels never
seen), `jump_mismatch` (merge), `rf_approximate` (an unknown op that changes
the spatial shape was treated as global), `nhwc_input` (note only).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Field", "propagate_fields", "window_field", "transposed_field",
           "convtranspose_span", "phase_tap_counts", "to_number"]

Num = Optional[Fraction]

WINDOW_OPS = {"Conv", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool",
              "LocallyConnected", "TiledConv", "WeightedAveragePool"}
CONV_OPS = {"Conv", "ConvInteger", "QLinearConv", "LocallyConnected", "TiledConv"}
GLOBAL_OPS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
REDUCE_OPS = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax",
              "ArgMin"}
FLATTENING_OPS = {"Flatten", "Reshape", "Gemm", "MatMul", "Squeeze", "Unsqueeze", "Transpose",
                  "Softmax", "LogSoftmax", "LayerNormalization", "Concat", "Split", "Gather",
                  "Einsum", "Expand", "Tile"} | GLOBAL_OPS | REDUCE_OPS


@dataclass
class Field:
    r: List[Num]
    j: List[Num]
    start: List[Num]

    @staticmethod
    def initial(n_axes: int) -> "Field":
        return Field([Fraction(1)] * n_axes, [Fraction(1)] * n_axes, [Fraction(1, 2)] * n_axes)

    @staticmethod
    def undefined(n_axes: int) -> "Field":
        return Field([None] * n_axes, [None] * n_axes, [None] * n_axes)

    def copy(self) -> "Field":
        return Field(list(self.r), list(self.j), list(self.start))


def to_number(v):
    """Fraction → int when integral, else float; None stays None."""
    if v is None:
        return None
    if v.denominator == 1:
        return int(v)
    return float(v)


def _frac(x) -> Fraction:
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    return Fraction(float(x)).limit_denominator(1 << 20)


# -- per-op rules (pure functions on one Field) ---------------------------------------

def window_field(f: Field, kernel, strides, dilations, pads_begin) -> Field:
    out = f.copy()
    for a in range(len(f.r)):
        if f.r[a] is None or f.j[a] is None:
            continue
        ke = dilations[a] * (kernel[a] - 1) + 1
        j = f.j[a]
        out.r[a] = f.r[a] + (ke - 1) * j
        out.start[a] = f.start[a] + (Fraction(ke - 1, 2) - pads_begin[a]) * j
        out.j[a] = j * strides[a]
    return out


def phase_tap_counts(k: int, s: int, d: int = 1) -> List[int]:
    """For a transposed conv: how many kernel taps reach an output pixel of each phase."""
    counts = [0] * s
    for m in range(k):
        counts[(m * d) % s] += 1
    return counts


def convtranspose_span(k: int, s: int, d: int = 1) -> Fraction:
    """Largest distance (in input features) between the taps one output pixel reads."""
    best = Fraction(0)
    for phi in range(s):
        ms = [m for m in range(k) if (m * d) % s == phi]
        if len(ms) > 1:
            best = max(best, Fraction((ms[-1] - ms[0]) * d, s))
    return best


def transposed_field(f: Field, kernel, strides, dilations, pads_begin) -> Field:
    out = f.copy()
    for a in range(len(f.r)):
        if f.r[a] is None or f.j[a] is None:
            continue
        k, s, d = kernel[a], strides[a], dilations[a]
        ke = d * (k - 1) + 1
        j = f.j[a]
        out.r[a] = f.r[a] + convtranspose_span(k, s, d) * j
        out.start[a] = f.start[a] + (pads_begin[a] - Fraction(ke - 1, 2)) / s * j
        out.j[a] = j / s
    return out


def globalize(f: Field, sizes: Sequence[int], axes=None) -> Field:
    out = f.copy()
    for a in range(len(f.r)):
        if axes is not None and a not in axes:
            continue
        if f.r[a] is None or f.j[a] is None:
            continue
        n = sizes[a] if sizes is not None else 1
        out.r[a] = f.r[a] + (n - 1) * f.j[a]
        out.start[a] = f.start[a] + Fraction(n - 1, 2) * f.j[a]
        out.j[a] = None
    return out


def merge(fields: List[Field]) -> Tuple[Field, List[int]]:
    """Larger field per axis; returns (field, axes where local jumps disagree)."""
    n = len(fields[0].r)
    out = Field.undefined(n)
    bad = []
    for a in range(n):
        cands = [f for f in fields if f.r[a] is not None]
        if not cands:
            continue
        local = [f for f in cands if f.j[a] is not None]
        out.r[a] = max(f.r[a] for f in (local or cands))
        pick = max(local or cands, key=lambda f: f.r[a])
        out.j[a] = pick.j[a]
        out.start[a] = pick.start[a]
        if len({f.j[a] for f in local}) > 1:
            bad.append(a)
    return out, bad


# -- the graph walk ---------------------------------------------------------------------

class _AttrView:
    """Enough of an Op for ops.conv_util.WindowAttrs: attributes and errors of a node."""

    def __init__(self, node):
        self.node = node

    def attr(self, name, default=None):
        return self.node.attrs.get(name, default)

    def error(self, message):
        from ..errors import node_error
        return node_error(self.node, message)

    shape_error = error


def resolve_window(node, x_spatial, w_shape=None):
    """(kernel, strides, dilations, pads_begin) of a window node for input dims x_spatial."""
    from ..ops.conv_util import WindowAttrs
    nd = len(x_spatial)
    op = node.op_type
    kernel = None
    if op == "SpaceToDepth":
        b = int(node.attrs["blocksize"])
        return (b,) * nd, (b,) * nd, (1,) * nd, (0,) * nd
    if w_shape is not None and op in CONV_OPS:
        kernel = tuple(w_shape[-nd:])
    pooling = op in ("MaxPool", "AveragePool", "LpPool", "WeightedAveragePool")
    wa = WindowAttrs(_AttrView(node), kernel_required=pooling and kernel is None,
                     allow_dilations=op != "WeightedAveragePool", allow_ceil=pooling)
    win = wa.resolve(tuple(x_spatial), kernel=kernel, pooling=pooling)
    return win.kernel, win.strides, win.dilations, win.pads_begin


def _convtranspose_params(node, x_shape, w_shape, y_shape):
    nd = len(x_shape) - 2
    k = tuple(node.attrs.get("kernel_shape") or w_shape[2:])
    s = tuple(node.attrs.get("strides") or (1,) * nd)
    d = tuple(node.attrs.get("dilations") or (1,) * nd)
    op = tuple(node.attrs.get("output_padding") or (0,) * nd)
    auto_pad = node.attrs.get("auto_pad", "NOTSET") or "NOTSET"
    pads = node.attrs.get("pads")
    if auto_pad == "VALID":
        pb = (0,) * nd
    elif node.attrs.get("output_shape") is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER") \
            or pads is None:
        pb = []
        for a in range(nd):
            total = s[a] * (x_shape[2 + a] - 1) + op[a] + d[a] * (k[a] - 1) + 1 - y_shape[2 + a]
            total = max(total, 0)
            pb.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        pb = tuple(pb)
    else:
        pb = tuple(pads[:nd])
    return k, s, d, pb


def _resize_field(graph, node, f, x_shape, y_shape, infos):
    nd = len(x_shape) - 2
    op = node.op_type
    opset = graph.opset("")
    mode = node.attrs.get("mode", "nearest")
    if op == "Upsample" or opset < 11:
        ctm = "asymmetric"
    else:
        ctm = node.attrs.get("coordinate_transformation_mode", "half_pixel")
    scales = None
    k_scales = 1 if (op == "Upsample" or opset < 11) else 2
    if op == "Upsample" and "scales" in node.attrs:
        scales = list(node.attrs["scales"])
    elif len(node.inputs) > k_scales and node.inputs[k_scales]:
        info = infos.get(node.inputs[k_scales])
        if info is not None and info.value is not None and info.value.size == len(x_shape):
            scales = [float(v) for v in np.asarray(info.value).ravel()]
    taps = {"nearest": 1, "linear": 2, "bilinear": 2, "trilinear": 2, "cubic": 4,
            "bicubic": 4}.get(mode, 2)
    out = f.copy()
    for a in range(nd):
        if f.r[a] is None or f.j[a] is None:
            continue
        n_in, n_out = x_shape[2 + a], y_shape[2 + a]
        sigma = _frac(scales[2 + a]) if scales else Fraction(n_out, n_in)
        j = f.j[a]
        if ctm == "align_corners":
            if n_in == n_out:
                continue
            out.j[a] = j * Fraction(n_in - 1, n_out - 1) if n_out > 1 else j
        elif sigma == 1 and ctm in ("half_pixel", "asymmetric", "pytorch_half_pixel",
                                     "half_pixel_symmetric"):
            continue
        else:
            out.j[a] = j / sigma
            if ctm != "asymmetric":
                out.start[a] = f.start[a] + (Fraction(1, 2) / sigma - Fraction(1, 2)) * j
        t = taps
        if node.attrs.get("antialias", 0) and sigma < 1 and taps > 1:
            t = int(np.ceil(taps / float(sigma)))
        out.r[a] = f.r[a] + (t - 1) * j
    return out


def _spatial(shape, n_axes, axes=None):
    """Spatial sizes of a value of rank n_axes + 2 whose image axes sit at tensor axes
    `axes` (default NCHW-style: 2, 3, ...), or None."""
    if shape is None or len(shape) != n_axes + 2:
        return None
    if axes is None:
        return tuple(shape[2:])
    return tuple(shape[a] for a in axes)


# layout-preserving ops an exporter puts between a channels-last input and its Transpose
_NHWC_PREFIX_OPS = {"Pad", "Cast", "Identity", "Mul", "Add", "Sub", "Div", "Relu", "Clip"}


def _to_nchw_transpose(consumers, name, r):
    """The Transpose [0, r-1, 1, ..., r-2] that value `name` reaches through single-reader,
    layout-preserving ops (tf2onnx: input -> Pad -> Transpose), or None."""
    want = [0, r - 1] + list(range(1, r - 1))
    for _ in range(8):
        readers = consumers.get(name, [])
        if len(readers) != 1:
            return None
        n = readers[0]
        if n.op_type == "Transpose":
            return n if list(n.attrs.get("perm", [])) == want else None
        if n.op_type not in _NHWC_PREFIX_OPS or not n.outputs:
            return None
        name = n.outputs[0]
    return None


def find_image(graph, infos):
    """(input name, spatial sizes, the Transpose to NCHW of a channels-last input or None)
    of the image input, or (None, None, None).  A channels-last input is one that reaches a
    Transpose [0, r-1, 1, ..., r-2] (directly, or through a Pad / Cast / per-channel
    arithmetic first, as tf2onnx exports it); its spatial axes are 1 .. r-2."""
    consumers = graph.consumers()
    for v in graph.inputs:
        info = infos.get(v.name)
        if info is None or len(info.shape) < 3:
            continue
        r = len(info.shape)
        t = _to_nchw_transpose(consumers, v.name, r)
        if t is not None:
            return v.name, tuple(info.shape[1:-1]), t
        return v.name, tuple(info.shape[2:]), None
    return None, None, None


def propagate_fields(graph, infos, folded=()):
    """Fields of every image-dependent value and lint warnings.

    Returns (fields: {value: Field}, warnings: [{"node", "kind", "message"}],
    image: (name, spatial sizes) or None).
    """
    image, sizes, to_nchw = find_image(graph, infos)
    warnings: List[dict] = []
    fields: Dict[str, Field] = {}
    if image is None:
        return fields, warnings, None
    S = len(sizes)
    fields[image] = Field.initial(S)
    img_frac = [Fraction(n) for n in sizes]
    # Which tensor axes of each image-dependent value hold the image's spatial axes (in
    # image order): 2, 3, ... unless Transposes moved them (a tf2onnx model runs NHWC
    # between its Transpose pairs).  Windows and resizes need them at 2, 3, ...
    canon = tuple(range(2, S + 2))
    layout: Dict[str, Tuple[int, ...]] = {image: tuple(range(1, S + 1)) if to_nchw else canon}

    def warn(node, kind, message):
        warnings.append({"node": node.name, "kind": kind, "message": message})

    if to_nchw is not None:
        warn(to_nchw, "nhwc_input",
             f"the image input is channels-last; spatial axes taken as {list(sizes)}")

    for node in graph.nodes:
        if node.name in folded:
            continue
        op = node.op_type
        data = [(k, i) for k, i in enumerate(node.inputs) if i and i in fields]
        if not data:
            continue
        out_info = infos.get(node.outputs[0]) if node.outputs and node.outputs[0] else None
        y_shape = out_info.shape if out_info is not None else None
        x_name = node.inputs[0] if node.inputs else ""
        x_info = infos.get(x_name) if x_name else None
        x_shape = x_info.shape if x_info is not None else None
        f_x = fields.get(x_name)
        ax_x = layout.get(x_name, canon) if f_x is not None else \
            layout.get(data[0][1], canon)
        out_ax = ax_x
        x_sp = _spatial(x_shape, S, ax_x)
        result: Optional[Field] = None
        others = [fields[i] for k, i in data if k != 0]
        if f_x is not None and ax_x != canon and op not in ("Pad", "Slice", "Transpose") \
                and op not in GLOBAL_OPS and op not in REDUCE_OPS:
            f_x_win = None          # channels-last: no window / resize rule applies
        else:
            f_x_win = f_x

        if op == "Transpose" and f_x is not None and x_shape is not None \
                and len(x_shape) == S + 2:
            perm = list(node.attrs.get("perm") or range(len(x_shape) - 1, -1, -1))
            if sorted(perm) == list(range(len(x_shape))):
                result = f_x.copy()           # moves axes, not pixels
                out_ax = tuple(perm.index(a) for a in ax_x)
                others = []
        elif op in WINDOW_OPS | {"SpaceToDepth"} and f_x_win is not None and _spatial(x_shape, S):
            w_idx = 3 if op == "QLinearConv" else 1
            w_info = infos.get(node.inputs[w_idx]) if len(node.inputs) > w_idx and \
                node.inputs[w_idx] else None
            try:
                kernel, strides, dil, pb = resolve_window(
                    node, x_shape[2:], w_info.shape if w_info is not None else None)
            except Exception:
                kernel = None
            if kernel is not None:
                result = window_field(f_x, kernel, strides, dil, pb)
                _lint_window(node, op, kernel, strides, dil, result, img_frac, sizes, warn)
                others = [fields[i] for k, i in data if k not in (0, w_idx)]
        elif op == "ConvTranspose" and f_x_win is not None and _spatial(x_shape, S) \
                and _spatial(y_shape, S):
            w_info = infos.get(node.inputs[1])
            k, s, d, pb = _convtranspose_params(node, x_shape, w_info.shape, y_shape)
            result = transposed_field(f_x, k, s, d, pb)
            for a in range(len(k)):
                counts = phase_tap_counts(k[a], s[a], d[a])
                if len(set(counts)) > 1:
                    warn(node, "checkerboard",
                         f"kernel {k[a]} (dilation {d[a]}) with stride {s[a]} on spatial axis {a}: "
                         f"output phases receive {sorted(set(counts))} taps (uneven overlap, "
                         f"checkerboard artifacts); use a kernel divisible by the stride, or "
                         f"Resize (nearest/linear) followed by a Conv")
                    break
            others = [fields[i] for kk, i in data if kk not in (0, 1)]
        elif op in ("Resize", "Upsample") and f_x_win is not None and _spatial(x_shape, S) \
                and _spatial(y_shape, S):
            result = _resize_field(graph, node, f_x, x_shape, y_shape, infos)
            others = []
        elif op == "DepthToSpace" and f_x_win is not None and _spatial(x_shape, S):
            b = int(node.attrs["blocksize"])
            result = f_x.copy()
            for a in range(S):
                if f_x.j[a] is not None:
                    result.j[a] = f_x.j[a] / b
                    result.start[a] = f_x.start[a] + (Fraction(1, 2 * b) - Fraction(1, 2)) * f_x.j[a]
            others = []
        elif op == "Pad" and f_x is not None and x_sp:
            pads = node.attrs.get("pads")
            if len(node.inputs) > 1 and node.inputs[1]:
                pi = infos.get(node.inputs[1])
                pads = None if pi is None or pi.value is None else [int(v) for v in pi.value]
            axes = list(range(len(x_shape)))
            if len(node.inputs) > 3 and node.inputs[3]:
                ai = infos.get(node.inputs[3])
                axes = [int(v) % len(x_shape) for v in ai.value] if ai is not None \
                    and ai.value is not None else None
            result = f_x.copy()
            if pads is None or axes is None:
                result = globalize(f_x, x_sp)
            else:
                for q, ax in enumerate(axes):
                    a = ax_x.index(ax) if ax in ax_x else -1
                    if 0 <= a < S and f_x.j[a] is not None:
                        result.start[a] = f_x.start[a] - pads[q] * f_x.j[a]
            others = []
        elif op == "Slice" and f_x is not None and x_sp and len(node.inputs) >= 3:
            result = _slice_field(node, f_x, x_shape, infos, S, ax_x)
            others = []
        elif op in GLOBAL_OPS and f_x is not None:
            result = globalize(f_x, x_sp)
            others = []
        elif op in REDUCE_OPS and f_x is not None and x_sp:
            axes = node.attrs.get("axes")
            if axes is None and len(node.inputs) > 1 and node.inputs[1]:
                ai = infos.get(node.inputs[1])
                axes = None if ai is None or ai.value is None else list(ai.value.ravel())
            if op in ("ArgMax", "ArgMin"):
                axes = [node.attrs.get("axis", 0)]
            spatial_axes = None if axes is None else \
                {ax_x.index(int(ax) % len(x_shape)) for ax in axes
                 if int(ax) % len(x_shape) in ax_x}
            result = globalize(f_x, x_sp, spatial_axes)
            others = []

        if result is None:
            # Generic: pass-through, merge, or global.
            out_sp = _spatial(y_shape, S, out_ax)
            fs, in_sps = [], []
            for k, i in data:
                src = infos.get(i)
                in_sp = _spatial(src.shape if src is not None else None, S, layout.get(i, canon))
                in_sps.append(in_sp)
                f = fields[i]
                if out_sp is not None and in_sp is not None and in_sp != out_sp and \
                        all(n == 1 for n in in_sp):
                    f = globalize(f, in_sp)   # broadcast over space: no spatial structure
                fs.append(f)
            merged, bad = merge(fs) if len(fs) > 1 else (fs[0], [])
            if bad:
                _warn_jumps(node, fs, bad, warn)
            in_sp = next((s for s in in_sps if s is not None and s == out_sp), None)
            if in_sp is None:
                in_sp = next((s for s in in_sps if s is not None), None)
            if in_sp is not None and out_sp is not None and in_sp == out_sp:
                result = merged
            elif in_sp is None:            # already flattened: global on every axis
                result = globalize(merged, [1] * S)
            else:
                result = globalize(merged, in_sp)
                if op not in FLATTENING_OPS:
                    warn(node, "rf_approximate",
                         f"{op} changes the spatial shape {list(in_sp)} → "
                         f"{None if out_sp is None else list(out_sp)}; its receptive field is "
                         f"taken as the union of its input's fields")
        elif others:
            merged, bad = merge([result] + others)
            if bad:
                _warn_jumps(node, [result] + others, bad, warn)
            result = merged
        if y_shape is None or len(y_shape) != S + 2:
            out_ax = canon          # (spatial structure gone: as before, axes 2, 3, ...)
        for o in node.outputs:
            if o:
                fields[o] = result
                layout[o] = out_ax
    return fields, warnings, (image, sizes)


def _warn_jumps(node, fs, bad, warn):
    jumps = [[to_number(f.j[a]) for a in bad] for f in fs]
    warn(node, "jump_mismatch",
         f"merged inputs have different jumps {jumps} on spatial axis(es) {bad}: "
         f"their features are not aligned on one grid; the larger field is reported")


def _slice_field(node, f, x_shape, infos, S, ax_x):
    vals = []
    for k in range(1, 5):
        if len(node.inputs) > k and node.inputs[k]:
            info = infos.get(node.inputs[k])
            if info is None or info.value is None:
                return globalize(f, [x_shape[a] for a in ax_x])
            vals.append([int(v) for v in np.asarray(info.value).ravel()])
        else:
            vals.append(None)
    starts, ends, axes, steps = vals
    rank = len(x_shape)
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    out = f.copy()
    sizes = [x_shape[a] for a in ax_x]
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        a = ax_x.index(ax % rank) if ax % rank in ax_x else -1
        if a < 0 or f.j[a] is None:
            continue
        first = range(*slice(st, en, sp).indices(sizes[a]))
        if len(first) == 0:
            continue
        if sp < 0:
            return globalize(f, sizes)
        out.start[a] = f.start[a] + first[0] * f.j[a]
        out.j[a] = f.j[a] * sp
    return out


def _lint_window(node, op, kernel, strides, dil, result, img, sizes, warn):
    for a in range(len(kernel)):
        ke = dil[a] * (kernel[a] - 1) + 1
        if strides[a] > ke:
            warn(node, "stride_gt_kernel",
                 f"stride {strides[a]} exceeds the effective kernel {ke} on spatial axis {a}: "
                 f"{strides[a] - ke} of every {strides[a]} input positions are never read")
            break
    if op in CONV_OPS:
        over = [a for a in range(len(kernel))
                if a < len(img) and dil[a] * (kernel[a] - 1) > 0 and result.r[a] is not None
                and result.r[a] > img[a]]
        if over:
            a = over[0]
            warn(node, "rf_exceeds_input",
                 f"receptive field {to_number(result.r[a])} exceeds the input's "
                 f"{sizes[a]} pixels on spatial axis {a}: every feature's field now includes "
                 f"padding, and its outer taps add context only from padding")
