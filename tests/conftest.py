import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper


def make_model(nodes, inputs, outputs, initializers=(), opset=13, extra_opsets=()):
    """One-liner ONNX models: inputs/outputs as (name, elem_type, shape)."""
    vi = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    vo = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    inits = [onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()]
    g = helper.make_graph(nodes, "g", vi, vo, inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    return helper.make_model(g, opset_imports=ops, ir_version=8)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


F = TensorProto.FLOAT
I64 = TensorProto.INT64
