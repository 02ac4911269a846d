"""fold_pad: a zero constant Pad of the spatial axes (TF's SAME for stride 2, Keras
ZeroPadding2D) folds into the Conv's pads, also through a Transpose (NHWC input).  Equal
outputs at every level and against onnxruntime, plus the structure (the Pad is gone, the
Conv's pads are the sums) -- and the Pads that must stay, stay."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import fastcnn

from conftest import F, make_model

RNG = np.random.default_rng(1)


def w(*shape):
    return (RNG.standard_normal(shape) * 0.3).astype(np.float32)


def check(model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    for lv in ("none", "basic", "all"):
        for nt in (1, 2):
            got = fastcnn.InferenceSession(model, graph_optimization_level=lv,
                                           num_threads=nt).run(None, feeds)
            for g, r in zip(got, want):
                assert g.shape == r.shape
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=lv)


def plan(model, level="basic"):
    return fastcnn.InferenceSession(model, graph_optimization_level=level).optimized_graph().nodes


def pad_node(opset, pads, value=None, axes=None, mode=None):
    """A Pad node (attribute form before opset 11) and its initializers."""
    extra = {} if mode is None else {"mode": mode}
    if opset < 11:
        if value is not None:
            extra["value"] = float(value)
        return helper.make_node("Pad", ["x"], ["p"], pads=pads, **extra), {}
    inits = {"pads": np.array(pads, np.int64)}
    ins = ["x", "pads"]
    if value is not None or axes is not None:
        ins.append("cv" if value is not None else "")
        if value is not None:
            inits["cv"] = np.array(value, np.float32)
    if axes is not None:
        ins.append("axes")
        inits["axes"] = np.array(axes, np.int64)
    return helper.make_node("Pad", ins, ["p"], **extra), inits


@pytest.mark.parametrize("opset", [10, 13, 18])
def test_spatial_zero_pad_folds(opset):
    """Pad (0,1 on H and W) -> Conv 3x3 s2 with pads (1,0,0,1): pads (1,0,1,2)."""
    pad, inits = pad_node(opset, [0, 0, 0, 0, 0, 0, 1, 1] if opset < 18 else [0, 0, 1, 1],
                          axes=None if opset < 18 else [2, -1])
    conv = helper.make_node("Conv", ["p", "w", "b"], ["y"], strides=[2, 2], pads=[1, 0, 0, 1])
    m = make_model([pad, conv], [("x", F, [1, 3, 8, 9])], [("y", F, None)],
                   {**inits, "w": w(4, 3, 3, 3), "b": w(4)}, opset=opset)
    check(m, {"x": w(1, 3, 8, 9)})
    g = plan(m)
    assert [n.op_type for n in g] == ["Conv"]
    assert g[0].attrs["pads"] == [1, 0, 1, 2] and g[0].inputs[0] == "x"


def test_pad_through_transpose_nhwc_input_and_valid_conv():
    """tf2onnx's NHWC input: Pad(x NHWC) -> Transpose(0,3,1,2) -> Conv(auto_pad=VALID)."""
    pad, inits = pad_node(13, [0, 1, 2, 0, 0, 3, 0, 0], value=0.0)
    nodes = [pad, helper.make_node("Transpose", ["p"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "w"], ["y"], auto_pad="VALID", strides=[2, 1])]
    m = make_model(nodes, [("x", F, [2, 7, 6, 3])], [("y", F, None)],
                   {**inits, "w": w(5, 3, 3, 2)})
    check(m, {"x": w(2, 7, 6, 3)})
    g = plan(m)
    assert [n.op_type for n in g] == ["Transpose", "Conv"]
    assert g[0].inputs == ["x"] and g[1].attrs["pads"] == [1, 2, 3, 0]
    assert "auto_pad" not in g[1].attrs


@pytest.mark.parametrize("shape,pads,wshape", [
    ([1, 2, 10], [0, 0, 2, 0, 0, 1], (3, 2, 3)),
    ([1, 2, 4, 5, 6], [0, 0, 1, 0, 2, 0, 0, 1, 1, 0], (3, 2, 2, 3, 3))], ids=["1d", "3d"])
def test_other_ranks(shape, pads, wshape):
    pad, inits = pad_node(13, pads)
    conv = helper.make_node("Conv", ["p", "w"], ["y"])
    m = make_model([pad, conv], [("x", F, shape)], [("y", F, None)], {**inits, "w": w(*wshape)})
    check(m, {"x": w(*shape)})
    assert [n.op_type for n in plan(m)] == ["Conv"]


def _kept(opset=13, pads=(0, 0, 1, 1, 0, 0, 1, 1), value=None, mode=None, conv_attrs=None,
          extra_out=False, shared=False, cin=3):
    pad, inits = pad_node(opset, list(pads), value=value, mode=mode)
    nodes = [pad, helper.make_node("Conv", ["p", "w"], ["y"], **(conv_attrs or {}))]
    outs = [("y", F, None)] + ([("p", F, None)] if extra_out else [])
    if shared:
        nodes.append(helper.make_node("Relu", ["p"], ["r"]))
        outs.append(("r", F, None))
    return make_model(nodes, [("x", F, [1, 3, 6, 7])], outs, {**inits, "w": w(4, cin, 3, 3)},
                      opset=opset)


@pytest.mark.parametrize("kw", [
    dict(value=0.5), dict(mode="reflect"), dict(mode="edge"),
    dict(pads=(0, 1, 1, 1, 0, 0, 1, 1), cin=4),         # channels
    dict(pads=(0, 0, -1, 1, 0, 0, 1, 1)),               # a crop
    dict(conv_attrs={"auto_pad": "SAME_UPPER"}),
    dict(extra_out=True), dict(shared=True), dict(opset=10, value=1.0)],
    ids=["value", "reflect", "edge", "channel", "crop", "same_upper", "graph_output",
         "second_reader", "attr_value"])
def test_pads_that_stay(kw):
    m = _kept(**kw)
    check(m, {"x": w(1, 3, 6, 7)})
    assert "Pad" in [n.op_type for n in plan(m)]
