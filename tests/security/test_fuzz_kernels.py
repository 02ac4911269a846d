"""Property-based fuzzing of the fast kernels: random *valid* Conv / ConvTranspose /
MaxPool / AveragePool shapes and attributes (1D/2D/3D, strides, pads, dilations, groups,
depthwise, auto_pad, ceil_mode, count_include_pad, bias, batch, 1 or 2 threads) through
`fastcnn.InferenceSession`, against the numpy oracle in `fastcnn.reference`.

The channel counts are drawn so that the channel-blocked (NCHWc, blocks of 8) direct,
depthwise and pointwise paths are all reached, with remainders.  Each test stays within
a few seconds (`max_examples`), `deadline=None` because plan times vary on a busy CI box.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import fastcnn
from fastcnn import reference as R

F = TensorProto.FLOAT
OPSET = 19
SETTINGS = dict(deadline=None, derandomize=True, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
SPATIAL_MAX = {1: 24, 2: 11, 3: 6}
KERNEL_MAX = {1: 5, 2: 4, 3: 3}


def one_node_model(op, x_shape, attrs, w=None, b=None):
    ins, inits = ["X"], []
    if w is not None:
        ins.append("W")
        inits.append(numpy_helper.from_array(w, "W"))
    if b is not None:
        ins.append("B")
        inits.append(numpy_helper.from_array(b, "B"))
    node = helper.make_node(op, ins, ["Y"], name="n0", **attrs)
    g = helper.make_graph([node], "fuzz", [helper.make_tensor_value_info("X", F, list(x_shape))],
                          [helper.make_tensor_value_info("Y", F, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)


def run(model, x, num_threads):
    return fastcnn.InferenceSession(model, num_threads=num_threads).run(None, {"X": x})[0]


def same_pads(in_sp, k, s, d, mode):
    """Explicit pads for auto_pad SAME_UPPER/SAME_LOWER (ONNX: out = ceil(in / s))."""
    begin, end = [], []
    for i, n in enumerate(in_sp):
        out = -(-n // s[i])
        total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - n)
        small = total // 2
        big = total - small
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return begin + end


@st.composite
def window(draw, nd, pads_below_kernel=False):
    k = [draw(st.integers(1, KERNEL_MAX[nd])) for _ in range(nd)]
    s = [draw(st.integers(1, 3)) for _ in range(nd)]
    d = [draw(st.integers(1, 3 if nd < 3 else 2)) for _ in range(nd)]
    if pads_below_kernel:
        p = [draw(st.integers(0, k[i % nd] - 1)) for i in range(2 * nd)]
    else:
        p = [draw(st.integers(0, 3)) for _ in range(2 * nd)]
    sp = [draw(st.integers(1, SPATIAL_MAX[nd])) for _ in range(nd)]
    return k, s, d, p, sp


@st.composite
def channels(draw):
    """(group, C/group, M/group): dense, grouped, depthwise, NCHWc multiples and remainders."""
    kind = draw(st.sampled_from(["dense", "dense", "grouped", "depthwise"]))
    if kind == "dense":
        return 1, draw(st.sampled_from([1, 2, 3, 4, 8, 9, 16])), \
            draw(st.sampled_from([1, 3, 4, 8, 12, 16, 17]))
    if kind == "grouped":
        return draw(st.integers(2, 4)), draw(st.sampled_from([1, 2, 3, 8])), \
            draw(st.sampled_from([1, 2, 8]))
    return draw(st.sampled_from([3, 8, 16, 24])), 1, draw(st.sampled_from([1, 1, 2]))


def tol(fan_in):
    return dict(rtol=2e-4, atol=2e-4 * max(1.0, math.sqrt(fan_in) / 4))


@settings(max_examples=120, **SETTINGS)
@given(nd=st.integers(1, 3), data=st.data())
def test_conv_matches_reference(nd, data):
    k, s, d, p, sp = data.draw(window(nd))
    g, cg, mg = data.draw(channels())
    n = data.draw(st.integers(1, 2))
    auto_pad = data.draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER",
                                          "VALID"]))
    bias = data.draw(st.booleans())
    threads = data.draw(st.sampled_from([1, 2]))
    attrs = dict(kernel_shape=k, strides=s, dilations=d, group=g)
    if auto_pad == "NOTSET":
        attrs["pads"] = p
        pads = p
    else:
        attrs["auto_pad"] = auto_pad
        pads = [0] * (2 * nd) if auto_pad == "VALID" else same_pads(sp, k, s, d, auto_pad)
    assume(all(sp[i] + pads[i] + pads[nd + i] >= (k[i] - 1) * d[i] + 1 for i in range(nd)))
    rng = np.random.default_rng(len(k) * 1000 + sum(sp))
    x = rng.standard_normal((n, g * cg, *sp)).astype(np.float32)
    w = rng.standard_normal((g * mg, cg, *k)).astype(np.float32)
    b = rng.standard_normal(g * mg).astype(np.float32) if bias else None
    y = run(one_node_model("Conv", x.shape, attrs, w, b), x, threads)
    r = R.conv(x, w, b, s, pads, d, g)
    assert y.shape == r.shape
    np.testing.assert_allclose(y, r, **tol(cg * math.prod(k)))


@settings(max_examples=100, **SETTINGS)
@given(nd=st.integers(1, 3), data=st.data())
def test_conv_transpose_matches_reference(nd, data):
    k, s, d, p, sp = data.draw(window(nd, pads_below_kernel=True))
    g, cg, mg = data.draw(channels())
    n = data.draw(st.integers(1, 2))
    op = [data.draw(st.integers(0, max(s[i], d[i]) - 1)) for i in range(nd)]
    bias = data.draw(st.booleans())
    threads = data.draw(st.sampled_from([1, 2]))
    out = [s[i] * (sp[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1 - p[i] - p[nd + i]
           for i in range(nd)]
    assume(all(o > 0 for o in out))
    rng = np.random.default_rng(7 + sum(sp))
    x = rng.standard_normal((n, g * cg, *sp)).astype(np.float32)
    w = rng.standard_normal((g * cg, mg, *k)).astype(np.float32)
    b = rng.standard_normal(g * mg).astype(np.float32) if bias else None
    attrs = dict(kernel_shape=k, strides=s, dilations=d, group=g, pads=p)
    if any(op):
        attrs["output_padding"] = op
    y = run(one_node_model("ConvTranspose", x.shape, attrs, w, b), x, threads)
    r = R.conv_transpose(x, w, b, s, p, d, g, op)
    assert y.shape == r.shape
    np.testing.assert_allclose(y, r, **tol(cg * math.prod(k)))


@st.composite
def pool_case(draw):
    nd = draw(st.integers(1, 3))
    k, s, d, p, sp = draw(window(nd, pads_below_kernel=True))
    c = draw(st.sampled_from([1, 3, 8, 11, 16]))
    n = draw(st.integers(1, 2))
    ceil = draw(st.integers(0, 1))
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER",
                                     "VALID"]))
    if auto_pad != "NOTSET":
        ceil = 0
        p = [0] * (2 * nd) if auto_pad == "VALID" else same_pads(sp, k, s, d, auto_pad)
    assume(all(sp[i] + p[i] + p[nd + i] >= (k[i] - 1) * d[i] + 1 for i in range(nd)))
    assume(all(p[i] < k[i] and p[nd + i] < k[i] for i in range(nd)))
    return nd, k, s, d, p, sp, c, n, ceil, auto_pad, draw(st.sampled_from([1, 2]))


def _pool_attrs(k, s, d, p, ceil, auto_pad):
    attrs = dict(kernel_shape=k, strides=s, dilations=d, ceil_mode=ceil)
    if auto_pad == "NOTSET":
        attrs["pads"] = p
    else:
        attrs["auto_pad"] = auto_pad
    return attrs


@settings(max_examples=120, **SETTINGS)
@given(case=pool_case())
def test_max_pool_matches_reference(case):
    nd, k, s, d, p, sp, c, n, ceil, auto_pad, threads = case
    x = np.random.default_rng(sum(sp)).standard_normal((n, c, *sp)).astype(np.float32)
    y = run(one_node_model("MaxPool", x.shape, _pool_attrs(k, s, d, p, ceil, auto_pad)), x,
            threads)
    r = R.max_pool(x, k, s, p, d, bool(ceil))
    assert y.shape == r.shape
    np.testing.assert_array_equal(y, r)


@settings(max_examples=120, **SETTINGS)
@given(case=pool_case(), count_include_pad=st.integers(0, 1))
def test_average_pool_matches_reference(case, count_include_pad):
    nd, k, s, d, p, sp, c, n, ceil, auto_pad, threads = case
    x = np.random.default_rng(sum(sp)).standard_normal((n, c, *sp)).astype(np.float32)
    attrs = _pool_attrs(k, s, d, p, ceil, auto_pad)
    attrs["count_include_pad"] = count_include_pad
    y = run(one_node_model("AveragePool", x.shape, attrs), x, threads)
    r = R.average_pool(x, k, s, p, d, bool(ceil), count_include_pad)
    assert y.shape == r.shape
    np.testing.assert_allclose(y, r, rtol=1e-5, atol=1e-5)
