"""InferenceSession: import → passes → plan (cached per input shape) → run.

Modeled on onnxruntime's API so code can switch between the two:

    sess = fastcnn.InferenceSession("model.onnx", num_threads=2)
    name = sess.get_inputs()[0].name
    (logits,) = sess.run(None, {name: x})
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .errors import InputError, InvalidGraphError
from .ir.onnx_import import import_model
from .runtime import threads
from .runtime.plan import MAX_ELEMENTS, Plan, check_supported, make_op

_ORT_TYPE = {
    np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
    np.dtype(np.float16): "tensor(float16)", np.dtype(np.int64): "tensor(int64)",
    np.dtype(np.int32): "tensor(int32)", np.dtype(np.int8): "tensor(int8)",
    np.dtype(np.uint8): "tensor(uint8)", np.dtype(np.bool_): "tensor(bool)",
}

LEVELS = ("none", "basic", "all")
MAX_CACHED_PLANS = 8


@dataclass(frozen=True)
class NodeArg:
    """A graph input or output: `name`, `shape` (ints, or str/None for symbolic dims), `type`."""
    name: str
    shape: list
    type: str
    dtype: np.dtype


def _first_shapes(inputs) -> Optional[Dict[str, tuple]]:
    """Shapes to plan at session creation: the declared ones when static; batch 1 when
    only dim 0 is symbolic; None otherwise (planned at the first run)."""
    out = {}
    for a in inputs:
        if a.shape is None:
            return None
        dims = list(a.shape)
        if dims and not isinstance(dims[0], int):
            dims[0] = 1
        if not all(isinstance(d, int) for d in dims):
            return None
        out[a.name] = tuple(dims)
    return out


def _check_declared_inputs(graph) -> None:
    """Refuse graph inputs whose declared static shape is negative or absurdly large
    (the session plans static shapes at construction; counts in Python ints, no wrap)."""
    for v in graph.inputs:
        if v.shape is None:
            continue
        dims = [d for d in v.shape if isinstance(d, int)]
        if any(d < 0 for d in dims):
            raise InvalidGraphError(f"graph input '{v.name}' declares negative dims {list(v.shape)}")
        if math.prod(dims) > MAX_ELEMENTS:
            raise InvalidGraphError(f"graph input '{v.name}' declares shape {list(v.shape)}: "
                                    f"{math.prod(dims)} elements, more than the limit of "
                                    f"{MAX_ELEMENTS}")


class InferenceSession:
    """Load an ONNX model and run it.

    model: path, bytes or onnx.ModelProto.
    num_threads: kernel threads (None/0 = physical cores or OMP_NUM_THREADS).
    graph_optimization_level: "none", "basic" or "all" (default) passes.
    """

    def __init__(self, model, num_threads: Optional[int] = None,
                 graph_optimization_level: str = "all", **unused):
        if graph_optimization_level not in LEVELS:
            raise ValueError(f"graph_optimization_level must be one of {LEVELS}")
        self.num_threads = threads.resolve(num_threads)
        self._graph_optimization_level = graph_optimization_level
        graph = import_model(model)
        _check_declared_inputs(graph)
        check_supported(graph)
        for node in graph.nodes:       # parse and validate every node's attributes now
            make_op(node, graph)
        from .passes import optimize
        optimize(graph, graph_optimization_level)
        check_supported(graph)
        self._graph = graph
        self._inputs = [NodeArg(v.name, list(v.shape) if v.shape is not None else None,
                                _ORT_TYPE.get(v.dtype, f"tensor({v.dtype.name})"), v.dtype)
                        for v in graph.inputs]
        self._outputs = [NodeArg(v.name, list(v.shape) if v.shape is not None else None,
                                 _ORT_TYPE.get(v.dtype, f"tensor({v.dtype.name})"), v.dtype)
                         for v in graph.outputs]
        self._out_index = {v.name: k for k, v in enumerate(self._outputs)}
        self._plans: "OrderedDict[tuple, Plan]" = OrderedDict()
        self._lock = threading.Lock()
        # fully static inputs: run() checks feeds against (name, dtype, shape) and uses
        # the one plan directly (the general checks and plan lookup cost ~3 us a run)
        self._static = None
        if all(a.shape is not None and all(isinstance(d, int) and d > 0 for d in a.shape)
               for a in self._inputs):
            self._static = [(a.name, a.dtype, tuple(a.shape)) for a in self._inputs]
        self._static_plan: Optional[Plan] = None
        # Plan now (kernel choice, weight packing, arena) for the declared shapes, or for
        # batch 1 when only the leading (batch) dims are symbolic, so the first run is as
        # fast as the others; packed weights are shared by the plans of other batch sizes.
        guess = _first_shapes(self._inputs)
        self._consumed: List[tuple] = []   # weights packed over their own memory
        if guess is not None:
            try:
                self._plan(guess, consume=True)
            except Exception:
                if all(guess[a.name] == tuple(a.shape) for a in self._inputs):
                    raise          # the model's own static shapes do not plan: an error
                # a batch-1 guess the model does not accept: planned (and any error
                # raised) at the first run with real shapes

    # -- metadata ---------------------------------------------------------------------
    def get_inputs(self) -> List[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> List[NodeArg]:
        return list(self._outputs)

    def optimized_graph(self):
        """The graph after the optimization passes (a `fastcnn.ir.Graph`)."""
        with self._lock:
            self._restore_weights()
        return self._graph

    graph = property(optimized_graph)

    def _restore_weights(self):
        """Put back the real values of the weights the first plan packed over their own
        memory (see _plan): before another plan or optimized_graph() reads the graph.
        Unpacking is exact (a permutation); the packed arrays stay shared with later plans."""
        if not self._consumed:
            return
        from .ops import conv_fast
        for name, packed, shape in self._consumed:
            old = self._graph.initializers[name]
            new = np.ascontiguousarray(packed.transpose(0, 4, 1, 3, 2)).reshape(shape)
            conv_fast.adopt_packed(new, old)
            self._graph.initializers[name] = new
        self._consumed = []

    # -- running ----------------------------------------------------------------------
    def _plan(self, shapes: Dict[str, tuple], consume: bool = False) -> Plan:
        """The plan for these input shapes, made on first use.  The first (consume, at
        creation) lets the dense conv kernels pack the weights one node alone reads over
        their own memory (conv_fast.consuming): first-touched pages were most of ResNet-18's
        session creation, and the originals are not kept twice.  The graph's copies then
        hold packed values until _restore_weights() unpacks them, before any other plan."""
        key = tuple(shapes[a.name] for a in self._inputs)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
            self._restore_weights()
        if consume:
            from .ops import conv_fast
            exclusive = self._graph.exclusive_initializers()
            with conv_fast.consuming([self._graph.initializers[n] for n in exclusive]) as done:
                plan = Plan(self._graph, shapes, self.num_threads)
            where = {id(a): n for n, a in self._graph.initializers.items()}
            for w, packed in done:
                w.flags.writeable = False
                self._consumed.append((where[id(w)], packed, w.shape))
        else:
            plan = Plan(self._graph, shapes, self.num_threads)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > MAX_CACHED_PLANS:
                self._plans.popitem(last=False)
        return plan

    def _check_feeds(self, feeds) -> List[np.ndarray]:
        if not isinstance(feeds, dict):
            raise InputError("feeds must be a dict {input name: numpy array}")
        names = {a.name for a in self._inputs}
        unknown = [k for k in feeds if k not in names]
        if unknown:
            raise InputError(f"unknown input(s) {unknown}; the model's inputs are "
                             f"{[a.name for a in self._inputs]}")
        arrays = []
        bound: Dict[str, int] = {}
        for a in self._inputs:
            if a.name not in feeds:
                raise InputError(f"missing input '{a.name}' (expected {a.type} of shape {a.shape})")
            x = feeds[a.name]
            if not isinstance(x, np.ndarray):
                x = np.asarray(x)
            if x.dtype != a.dtype:
                raise InputError(f"input '{a.name}' has dtype {x.dtype}, expected {a.dtype} "
                                 f"({a.type}); convert it with .astype(np.{a.dtype.name})")
            if a.shape is not None:
                if x.ndim != len(a.shape):
                    raise InputError(f"input '{a.name}' has rank {x.ndim} (shape {list(x.shape)}), "
                                     f"expected rank {len(a.shape)} (shape {a.shape})")
                for k, (d, e) in enumerate(zip(x.shape, a.shape)):
                    if isinstance(e, int) and e > 0 and d != e:
                        raise InputError(f"input '{a.name}' has shape {list(x.shape)}, expected "
                                         f"{a.shape} (dimension {k} must be {e})")
                    if isinstance(e, str):
                        if bound.setdefault(e, d) != d:
                            raise InputError(f"input '{a.name}': dimension '{e}' is {d} here but "
                                             f"{bound[e]} in another input")
            arrays.append(x)
        return arrays

    def run(self, output_names: Optional[Sequence[str]], input_feed: Dict[str, np.ndarray],
            run_options=None) -> List[np.ndarray]:
        """Run the model; return the outputs named (all when None) as numpy arrays."""
        static, plan = self._static, self._static_plan
        if plan is not None and output_names is None and type(input_feed) is dict \
                and len(input_feed) == len(static):
            arrays = [input_feed.get(name) for name, _, _ in static]
            for x, (_, dt, shape) in zip(arrays, static):
                if type(x) is not np.ndarray or x.dtype != dt or x.shape != shape:
                    break
            else:
                return plan.run(arrays, None)
        arrays = self._check_feeds(input_feed)
        wanted = None
        if output_names:
            try:
                wanted = [self._out_index[n] for n in output_names]
            except KeyError as e:
                raise InputError(f"unknown output {e}; the model's outputs are "
                                 f"{list(self._out_index)}") from None
        plan = self._plan({a.name: tuple(x.shape) for a, x in zip(self._inputs, arrays)})
        if static is not None:
            self._static_plan = plan       # the only shapes these inputs can have
        return plan.run(arrays, wanted)

    def run_profiled(self, input_feed):
        """Run once, timing every step: returns (outputs, [(step, seconds), ...])."""
        arrays = self._check_feeds(input_feed)
        plan = self._plan({a.name: tuple(x.shape) for a, x in zip(self._inputs, arrays)})
        prof: list = []
        outs = plan.run(arrays, None, prof)
        return outs, prof
