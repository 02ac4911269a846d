"""fastcnn.reference.conv: the oracle checked against the ONNX reference, onnxruntime and algebra."""
import itertools

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import fastcnn.reference as R

from conftest import F, I64, make_model


def one_node(op, inputs, attrs, opset=19, n_out=1):
    """Run one node in ReferenceEvaluator and onnxruntime; inputs: dict name -> array."""
    outs = ["Y", "I"][:n_out]
    node = helper.make_node(op, list(inputs), outs, **attrs)
    vo = [("Y", F, None), ("I", I64, None)][:n_out]
    m = make_model([node], [(k, F, list(v.shape)) for k, v in inputs.items()], vo, opset=opset)
    ref = ReferenceEvaluator(m).run(None, inputs)
    o = ort.InferenceSession(m.SerializeToString(),
                             providers=["CPUExecutionProvider"]).run(None, inputs)
    return ref, o


def test_all_exported():
    for name in ("conv", "conv_transpose", "max_pool", "average_pool", "lp_pool",
                 "pool_output_shape"):
        assert callable(getattr(R, name))


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,group", [
    ((7,), (3,), (2,), (1, 0), (1,), 1),
    ((8, 7), (3, 2), (1, 2), (1, 0, 2, 1), (2, 1), 2),
    ((5, 6, 4), (2, 3, 2), (2, 1, 1), (0, 1, 1, 1, 0, 0), (1, 1, 2), 3),
])
def test_conv_matches_onnx(spatial, kernel, strides, pads, dil, group):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3 * group, *spatial)).astype(np.float32)
    w = rng.standard_normal((2 * group, 3, *kernel)).astype(np.float32)
    b = rng.standard_normal(2 * group).astype(np.float32)
    y = R.conv(x, w, b, strides, pads, dil, group)
    (ref,), (o,) = one_node("Conv", {"X": x, "W": w, "B": b},
                            dict(strides=list(strides), pads=list(pads), dilations=list(dil),
                                 group=group))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, o, rtol=1e-4, atol=1e-4)


