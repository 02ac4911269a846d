"""Softmax family, Gemm/MatMul/Einsum, reductions, ArgMax/ArgMin and normalizations:
one-node models vs the ONNX reference and onnxruntime, across opset versions."""
from __future__ import annotations

import numpy as np
import pytest

from fastcnn.errors import ShapeError

from test_ops_elementwise import C, check, expect_error, one_node, rand, run_fastcnn

X = rand(2, 3, 4, 5)
I64 = np.int64


def i64(*v):
    return np.array(v, I64)


# -- Softmax: coerce-to-2D before 13, single axis from 13 --------------------------------------
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
def test_softmax(op, opset, axis):
    # the reference evaluator applies the opset-13 single-axis rule to every version;
    # onnxruntime implements the opset < 13 coerce-to-2D rule, so it is the oracle there
    check(op, [X], {} if axis is None else {"axis": axis}, opset, ref_check=opset >= 13)


def test_softmax_semantics_differ_between_versions():
    a = run_fastcnn(*one_node("Softmax", [X], {"axis": 1}, 11))[0]
    b = run_fastcnn(*one_node("Softmax", [X], {"axis": 1}, 13))[0]
    np.testing.assert_allclose(a.reshape(2, -1).sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(b.sum(1), 1, rtol=1e-5)
    assert not np.allclose(a, b)


def test_softmax_bad_axis():
    expect_error("Softmax", [X], {"axis": 4}, 13)
    expect_error("Softmax", [X], {"axis": 5}, 11)


# -- Gemm / MatMul ----------------------------------------------------------------------------
@pytest.mark.parametrize("transA", [0, 1])
@pytest.mark.parametrize("transB", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (5,), (1, 5), (3, 1), (3, 5)])
@pytest.mark.parametrize("const_b", [True, False])
def test_gemm(transA, transB, c_shape, const_b):
    a = rand(*((4, 3) if transA else (3, 4)), seed=1)
    b = rand(*((5, 4) if transB else (4, 5)), seed=2)
    ins = [a, C(b) if const_b else b]
    if c_shape is not None:
        ins.append(C(rand(*c_shape, seed=3)))
    check("Gemm", ins, {"transA": transA, "transB": transB, "alpha": 0.7, "beta": 1.3}, 13)
    if c_shape is not None:
        check("Gemm", ins, {"transA": transA, "transB": transB}, 7)


def test_gemm_runtime_c_and_defaults():
    check("Gemm", [rand(3, 4), rand(4, 5), rand(5)], {}, 13)
    check("Gemm", [rand(3, 4), C(rand(4, 5)), rand(3, 5)], {"beta": 0.0}, 11)


def test_gemm_errors():
    expect_error("Gemm", [rand(3, 4), C(rand(5, 5))], {}, 13, cls=ShapeError)
    expect_error("Gemm", [rand(3, 4), C(rand(4, 5)), C(rand(2, 5))], {}, 13, cls=ShapeError)
    expect_error("Gemm", [rand(3, 4, 1), C(rand(4, 5))], {}, 13, cls=ShapeError)
    expect_error("Gemm", [rand(3, 4), C(rand(4, 5))], {"transA": 2}, 13)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)),
                                   ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 3, 4), (2, 4, 6))])
@pytest.mark.parametrize("const_b", [True, False])
def test_matmul(sa, sb, const_b):
    b = rand(*sb, seed=2)
    check("MatMul", [rand(*sa, seed=1), C(b) if const_b else b], {}, 13)


def test_matmul_errors():
    expect_error("MatMul", [rand(3, 4), rand(5, 6)], {}, 13, cls=ShapeError)
    expect_error("MatMul", [rand(2, 3, 4), rand(3, 4, 5)], {}, 13, cls=ShapeError)


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
                                       ("ii->i", [(4, 4)]), ("ij->", [(3, 4)]), ("nchw->nhwc", [(1, 2, 3, 4)])])
def test_einsum(eq, shapes):
    check("Einsum", [rand(*s, seed=k) for k, s in enumerate(shapes)], {"equation": eq}, 12)


# -- reductions: axes attribute vs input, keepdims, noop_with_empty_axes ------------------------
REDUCES = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceSumSquare", "ReduceLogSumExp", "ReduceLogSum"]


def _axes_input_since(op):
    return 13 if op == "ReduceSum" else 18


