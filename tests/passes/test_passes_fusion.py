"""Each pass: equal outputs with and without it, plus a structural assertion."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import fastcnn
from fastcnn.ir.onnx_import import import_model
from fastcnn.ops.conv import Conv
from fastcnn.passes import fold_affine, fold_batchnorm, fuse_activation, fuse_residual

from conftest import F, make_model

RNG = np.random.default_rng(0)


def w(*shape):
    return (RNG.standard_normal(shape) * 0.3).astype(np.float32)


def bn_params(prefix, c):
    return {f"{prefix}.g": (RNG.random(c) + 0.5).astype(np.float32),
            f"{prefix}.b": w(c), f"{prefix}.m": w(c),
            f"{prefix}.v": (RNG.random(c) + 0.1).astype(np.float32)}


def bn(prefix, x, y):
    return helper.make_node("BatchNormalization", [x, f"{prefix}.g", f"{prefix}.b",
                                                   f"{prefix}.m", f"{prefix}.v"], [y],
                            name=prefix, epsilon=1e-3)


def compare(model, feeds, levels=("none", "basic", "all"), rtol=1e-4, atol=1e-5):
    outs = [fastcnn.InferenceSession(model, graph_optimization_level=lv).run(None, feeds)
            for lv in levels]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(model.SerializeToString(), so).run(None, feeds)
    for o in outs:
        for a, b in zip(o, ref):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def optimized_ops(model, level="all"):
    return [n.op_type for n in
            fastcnn.InferenceSession(model, graph_optimization_level=level).optimized_graph().nodes]


def test_bn_folds_into_conv_with_and_without_bias():
    for with_bias in (True, False):
        inits = {"w": w(8, 3, 3, 3), **bn_params("bn", 8)}
        ins = ["x", "w"] + (["b"] if with_bias else [])
        if with_bias:
            inits["b"] = w(8)
        nodes = [helper.make_node("Conv", ins, ["c"], name="conv", pads=[1, 1, 1, 1]),
                 bn("bn", "c", "y")]
        m = make_model(nodes, [("x", F, [1, 3, 9, 9])], [("y", F, None)], inits)
        assert optimized_ops(m, "basic") == ["Conv"]
        compare(m, {"x": w(1, 3, 9, 9)})


def test_bn_folds_through_identity_into_grouped_conv_transpose_and_gemm():
    inits = {"w": w(4, 3, 3, 3), **bn_params("bn", 6)}
    nodes = [helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="ct", group=2,
                              strides=[2, 2]),
             helper.make_node("Identity", ["c"], ["i"], name="id"),
             bn("bn", "i", "y")]
    m = make_model(nodes, [("x", F, [1, 4, 5, 5])], [("y", F, None)], inits)
    assert optimized_ops(m, "basic") == ["ConvTranspose"]
    compare(m, {"x": w(1, 4, 5, 5)})
    inits = {"w": w(5, 7), "c": w(7), **bn_params("bn", 7)}
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"], name="gemm", beta=0.5),
             bn("bn", "g", "y")]
    m = make_model(nodes, [("x", F, [3, 5])], [("y", F, None)], inits)
    assert optimized_ops(m, "basic") == ["Gemm"]
    compare(m, {"x": w(3, 5)})


def test_bn_not_folded_when_conv_output_is_shared():
    inits = {"w": w(4, 3, 1, 1), **bn_params("bn", 4)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             bn("bn", "c", "b1"),
             helper.make_node("Add", ["b1", "c"], ["y"], name="add")]
    m = make_model(nodes, [("x", F, [1, 3, 4, 4])], [("y", F, None)], inits)
    g = import_model(m)
    assert not fold_batchnorm.run(g)
    compare(m, {"x": w(1, 3, 4, 4)})


def test_per_channel_mul_add_fold():
    inits = {"w": w(6, 3, 3, 3), "s": w(1, 6, 1, 1), "t": w(6, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Mul", ["c", "s"], ["m"], name="mul"),
             helper.make_node("Add", ["t", "m"], ["y"], name="add")]
    m = make_model(nodes, [("x", F, [2, 3, 6, 6])], [("y", F, None)], inits)
    g = import_model(m)
    assert fold_affine.run(g) and [n.op_type for n in g.nodes] == ["Conv"]
    compare(m, {"x": w(2, 3, 6, 6)})


def test_spatially_varying_constant_is_not_folded():
    inits = {"w": w(6, 3, 3, 3), "s": w(1, 6, 4, 4)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Mul", ["c", "s"], ["y"], name="mul")]
    m = make_model(nodes, [("x", F, [1, 3, 6, 6])], [("y", F, None)], inits)
    assert not fold_affine.run(import_model(m))
    compare(m, {"x": w(1, 3, 6, 6)})


def resnet_block():
    inits = {"w1": w(8, 8, 3, 3), "w2": w(8, 8, 3, 3), **bn_params("bn1", 8), **bn_params("bn2", 8)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             bn("bn1", "c1", "b1"),
             helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             bn("bn2", "c2", "b2"),
             helper.make_node("Add", ["b2", "x"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu2")]
    return make_model(nodes, [("x", F, [1, 8, 10, 10])], [("y", F, None)], inits)


def test_resnet_block_fuses_to_two_convs():
    m = resnet_block()
    g = fastcnn.InferenceSession(m).optimized_graph()
    assert [n.op_type for n in g.nodes] == ["Conv", "Conv"]
    c1, c2 = g.nodes
    assert c1.attrs["fastcnn_activation"] == "Relu" and "fastcnn_residual" not in c1.attrs
    assert c2.attrs["fastcnn_residual"] == 1 and c2.attrs["fastcnn_activation"] == "Relu"
    assert c2.attrs["fastcnn_fused"] == ["conv2", "bn2", "add", "relu2"]
    compare(m, {"x": w(1, 8, 10, 10)})


@pytest.mark.parametrize("act,attrs,extra", [
    ("Relu", {}, []), ("LeakyRelu", {"alpha": 0.1}, []), ("HardSigmoid", {}, []),
    ("HardSwish", {}, []), ("Sigmoid", {}, []), ("Tanh", {}, []), ("Elu", {"alpha": 0.7}, []),
    ("Clip", {}, ["lo", "hi"]), ("PRelu", {}, ["slope"]),
])
def test_activation_fusion(act, attrs, extra):
    inits = {"w": w(6, 3, 3, 3), "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
             "slope": w(6, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node(act, ["c"] + extra, ["y"], name="act", **attrs)]
    m = make_model(nodes, [("x", F, [1, 3, 7, 7])], [("y", F, None)], inits, opset=14)
    g = import_model(m)
    fused = act in Conv.fused_activations
    assert fuse_activation.run(g) == fused
    assert [n.op_type for n in g.nodes] == (["Conv"] if fused else ["Conv", act])
    compare(m, {"x": w(1, 3, 7, 7) * 4})


@pytest.mark.parametrize("pattern", ["silu", "hardswish", "mish"])
def test_pattern_fusion(pattern):
    inits = {"w": w(6, 3, 3, 3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv")]
    if pattern == "silu":
        nodes.append(helper.make_node("Sigmoid", ["c"], ["f"], name="sig"))
    elif pattern == "hardswish":
        nodes.append(helper.make_node("HardSigmoid", ["c"], ["f"], name="hs", alpha=1 / 6, beta=0.5))
    else:
        nodes += [helper.make_node("Softplus", ["c"], ["sp"], name="sp"),
                  helper.make_node("Tanh", ["sp"], ["f"], name="tanh")]
    nodes.append(helper.make_node("Mul", ["c", "f"], ["y"], name="mul"))
    m = make_model(nodes, [("x", F, [1, 3, 7, 7])], [("y", F, None)], inits)
    g = import_model(m)
    fused = {"silu": "Silu", "hardswish": "HardSwish", "mish": "Mish"}[pattern] in \
        Conv.fused_activations
    assert fuse_activation.run(g) == fused
    assert (len(g.nodes) == 1) == fused
    compare(m, {"x": w(1, 3, 7, 7) * 4})


def test_residual_not_fused_into_conv_whose_output_is_a_graph_output():
    inits = {"w": w(3, 3, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Add", ["c", "x"], ["y"], name="add")]
    m = make_model(nodes, [("x", F, [1, 3, 4, 4])], [("y", F, None), ("c", F, None)], inits)
    assert not fuse_residual.run(import_model(m))
    compare(m, {"x": w(1, 3, 4, 4)})


@pytest.mark.parametrize("case", ["z_broadcasts", "conv_broadcasts"])
@pytest.mark.parametrize("nt", [1, 2])
def test_residual_add_that_broadcasts(case, nt):
    """The pass fuses Adds before shapes are known; when the Add broadcasts (a per-channel
    runtime z, or a 1x1 conv output spread over z's map) the Conv adds z itself, exactly."""
    if case == "z_broadcasts":
        inits = {"w": w(16, 16, 3, 3)}
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("GlobalAveragePool", ["x"], ["z"]),
                 helper.make_node("Add", ["c", "z"], ["a"]),
                 helper.make_node("Relu", ["a"], ["y"])]
    else:
        inits = {"w": w(16, 16, 8, 8)}
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
                 helper.make_node("Add", ["x", "c"], ["a"]),
                 helper.make_node("Clip", ["a"], ["y"])]
    m = make_model(nodes, [("x", F, [2, 16, 8, 8])], [("y", F, None)], inits, opset=13)
    assert "Add" not in optimized_ops(m)
    x = w(2, 16, 8, 8)
    got = fastcnn.InferenceSession(m, num_threads=nt).run(None, {"x": x})[0]
    ref = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    assert got.shape == ref.shape == (2, 16, 8, 8)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_bn_fold_scales_an_owned_weight_in_place_but_never_a_shared_one():
    """A weight read by the folded conv alone is scaled in place (no second copy); one read
    by two convs is not, and the other conv keeps the unscaled weight."""
    inits = {"w": w(4, 3, 3, 3), "ws": w(4, 3, 1, 1)}
    inits.update(bn_params("bn1", 4))
    inits.update(bn_params("bn2", 4))
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             bn("bn1", "a", "a2"),
             helper.make_node("Conv", ["x", "ws"], ["b"]),
             bn("bn2", "b", "b2"),
             helper.make_node("Conv", ["x", "ws"], ["c"]),
             helper.make_node("Add", ["a2", "b2"], ["s"]),
             helper.make_node("Add", ["s", "c"], ["y"])]
    m = make_model(nodes, [("x", F, [1, 3, 6, 6])], [("y", F, None)], inits)
    g = import_model(m)
    w_arr, ws_arr = g.initializers["w"], g.initializers["ws"]
    ws_before = ws_arr.copy()
    assert fold_batchnorm.run(g)
    assert "w" not in g.initializers                           # replaced...
    assert any(v is w_arr for v in g.initializers.values())    # ...by the same array, scaled
    np.testing.assert_array_equal(g.initializers["ws"], ws_before)   # shared: untouched
    compare(m, {"x": w(1, 3, 6, 6)})


