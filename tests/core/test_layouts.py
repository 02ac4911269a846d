"""Channel-blocked layout propagation: correct values, and reorders only at the edges."""
import collections

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import fastcnn
from fastcnn.runtime.layout import BLOCK

from conftest import F, make_model

pytestmark = pytest.mark.skipif(not BLOCK, reason="blocked kernels not built")
RNG = np.random.default_rng(1)


def w(*shape):
    return (RNG.standard_normal(shape) * 0.3).astype(np.float32)


def check(model, x, max_reorders, nt=1):
    sess = fastcnn.InferenceSession(model, num_threads=nt)
    got = sess.run(None, {"x": x})
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    plan = next(iter(sess._plans.values()))
    ops = collections.Counter(st.node.op_type for st in plan.steps)
    assert ops["Reorder"] <= max_reorders, ops
    return ops


@pytest.mark.parametrize("nt", [1, 2])
def test_se_block_stays_blocked(nt):
    # conv -> hardswish ; GAP -> 1x1 -> relu -> 1x1 -> hardsigmoid ; mul ; add const ; GAP
    inits = {"w0": w(20, 3, 3, 3), "w1": w(6, 20, 1, 1), "w2": w(20, 6, 1, 1),
             "c": w(1, 20, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("HardSwish", ["a"], ["h"]),
             helper.make_node("GlobalAveragePool", ["h"], ["p"]),
             helper.make_node("Conv", ["p", "w1"], ["q"]),
             helper.make_node("Relu", ["q"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["s"]),
             helper.make_node("HardSigmoid", ["s"], ["g"], alpha=1 / 6),
             helper.make_node("Mul", ["h", "g"], ["m"]),
             helper.make_node("Sub", ["m", "c"], ["z"]),
             helper.make_node("GlobalMaxPool", ["z"], ["y"])]
    m = make_model(nodes, [("x", F, [2, 3, 9, 9])], [("y", F, None)], inits, opset=14)
    ops = check(m, RNG.standard_normal((2, 3, 9, 9)).astype(np.float32), 1, nt)
    assert ops["Mul"] == 1 and ops["Sub"] == 1     # ran on blocked buffers
    sess = fastcnn.InferenceSession(m, num_threads=nt)
    sess.run(None, {"x": RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)})
    mul = next(st.op for st in next(iter(sess._plans.values())).steps if st.node.op_type == "Mul")
    assert mul._kargs is not None      # the SE scale runs in the native kernel, not numpy


def test_concat_of_blocked_branches():
    inits = {"w0": w(16, 8, 3, 3), "w1": w(8, 8, 1, 1), "w2": w(12, 24, 3, 3)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w1"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
             helper.make_node("Conv", ["c", "w2"], ["y"], pads=[1, 1, 1, 1])]
    m = make_model(nodes, [("x", F, [1, 8, 6, 6])], [("y", F, None)], inits)
    ops = check(m, RNG.standard_normal((1, 8, 6, 6)).astype(np.float32), 2)
    assert ops["Concat"] == 1


def test_concat_with_partial_block_falls_back_to_plain():
    inits = {"w0": w(5, 8, 3, 3), "w1": w(8, 8, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w1"], ["b"]),
             helper.make_node("Concat", ["a", "b"], ["y"], axis=1)]
    m = make_model(nodes, [("x", F, [1, 8, 6, 6])], [("y", F, None)], inits)
    check(m, RNG.standard_normal((1, 8, 6, 6)).astype(np.float32), 3)


def test_div_is_not_run_blocked():
    # padding lanes are zero: x / y on blocked buffers would make NaNs there
    inits = {"w0": w(5, 3, 1, 1), "w1": w(5, 3, 1, 1), "w2": w(4, 5, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]),
             helper.make_node("Conv", ["x", "w1"], ["b"]),
             helper.make_node("Div", ["a", "b"], ["d"]),
             helper.make_node("Conv", ["d", "w2"], ["y"])]
    m = make_model(nodes, [("x", F, [1, 3, 4, 4])], [("y", F, None)], inits)
    x = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
    (y,) = fastcnn.InferenceSession(m).run(None, {"x": x})
    assert np.isfinite(y).all()
    check(m, x, 4)


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pools_of_blocked_conv_output(pool):
    # 20 channels: the last channel block has 4 padding lanes
    inits = {"w0": w(20, 3, 3, 3)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node(pool, ["a"], ["y"])]
    m = make_model(nodes, [("x", F, [2, 3, 11, 13])], [("y", F, None)], inits, opset=14)
    check(m, RNG.standard_normal((2, 3, 11, 13)).astype(np.float32), 1)


def test_upsampling_head_reorders_its_small_input():
    """... -> Conv -> Resize x4 as the graph output: the reorder to plain runs on the 32x32
    conv output, not on the 128x128 upsampled one; a Resize that feeds a conv stays blocked."""
    inits = {"w0": w(16, 3, 3, 3), "w1": w(8, 16, 3, 3), "sc": np.array([1, 1, 4, 4], np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["a", "", "sc"], ["u"], mode="linear"),
             helper.make_node("Conv", ["u", "w1"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "sc"], ["y"], mode="linear")]
    m = make_model(nodes, [("x", F, [1, 3, 8, 8])], [("y", F, None)], inits, opset=13)
    check(m, RNG.standard_normal((1, 3, 8, 8)).astype(np.float32), 2)
    sess = fastcnn.InferenceSession(m)
    sess.run(None, {"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)})
    steps = next(iter(sess._plans.values())).steps
    reorders = [st.out_infos[0].shape for st in steps if st.node.op_type == "Reorder"]
    assert reorders == [(1, 8, 32, 32)], reorders   # (the stem conv reads plain x directly)


@pytest.mark.parametrize("nt", [1, 2])
def test_unfoldable_batchnorm_runs_blocked(nt):
    """DenseNet's Concat -> BN -> Relu: the BN cannot fold into a conv; it runs as a
    per-lane affine on the blocked buffer."""
    inits = {"w1": w(16, 8, 3, 3), "w2": w(8, 8, 1, 1), "w3": w(16, 24, 3, 3),
             "g": w(24), "b": w(24), "m": w(24),
             "v": (RNG.random(24) + 0.5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w2"], ["b2"]),
             helper.make_node("Concat", ["a", "b2"], ["c"], axis=1),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["r"]),
             helper.make_node("Conv", ["r", "w3"], ["y"], pads=[1, 1, 1, 1])]
    m = make_model(nodes, [("x", F, [2, 8, 10, 10])], [("y", F, None)], inits, opset=13)
    ops = check(m, RNG.standard_normal((2, 8, 10, 10)).astype(np.float32), 2, nt)
    assert ops["BatchNormalization"] == 1


@pytest.mark.parametrize("nt", [1, 2])
def test_batchnorm_of_partial_channel_block(nt):
    """A BN on a blocked 20-channel conv output (after a residual Add, so it cannot fold):
    the padding lanes get scale 0 and shift 0 and stay 0."""
    inits = {"w1": w(20, 3, 3, 3), "w2": w(20, 20, 3, 3), "w3": w(8, 20, 1, 1),
             "g": w(20), "b": w(20), "m": w(20), "v": (RNG.random(20) + 0.5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w2"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["a", "c"], ["s"]),
             helper.make_node("BatchNormalization", ["s", "g", "b", "m", "v"], ["bn"]),
             helper.make_node("Conv", ["bn", "w3"], ["y"])]
    m = make_model(nodes, [("x", F, [1, 3, 9, 9])], [("y", F, None)], inits, opset=13)
    ops = check(m, RNG.standard_normal((1, 3, 9, 9)).astype(np.float32), 1, nt)
    assert ops["BatchNormalization"] == 1