@pytest.mark.parametrize("op", REDUCES)
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("axes", [None, [1], [-1, 0], [1, 2, 3]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce(op, opset, axes, keepdims):
    x = rand(2, 3, 4, 5, lo=0.5, hi=1.5) if op in ("ReduceProd", "ReduceLogSum") else X
    attrs = {"keepdims": keepdims}
    ins = [x]
    if axes is not None:
        if opset >= _axes_input_since(op):
            ins.append(C(i64(*axes)))
        else:
            attrs["axes"] = axes
    check(op, ins, attrs, opset, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceL2"])
def test_reduce_noop_with_empty_axes(op):
    out = check(op, [X], {"noop_with_empty_axes": 1}, 18)[0]
    assert out.shape == X.shape
    check(op, [X, C(np.zeros(0, I64))], {"noop_with_empty_axes": 0, "keepdims": 0}, 18)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2"])
@pytest.mark.parametrize("shape,axes", [((2, 7, 9, 16), [1, 2]), ((1, 5, 6, 11), [1, 2]),
                                        ((3, 40, 50), [2]), ((2, 64, 56, 56), [2, 3])])
def test_reduce_spatial_runs(op, shape, axes):
    """Reductions over one run of adjacent axes (TF's NHWC global average pool: ReduceMean
    over axes 1, 2) take the native [outer, S, inner] kernel."""
    # float32 sums of up to 3136 terms of either sign: absolute error ~1e-5 * sqrt(S)
    check(op, [rand(*shape, seed=5)], {"axes": axes, "keepdims": 1}, 11, rtol=1e-5, atol=2e-4)


def test_reduce_int_and_errors():
    check("ReduceSum", [np.arange(24, dtype=I64).reshape(2, 3, 4), C(i64(1))], {}, 13)
    check("ReduceMax", [np.arange(24, dtype=I64).reshape(2, 3, 4)], {"axes": [2]}, 13)
    expect_error("ReduceMean", [X], {"axes": [4]}, 13)
    expect_error("ReduceMean", [X], {"axes": [1, 1]}, 13)
    expect_error("ReduceSum", [X, rand(1)], {}, 13)    # runtime axes cannot be planned


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 2, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg(op, axis, keepdims, last):
    x = np.round(X * 2) / 2            # ties
    attrs = {"axis": axis, "keepdims": keepdims}
    if last:
        attrs["select_last_index"] = 1
    check(op, [x], attrs, 13, out_types=[I64])
    if not last:
        check(op, [x], attrs, 11, out_types=[I64])


# -- normalizations ---------------------------------------------------------------------------
def _bn_inputs(c=3, const=True, seed=0):
    r = np.random.default_rng(seed)
    p = [r.uniform(0.5, 1.5, c).astype(np.float32), r.uniform(-1, 1, c).astype(np.float32),
         r.uniform(-1, 1, c).astype(np.float32), r.uniform(0.5, 2, c).astype(np.float32)]
    return [C(v) for v in p] if const else p


@pytest.mark.parametrize("opset", [7, 9, 14, 15])
@pytest.mark.parametrize("const", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3), (1, 3, 7), (2, 16, 40, 40)])
def test_batchnorm(opset, const, shape):
    x = rand(*shape)
    # the reference evaluator's BatchNormalization-7/9 are broken (tuple result / epsilon
    # ignored); onnxruntime is the oracle there
    check("BatchNormalization", [x] + _bn_inputs(shape[1], const), {"epsilon": 1e-3}, opset,
          rtol=1e-5, atol=1e-5, ref_check=opset >= 14)


def test_batchnorm_training_rejected():
    expect_error("BatchNormalization", [X] + _bn_inputs(), {"training_mode": 1}, 15)
    expect_error("BatchNormalization", [X] + _bn_inputs(4), {}, 15, cls=ShapeError)
    expect_error("BatchNormalization", [X] + _bn_inputs(), {"epsilon": float("inf")}, 15)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3, 7), (2, 3, 2, 3, 4)])
def test_instance_norm(shape):
    r = np.random.default_rng(0)
    check("InstanceNormalization", [rand(*shape), C(r.random(3).astype(np.float32)),
                                    C(r.random(3).astype(np.float32))], {"epsilon": 1e-4}, 6,
          rtol=1e-4, atol=1e-5)


