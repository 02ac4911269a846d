"""push_transposes: tf2onnx's NHWC islands (Transpose -> Conv -> Transpose -> per-channel ops
-> Transpose -> Conv) collapse to NCHW.  Every model: equal outputs at optimization levels
none / basic / all and against onnxruntime, plus a structural assertion (Transposes gone,
the per-channel Mul/Add folded into the Conv, the attribute rewritten)."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import fastcnn
from fastcnn import zoo
from fastcnn.errors import InvalidGraphError
from fastcnn.ir.onnx_import import import_model
from fastcnn.passes import push_transposes

from conftest import F, make_model

RNG = np.random.default_rng(0)
NCHW, NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def w(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def check(model, feeds, nts=(1, 2), rtol=1e-4, atol=1e-5):
    """fastcnn at every level and thread count == onnxruntime (no ORT optimizations)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    for lv in ("none", "basic", "all"):
        for nt in nts:
            got = fastcnn.InferenceSession(model, graph_optimization_level=lv,
                                           num_threads=nt).run(None, feeds)
            assert len(got) == len(want)
            for g, r in zip(got, want):
                assert g.shape == r.shape and g.dtype == r.dtype, (lv, g.shape, r.shape)
                np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=lv)
    return want


def nodes_of(model, level="all"):
    return fastcnn.InferenceSession(model, graph_optimization_level=level).optimized_graph().nodes


def ops_of(model, level="all"):
    return [n.op_type for n in nodes_of(model, level)]


