"""Softmax / LogSoftmax through the native kernel (`_kernels.softmax`): axis variants,
opsets 11 (coerce to 2-D) and 13 (single axis), extreme values, batch > 1, non-last axes,
thread counts, every ISA; vs onnx.reference.ReferenceEvaluator, onnxruntime and float64
numpy.  (The generic op matrix incl. Hardmax is in test_ops_misc.py.)"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

import fastcnn

from test_ops_elementwise import check, one_node, rand, run_fastcnn

try:
    from fastcnn._kernels import softmax as KS
except ImportError:  # pragma: no cover
    KS = None

needs_kernel = pytest.mark.skipif(KS is None, reason="compiled kernels not built")
OPS = ["Softmax", "LogSoftmax"]


def ref64(x, op, opset, axis):
    """float64 oracle with the version's semantics."""
    x = np.asarray(x, np.float64)
    r = x.ndim
    if opset < 13:
        a = 1 if axis is None else axis % r if axis != r else r
        v = x.reshape(int(np.prod(x.shape[:a])), -1)
        ax = 1
    else:
        v, ax = x, (-1 if axis is None else axis)
    with np.errstate(all="ignore"):
        d = v - v.max(axis=ax, keepdims=True)
        s = np.exp(d).sum(axis=ax, keepdims=True)
        y = d - np.log(s) if op == "LogSoftmax" else np.exp(d) / s
    return y.reshape(x.shape)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape,axis", [
    ((1, 1000), None), ((1, 1000), 1), ((8, 1000), -1), ((3, 7), 0), ((1, 17), None),
    ((2, 5, 3), 1), ((2, 5, 3), 0), ((2, 21, 9, 11), 1), ((1, 4, 130), 1), ((2, 3, 4, 5), -3),
    ((5,), 0), ((1, 1, 1), -1), ((4, 3, 70), 2)])
def test_softmax_axes(op, opset, shape, axis):
    x = rand(*shape, seed=len(shape) + shape[-1])
    attrs = {} if axis is None else {"axis": axis}
    # the reference evaluator implements the opset-13 rule for every version; onnxruntime
    # implements the opset < 13 coerce-to-2D rule, so it is the oracle there
    outs = check(op, [x], attrs, opset, ref_check=opset >= 13)
    np.testing.assert_allclose(outs[0], ref64(x, op, opset, axis), rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_big_threads(op, opset, axis):
    """Above the kernel's serial threshold (threaded): rows and column blocks."""
    x = rand(2, 33, 40, 41, seed=5, lo=-20, hi=20)
    outs = check(op, [x], {"axis": axis}, opset, ref_check=opset >= 13)
    # log-softmax near 0 is (x - max) - log(sum) of magnitudes ~40: float32 absolute error
    atol = 1e-6 if op == "LogSoftmax" else 2e-7
    np.testing.assert_allclose(outs[0], ref64(x, op, opset, axis), rtol=2e-6, atol=atol)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 50.0, 1e4, 1e30])
def test_softmax_extreme_values(op, axis, scale):
    """The max is subtracted first: huge logits neither overflow nor lose the winner; tiny
    ones give the uniform distribution; exps below float range are 0."""
    x = (rand(6, 257, seed=9) * np.float32(scale)).astype(np.float32)
    x[0, :] = 3.0                       # constant row / column
    x[1, 5] = np.float32(scale) * 10    # one clear winner
    model, feeds = one_node(op, [x], {"axis": axis}, 13)
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, feeds)[0]
    w64 = ref64(x, op, 13, axis)
    for nt in (1, 2):
        got = run_fastcnn(model, feeds, nt)[0]
        assert np.all(np.isfinite(got))
        # log-softmax values are O(scale): compare relative to the row's magnitude
        atol = 1e-6 if op == "Softmax" else 2e-6 * max(1.0, float(np.abs(w64).max()))
        np.testing.assert_allclose(got, w64, rtol=2e-6, atol=atol)
        # the reference evaluator's LogSoftmax is log(softmax): inexact (or -inf) where
        # the softmax is denormal (or 0)
        fin = want > -80
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5, atol=atol)
        np.testing.assert_allclose(got, got_ort, rtol=1e-5, atol=atol)
    if op == "Softmax":
        np.testing.assert_allclose(got.sum(axis=axis), 1, rtol=1e-5)


