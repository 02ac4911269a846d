"""Exporter idioms in one graph: TF's NHWC Transposes, PRelu, HardSigmoid gating, Split,
Resize with sizes computed from Shape, ReduceMean as the global pool, and the
Shape -> Gather -> Concat -> Reshape flatten of a symbolic batch."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper, numpy_helper as nh

import fastcnn


def exporter_idioms_model():
    rng = np.random.default_rng(0)
    inits=[]
    def init(name, arr):
        t=nh.from_array(np.asarray(arr), name); inits.append(t); return name
    init("w1", (rng.standard_normal((32,3,3,3))*0.2).astype(np.float32))
    init("w2", (rng.standard_normal((32,1,3,3))*0.2).astype(np.float32))
    init("slope", (rng.standard_normal((32,1,1))*0.2).astype(np.float32))
    init("split", np.array([16,16],np.int64))
    init("w3", (rng.standard_normal((16,16,1,1))*0.2).astype(np.float32))
    init("axes0", np.array([0],np.int64))
    init("minus1", np.array([-1],np.int64))
    init("fc", (rng.standard_normal((32,10))*0.2).astype(np.float32))
    init("two", np.array([1,1,2,2],np.int64))
    nodes=[
     helper.make_node("Transpose",["x"],["xt"],perm=[0,3,1,2]),
     helper.make_node("Conv",["xt","w1"],["c1"],pads=[1,1,1,1],strides=[2,2]),
     helper.make_node("PRelu",["c1","slope"],["p1"]),
     helper.make_node("Conv",["p1","w2"],["c2"],pads=[1,1,1,1],group=32),
     helper.make_node("HardSigmoid",["c2"],["h2"],alpha=0.2,beta=0.5),
     helper.make_node("Mul",["c2","h2"],["m2"]),
     helper.make_node("Split",["m2","split"],["s1","s2"],axis=1),
     helper.make_node("Conv",["s1","w3"],["c3"]),
     helper.make_node("Concat",["c3","s2"],["cat"],axis=1),
     helper.make_node("Shape",["cat"],["cshape"]),
     helper.make_node("Mul",["cshape","two"],["sizes"]),
     helper.make_node("Resize",["cat","","","sizes"],["up"],mode="nearest"),
     helper.make_node("Transpose",["up"],["upt"],perm=[0,2,3,1]),
     helper.make_node("ReduceMean",["upt"],["gap"],axes=[1,2],keepdims=0),
     helper.make_node("Shape",["gap"],["shp"]),
     helper.make_node("Gather",["shp","axes0"],["n"],axis=0),
     helper.make_node("Concat",["n","minus1"],["newshape"],axis=0),
     helper.make_node("Reshape",["gap","newshape"],["flat"]),
     helper.make_node("MatMul",["flat","fc"],["y"]),
    ]
    g=helper.make_graph(nodes,"tfnet",[helper.make_tensor_value_info("x",T.FLOAT,["N",32,32,3])],[helper.make_tensor_value_info("y",T.FLOAT,["N",10])],inits)
    m=helper.make_model(g,opset_imports=[helper.make_opsetid("",13)]); m.ir_version=8
    onnx.checker.check_model(m)
    return m


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("nt", [1, 2])
def test_exporter_idioms(batch, nt):
    m = exporter_idioms_model()
    x = np.random.default_rng(batch).standard_normal((batch, 32, 32, 3)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    got = fastcnn.InferenceSession(m, num_threads=nt).run(None, {"x": x})[0]
    assert got.shape == (batch, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
