"""Data movement and tensor construction: Transpose, Concat, Split, Slice, Pad, Tile,
Expand, Gather, GatherElements, GatherND, ConstantOfShape, Range, NonZero, Cast,
CastLike, TopK.

Shapes must be known at plan time, so every input that decides an output
shape (Slice starts/ends, Pad pads, Tile repeats, Expand shape, ...) must be
a constant -- which, after constant folding of the shape plumbing, it is in
exported CNN graphs.  Sizes that shape plumbing asks for are checked before
anything is allocated.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.onnx_proto import TensorProto

from .attrs import flag_attr, float_attr, int_attr, ints_attr
from .base import Op, TensorInfo, broadcast_shape, optional
from .registry import register

try:
    from .._kernels.layout import copy_pieces_call as _copy_pieces_call
except ImportError:   # no compiled kernels: numpy copies
    _copy_pieces_call = None

MAX_NATIVE_PIECES = 1 << 16   # a Concat of more rows than this copies with numpy

#: refuse shape-plumbing outputs above this many elements (before allocating)
MAX_BUILD_ELEMENTS = 1 << 31


def check_size(op, shape, what="output"):
    n = 1
    for d in shape:
        if d < 0:
            raise op.shape_error(f"{what} shape {list(shape)} has a negative dimension")
        n *= int(d)
    if n > MAX_BUILD_ELEMENTS:
        raise op.shape_error(f"{what} shape {list(shape)} has {n} elements, more than the "
                             f"limit of {MAX_BUILD_ELEMENTS}")
    return tuple(int(d) for d in shape)


def norm_axis(op, axis, rank, name="axis"):
    if not isinstance(axis, (int, np.integer)) or not -rank <= axis < rank:
        raise op.error(f"{name} {axis} out of range for rank {rank}")
    return int(axis) + rank if axis < 0 else int(axis)


def ints(v):
    return [int(x) for x in np.asarray(v).reshape(-1)]


@register("Transpose", since_version=1)
class Transpose(Op):
    def setup(self):
        ints_attr(self, "perm")

    def infer(self, inputs):
        x = inputs[0]
        r = len(x.shape)
        perm = self.attr("perm")
        perm = list(range(r))[::-1] if perm is None else list(perm)
        if sorted(perm) != list(range(r)):
            raise self.error(f"perm {perm} is not a permutation of the {r} axes")
        self.perm = perm
        return [TensorInfo(tuple(x.shape[p] for p in perm), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        np.copyto(ys[0], xs[0].transpose(self.perm))

    def bind(self, xs, ys, scratch=()):
        src = xs[0].transpose(self.perm)
        return lambda: np.copyto(ys[0], src)


@register("Concat", since_version=1)
class Concat(Op):
    def setup(self):
        self.axis = int_attr(self, "axis", 1 if self.opset < 4 else None)
        if self.axis is None:
            raise self.error("attribute 'axis' is required")

    def infer(self, inputs):
        ins = [x for x in inputs if x is not None]
        if not ins:
            raise self.error("needs at least one input")
        r = len(ins[0].shape)
        if any(len(x.shape) != r for x in ins):
            raise self.shape_error(f"inputs have different ranks {[list(x.shape) for x in ins]}")
        if r == 0:
            raise self.shape_error("cannot concatenate scalars")
        ax = norm_axis(self, self.axis, r)
        for x in ins:
            if any(x.shape[k] != ins[0].shape[k] for k in range(r) if k != ax):
                raise self.shape_error(f"input shapes {[list(x.shape) for x in ins]} differ "
                                       f"outside axis {ax}")
        if len({x.dtype for x in ins}) > 1:
            raise self.error("inputs have different dtypes")
        self.ax = ax
        shape = list(ins[0].shape)
        shape[ax] = sum(x.shape[ax] for x in ins)
        return [TensorInfo(tuple(shape), ins[0].dtype)]

    def layouts(self, inputs, block):
        """Blocked when any input is: along channels that needs every input but the
        last to fill whole blocks; along any other axis the physical dims line up."""
        ins = [x for x in inputs if x is not None]
        if not any(x.layout for x in ins) or any(x.is_const for x in ins) or \
                len(ins[0].shape) < 3 or ins[0].dtype != np.float32:
            return None
        if self.ax == 1 and any(x.shape[1] % block for x in ins[:-1]):
            return None
        return [block if x is not None else 0 for x in inputs], [block]

    def compute(self, xs, ys, scratch=()):
        np.concatenate([x for x in xs if x is not None], axis=self.ax, out=ys[0])

    def bind(self, xs, ys, scratch=()):
        ins = [x for x in xs if x is not None]
        y = ys[0]
        native = _copy_pieces_call is not None and y.flags.c_contiguous and \
            all(isinstance(x, np.ndarray) and x.flags.c_contiguous and x.dtype == y.dtype
                for x in ins)
        outer = math.prod(y.shape[:self.ax])
        if native and outer * len(ins) <= MAX_NATIVE_PIECES:
            # a native step (no Python between the neighbouring kernels): each input is
            # `outer` rows of its inner block, copied into the output's rows at its offset
            # (blocked buffers: the same axis of their physical shape)
            isz = y.dtype.itemsize
            row_out = math.prod(y.shape[self.ax:]) * isz
            per = math.prod(y.shape[self.ax + 1:]) * isz
            pieces, off = [], 0
            for x in ins:
                row_in = math.prod(x.shape[self.ax:]) * isz
                if row_in:
                    for r in range(outer):
                        pieces.append((y.ctypes.data + r * row_out + off * per,
                                       x.ctypes.data + r * row_in, row_in))
                off += x.shape[self.ax]
            return _copy_pieces_call(pieces, self.n_threads, (y, *ins))
        # copy each input into its slice of the output (views computed once; blocked
        # buffers are sliced along the same axis of their physical shape)
        dsts, off = [], 0
        for x in ins:
            idx = [slice(None)] * ys[0].ndim
            idx[self.ax] = slice(off, off + x.shape[self.ax])
            off += x.shape[self.ax]
            dsts.append(ys[0][tuple(idx)])
        pairs = list(zip(dsts, ins))
        copyto = np.copyto

        def run():
            for d, s in pairs:
                copyto(d, s)
        return run


@register("Split", since_version=1)
class Split(Op):
    """opset < 13: `split` attribute; >= 13: optional input 1; >= 18: `num_outputs`."""

    def setup(self):
        self.axis = int_attr(self, "axis", 0)
        ints_attr(self, "split")
        self.num_outputs = int_attr(self, "num_outputs") if self.opset >= 18 else None
        n_out = len(self.node.outputs)
        if self.num_outputs is not None and self.num_outputs != n_out:
            raise self.error(f"num_outputs={self.num_outputs} but the node has {n_out} outputs")

    def infer(self, inputs):
        x = inputs[0]
        r = len(x.shape)
        ax = norm_axis(self, self.axis, r)
        dim = x.shape[ax]
        n_out = len(self.node.outputs)
        if self.opset >= 13:
            split = self.const_input(inputs, 1, "split")
            split = None if split is None else ints(split)
        else:
            split = self.attr("split")
            if split is None and len(inputs) > 1 and inputs[1] is not None:   # Split-2 input form
                split = ints(self.const_input(inputs, 1, "split"))
        if split is not None:
            if self.num_outputs is not None:
                raise self.error("give either 'split' or 'num_outputs', not both")
            if len(split) != n_out or any(s < 0 for s in split) or sum(split) != dim:
                raise self.shape_error(f"split {split} does not cut dim {dim} into {n_out} parts")
        elif self.num_outputs is not None:
            chunk = -(-dim // n_out)
            split = [min(chunk, max(dim - k * chunk, 0)) for k in range(n_out)]
            if sum(split) != dim:
                raise self.shape_error(f"cannot split dim {dim} into {n_out} outputs")
        else:
            if dim % n_out:
                raise self.shape_error(f"dim {dim} is not divisible into {n_out} equal outputs")
            split = [dim // n_out] * n_out
        self.ax, self.split = ax, split
        outs = []
        for s in split:
            shape = list(x.shape)
            shape[ax] = s
            outs.append(TensorInfo(tuple(shape), x.dtype))
        return outs

    def _views(self, x):
        out, off = [], 0
        for s in self.split:
            idx = [slice(None)] * x.ndim
            idx[self.ax] = slice(off, off + s)
            off += s
            out.append(x[tuple(idx)])
        return out

    def compute(self, xs, ys, scratch=()):
        for y, v in zip(ys, self._views(xs[0])):
            if y is not None:
                np.copyto(y, v)

    def bind(self, xs, ys, scratch=()):
        pairs = [(y, v) for y, v in zip(ys, self._views(xs[0])) if y is not None]
        copyto = np.copyto

        def run():
            for y, v in pairs:
                copyto(y, v)
        return run


def slice_bounds(dim, start, end, step):
    """ONNX Slice clamping for one axis -> (start, stop or None, step) for a Python slice."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
    else:
        start = min(max(start, 0), dim - 1)
        end = min(max(end, -1), dim - 1)
    return start, (None if end < 0 else end), step


