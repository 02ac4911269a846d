"""Depthwise / grouped NCHWc: the tile paths (interior, edge, all-edge rows), the native
executor calls, and the groupings make_blocked now sends to the grouped kernel, through
whole sessions against onnx's ReferenceEvaluator."""
import numpy as np
import pytest

dw = pytest.importorskip("fastcnn._kernels.dwconv_nchwc")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import fastcnn  # noqa: E402
from fastcnn._kernels.executor import Program  # noqa: E402

from test_dwconv_kernels import (ACT_CLIP, ACT_HSWISH, ACT_LEAKY, ACT_NONE, ACT_PRELU,  # noqa: E402
                                  ACT_RELU, ACT_SILU, ISAS, from_blocked, run_case, to_blocked,
                                  conv_ref, out_size)


@pytest.fixture(params=ISAS)
def isa(request):
    prev = dw.set_isa(request.param)
    yield request.param
    dw.set_isa(prev)


# ------------------------------------------------------------ tile paths
@pytest.mark.parametrize("i,k,p,d", [
    (7, 3, 1, 1),     # MobileNet 7x7: 1 edge + 5 interior + 1 edge per row
    (5, 3, 1, 1),     # interior of 3 < 4: rows run as edge tiles only
    (3, 5, 2, 1),     # every pixel is an edge pixel
    (14, 5, 2, 1),
    (28, 7, 3, 1),
    (33, 3, 6, 6),    # DeepLab atrous: 6 edge pixels per side
    (20, 3, 9, 9),    # pad > half the row
    (40, 3, 1, 1),    # 16-pixel tiles (AVX-512VL build) + remainder
])
@pytest.mark.parametrize("s", [1, 2])
def test_dw_edge_and_interior_tiles(isa, i, k, p, d, s):
    rng = np.random.default_rng(i * 7 + k + p + s)
    if (k - 1) * d + 1 > i + 2 * p:
        pytest.skip("kernel larger than padded input")
    run_case(rng, 1, 20, 20, 20, (1, i, i), (1, k, k), (1, s, s), (0, p, p), (0, p, p),
             (1, d, d), act=ACT_RELU, residual=True)


@pytest.mark.parametrize("pads", [((0, 2), (3, 0)), ((2, 0), (0, 3)), ((1, 0), (2, 1))])
@pytest.mark.parametrize("s", [1, 2])
def test_dw_asymmetric_pads(isa, pads, s):
    rng = np.random.default_rng(s)
    (pt, pl), (pb, pr) = pads
    run_case(rng, 2, 11, 11, 11, (1, 12, 17), (1, 3, 5), (1, s, s), (0, pt, pl), (0, pb, pr),
             (1, 1, 1), act=ACT_CLIP)


@pytest.mark.parametrize("act", [ACT_NONE, ACT_LEAKY, ACT_HSWISH, ACT_PRELU, ACT_SILU])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dw_epilogue_edge_tiles(isa, act, n_threads):
    """Every epilogue kind on edge tiles (7x7 planes) and 16-pixel tiles, masked lanes."""
    rng = np.random.default_rng(act)
    run_case(rng, 2, 13, 13, 13, (1, 7, 7), (1, 3, 3), (1, 1, 1), (0, 1, 1), (0, 1, 1),
             (1, 1, 1), act=act, residual=True, n_threads=n_threads)
    run_case(rng, 1, 13, 13, 13, (1, 9, 37), (1, 3, 3), (1, 1, 1), (0, 1, 1), (0, 1, 1),
             (1, 1, 1), act=act, n_threads=n_threads)


def test_dw_1d_long_dilated_and_3d(isa):
    rng = np.random.default_rng(9)
    run_case(rng, 1, 16, 16, 16, (1, 1, 700), (1, 1, 3), (1, 1, 1), (0, 0, 64), (0, 0, 64),
             (1, 1, 64), act=ACT_RELU, n_threads=2)
    run_case(rng, 1, 8, 8, 8, (5, 9, 9), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 0, 1),
             (1, 1, 2), residual=True, n_threads=2)