@pytest.mark.parametrize("nt", [1, 2])
def test_transcendental_activations_fused_into_blocked_convs(nt):
    """SiLU / Tanh / Mish / Sigmoid / Elu after dense, depthwise and pointwise NCHWc convs run
    in the conv epilogues (vectorized) and give what the unfused graph gives."""
    inits = {"w0": w(20, 3, 3, 3), "w1": w(20, 1, 3, 3), "w2": w(24, 20, 1, 1),
             "w3": w(24, 24, 3, 3), "w4": w(8, 24, 1, 1)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c0"], ["s0"]),
             helper.make_node("Mul", ["c0", "s0"], ["a0"]),                       # SiLU
             helper.make_node("Conv", ["a0", "w1"], ["c1"], pads=[1, 1, 1, 1], group=20),
             helper.make_node("Tanh", ["c1"], ["a1"]),
             helper.make_node("Conv", ["a1", "w2"], ["c2"]),
             helper.make_node("Softplus", ["c2"], ["sp"]),
             helper.make_node("Tanh", ["sp"], ["t2"]),
             helper.make_node("Mul", ["c2", "t2"], ["a2"]),                       # Mish
             helper.make_node("Conv", ["a2", "w3"], ["c3"], pads=[1, 1, 1, 1]),
             helper.make_node("Elu", ["c3"], ["a3"], alpha=0.5),
             helper.make_node("Conv", ["a3", "w4"], ["c4"]),
             helper.make_node("Sigmoid", ["c4"], ["y"])]
    m = make_model(nodes, [("x", F, [2, 3, 12, 12])], [("y", F, None)], inits, opset=14)
    assert optimized_ops(m) == ["Conv"] * 5
    x = w(2, 3, 12, 12) * 4
    got = fastcnn.InferenceSession(m, num_threads=nt).run(None, {"x": x})[0]
    ref = fastcnn.InferenceSession(m, num_threads=nt, graph_optimization_level="none").run(
        None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    compare(m, {"x": x})


def test_cancel_transposes_lets_bn_fold():
    """tf2onnx's Conv -> Transpose(0,2,3,1) -> Transpose(0,3,1,2) -> BatchNormalization -> Relu:
    the pair cancels, BN folds, Relu fuses; a non-cancelling pair composes into one
    Transpose; a pair ending in a graph output keeps that output (identity perm)."""
    from fastcnn.passes import cancel_transposes
    inits = {"w": w(4, 3, 3, 3), **bn_params("bn", 4)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["t1"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["t1"], ["t2"], perm=[0, 3, 1, 2]),
             bn("bn", "t2", "b"),
             helper.make_node("Relu", ["b"], ["y"]),
             helper.make_node("Transpose", ["x"], ["u1"], perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["u1"], ["u2"], perm=[0, 2, 1, 3]),   # composed: (0,3,2,1)
             helper.make_node("Transpose", ["x"], ["v1"], perm=[0, 3, 1, 2]),
             helper.make_node("Transpose", ["v1"], ["v2"], perm=[0, 2, 3, 1])]
    m = make_model(nodes, [("x", F, [2, 3, 5, 6])],
                   [("y", F, None), ("u2", F, None), ("v2", F, None)], inits)
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    g = import_model(m)
    assert cancel_transposes.run(g)
    perms = [n.attrs["perm"] for n in g.nodes if n.op_type == "Transpose"]
    assert perms == [[0, 3, 2, 1], [0, 1, 2, 3]]
    sess = fastcnn.InferenceSession(m, num_threads=2)
    ops = [n.op_type for n in sess.optimized_graph().nodes]
    assert "BatchNormalization" not in ops and ops.count("Transpose") == 2, ops
    for got, ref in zip(sess.run(None, {"x": x}), want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    none = fastcnn.InferenceSession(m, graph_optimization_level="none").run(None, {"x": x})
    for got, ref in zip(none, want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


BN_ACTS = [("Relu", {}, []), ("Clip", {}, ["lo", "hi"]), ("LeakyRelu", {"alpha": 0.2}, []),
           ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, []), ("Elu", {"alpha": 0.7}, []),
           ("Sigmoid", {}, []), ("Silu", {}, []), ("HardSwish", {}, [])]


@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act,attrs,extra", BN_ACTS, ids=[a[0] for a in BN_ACTS])
def test_activation_fuses_into_standalone_bn(act, attrs, extra, dtype, nt):
    """DenseNet's BN-ReLU after a Concat: the BN stays (nothing to fold it into) and takes
    the activation into its affine pass; blocked (a conv before and after) and plain."""
    c = 11                       # not a multiple of the block: padding lanes stay finite
    inits = {"w1": w(5, 3, 3, 3), "w2": w(4, c, 1, 1), **bn_params("bn", c)}
    inits.update({"lo": np.array(-0.2, np.float32), "hi": np.array(0.6, np.float32)})
    if act == "Silu":
        tail = [helper.make_node("Sigmoid", ["t"], ["sg"]),
                helper.make_node("Mul", ["t", "sg"], ["a"])]
    else:
        tail = [helper.make_node(act, ["t"] + extra, ["a"], **attrs)]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["c1", "x", "x"], ["cat"], axis=1),
             bn("bn", "cat", "t"), *tail,
             helper.make_node("Conv", ["a", "w2"], ["y"]),
             helper.make_node("Identity", ["a"], ["y2"])]
    m = make_model(nodes, [("x", F, [2, 3, 7, 6])], [("y", F, None), ("y2", F, None)], inits,
                   opset=14)
    x = w(2, 3, 7, 6)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(m.SerializeToString(), so).run(None, {"x": x})
    if dtype == np.float64:      # the numpy path, against onnxruntime's float32 run
        from onnx import TensorProto, numpy_helper
        for t in m.graph.initializer:
            a = numpy_helper.to_array(t)
            if a.dtype == np.float32:
                t.CopyFrom(numpy_helper.from_array(a.astype(np.float64), t.name))
        for v in list(m.graph.input) + list(m.graph.output):
            v.type.tensor_type.elem_type = TensorProto.DOUBLE
    ops = optimized_ops(m)
    assert "BatchNormalization" in ops and act not in ops and "Mul" not in ops, ops
    got = fastcnn.InferenceSession(m, num_threads=nt).run(None, {"x": x.astype(dtype)})
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _affine_chain(n_blocks, c=4):
    """n blocks Conv -> Mul(per-channel) -> Add(per-channel) -> Relu; block 1's Conv also
    feeds a second reader and block 2's Mul reads a runtime value (neither folds); the
    first block's weight name collides with a would-be folded name."""
    inits, nodes, cur = {}, [], "x"
    for k in range(n_blocks):
        inits.update({f"w{k}": w(c, c, 1, 1), f"s{k}": w(c, 1, 1), f"t{k}": w(1, c, 1, 1)})
        nodes += [helper.make_node("Conv", [cur, f"w{k}"], [f"c{k}"], name=f"conv{k}"),
                  helper.make_node("Mul", [f"c{k}", "x" if k == 2 else f"s{k}"], [f"m{k}"],
                                   name=f"mul{k}"),
                  helper.make_node("Add", [f"t{k}", f"m{k}"], [f"a{k}"], name=f"add{k}"),
                  helper.make_node("Relu", [f"a{k}"], [f"r{k}"], name=f"relu{k}")]
        if k == 1:
            nodes.append(helper.make_node("Neg", [f"c{k}"], ["side"], name="side"))
        cur = f"r{k}"
    inits["w0_scaled"] = w(3)           # a name the fold would pick: it must pick another
    return make_model(nodes, [("x", F, [1, c, 5, 5])], [(cur, F, None), ("side", F, None)], inits)


