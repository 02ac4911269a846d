"""Shape plumbing and data movement: Identity, Reshape, Flatten, Squeeze, Unsqueeze, Shape, ..."""
from __future__ import annotations

import numpy as np

from .attrs import flag_attr, int_attr, ints_attr
from .base import Op, TensorInfo
from .registry import register


class _View(Op):
    """Output 0 is input 0 with another shape (zero-copy in the planner)."""
    is_view = True

    def out_shape(self, inputs):
        raise NotImplementedError

    def infer(self, inputs):
        x = inputs[0]
        shape = tuple(int(d) for d in self.out_shape(inputs))
        if int(np.prod(shape, dtype=np.int64)) != x.size:
            raise self.shape_error(f"cannot view {list(x.shape)} as {list(shape)}")
        return [TensorInfo(shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = xs[0].reshape(ys[0].shape)

    def bind(self, xs, ys, scratch=()):
        return _noop   # the planner made ys[0] a view of xs[0]


def _noop():
    pass


@register("Identity", since_version=1)
class Identity(_View):
    def out_shape(self, inputs):
        return inputs[0].shape


@register("Dropout", since_version=1)
class Dropout(_View):
    """Inference: y = x.  opset < 12: `is_test`/`ratio` attributes; opset >= 12: optional
    inputs ratio and training_mode (training_mode must be a constant False, or ratio 0).
    The optional mask output is all True (opset < 10: ones of x's dtype)."""

    def out_shape(self, inputs):
        return inputs[0].shape

    def infer(self, inputs):
        if self.opset >= 12 and len(inputs) > 2 and inputs[2] is not None:
            training = self.const_input(inputs, 2, "training_mode")
            if bool(np.asarray(training).reshape(-1)[0]):
                ratio = self.const_input(inputs, 1, "ratio")
                r = 0.5 if ratio is None else float(np.asarray(ratio).reshape(-1)[0])
                if r != 0.0:
                    raise self.error("training_mode=True with a non-zero ratio is random; "
                                     "fastcnn runs inference only")
        outs = super().infer(inputs)
        if len(self.node.outputs) > 1 and self.node.outputs[1]:
            dt = np.dtype(np.bool_)
            outs.append(TensorInfo(inputs[0].shape, dt, np.ones(inputs[0].shape, dt)))
        return outs

    def compute(self, xs, ys, scratch=()):
        ys[0][...] = xs[0]
        if len(ys) > 1 and ys[1] is not None:
            ys[1][...] = True

    def bind(self, xs, ys, scratch=()):
        if len(ys) > 1 and ys[1] is not None:   # the mask buffer lives in the arena: fill per run
            mask, copyto = ys[1], np.copyto
            return lambda: copyto(mask, True)
        return _noop


@register("Reshape", since_version=5)
class Reshape(_View):
    def setup(self):
        flag_attr(self, "allowzero", 0)

    def out_shape(self, inputs):
        shape = [int(d) for d in self.const_input(inputs, 1, "shape").ravel()]
        x = inputs[0].shape
        allowzero = self.attr("allowzero", 0)
        out = []
        for k, d in enumerate(shape):
            if d == 0 and not allowzero:
                if k >= len(x):
                    raise self.shape_error(f"shape {shape} copies dim {k} but input has rank {len(x)}")
                out.append(x[k])
            else:
                out.append(d)
        if out.count(-1) > 1:
            raise self.shape_error(f"shape {shape} has more than one -1")
        if -1 in out:
            rest = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            total = int(np.prod(x, dtype=np.int64))
            if rest == 0 or total % rest:
                raise self.shape_error(f"cannot reshape {list(x)} to {shape}")
            out[out.index(-1)] = total // rest
        if any(d < 0 for d in out):
            raise self.shape_error(f"invalid target shape {shape}")
        return out


@register("Flatten", since_version=1)
class Flatten(_View):
    def setup(self):
        int_attr(self, "axis", 1)

    def out_shape(self, inputs):
        x = inputs[0].shape
        axis = self.attr("axis", 1)
        lo = -len(x) if self.opset >= 11 else 0
        if not isinstance(axis, int) or not lo <= axis <= len(x):
            raise self.error(f"axis {axis} out of range for rank {len(x)}")
        if axis < 0:
            axis += len(x)
        return (int(np.prod(x[:axis], dtype=np.int64)), int(np.prod(x[axis:], dtype=np.int64)))


def _axes(op, inputs, k=1):
    if op.opset >= 13:
        a = op.const_input(inputs, k, "axes")
        return None if a is None else [int(v) for v in a.ravel()]
    a = op.attr("axes")
    return None if a is None else list(a)


@register("Squeeze", since_version=1)
class Squeeze(_View):
    def setup(self):
        if self.opset < 13:
            ints_attr(self, "axes")

    def out_shape(self, inputs):
        x = inputs[0].shape
        axes = _axes(self, inputs)
        if axes is None:
            return [d for d in x if d != 1]
        axes = {a % len(x) if -len(x) <= a < len(x) else None for a in axes}
        if None in axes:
            raise self.error(f"axes out of range for rank {len(x)}")
        for a in axes:
            if x[a] != 1:
                raise self.shape_error(f"cannot squeeze axis {a} of size {x[a]}")
        return [d for k, d in enumerate(x) if k not in axes]


@register("Unsqueeze", since_version=1)
class Unsqueeze(_View):
    def setup(self):
        if self.opset < 13:
            ints_attr(self, "axes")

    def out_shape(self, inputs):
        x = list(inputs[0].shape)
        axes = _axes(self, inputs)
        if axes is None:
            raise self.error("Unsqueeze needs axes")
        r = len(x) + len(axes)
        norm = sorted(a + r if a < 0 else a for a in axes)
        if len(set(norm)) != len(norm) or any(not 0 <= a < r for a in norm):
            raise self.error(f"invalid axes {axes} for output rank {r}")
        for a in norm:
            x.insert(a, 1)
        return x


@register("Shape", since_version=1)
class Shape(Op):
    shape_only = True

    def setup(self):
        int_attr(self, "start", 0)
        int_attr(self, "end")

    def infer(self, inputs):
        shape = np.array(inputs[0].shape, np.int64)
        if self.opset >= 15:
            r = len(shape)
            start = self.attr("start", 0)
            end = self.attr("end", r)
            start = min(max(start + r if start < 0 else start, 0), r)
            end = min(max(end + r if end < 0 else end, 0), r)
            shape = shape[start:end]
        return [TensorInfo.of(shape)]


@register("Size", since_version=1)
class Size(Op):
    shape_only = True

    def infer(self, inputs):
        return [TensorInfo.of(np.array(inputs[0].size, np.int64))]
