"""Inner-dimension (trailing-axes) and leading-axis broadcasts of the binary kernel:
y[i, j] = x[i, j] op c[j] (an NHWC per-channel constant: [N,H,W,C] op [C], [1,1,1,C],
[H,W,C] op [W,C]) runs the periodic path of elementwise.binary_c; y[i, j] = x[i, j] op c[i]
(per-channel NCHW) the row path.  One-node models vs the reference evaluator and
onnxruntime (1 and 2 threads), the memory planner's in-place reuse, int dtypes (numpy),
and the kernel itself on every ISA."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import fastcnn

from test_ops_elementwise import C, check, rand

try:
    from fastcnn._kernels import elementwise as K
except ImportError:  # pragma: no cover
    K = None

needs_kernel = pytest.mark.skipif(K is None, reason="compiled kernels not built")

SHAPES = [
    ((2, 9, 7, 96), (96,)),            # NHWC per-channel constant
    ((1, 5, 6, 32), (1, 1, 1, 32)),
    ((14, 9, 24), (9, 24)),            # [H,W,C] vs [W,C]
    ((3, 4, 5, 6), (5, 1)),            # short inner (6): periodic, tiled
    ((2, 3, 3000), (3000,)),           # period longer than the tile, inner 1
    ((2, 300, 10, 2), (300, 10, 1)),   # period longer than the tile, inner 2: row path
    ((2, 56, 56, 24), (24,)),          # above the serial threshold: threaded
    ((1, 1, 1, 7), (7,)),              # one period
    ((4, 96, 7, 7), (96, 1, 1)),       # leading axis (per-channel NCHW)
    ((96, 50), (96, 1)),
    ((2, 48, 30, 30), (1, 48, 1, 1)),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shape,cshape", SHAPES)
@pytest.mark.parametrize("const_first", [False, True])
def test_broadcast_constant(op, shape, cshape, const_first):
    x = rand(*shape, seed=1)
    c = C(rand(*cshape, seed=2, lo=0.5, hi=2.0))     # (no division by ~0)
    check(op, [c, x] if const_first else [x, c], {}, 13)


@pytest.mark.parametrize("op", ["Add", "Div", "Max", "Min"])
@pytest.mark.parametrize("shape,cshape", [((2, 9, 7, 96), (96,)), ((14, 9, 24), (9, 24)),
                                          ((3, 4, 5, 6), (5, 1))])
def test_broadcast_runtime_operand(op, shape, cshape):
    """The broadcast operand is a graph input (not a constant); Max / Min (variadic, two
    inputs) go through the same kernel."""
    check(op, [rand(*shape, seed=3), rand(*cshape, seed=4, lo=0.5, hi=2.0)], {}, 13)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shape,cshape", [((2, 9, 7, 16), (16,)), ((1, 1, 1, 16), (16,)),
                                          ((6, 5, 8), (5, 8)), ((2, 8, 3, 3), (8, 1, 1))])
def test_broadcast_int(dtype, op, shape, cshape):
    rng = np.random.default_rng(5)
    x = rng.integers(-50, 50, shape).astype(dtype)
    c = rng.integers(1, 9, cshape).astype(dtype) * rng.choice([-1, 1], cshape).astype(dtype)
    check(op, [x, C(c)], {}, 13)


def _chain(shape, cshape, op):
    """x -> Relu -> op(., c) -> Neg: op's input dies there, so the planner may run it in
    place."""
    c = rand(*cshape, seed=6, lo=0.5, hi=2.0)
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node(op, ["r", "c"], ["m"], name="bin"),
         helper.make_node("Neg", ["m"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        [numpy_helper.from_array(c, "c")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@needs_kernel
@pytest.mark.parametrize("op", ["Mul", "Sub", "Div"])
@pytest.mark.parametrize("shape,cshape", [((1, 28, 28, 96), (96,)), ((1, 56, 56, 24), (1, 1, 1, 24)),
                                          ((14, 9, 24), (9, 24)), ((2, 16, 20, 20), (16, 1, 1))])
def test_in_place_native_step(op, shape, cshape):
    m = _chain(shape, cshape, op)
    x = rand(*shape, seed=7)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    for nt in (1, 2):
        sess = fastcnn.InferenceSession(m, num_threads=nt, graph_optimization_level="none")
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-6, atol=1e-6)
        plan = sess._plan({"x": x.shape})
        program = plan._pool[0].program
        assert program.n_native() == len(program) == 3
        (st,) = [s for s in plan.steps if s.node.name == "bin"]
        assert plan.storage[st.inputs[0]] == plan.storage[st.outputs[0]]   # in place


@needs_kernel
@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("geo", [(9, 96, 1), (1, 7, 1), (5, 3, 1), (700, 3, 1), (3, 3000, 1),
                                 (4, 5, 6), (13, 24, 63), (3, 100, 30), (40, 960, 1)])
def test_kernel_periodic_every_isa(level, geo):
    """Every op, both operand orders, fused ReLU, out of place and in place, NaN / inf
    operands with the row loops' max / min semantics (a >= b ? a : b), 1 and 2 threads."""
    outer, Cn, inner = geo
    n = outer * Cn * inner
    full = rand(n, seed=n % 97, lo=-4, hi=4)
    full[::37] = np.nan
    full[5::41] = np.inf
    v = rand(Cn, seed=Cn, lo=0.5, hi=2.0)
    v[::5] = -v[::5]
    vx = np.repeat(v, inner)[None, :].repeat(outer, 0).reshape(-1)   # v broadcast
    ops = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide,
           "MAX": lambda a, b: np.where(a >= b, a, b), "MIN": lambda a, b: np.where(a <= b, a, b)}
    prev = K.set_isa(level)
    try:
        for name, f in ops.items():
            for v_first in (False, True):
                a, am, b, bm = (v, 1, full, 0) if v_first else (full, 0, v, 1)
                with np.errstate(all="ignore"):
                    want = f(vx, full) if v_first else f(full, vx)
                for nt in (1, 2):
                    out = np.full(n, 7.0, np.float32)
                    K.binary(K.BIN[name], a, am, b, bm, out, outer, Cn, inner, 0, 0.0, 0.0, nt)
                    np.testing.assert_array_equal(out, want.astype(np.float32), err_msg=name)
                    out = np.full(n, 7.0, np.float32)
                    K.binary(K.BIN[name], a, am, b, bm, out, outer, Cn, inner, K.ACT["RELU"],
                             0.0, 0.0, nt)
                    with np.errstate(all="ignore"):
                        relu = np.where(want > 0, want, 0).astype(np.float32)   # NaN -> 0
                    np.testing.assert_array_equal(out, relu, err_msg=name)
                    if not v_first:     # in place: out is the full operand
                        z = full.copy()
                        K.binary(K.BIN[name], z, 0, v, 1, z, outer, Cn, inner, 0, 0.0, 0.0, nt)
                        np.testing.assert_array_equal(z, want.astype(np.float32), err_msg=name)
    finally:
        K.set_isa(prev)
