"""Elementwise ops (activations, math, binary, variadic, logic): one-node ONNX models,
fastcnn (1 and 2 threads) vs onnx.reference.ReferenceEvaluator and onnxruntime.

`check(...)` is the shared one-node harness (also used by test_ops_tensor.py and
test_ops_misc.py).
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import fastcnn
from fastcnn.errors import InvalidGraphError, ShapeError

try:
    from fastcnn._kernels import elementwise as K
except ImportError:  # pragma: no cover
    K = None

RTOL, ATOL = 1e-5, 1e-6


class C:
    """Marks a one-node-model input as an initializer (constant) instead of a graph input."""

    def __init__(self, value):
        self.value = np.asarray(value)


def one_node(op, inputs, attrs=None, opset=17, n_out=1, out_types=None, domain=""):
    """inputs: list of arrays (graph inputs), C(array) (initializers) or None (omitted)."""
    names, vi, inits, feeds = [], [], [], {}
    for k, v in enumerate(inputs):
        if v is None:
            names.append("")
            continue
        name = f"in{k}"
        names.append(name)
        if isinstance(v, C):
            inits.append(numpy_helper.from_array(v.value, name))
        else:
            v = np.asarray(v)
            vi.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
            feeds[name] = v
    outs = [f"out{k}" for k in range(n_out)]
    first = next((v.value if isinstance(v, C) else np.asarray(v)) for v in inputs if v is not None)
    out_types = out_types or [first.dtype] * n_out
    vo = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.dtype(t)), None)
          for o, t in zip(outs, out_types)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", domain=domain,
                            **(attrs or {}))
    g = helper.make_graph([node], "g", vi, vo, inits)
    opsets = [helper.make_opsetid("", opset)]
    try:
        ir = max(helper.find_min_ir_version_for(opsets), 3)
    except ValueError:     # very old opsets
        ir = 3
    m = helper.make_model(g, opset_imports=opsets, ir_version=ir)
    return m, feeds


def run_fastcnn(model, feeds, n_threads=1):
    return fastcnn.InferenceSession(model, num_threads=n_threads).run(None, feeds)


def compare(got, want, rtol=RTOL, atol=ATOL, what=""):
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, f"{what}: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype, f"{what}: dtype {g.dtype} != {w.dtype}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


def check(op, inputs, attrs=None, opset=17, n_out=1, out_types=None, threads=(1, 2), ort_check=True,
          rtol=RTOL, atol=ATOL, ref_check=True):
    """Run the one-node model through fastcnn (each thread count), the ONNX reference
    evaluator and onnxruntime; assert they agree.  Returns fastcnn's outputs.
    ref_check=False: onnxruntime only (where the reference evaluator lacks a feature)."""
    model, feeds = one_node(op, inputs, attrs, opset, n_out, out_types)
    if ref_check:
        ref = ReferenceEvaluator(model).run(None, feeds)
    else:
        ref = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, feeds)
    if out_types is None:   # declare the output types the reference produced
        model, feeds = one_node(op, inputs, attrs, opset, n_out, [np.asarray(r).dtype for r in ref])
    outs = None
    for nt in threads:
        outs = run_fastcnn(model, feeds, nt)
        compare(outs, ref, rtol, atol, f"{op}-{opset} fastcnn(n_threads={nt}) vs reference")
    if ort_check:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        compare(outs, sess.run(None, feeds), max(rtol, 1e-5), max(atol, 1e-6),
                f"{op}-{opset} fastcnn vs onnxruntime")
    return outs


def expect_error(op, inputs, attrs=None, opset=17, n_out=1, out_types=None, cls=InvalidGraphError):
    model, feeds = one_node(op, inputs, attrs, opset, n_out, out_types)
    with pytest.raises(cls) as e:
        run_fastcnn(model, feeds)
    assert f"'{op.lower()}_node'" in str(e.value), str(e.value)
    return e.value


def rand(*shape, seed=0, lo=-3.0, hi=3.0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


SMALL = (2, 3, 4, 5)
BIG = (2, 16, 40, 40)      # 51200 elements: above the kernels' serial threshold


# -- activations ------------------------------------------------------------------------------
ACTS = [
    ("Relu", {}, 14), ("Relu", {}, 6),
    ("LeakyRelu", {"alpha": 0.1}, 16), ("LeakyRelu", {}, 6),
    ("Sigmoid", {}, 13), ("Sigmoid", {}, 6),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 6), ("HardSigmoid", {}, 22),
    ("HardSwish", {}, 14), ("Tanh", {}, 13),
    ("Elu", {"alpha": 0.7}, 6), ("Selu", {}, 6), ("Selu", {"alpha": 1.5, "gamma": 2.0}, 22),
    ("Softplus", {}, 1), ("Softsign", {}, 1), ("Mish", {}, 18),
    ("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20),
    ("Celu", {"alpha": 1.3}, 12), ("ThresholdedRelu", {"alpha": 0.5}, 10),
    ("Erf", {}, 13), ("Exp", {}, 13), ("Neg", {}, 13), ("Abs", {}, 13),
    ("Floor", {}, 13), ("Ceil", {}, 13), ("Round", {}, 11), ("Sign", {}, 13),
]


@pytest.mark.parametrize("shape", [SMALL, BIG], ids=["small", "big"])
@pytest.mark.parametrize("op,attrs,opset", ACTS, ids=[f"{o}-{v}-{i}" for i, (o, a, v) in enumerate(ACTS)])
def test_activation(op, attrs, opset, shape):
    x = rand(*shape, seed=1)
    if op == "Round":
        x[0, 0, 0, :4] = [0.5, 1.5, -2.5, 2.5]
    check(op, [x], attrs, opset, rtol=2e-5 if op in ("Mish", "Gelu", "Selu", "Celu") else RTOL)


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_positive_domain(op):
    check(op, [rand(*SMALL, lo=0.1, hi=5.0)], {}, 13)
    check(op, [rand(*BIG, lo=0.1, hi=5.0)], {}, 13)


@pytest.mark.parametrize("op", ["Sin", "Cos", "Tan", "Atan", "Sinh", "Cosh", "Asinh"])
def test_trig(op):
    check(op, [rand(3, 7, lo=-1, hi=1)], {}, 13)


@pytest.mark.parametrize("op", ["Asin", "Acos", "Atanh"])
def test_trig_unit_domain(op):
    check(op, [rand(3, 7, lo=-0.9, hi=0.9)], {}, 13)


def test_acosh():
    check("Acosh", [rand(3, 7, lo=1.1, hi=4)], {}, 13)


def test_unary_other_dtypes():
    check("Relu", [np.arange(-5, 5, dtype=np.int32)], {}, 14)
    check("Abs", [np.arange(-5, 5, dtype=np.int64)], {}, 13)
    check("Neg", [np.arange(-5, 5, dtype=np.int64)], {}, 13)
    check("Sign", [np.arange(-5, 5).astype(np.float64)], {}, 13)
    check("Relu", [rand(4, 5, dtype=np.float64)], {}, 14)
    check("Sigmoid", [rand(4, 5, dtype=np.float64)], {}, 13)
    check("Not", [np.array([True, False, True])], {}, 1)


def test_isnan_isinf():
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0], np.float32)
    check("IsNaN", [x], {}, 13, out_types=[np.bool_])
    for neg, pos in ((1, 1), (0, 1), (1, 0)):
        check("IsInf", [x], {"detect_negative": neg, "detect_positive": pos}, 10,
              out_types=[np.bool_])


@pytest.mark.parametrize("shape,slope_shape", [
    (SMALL, (3, 1, 1)), (SMALL, (1,)), (SMALL, (5,)), (SMALL, (4, 5)), (SMALL, (3, 4, 5)),
    (BIG, (16, 1, 1)), ((4, 6), (6,)), (BIG, (1, 16, 1, 1))])
@pytest.mark.parametrize("const", [True, False])
def test_prelu(shape, slope_shape, const):
    x = rand(*shape, seed=2)
    s = rand(*slope_shape, seed=3, lo=0.0, hi=0.5)
    check("PRelu", [x, C(s) if const else s], {}, 16)


def test_prelu_opset9():
    check("PRelu", [rand(*SMALL), C(rand(3, 1, 1, seed=4))], {}, 9)


def test_prelu_bad_slope():
    expect_error("PRelu", [rand(*SMALL), C(rand(4, 1, 1))], {}, 16, cls=ShapeError)


# -- Clip: attributes before 11, inputs from 11 -------------------------------------------------
@pytest.mark.parametrize("shape", [SMALL, BIG], ids=["small", "big"])
def test_clip_attrs_opset6(shape):
    x = rand(*shape)
    check("Clip", [x], {"min": -1.0, "max": 0.5}, 6)
    check("Clip", [x], {"min": -1.0}, 6)
    check("Clip", [x], {"max": 2.0}, 6)
    check("Clip", [x], {}, 6)


@pytest.mark.parametrize("opset", [11, 12, 13])
@pytest.mark.parametrize("const", [True, False])
def test_clip_inputs(opset, const):
    x = rand(*BIG)
    lo, hi = np.array(-1.0, np.float32), np.array(0.5, np.float32)
    w = C if const else (lambda v: v)
    check("Clip", [x, w(lo), w(hi)], {}, opset)
    check("Clip", [x, w(lo)], {}, opset)
    check("Clip", [x, None, w(hi)], {}, opset)
    check("Clip", [x], {}, opset)


def test_clip_int():
    check("Clip", [np.arange(-10, 10, dtype=np.int64), C(np.array(-3, np.int64)),
                   C(np.array(4, np.int64))], {}, 13)


def test_clip_nonscalar_bound_rejected():
    expect_error("Clip", [rand(*SMALL), C(np.zeros(2, np.float32))], {}, 13, cls=ShapeError)


# -- binary -----------------------------------------------------------------------------------
BCAST = [
    (SMALL, SMALL), (SMALL, ()), ((), SMALL), (SMALL, (1,)), (SMALL, (3, 1, 1)), ((3, 1, 1), SMALL),
    (SMALL, (5,)), (SMALL, (4, 5)), (SMALL, (3, 4, 1)), (SMALL, (2, 1, 1, 5)), ((2, 1, 4, 1), (3, 1, 5)),
    (BIG, BIG), (BIG, (16, 1, 1)), (BIG, ()), ((1, 16, 1, 1), BIG), ((4, 1), (1, 6)),
]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("sa,sb", BCAST, ids=[f"{a}-{b}" for a, b in BCAST])
@pytest.mark.parametrize("const_b", [False, True])
def test_arith(op, sa, sb, const_b):
    a = rand(*sa, seed=5)
    b = rand(*sb, seed=6, lo=0.5, hi=2.0)
    check(op, [a, C(b) if const_b else b], {}, 14)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("opset", [7, 13, 14])
def test_arith_opsets(op, opset):
    check(op, [rand(*SMALL), rand(3, 1, 1, lo=0.5, hi=2)], {}, opset)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_arith_legacy_broadcast_opset6(op):
    a = rand(*SMALL)
    b = rand(3, 4, lo=0.5, hi=2)
    out = run_fastcnn(*one_node(op, [a, b], {"broadcast": 1, "axis": 1}, 6))[0]
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
    np.testing.assert_allclose(out, f(a, b.reshape(1, 3, 4, 1)), rtol=1e-6)
    out = run_fastcnn(*one_node(op, [a, rand(5, lo=0.5, hi=2)], {"broadcast": 1}, 6))[0]
    assert out.shape == SMALL
    out = run_fastcnn(*one_node(op, [a, rand(*SMALL, seed=9)], {}, 6))[0]
    np.testing.assert_allclose(out, f(a, rand(*SMALL, seed=9)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_div_truncates(dtype):
    a = np.array([7, -7, 7, -7, 0, 9, -9], dtype)
    b = np.array([2, 2, -2, -2, 3, 4, 4], dtype)
    out = check("Div", [a, b], {}, 14)[0]
    np.testing.assert_array_equal(out, np.array([3, -3, -3, 3, 0, 2, -2], dtype))


def test_int_arith():
    a = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    b = np.array([1, 2, 3, 4], np.int64)
    for op in ("Add", "Sub", "Mul"):
        check(op, [a, b], {}, 14)


def test_pow():
    check("Pow", [rand(*SMALL, lo=0.1, hi=3), rand(4, 5, lo=-2, hi=2)], {}, 15)
    check("Pow", [rand(*SMALL, lo=0.1, hi=3), C(np.array(2.0, np.float32))], {}, 7)
    check("Pow", [rand(3, 4, lo=0.1, hi=3), np.array(3, np.int64)], {}, 15)
    check("Pow", [np.arange(1, 7, dtype=np.int64), np.array(2, np.int64)], {}, 15)


def test_mod():
    a = np.array([5, -5, 5, -5, 7], np.int64)
    b = np.array([3, 3, -3, -3, 7], np.int64)
    check("Mod", [a, b], {}, 13)
    check("Mod", [a, b], {"fmod": 1}, 13)
    check("Mod", [rand(10), rand(10, lo=0.5, hi=2)], {"fmod": 1}, 13)
    expect_error("Mod", [a, b], {"fmod": 2}, 13)


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_compare(op):
    a = np.round(rand(*SMALL, seed=1))
    b = np.round(rand(4, 5, seed=2))
    check(op, [a, b], {}, 16 if op in ("LessOrEqual", "GreaterOrEqual") else 13, out_types=[np.bool_])
    check(op, [a.astype(np.int64), b.astype(np.int64)], {}, 13, out_types=[np.bool_])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(op):
    r = np.random.default_rng(3)
    a, b = r.random((3, 4)) > 0.5, r.random((4,)) > 0.5
    check(op, [a, b], {}, 7, out_types=[np.bool_])
    check("Not", [a], {}, 1)


def test_where():
    r = np.random.default_rng(4)
    cnd = r.random((3, 1, 5)) > 0.5
    check("Where", [cnd, rand(3, 4, 5), rand(4, 1, seed=3)], {}, 16)
    check("Where", [cnd, np.arange(20, dtype=np.int64).reshape(4, 5), np.array(-1, np.int64)], {}, 9)


# -- variadic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("shapes", [[SMALL], [SMALL, SMALL], [SMALL, (3, 1, 1)], [BIG, BIG],
                                    [BIG, (16, 1, 1)], [SMALL, (5,), (4, 1), ()]],
                         ids=["one", "same", "channel", "big", "bigchannel", "four"])
def test_variadic(op, shapes):
    xs = [rand(*s, seed=k) for k, s in enumerate(shapes)]
    check(op, xs, {}, 13)


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic_opset6_same_shape(op):
    check(op, [rand(*SMALL), rand(*SMALL, seed=2)], {}, 6)


def test_variadic_int():
    check("Max", [np.arange(6, dtype=np.int64), np.full(6, 3, np.int64)], {}, 13)


# -- attribute validation ---------------------------------------------------------------------
def test_bad_attributes_name_the_node():
    x = rand(*SMALL)
    expect_error("Gelu", [x], {"approximate": "fast"}, 20)
    expect_error("LeakyRelu", [x], {"alpha": float("nan")}, 16)
    expect_error("Celu", [x], {"alpha": 0.0}, 12)
    expect_error("Add", [x, rand(3, 1)], {}, 14, cls=ShapeError)
    expect_error("Add", [x, np.ones(SMALL, np.float64)], {}, 14)
    expect_error("Where", [np.ones((2,), np.float32), x, x], {}, 16)
    expect_error("Add", [x, rand(4)], {"broadcast": 0}, 6, cls=ShapeError)


# -- kernels directly -------------------------------------------------------------------------
needs_kernel = pytest.mark.skipif(K is None, reason="compiled kernels not built")


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 17, 40000, 100003])
def test_kernel_activation_matches_numpy(n_threads, n):
    x = rand(n, seed=n) if n else np.zeros(0, np.float32)
    for kind, ref in ((K.ACT["RELU"], lambda v: np.maximum(v, 0)),
                      (K.ACT["CLIP"], lambda v: np.clip(v, -0.5, 1.0)),
                      (K.ACT["LEAKY_RELU"], lambda v: np.where(v >= 0, v, -0.5 * v)),
                      (K.ACT["SIGMOID"], lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))),
                      (K.ACT["SILU"], lambda v: v / (1 + np.exp(-v.astype(np.float64))))):
        out = np.empty_like(x)
        K.activation(x, out, kind, -0.5, 1.0, None, 1, 1, n_threads)
        np.testing.assert_allclose(out, ref(x), rtol=1e-6, atol=1e-7)
    y = x.copy()
    K.activation(y, y, K.ACT["RELU"], 0, 0, None, 1, 1, n_threads)   # in place
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_prelu_and_affine(n_threads):
    x = rand(2, 16, 40, 40, seed=7)
    slope = rand(16, lo=0, hi=1, seed=8)
    out = np.empty_like(x)
    K.activation(x.reshape(-1), out.reshape(-1), K.ACT["PRELU"], 0, 0, slope, 1600, 16, n_threads)
    np.testing.assert_allclose(out, np.where(x >= 0, x, x * slope.reshape(16, 1, 1)), rtol=1e-6)
    scale, bias = rand(16, seed=9), rand(16, seed=10)
    K.affine_channel(x.reshape(-1), scale, bias, out.reshape(-1), 2, 16, 1600, K.ACT["RELU"], 0, 0,
                     n_threads)
    np.testing.assert_allclose(out, np.maximum(x * scale.reshape(16, 1, 1) + bias.reshape(16, 1, 1), 0),
                               rtol=1e-5, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_binary_modes(n_threads):
    F, CH, S = K.OPERAND["FULL"], K.OPERAND["CHANNEL"], K.OPERAND["SCALAR"]
    a = rand(2, 16, 40, 40, seed=11)
    full = rand(2, 16, 40, 40, seed=12, lo=0.5, hi=2)
    ch = rand(16, seed=13, lo=0.5, hi=2)
    sc = np.array([1.5], np.float32)
    out = np.empty_like(a)
    cases = [(F, a, F, full, full), (F, a, CH, ch, ch.reshape(16, 1, 1)), (F, a, S, sc, sc[0]),
             (CH, ch, F, a, None), (S, sc, F, a, None)]
    for name, f in (("ADD", np.add), ("SUB", np.subtract), ("MUL", np.multiply),
                    ("DIV", np.divide), ("MAX", np.maximum), ("MIN", np.minimum)):
        for ma, av, mb, bv, bref in cases:
            K.binary(K.BIN[name], av.reshape(-1), ma, bv.reshape(-1), mb, out.reshape(-1),
                     2, 16, 1600, 0, 0, 0, n_threads)
            aref = av if ma == F else (av.reshape(16, 1, 1) if ma == CH else av[0])
            bref2 = bv if mb == F else (bv.reshape(16, 1, 1) if mb == CH else bv[0])
            np.testing.assert_allclose(out, f(aref, bref2), rtol=1e-6, err_msg=f"{name} {ma} {mb}")


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_binary_lanes_operand(n_threads):
    """LANES: a per-channel operand of a channel-blocked tensor, [CB, 8] against
    [N, CB, H, W, 8] (the squeeze-and-excitation scale in NCHWc)."""
    L = K.OPERAND["LANES"]
    F = K.OPERAND["FULL"]
    x = rand(2, 3, 9, 7, 8, seed=21)
    out = np.empty_like(x)
    # one scale per (image, channel): C = N*CB rows; or shared by the batch: outer = N
    for s, outer, C in ((rand(2, 3, 1, 1, 8, seed=22, lo=0.5, hi=2), 1, 6),
                        (rand(1, 3, 1, 1, 8, seed=23, lo=0.5, hi=2), 2, 3)):
        for name, f in (("MUL", np.multiply), ("SUB", np.subtract), ("DIV", np.divide)):
            K.binary(K.BIN[name], x.reshape(-1), F, s.reshape(-1), L, out.reshape(-1),
                     outer, C, 9 * 7 * 8, 0, 0, 0, n_threads, 8)
            np.testing.assert_allclose(out, f(x, s), rtol=1e-6, err_msg=name)
            K.binary(K.BIN[name], s.reshape(-1), L, x.reshape(-1), F, out.reshape(-1),
                     outer, C, 9 * 7 * 8, 0, 0, 0, n_threads, 8)
            np.testing.assert_allclose(out, f(s, x), rtol=1e-6, err_msg=name)
    with pytest.raises(ValueError):     # inner must hold whole lane vectors
        K.binary(K.BIN["MUL"], x.reshape(-1), F, s.reshape(-1), L, out.reshape(-1),
                 1, 6, 9 * 7 * 8, 0, 0, 0, n_threads, 5)


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_affine_channel_lanes(n_threads):
    """Per-lane scale/bias ([CB, 8]) over a blocked [N, CB, S, 8] tensor (a BN in NCHWc)."""
    x = rand(2, 5, 300, 8, seed=31)
    sc, bi = rand(5, 8, seed=32), rand(5, 8, seed=33)
    out = np.empty_like(x)
    K.affine_channel(x.reshape(-1), sc.reshape(-1), bi.reshape(-1), out.reshape(-1), 2, 5,
                     300 * 8, K.ACT["RELU"], 0, 0, n_threads, 8)
    np.testing.assert_allclose(out, np.maximum(x * sc[:, None] + bi[:, None], 0), rtol=1e-5,
                               atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("act", ["NONE", "RELU", "CLIP", "SIGMOID"])
def test_kernel_affine_channel_lanes8_acts_in_place(act, inplace, n_threads):
    """The 8-lane loops (a standalone BN in NCHWc with its activation fused), out of place
    and in place (out is x: the planner runs BN in place), with NaN and infinities."""
    x = rand(2, 3, 17, 8, seed=41)
    x[0, 0, :4, 0] = [np.nan, np.inf, -np.inf, 0.0]
    sc, bi = rand(3, 8, seed=42), rand(3, 8, seed=43)
    y = x * sc[:, None] + bi[:, None]
    want = {"NONE": y, "RELU": np.where(y > 0, y, 0), "CLIP": np.clip(y, -0.3, 0.4),
            "SIGMOID": 1 / (1 + np.exp(-y))}[act]
    src = x.copy()
    out = src if inplace else np.empty_like(x)
    with np.errstate(all="ignore"):
        K.affine_channel(src.reshape(-1), sc.reshape(-1), bi.reshape(-1), out.reshape(-1), 2, 3,
                         17 * 8, K.ACT[act], -0.3, 0.4, n_threads, 8)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_kernel_checked_entry_points_reject_bad_geometry():
    x = np.zeros(10, np.float32)
    with pytest.raises(ValueError):
        K.activation(x, np.zeros(9, np.float32), K.ACT["RELU"])
    with pytest.raises(ValueError):
        K.binary(K.BIN["ADD"], x, 0, x, 0, x, 2, 3, 2)
    with pytest.raises(ValueError):
        K.affine_channel(x, x[:1], x[:1], x, 1, 2, 5)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       mask=st.lists(st.booleans(), min_size=4, max_size=4),
       op=st.sampled_from(["Add", "Sub", "Mul", "Div", "Max", "Min"]))
def test_binary_random_broadcast(shape, mask, op):
    """Random broadcast patterns (kernel or numpy path) agree with numpy."""
    b_shape = [d if m else 1 for d, m in zip(shape, mask)]
    a = rand(*shape, seed=1)
    b = rand(*b_shape, seed=2, lo=0.5, hi=2.0)
    out = run_fastcnn(*one_node(op, [a, b], {}, 13))[0]
    f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
         "Max": np.maximum, "Min": np.minimum}[op]
    np.testing.assert_allclose(out, f(a, b), rtol=1e-6)


# -- executor integration: native steps, profiling, concurrent runs ----------------------------
def _chain(n=12, shape=(1, 8, 4, 4)):
    from onnx import TensorProto
    nodes, inits, cur = [], [], "x"
    for k in range(n):
        op = ("Relu", "Add", "Mul", "Sigmoid")[k % 4]
        ins = [cur]
        if op in ("Add", "Mul"):
            inits.append(numpy_helper.from_array(np.full((shape[1], 1, 1), 0.5 + k, np.float32), f"c{k}"))
            ins.append(f"c{k}")
        nodes.append(helper.make_node(op, ins, [f"t{k}"], name=f"n{k}"))
        cur = f"t{k}"
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(cur, TensorProto.FLOAT, shape)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@needs_kernel
def test_chain_runs_as_native_steps_and_profiles():
    m = _chain()
    x = rand(1, 8, 4, 4)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    sess = fastcnn.InferenceSession(m, num_threads=1, graph_optimization_level="none")
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-6)
    outs, prof = sess.run_profiled({"x": x})
    np.testing.assert_allclose(outs[0], want, rtol=1e-5, atol=1e-6)
    assert len(prof) == 12
    program = sess._plan({"x": x.shape})._pool[0].program
    assert program.n_native() == len(program) == 12


def test_concurrent_runs_are_independent():
    import threading
    m = _chain(40, (2, 8, 16, 16))
    sess = fastcnn.InferenceSession(m, num_threads=1)
    ref = ReferenceEvaluator(m)
    errors = []

    def work(seed):
        try:
            for k in range(20):
                x = rand(2, 8, 16, 16, seed=seed * 100 + k)
                np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref.run(None, {"x": x})[0],
                                           rtol=1e-5, atol=1e-6)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[0]


@needs_kernel
@pytest.mark.parametrize("level", [0, 1, 2])
def test_kernel_transcendentals_every_isa(level):
    """Portable / AVX2 / AVX-512 builds of the branch-free loops agree with float64 numpy
    (levels above the CPU's are clamped to it)."""
    x = np.concatenate([rand(50000, seed=3, lo=-12, hi=12),
                        np.array([0, -0.0, 1e-6, -1e-6, 88, -88, 100, -100], np.float32)])
    xd = x.astype(np.float64)
    refs = {"SIGMOID": 1 / (1 + np.exp(-xd)), "SILU": xd / (1 + np.exp(-xd)), "TANH": np.tanh(xd),
            "MISH": xd * np.tanh(np.logaddexp(xd, 0)), "ELU": np.where(xd >= 0, xd, 0.7 * np.expm1(xd)),
            "HARD_SWISH": xd * np.clip(xd / 6 + 0.5, 0, 1), "HARD_SIGMOID": np.clip(0.7 * xd, 0, 1),
            "GELU_TANH": 0.5 * xd * (1 + np.tanh(np.sqrt(2 / np.pi) * (xd + 0.044715 * xd ** 3)))}
    prev = K.set_isa(level)
    try:
        out = np.empty_like(x)
        for name, ref in refs.items():
            K.activation(x, out, K.ACT[name], 0.7, 0.0, None, 1, 1, 1)
            np.testing.assert_allclose(out, ref, rtol=2e-6, atol=2e-6, err_msg=name)
    finally:
        K.set_isa(prev)