@pytest.mark.parametrize("op", OPS)
def test_softmax_infinities_and_nan(op):
    x = rand(5, 40, seed=2)
    x[0, 3] = -np.inf                   # a -inf logit has probability 0 (log: -inf)
    x[1, :] = -np.inf                   # all -inf: NaN (as numpy / the reference)
    x[2, 7] = np.nan                    # NaN poisons its row
    x[3, 9] = np.inf                    # +inf - +inf: NaN
    model, feeds = one_node(op, [x], {"axis": -1}, 13)
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    for nt in (1, 2):
        got = run_fastcnn(model, feeds, nt)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.isnan(got[1:4]).all() and np.isfinite(got[4]).all()


@needs_kernel
@pytest.mark.parametrize("op", OPS)
def test_softmax_is_one_native_step_in_place(op):
    """A classifier tail MatMul -> Relu -> Softmax (-> Neg: a graph output is never written
    in place): the Softmax is a native step, in its input's buffer (the planner's in-place
    reuse), and the results match the reference."""
    from onnx import TensorProto, helper, numpy_helper
    w = rand(64, 1000, seed=4) * np.float32(0.1)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"]), helper.make_node("Relu", ["t"], ["r"]),
         helper.make_node(op, ["r"], ["s"], name="sm"), helper.make_node("Neg", ["s"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1000])],
        [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = rand(2, 64, seed=1)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    sess = fastcnn.InferenceSession(m, num_threads=1)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
    plan = sess._plan({"x": x.shape})
    program = plan._pool[0].program
    assert program.n_native() == len(program)
    (step,) = [s for s in plan.steps if s.node.op_type == op]
    assert plan.storage[step.inputs[0]] == plan.storage[step.outputs[0]]


def test_softmax_other_dtypes_use_numpy():
    x = rand(3, 50, seed=3).astype(np.float64)
    for op in OPS:
        check(op, [x], {"axis": 1}, 13)


@needs_kernel
@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("lg", [0, 1])
@pytest.mark.parametrize("geo", [(1, 1000, 1), (3, 1, 1), (5, 17, 1), (2, 63, 1), (7, 100, 1),
                                 (1, 21, 4096), (2, 3, 5), (3, 5, 70), (2, 1, 9), (1, 9, 130),
                                 (64, 600, 1)])
def test_kernel_every_isa(level, lg, geo):
    """Portable / AVX2 / AVX-512 (clamped to the CPU's level) agree with float64 numpy,
    for 1 and 2 threads, out of place and in place, tails of every length."""
    outer, S, inner = geo
    x = rand(outer * S * inner, seed=outer + S + inner, lo=-30, hi=30)
    want = ref64(x.reshape(outer, S, inner), "LogSoftmax" if lg else "Softmax", 13, 1).reshape(-1)
    prev = KS.set_isa(level)
    try:
        for nt in (1, 2):
            y = np.full_like(x, 7.0)
            KS.softmax(x, y, outer, S, inner, lg, nt)
            np.testing.assert_allclose(y, want, rtol=2e-6, atol=1e-6 if lg else 2e-7)
            z = x.copy()
            KS.softmax(z, z, outer, S, inner, lg, nt)
            np.testing.assert_array_equal(z, y)
    finally:
        KS.set_isa(prev)


@needs_kernel
def test_kernel_checked_entry_rejects_bad_geometry():
    x = np.zeros(12, np.float32)
    with pytest.raises(ValueError):
        KS.softmax(x, np.zeros(12, np.float32), 2, 3, 3)
    with pytest.raises(ValueError):
        KS.softmax(x, np.zeros(11, np.float32), 2, 3, 2)
    with pytest.raises(ValueError):
        KS.softmax(x, np.zeros(12, np.float32), 2, 3, 2, 2)
    with pytest.raises(ValueError):
        KS.softmax_call(0, 0, 0, 3, 2, 0, 1, None)
