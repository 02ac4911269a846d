"""The importer's own table of op input/output counts agrees with onnx.defs."""
import onnx
import onnx.defs
import pytest

from fastcnn.ir import onnx_arity
from fastcnn.ir.onnx_import import _schema


def _onnx(op, opset):
    try:
        s = onnx.defs.get_schema(op, opset, "")
    except Exception:
        return None
    return (s.since_version, s.min_input, s.max_input, s.max_output)


def test_table_matches_onnx_defs():
    top = min(onnx_arity.OPSET, onnx.defs.onnx_opset_version())
    names = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx")}
    assert names <= set(onnx_arity.OPS) | {n for n in names if _onnx(n, top) is None}
    for op in sorted(set(onnx_arity.OPS) | names):
        for opset in range(1, top + 1):
            got = _schema(op, opset, "")
            got = None if got is None else (got.since_version, got.min_input, got.max_input,
                                             got.max_output)
            assert got == _onnx(op, opset), (op, opset)


def test_unknown_op_and_newer_opset_fall_back():
    assert _schema("NoSuchOp", 13, "") is None
    s = _schema("Conv", 11, "")
    assert (s.since_version, s.min_input, s.max_input) == (11, 2, 3)
    if onnx.defs.onnx_opset_version() > onnx_arity.OPSET:   # asked of onnx.defs
        assert _schema("Relu", onnx.defs.onnx_opset_version(), "") is not None


@pytest.mark.parametrize("inputs,msg", [(["x"], "has 1 inputs"), (["x", "w", "b", "z"], "has 4 inputs")])
def test_arity_errors_still_raised(inputs, msg):
    import numpy as np
    from onnx import TensorProto, helper
    import fastcnn
    g = helper.make_graph([helper.make_node("Conv", inputs, ["y"])], "g",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 3, 3])
                           for n in inputs],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(fastcnn.InvalidGraphError, match=msg):
        fastcnn.InferenceSession(m.SerializeToString())