def test_conv_by_hand():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 2, 2), np.float32)
    y = R.conv(x, w, strides=[2, 2])
    np.testing.assert_array_equal(y[0, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                            [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,out_pad", [
    ((4,), (3,), (2,), (1, 0), (1,), (1,)),
    ((3, 4), (3, 2), (2, 3), (1, 0, 0, 1), (1, 2), (1, 0)),
    ((3, 2, 3), (2, 2, 3), (1, 2, 2), (0, 0, 1, 0, 1, 0), (2, 1, 1), (0, 1, 1)),
])
def test_conv_transpose_matches_onnx(spatial, kernel, strides, pads, dil, out_pad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, *spatial)).astype(np.float32)
    w = rng.standard_normal((3, 2, *kernel)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    y = R.conv_transpose(x, w, b, strides, pads, dil, 1, out_pad)
    (ref,), (o,) = one_node("ConvTranspose", {"X": x, "W": w, "B": b},
                            dict(strides=list(strides), pads=list(pads), dilations=list(dil),
                                 output_padding=list(out_pad)))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, o, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_is_adjoint_of_conv(nd, group):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> for every stride/pad/dilation."""
    rng = np.random.default_rng(nd * 10 + group)
    for _ in range(4):
        kernel = rng.integers(1, 4, nd)
        strides = rng.integers(1, 4, nd)
        dil = rng.integers(1, 3, nd)
        pads = rng.integers(0, 3, 2 * nd)
        spatial = [int((kernel[i] - 1) * dil[i] + 1 + rng.integers(0, 6)) for i in range(nd)]
        x = rng.standard_normal((2, 2 * group, *spatial))
        w = rng.standard_normal((3 * group, 2, *kernel))
        y = R.conv(x, w, None, strides, pads, dil, group)
        g = rng.standard_normal(y.shape)
        # output_padding restores the input length the floor in conv's output size dropped
        out_pad = [spatial[i] + pads[i] + pads[nd + i] - ((kernel[i] - 1) * dil[i] + 1)
                   - (y.shape[2 + i] - 1) * strides[i] for i in range(nd)]
        xt = R.conv_transpose(g, w, None, strides, pads, dil, group, out_pad)
        assert xt.shape == x.shape
        np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, xt), rtol=1e-10)


def test_pool_output_shape_ceil_drops_window_in_right_pad():
    # in=4, k=2, s=2, pads 0/1: ceil gives 3 windows but the third starts at 4 = in + pad_begin
    assert R.pool_output_shape([4], [2], [2], [0, 1], None, True) == [2]
    assert R.pool_output_shape([5], [2], [2], [0, 0], None, True) == [3]
    assert R.pool_output_shape([5], [2], [2], [0, 0], None, False) == [2]


POOL_CASES = [
    ((9,), (3,), (2,), (1, 1), (1,), 0),
    ((7, 8), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    ((8, 9), (2, 3), (2, 2), (0, 1, 1, 0), (2, 1), 1),
    ((5, 4, 6), (2, 2, 3), (1, 2, 2), (1, 0, 1, 0, 1, 1), (1, 1, 1), 0),
]


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,ceil", POOL_CASES)
def test_max_pool_matches_onnx(spatial, kernel, strides, pads, dil, ceil):
    x = np.random.default_rng(2).standard_normal((2, 3, *spatial)).astype(np.float32)
    y, i = R.max_pool(x, kernel, strides, pads, dil, ceil, 0, True)
    (ry, ri), (oy, oi) = one_node("MaxPool", {"X": x},
                                  dict(kernel_shape=list(kernel), strides=list(strides),
                                       pads=list(pads), dilations=list(dil), ceil_mode=ceil),
                                  opset=12, n_out=2)
    for a, b in ((y, ry), (i, ri), (y, oy), (i, oi)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spatial,kernel,strides,pads,dil,ceil", POOL_CASES)
@pytest.mark.parametrize("cip", [0, 1])
def test_average_pool_matches_onnx(spatial, kernel, strides, pads, dil, ceil, cip):
    x = np.random.default_rng(3).standard_normal((2, 3, *spatial)).astype(np.float32)
    y = R.average_pool(x, kernel, strides, pads, dil, ceil, cip)
    (ref,), (o,) = one_node("AveragePool", {"X": x},
                            dict(kernel_shape=list(kernel), strides=list(strides),
                                 pads=list(pads), dilations=list(dil), ceil_mode=ceil,
                                 count_include_pad=cip))
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    if all(d == 1 for d in dil):
        np.testing.assert_allclose(y, o, rtol=1e-5, atol=1e-6)


def test_average_pool_count_include_pad_ignores_ceil_cells():
    x = np.ones((1, 1, 5), np.float32)
    # k=3, s=2, pads 1/1, ceil: windows [-1..1], [1..3], [3..5]; cell 5 is pad (counted),
    # nothing past in + pad_end is reached here
    y = R.average_pool(x, [3], [2], [1, 1], None, True, 1)
    np.testing.assert_allclose(y[0, 0], [2 / 3, 1, 2 / 3])
    # in=6, k=3, s=2, pads 0/0, ceil: last window [4..6] reaches cell 6, which never counts
    y = R.average_pool(np.ones((1, 1, 6), np.float32), [3], [2], [0, 0], None, True, 1)
    np.testing.assert_allclose(y[0, 0], [1, 1, 1])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool_definition(p):
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 6)).astype(np.float32)
    y = R.lp_pool(x, [3, 2], [2, 2], [1, 0, 1, 1], None, False, p)
    (ref,), (o,) = one_node("LpPool", {"X": x}, dict(kernel_shape=[3, 2], strides=[2, 2],
                                                     pads=[1, 0, 1, 1], p=p), opset=18)
    np.testing.assert_allclose(y, o, rtol=1e-5, atol=1e-5)      # onnxruntime sums real taps
    # without padding the ONNX reference agrees too (with padding it rescales avg by k)
    y0 = R.lp_pool(x, [3, 2], [2, 2], None, None, False, p)
    (ref0,), _ = one_node("LpPool", {"X": x}, dict(kernel_shape=[3, 2], strides=[2, 2], p=p),
                          opset=18)
    np.testing.assert_allclose(y0, ref0, rtol=1e-5, atol=1e-5)


def test_max_pool_storage_order_and_empty_windows():
    x = np.zeros((1, 1, 3, 4), np.float32)
    x[0, 0, 1, 3] = 1
    for order, flat in ((0, 1 * 4 + 3), (1, 1 + 3 * 3)):   # row- / column-major (h=1, w=3)
        y, i = R.max_pool(x, [3, 4], None, None, None, False, order, True)
        assert y.item() == 1 and i.item() == flat
    y, i = R.max_pool(np.ones((1, 1, 1), np.float32), [2], None, [1, 1], [2], False, 0, True)
    assert y.item() == np.finfo(np.float32).min and i.item() == -1
