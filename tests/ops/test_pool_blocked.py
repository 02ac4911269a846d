"""MaxPool / AveragePool / LpPool on channel-blocked values (between convolutions):
the planner keeps them blocked, and the results match the references."""
import collections

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import fastcnn
import fastcnn.reference as R
from fastcnn.runtime.layout import BLOCK

from conftest import F, make_model

pytestmark = pytest.mark.skipif(not BLOCK, reason="blocked kernels not built")

# op, extra attributes, opset
VARIANTS = [
    ("MaxPool", {}, 12),
    ("AveragePool", {"count_include_pad": 0}, 19),
    ("AveragePool", {"count_include_pad": 1}, 19),
    ("LpPool", {"p": 1}, 18),
    ("LpPool", {"p": 2}, 18),
    ("LpPool", {"p": 3}, 18),
]
WINDOWS = [
    # spatial, window attributes
    ((11, 12), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((10, 9), dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
    ((9, 10), dict(kernel_shape=[3, 2], strides=[2, 3], pads=[1, 0, 2, 1], ceil_mode=1)),
    ((9, 9), dict(kernel_shape=[3, 3], strides=[1, 2], pads=[1, 1, 0, 0], dilations=[2, 1],
                  ceil_mode=1)),
    ((8, 7), dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ((8, 7), dict(kernel_shape=[3, 2], strides=[2, 1], auto_pad="SAME_LOWER")),
    ((13,), dict(kernel_shape=[4], strides=[3], pads=[1, 2], dilations=[2], ceil_mode=1)),
    ((20,), dict(kernel_shape=[5], strides=[1], auto_pad="VALID")),
    ((4, 6, 7), dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2])),
    ((5, 6, 7), dict(kernel_shape=[2, 2, 3], strides=[2, 1, 2], pads=[0, 1, 1, 1, 0, 1],
                     ceil_mode=1)),
]


def conv_pool_conv(op, attrs, opset, spatial, c):
    """x -> Conv 1x1 (c channels, blocked) -> pool -> P (graph output) and -> Conv -> Y."""
    rng = np.random.default_rng(7)
    nd = len(spatial)
    w0 = (rng.standard_normal((c, 6) + (1,) * nd) * 0.5).astype(np.float32)
    w1 = (rng.standard_normal((5, c) + (1,) * nd) * 0.5).astype(np.float32)
    if op == "AveragePool" and "dilations" in attrs:
        opset = max(opset, 19)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]),
             helper.make_node(op, ["a"], ["P"], name="pool0", **attrs),
             helper.make_node("Conv", ["P", "w1"], ["Y"])]
    m = make_model(nodes, [("x", F, [2, 6, *spatial])], [("P", F, None), ("Y", F, None)],
                   {"w0": w0, "w1": w1}, opset=opset)
    conv = make_model(nodes[:1], [("x", F, [2, 6, *spatial])], [("a", F, None)], {"w0": w0},
                      opset=opset)
    return m, conv, w1


