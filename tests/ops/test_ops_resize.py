"""Resize (10, 11, 13, 18, 19) and Upsample (7, 9): one-node models, fastcnn at 1 and 2
threads vs onnx.reference.ReferenceEvaluator (the oracle) and onnxruntime.

onnxruntime is skipped where it deviates from the specification (listed in
`ort_deviates`) and is the only oracle where the reference evaluator has no
implementation (Resize-10, Upsample linear, tf_half_pixel_for_nearest).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastcnn.errors import InvalidGraphError
from fastcnn.ops.resize import axis_table

from test_ops_elementwise import C, check, expect_error, one_node, rand, run_fastcnn

F32 = np.float32
SMALL = rand(1, 2, 5, 7)
BIG = rand(2, 16, 40, 40, seed=1)     # above the kernels' serial threshold
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
        "half_pixel_symmetric", "tf_crop_and_resize"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
ROI4 = np.array([0, 0, 0.1, 0.2, 1, 1, 0.8, 0.95], F32)


def f32(*v):
    return np.array(v, F32)


def i64(*v):
    return np.array(v, np.int64)


def ort_deviates(mode, ctm, scales, x_shape, antialias=0, nearest_mode=None):
    """Cases where onnxruntime is known to differ from the ONNX reference."""
    down = any(s < 1 for s in scales)
    if ctm == "align_corners" and down:
        return True        # the spec'd align_corners downsampling cases
    if ctm == "half_pixel_symmetric":
        return True
    if ctm == "tf_crop_and_resize":
        return True        # float32 roi arithmetic in onnxruntime moves integral coordinates
    if antialias:
        return True
    if mode == "cubic" and down:
        return True
    return False


def resize_inputs(x, roi=None, scales=None, sizes=None):
    return [x, None if roi is None else C(roi), None if scales is None else C(scales),
            None if sizes is None else C(sizes)]


SCALES = [(1, 1, 2, 2), (1, 1, 0.5, 0.6), (1, 1, 1.7, 0.8), (1, 1, 3, 3), (1, 1, 1, 2)]


@pytest.mark.parametrize("x", [SMALL, BIG], ids=["small", "big"])
@pytest.mark.parametrize("scales", SCALES, ids=[str(s) for s in SCALES])
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_scales(mode, ctm, scales, x):
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    roi = ROI4 if ctm == "tf_crop_and_resize" else None
    if roi is not None:
        attrs["extrapolation_value"] = -1.5
    check("Resize", resize_inputs(x, roi, f32(*scales)), attrs, 19,
          ort_check=not ort_deviates(mode, ctm, scales, x.shape), rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("nearest_mode", NEAREST)
@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("sizes", [(1, 2, 9, 15), (1, 2, 3, 4), (1, 2, 10, 7)])
def test_resize_nearest_modes(nearest_mode, ctm, sizes):
    roi = ROI4 if ctm == "tf_crop_and_resize" else None
    attrs = {"mode": "nearest", "coordinate_transformation_mode": ctm,
             "nearest_mode": nearest_mode}
    scales = [s / d for s, d in zip(sizes, SMALL.shape)]
    check("Resize", resize_inputs(SMALL, roi, None, i64(*sizes)), attrs, 19,
          ort_check=not ort_deviates("nearest", ctm, scales, SMALL.shape), rtol=1e-4,
          atol=1e-5)


@pytest.mark.parametrize("a,exclude", [(-0.75, 0), (-0.5, 1), (-0.5, 0), (-0.75, 1)])
@pytest.mark.parametrize("scales", [(1, 1, 2, 1.5), (1, 1, 0.6, 0.5)])
def test_resize_cubic_params(a, exclude, scales):
    check("Resize", resize_inputs(SMALL, None, f32(*scales)),
          {"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": exclude}, 19,
          ort_check=not ort_deviates("cubic", "half_pixel", scales, SMALL.shape), rtol=1e-4,
          atol=1e-5)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [(1, 1, 0.5, 0.4), (1, 1, 0.35, 1.5), (1, 1, 2, 2)])
@pytest.mark.parametrize("x", [rand(1, 3, 20, 23), rand(2, 8, 40, 50, seed=3)], ids=["s", "b"])
def test_resize_antialias(mode, scales, x):
    check("Resize", resize_inputs(x, None, f32(*scales)), {"mode": mode, "antialias": 1}, 18,
          ort_check=False, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("axes,sizes", [([2, 3], (9, 4)), ([3, 2], (4, 9)),
                                        ([3], (11,)), ([1, 3], (3, 4)),
                                        ([0, 1, 2, 3], (2, 3, 4, 5))])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_axes_sizes_policy(policy, axes, sizes, mode):
    check("Resize", resize_inputs(SMALL, None, None, i64(*sizes)),
          {"mode": mode, "axes": axes, "keep_aspect_ratio_policy": policy}, 19, ort_check=False,
          rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("ctm", ["half_pixel", "tf_crop_and_resize", "align_corners"])
def test_resize_axes_scales_roi(ctm):
    roi = f32(0.2, 0.1, 0.9, 1.0) if ctm == "tf_crop_and_resize" else None
    check("Resize", resize_inputs(SMALL, roi, f32(2.5, 0.7)),
          {"mode": "linear", "axes": [3, 1], "coordinate_transformation_mode": ctm}, 19,
          ort_check=False, rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("x,scales", [
    (rand(2, 3, 11), (1, 1, 2.5)),                  # 1-D
    (rand(1, 2, 4, 5, 6), (1, 1, 2, 1.5, 0.5)),     # trilinear
    (rand(2, 4, 6, 6), (1, 2, 1, 1)),               # the channel axis only (general passes)
    (rand(2, 4, 6, 6), (2, 1.5, 1, 2)),             # outer and inner axes
    (rand(3, 17), (2.0, 0.5)),                      # 2-D
    (rand(2, 24, 30, 30, seed=5), (1, 1, 1, 2)),    # the last axis only, big
    (rand(2, 24, 30, 30, seed=5), (1, 1, 2, 1)),    # rows only, big
], ids=["1d", "3d", "channel", "outer", "2d", "last_big", "rows_big"])
def test_resize_ranks(mode, x, scales):
    # onnxruntime resizes only the last two (or 3-D: three) axes with linear/cubic, and
    # cubic only in 2-D
    outer = any(s != 1 for s in scales[:-2]) or len(x.shape) < 4
    ort = not ort_deviates(mode, "half_pixel", scales, x.shape) and \
        (mode == "nearest" or not outer) and not (mode == "cubic" and len(x.shape) == 5)
    check("Resize", resize_inputs(x, None, f32(*scales)), {"mode": mode}, 13, ort_check=ort,
          rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("opset", [11, 13, 18, 19])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opsets_sizes_empty_scales(opset, mode):
    """11/13 need the scales input present (empty) when sizes are given."""
    inputs = [SMALL, C(np.zeros(0, F32)), C(np.zeros(0, F32)), C(i64(1, 2, 8, 14))]
    check("Resize", inputs, {"mode": mode}, opset, rtol=1e-4, atol=5e-5)


def test_resize_negative_axes():
    a = run_fastcnn(*one_node("Resize", resize_inputs(SMALL, None, f32(2.5, 0.7)),
                              {"mode": "linear", "axes": [-1, 1]}, 19))
    b = run_fastcnn(*one_node("Resize", resize_inputs(SMALL, None, f32(2.5, 0.7)),
                              {"mode": "linear", "axes": [3, 1]}, 19))
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("ctm", ["tf_half_pixel_for_nn", "tf_half_pixel_for_nearest"])
@pytest.mark.parametrize("opset", [11, 13])
def test_resize_tf_half_pixel_for_nearest(opset, ctm):
    """x = (o + 0.5)/s, rounded.  ONNX (and tf2onnx) spell the mode tf_half_pixel_for_nn;
    fastcnn once accepted only the misspelling tf_half_pixel_for_nearest and refused every
    tf2onnx nearest resize (onnxruntime agrees: tests/test_exporter_tf_paddle.py)."""
    m, feeds = one_node("Resize", resize_inputs(BIG, None, f32(1, 1, 2, 1.5)),
                        {"mode": "nearest", "coordinate_transformation_mode": ctm}, opset)
    for nt in (1, 2):
        got = run_fastcnn(m, feeds, nt)[0]
        iy = np.minimum(np.floor((np.arange(80) + 0.5) / 2 + 0.5 - 1e-9), 39).astype(int)
        sx = float(np.float32(1.5))
        xs = (np.arange(60) + 0.5) / sx
        ix = np.minimum(np.where(xs - np.floor(xs) > 0.5, np.ceil(xs), np.floor(xs)), 39)
        np.testing.assert_array_equal(got, BIG[:, :, iy][:, :, :, ix.astype(int)])


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.uint8, np.int8, np.int32])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_dtypes(dtype, mode):
    x = rand(1, 2, 6, 5, lo=-100, hi=200).astype(dtype) if dtype != np.uint8 else \
        rand(1, 2, 6, 5, lo=0, hi=255).astype(dtype)
    check("Resize", resize_inputs(x, None, f32(1, 1, 1.5, 2)), {"mode": mode}, 19,
          ort_check=False, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("scales", [(1, 1, 2, 2), (1, 1, 3, 2), (1, 1, 1.5, 2.5), (1, 1, 0.6, 0.5)])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("x", [SMALL, BIG], ids=["small", "big"])
def test_resize10_and_upsample(mode, scales, x):
    """Resize-10 and Upsample: onnxruntime is the oracle (the reference has neither)."""
    tol = dict(rtol=1e-4, atol=5e-5)
    check("Resize", [x, C(f32(*scales))], {"mode": mode}, 10, ref_check=False, **tol)
    if min(scales) >= 1:
        check("Upsample", [x, C(f32(*scales))], {"mode": mode}, 9, ref_check=False, **tol)
        check("Upsample", [x], {"mode": mode, "scales": [float(s) for s in scales]}, 7,
              ref_check=False, **tol)


def test_upsample_nearest_reference():
    check("Upsample", [SMALL, C(f32(1, 1, 2, 3))], {"mode": "nearest"}, 9)


# -- fast paths are taken ---------------------------------------------------------------------
@pytest.mark.parametrize("attrs,scales,kind", [
    ({"mode": "nearest"}, (1, 1, 2, 2), "nearest2d"),
    ({"mode": "nearest"}, (1, 1, 1, 3), "nearest2d"),
    ({"mode": "linear"}, (1, 1, 2, 2), "bilinear2d"),
    ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, (1, 1, 2, 2),
     "bilinear2d"),
    ({"mode": "cubic"}, (1, 1, 2, 2), "passes"),
    ({"mode": "linear"}, (1, 2, 1, 1), "passes"),
])
def test_resize_algorithm_choice(attrs, scales, kind):
    from fastcnn.ops.resize import Resize, _k
    if _k is None:
        pytest.skip("kernels not built")
    from fastcnn.ir.graph import Node
    from fastcnn.ops.base import TensorInfo
    node = Node("Resize", "r", ["x", "", "s"], ["y"], dict(attrs))
    op = Resize(node, 19)
    ins = [TensorInfo(BIG.shape, np.dtype(F32)), None, TensorInfo.of(f32(*scales))]
    outs = op.infer(ins)
    op.prepare(ins, outs)
    assert op.kind == kind


# -- kernels directly ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 12), n_out=st.integers(1, 30), outer=st.integers(1, 5),
       inner=st.integers(1, 6), mode=st.sampled_from(["nearest", "linear", "cubic"]),
       aa=st.booleans(), nt=st.sampled_from([1, 2]))
def test_resize_axis_kernel(n_in, n_out, outer, inner, mode, aa, nt):
    from fastcnn.ops.resize import _k
    if _k is None:
        pytest.skip("kernels not built")
    s = n_out / n_in
    idx, w, _ = axis_table(n_in, n_out, s, mode=mode, ctm="half_pixel", antialias=aa)
    x = rand(outer, n_in, inner, seed=n_in)
    want = (np.take(x.astype(np.float64), idx, axis=1) * w[None, :, :, None]).sum(axis=2)
    out = np.empty((outer, n_out, inner), F32)
    _k.resize_axis(x.ravel(), out.ravel(), outer, n_in, inner, n_out, idx,
                   np.ascontiguousarray(w, F32), None, 0.0, nt)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


# -- errors -----------------------------------------------------------------------------------
def test_resize_errors():
    # non-constant scales
    m, feeds = one_node("Resize", [SMALL, None, f32(1, 1, 2, 2)], {"mode": "linear"}, 19)
    with pytest.raises(InvalidGraphError, match="'resize_node'.*constant"):
        run_fastcnn(m, feeds)
    # wrong number of scales / sizes
    expect_error("Resize", resize_inputs(SMALL, None, f32(2, 2)), {"mode": "linear"}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, None, i64(1, 2, 3)), {}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)), {"axes": [2, 3]}, 19)
    # wrong rank of scales / sizes (2-D), wrong dtypes
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2).reshape(2, 2)), {}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, None, i64(1, 2, 10, 14).reshape(2, 2)), {},
                 19)
    expect_error("Resize", resize_inputs(SMALL, None, None, f32(1, 2, 10, 14)), {}, 19)
    # both and neither
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2), i64(1, 2, 10, 14)), {}, 19)
    expect_error("Resize", resize_inputs(SMALL), {}, 19)
    # negative sizes, non-positive scales
    expect_error("Resize", resize_inputs(SMALL, None, None, i64(1, 2, -3, 14)), {}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 0, 2)), {}, 19)
    # bad attributes
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)), {"mode": "area"}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)),
                 {"coordinate_transformation_mode": "bogus"}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)), {"axes": [2, 2]}, 19)
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)), {"axes": [0, 1, 2, 7]}, 19)
    # tf_crop_and_resize without roi
    expect_error("Resize", resize_inputs(SMALL, None, f32(1, 1, 2, 2)),
                 {"coordinate_transformation_mode": "tf_crop_and_resize"}, 19)
    expect_error("Upsample", [SMALL], {"mode": "nearest"}, 7)


# -- channel-blocked layout between convolutions ------------------------------------------------
def _conv_resize_conv(mode, scales, attrs, roi=None, C=20):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((C, 16, 3, 3)) * 0.2).astype(F32)
    w2 = (rng.standard_normal((16, C, 3, 3)) * 0.2).astype(F32)
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(f32(*scales), "s")]
    if roi is not None:
        inits.append(numpy_helper.from_array(f32(*roi), "roi"))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["a", "roi" if roi is not None else "", "s"], ["b"],
                              name="resize_node", mode=mode, **attrs),
             helper.make_node("Conv", ["b", "w2"], ["y"], pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [2, 16, 12, 10])],
                          [helper.make_tensor_value_info("y", 1, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=8)


@pytest.mark.parametrize("mode,scales,attrs,roi", [
    ("linear", (1, 1, 2, 2), {}, None),
    ("linear", (1, 1, 2, 2), {"coordinate_transformation_mode": "align_corners"}, None),
    ("nearest", (1, 1, 2, 3), {}, None),
    ("cubic", (1, 1, 1.5, 0.7), {"antialias": 1}, None),
    ("linear", (1, 1, 2, 2), {"coordinate_transformation_mode": "tf_crop_and_resize",
                              "extrapolation_value": 2.0}, (0, 0, .1, .2, 1, 1, .9, .8)),
    ("nearest", (2, 1, 1, 2), {}, None),
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_resize_between_convs_stays_blocked(mode, scales, attrs, roi, n_threads):
    import fastcnn
    from onnx.reference import ReferenceEvaluator
    from fastcnn.runtime.layout import BLOCK
    m = _conv_resize_conv(mode, scales, attrs, roi)
    x = rand(2, 16, 12, 10)
    sess = fastcnn.InferenceSession(m, num_threads=n_threads)
    got = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ReferenceEvaluator(m).run(None, {"x": x})[0], rtol=1e-4,
                               atol=1e-4)
    steps = [type(st.op).__name__ for st in next(iter(sess._plans.values())).steps]
    k = steps.index("Resize")
    if BLOCK and steps[k - 1] == "Conv":
        assert steps[k + 1] == "Conv", steps         # no reorder around the Resize


# -- property test: random shapes and attributes vs the reference --------------------------------
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_resize_random_vs_reference(data):
    from onnx.reference import ReferenceEvaluator
    rank = data.draw(st.integers(1, 4), label="rank")
    shape = tuple(data.draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank),
                            label="shape"))
    mode = data.draw(st.sampled_from(["nearest", "linear", "cubic"]), label="mode")
    ctm = data.draw(st.sampled_from(CTMS), label="ctm")
    axes = data.draw(st.one_of(st.none(), st.permutations(range(rank)).flatmap(
        lambda p: st.integers(1, rank).map(lambda k: sorted(p[:k])))), label="axes")
    n = rank if axes is None else len(axes)
    use_sizes = data.draw(st.booleans(), label="use_sizes")
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    if axes is not None:
        attrs["axes"] = axes
    if mode == "nearest":
        attrs["nearest_mode"] = data.draw(st.sampled_from(NEAREST), label="nearest_mode")
    else:
        attrs["antialias"] = data.draw(st.sampled_from([0, 1]), label="antialias")
    if mode == "cubic":
        attrs["exclude_outside"] = data.draw(st.sampled_from([0, 1]), label="exclude")
    dims = [shape[a] for a in (axes if axes is not None else range(rank))]
    if use_sizes:
        sizes = i64(*data.draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)))
        scales = None
        if axes is not None:
            attrs["keep_aspect_ratio_policy"] = data.draw(
                st.sampled_from(["stretch", "not_larger", "not_smaller"]), label="policy")
    else:
        sizes = None
        scales = f32(*data.draw(st.lists(st.sampled_from([0.5, 0.6, 1.0, 1.5, 2.0, 2.5, 3.0]),
                                         min_size=n, max_size=n), label="scales"))
        if any(int(float(s) * d) == 0 for s, d in zip(scales, dims)):
            return
    roi = None
    if ctm == "tf_crop_and_resize":
        lo = data.draw(st.lists(st.sampled_from([0.0, 0.1, 0.25]), min_size=n, max_size=n))
        hi = data.draw(st.lists(st.sampled_from([0.8, 1.0, 1.2]), min_size=n, max_size=n))
        roi = f32(*(lo + hi))
        attrs["extrapolation_value"] = -2.0
    x = rand(*shape, seed=sum(shape))
    model, feeds = one_node("Resize", resize_inputs(x, roi, scales, sizes), attrs, 19)
    want = ReferenceEvaluator(model).run(None, feeds)[0]
    for nt in (1, 2):
        got = run_fastcnn(model, feeds, nt)[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-5, err_msg=str(attrs))