class TF:
    """tf2onnx-style builder: every conv as Transpose(0,3,1,2) -> Conv -> Transpose(0,2,3,1)."""

    def __init__(self):
        self.nodes, self.inits, self.k = [], {}, 0

    def name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def c(self, arr):
        n = self.name("c")
        self.inits[n] = np.asarray(arr)
        return n

    def op(self, op_type, inputs, out=None, **attrs):
        out = out or self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k=3, perms=(NCHW, NHWC), **attrs):
        nd = len(perms[0]) - 2
        t = self.op("Transpose", [x], perm=perms[0])
        c = self.op("Conv", [t, self.c(w(cout, cin, *([k] * nd))), self.c(w(cout))],
                    pads=[k // 2] * (2 * nd), **attrs)
        return self.op("Transpose", [c], perm=perms[1])

    def model(self, inputs, outputs, opset=13):
        return make_model(self.nodes, inputs, [(o, F, None) for o in outputs], self.inits,
                          opset=opset)


def x_nhwc(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ per-channel constants

@pytest.mark.parametrize("shape,folds", [((6,), True), ((1, 1, 1, 6), True), ((), True),
                                         ((1,), True), ((1, 7, 5, 6), False),
                                         ((5, 1), False), ((7, 1, 6), False)],
                         ids=["C", "111C", "scalar", "1", "full", "W1", "H1C"])
def test_mul_add_constant_between_convs(shape, folds):
    """Conv -> T -> Mul(c) -> Add(c) -> Relu -> T -> Conv: the pair cancels; a per-channel
    constant folds into the first conv (Relu fuses); the others are re-laid for NCHW and
    stay as Mul/Add (exact either way)."""
    b = TF()
    h = b.conv("x", 3, 6)
    scale = (RNG.uniform(0.5, 1.5, shape)).astype(np.float32)
    h = b.op("Mul", [h, b.c(scale)])
    h = b.op("Add", [b.c(w(*shape)), h])            # constant first: either operand order
    h = b.op("Relu", [h])
    y = b.conv(h, 6, 4)
    m = b.model([("x", F, [2, 7, 5, 3])], [y])
    check(m, {"x": x_nhwc(2, 7, 5, 3)})
    assert ops_of(m, "none").count("Transpose") == 4
    basic = ops_of(m, "basic")
    assert basic.count("Transpose") == 2, basic
    if folds:
        assert basic == ["Transpose", "Conv", "Relu", "Conv", "Transpose"], basic
        allops = nodes_of(m, "all")
        assert [n.op_type for n in allops] == ["Transpose", "Conv", "Conv", "Transpose"]
        assert allops[1].attrs["fastcnn_activation"] == "Relu"
    else:
        assert {"Mul", "Add"} <= set(basic), basic


def test_constant_shapes_are_re_laid_exactly():
    """The pass itself: a [C] constant becomes [C, 1, 1], [1,1,1,C] becomes [C, 1, 1], a
    full-rank NHWC constant is transposed to NCHW, a scalar is left alone."""
    b = TF()
    h = b.op("Transpose", ["x"], perm=NHWC)
    vals = {"C": w(6), "111C": w(1, 1, 1, 6), "full": w(1, 7, 5, 6), "s": np.float32(2)}
    for k in ("C", "111C", "full", "s"):
        b.inits[k] = vals[k]
        h = b.op("Mul", [h, k])
    h = b.op("Transpose", [h], perm=NCHW, out="y")
    m = b.model([("x", F, [2, 6, 7, 5])], ["y"])
    g = import_model(m)
    assert push_transposes.run(g)
    assert [n.op_type for n in g.nodes] == ["Mul"] * 4
    shapes = [g.initializers[n.inputs[1]].shape for n in g.nodes]
    assert shapes == [(6, 1, 1), (1, 6, 1, 1), (1, 6, 7, 5), ()]
    np.testing.assert_array_equal(g.initializers[g.nodes[0].inputs[1]].ravel(), vals["C"])
    np.testing.assert_array_equal(g.initializers[g.nodes[2].inputs[1]],
                                  vals["full"].transpose(0, 3, 1, 2))
    assert g.nodes[3].inputs[1] == "s" and g.nodes[3].outputs == ["y"]
    assert not push_transposes.run(g)                                 # a fixed point
    check(m, {"x": x_nhwc(2, 6, 7, 5)})


def test_keras_bn_block_becomes_conv_chain():
    """NHWC input -> T -> Conv -> T -> Mul -> Add -> Relu -> T -> Conv -> T -> Mul -> Add ->
    Clip -> T -> Conv -> T: one Transpose at the start, three fused convs, one at the end."""
    b = TF()
    h = "x"
    for cin, cout, act in ((3, 8, "Relu"), (8, 8, "Clip"), (8, 5, None)):
        h = b.conv(h, cin, cout)
        h = b.op("Mul", [h, b.c(RNG.uniform(0.5, 1.5, cout).astype(np.float32))])
        h = b.op("Add", [h, b.c(w(cout))])
        if act == "Relu":
            h = b.op("Relu", [h])
        elif act == "Clip":
            h = b.op("Clip", [h, b.c(np.float32(0)), b.c(np.float32(6))])
    m = b.model([("x", F, ["N", 9, 11, 3])], [h])
    check(m, {"x": x_nhwc(1, 9, 11, 3)})
    check(m, {"x": x_nhwc(3, 9, 11, 3)}, nts=(2,))
    g = nodes_of(m, "all")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Conv", "Conv", "Transpose"]
    assert [n.attrs.get("fastcnn_activation") for n in g[1:4]] == ["Relu", "Clip", None]
    assert g[0].attrs["perm"] == NCHW and g[-1].attrs["perm"] == NHWC


# ------------------------------------------------------------------ binary / Concat / PRelu

def test_residual_add_of_two_transposed_tensors():
    """h1 = T(conv1); h2 = T(conv2(h1)); Add(h1, h2) -> conv3: the Add joins NCHW values and
    fuses into conv2 as its residual."""
    b = TF()
    h1 = b.conv("x", 4, 6)
    h2 = b.conv(h1, 6, 6)
    s = b.op("Add", [h1, h2])
    y = b.conv(b.op("Relu", [s]), 6, 3)
    m = b.model([("x", F, [1, 8, 8, 4])], [y])
    check(m, {"x": x_nhwc(1, 8, 8, 4)})
    assert ops_of(m, "none").count("Transpose") == 6
    g = nodes_of(m, "all")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Conv", "Conv", "Transpose"]
    assert g[2].attrs.get("fastcnn_residual") and g[2].attrs["fastcnn_activation"] == "Relu"


@pytest.mark.parametrize("axis", [3, -1])
def test_concat_on_channels(axis):
    """Concat(axis=3) of two NHWC branches (and a full-rank constant) -> Concat(axis=1)."""
    b = TF()
    a = b.conv("x", 3, 4)
    c = b.conv("x", 3, 5, k=1)
    cat = b.op("Concat", [a, b.c(w(1, 6, 6, 2)), c], axis=axis)
    y = b.conv(cat, 11, 3)
    m = b.model([("x", F, [1, 6, 6, 3])], [y])
    check(m, {"x": x_nhwc(1, 6, 6, 3)})
    assert ops_of(m, "none").count("Transpose") == 6
    g = nodes_of(m, "basic")
    assert [n.op_type for n in g].count("Transpose") == 3, [n.op_type for n in g]  # 2 at the input
    assert [n.attrs["axis"] for n in g if n.op_type == "Concat"] == [1]


def test_concat_on_a_spatial_axis_and_different_perms():
    """Concat(axis=2) (W in NHWC) becomes axis 3; inputs with different perms stay put."""
    b = TF()
    a = b.conv("x", 3, 4)
    c = b.conv("x", 3, 4, k=1)
    cat = b.op("Concat", [a, c], axis=2)
    y1 = b.conv(cat, 4, 2)
    t1 = b.op("Transpose", ["x"], perm=[0, 2, 1, 3])        # [1, 6, 6, 3], H<->W
    t2 = b.op("Transpose", ["x"], perm=[0, 1, 2, 3])
    mixed = b.op("Concat", [t1, t2], axis=3)
    m = b.model([("x", F, [1, 6, 6, 3])], [y1, mixed])
    check(m, {"x": x_nhwc(1, 6, 6, 3)})
    g = nodes_of(m, "basic")
    cats = {n.outputs[0]: n.attrs["axis"] for n in g if n.op_type == "Concat"}
    assert cats[mixed] == 3 and sorted(cats.values()) == [3, 3]


@pytest.mark.parametrize("slope_shape", [(6,), (1, 1, 6), (1,)])
def test_prelu_slope_fuses(slope_shape):
    b = TF()
    h = b.conv("x", 3, 6)
    h = b.op("PRelu", [h, b.c(RNG.uniform(0.05, 0.5, slope_shape).astype(np.float32))])
    y = b.conv(h, 6, 2)
    m = b.model([("x", F, [1, 5, 7, 3])], [y])
    check(m, {"x": x_nhwc(1, 5, 7, 3)})
    g = nodes_of(m, "all")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Conv", "Transpose"]
    assert g[1].attrs["fastcnn_activation"] == "PRelu"


BINARY = [("Sub", 0), ("Sub", 1), ("Div", 0), ("Max", 0), ("Min", 1), ("Pow", 0), ("Mean", 0)]


@pytest.mark.parametrize("op,const_first", BINARY, ids=[f"{o}{k}" for o, k in BINARY])
def test_binary_ops_with_a_constant(op, const_first):
    b = TF()
    h = b.op("Abs", [b.conv("x", 3, 4)])
    c = b.c(RNG.uniform(0.5, 2.0, (4,)).astype(np.float32))
    h = b.op(op, [c, h] if const_first else [h, c])
    y = b.conv(h, 4, 2)
    m = b.model([("x", F, [1, 5, 6, 3])], [y])
    check(m, {"x": x_nhwc(1, 5, 6, 3)}, rtol=1e-4, atol=1e-4)
    assert ops_of(m, "basic").count("Transpose") == 2


UNARY = [("Relu", {}), ("LeakyRelu", {"alpha": 0.1}), ("Elu", {}), ("Selu", {}),
         ("Sigmoid", {}), ("HardSigmoid", {"alpha": 0.3}), ("HardSwish", {}), ("Tanh", {}),
         ("Softplus", {}), ("Neg", {}), ("Abs", {}), ("Exp", {}), ("Identity", {}),
         ("Erf", {}), ("Mish", {})]


@pytest.mark.parametrize("op,attrs", UNARY, ids=[u[0] for u in UNARY])
def test_unary_ops_commute(op, attrs):
    b = TF()
    h = b.op(op, [b.op("Transpose", ["x"], perm=NHWC)], **attrs)
    h = b.op("Cast", [b.op("Cast", [h], to=TensorProto.DOUBLE)], to=TensorProto.FLOAT)
    y = b.op("Transpose", [h], perm=NCHW)
    m = b.model([("x", F, [2, 3, 4, 5])], [y], opset=18)
    check(m, {"x": x_nhwc(2, 3, 4, 5)})
    assert "Transpose" not in ops_of(m, "basic")


def test_where_and_comparison():
    b = TF()
    h = b.op("Transpose", ["x"], perm=NHWC)
    g = b.op("Transpose", ["z"], perm=NHWC)
    cond = b.op("Greater", [h, b.c(w(5))])
    sel = b.op("Where", [cond, h, g])
    y = b.op("Transpose", [sel], perm=NCHW)
    m = b.model([("x", F, [2, 5, 3, 4]), ("z", F, [2, 5, 3, 4])], [y])
    check(m, {"x": x_nhwc(2, 5, 3, 4), "z": x_nhwc(2, 5, 3, 4)})
    assert "Transpose" not in ops_of(m, "basic")


# ------------------------------------------------------------------ fan-out, graph outputs

def test_transpose_feeding_two_consumers():
    """T(conv) read by Relu (-> next conv) and by Mul (a graph output in NHWC): both move
    together, the NHWC output keeps its layout, one Transpose fewer."""
    b = TF()
    h = b.conv("x", 3, 6)
    a = b.conv(b.op("Relu", [h]), 6, 2)
    side = b.op("Mul", [h, b.c(w(6))], out="side")
    m = b.model([("x", F, [1, 5, 5, 3])], [a, side])
    out = check(m, {"x": x_nhwc(1, 5, 5, 3)})
    assert out[1].shape == (1, 5, 5, 6)
    assert ops_of(m, "none").count("Transpose") == 4
    assert ops_of(m, "basic").count("Transpose") == 3


def test_transpose_shared_with_a_reader_that_cannot_move():
    """T(conv) read by MatMul (stays NHWC) and by Relu -> next conv: the Relu branch moves
    (its Transposes cancel), the Transpose stays for the MatMul."""
    b = TF()
    h = b.conv("x", 3, 6)
    a = b.conv(b.op("Relu", [h]), 6, 2)
    mm = b.op("MatMul", [h, b.c(w(6, 4))])
    m = b.model([("x", F, [1, 5, 5, 3])], [a, mm])
    check(m, {"x": x_nhwc(1, 5, 5, 3)})
    assert ops_of(m, "none").count("Transpose") == 4
    g = nodes_of(m, "all")
    assert [n.op_type for n in g].count("Transpose") == 3
    assert [n.op_type for n in g].count("Conv") == 2


def test_two_readers_that_both_cancel():
    """T(conv) -> Relu -> T -> conv and T(conv) -> Sigmoid -> T -> conv: pushing into both
    readers removes three Transposes."""
    b = TF()
    h = b.conv("x", 3, 6)
    y1 = b.conv(b.op("Relu", [h]), 6, 2)
    y2 = b.conv(b.op("Sigmoid", [h]), 6, 2)
    m = b.model([("x", F, [1, 5, 5, 3])], [b.op("Add", [y1, y2])])
    check(m, {"x": x_nhwc(1, 5, 5, 3)})
    assert ops_of(m, "none").count("Transpose") == 6
    assert ops_of(m, "basic").count("Transpose") == 2


def test_graph_outputs_keep_names_and_layouts():
    """The Transpose is itself a graph output (NHWC), and the op after it is another."""
    b = TF()
    h = b.conv("x", 3, 6)
    b.nodes[-1].output[0] = "nhwc"
    r = b.op("Relu", ["nhwc"], out="relu_out")
    y = b.conv(b.op("Mul", ["nhwc", b.c(w(6))]), 6, 2)
    m = make_model(b.nodes, [("x", F, [1, 4, 5, 3])],
                   [("nhwc", F, None), ("relu_out", F, None), (y, F, None)], b.inits)
    out = check(m, {"x": x_nhwc(1, 4, 5, 3)})
    assert out[0].shape == (1, 4, 5, 6) and out[1].shape == (1, 4, 5, 6)
    g = fastcnn.InferenceSession(m).optimized_graph()
    assert g.output_names() == ["nhwc", "relu_out", y]
    assert ops_of(m, "none").count("Transpose") == 4
    assert ops_of(m, "basic").count("Transpose") == 3


def test_op_whose_output_is_a_graph_output():
    b = TF()
    h = b.op("Relu", [b.conv("x", 3, 6)], out="y")
    m = b.model([("x", F, [1, 4, 5, 3])], ["y"])
    out = check(m, {"x": x_nhwc(1, 4, 5, 3)})
    assert out[0].shape == (1, 4, 5, 6)
    g = nodes_of(m, "all")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Transpose"]
    assert g[1].attrs["fastcnn_activation"] == "Relu" and g[2].outputs == ["y"]
    assert h == "y"


# ------------------------------------------------------------------ other ranks

def test_conv1d_nwc():
    """Keras Conv1D through tf2onnx on NWC: Transpose(0,2,1) around 1D convs, BN as Mul/Add."""
    b = TF()
    h = b.conv("x", 3, 5, perms=([0, 2, 1], [0, 2, 1]))
    h = b.op("Mul", [h, b.c(RNG.uniform(0.5, 1.5, 5).astype(np.float32))])
    h = b.op("Add", [h, b.c(w(1, 1, 5))])
    h = b.op("Relu", [h])
    y = b.conv(h, 5, 4, perms=([0, 2, 1], [0, 2, 1]))
    m = b.model([("x", F, [2, 11, 3])], [y])
    check(m, {"x": x_nhwc(2, 11, 3)})
    g = nodes_of(m, "all")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Conv", "Transpose"]


def test_conv3d_ndhwc():
    b = TF()
    p1, p2 = [0, 4, 1, 2, 3], [0, 2, 3, 4, 1]
    h = b.conv("x", 2, 4, perms=(p1, p2))
    h = b.op("Add", [b.op("Mul", [h, b.c(w(4))]), b.c(w(4))])
    y = b.conv(h, 4, 3, perms=(p1, p2))
    m = b.model([("x", F, [1, 3, 4, 5, 2])], [y])
    check(m, {"x": x_nhwc(1, 3, 4, 5, 2)})
    assert ops_of(m, "basic") == ["Transpose", "Conv", "Conv", "Transpose"]


def test_rank2_transpose():
    """Rank 2: Transpose(1,0) -> Add([K]) -> Transpose(1,0) is Add([K, 1])."""
    b = TF()
    t = b.op("Transpose", ["x"], perm=[1, 0])
    y = b.op("Transpose", [b.op("Add", [t, b.c(w(3))])], perm=[1, 0])
    m = b.model([("x", F, [3, 4])], [y])
    check(m, {"x": x_nhwc(3, 4)})
    assert ops_of(m, "basic") == ["Add"]


# ------------------------------------------------------------------ axis-carrying ops

@pytest.mark.parametrize("opset", [10, 13, 18])
def test_pad_in_nhwc(opset):
    """TF SAME stride-2: an explicit NHWC Pad (0,1 on H and W) between the Transposes
    becomes an NCHW Pad with the pads moved to axes 2, 3."""
    b = TF()
    h = b.conv("x", 3, 4)
    pads = [0, 0, 0, 0, 0, 1, 1, 0]
    if opset < 11:
        h = b.op("Pad", [h], pads=pads)
    elif opset < 18:
        h = b.op("Pad", [h, b.c(np.array(pads, np.int64))])
    else:       # with axes: pads for H, W only
        h = b.op("Pad", [h, b.c(np.array([0, 0, 1, 1], np.int64)), "",
                         b.c(np.array([1, 2], np.int64))])
    y = b.conv(h, 4, 2)
    m = b.model([("x", F, [1, 6, 6, 3])], [y], opset=opset)
    check(m, {"x": x_nhwc(1, 6, 6, 3)})
    g = import_model(m)
    assert push_transposes.run(g)
    assert [n.op_type for n in g.nodes] == ["Transpose", "Conv", "Pad", "Conv", "Transpose"]
    pad = g.nodes[2]
    if opset < 11:
        assert pad.attrs["pads"] == [0, 0, 0, 0, 0, 0, 1, 1]
    elif opset < 18:
        assert list(g.initializers[pad.inputs[1]]) == [0, 0, 0, 0, 0, 0, 1, 1]
    else:
        assert list(g.initializers[pad.inputs[3]]) == [2, 3]
    # ... and then fold_pad hands the (0, 1) padding to the second conv
    g = nodes_of(m, "basic")
    assert [n.op_type for n in g] == ["Transpose", "Conv", "Conv", "Transpose"]
    assert g[2].attrs["pads"] == [1, 1, 2, 2]


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset", [13, 18])
def test_global_average_pool_as_reduce_mean(keepdims, opset):
    """Keras GlobalAveragePooling2D: ReduceMean(axes=[1, 2]) on NHWC.  keepdims=0: the
    result [N, C] needs no Transpose at all."""
    b = TF()
    h = b.conv("x", 3, 6)
    if opset < 18:
        r = b.op("ReduceMean", [h], axes=[1, 2], keepdims=keepdims)
    else:
        r = b.op("ReduceMean", [h, b.c(np.array([-3, 2], np.int64))], keepdims=keepdims)
    y = b.op("MatMul", [r, b.c(w(6, 4))])
    m = b.model([("x", F, [2, 5, 7, 3])], [y], opset=opset)
    check(m, {"x": x_nhwc(2, 5, 7, 3)})
    ops = ops_of(m, "basic")
    assert ops.count("Transpose") == (1 + keepdims), ops


def test_reductions_that_keep_a_permuted_order():
    """ReduceSum over W (keepdims=0) of NHWC = ReduceSum over W of NCHW, then [N, C, H] ->
    [N, H, C]; ArgMax over C with keepdims=0 needs no Transpose; ReduceMax over all axes."""
    b = TF()
    h = b.op("Transpose", ["x"], perm=NHWC)
    s = b.op("ReduceSum", [h, b.c(np.array([2], np.int64))], keepdims=0)
    a = b.op("ArgMax", [b.op("Transpose", ["x"], perm=NHWC)], axis=3, keepdims=0)
    mx = b.op("ReduceMax", [b.op("Transpose", ["x"], perm=NHWC)], keepdims=1)
    m = make_model(b.nodes, [("x", F, [2, 4, 3, 5])],
                   [(s, F, None), (a, TensorProto.INT64, None), (mx, F, None)], b.inits)
    check(m, {"x": x_nhwc(2, 4, 3, 5)})
    g = fastcnn.InferenceSession(m, graph_optimization_level="basic").optimized_graph()
    ts = [n for n in g.nodes if n.op_type == "Transpose"]
    assert [t.attrs["perm"] for t in ts] == [[0, 2, 1]], [n.op_type for n in g.nodes]


def test_softmax_axis():
    """Softmax-13 over the NHWC channels moves to axis 1; Softmax-11 (flattens from axis)
    is left alone."""
    for opset, moved in ((13, True), (11, False)):
        b = TF()
        h = b.conv("x", 3, 5)
        y = b.conv(b.op("Softmax", [h], axis=-1 if opset >= 13 else 3), 5, 2)
        m = b.model([("x", F, [1, 4, 4, 3])], [y], opset=opset)
        check(m, {"x": x_nhwc(1, 4, 4, 3)})
        g = nodes_of(m, "basic")
        assert [n.op_type for n in g].count("Transpose") == (2 if moved else 4)
        if moved:
            assert [n.attrs["axis"] for n in g if n.op_type == "Softmax"] == [1]


# ------------------------------------------------------------------ left alone

def test_cases_that_are_not_rewritten():
    """An operand that is neither constant nor Transposed (a graph input in NHWC), a
    constant of higher rank, Transposes with different perms, a Transpose without perm,
    the transposed tensor also read as a parameter (CastLike's target): unchanged, correct."""
    b = TF()
    h = b.op("Transpose", ["x"], perm=NHWC)
    r1 = b.op("Transpose", [b.op("Add", [h, "z"])], perm=NCHW)
    r2 = b.op("Transpose", [b.op("Mul", [h, b.c(w(2, 1, 1, 1, 5))])], perm=[0, 1, 4, 2, 3])
    r3 = b.op("Sub", [b.op("Transpose", ["sq"], perm=NHWC), b.op("Transpose", ["sq"],
                                                                 perm=[0, 3, 2, 1])])
    r4 = b.op("Relu", [b.op("Transpose", ["x"])])
    t5 = b.op("Transpose", ["x"], perm=[0, 1, 3, 2])
    r5 = b.op("CastLike", [t5, t5])
    outs = [r1, r2, r3, r4, r5]
    m = make_model(b.nodes, [("x", F, [1, 5, 1, 1]), ("z", F, [1, 1, 1, 5]),
                             ("sq", F, [2, 3, 3, 3])],
                   [(o, F, None) for o in outs], b.inits, opset=15)
    feeds = {"x": x_nhwc(1, 5, 1, 1), "z": x_nhwc(1, 1, 1, 5), "sq": x_nhwc(2, 3, 3, 3)}
    check(m, feeds)
    g = import_model(m)
    before = [n.op_type for n in g.nodes]
    assert not push_transposes.run(g)
    assert [n.op_type for n in g.nodes] == before


def test_bad_graphs_raise_clear_errors():
    """Invalid perms or axes are left for the ops to report, never crash the pass."""
    cases = [
        (lambda b: b.op("Relu", [b.op("Transpose", ["x"], perm=[0, 1, 1, 2])]),
         InvalidGraphError),
        (lambda b: b.op("Concat", [b.op("Transpose", ["x"], perm=NHWC),
                                   b.op("Transpose", ["x"], perm=NHWC)], axis=7),
         fastcnn.FastCNNError),
        (lambda b: b.op("Pad", [b.op("Transpose", ["x"], perm=NHWC),
                                b.c(np.array([0, 1, 1, 0], np.int64))]),
         fastcnn.FastCNNError),
        (lambda b: b.op("ReduceMean", [b.op("Transpose", ["x"], perm=NHWC)], axes=[1, 1]),
         fastcnn.FastCNNError),
    ]
    for build, err in cases:
        b = TF()
        y = build(b)
        m = b.model([("x", F, [1, 2, 3, 4])], [y])
        with pytest.raises(err):
            fastcnn.InferenceSession(m).run(None, {"x": x_nhwc(1, 2, 3, 4)})


# ------------------------------------------------------------------ whole NHWC models

def test_keras_nhwc_net_plan():
    """zoo.keras_nhwc_net (tf2onnx MobileNetV2 slice, 32 Transposes): one Transpose left
    (the input's), every BN Mul/Add folded, every ReLU6 fused, the residual Adds fused,
    the ZeroPadding2D Pads folded into the convs (fold_pad), GAP a ReduceMean over NCHW
    H, W with no Transpose behind it."""
    m = zoo.get("keras_nhwc_net")
    assert ops_of(m, "none").count("Transpose") == 32
    g = nodes_of(m, "all")
    ops = [n.op_type for n in g]
    assert ops == ["Transpose"] + ["Conv"] * 16 + ["ReduceMean", "MatMul", "Add", "Softmax"], ops
    assert ops.count("Mul") == 0 and ops.count("Add") == 1 and "Clip" not in ops, ops
    assert sum(1 for n in g if n.attrs.get("fastcnn_residual")) == 2
    red = next(n for n in g if n.op_type == "ReduceMean")
    assert red.attrs["axes"] == [2, 3]
    feeds = zoo.random_inputs("keras_nhwc_net")
    want = ort.InferenceSession(m.SerializeToString()).run(None, feeds)[0]
    for nt in (1, 2):
        got = fastcnn.InferenceSession(m, num_threads=nt).run(None, feeds)[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert want.max() > 0.05            # a peaked softmax: the comparison means something


def test_nhwc_input_net_plan_unchanged():
    """zoo.nhwc_input_net (one input Transpose, NCHW after it) is left as it was."""
    m = zoo.get("nhwc_input_net")
    g = import_model(m)
    assert not push_transposes.run(g)
    assert ops_of(m, "all").count("Transpose") == 1


# ------------------------------------------------------------------ random graphs

def _random_island(rng):
    """Transpose(x, random perm) -> a random chain/DAG of unary, broadcasting (constants of
    random rank, some dims 1), binary-of-two-branches, Softmax, Concat, Reduce, Pad nodes,
    ending in random Transposes and graph outputs."""
    n = int(rng.integers(2, 6))
    shape = [int(v) for v in rng.integers(1, 5, n)]
    perm = [int(v) for v in rng.permutation(n)]
    b = TF()
    tshape = [shape[p] for p in perm]
    vals, outs = [b.op("Transpose", ["x"], perm=perm)], []
    for _ in range(int(rng.integers(1, 7))):
        kind = int(rng.integers(0, 9))
        v = vals[int(rng.integers(len(vals)))]
        if kind == 0:
            vals.append(b.op(str(rng.choice(["Relu", "Sigmoid", "Neg", "Tanh", "Identity"])), [v]))
        elif kind in (1, 2):
            r = int(rng.integers(0, n + 1))
            cs = [tshape[n - r + i] if rng.random() < 0.6 else 1 for i in range(r)]
            c = b.c(rng.standard_normal(cs).astype(np.float32))
            vals.append(b.op(str(rng.choice(["Add", "Mul", "Sub", "Max"])),
                             [v, c] if rng.random() < 0.5 else [c, v]))
        elif kind == 3:
            vals.append(b.op(str(rng.choice(["Add", "Mul", "Min"])),
                             [v, vals[int(rng.integers(len(vals)))]]))
        elif kind == 4:
            vals.append(b.op("Softmax", [v], axis=int(rng.integers(-n, n))))
        elif kind == 5:
            outs.append(b.op("Transpose", [v], perm=[int(x) for x in rng.permutation(n)]))
        else:
            if kind == 6:
                last = b.op("Concat", [v, vals[int(rng.integers(len(vals)))]],
                            axis=int(rng.integers(-n, n)))
            elif kind == 7:
                axes = sorted({int(a) for a in rng.integers(0, n, int(rng.integers(1, n + 1)))})
                last = b.op("ReduceMean", [v], axes=axes, keepdims=int(rng.integers(0, 2)))
            else:
                last = b.op("Pad", [v, b.c(rng.integers(0, 3, 2 * n).astype(np.int64))])
            outs.append(last)
            break
    else:
        outs.append(vals[-1])
        if rng.random() < 0.7:
            outs.append(b.op("Transpose", [vals[-1]], perm=[int(i) for i in np.argsort(perm)]))
    if rng.random() < 0.3:
        outs.append(vals[int(rng.integers(len(vals)))])
    outs = list(dict.fromkeys(outs))
    return b.model([("x", F, shape)], outs), {"x": rng.standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize("seed", range(4))
def test_random_islands(seed):
    """Seeded random NHWC-style islands: equal to onnxruntime at every level, and the pass
    never adds a Transpose."""
    rng = np.random.default_rng(100 + seed)
    pushed = 0
    for _ in range(40):
        m, feeds = _random_island(rng)
        check(m, feeds, nts=(1,), rtol=1e-5, atol=1e-5)
        before = ops_of(m, "none").count("Transpose")
        after = ops_of(m, "basic").count("Transpose")
        assert after <= before
        pushed += after < before
    assert pushed >= 2          # the generator does exercise the pass
