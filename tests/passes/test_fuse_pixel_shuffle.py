"""fuse_pixel_shuffle: PyTorch's Reshape → Transpose → Reshape exports of PixelShuffle /
PixelUnshuffle (and the DCR function bodies) become one DepthToSpace/SpaceToDepth node,
with equal outputs before ("none") and after ("all") the passes."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import fastcnn
from fastcnn.errors import InvalidGraphError

F = TensorProto.FLOAT


def pattern_model(x_shape, t1, perm, t2, opset=13, extra_reader=False, out_shape=None):
    """x → Reshape(t1) → Transpose(perm) → Reshape(t2) → Relu, as torch.onnx writes it."""
    nodes = [
        helper.make_node("Constant", [], ["s1"], name="c1",
                         value=numpy_helper.from_array(np.array(t1, np.int64))),
        helper.make_node("Reshape", ["x", "s1"], ["r1"], name="reshape1"),
        helper.make_node("Transpose", ["r1"], ["tr"], name="transpose", perm=list(perm)),
        helper.make_node("Reshape", ["tr", "s2"], ["r2"], name="reshape2"),
        helper.make_node("Relu", ["r2"], ["y"], name="relu"),
    ]
    outs = [helper.make_tensor_value_info("y", F, out_shape)]
    if extra_reader:
        nodes.append(helper.make_node("Neg", ["tr"], ["z"], name="neg"))
        outs.append(helper.make_tensor_value_info("z", F, None))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, list(x_shape))],
                          outs, [numpy_helper.from_array(np.array(t2, np.int64), "s2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def torch_shuffle(x, r):
    N, C, H, W = x.shape
    c = C // (r * r)
    return x.reshape(N, c, r, r, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(N, c, H * r, W * r)


def torch_unshuffle(x, r):
    N, C, H, W = x.shape
    return x.reshape(N, C, H // r, r, W // r, r).transpose(0, 1, 3, 5, 2, 4) \
        .reshape(N, C * r * r, H // r, W // r)


def run_both(model, x, n_threads=1):
    feeds = {"x": x}
    plain = fastcnn.InferenceSession(model, num_threads=n_threads,
                                     graph_optimization_level="none")
    fused = fastcnn.InferenceSession(model, num_threads=n_threads, graph_optimization_level="all")
    return plain, fused, plain.run(None, feeds), fused.run(None, feeds)


def ops(sess):
    return [n.op_type for n in sess.optimized_graph().nodes]


CASES = {
    # name: (x shape, t1, perm, t2, fused op, mode, numpy oracle)
    "shuffle_r2": ((1, 16, 5, 7), [1, 4, 2, 2, 5, 7], (0, 1, 4, 2, 5, 3), [1, 4, 10, 14],
                   "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 2)),
    "shuffle_r3_lead0": ((2, 27, 4, 6), [0, 3, 3, 3, 4, 6], (0, 1, 4, 2, 5, 3), [0, 3, 12, 18],
                         "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 3)),
    "shuffle_r2_lead_m1": ((3, 8, 6, 5), [-1, 2, 2, 2, 6, 5], (0, 1, 4, 2, 5, 3),
                           [-1, 2, 12, 10], "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 2)),
    "shuffle_r4": ((1, 32, 3, 3), [1, 2, 4, 4, 3, 3], (0, 1, 4, 2, 5, 3), [1, 2, 12, 12],
                   "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 4)),
    "unshuffle_r2": ((1, 3, 8, 10), [1, 3, 4, 2, 5, 2], (0, 1, 3, 5, 2, 4), [1, 12, 4, 5],
                     "SpaceToDepth", "CRD", lambda x: torch_unshuffle(x, 2)),
    "unshuffle_r3_lead0": ((2, 4, 9, 6), [0, 4, 3, 3, 2, 3], (0, 1, 3, 5, 2, 4),
                           [0, 36, 3, 2], "SpaceToDepth", "CRD", lambda x: torch_unshuffle(x, 3)),
    "d2s_dcr": ((2, 12, 3, 4), [2, 2, 2, 3, 3, 4], (0, 3, 4, 1, 5, 2), [2, 3, 6, 8],
                "DepthToSpace", "DCR", None),
    "s2d_dcr": ((2, 3, 6, 4), [2, 3, 3, 2, 2, 2], (0, 3, 5, 1, 2, 4), [2, 12, 3, 2],
                "SpaceToDepth", "DCR", None),
    "shuffle_flat_out": ((1, 8, 4, 4), [1, 2, 2, 2, 4, 4], (0, 1, 4, 2, 5, 3), [1, -1],
                         "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 2).reshape(1, -1)),
    "shuffle_big": ((1, 256, 64, 64), [1, 64, 2, 2, 64, 64], (0, 1, 4, 2, 5, 3),
                    [1, 64, 128, 128], "DepthToSpace", "CRD", lambda x: torch_shuffle(x, 2)),
}


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("name", list(CASES))
def test_fuse_pixel_shuffle(name, n_threads):
    shape, t1, perm, t2, op_type, mode, oracle = CASES[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    plain, fused, a, b = run_both(pattern_model(shape, t1, perm, t2), x, n_threads)
    assert ops(plain) == ["Reshape", "Transpose", "Reshape", "Relu"]
    assert ops(fused) == [op_type, "Relu"]                     # 3 nodes became 1
    node = fused.optimized_graph().nodes[0]
    assert node.attrs["fastcnn_mode"] == mode
    np.testing.assert_array_equal(a[0], b[0])
    if oracle is not None:
        np.testing.assert_array_equal(b[0], np.maximum(oracle(x), 0))


def test_fused_reshape_of_a_flat_input():
    """The first Reshape may see any shape with the right element count."""
    x = np.random.default_rng(1).standard_normal((1, 16 * 5 * 7)).astype(np.float32)
    m = pattern_model(x.shape, [1, 4, 2, 2, 5, 7], (0, 1, 4, 2, 5, 3), [1, 4, 10, 14])
    plain, fused, a, b = run_both(m, x)
    assert ops(fused) == ["DepthToSpace", "Relu"]
    np.testing.assert_array_equal(a[0], b[0])


def test_no_fusion_when_intermediate_is_read_elsewhere():
    m = pattern_model((1, 8, 3, 3), [1, 2, 2, 2, 3, 3], (0, 1, 4, 2, 5, 3), [1, 2, 6, 6],
                      extra_reader=True)
    x = np.random.default_rng(2).standard_normal((1, 8, 3, 3)).astype(np.float32)
    plain, fused, a, b = run_both(m, x)
    assert "DepthToSpace" not in ops(fused)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("perm,t1,n", [((0, 1, 4, 2, 5, 3), [1, 2, 2, 3, 3, 3], 108),  # r dims differ
                                       ((0, 1, 2, 4, 5, 3), [1, 2, 2, 2, 3, 3], 72),   # other perm
                                       ((0, 1, 4, 2, 5, 3), [1, 2, -1, 2, 3, 3], 72)])  # r unknown
def test_no_fusion_for_other_patterns(perm, t1, n):
    m = pattern_model((1, n), t1, perm, [1, -1])
    x = np.random.default_rng(3).standard_normal((1, n)).astype(np.float32)
    plain, fused, a, b = run_both(m, x)
    assert "Transpose" in ops(fused)
    np.testing.assert_array_equal(a[0], b[0])


def test_fused_node_checks_the_input_at_plan_time():
    """The element count of a wrong input can't be viewed as the pattern assumes."""
    m = pattern_model((1, 16, 5, 7), [1, 4, 2, 2, 5, 7], (0, 1, 4, 2, 5, 3), [1, 4, 10, 14])
    m.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "w"
    sess = fastcnn.InferenceSession(m, graph_optimization_level="all")
    assert ops(sess)[0] == "DepthToSpace"
    with pytest.raises(InvalidGraphError, match="DepthToSpace node"):
        sess.run(None, {"x": np.zeros((1, 16, 5, 8), np.float32)})
    # the unfused graph fails on the same input too (Reshape)
    with pytest.raises(InvalidGraphError):
        fastcnn.InferenceSession(m, graph_optimization_level="none").run(
            None, {"x": np.zeros((1, 16, 5, 8), np.float32)})


def test_pipeline_entry():
    from fastcnn.passes import DEFAULT_PIPELINE
    names = [n for n, _, _ in DEFAULT_PIPELINE]
    assert names.index("fuse_pixel_shuffle") < names.index("fuse_residual")
