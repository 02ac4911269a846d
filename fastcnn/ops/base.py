"""The op lifecycle (as ncnn's layers have it).

    op = OpClass(node, opset)       parse and validate attributes, once
    op.infer(inputs) -> outputs     shapes/dtypes (and values, when computable)
    op.prepare(inputs, outputs, n_threads)
                                    choose the algorithm, prepack weights
    op.scratch(inputs, outputs)     extra buffers the kernel needs, planned in the arena
    op.bind(xs, ys, scratch) -> f   a zero-argument callable that computes ys
                                    from xs, with every array already in place;
                                    or a native `fastcnn._kernels.executor.Call`
                                    (C function + argument block), which the
                                    executor runs without the GIL or Python

`run` allocates nothing and looks nothing up: the planner calls `bind` once
per arena and the executor only calls the returned callables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InvalidGraphError, ShapeError, node_error


@dataclass
class TensorInfo:
    """What the planner knows about a value: shape, dtype, and its value if constant.

    `layout` is 0 for plain NCHW (ONNX's layout) or a block size B for the
    channel-blocked layout, whose buffer has the *physical* shape
    [N, ceil(C/B), *spatial, B] while `shape` stays the logical ONNX shape.
    """
    shape: Tuple[int, ...]
    dtype: np.dtype
    value: Optional[np.ndarray] = None
    layout: int = 0

    @property
    def physical_shape(self) -> Tuple[int, ...]:
        return physical_shape(self.shape, self.layout)

    @property
    def is_const(self) -> bool:
        return self.value is not None

    @property
    def size(self) -> int:
        return math.prod(int(d) for d in self.shape)   # Python ints: no int64 wrap-around

    @staticmethod
    def of(arr) -> "TensorInfo":
        arr = np.asarray(arr)
        return TensorInfo(tuple(int(d) for d in arr.shape), arr.dtype, arr)


def physical_shape(shape, layout: int) -> Tuple[int, ...]:
    """Buffer shape of a value of logical `shape` in `layout` (see TensorInfo)."""
    if not layout:
        return tuple(shape)
    n, c = shape[0], shape[1]
    return (n, -(-c // layout)) + tuple(shape[2:]) + (layout,)


class Op:
    """Base class of every op.  Subclasses override what they need."""

    #: output k may share the buffer of input i when i dies here: {k: i}
    inplace = {}
    #: output 0 is a reshaped view of input 0 (no data movement: Reshape, Flatten, ...)
    is_view = False
    #: bind() costs well under a microsecond (a native step that checks little), so the
    #: planner lets it read a graph input or write a graph output in place from a
    #: smaller size on (rebinding it to each run's arrays costs less than a copy)
    cheap_bind = False
    #: outputs computed at plan time from input shapes alone (Shape, Size)
    shape_only = False
    #: elementwise op that computes correctly on channel-blocked buffers when all
    #: its operands share the layout; the planner then hands it *physical* infos
    #: and arrays.  Only ops that map finite values to finite values qualify
    #: (padding lanes must stay finite: they meet zero weights in the next conv).
    layout_agnostic = False
    #: runs as fast in plain NCHW as blocked: when its outputs are only graph outputs
    #: (which leave plain) and bigger than its input, the planner runs it plain, so the
    #: reorder moves the smaller tensor (an upsampling head: Resize x8 of a 33x33 map)
    plain_at_edge = False

    def __init__(self, node, opset: int):
        self.node = node
        self.opset = opset
        self.n_threads = 1
        self.setup()

    # -- attributes ------------------------------------------------------------------
    def setup(self) -> None:
        """Parse and validate attributes (override)."""

    def attr(self, name, default=None):
        return self.node.attrs.get(name, default)

    def error(self, message, cls=InvalidGraphError):
        return node_error(self.node, message, cls)

    def shape_error(self, message):
        return node_error(self.node, message, ShapeError)

    # -- planning --------------------------------------------------------------------
    def infer(self, inputs: List[Optional[TensorInfo]]) -> List[TensorInfo]:
        raise NotImplementedError

    def prepare(self, inputs, outputs) -> None:
        """Choose the algorithm and prepack constants (override)."""

    def layouts(self, inputs: List[Optional[TensorInfo]], block: int):
        """Layout negotiation for layout-aware ops (Conv, pools, Concat, ...).

        `inputs` carry their current `layout`.  Return None to run in plain
        NCHW, or (input layouts wanted, output layouts): the planner inserts
        reorders where an input's layout differs (constant inputs are left
        alone) and passes logical infos with `layout` set to `prepare`.
        """
        return None

    def scratch(self, inputs, outputs) -> List[Tuple[Tuple[int, ...], np.dtype]]:
        return []

    def compute(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], scratch=()) -> None:
        """Write the outputs into ys (override, or override bind)."""
        raise NotImplementedError

    def bind(self, xs, ys, scratch=()):
        compute = self.compute
        return lambda: compute(xs, ys, scratch)

    def evaluate(self, inputs: List[Optional[TensorInfo]], outputs: List[TensorInfo]):
        """Compute constant outputs at plan time (all inputs constant)."""
        xs = [i.value if i is not None else None for i in inputs]
        ys = [np.empty(o.shape, o.dtype) for o in outputs]
        self.prepare(inputs, outputs)
        sc = [np.empty(s, d) for s, d in self.scratch(inputs, outputs)]
        self.compute(xs, ys, sc)
        return ys

    # -- helpers ---------------------------------------------------------------------
    def const_input(self, inputs, k, what):
        if k >= len(inputs) or inputs[k] is None:
            return None
        if inputs[k].value is None:
            raise self.error(f"input {k} ({what}) must be a constant (computable at load time); "
                             "data-dependent shapes are not supported")
        return inputs[k].value


def optional(inputs, k):
    """inputs[k] or None when the optional input is absent."""
    return inputs[k] if k < len(inputs) else None


def broadcast_shape(op: Op, *shapes) -> Tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise op.shape_error(f"input shapes {[list(s) for s in shapes]} do not broadcast") from None
