"""Shape plumbing and data movement: Reshape, Flatten, Squeeze, Unsqueeze, Identity,
Dropout, Shape, Size, Transpose, Concat, Split, Slice, Pad, Tile, Expand, Gather,
GatherElements, GatherND, Cast, CastLike, ConstantOfShape, Range, NonZero, TopK --
one-node models vs the ONNX reference and onnxruntime, across the opset versions
where attributes became inputs."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import fastcnn
from fastcnn.errors import ShapeError

from test_ops_elementwise import C, check, expect_error, one_node, rand, run_fastcnn

X = rand(2, 3, 4, 5)
I64 = np.int64


def i64(*v):
    return np.array(v, I64)


# -- views ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 20), (2, -1), (0, 3, 20), (-1,), (2, 3, 0, 5), (1, 2, 3, 4, 5)])
def test_reshape(shape):
    check("Reshape", [X, C(i64(*shape))], {}, 13)
    check("Reshape", [X, C(i64(*shape))], {}, 5)


def test_reshape_allowzero():
    check("Reshape", [np.zeros((0, 3), np.float32), C(i64(3, 0))], {"allowzero": 1}, 14)


def test_reshape_errors():
    expect_error("Reshape", [X, C(i64(7, -1))], {}, 13, cls=ShapeError)
    expect_error("Reshape", [X, C(i64(-1, -1))], {}, 13, cls=ShapeError)
    expect_error("Reshape", [X, X.shape and i64(2, 60)], {}, 13)   # runtime shape: not plannable


@pytest.mark.parametrize("axis", [0, 1, 2, 4, -1, -4])
@pytest.mark.parametrize("opset", [9, 13])
def test_flatten(axis, opset):
    if opset < 11 and axis < 0:
        expect_error("Flatten", [X], {"axis": axis}, opset)   # negative axes arrived in 11
    else:
        check("Flatten", [X], {"axis": axis}, opset)


def test_flatten_bad_axis():
    expect_error("Flatten", [X], {"axis": 5}, 13)


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_squeeze_unsqueeze(opset):
    x = rand(1, 3, 1, 5)
    if opset < 13:
        check("Squeeze", [x], {"axes": [0, -2]}, opset)
        check("Unsqueeze", [x], {"axes": [0, 5]}, opset)
        check("Unsqueeze", [x], {"axes": [-1]}, opset)
    else:
        check("Squeeze", [x, C(i64(0, -2))], {}, opset)
        check("Unsqueeze", [x, C(i64(0, 5))], {}, opset)
        check("Unsqueeze", [x, C(i64(-1))], {}, opset)
    check("Squeeze", [x], {}, opset)


def test_squeeze_errors():
    expect_error("Squeeze", [X, C(i64(1))], {}, 13, cls=ShapeError)
    expect_error("Unsqueeze", [X, C(i64(0, 0))], {}, 13)
    expect_error("Unsqueeze", [X], {}, 13)


def test_identity_and_views_chain():
    check("Identity", [X], {}, 16)
    check("Identity", [np.arange(5, dtype=I64)], {}, 13)


@pytest.mark.parametrize("opset", [7, 10, 12, 13, 22])
def test_dropout_inference(opset):
    attrs = {"ratio": 0.3} if opset < 12 else {}
    # inference keeps every element: the mask is all True (onnxruntime < opset 12 says False)
    out = check("Dropout", [X], attrs, opset, n_out=2, out_types=[np.float32, np.bool_],
                ort_check=opset >= 12)
    np.testing.assert_array_equal(out[0], X)
    assert out[1].all()
    if opset >= 12:
        check("Dropout", [X, C(np.array(0.5, np.float32)), C(np.array(False))], {}, opset, n_out=2,
              out_types=[np.float32, np.bool_])


def test_dropout_training_rejected():
    expect_error("Dropout", [X, C(np.array(0.5, np.float32)), C(np.array(True))], {}, 13)


@pytest.mark.parametrize("start,end", [(None, None), (1, None), (-1, None), (0, -2), (10, 20), (-10, 2)])
def test_shape(start, end):
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    check("Shape", [X], attrs, 15, out_types=[I64])
    check("Shape", [X], {}, 13, out_types=[I64])


def test_size():
    check("Size", [X], {}, 13, out_types=[I64])


# -- Transpose / Concat / Split ---------------------------------------------------------------
@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 2, 1, 0], [0, 1, 2, 3]])
def test_transpose(perm):
    check("Transpose", [X], {} if perm is None else {"perm": perm}, 13)


def test_transpose_bad_perm():
    expect_error("Transpose", [X], {"perm": [0, 1, 1, 2]}, 13)


@pytest.mark.parametrize("axis", [0, 1, 3, -1, -3])
def test_concat(axis):
    shapes = []
    for k in range(3):
        s = list(X.shape)
        s[axis] = k + 1
        shapes.append(s)
    xs = [rand(*s, seed=k) for k, s in enumerate(shapes)]
    check("Concat", xs, {"axis": axis}, 13)
    check("Concat", [xs[0], C(xs[1]), xs[2]], {"axis": axis}, 13)


@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
def test_concat_native_copy_step(axis, nt):
    """Concat runs as one native executor step (byte pieces copied on the pool, long ones
    cut in 128 KiB pieces): plain, and channel-blocked between two convs; batch 2, so
    along axes > 0 each input is several rows of the output."""
    from onnx.reference import ReferenceEvaluator
    from conftest import make_model
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 16, 40, 72)).astype(np.float32),
          rng.standard_normal((2, 8, 40, 72)).astype(np.float32)]
    shp = {0: (3, 16, 40, 72), 1: (2, 8, 40, 72), 2: (2, 16, 9, 72), 3: (2, 16, 40, 5),
           -1: (2, 16, 40, 5)}[axis]
    xs[1] = rng.standard_normal(shp).astype(np.float32)
    w = rng.standard_normal((16, 16, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((4, xs[0].shape[1] + (shp[1] if axis == 1 else 0), 1, 1)).astype(
        np.float32)
    for blocked in (False, True):
        if blocked:          # conv -> Concat -> conv: the Concat runs on NCHWc buffers
            nodes = [helper.make_node("Conv", ["a", "w"], ["ca"]),
                     helper.make_node("Concat", ["ca", "b"], ["cat"], axis=axis),
                     helper.make_node("Conv", ["cat", "w2"], ["y"])]
            inits = {"w": w, "w2": w2}
        else:
            nodes = [helper.make_node("Concat", ["a", "b"], ["y"], axis=axis)]
            inits = {}
        m = make_model(nodes, [("a", TensorProto.FLOAT, list(xs[0].shape)),
                               ("b", TensorProto.FLOAT, list(xs[1].shape))],
                       [("y", TensorProto.FLOAT, None)], inits)
        sess = fastcnn.InferenceSession(m, num_threads=nt)
        feeds = {"a": xs[0], "b": xs[1]}
        (want,) = ReferenceEvaluator(m).run(None, feeds)
        for _ in range(2):       # twice: a direct (freshly bound) output is rebound right
            (got,) = sess.run(None, feeds)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        plan = sess._plan({"a": xs[0].shape, "b": xs[1].shape})
        assert "Concat" in [st.node.op_type for st in plan.steps]
        program = plan._pool[0].program
        assert program.n_native() == len(program), "a step runs in Python"


def test_concat_int_and_errors():
    check("Concat", [i64(1, 2), i64(3), C(i64(4, 5))], {"axis": 0}, 13)
    expect_error("Concat", [X, rand(2, 3, 4, 6)], {"axis": 1}, 13, cls=ShapeError)
    expect_error("Concat", [X, X], {"axis": 4}, 13)
    expect_error("Concat", [X, X], {}, 13)


def test_split_versions():
    x = rand(2, 6, 5)
    check("Split", [x], {"axis": 1}, 11, n_out=3)
    check("Split", [x], {"axis": 1, "split": [1, 2, 3]}, 11, n_out=3)
    check("Split", [x], {"axis": -1, "split": [2, 3]}, 11, n_out=2)
    check("Split", [x, C(i64(1, 2, 3))], {"axis": 1}, 13, n_out=3)
    check("Split", [x], {"axis": 1}, 13, n_out=2)
    check("Split", [x], {"axis": 2, "num_outputs": 2}, 18, n_out=2)   # 3 + 2 (last smaller)
    check("Split", [x], {"axis": 1, "num_outputs": 4}, 18, n_out=4)   # 2 2 2 0
    check("Split", [x, C(i64(4, 2))], {"axis": 1}, 18, n_out=2)


def test_split_errors():
    x = rand(2, 6, 5)
    expect_error("Split", [x], {"axis": 2}, 13, n_out=2, cls=ShapeError)
    expect_error("Split", [x, C(i64(1, 2))], {"axis": 1}, 13, n_out=2, cls=ShapeError)
    expect_error("Split", [x], {"axis": 1, "num_outputs": 3}, 18, n_out=2)
    expect_error("Split", [x], {"axis": 3}, 13, n_out=2)


# -- Slice ------------------------------------------------------------------------------------
SLICES = [
    ([0, 1], [2, 3], [0, 1], None),
    ([1], [-1], [3], None),
    ([-1], [-1000], [3], [-1]),             # full reverse, clamped
    ([3, 10], [0, -100], [2, 3], [-1, -2]),
    ([0], [1000], [1], [2]),
    ([-1000], [1000], [-1], None),
    ([2], [2], [2], None),                  # empty
    ([4], [1], [3], [1]),                   # empty (start > end)
    ([0, 0, 0], [1, 2, 3], None, None),     # axes default
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice_inputs(starts, ends, axes, steps):
    ins = [X, C(i64(*starts)), C(i64(*ends))]
    if axes is not None or steps is not None:
        ins.append(C(i64(*(axes if axes is not None else range(len(starts))))))
    if steps is not None:
        ins.append(C(i64(*steps)))
    check("Slice", ins, {}, 13)
    check("Slice", ins, {}, 10)


@pytest.mark.parametrize("starts,ends,axes", [([0, 1], [2, 3], [0, 1]), ([1], [-1], [3]),
                                              ([-3], [1000], [2]), ([0], [2], None)])
def test_slice_attrs_opset9(starts, ends, axes):
    attrs = {"starts": starts, "ends": ends}
    if axes is not None:
        attrs["axes"] = axes
    check("Slice", [X], attrs, 9)


def test_slice_errors():
    expect_error("Slice", [X, C(i64(0)), C(i64(1)), C(i64(0)), C(i64(0))], {}, 13)
    expect_error("Slice", [X, C(i64(0)), C(i64(1)), C(i64(7))], {}, 13)
    expect_error("Slice", [X, C(i64(0, 0)), C(i64(1))], {}, 13)


# -- Pad --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 0, 0, 0, 0, 3],
                                  [0, 0, -1, 1, 0, 0, 1, -2]])
def test_pad_versions(mode, pads):
    ins = [X, C(i64(*pads))] + ([C(np.array(1.5, np.float32))] if mode == "constant" else [])
    neg = min(pads) < 0          # cropping: the reference evaluator rejects negative pads
    want = check("Pad", ins, {"mode": mode}, 11, ref_check=not neg)
    check("Pad", ins, {"mode": mode}, 13, ref_check=not neg)
    # Pad-2 (attributes): the reference evaluator does not run opset 2; compare with Pad-11
    got = run_fastcnn(*one_node("Pad", [X], {"mode": mode, "pads": pads,
                                             **({"value": 1.5} if mode == "constant" else {})}, 2))
    np.testing.assert_array_equal(got[0], want[0])


def test_pad_axes_and_wrap():
    check("Pad", [X, C(i64(1, 2, 2, 1)), C(np.array(-1, np.float32)), C(i64(1, 3))], {}, 18)
    check("Pad", [X, C(i64(1, 1)), None, C(i64(-1))], {"mode": "edge"}, 18)
    check("Pad", [X, C(i64(0, 0, 1, 2, 0, 0, 2, 1))], {"mode": "wrap"}, 19)
    check("Pad", [X, C(i64(0, 0, 1, 2, 0, 0, 2, 1)), np.array(2.5, np.float32)], {}, 13)  # runtime value
    check("Pad", [np.arange(12, dtype=I64).reshape(3, 4), C(i64(1, 1, 1, 1))], {}, 13)


def test_pad_errors():
    expect_error("Pad", [X, C(i64(1, 2))], {}, 13)
    expect_error("Pad", [X, C(i64(0, 0, 0, 9, 0, 0, 0, 0))], {"mode": "reflect"}, 13, cls=ShapeError)
    expect_error("Pad", [X, C(i64(0, 0, 0, -9, 0, 0, 0, 0))], {}, 13, cls=ShapeError)
    expect_error("Pad", [X, C(i64(*[0] * 8))], {"mode": "wrap"}, 13)
    expect_error("Pad", [X, C(i64(*[0] * 8))], {"mode": "mirror"}, 13)


# -- Tile / Expand / ConstantOfShape / Range: sizes checked before allocation --------------------
def test_tile_expand():
    check("Tile", [X, C(i64(1, 2, 1, 3))], {}, 13)
    check("Tile", [X, C(i64(1, 0, 1, 1))], {}, 6)
    check("Expand", [rand(3, 1), C(i64(2, 3, 4))], {}, 13)
    check("Expand", [rand(3, 1), C(i64(1, 1))], {}, 8)
    check("Expand", [np.arange(3, dtype=I64).reshape(3, 1), C(i64(3, 5))], {}, 13)


def test_constant_of_shape_and_range():
    check("ConstantOfShape", [C(i64(2, 3))], {}, 9, out_types=[np.float32])
    v = helper.make_tensor("v", TensorProto.INT64, [1], [7])
    check("ConstantOfShape", [C(i64(2, 3))], {"value": v}, 20, out_types=[I64])
    check("Range", [C(np.array(1, I64)), C(np.array(10, I64)), C(np.array(3, I64))], {}, 11)
    check("Range", [C(np.array(5.0, np.float32)), C(np.array(1.0, np.float32)),
                    C(np.array(-1.5, np.float32))], {}, 11)


@pytest.mark.parametrize("op,ins", [
    ("ConstantOfShape", [C(i64(1 << 20, 1 << 20))]),
    ("Expand", [rand(1), C(i64(1 << 16, 1 << 16))]),
    ("Tile", [rand(4, 4), C(i64(1 << 15, 1 << 15))]),
    ("Range", [C(np.array(0, I64)), C(np.array(1 << 40, I64)), C(np.array(1, I64))]),
])
def test_absurd_sizes_raise_before_allocating(op, ins):
    err = expect_error(op, ins, {}, 13 if op != "Range" else 11, cls=ShapeError)
    assert "limit" in str(err)


def test_range_zero_delta():
    expect_error("Range", [C(np.array(0, I64)), C(np.array(5, I64)), C(np.array(0, I64))], {}, 11)


# -- Gather family --------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("const_idx", [True, False])
def test_gather(axis, const_idx):
    idx = np.array([[0, -1], [1, -2]], I64)
    check("Gather", [X, C(idx) if const_idx else idx], {"axis": axis}, 13)
    check("Gather", [X, C(np.array(1, I64)) if const_idx else np.array(1, I64)], {"axis": axis}, 11)
    check("Gather", [X, idx.astype(np.int32)], {"axis": axis}, 13)


def test_gather_shape_plumbing_folds():
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape, all folded at plan time.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
             helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"]),
             helper.make_node("Relu", ["y"], ["z"])]
    inits = [helper.make_tensor("i0", TensorProto.INT64, [], [0]),
             helper.make_tensor("ax", TensorProto.INT64, [1], [0]),
             helper.make_tensor("m1", TensorProto.INT64, [1], [-1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = fastcnn.InferenceSession(m, num_threads=1)
    out = sess.run(None, {"x": X})[0]
    np.testing.assert_array_equal(out, np.maximum(X.reshape(2, -1), 0))
    plan = sess._plan({"x": X.shape})
    # Shape/Gather/Unsqueeze/Concat folded; Reshape is a zero-copy view step
    assert [s.node.op_type for s in plan.steps] == ["Reshape", "Relu"]
    reshaped = plan.steps[0].outputs[0]
    assert plan.storage[reshaped] == plan.storage["x"]      # same buffer: a zero-copy view


def test_gather_elements_nd():
    idx = np.random.default_rng(0).integers(0, 5, (2, 3, 4, 5))
    check("GatherElements", [X, idx], {"axis": 3}, 13)
    check("GatherElements", [X, C(idx)], {"axis": -1}, 11)
    idx = np.random.default_rng(1).integers(-3, 3, (2, 3, 4, 5))   # negative indices (ORT only)
    got = run_fastcnn(*one_node("GatherElements", [X, idx], {"axis": 1}, 13))[0]
    np.testing.assert_array_equal(got, np.take_along_axis(X, idx % 3, axis=1))
    check("GatherND", [rand(2, 3, 4), np.array([[0, 1], [1, -1]], I64)], {}, 13)
    check("GatherND", [rand(2, 3, 4), np.array([[1], [0]], I64)], {"batch_dims": 1}, 13)


def test_gather_out_of_range():
    expect_error("Gather", [X, C(i64(5))], {"axis": 1}, 13, cls=ShapeError)


# -- Cast -------------------------------------------------------------------------------------
CASTS = [(np.float32, TensorProto.INT64), (np.float32, TensorProto.INT32), (np.float32, TensorProto.BOOL),
         (np.float32, TensorProto.FLOAT16), (np.float32, TensorProto.DOUBLE), (np.float16, TensorProto.FLOAT),
         (np.int64, TensorProto.FLOAT), (np.bool_, TensorProto.FLOAT), (np.int32, TensorProto.INT64),
         (np.int64, TensorProto.BOOL), (np.uint8, TensorProto.FLOAT), (np.float64, TensorProto.INT8)]


@pytest.mark.parametrize("src,to", CASTS)
@pytest.mark.parametrize("opset", [6, 13, 19, 21])
def test_cast(src, to, opset):
    x = (rand(3, 4, lo=-20, hi=20) if np.dtype(src).kind in "f" else np.arange(-6, 6).reshape(3, 4))
    if src is np.bool_:
        x = x > 0
    elif np.dtype(src).kind == "u":
        x = np.abs(x)
    x = x.astype(src)
    if to == TensorProto.INT8:
        x = np.clip(x, -100, 100)
    out_t = helper.tensor_dtype_to_np_dtype(to)
    check("Cast", [x], {"to": to}, opset, out_types=[out_t])
    check("CastLike", [x, np.zeros(1, out_t)], {}, max(opset, 15), out_types=[out_t])


def test_cast_unsupported():
    expect_error("Cast", [X], {"to": TensorProto.STRING}, 13, out_types=[np.float32])


# -- NonZero, TopK ----------------------------------------------------------------------------
def test_nonzero_constant_folds_and_runtime_raises():
    data = np.array([[1, 0], [0, 3]], np.float32)
    check("NonZero", [C(data)], {}, 13, out_types=[I64], ort_check=False)
    err = expect_error("NonZero", [data], {}, 13, out_types=[I64])
    assert "constant" in str(err)


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [-1, 1])
def test_topk(largest, axis):
    x = np.random.default_rng(1).permutation(120).astype(np.float32).reshape(2, 3, 4, 5)
    check("TopK", [x, C(i64(3))], {"axis": axis, "largest": largest}, 11, n_out=2,
          out_types=[np.float32, I64])
    if largest:
        check("TopK", [x], {"axis": axis, "k": 2}, 1, n_out=2, out_types=[np.float32, I64],
              ort_check=False)