def _lrn_spec(x, size, alpha, beta, bias):
    c = x.shape[1]
    sq = np.zeros_like(x, dtype=np.float64)
    for k in range(c):
        a, b = max(0, k - (size - 1) // 2), min(c - 1, k + int(np.ceil((size - 1) / 2)))
        sq[:, k] = (x[:, a:b + 1].astype(np.float64) ** 2).sum(1)
    return (x / (bias + alpha / size * sq) ** beta).astype(x.dtype)


def test_lrn_even_size_follows_spec():
    x = rand(2, 7, 4, 5)
    got = run_fastcnn(*one_node("LRN", [x], {"size": 4, "alpha": 1e-2, "beta": 0.6, "bias": 1.5}, 13))[0]
    np.testing.assert_allclose(got, _lrn_spec(x, 4, 1e-2, 0.6, 1.5), rtol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size):
    # the reference evaluator's LRN loops its window over the batch axis instead of the
    # channels; onnxruntime (odd sizes only) and the spec formula are the oracles
    np.testing.assert_allclose(check("LRN", [rand(2, 7, 4, 5)], {"size": size, "alpha": 1e-2, "beta": 0.6, "bias": 1.5}, 13,
          rtol=1e-5, atol=1e-6, ref_check=False)[0],
        _lrn_spec(rand(2, 7, 4, 5), size, 1e-2, 0.6, 1.5), rtol=1e-5)


def test_lrn_bad_size():
    expect_error("LRN", [X], {"size": 0}, 13)


@pytest.mark.parametrize("axis", [-1, 1, 2, -3])
@pytest.mark.parametrize("with_b", [True, False])
def test_layer_norm(axis, with_b):
    norm = X.shape[axis:] if axis >= 0 else X.shape[axis:]
    ins = [X, C(rand(*norm, seed=2))] + ([C(rand(*norm, seed=3))] if with_b else [])
    check("LayerNormalization", ins, {"axis": axis, "epsilon": 1e-4}, 17, n_out=3,
          out_types=[np.float32] * 3, rtol=1e-4, atol=1e-5)
    check("LayerNormalization", ins, {"axis": axis}, 17, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset,groups", [(18, 2), (18, 6), (21, 3), (21, 1)])
def test_group_norm(opset, groups):
    x = rand(2, 6, 4, 5)
    n = groups if opset < 21 else 6
    check("GroupNormalization", [x, C(rand(n, seed=1)), C(rand(n, seed=2))],
          {"num_groups": groups, "epsilon": 1e-3}, opset, rtol=1e-4, atol=1e-5,
          ort_check=opset >= 21)


def test_group_norm_errors():
    expect_error("GroupNormalization", [rand(2, 6, 4), C(rand(4)), C(rand(4))], {"num_groups": 4}, 21,
                 cls=ShapeError)
    expect_error("GroupNormalization", [rand(2, 6, 4), C(rand(6)), C(rand(6))], {"num_groups": 0}, 21)


def test_mean_variance_normalization():
    check("MeanVarianceNormalization", [X], {}, 13, rtol=1e-4, atol=1e-5)


# -- robustness: wrong attribute types/values raise fastcnn errors, never crash ------------------
def _my_ops():
    import fastcnn.ops  # noqa: F401  (registers)
    from fastcnn.ops.registry import all_registered
    mine = {"activation", "binary", "shape_ops", "tensor_ops", "reduce", "softmax", "matmul", "norm",
            "misc"}
    return sorted({op for (d, op), vs in all_registered().items()
                   if d == "" and any(c.__module__.rsplit(".", 1)[-1] in mine for _, c in vs)})


@pytest.mark.parametrize("op", _my_ops())
def test_bad_attributes_never_crash(op):
    """For every attribute in the op's schema (opsets 7..21), values of the wrong type or
    out of range give a FastCNNError (or a valid result), never a bare Python exception."""
    import warnings

    from onnx import AttributeProto, TensorProto, defs, helper

    import fastcnn
    from fastcnn.errors import FastCNNError

    bad = {AttributeProto.INT: [-5, 10 ** 12, 3], AttributeProto.FLOAT: [float("nan"), -1.0, 1e30],
           AttributeProto.INTS: [[], [10 ** 9], [-7, 0]], AttributeProto.STRING: ["bogus", ""],
           AttributeProto.FLOATS: [[], [float("nan")]]}
    wrong = ["str", [1, 2], 2.5, 7]
    for opset in (7, 11, 13, 18, 21):
        try:
            sch = defs.get_schema(op, opset)
        except Exception:
            continue
        ins = []
        for k, f in enumerate(sch.inputs):
            if f.option == defs.OpSchema.FormalParameterOption.Optional and k > 0:
                break
            allowed = next((tc.allowed_type_strs for tc in sch.type_constraints
                            if tc.type_param_str == f.type_str), [f.type_str])
            if "tensor(float)" in allowed:
                ins.append(np.random.default_rng(k).random((2, 3, 4, 5)).astype(np.float32))
            elif "tensor(int64)" in allowed:
                ins.append(np.array([1, 2], np.int64))
            elif "tensor(bool)" in allowed:
                ins.append(np.ones((2, 3), bool))
            else:
                ins.append(np.ones((2, 3), np.float32))
        names = [f"i{k}" for k in range(len(ins))]
        vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
              for n, x in zip(names, ins)]
        for name, a in sch.attributes.items():
            for v in bad.get(a.type, []) + wrong:
                try:
                    node = helper.make_node(op, names, ["y"], name="n0", **{name: v})
                except Exception:
                    continue
                g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
                m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
                try:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        fastcnn.InferenceSession(m, num_threads=1).run(None, dict(zip(names, ins)))
                except FastCNNError as e:
                    assert "n0" in str(e) or "input" in str(e), str(e)


# -- misc ops ---------------------------------------------------------------------------------
def test_misc_ops():
    x = rand(2, 3, 4, 5)
    check("Shrink", [x], {"bias": 0.2, "lambd": 0.7}, 9)
    # the reference evaluator's L1 norm sums x, not |x|: onnxruntime is the oracle
    check("LpNormalization", [x], {"p": 1, "axis": 1}, 13, ref_check=False)
    check("LpNormalization", [x], {}, 22)
    check("RMSNormalization", [x, C(rand(5, seed=3))], {"epsilon": 1e-4}, 23, rtol=1e-4, atol=1e-5)
    check("EyeLike", [rand(4, 6)], {"k": 1}, 9)
    check("OneHot", [np.array([[0, 2], [-1, 1]], I64), C(np.array(3, I64)), C(np.array([0.0, 5.0], np.float32))],
          {"axis": 1}, 11, out_types=[np.float32])
    check("CumSum", [x, C(np.array(1, I64))], {"exclusive": 1, "reverse": 1}, 14)
    check("CumSum", [x, C(np.array(-1, I64))], {}, 11)
    check("ScatterND", [x, C(np.array([[0, 1], [1, 2]], I64)), rand(2, 4, 5, seed=4)], {}, 13)
    check("ScatterND", [x, C(np.array([[0, 1], [1, 2]], I64)), rand(2, 4, 5, seed=4)], {"reduction": "add"}, 18)
    idx = np.random.default_rng(0).integers(0, 3, (2, 2, 4, 5))
    check("ScatterElements", [x, idx, rand(2, 2, 4, 5, seed=5)], {"axis": 1}, 13)
    check("ScatterElements", [x, idx, rand(2, 2, 4, 5, seed=5)], {"axis": 1, "reduction": "max"}, 18)
    a, b = np.arange(12, dtype=np.int32).reshape(3, 4), np.array([5, 6, 7, 8], np.int32)
    for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor"):
        check(op, [a, b], {}, 18)
    check("BitwiseNot", [a], {}, 18)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swish(alpha):
    x = rand(2, 16, 40, 40)
    got = run_fastcnn(*one_node("Swish", [x], {"alpha": alpha}, 24))[0]
    np.testing.assert_allclose(got, x / (1 + np.exp(-alpha * x.astype(np.float64))), rtol=1e-5, atol=1e-6)


def test_every_op_is_registered_for_every_opset_it_exists_in():
    """No version gaps: each op of these modules resolves at every opset 6..23 where ONNX has it."""
    from onnx import defs

    from fastcnn.ops.registry import lookup
    gaps = []
    for op in _my_ops():
        for v in range(6, 24):
            try:
                defs.get_schema(op, v)
            except Exception:
                continue
            if lookup(op, v) is None:
                gaps.append((op, v))
    assert not gaps, gaps
