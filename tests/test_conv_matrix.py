"""Convolution as a matrix: fastcnn.reference.conv_matrix as an independent oracle.

conv(x)[0].ravel() == T @ x[0].ravel(), and ConvTranspose(x) == Tᵀ @ x where T
is the matrix of the Conv that reads ConvTranspose's weight [C, M/g, k...] as
a Conv from the (larger) output space [M, O...] back to the input space [C, D...].
"""
import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import fastcnn
from fastcnn.ops.registry import lookup
from fastcnn.reference import conv_matrix, conv_transpose_matrix
from fastcnn.reference.matrix import conv_transpose_output_shape

RNG = np.random.default_rng(7)


def _model(op, x_shape, w, dtype=TensorProto.FLOAT, opset=17, **attrs):
    node = helper.make_node(op, ["x", "w"], ["y"], **attrs)
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", dtype, list(x_shape))],
        [helper.make_tensor_value_info("y", dtype, None)],
        [onnx.numpy_helper.from_array(w, "w")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _reference(op, x, w, **attrs):
    dt = TensorProto.DOUBLE if x.dtype == np.float64 else TensorProto.FLOAT
    return ReferenceEvaluator(_model(op, x.shape, w, dt, **attrs)).run(None, {"x": x})[0]


def _fastcnn(op, x, w, **attrs):
    if lookup(op, 17) is None:
        pytest.skip(f"{op} is not registered in fastcnn yet")
    sess = fastcnn.InferenceSession(_model(op, x.shape, w, **attrs).SerializeToString())
    return sess.run(None, {"x": x})[0]


CONV_CASES = [
    # (input (1, C, D...), weight shape [M, C/g, k...], attrs)
    ((1, 2, 9), (3, 2, 3), dict(strides=[2], pads=[1, 0], dilations=[1], group=1)),
    ((1, 4, 10), (4, 1, 2), dict(strides=[1], pads=[1, 1], dilations=[3], group=4)),
    ((1, 3, 5, 5), (2, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1], group=1)),
    ((1, 4, 7, 6), (6, 2, 3, 2), dict(strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2], group=2)),
    ((1, 2, 6, 7), (4, 2, 2, 3), dict(strides=[3, 2], pads=[0, 2, 1, 0], dilations=[2, 1], group=1)),
    ((1, 2, 4, 5, 4), (2, 1, 2, 3, 2), dict(strides=[1, 2, 1], pads=[1, 0, 1, 0, 1, 1],
                                            dilations=[1, 1, 2], group=2)),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_conv_matrix_matches_reference_evaluator(x_shape, w_shape, attrs):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal(w_shape)
    y = _reference("Conv", x, w, **attrs)
    T = conv_matrix(w, x_shape, **attrs)
    assert T.shape == (y[0].size, x[0].size)
    np.testing.assert_allclose(T @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_fastcnn_conv_matches_matrix(x_shape, w_shape, attrs):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal(w_shape).astype(np.float32)
    y = _fastcnn("Conv", x, w, **attrs)
    T = conv_matrix(w.astype(np.float64), x_shape, **attrs)
    np.testing.assert_allclose(y.ravel(), T @ x.astype(np.float64).ravel(), rtol=1e-4, atol=1e-4)


def test_doubly_block_toeplitz_structure():
    """One channel, 2D, stride 1: T is block Toeplitz with Toeplitz blocks."""
    w = RNG.standard_normal((1, 1, 2, 3))
    T = conv_matrix(w, (1, 4, 5))                  # out 3x3, in 4x5
    blocks = T.reshape(3, 3, 4, 5)                 # [oh, ow, ih, iw]
    for oh in range(3):
        for ih in range(4):
            B = blocks[oh, :, ih, :]
            np.testing.assert_array_equal(B, blocks[0, :, ih - oh, :] if 0 <= ih - oh < 4
                                          else np.zeros_like(B))
            for ow in range(1, 3):                 # Toeplitz inside each block
                np.testing.assert_array_equal(B[ow, 1:], B[ow - 1, :-1])


CT_CASES = [
    # (input (1, C, D...), weight [C, M/g, k...], attrs)
    ((1, 2, 5), (2, 3, 3), dict(strides=[2], pads=[1, 1])),
    ((1, 2, 4), (2, 1, 4), dict(strides=[2], pads=[1, 1], output_padding=[1])),
    ((1, 3, 3, 4), (3, 2, 4, 4), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 3, 3, 4), (3, 2, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    ((1, 2, 3, 5), (2, 2, 3, 4), dict(strides=[2, 3], pads=[1, 0, 0, 2], dilations=[2, 1],
                                      output_padding=[1, 2])),
    ((1, 2, 2, 3, 2), (2, 1, 2, 2, 3), dict(strides=[2, 1, 2], pads=[0, 1, 1, 0, 0, 1])),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CT_CASES)
def test_conv_transpose_is_the_adjoint(x_shape, w_shape, attrs):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal(w_shape)
    y = _reference("ConvTranspose", x, w, **attrs)
    nd = len(x_shape) - 2
    O = conv_transpose_output_shape(w_shape[2:], x_shape[2:], attrs["strides"], attrs["pads"],
                                    attrs.get("dilations", [1] * nd),
                                    attrs.get("output_padding", [0] * nd))
    assert tuple(y.shape[2:]) == O
    # W [C, M/g, k...] read as a Conv weight: output space (M, O...) -> input space (C, D...)
    conv_attrs = {k: v for k, v in attrs.items() if k != "output_padding"}
    T = conv_matrix(w, (w_shape[1],) + O, **conv_attrs)
    assert T.shape == (x[0].size, y[0].size)
    np.testing.assert_allclose(T.T @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    A = conv_transpose_matrix(w, x_shape, **attrs)
    np.testing.assert_array_equal(A, T.T)


def test_conv_transpose_group_and_output_shape_vs_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    for attrs in (dict(strides=[2, 3], pads=[1, 0, 0, 2], group=2, output_padding=[1, 2]),
                  dict(strides=[2, 2], output_shape=[8, 7], auto_pad="SAME_UPPER"),
                  dict(strides=[2, 2], output_shape=[8, 7], auto_pad="SAME_LOWER"),
                  dict(strides=[2, 2], output_shape=[8, 7])):
        g = attrs.get("group", 1)
        x = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
        w = RNG.standard_normal((4, 3, 3, 4)).astype(np.float32)
        m = _model("ConvTranspose", x.shape, w, **attrs)
        y = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
        A = conv_transpose_matrix(w.astype(np.float64), x.shape, strides=attrs["strides"],
                                  pads=attrs.get("pads"), group=g,
                                  output_padding=attrs.get("output_padding"),
                                  output_shape=attrs.get("output_shape"),
                                  auto_pad=attrs.get("auto_pad", "NOTSET"))
        assert A.shape[0] == y.size
        np.testing.assert_allclose(A @ x.astype(np.float64).ravel(), y.ravel(),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,w_shape,attrs", CT_CASES)
def test_fastcnn_conv_transpose_matches_matrix(x_shape, w_shape, attrs):
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal(w_shape).astype(np.float32)
    y = _fastcnn("ConvTranspose", x, w, **attrs)
    A = conv_transpose_matrix(w.astype(np.float64), x_shape, **attrs)
    np.testing.assert_allclose(y.ravel(), A @ x.astype(np.float64).ravel(), rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(nd=st.integers(1, 3), c=st.integers(1, 3), m=st.integers(1, 3), group=st.sampled_from([1, 2]),
       data=st.data())
def test_conv_matrix_property(nd, c, m, group, data):
    C, M = c * group, m * group
    k = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    d = [data.draw(st.integers(1, 2)) for _ in range(nd)]
    s = [data.draw(st.integers(1, 3)) for _ in range(nd)]
    p = [data.draw(st.integers(0, 2)) for _ in range(2 * nd)]
    D = [max(data.draw(st.integers(1, 6)), d[a] * (k[a] - 1) + 1 - p[a] - p[a + nd])
         for a in range(nd)]
    x = RNG.standard_normal((1, C) + tuple(D))
    w = RNG.standard_normal((M, c) + tuple(k))
    attrs = dict(strides=s, pads=p, dilations=d, group=group)
    y = _reference("Conv", x, w, **attrs)
    np.testing.assert_allclose(conv_matrix(w, x.shape, **attrs) @ x.ravel(), y.ravel(),
                               rtol=1e-10, atol=1e-10)


def test_conv_matrix_errors():
    with pytest.raises(ValueError):
        conv_matrix(np.ones((2, 3, 3, 3)), (2, 5, 5))       # channel mismatch
    with pytest.raises(ValueError):
        conv_matrix(np.ones((2, 1, 3, 3)), (2, 1, 5, 5))    # batch 2