# ------------------------------------------------------------ grouped: every grouping
@pytest.mark.parametrize("C,M,group", [
    (96, 96, 8),     # 12 in -> 12 out per group
    (96, 16, 4),     # 24 in -> 4 out
    (16, 128, 8),    # 2 in -> 16 out
    (36, 36, 3),     # 12/12, C not a multiple of 8
    (30, 45, 15),    # 2 in -> 3 out
    (40, 20, 2),     # 20 in -> 10 out
])
@pytest.mark.parametrize("s,d", [(1, 1), (2, 1), (1, 2)])
def test_grouped_any_grouping(isa, C, M, group, s, d):
    rng = np.random.default_rng(C + M + group + s + d)
    run_case(rng, 2, C, M, group, (1, 11, 13), (1, 3, 3), (1, s, s), (0, 1, 2), (0, 2, 1),
             (1, d, d), act=ACT_RELU, residual=True, n_threads=2, via_dw=False)


# ------------------------------------------------------------ native executor calls
@pytest.mark.parametrize("C,M,group", [(24, 24, 24), (16, 32, 16), (32, 32, 8), (24, 40, 4)])
def test_native_calls_match(C, M, group):
    rng = np.random.default_rng(C + M)
    in_dhw, k3, s3, p3, d3 = (1, 10, 12), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1)
    out_dhw = tuple(out_size(in_dhw[i], k3[i], s3[i], p3[i], p3[i], d3[i]) for i in range(3))
    x = rng.standard_normal((2, C) + in_dhw).astype(np.float32)
    w = rng.standard_normal((M, C // group) + k3).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    res = rng.standard_normal((2, M) + out_dhw).astype(np.float32)
    ref = np.maximum(conv_ref(x, w, b, group, s3, p3, out_dhw, d3) + res, 0)
    xb, rb = to_blocked(x), to_blocked(res)
    yb = np.full((2, (M + 7) // 8, int(np.prod(out_dhw)), 8), np.nan, np.float32)
    args = (xb, None, b, yb, in_dhw, out_dhw, k3, s3, p3, d3, ACT_RELU, 0.0, 0.0, None, rb, 2)
    if group == C and M == C:
        call = dw.dwconv_call(*args[:1], dw.pack_dw_weights(w), *args[2:], M)
    elif group == C:
        call = dw.groupconv_call(*args[:1], dw.pack_dw_weights(w, M // C), *args[2:], group, C, M)
    else:
        call = dw.groupconv_call(*args[:1], dw.pack_grouped_weights(w, group), *args[2:], group,
                                 C, M)
    Program([call, call]).run()
    np.testing.assert_allclose(from_blocked(yb, M, out_dhw), ref, rtol=1e-4, atol=1e-3)


def test_groupconv_call_rejects_bad_tables():
    w = np.ones((16, 4, 3, 3), np.float32)
    pw = dw.pack_grouped_weights(w, 4)
    xb = np.zeros((1, 2, 25, 8), np.float32)
    yb = np.zeros((1, 2, 25, 8), np.float32)
    geo = ((1, 5, 5), (1, 5, 5), (1, 3, 3), (1, 1, 1), (0, 1, 1), (1, 1, 1))
    bad = pw._replace(src=np.full_like(pw.src, 7))
    with pytest.raises(ValueError, match="source blocks"):
        dw.groupconv_call(xb, bad, None, yb, *geo, 0, 0.0, 0.0, None, None, 1, 4, 16)
    with pytest.raises(ValueError, match="group"):
        dw.groupconv_call(xb, pw, None, yb, *geo, 0, 0.0, 0.0, None, None, 1, 8, 16)
    with pytest.raises(ValueError):
        dw.groupconv_call(xb[:, :1], pw, None, yb, *geo, 0, 0.0, 0.0, None, None, 1, 4, 16)


# ------------------------------------------------------------ whole sessions
def _model(C, M, group, sp, k, s, pads, d, w, b):
    nd = len(sp)
    node = helper.make_node("Conv", ["x", "w", "b"], ["c"], group=group, kernel_shape=[k] * nd,
                            strides=[s] * nd, pads=pads, dilations=[d] * nd)
    relu = helper.make_node("Relu", ["c"], ["y"])
    g = helper.make_graph([node, relu], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, C, *sp])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("C,M,group,sp,k,s,pads,d", [
    (96, 96, 8, (9, 10), 3, 1, [1, 1, 1, 1], 1),         # 12/g: was im2col
    (48, 16, 2, (9, 10), 3, 2, [0, 1, 1, 0], 1),         # 24 -> 8 out: was im2col
    (12, 12, 12, (7, 7), 3, 1, [1, 1, 1, 1], 1),         # depthwise, C not a multiple of 8
    (8, 24, 8, (12, 11), 5, 2, [2, 2, 2, 2], 1),         # multiplier 3
    (16, 16, 16, (17, 17), 3, 1, [4, 4, 4, 4], 4),       # atrous
    (16, 16, 16, (40,), 3, 1, [8, 8], 8),                # 1D dilated
    (8, 8, 8, (4, 6, 6), 3, 1, [1] * 6, 1),              # 3D
    (20, 30, 10, (6, 6, 5), 3, 1, [1] * 6, 1),           # 3D grouped 2 -> 3
])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_session_matches_reference(C, M, group, sp, k, s, pads, d, n_threads):
    rng = np.random.default_rng(C + M + k)
    w = rng.standard_normal((M, C // group) + (k,) * len(sp)).astype(np.float32)
    b = rng.standard_normal(M).astype(np.float32)
    x = rng.standard_normal((2, C, *sp)).astype(np.float32)
    m = _model(C, M, group, sp, k, s, pads, d, w, b)
    ref = ReferenceEvaluator(m).run(None, {"x": x})[0]
    got = fastcnn.InferenceSession(m, num_threads=n_threads).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * (1 + np.abs(ref).max()))


def test_make_blocked_routes_every_grouping():
    assert _pick(96, 96, 8) == "groupconv_nchwc"       # 12/g (was im2col)
    assert _pick(96, 16, 4) == "groupconv_nchwc"       # 24 -> 4 per group (was im2col)
    assert _pick(16, 128, 8) == "groupconv_nchwc"      # 2 -> 16 per group (was im2col)
    assert _pick(128, 128, 32) == "groupconv_nchwc"    # ResNeXt 4/g
    assert _pick(64, 64, 4) == "conv_nchwc_direct"     # 16/g: the dense blocked kernel
    assert _pick(32, 32, 32) == "dwconv_nchwc"
    assert _pick(32, 64, 32) == "dwconv_nchwc"         # multiplier 2 (grouped tables inside)


def _pick(C, M, group):
    """Name of the algorithm a 3x3 one-node model gets in a session plan."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((M, C // group, 3, 3)).astype(np.float32)
    b = np.zeros(M, np.float32)
    m = _model(C, M, group, (8, 8), 3, 1, [1, 1, 1, 1], 1, w, b)
    sess = fastcnn.InferenceSession(m)
    plan = sess._plan({"x": (2, C, 8, 8)})
    names = [getattr(getattr(st.op, "algorithm", None), "name", None) for st in plan.steps]
    names = [n for n in names if n]
    assert len(names) == 1, names
    return names[0]


# ------------------------------------------------------------ padded-rows plane kernel
def _geo(in_hw, k, s, pb, pe, d=1, kd=1, sd=1, pd=0, idp=1):
    i3 = (idp,) + tuple(in_hw)
    k3, s3, pb3, pe3, d3 = (kd, k, k), (sd, s, s), (pd, pb, pb), (pd, pe, pe), (1, d, d)
    o3 = tuple(out_size(i3[a], k3[a], s3[a], pb3[a], pe3[a], d3[a]) for a in range(3))
    return i3, k3, s3, pb3, pe3, d3, o3


PLANE_CASES = [
    # in (h, w), k, s, pad begin, pad end
    ((7, 7), 3, 1, 1, 1),        # MobileNetV2 7x7
    ((1, 1), 3, 1, 1, 1),        # 1x1 map: the only pixel sees only padding around it
    ((1, 1), 5, 1, 2, 2),
    ((2, 3), 3, 2, 1, 1),
    ((14, 14), 3, 1, 1, 1),      # 14 = one 14-pixel tile (AVX-512VL) / 8 + 6
    ((13, 17), 3, 1, 1, 1),      # odd sizes
    ((13, 17), 5, 1, 2, 2),
    ((13, 17), 3, 2, 1, 1),
    ((13, 17), 5, 2, 2, 2),
    ((16, 16), 3, 2, 0, 1),      # TF 'same' stride 2: pad only at the end
    ((9, 37), 3, 1, 1, 1),       # 16 + 16 + 5
    ((6, 40), 5, 2, 2, 1),
    ((8, 9), 3, 1, 3, 2),        # pads > k/2: whole padding rows / columns
    ((5, 5), 5, 1, 4, 4),        # pad = k - 1
    ((4, 12), 3, 1, 0, 0),       # no padding
    ((11, 11), 5, 1, 0, 2),
    ((3, 254), 3, 1, 1, 1),      # widest row that fits the stack ring (K3)
]


@pytest.mark.parametrize("in_hw,k,s,pb,pe", PLANE_CASES)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dw_plane_kernel(isa, in_hw, k, s, pb, pe, n_threads):
    i3, k3, s3, pb3, pe3, d3, o3 = _geo(in_hw, k, s, pb, pe)
    if isa != "portable":
        assert dw._uses_plane(i3, o3, k3, s3, pb3, d3)
    rng = np.random.default_rng(sum(in_hw) * 31 + k * 7 + s + pb + pe)
    # 13 channels: a masked last block; 2 blocks x batch 2 with 2 threads: row chunks
    run_case(rng, 2, 13, 13, 13, i3, k3, s3, pb3, pe3, d3, act=ACT_RELU, residual=True,
             n_threads=n_threads)


@pytest.mark.parametrize("act", [ACT_NONE, ACT_CLIP, ACT_LEAKY, ACT_HSWISH, ACT_PRELU, ACT_SILU])
def test_dw_plane_epilogue(isa, act):
    rng = np.random.default_rng(act + 50)
    for k, s in [(3, 1), (5, 2)]:
        i3, k3, s3, pb3, pe3, d3, o3 = _geo((7, 11), k, s, k // 2, k // 2)
        run_case(rng, 1, 21, 21, 21, i3, k3, s3, pb3, pe3, d3, act=act, residual=(s == 1))
        run_case(rng, 1, 8, 8, 8, i3, k3, s3, pb3, pe3, d3, act=act, use_bias=False,
                 mask=False)


def test_dw_plane_row_chunks_many_threads(isa):
    """One plane cut into row chunks: each chunk starts its ring mid-plane."""
    rng = np.random.default_rng(77)
    for k, s in [(3, 1), (3, 2), (5, 1), (5, 2)]:
        i3, k3, s3, pb3, pe3, d3, o3 = _geo((23, 19), k, s, k // 2, k // 2)
        run_case(rng, 1, 8, 8, 8, i3, k3, s3, pb3, pe3, d3, n_threads=2)


def test_dw_plane_3d_and_fallbacks(isa):
    """3D with a 1-deep kernel takes the plane kernel per depth; 3D with depth taps or
    depth pads, dilation, 1D, 7x7, stride 3, rows wider than the ring and stride 2 on
    big planes take the tile rows."""
    rng = np.random.default_rng(5)
    i3, k3, s3, pb3, pe3, d3, o3 = _geo((9, 10), 3, 1, 1, 1, idp=4)
    if isa != "portable":
        assert dw._uses_plane(i3, o3, k3, s3, pb3, d3)
    run_case(rng, 2, 11, 11, 11, i3, k3, s3, pb3, pe3, d3, residual=True, n_threads=2)
    i3, k3, s3, pb3, pe3, d3, o3 = _geo((9, 10), 3, 2, 1, 1, sd=2, idp=5)
    if isa != "portable":
        assert dw._uses_plane(i3, o3, k3, s3, pb3, d3)
    run_case(rng, 1, 8, 8, 8, i3, k3, s3, pb3, pe3, d3)
    off = [
        _geo((9, 10), 3, 1, 1, 1, kd=3, pd=1, idp=4),
        _geo((9, 10), 3, 1, 1, 1, kd=1, pd=1, idp=4),
        _geo((12, 12), 3, 1, 2, 2, d=2),
        _geo((12, 12), 7, 1, 3, 3),
        _geo((12, 12), 3, 3, 1, 1),
        _geo((3, 255), 3, 1, 1, 1),
        _geo((66, 66), 3, 2, 1, 1),
    ]
    for i3, k3, s3, pb3, pe3, d3, o3 in off:
        assert not dw._uses_plane(i3, o3, k3, s3, pb3, d3)
        run_case(rng, 1, 8, 8, 8, i3, k3, s3, pb3, pe3, d3, act=ACT_RELU)
    assert not dw._uses_plane((1, 1, 50), (1, 1, 50), (1, 1, 3), (1, 1, 1), (0, 0, 1),
                              (1, 1, 1))
    run_case(rng, 1, 8, 8, 8, (1, 1, 50), (1, 1, 3), (1, 1, 1), (0, 0, 1), (0, 0, 1),
             (1, 1, 1))