def test_fold_affine_long_chain_one_sweep(monkeypatch):
    """Linear time: the producer / reader maps are built once per run (not per Mul/Add),
    no fresh-name scans; every foldable pair folds, the rest stay; outputs unchanged."""
    from fastcnn.ir.graph import Graph
    m = _affine_chain(40)
    g = import_model(m)
    calls = {"producers": 0, "consumers": 0, "fresh_name": 0}
    for name in calls:
        orig = getattr(Graph, name)

        def counted(self, *a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(self, *a, **k)
        monkeypatch.setattr(Graph, name, counted)
    assert fold_affine.run(g)
    assert calls == {"producers": 1, "consumers": 1, "fresh_name": 0}, calls
    monkeypatch.undo()
    ops = [n.op_type for n in g.nodes]
    # 38 blocks fold to Conv -> Relu; block 1 keeps Mul + Add (its Conv has two readers),
    # block 2 keeps Mul (runtime operand) and its Add does not follow a Conv
    assert ops.count("Conv") == 40 and ops.count("Mul") == 2 and ops.count("Add") == 2
    conv0 = next(n for n in g.nodes if n.name == "conv0")
    assert conv0.outputs == ["a0"] and conv0.attrs["fastcnn_fused"] == ["conv0", "mul0", "add0"]
    assert conv0.inputs[1] != "w0_scaled" and g.initializers["w0_scaled"].shape == (3,)
    assert not fold_affine.run(g)        # nothing left to fold
    compare(m, {"x": w(1, 4, 5, 5)})