@register("Slice", since_version=1)
class Slice(Op):
    """opset < 10: `starts`/`ends`/`axes` attributes; >= 10: inputs (with `steps`)."""

    def setup(self):
        if self.opset < 10:
            for name in ("starts", "ends", "axes"):
                ints_attr(self, name)

    def infer(self, inputs):
        x = inputs[0]
        r = len(x.shape)
        if self.opset < 10:
            starts, ends, axes, steps = self.attr("starts"), self.attr("ends"), self.attr("axes"), None
            if starts is None or ends is None:
                raise self.error("attributes 'starts' and 'ends' are required")
        else:
            starts = self.const_input(inputs, 1, "starts")
            ends = self.const_input(inputs, 2, "ends")
            if starts is None or ends is None:
                raise self.error("inputs 'starts' and 'ends' are required")
            axes = self.const_input(inputs, 3, "axes")
            steps = self.const_input(inputs, 4, "steps")
        starts, ends = ints(starts), ints(ends)
        axes = list(range(len(starts))) if axes is None else ints(axes)
        steps = [1] * len(starts) if steps is None else ints(steps)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise self.error(f"starts {starts}, ends {ends}, axes {axes}, steps {steps} differ in length")
        axes = [norm_axis(self, a, r, "axes entry") for a in axes]
        if len(set(axes)) != len(axes):
            raise self.error(f"axes {axes} repeat an axis")
        idx = [slice(None)] * r
        shape = list(x.shape)
        for a, s, e, st in zip(axes, starts, ends, steps):
            if st == 0:
                raise self.error("steps must be non-zero")
            s, e, st = slice_bounds(x.shape[a], s, e, st)
            idx[a] = slice(s, e, st)
            shape[a] = len(range(*idx[a].indices(x.shape[a])))
        self.idx = tuple(idx)
        return [TensorInfo(tuple(shape), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        np.copyto(ys[0], xs[0][self.idx])

    def bind(self, xs, ys, scratch=()):
        src, dst = xs[0][self.idx], ys[0]
        return lambda: np.copyto(dst, src)


@register("Pad", since_version=1)
class Pad(Op):
    """opset < 11: `pads`/`mode`/`value` attributes; >= 11: inputs pads, constant_value,
    and (>= 18) axes.  Modes constant, reflect, edge, wrap (19).  Negative pads crop."""

    def setup(self):
        self.mode = self.attr("mode", "constant")
        if self.opset < 11:
            ints_attr(self, "pads")
            ints_attr(self, "paddings")
            float_attr(self, "value", 0.0)
        if self.mode not in ("constant", "reflect", "edge", "wrap") or \
                (self.mode == "wrap" and self.opset < 19):
            raise self.error(f"unsupported mode {self.mode!r}")

    def infer(self, inputs):
        x = inputs[0]
        r = len(x.shape)
        if self.opset < 11:
            pads = self.attr("pads", self.attr("paddings"))
            if pads is None:
                raise self.error("attribute 'pads' is required")
            value = float_attr(self, "value", 0.0)
            axes = None
        else:
            pads = self.const_input(inputs, 1, "pads")
            if pads is None:
                raise self.error("input 'pads' is required")
            cv = optional(inputs, 2)
            if cv is not None and cv.value is None:
                value = None          # a runtime scalar: read at each run
            else:
                value = 0 if cv is None else np.asarray(cv.value).reshape(-1)[0] if cv.size else 0
            axes = self.const_input(inputs, 3, "axes") if self.opset >= 18 else None
        pads = ints(pads)
        axes = list(range(r)) if axes is None else [norm_axis(self, a, r, "axes entry")
                                                    for a in ints(axes)]
        if len(pads) != 2 * len(axes):
            raise self.error(f"pads {pads} must have 2*{len(axes)} entries")
        before, after = [0] * r, [0] * r
        for k, a in enumerate(axes):
            before[a], after[a] = pads[k], pads[k + len(axes)]
        shape = []
        for d, b, e in zip(x.shape, before, after):
            n = d + b + e
            if n < 0:
                raise self.shape_error(f"pads {pads} crop more than the input {list(x.shape)}")
            shape.append(n)
        check_size(self, shape)
        for d, b, e in zip(x.shape, before, after):
            if self.mode != "constant" and (b > 0 or e > 0) and d == 0:
                raise self.shape_error(f"cannot {self.mode}-pad an empty axis")
            if self.mode == "reflect" and (max(b, 0) >= d or max(e, 0) >= d) and (b > 0 or e > 0):
                if d < 2 or max(b, e) >= d:
                    raise self.shape_error(f"reflect pads {pads} must be smaller than the dims "
                                           f"{list(x.shape)}")
        self.before, self.after, self.value = before, after, value
        crop = tuple(slice(-min(b, 0), d + min(e, 0)) for d, b, e in zip(x.shape, before, after))
        self.crop = crop
        self.widths = [(max(b, 0), max(e, 0)) for b, e in zip(before, after)]
        return [TensorInfo(tuple(shape), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0][self.crop]
        if self.mode == "constant":
            y = ys[0]
            value = self.value
            if value is None:
                value = xs[2].reshape(-1)[0] if xs[2].size else 0
            y[...] = np.asarray(value).astype(y.dtype)
            inner = tuple(slice(b, b + d) for (b, _), d in zip(self.widths, x.shape))
            y[inner] = x
        else:
            ys[0][...] = np.pad(x, self.widths, mode=self.mode)


@register("Tile", since_version=6)
class Tile(Op):
    def infer(self, inputs):
        x = inputs[0]
        reps = self.const_input(inputs, 1, "repeats")
        if reps is None:
            raise self.error("input 'repeats' is required")
        reps = ints(reps)
        if len(reps) != len(x.shape) or any(v < 0 for v in reps):
            raise self.error(f"repeats {reps} must be {len(x.shape)} non-negative values")
        self.reps = reps
        return [TensorInfo(check_size(self, [d * v for d, v in zip(x.shape, reps)]), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = np.tile(xs[0], self.reps)


@register("Expand", since_version=8)
class Expand(Op):
    def infer(self, inputs):
        x = inputs[0]
        shape = self.const_input(inputs, 1, "shape")
        if shape is None:
            raise self.error("input 'shape' is required")
        shape = ints(shape)
        if any(d < 0 for d in shape):
            raise self.shape_error(f"shape {shape} has negative dims")
        out = broadcast_shape(self, x.shape, tuple(shape))
        return [TensorInfo(check_size(self, out), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = xs[0]


@register("Gather", since_version=1)
class Gather(Op):
    def setup(self):
        int_attr(self, "axis", 0)

    def infer(self, inputs):
        x, i = inputs[0], inputs[1]
        if i.dtype.kind not in "iu":
            raise self.error(f"indices must be integers, got {i.dtype}")
        if len(x.shape) == 0:
            raise self.shape_error("cannot gather from a scalar")
        self.ax = norm_axis(self, self.attr("axis", 0), len(x.shape))
        if i.value is not None:
            v = np.asarray(i.value)
            d = x.shape[self.ax]
            if v.size and (v.min() < -d or v.max() >= d):
                raise self.shape_error(f"indices out of range [-{d}, {d - 1}]")
        shape = x.shape[:self.ax] + tuple(i.shape) + x.shape[self.ax + 1:]
        return [TensorInfo(shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x, i = xs[0], xs[1]
        d = x.shape[self.ax]
        if i.size and (i.min() < -d or i.max() >= d):
            raise self.error(f"indices out of range [-{d}, {d - 1}] at run time")
        i = np.where(i < 0, i + d, i)
        np.take(x, i, axis=self.ax, out=ys[0])


@register("GatherElements", since_version=11)
class GatherElements(Op):
    def setup(self):
        int_attr(self, "axis", 0)

    def infer(self, inputs):
        x, i = inputs[0], inputs[1]
        if len(x.shape) != len(i.shape):
            raise self.shape_error(f"data rank {len(x.shape)} != indices rank {len(i.shape)}")
        self.ax = norm_axis(self, self.attr("axis", 0), len(x.shape))
        return [TensorInfo(tuple(i.shape), x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x, i = xs[0], xs[1]
        d = x.shape[self.ax]
        if i.size and (i.min() < -d or i.max() >= d):
            raise self.error(f"indices out of range [-{d}, {d - 1}] at run time")
        i = np.where(i < 0, i + d, i)
        ys[0][...] = np.take_along_axis(x, i, axis=self.ax)


@register("GatherND", since_version=11)
class GatherND(Op):
    def setup(self):
        int_attr(self, "batch_dims", 0, lo=0)

    def infer(self, inputs):
        x, i = inputs[0], inputs[1]
        b = int_attr(self, "batch_dims", 0) if self.opset >= 12 else 0
        if len(i.shape) < 1 or i.shape[-1] > len(x.shape) - b or b < 0 or \
                x.shape[:b] != i.shape[:b]:
            raise self.shape_error(f"bad indices shape {list(i.shape)} for data {list(x.shape)}")
        self.b = b
        shape = tuple(i.shape[:-1]) + tuple(x.shape[b + i.shape[-1]:])
        return [TensorInfo(shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x, i = xs[0], xs[1]
        b = self.b
        bshape = x.shape[:b]
        nb = int(np.prod(bshape, dtype=np.int64))
        xr = x.reshape((nb,) + x.shape[b:])
        ir = i.reshape((nb, -1, i.shape[-1]))
        k = i.shape[-1]
        out = []
        for n in range(nb):
            idx = ir[n]
            idx = np.where(idx < 0, idx + np.array(xr.shape[1:1 + k]), idx)
            out.append(xr[n][tuple(idx.T)])
        ys[0][...] = np.asarray(out).reshape(ys[0].shape)


@register("ConstantOfShape", since_version=9)
class ConstantOfShape(Op):
    def setup(self):
        v = self.attr("value")
        if v is None:
            v = np.zeros(1, np.float32)
        v = np.asarray(v)
        if v.size != 1:
            raise self.error(f"value must hold one element, got {v.size}")
        self.value = v.reshape(())

    def infer(self, inputs):
        shape = self.const_input(inputs, 0, "shape")
        shape = check_size(self, ints(shape))
        return [TensorInfo(shape, self.value.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = self.value


@register("Range", since_version=11)
class Range(Op):
    def infer(self, inputs):
        vals = [self.const_input(inputs, k, n) for k, n in ((0, "start"), (1, "limit"), (2, "delta"))]
        if any(v is None for v in vals) or any(np.asarray(v).size != 1 for v in vals):
            raise self.error("start, limit and delta must be scalars")
        start, limit, delta = [np.asarray(v).reshape(()) for v in vals]
        if delta == 0:
            raise self.error("delta must be non-zero")
        n = int(max(np.ceil((float(limit) - float(start)) / float(delta)), 0))
        check_size(self, [n])
        dt = inputs[0].dtype
        return [TensorInfo.of(np.arange(start, limit, delta).astype(dt)[:n])]


@register("NonZero", since_version=9)
class NonZero(Op):
    """Data-dependent output shape: only supported when the input is a constant."""

    def infer(self, inputs):
        x = inputs[0]
        if x.value is None:
            raise self.error("NonZero of a runtime tensor has a data-dependent shape; fastcnn "
                             "supports it only when its input is a constant (folded at load time)")
        return [TensorInfo.of(np.array(np.nonzero(np.asarray(x.value)), np.int64)
                              .reshape(len(x.shape), -1))]


_CASTABLE = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
             TensorProto.FLOAT16: np.float16, TensorProto.INT8: np.int8,
             TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
             TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8,
             TensorProto.UINT16: np.uint16, TensorProto.UINT32: np.uint32,
             TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}


def _cast(x, dt):
    if dt == np.bool_:
        return x != 0
    if x.dtype.kind == "f" and dt.kind in "iu":
        with np.errstate(all="ignore"):
            return np.trunc(x).astype(dt)
    return x.astype(dt)


@register("Cast", since_version=1)
class Cast(Op):
    inplace = {}

    def setup(self):
        to = self.attr("to")
        if isinstance(to, str):
            to = getattr(TensorProto, to.upper(), None)
        if not isinstance(to, int) or to not in _CASTABLE:
            raise self.error(f"cast to ONNX type {to} is not supported")
        self.to = np.dtype(_CASTABLE[to])

    def infer(self, inputs):
        x = inputs[0]
        if x.dtype.kind not in "fiub":
            raise self.error(f"cast from {x.dtype} is not supported")
        return [TensorInfo(x.shape, self.to)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = _cast(xs[0], self.to)


@register("CastLike", since_version=15)
class CastLike(Op):
    def infer(self, inputs):
        x, t = inputs[0], inputs[1]
        if t.dtype.kind not in "fiub" or x.dtype.kind not in "fiub":
            raise self.error(f"cast from {x.dtype} to {t.dtype} is not supported")
        return [TensorInfo(x.shape, t.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = _cast(xs[0], ys[0].dtype)


@register("TopK", since_version=1)
class TopK(Op):
    def setup(self):
        int_attr(self, "axis", -1)
        flag_attr(self, "largest", 1)
        flag_attr(self, "sorted", 1)

    def infer(self, inputs):
        x = inputs[0]
        if self.opset >= 10:
            k = self.const_input(inputs, 1, "K")
            if k is None:
                raise self.error("input K is required")
            k = ints(k)[0]
        else:
            k = int_attr(self, "k")
            if k is None:
                raise self.error("attribute 'k' is required")
        self.ax = norm_axis(self, self.attr("axis", -1), len(x.shape))
        if not 0 <= k <= x.shape[self.ax]:
            raise self.shape_error(f"k={k} out of range for axis of size {x.shape[self.ax]}")
        self.k = k
        self.largest = flag_attr(self, "largest", 1) if self.opset >= 11 else 1
        shape = list(x.shape)
        shape[self.ax] = k
        return [TensorInfo(tuple(shape), x.dtype), TensorInfo(tuple(shape), np.dtype(np.int64))]

    def compute(self, xs, ys, scratch=()):
        x = xs[0]
        key = -x.astype(np.float64) if self.largest else x
        idx = np.argsort(key, axis=self.ax, kind="stable")
        idx = np.take(idx, np.arange(self.k), axis=self.ax)
        if ys[0] is not None:
            ys[0][...] = np.take_along_axis(x, idx, axis=self.ax)
        if len(ys) > 1 and ys[1] is not None:
            ys[1][...] = idx
