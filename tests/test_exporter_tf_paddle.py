"""TensorFlow (tf2onnx) and PaddlePaddle (paddle2onnx) export idioms, ONNX's dynamic-shape
plumbing, and bad input.

Each model below reproduces, with `onnx.helper`, a pattern those exporters emit (NHWC
Transposes around convs, explicit Pad for SAME, Clip(0, 6) with min/max as inputs,
hardswish as HardSigmoid * x, pool2d with ceil_mode, Resize sizes from Shape arithmetic,
Reshape targets from Shape -> Slice -> Concat, ...) at the opsets where the op's signature
changed.  fastcnn must agree with onnxruntime (and, where noted, with onnx's
ReferenceEvaluator) at 1 and 2 threads.  The graphs carry no value_info, as many exports
do not, so fastcnn infers every intermediate shape itself.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T, helper, numpy_helper as nh
from onnx.reference import ReferenceEvaluator

import fastcnn
from fastcnn.errors import FastCNNError, InputError, InvalidGraphError, UnsupportedOpError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
RTOL, ATOL = 1e-4, 1e-5


class G:
    """A tiny graph builder: constants become initializers (or Constant nodes)."""

    def __init__(self, seed=0):
        self.nodes, self.inits, self.k = [], [], 0
        self.rng = np.random.default_rng(seed)

    def _name(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def c(self, arr, dtype=None, node=False):
        arr = np.asarray(arr, dtype)
        name = self._name("const")
        if node:
            self.nodes.append(helper.make_node("Constant", [], [name], value=nh.from_array(arr, name)))
        else:
            self.inits.append(nh.from_array(arr, name))
        return name

    def w(self, *shape, scale=0.3):
        return self.c((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self._name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs

    def model(self, inputs, outputs, opset, out_types=None):
        ins = [helper.make_tensor_value_info(n, dt, shape) for n, (shape, dt) in inputs.items()]
        out_types = out_types or {}
        outs = [helper.make_tensor_value_info(o, out_types.get(o, T.FLOAT), None) for o in outputs]
        g = helper.make_graph(self.nodes, "exported", ins, outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        return m


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def check(m, feeds_list, nts=(1, 2), reference=False, rtol=RTOL, atol=ATOL):
    """fastcnn (one session per thread count, every feed set through it) against
    onnxruntime and optionally the ReferenceEvaluator."""
    ref_sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    spec = ReferenceEvaluator(m) if reference else None
    wants = []
    for feeds in feeds_list:
        want = ref_sess.run(None, feeds)
        if spec is not None:
            for a, b in zip(spec.run(None, feeds), want):
                np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
        wants.append(want)
    for nt in nts:
        sess = fastcnn.InferenceSession(m, num_threads=nt)
        for feeds, want in zip(feeds_list, wants):
            got = sess.run(None, feeds)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape, (g.shape, w.shape)
                assert g.dtype == w.dtype, (g.dtype, w.dtype)
                np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- TensorFlow (tf2onnx)

def tf_block_net(opset, const_nodes=False, eps=1e-3):
    """NHWC input; Transposes around every conv (as tf2onnx leaves them when its optimizer
    cannot cancel them), SAME stride-2 via an explicit NHWC Pad, per-channel [C] Mul/Add on
    the NHWC tensor (folded BN), Relu6 as Clip(0, 6), a FusedBatchNorm on NHWC behind a
    Transpose, depthwise conv (group=C, [C,1,kh,kw]) with channel multiplier 2, a residual
    Add in NHWC, global pool as ReduceMean over axes 1, 2, MatMul + Add classifier."""
    g = G(opset)
    C = 8
    nchw = g.op("Transpose", ["x"], perm=[0, 3, 1, 2])
    c1 = g.op("Conv", [nchw, g.w(C, 3, 3, 3), g.w(C)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    h = g.op("Transpose", [c1], perm=[0, 2, 3, 1])                   # NHWC
    h = g.op("Mul", [h, g.c(g.rng.uniform(0.5, 1.5, C).astype(np.float32))])
    h = g.op("Add", [h, g.w(C)])
    lo = g.c(np.float32(0), node=const_nodes)
    hi = g.c(np.float32(6), node=const_nodes)
    h = g.op("Clip", [h, lo, hi])
    # SAME, stride 2, even input: TF pads (0 before, 1 after) explicitly on the NHWC tensor
    pads = g.c(np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64), node=const_nodes)
    h = g.op("Pad", [h, pads], mode="constant")
    t = g.op("Transpose", [h], perm=[0, 3, 1, 2])
    c2 = g.op("Conv", [t, g.w(C, C, 3, 3)], kernel_shape=[3, 3], strides=[2, 2])
    h2 = g.op("Transpose", [c2], perm=[0, 2, 3, 1])
    # FusedBatchNorm on NHWC: Transpose -> BatchNormalization -> Transpose
    t = g.op("Transpose", [h2], perm=[0, 3, 1, 2])
    bn = g.op("BatchNormalization", [t, g.c(g.rng.uniform(0.5, 1.5, C).astype(np.float32)),
                                     g.w(C), g.w(C),
                                     g.c(g.rng.uniform(0.5, 2, C).astype(np.float32))],
              epsilon=eps)
    h3 = g.op("Transpose", [bn], perm=[0, 2, 3, 1])
    h3 = g.op("Relu", [h3])
    h3 = g.op("Add", [h3, h2])                                          # residual in NHWC
    # DepthwiseConv2dNative with channel multiplier 2: group=C, W [2C, 1, 3, 3], SAME_UPPER
    t = g.op("Transpose", [h3], perm=[0, 3, 1, 2])
    dw = g.op("Conv", [t, g.w(2 * C, 1, 3, 3)], group=C, kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    dw = g.op("Transpose", [dw], perm=[0, 2, 3, 1])
    dw = g.op("Clip", [dw, lo, hi])
    gap = g.op("ReduceMean", [dw], axes=[1, 2], keepdims=0) if opset < 18 else \
        g.op("ReduceMean", [dw, g.c(np.array([1, 2], np.int64))], keepdims=0)
    y = g.op("Add", [g.op("MatMul", [gap, g.w(2 * C, 5)]), g.w(5)])
    y = g.op("Identity", [g.op("Identity", [y])])
    return g.model({"x": (["N", 12, 12, 3], T.FLOAT)}, [y], opset)


@pytest.mark.parametrize("opset", [11, 13, 17, 18])
@pytest.mark.parametrize("const_nodes", [False, True])
def test_tf_block_net(opset, const_nodes):
    rng = np.random.default_rng(opset)
    m = tf_block_net(opset, const_nodes)
    check(m, [{"x": f32(rng, 1, 12, 12, 3)}, {"x": f32(rng, 3, 12, 12, 3)}])


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("k,s,hw", [(3, 2, 9), (2, 2, 8), (4, 1, 7), (1, 2, 7), (5, 3, 11)])
def test_conv_auto_pad(auto_pad, k, s, hw):
    g = G(k)
    y = g.op("Conv", ["x", g.w(4, 3, k, k), g.w(4)], kernel_shape=[k, k], strides=[s, s],
             auto_pad=auto_pad)
    dw = g.op("Conv", [y, g.w(4, 1, k, k)], group=4, kernel_shape=[k, k], strides=[s, s],
              auto_pad=auto_pad) if hw // s >= k or auto_pad != "VALID" else y
    m = g.model({"x": ([1, 3, hw, hw + 1], T.FLOAT)}, [dw], 13)
    check(m, [{"x": f32(np.random.default_rng(0), 1, 3, hw, hw + 1)}], reference=True)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_semantics(opset):
    """Softmax axis=1 on a 4D tensor: opset 11 normalizes over the flattened C*H*W,
    opset 13 over C only; axis=-1 / 3 agree."""
    g = G()
    a = g.op("Softmax", ["x"], axis=1)
    b = g.op("Softmax", ["x"], axis=-1)
    c = g.op("Softmax", ["x"], axis=3)
    d = g.op("LogSoftmax", ["x"], axis=1)
    f = g.op("Softmax", [g.op("Flatten", ["x"], axis=1)])        # default axis
    m = g.model({"x": (["N", 3, 4, 5], T.FLOAT)}, [a, b, c, d, f], opset)
    x = f32(np.random.default_rng(1), 2, 3, 4, 5)
    check(m, [{"x": x}])     # ReferenceEvaluator's Softmax-11 normalizes over axis 1 only
    if opset < 13:
        e = np.exp(x.reshape(2, -1) - x.reshape(2, -1).max(1, keepdims=True))
        got = fastcnn.InferenceSession(m, num_threads=1).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, (e / e.sum(1, keepdims=True)).reshape(x.shape),
                                   rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_tf_squeeze_unsqueeze_reshape(opset):
    """tf2onnx: ReduceMean keepdims=1 -> Squeeze([1, 2]); Unsqueeze back; Reshape whose
    target is Shape -> Slice -> Concat([-1]); Cast to float from the shape."""
    g = G()
    axes = dict(axes=[1, 2]) if opset < 13 else {}
    axin = [] if opset < 13 else [g.c(np.array([1, 2], np.int64))]
    gap = g.op("ReduceMean", ["x"], axes=[1, 2], keepdims=1)
    sq = g.op("Squeeze", [gap] + axin, **axes)
    un = g.op("Unsqueeze", [sq] + ([] if opset < 13 else [g.c(np.array([-1], np.int64))]),
              **(dict(axes=[-1]) if opset < 13 else {}))
    shp = g.op("Shape", ["x"])
    start = g.op("Slice", [shp, g.c(np.array([0], np.int64)), g.c(np.array([1], np.int64)),
                           g.c(np.array([0], np.int64))])
    target = g.op("Concat", [start, g.c(np.array([-1], np.int64))], axis=0)
    flat = g.op("Reshape", ["x", target])
    cnt = g.op("Cast", [g.op("Gather", [shp, g.c(np.array(1, np.int64))], axis=0)], to=T.FLOAT)
    scaled = g.op("Mul", [g.op("Cast", [flat], to=T.FLOAT), cnt])
    m = g.model({"x": (["N", 6, 5, 4], T.FLOAT)}, [sq, un, scaled], opset)
    rng = np.random.default_rng(2)
    check(m, [{"x": f32(rng, 1, 6, 5, 4)}, {"x": f32(rng, 2, 6, 5, 4)}], reference=True)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_variants(opset):
    g = G()
    if opset < 13:
        a, b, c = g.op("Split", ["x"], 3, axis=3, split=[1, 2, 3])
    else:
        a, b, c = g.op("Split", ["x", g.c(np.array([1, 2, 3], np.int64))], 3, axis=-1)
    outs = [a, b, c]
    if opset >= 18:
        outs += g.op("Split", ["x"], 4, axis=1, num_outputs=4)       # 7 -> 2, 2, 2, 1
    else:
        outs += g.op("Split", ["x"], 2, axis=2)                      # equal halves
    cat = g.op("Concat", [c, a, b], axis=3)
    cat2 = g.op("Concat", [c, a], axis=-1)
    outs += [cat, cat2]
    m = g.model({"x": ([2, 7, 4, 6], T.FLOAT)}, outs, opset)
    check(m, [{"x": f32(np.random.default_rng(3), 2, 7, 4, 6)}], reference=True)


RESIZE_CASES = [
    ("linear", "half_pixel", "round_prefer_floor"),
    ("linear", "asymmetric", "round_prefer_floor"),
    ("linear", "align_corners", "round_prefer_floor"),
    ("linear", "pytorch_half_pixel", "round_prefer_floor"),
    ("nearest", "asymmetric", "floor"),
    ("nearest", "tf_half_pixel_for_nn", "round_prefer_ceil"),
    ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "align_corners", "round_prefer_ceil"),
    ("nearest", "asymmetric", "ceil"),
    ("cubic", "half_pixel", "round_prefer_floor"),
    ("cubic", "asymmetric", "round_prefer_floor"),
]


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("mode,ctm,nearest_mode", RESIZE_CASES)
@pytest.mark.parametrize("out_hw", [(9, 14), (3, 5)])
def test_tf_resize_sizes_from_shape(opset, mode, ctm, nearest_mode, out_hw):
    """tf.image.resize: sizes = Concat(Shape(x)[0:2], [H', W']) with empty roi/scales
    (opset 11 requires a scales input: tf2onnx passes an empty float tensor)."""
    if ctm == "tf_half_pixel_for_nn" and opset >= 19:
        pytest.skip("removed in opset 19")
    g = G()
    shp = g.op("Shape", ["x"])
    nc = g.op("Slice", [shp, g.c(np.array([0], np.int64)), g.c(np.array([2], np.int64))])
    sizes = g.op("Concat", [nc, g.c(np.array(out_hw, np.int64))], axis=0)
    roi = g.c(np.zeros(0, np.float32))
    scales = g.c(np.zeros(0, np.float32))
    extra = dict(cubic_coeff_a=-0.5) if mode == "cubic" else {}
    y = g.op("Resize", ["x", roi, scales, sizes], mode=mode, coordinate_transformation_mode=ctm,
             nearest_mode=nearest_mode, **extra)
    m = g.model({"x": (["N", 3, 5, 7], T.FLOAT)}, [y], opset)
    rng = np.random.default_rng(4)
    check(m, [{"x": f32(rng, 1, 3, 5, 7)}, {"x": f32(rng, 2, 3, 5, 7)}], nts=(2,))


def test_tf_crop_and_resize():
    g = G()
    roi = g.c(np.array([0, 0, 0.1, 0.2, 1, 1, 0.8, 0.9], np.float32))
    y = g.op("Resize", ["x", roi, g.c(np.zeros(0, np.float32)), g.c(np.array([1, 2, 6, 6], np.int64))],
             mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
             extrapolation_value=0.0)
    m = g.model({"x": ([1, 2, 5, 7], T.FLOAT)}, [y], 13)
    check(m, [{"x": f32(np.random.default_rng(5), 1, 2, 5, 7)}], reference=True)


# ------------------------------------------------------------ PaddlePaddle (paddle2onnx)

def paddle_net(opset):
    """Conv + BN(eps 1e-5), hardswish as HardSigmoid(1/6, 0.5) * x and as HardSwish (14+),
    pool2d as MaxPool/AveragePool with ceil_mode=1 and exclusive, SiLU, Flatten -> MatMul -> Add."""
    g = G(opset)
    C = 8
    c = g.op("Conv", ["x", g.w(C, 3, 3, 3)], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    c = g.op("BatchNormalization", [c, g.c(g.rng.uniform(0.5, 1.5, C).astype(np.float32)), g.w(C),
                                    g.w(C), g.c(g.rng.uniform(0.5, 2, C).astype(np.float32))],
             epsilon=1e-5, momentum=0.9)
    hs = g.op("Mul", [c, g.op("HardSigmoid", [c], alpha=0.1666667, beta=0.5)])
    if opset >= 14:
        hs = g.op("HardSwish", [hs])
    mp = g.op("MaxPool", [hs], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    ap = g.op("AveragePool", [mp], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
              count_include_pad=0)
    si = g.op("Mul", [ap, g.op("Sigmoid", [ap])])
    fl = g.op("Flatten", [si], axis=1)
    y = g.op("Add", [g.op("MatMul", [fl, g.w(C * 3 * 3, 4)]), g.w(4)])
    return g.model({"x": (["N", 3, 19, 19], T.FLOAT)}, [y], opset)


@pytest.mark.parametrize("opset", [11, 13, 14, 17])
def test_paddle_net(opset):
    rng = np.random.default_rng(opset)
    check(paddle_net(opset), [{"x": f32(rng, 1, 3, 19, 19)}, {"x": f32(rng, 2, 3, 19, 19)}])


POOL_CASES = [  # kernel, stride, pads, ceil_mode, count_include_pad, hw
    (3, 2, [1, 1, 1, 1], 1, 0, (10, 11)),
    (3, 2, [1, 1, 1, 1], 1, 1, (10, 11)),
    (3, 2, [0, 0, 0, 0], 1, 0, (8, 9)),
    (2, 2, [0, 0, 0, 0], 1, 1, (7, 7)),
    (3, 3, [1, 1, 1, 1], 1, 1, (8, 8)),     # last window starts in the padding
    (3, 2, [1, 1, 1, 1], 0, 1, (9, 9)),
    (2, 2, [1, 0, 1, 0], 1, 0, (5, 6)),     # asymmetric pads
    (5, 3, [2, 2, 2, 2], 1, 1, (11, 13)),
]


@pytest.mark.parametrize("k,s,pads,ceil,cip,hw", POOL_CASES)
def test_paddle_pool2d(k, s, pads, ceil, cip, hw):
    g = G()
    a = g.op("AveragePool", ["x"], kernel_shape=[k, k], strides=[s, s], pads=pads,
             ceil_mode=ceil, count_include_pad=cip)
    b = g.op("MaxPool", ["x"], kernel_shape=[k, k], strides=[s, s], pads=pads, ceil_mode=ceil)
    m = g.model({"x": ([2, 3, *hw], T.FLOAT)}, [a, b], 13)
    # With ceil_mode, ReferenceEvaluator divides a window that runs past the end padding by
    # a different count than onnxruntime and PyTorch (which clip it to the padded extent).
    check(m, [{"x": f32(np.random.default_rng(k), 2, 3, *hw)}], reference=not ceil)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("mode,ctm,nearest_mode", [
    ("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_floor"),
    ("nearest", "asymmetric", "round_prefer_floor"), ("linear", "align_corners", "floor"),
    ("linear", "half_pixel", "floor"), ("linear", "asymmetric", "floor"),
    ("cubic", "half_pixel", "floor")])
@pytest.mark.parametrize("scales", [(2.0, 2.0), (0.5, 0.75), (1.5, 2.5)])
def test_paddle_resize_scales(opset, mode, ctm, nearest_mode, scales):
    """paddle interpolate: scales as an input, roi empty (or "" from opset 13)."""
    g = G()
    roi = "" if opset >= 13 else g.c(np.zeros(0, np.float32))
    extra = dict(cubic_coeff_a=-0.75) if mode == "cubic" else {}
    y = g.op("Resize", ["x", roi, g.c(np.array([1, 1, *scales], np.float32))], mode=mode,
             coordinate_transformation_mode=ctm, nearest_mode=nearest_mode, **extra)
    m = g.model({"x": (["N", 2, "H", "W"], T.FLOAT)}, [y], opset)
    rng = np.random.default_rng(6)
    # align_corners with scale * n_in not integral: the spec (ReferenceEvaluator, the ONNX
    # node cases, fastcnn) divides by scale*n_in - 1, onnxruntime by n_out - 1
    hws = [(6, 8), (4, 4)] if ctm == "align_corners" else [(6, 8), (5, 7)]
    check(m, [{"x": f32(rng, 1, 2, *hws[0])}, {"x": f32(rng, 2, 2, *hws[1])}], nts=(2,))


@pytest.mark.parametrize("opset", [11, 13])
def test_paddle_resize_sizes_from_shape_arith(opset):
    """Shape -> Slice[2:4] -> Cast(float) -> Mul(scale) -> Cast(int64) -> Concat(N, C, ...)."""
    g = G()
    shp = g.op("Shape", ["x"])
    hw = g.op("Slice", [shp, g.c(np.array([2], np.int64)), g.c(np.array([4], np.int64)),
                        g.c(np.array([0], np.int64))])
    hwf = g.op("Mul", [g.op("Cast", [hw], to=T.FLOAT), g.c(np.array([2.0, 1.5], np.float32))])
    hwi = g.op("Cast", [g.op("Floor", [hwf])], to=T.INT64)
    nc = g.op("Slice", [shp, g.c(np.array([0], np.int64)), g.c(np.array([2], np.int64))])
    sizes = g.op("Concat", [nc, hwi], axis=0)
    y = g.op("Resize", ["x", g.c(np.zeros(0, np.float32)), g.c(np.zeros(0, np.float32)), sizes],
             mode="linear", coordinate_transformation_mode="align_corners")
    m = g.model({"x": (["N", 3, "H", "W"], T.FLOAT)}, [y], opset)
    rng = np.random.default_rng(7)
    check(m, [{"x": f32(rng, 1, 3, 4, 6)}, {"x": f32(rng, 2, 3, 7, 5)}, {"x": f32(rng, 1, 3, 4, 6)}])


@pytest.mark.parametrize("opset", [11, 13])
def test_clip_min_max_inputs(opset):
    g = G()
    lo, hi = g.c(np.float32(-0.5)), g.c(np.float32(0.7))
    outs = [g.op("Clip", ["x", lo, hi]), g.op("Clip", ["x", lo]), g.op("Clip", ["x", "", hi]),
            g.op("Clip", ["x"]), g.op("Clip", ["x", hi, lo])]          # min > max -> max
    m = g.model({"x": ([2, 3, 4, 5], T.FLOAT)}, outs, opset)
    check(m, [{"x": f32(np.random.default_rng(8), 2, 3, 4, 5)}], reference=True)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_paddle_pad(opset, mode):
    g = G()
    val = [g.c(np.float32(0.25))] if mode == "constant" else []
    p1 = g.op("Pad", ["x", g.c(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))] + val, mode=mode)
    outs = [p1]
    if mode == "constant":      # negative pads crop
        outs.append(g.op("Pad", ["x", g.c(np.array([0, 0, -1, 1, 0, 0, 1, -2], np.int64))],
                         mode=mode))
    if opset >= 18:
        outs.append(g.op("Pad", ["x", g.c(np.array([2, 1, 1, 2], np.int64)), "",
                                 g.c(np.array([-1, 2], np.int64))], mode=mode))
    m = g.model({"x": ([1, 2, 5, 6], T.FLOAT)}, outs, opset)
    # (ReferenceEvaluator cannot do negative pads)
    check(m, [{"x": f32(np.random.default_rng(9), 1, 2, 5, 6)}], reference=mode != "constant")


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_l2_normalize(opset):
    """paddle F.normalize: x / max(sqrt(sum(x^2, axis=1, keepdim)), eps)."""
    g = G()
    sq = g.op("Pow", ["x", g.c(np.float32(2.0))])
    s = g.op("ReduceSum", [sq], axes=[1], keepdims=1) if opset < 13 else \
        g.op("ReduceSum", [sq, g.c(np.array([1], np.int64))], keepdims=1)
    n = g.op("Max", [g.op("Sqrt", [s]), g.c(np.float32(1e-12))])
    y = g.op("Div", ["x", n])
    y2 = g.op("ReduceL2", ["x"], axes=[1], keepdims=1) if opset < 18 else \
        g.op("ReduceL2", ["x", g.c(np.array([1], np.int64))], keepdims=1)
    m = g.model({"x": (["N", 4, 3, 3], T.FLOAT)}, [y, y2], opset)
    check(m, [{"x": f32(np.random.default_rng(10), 2, 4, 3, 3)}], reference=True)


@pytest.mark.parametrize("slope_shape", [(6,), (6, 1, 1), (1, 6, 1, 1), (1,), ()])
def test_prelu_slopes(slope_shape):
    """PRelu broadcasts its slope numpy-style (unidirectionally): [C] goes with the *last*
    axis, so this NCHW tensor has W == C to make [C] valid; [C,1,1] is per channel."""
    g = G()
    slope = g.c(np.random.default_rng(11).uniform(-0.5, 0.5, slope_shape).astype(np.float32))
    y = g.op("PRelu", ["x", slope])
    c = g.op("Conv", [y, g.w(6, 6, 1, 1)])
    y2 = g.op("PRelu", [c, slope])
    m = g.model({"x": (["N", 6, 5, 6], T.FLOAT)}, [y, y2], 13)
    rng = np.random.default_rng(12)
    check(m, [{"x": f32(rng, 1, 6, 5, 6)}, {"x": f32(rng, 2, 6, 5, 6)}], reference=True)


@pytest.mark.parametrize("opset", [11, 13])
def test_channel_shuffle(opset):
    """ShuffleNet: Reshape [N, g, C/g, H, W] -> Transpose(0,2,1,3,4) -> Reshape [N, C, H, W],
    with the shapes as constants using 0 (copy) and -1, and behind a conv."""
    g = G()
    c = g.op("Conv", ["x", g.w(12, 12, 1, 1)])
    r = g.op("Reshape", [c, g.c(np.array([0, 3, 4, 5, 6], np.int64))])
    t = g.op("Transpose", [r], perm=[0, 2, 1, 3, 4])
    r2 = g.op("Reshape", [t, g.c(np.array([0, -1, 5, 6], np.int64))])
    y = g.op("Conv", [g.op("Relu", [r2]), g.w(4, 12, 3, 3)], pads=[1, 1, 1, 1])
    m = g.model({"x": (["N", 12, 5, 6], T.FLOAT)}, [r2, y], opset)
    rng = np.random.default_rng(13)
    check(m, [{"x": f32(rng, 1, 12, 5, 6)}, {"x": f32(rng, 3, 12, 5, 6)}])


SLICE_CASES = [  # starts, ends, axes, steps
    ([-3], [INT64_MAX], [1], None),
    ([1, -4], [-1, INT64_MAX], [2, 3], [1, 2]),
    ([-1], [INT64_MIN], [3], [-1]),
    ([5], [-100], [2], [-2]),
    ([0, 0], [INT64_MAX, 2], [-1, -3], [3, 1]),
    ([2], [100], None, None),
    ([-100, 1], [100, 4], [0, 1], [1, 1]),
]


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("starts,ends,axes,steps", SLICE_CASES)
def test_slice_idioms(opset, starts, ends, axes, steps):
    g = G()
    ins = ["x", g.c(np.array(starts, np.int64)), g.c(np.array(ends, np.int64))]
    if axes is not None or steps is not None:
        ins.append(g.c(np.array(axes if axes is not None else range(len(starts)), np.int64)))
    if steps is not None:
        ins.append(g.c(np.array(steps, np.int64)))
    y = g.op("Slice", ins)
    # the same slice on a shape vector (Shape -> Slice)
    sh = g.op("Slice", [g.op("Shape", ["x"]), g.c(np.array([-2], np.int64)),
                        g.c(np.array([INT64_MAX], np.int64))])
    m = g.model({"x": (["N", 4, 7, 8], T.FLOAT)}, [y, sh], opset, out_types={sh: T.INT64})
    rng = np.random.default_rng(14)
    check(m, [{"x": f32(rng, 3, 4, 7, 8)}, {"x": f32(rng, 1, 4, 7, 8)}], reference=True)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_paddle_shape_plumbing(opset):
    """paddle reshape with 0 in the target: Where(Equal(target, 0), Shape(x), target);
    ConstantOfShape / Expand / Range / Tile building a positional map from the input's
    H and W; Gather on shape values."""
    g = G()
    shp = g.op("Shape", ["x"])
    target = g.c(np.array([0, 0, -1], np.int64))
    eq = g.op("Equal", [target, g.c(np.array(0, np.int64))])
    head = g.op("Slice", [shp, g.c(np.array([0], np.int64)), g.c(np.array([3], np.int64))])
    tgt = g.op("Where", [eq, head, target])
    r = g.op("Reshape", ["x", tgt])                                  # [N, C, H*W]
    hdim = g.op("Gather", [shp, g.c(np.array([2], np.int64))], axis=0)
    wdim = g.op("Gather", [shp, g.c(np.array(3, np.int64))], axis=0)   # scalar
    rng_w = g.op("Range", [g.c(np.array(0, np.int64)), wdim, g.c(np.array(1, np.int64))])
    rw = g.op("Cast", [rng_w], to=T.FLOAT)                             # [W]
    ones = g.op("ConstantOfShape", [g.op("Concat", [hdim, g.c(np.array([1], np.int64))], axis=0)],
                value=nh.from_array(np.array([1.0], np.float32)))       # [H, 1]
    pos = g.op("Mul", [ones, rw])                                      # [H, W]
    pos4 = g.op("Expand", [pos, g.op("Concat", [g.op("Slice", [shp, g.c(np.array([0], np.int64)),
                                                                g.c(np.array([1], np.int64))]),
                                                 g.c(np.array([1], np.int64)), hdim,
                                                 g.op("Unsqueeze", [wdim], axes=[0]) if opset < 13
                                                 else g.op("Unsqueeze", [wdim, g.c(np.array([0], np.int64))])],
                                        axis=0)])
    y = g.op("Add", ["x", pos4])
    tiled = g.op("Tile", [pos4, g.c(np.array([1, 2, 1, 1], np.int64))])
    m = g.model({"x": (["N", 2, "H", "W"], T.FLOAT)}, [r, y, tiled], opset)
    rng = np.random.default_rng(15)
    check(m, [{"x": f32(rng, 1, 2, 3, 4)}, {"x": f32(rng, 2, 2, 5, 3)}], reference=True)


# ------------------------------------------------------------------ dynamic shapes

def fully_conv_net(opset=13):
    """Symbolic N, H, W: the output's H, W follow the input's (conv s2, upsample x2, crop
    back to the input size with a Slice whose ends come from Shape(x))."""
    g = G()
    c = g.op("Relu", [g.op("Conv", ["x", g.w(6, 3, 3, 3), g.w(6)], kernel_shape=[3, 3],
                           pads=[1, 1, 1, 1], strides=[2, 2])])
    d = g.op("Conv", [c, g.w(6, 1, 3, 3)], group=6, kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    up = g.op("Resize", [d, "", g.c(np.array([1, 1, 2, 2], np.float32))], mode="nearest")
    hw = g.op("Slice", [g.op("Shape", ["x"]), g.c(np.array([2], np.int64)), g.c(np.array([4], np.int64))])
    crop = g.op("Slice", [up, g.c(np.array([0, 0], np.int64)), hw, g.c(np.array([2, 3], np.int64))])
    y = g.op("Conv", [g.op("Concat", [crop, "x"], axis=1), g.w(2, 9, 1, 1)])
    gp = g.op("GlobalAveragePool", [y])
    return g.model({"x": (["N", 3, "H", "W"], T.FLOAT)}, [y, gp], opset)


def test_dynamic_hw_many_sizes():
    m = fully_conv_net()
    rng = np.random.default_rng(16)
    sizes = [(1, 8, 8), (2, 7, 9), (1, 16, 5), (3, 1, 1), (1, 8, 8), (2, 33, 17)]
    check(m, [{"x": f32(rng, n, 3, h, w)} for n, h, w in sizes])


def test_value_info_present_or_stripped_agree():
    m = fully_conv_net()
    inferred = onnx.shape_inference.infer_shapes(m)
    assert len(inferred.graph.value_info) > 0 and len(m.graph.value_info) == 0
    x = f32(np.random.default_rng(17), 2, 3, 10, 6)
    a = fastcnn.InferenceSession(m, num_threads=1).run(None, {"x": x})
    b = fastcnn.InferenceSession(inferred, num_threads=2).run(None, {"x": x})
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=RTOL, atol=ATOL)


def test_stale_value_info_is_not_trusted():
    """An exporter's value_info naming wrong (stale, fixed-size) shapes for intermediates
    must not override what the nodes compute."""
    m = fully_conv_net()
    static = onnx.ModelProto.FromString(m.SerializeToString())
    for d, v in zip(static.graph.input[0].type.tensor_type.shape.dim, [1, 3, 8, 8]):
        d.dim_value = v
    inferred = onnx.shape_inference.infer_shapes(static)
    assert len(inferred.graph.value_info) > 5
    m2 = onnx.ModelProto.FromString(m.SerializeToString())
    m2.graph.value_info.extend(inferred.graph.value_info)   # static 8x8 shapes, symbolic input
    x = f32(np.random.default_rng(18), 2, 3, 12, 10)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    got = fastcnn.InferenceSession(m2, num_threads=2).run(None, {"x": x})
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ bad input

@pytest.fixture(scope="module")
def tf_sess():
    return fastcnn.InferenceSession(tf_block_net(13), num_threads=2)


@pytest.mark.parametrize("x,match", [
    (np.zeros((1, 12, 12, 3), np.float64), "dtype float64"),
    (np.zeros((1, 12, 12, 3), np.int32), "dtype int32"),
    (np.zeros((1, 12, 12, 3), np.float16), "dtype float16"),
    (np.zeros((12, 12, 3), np.float32), "rank 3"),
    (np.zeros((1, 12, 11, 3), np.float32), "dimension 2 must be 12"),
    (np.zeros((1, 3, 12, 12), np.float32), "dimension 1 must be 12"),
    (np.zeros((1, 12, 12, 3), np.float32)[..., None], "rank 5"),
    ([[1.0]], "dtype float64"),
    ("abc", "dtype"),
])
def test_bad_feed(tf_sess, x, match):
    with pytest.raises(InputError, match=match) as ei:
        tf_sess.run(None, {"x": x})
    assert "'x'" in str(ei.value)


def test_missing_extra_feed(tf_sess):
    x = np.zeros((1, 12, 12, 3), np.float32)
    with pytest.raises(InputError, match="missing input 'x'"):
        tf_sess.run(None, {})
    with pytest.raises(InputError, match="unknown input.*'y'"):
        tf_sess.run(None, {"x": x, "y": x})
    with pytest.raises(InputError, match="unknown output"):
        tf_sess.run(["nope"], {"x": x})
    assert tf_sess.run(None, {"x": x})[0].shape == (1, 5)   # still usable afterwards


def test_zero_batch_and_non_contiguous_feed(tf_sess):
    x = f32(np.random.default_rng(19), 2, 12, 3, 12).transpose(0, 1, 3, 2)   # not C-contiguous
    want = ort.InferenceSession(tf_block_net(13).SerializeToString()).run(None, {"x": np.ascontiguousarray(x)})
    np.testing.assert_allclose(tf_sess.run(None, {"x": x})[0], want[0], rtol=RTOL, atol=ATOL)


def _one_node(op, attrs, in_shape=(1, 4, 6, 6), inputs=None, opset=13, extra_inits=()):
    g = G()
    for t in extra_inits:
        g.inits.append(t)
    g.nodes.append(helper.make_node(op, inputs or ["x"], ["y"], name="bad_node", **attrs))
    ins = [helper.make_tensor_value_info("x", T.FLOAT, list(in_shape))]
    outs = [helper.make_tensor_value_info("y", T.FLOAT, None)]
    gr = helper.make_graph(g.nodes, "bad", ins, outs, g.inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


W = nh.from_array(np.zeros((4, 4, 3, 3), np.float32), "w")
W1 = nh.from_array(np.zeros((4, 1, 3, 3), np.float32), "w")


@pytest.mark.parametrize("op,attrs,inputs,inits,cls", [
    ("Conv", dict(strides=[0, 1]), ["x", "w"], [W], InvalidGraphError),
    ("Conv", dict(kernel_shape=[5, 5]), ["x", "w"], [W], InvalidGraphError),
    ("Conv", dict(group=3), ["x", "w"], [W], InvalidGraphError),
    ("Conv", dict(group=2), ["x", "w"], [W1], InvalidGraphError),
    ("Conv", dict(pads=[1, 1]), ["x", "w"], [W], InvalidGraphError),
    ("Conv", dict(auto_pad="SAME"), ["x", "w"], [W], InvalidGraphError),
    ("Conv", dict(strides=[1.5, 1.0]), ["x", "w"], [W], InvalidGraphError),
    ("Transpose", dict(perm=[0, 1, 1, 2]), None, [], InvalidGraphError),
    ("Transpose", dict(perm=[0, 1, 2]), None, [], InvalidGraphError),
    ("Softmax", dict(axis=4), None, [], InvalidGraphError),
    ("Concat", dict(axis=-5), None, [], InvalidGraphError),
    ("Flatten", dict(axis=5), None, [], InvalidGraphError),
    ("MaxPool", dict(kernel_shape=[7, 7]), None, [], InvalidGraphError),
    ("MaxPool", dict(kernel_shape=[3, 3], pads=[3, 3, 3, 3]), None, [], InvalidGraphError),
    ("AveragePool", dict(), None, [], InvalidGraphError),
    ("Resize", dict(mode="bicubic"), ["x", "", "s"],
     [nh.from_array(np.ones(4, np.float32), "s")], InvalidGraphError),
    ("Resize", dict(), ["x", "", "s"], [nh.from_array(np.ones(3, np.float32), "s")], InvalidGraphError),
    ("Squeeze", dict(), ["x", "ax"], [nh.from_array(np.array([1], np.int64), "ax")], InvalidGraphError),
    ("Reshape", dict(), ["x", "sh"], [nh.from_array(np.array([5, -1], np.int64), "sh")], InvalidGraphError),
    ("Reshape", dict(), ["x", "sh"], [nh.from_array(np.array([-1, -1], np.int64), "sh")], InvalidGraphError),
    ("Split", dict(axis=1), ["x", "sp"], [nh.from_array(np.array([1, 2], np.int64), "sp")], InvalidGraphError),
    ("Pad", dict(mode="wrapx"), ["x", "p"], [nh.from_array(np.zeros(8, np.int64), "p")], InvalidGraphError),
    ("Pad", dict(mode="reflect"), ["x", "p"], [nh.from_array(np.array([0, 0, 6, 0, 0, 0, 0, 0], np.int64), "p")], InvalidGraphError),
    ("Gather", dict(axis=1), ["x", "i"], [nh.from_array(np.array([4], np.int64), "i")], InvalidGraphError),
    ("Clip", dict(), ["x", "lo"], [nh.from_array(np.zeros(2, np.float32), "lo")], InvalidGraphError),
    ("BatchNormalization", dict(), ["x", "s", "s", "s", "s"], [nh.from_array(np.ones(3, np.float32), "s")], InvalidGraphError),
    ("PRelu", dict(), ["x", "s"], [nh.from_array(np.ones(4, np.float32), "s")], InvalidGraphError),
    ("FancyOp", dict(), None, [], UnsupportedOpError),
])
def test_malformed_nodes_raise_naming_the_node(op, attrs, inputs, inits, cls):
    m = _one_node(op, attrs, inputs=inputs, extra_inits=inits)
    with pytest.raises(cls) as ei:
        s = fastcnn.InferenceSession(m, num_threads=1)
        s.run(None, {"x": np.zeros((1, 4, 6, 6), np.float32)})
    assert "bad_node" in str(ei.value), str(ei.value)
    assert isinstance(ei.value, FastCNNError)


def test_shape_error_at_run_names_the_node():
    """A symbolic-H model whose Reshape target only fits some sizes: the size that does not
    fit raises at run (planning), naming the node; the session still runs good sizes."""
    g = G()
    r = g.op("Reshape", ["x", g.c(np.array([0, 4, 4, -1], np.int64))])
    m = g.model({"x": ([1, 4, "H", 6], T.FLOAT)}, [r], 13)
    s = fastcnn.InferenceSession(m, num_threads=1)
    assert s.run(None, {"x": np.ones((1, 4, 12, 6), np.float32)})[0].shape == (1, 4, 4, 18)
    with pytest.raises(InvalidGraphError, match="Reshape") as ei:
        s.run(None, {"x": np.ones((1, 4, 5, 6), np.float32)})
    assert "reshape_" in str(ei.value)
    assert s.run(None, {"x": np.ones((1, 4, 6, 6), np.float32)})[0].shape == (1, 4, 4, 9)


# ------------------------------------------------- fusion traps in exported graphs

def test_fusion_traps():
    """Patterns next to the fusable ones that must not be fused the same way: a [W]-shaped
    constant (broadcasts over W, not channels, W == C here), HardSigmoid gating another
    tensor (SE), x * sigmoid(y), a Conv output that is also a graph output or read twice,
    Add broadcasting the Conv output up, Clip with only max / only min, min > max."""
    g = G()
    C = 6
    c = g.op("Conv", ["x", g.w(C, C, 1, 1), g.w(C)])
    outs = [g.op("Mul", [c, g.w(C)]), g.op("Add", [g.w(C), c])]          # over W
    c2 = g.op("Conv", ["x", g.w(C, C, 3, 3)], pads=[1, 1, 1, 1])
    gate = g.op("HardSigmoid", [g.op("GlobalAveragePool", [c2])], alpha=0.1666667, beta=0.5)
    outs.append(g.op("Mul", [c2, gate]))                                  # SE-style gate
    c3 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Mul", [c3, g.op("Sigmoid", ["x"])]))               # x*sigmoid(y)
    c4 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs += [c4, g.op("Relu", [c4])]                                      # conv is an output
    c5 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs += [g.op("Relu", [c5]), g.op("Mul", [c5, g.c(np.float32(2.0))])]  # read twice
    pooled = g.op("Conv", [g.op("GlobalMaxPool", ["x"]), g.w(C, C, 1, 1)])
    outs.append(g.op("Add", [pooled, "x"]))                               # broadcasts up
    outs.append(g.op("Add", ["x", pooled]))
    c6 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Clip", [c6, "", g.c(np.float32(0.3))]))
    c7 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Clip", [c7, g.c(np.float32(-0.2))]))
    c8 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Clip", [c8, g.c(np.float32(0.5)), g.c(np.float32(-0.5))]))
    c9 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Mul", [g.op("HardSigmoid", [c9], alpha=0.2, beta=0.5), c9]))   # not hswish
    c10 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Mul", [c10, g.w(1, C, 1, C)]))                      # [1,C,1,C]
    c11 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Add", [c11, g.w(2, C, 1, 1)]))                      # grows the batch
    c12 = g.op("Conv", ["x", g.w(C, C, 1, 1)])
    outs.append(g.op("Div", [c12, g.c(np.float32(3.0))]))
    outs.append(g.op("Sub", [g.c(np.float32(1.0)), c12]))
    m = g.model({"x": ([1, C, 4, C], T.FLOAT)}, outs, 13)
    rng = np.random.default_rng(20)
    check(m, [{"x": f32(rng, 1, C, 4, C)}])
    for level in ("none", "basic"):
        a = fastcnn.InferenceSession(m, num_threads=1, graph_optimization_level=level)
        x = f32(rng, 1, C, 4, C)
        want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
        for u, v in zip(a.run(None, {"x": x}), want):
            np.testing.assert_allclose(u, v, rtol=RTOL, atol=ATOL)


def test_graph_outputs_that_are_inputs_constants_or_duplicates():
    g = G()
    ident = g.op("Identity", ["x"])
    k = g.c(np.arange(6, dtype=np.float32).reshape(2, 3))
    kid = g.op("Identity", [k])
    shp = g.op("Shape", ["x"])
    relu = g.op("Relu", [ident])
    m = g.model({"x": (["N", 3], T.FLOAT)}, [ident, kid, shp, relu, "x"], 13,
                out_types={shp: T.INT64})
    m.graph.output.append(m.graph.output[3])               # the same output twice
    x = f32(np.random.default_rng(21), 2, 3)
    want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    got = fastcnn.InferenceSession(m, num_threads=2).run(None, {"x": x})
    assert len(got) == len(want) == 6
    for u, v in zip(got, want):
        np.testing.assert_array_equal(u, v)
    got[0][...] = 7                                         # outputs are the caller's
    assert not np.shares_memory(got[0], x) and (x != 7).all()


@pytest.mark.parametrize("opset", [11, 13])
def test_more_export_idioms(opset):
    """TF MobileNetV3 hard-swish (x * Relu6(x + 3) / 6 with Mul(1/6)); Squeeze with no axes;
    paddle's int32 shape plumbing (Shape -> Cast int32 -> Slice/Concat -> Cast int64 ->
    Reshape); tf2onnx's Conv2DBackpropInput (ConvTranspose then Slice); DepthToSpace on
    NHWC via Transposes; ArgMax -> Cast int32 as a segmentation output; Max/Min as relu6."""
    g = G()
    c = g.op("Conv", ["x", g.w(8, 3, 3, 3)], pads=[1, 1, 1, 1])
    r6 = g.op("Clip", [g.op("Add", [c, g.c(np.float32(3))]), g.c(np.float32(0)), g.c(np.float32(6))])
    hs = g.op("Mul", [c, g.op("Mul", [r6, g.c(np.float32(1 / 6))])])
    mm = g.op("Min", [g.op("Max", [hs, g.c(np.float32(0))]), g.c(np.float32(6))])
    gap = g.op("ReduceMean", [mm], axes=[2, 3], keepdims=1)
    sq = g.op("Squeeze", [gap], **(dict(axes=[2, 3]) if opset < 13 else {}))  # [N, 8] (N > 1)
    shp = g.op("Cast", [g.op("Shape", [mm])], to=T.INT32)
    nc = g.op("Slice", [shp, g.c(np.array([0], np.int32)), g.c(np.array([2], np.int32))])
    tgt = g.op("Cast", [g.op("Concat", [nc, g.c(np.array([-1], np.int32))], axis=0)], to=T.INT64)
    flat = g.op("Reshape", [mm, tgt])
    ct = g.op("ConvTranspose", [mm, g.w(8, 4, 3, 3)], strides=[2, 2])
    ct = g.op("Slice", [ct, g.c(np.array([0, 0], np.int64)), g.c(np.array([-1, -1], np.int64)),
                        g.c(np.array([2, 3], np.int64))])
    nhwc = g.op("Transpose", [ct], perm=[0, 2, 3, 1])
    d2s = g.op("Transpose", [g.op("DepthToSpace", [g.op("Transpose", [nhwc], perm=[0, 3, 1, 2])],
                                  blocksize=2, mode="DCR")], perm=[0, 2, 3, 1])
    am = g.op("Cast", [g.op("ArgMax", [c], axis=1, keepdims=0)], to=T.INT32)
    m = g.model({"x": (["N", 3, 6, 5], T.FLOAT)}, [sq, flat, d2s, am], opset, out_types={am: T.INT32})
    rng = np.random.default_rng(22)
    check(m, [{"x": f32(rng, 2, 3, 6, 5)}, {"x": f32(rng, 3, 3, 6, 5)}])


def test_maxpool_indices():
    g = G()
    y, i = g.op("MaxPool", ["x"], 2, kernel_shape=[2, 2], strides=[2, 2])
    y2, i2 = g.op("MaxPool", ["x"], 2, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                  storage_order=0)
    m = g.model({"x": ([2, 3, 6, 7], T.FLOAT)}, [y, i, y2, i2], 13, out_types={i: T.INT64, i2: T.INT64})
    check(m, [{"x": f32(np.random.default_rng(23), 2, 3, 6, 7)}])


@pytest.mark.parametrize("opset", [11, 13])
def test_tf_dilated_conv1d_and_deconv(opset):
    """Atrous conv as Conv(dilations=2, auto_pad=SAME_UPPER); Keras Conv1D as
    Unsqueeze -> Conv [1, k] -> Squeeze; Conv2DTranspose as ConvTranspose with the
    output_shape attribute and with auto_pad SAME_UPPER."""
    g = G()
    a = g.op("Conv", ["x", g.w(4, 3, 3, 3)], dilations=[2, 2], pads=[2, 2, 2, 2])
    ax = dict(axes=[2]) if opset < 13 else {}
    axin = [] if opset < 13 else [g.c(np.array([2], np.int64))]
    seq = g.op("Reshape", ["x", g.c(np.array([0, 3, -1], np.int64))])          # [N, 3, L]
    c1 = g.op("Conv", [g.op("Unsqueeze", [seq] + axin, **ax), g.w(5, 3, 1, 5)],
              kernel_shape=[1, 5], auto_pad="SAME_UPPER", strides=[1, 2])
    c1 = g.op("Squeeze", [c1] + axin, **ax)
    d1 = g.op("ConvTranspose", [a, g.w(4, 2, 3, 3)], strides=[2, 2], output_shape=[15, 17])
    d2 = g.op("ConvTranspose", [a, g.w(4, 2, 4, 4)], strides=[2, 2], auto_pad="SAME_UPPER")
    m = g.model({"x": ([2, 3, 8, 9], T.FLOAT)}, [a, c1, d1, d2], opset)
    x = f32(np.random.default_rng(24), 2, 3, 8, 9)
    check(m, [{"x": x}])
    # onnxruntime refuses dilations with SAME_*: check that one against the spec
    g = G()
    y = g.op("Conv", ["x", g.w(4, 3, 3, 2)], dilations=[2, 3], auto_pad="SAME_UPPER", strides=[1, 2])
    m = g.model({"x": ([2, 3, 8, 9], T.FLOAT)}, [y], opset)
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    for nt in (1, 2):
        got = fastcnn.InferenceSession(m, num_threads=nt).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