def _pads(spatial, attrs):
    n = len(spatial)
    k, s = attrs["kernel_shape"], attrs.get("strides", [1] * n)
    ap = attrs.get("auto_pad", "NOTSET")
    if ap == "NOTSET":
        return attrs.get("pads", [0] * 2 * n)
    if ap == "VALID":
        return [0] * 2 * n
    out = [-(-spatial[i] // s[i]) for i in range(n)]
    tot = [max(0, (out[i] - 1) * s[i] + k[i] - spatial[i]) for i in range(n)]
    small, big = [t // 2 for t in tot], [t - t // 2 for t in tot]
    return small + big if ap == "SAME_UPPER" else big + small


def expected(op, attrs, spatial, a):
    k, s = attrs["kernel_shape"], attrs.get("strides")
    pads, dil, ceil = _pads(spatial, attrs), attrs.get("dilations"), attrs.get("ceil_mode", 0)
    if op == "MaxPool":
        return R.max_pool(a, k, s, pads, dil, ceil)
    if op == "LpPool":
        return R.lp_pool(a, k, s, pads, dil, ceil, attrs["p"])
    return R.average_pool(a, k, s, pads, dil, ceil, attrs["count_include_pad"])


@pytest.mark.parametrize("spatial,window", WINDOWS)
@pytest.mark.parametrize("op,extra,opset", VARIANTS)
def test_pool_between_convs_stays_blocked(spatial, window, op, extra, opset):
    attrs = dict(window, **extra)
    c = 13 if len(spatial) != 2 else 16      # a partial last block, and whole blocks
    m, conv, w1 = conv_pool_conv(op, attrs, opset, spatial, c)
    x = np.random.default_rng(1).standard_normal((2, 6, *spatial)).astype(np.float32)
    (a,) = ReferenceEvaluator(conv).run(None, {"x": x})
    want = expected(op, attrs, spatial, a)
    results = []
    for nt in (1, 2):
        sess = fastcnn.InferenceSession(m, num_threads=nt)
        p, y = sess.run(None, {"x": x})
        np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-5)
        # the pooled padding lanes feed the next conv: they must be finite (they are 0)
        np.testing.assert_allclose(y, np.einsum("mc,nc...->nm...", w1.reshape(5, c), want),
                                   rtol=1e-4, atol=1e-4)
        results.append((p, y))
        plan = next(iter(sess._plans.values()))
        steps = [st.node.op_type for st in plan.steps]
        k = steps.index(op)
        pool = plan.steps[k]
        assert pool.inputs == ["a"] and pool.op.blocked, steps   # the conv's blocked output
        assert plan.infos[pool.outputs[0]].layout == BLOCK
        # reorders only at the edges: x in, P and Y out
        assert collections.Counter(steps)["Reorder"] == 3, steps
    for (p1, y1), (p2, y2) in zip(results, results[1:]):
        np.testing.assert_array_equal(p1, p2)                        # threads: same bits
    # the whole model against the ONNX reference where its pools follow the spec (its Lp
    # is avg·k^(1/p) over real taps; with ceil_mode it shifts windows past the pads; its
    # MaxPool pads SAME_LOWER like SAME_UPPER, where onnxruntime agrees with us)
    if op != "LpPool" and not window.get("ceil_mode") and \
            not (op == "MaxPool" and window.get("auto_pad") == "SAME_LOWER"):
        ref_p, ref_y = ReferenceEvaluator(m).run(None, {"x": x})
        np.testing.assert_allclose(results[0][0], ref_p, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(results[0][1], ref_y, rtol=1e-4, atol=1e-4)


def test_maxpool_with_indices_stays_plain():
    spatial, c = (9, 9), 16
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((c, 6, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["P", "I"], kernel_shape=[3, 3], strides=[2, 2])]
    m = make_model(nodes, [("x", F, [1, 6, *spatial])], [("P", F, None), ("I", 7, None)],
                   {"w0": w0}, opset=12)
    x = rng.standard_normal((1, 6, *spatial)).astype(np.float32)
    sess = fastcnn.InferenceSession(m)
    p, i = sess.run(None, {"x": x})
    rp, ri = ReferenceEvaluator(m).run(None, {"x": x})
    np.testing.assert_allclose(p, rp, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(i, ri)
    plan = next(iter(sess._plans.values()))
    pool = next(st for st in plan.steps if st.node.op_type == "MaxPool")
    assert not pool.op.blocked and plan.infos[pool.inputs[0]].layout == 0


@pytest.mark.parametrize("name", ["resnet18", "inception_kx1", "c3d_small"])
def test_zoo_models_have_no_reorders_around_pools(name):
    from fastcnn import zoo
    from fastcnn.benchmark import resolve_shapes
    m = zoo.get(name)
    shapes = {k: tuple(v) for k, v in resolve_shapes(m, 1).items()}
    sess = fastcnn.InferenceSession(m, num_threads=1)
    plan = sess._plan(shapes)
    pools = [st for st in plan.steps if st.node.op_type in ("MaxPool", "AveragePool")]
    assert pools
    for st in pools:
        assert st.op.blocked and plan.infos[st.inputs[0]].layout == BLOCK
        assert plan.infos[st.outputs[0]].layout == BLOCK
    # the only reorder left is the one before the classifier head / graph output
    assert [st.node.op_type for st in plan.steps].count("Reorder") == 1
