"""If: resolved when the plan is made (the condition is a constant once the input shapes
are known), compared with onnx.reference.  PyTorch's exporter writes `x.squeeze(dim)` of a
dim it cannot see as If(Shape(x)[dim] == 1, Squeeze, Identity): F.local_response_norm does
that under a dynamic batch (the AlexNet-with-LRN round trip in tests/models)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import fastcnn
from fastcnn.errors import InvalidGraphError, UnsupportedOpError

F = TensorProto.FLOAT
I64 = TensorProto.INT64


def _c(name, arr):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr)))


def squeeze_if_model(opset=13, with_bn=False):
    """y = Relu(squeeze(x, 1) if x.shape[1] == 1 else x) * 2, the exporter's idiom.  With
    with_bn, the If reads a Conv+BatchNormalization output (the passes fold the BN)."""
    nodes, inits = [], []
    src = "x"
    if with_bn:
        rng = np.random.default_rng(1)
        c = 3
        inits = [numpy_helper.from_array(rng.standard_normal((c, c, 1, 1)).astype(np.float32), "w"),
                 numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), "g"),
                 numpy_helper.from_array(rng.uniform(-.5, .5, c).astype(np.float32), "b"),
                 numpy_helper.from_array(rng.uniform(-.5, .5, c).astype(np.float32), "m"),
                 numpy_helper.from_array(rng.uniform(0.5, 2, c).astype(np.float32), "v")]
        nodes += [helper.make_node("Conv", ["x", "w"], ["cv"], name="conv"),
                  helper.make_node("BatchNormalization", ["cv", "g", "b", "m", "v"], ["bn"],
                                   name="bn")]
        src = "bn"
    if opset >= 13:
        then_nodes = [_c("ax", np.array([1], np.int64)),
                      helper.make_node("Squeeze", [src, "ax"], ["sq"])]
    else:
        then_nodes = [helper.make_node("Squeeze", [src], ["sq"], axes=[1])]
    then_g = helper.make_graph(then_nodes, "then", [], [helper.make_tensor_value_info("sq", F, None)])
    else_g = helper.make_graph([helper.make_node("Identity", [src], ["id"])], "else", [],
                               [helper.make_tensor_value_info("id", F, None)])
    nodes += [helper.make_node("Shape", [src], ["shp"]), _c("one_i", np.array(1, np.int64)),
              helper.make_node("Gather", ["shp", "one_i"], ["c"], axis=0),
              helper.make_node("Equal", ["c", "one_i"], ["cond"]),
              helper.make_node("If", ["cond"], ["t"], then_branch=then_g, else_branch=else_g,
                               name="squeeze_if"),
              helper.make_node("Relu", ["t"], ["r"]), _c("two", np.array(2, np.float32)),
              helper.make_node("Mul", ["r", "two"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["N", "C", 4, 5])],
                          [helper.make_tensor_value_info("y", F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


@pytest.mark.parametrize("opset", [11, 13, 17])
@pytest.mark.parametrize("with_bn", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_squeeze_if(opset, with_bn, threads):
    model = squeeze_if_model(opset, with_bn)
    sess = fastcnn.InferenceSession(model.SerializeToString(), num_threads=threads)
    ref = ReferenceEvaluator(model)
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 5)] if with_bn else [(2, 1, 4, 5), (2, 3, 4, 5), (1, 1, 4, 5)]
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        if with_bn:   # numpy: onnx.reference 1.x gets this BatchNormalization wrong
            w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
            col = lambda a: a[None, :, None, None]  # noqa: E731
            cv = np.einsum("oc,nchw->nohw", w["w"][:, :, 0, 0], x)
            bn = (cv - col(w["m"])) / np.sqrt(col(w["v"]) + 1e-5) * col(w["g"]) + col(w["b"])
            want = 2 * np.maximum(bn, 0)
        else:
            (want,) = ref.run(None, {"x": x})
        (got,) = sess.run(None, {"x": x})
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_if_branch_returns_outer_value_constant_and_nested_if():
    """Two outputs: the then branch returns a captured outer value and a value of a nested
    If; the else branch a constant of its own (an initializer) and a computed value."""
    inner_then = helper.make_graph([helper.make_node("Neg", ["x"], ["ni"])], "it", [],
                                   [helper.make_tensor_value_info("ni", F, None)])
    inner_else = helper.make_graph([helper.make_node("Abs", ["x"], ["ai"])], "ie", [],
                                   [helper.make_tensor_value_info("ai", F, None)])
    then_g = helper.make_graph(
        [helper.make_node("Shape", ["x"], ["s2"]), _c("k2", np.array([2], np.int64)),
         _c("k3", np.array([3], np.int64)),
         helper.make_node("Slice", ["s2", "k2", "k3"], ["w"]),
         _c("five", np.array([5], np.int64)),
         helper.make_node("Equal", ["w", "five"], ["c2"]),
         helper.make_node("Squeeze", ["c2"], ["c2s"], axes=[0]),
         helper.make_node("If", ["c2s"], ["nested"], then_branch=inner_then,
                          else_branch=inner_else)],
        "then", [], [helper.make_tensor_value_info("x", F, None),
                     helper.make_tensor_value_info("nested", F, None)])
    else_g = helper.make_graph(
        [helper.make_node("Add", ["x", "bias"], ["xb"])], "else", [],
        [helper.make_tensor_value_info("bias", F, None), helper.make_tensor_value_info("xb", F, None)],
        [numpy_helper.from_array(np.full((1, 1, 1, 1), 0.25, np.float32), "bias")])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), _c("i0", np.array(0, np.int64)),
             helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
             _c("two", np.array(2, np.int64)),
             helper.make_node("Less", ["n", "two"], ["cond"]),
             helper.make_node("If", ["cond"], ["a", "b"], then_branch=then_g, else_branch=else_g,
                              name="outer_if"),
             helper.make_node("Add", ["a", "b"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["N", 2, 3, "W"])],
                          [helper.make_tensor_value_info("y", F, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], ir_version=8)
    sess = fastcnn.InferenceSession(model.SerializeToString(), num_threads=1)
    ref = ReferenceEvaluator(model)
    rng = np.random.default_rng(0)
    for shape in [(1, 2, 3, 5), (1, 2, 3, 4), (3, 2, 3, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        (want,) = ref.run(None, {"x": x})
        (got,) = sess.run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _if_model(cond_from_input=False, then_outputs=1, then_op="Relu"):
    then_g = helper.make_graph([helper.make_node(then_op, ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", F, None)] * then_outputs)
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", F, None)])
    ins = [helper.make_tensor_value_info("x", F, [1, 3])]
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g,
                              name="the_if")]
    inits = []
    if cond_from_input:
        ins.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(True), "c"))
    g = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info("y", F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_if_data_dependent_condition_is_refused_naming_the_node():
    sess_model = _if_model(cond_from_input=True).SerializeToString()
    with pytest.raises(UnsupportedOpError, match="the_if"):
        sess = fastcnn.InferenceSession(sess_model)
        sess.run(None, {"x": np.ones((1, 3), np.float32), "c": np.array(True)})


def test_if_bad_branches():
    with pytest.raises(InvalidGraphError, match="If node 'the_if'.*then_branch has 2 outputs"):
        fastcnn.InferenceSession(_if_model(then_outputs=2).SerializeToString())
    with pytest.raises(UnsupportedOpError, match="NoSuchOp"):
        fastcnn.InferenceSession(_if_model(then_op="NoSuchOp").SerializeToString())


def test_if_constant_condition_runs():
    sess = fastcnn.InferenceSession(_if_model().SerializeToString())
    x = np.array([[-1, 0, 2]], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x, 0))
