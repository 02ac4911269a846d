"""fastcnn.analysis: receptive fields (r, jump, start), FLOPs, params, lint, `fastcnn info`."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fastcnn.analysis import summarize
from fastcnn.cli import main
from fastcnn.errors import InputError

RNG = np.random.default_rng(0)


class Builder:
    """Tiny ONNX model builder: b.conv(...), b.op(...), b.model()."""

    def __init__(self, shape, name="x", opset=17):
        self.nodes, self.inits, self.opset = [], [], opset
        self.inp = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
        self.last = name
        self.k = 0

    def _name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def const(self, arr, base="w"):
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs=None, name=None, **attrs):
        name = name or self._name(op_type.lower())
        inputs = [self.last] if inputs is None else inputs
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        self.last = name
        return name

    def conv(self, c_in, c_out, k, x=None, bias=False, name=None, group=1, **attrs):
        k = [k, k] if isinstance(k, int) else list(k)
        w = self.const(RNG.standard_normal([c_out, c_in // group] + k).astype(np.float32))
        ins = [x or self.last, w]
        if bias:
            ins.append(self.const(RNG.standard_normal(c_out).astype(np.float32), "b"))
        return self.op("Conv", ins, name=name, kernel_shape=k, group=group, **attrs)

    def bn(self, c, x=None, name=None):
        ins = [x or self.last] + [self.const(np.abs(RNG.standard_normal(c)).astype(np.float32) + .5,
                                             n) for n in ("g", "be", "mu", "var")]
        return self.op("BatchNormalization", ins, name=name)

    def model(self, outputs=None):
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                for o in (outputs or [self.last])]
        g = helper.make_graph(self.nodes, "m", [self.inp], outs, self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])


def by_name(summary):
    return {n["name"]: n for n in summary["nodes"]}


def kinds(summary, node=None):
    return [w["kind"] for w in summary["warnings"] if node is None or w["node"] == node]


def field(entry):
    return entry["receptive_field"], entry["jump"], entry["start"]


# -- receptive field arithmetic ------------------------------------------------------------

def test_lecture_example():
    """5x5 input, two 3x3 convs pad 1 stride 2: n=3, r=3, j=2; then n=2, r=7, j=4, start 0.5."""
    b = Builder((1, 1, 5, 5))
    b.conv(1, 1, 3, name="c1", pads=[1, 1, 1, 1], strides=[2, 2])
    b.conv(1, 1, 3, name="c2", pads=[1, 1, 1, 1], strides=[2, 2])
    s = by_name(summarize(b.model()))
    assert s["c1"]["output_shape"] == [1, 1, 3, 3]
    assert field(s["c1"]) == ([3, 3], [2, 2], [0.5, 0.5])
    assert s["c2"]["output_shape"] == [1, 1, 2, 2]
    assert field(s["c2"]) == ([7, 7], [4, 4], [0.5, 0.5])


def test_lecture_example_lint():
    b = Builder((1, 1, 5, 5))
    b.conv(1, 1, 3, name="c1", pads=[1, 1, 1, 1], strides=[2, 2])
    b.conv(1, 1, 3, name="c2", pads=[1, 1, 1, 1], strides=[2, 2])
    s = summarize(b.model())
    assert kinds(s, "c1") == []
    assert kinds(s, "c2") == ["rf_exceeds_input"]       # r = 7 > 5


def test_dilation_uses_effective_kernel():
    b = Builder((1, 1, 9, 9))
    b.conv(1, 1, 3, name="d2", dilations=[2, 2], pads=[2, 2, 2, 2])      # k_eff 5
    b.conv(1, 1, 3, name="d4", dilations=[4, 1], pads=[4, 1, 4, 1])      # k_eff 9 and 3
    s = by_name(summarize(b.model()))
    assert field(s["d2"]) == ([5, 5], [1, 1], [0.5, 0.5])
    assert field(s["d4"]) == ([13, 7], [1, 1], [0.5, 0.5])
    assert s["d4"]["output_shape"] == [1, 1, 9, 9]


def test_asymmetric_pads_use_the_begin_pad():
    b = Builder((1, 1, 8, 8))
    b.conv(1, 1, 3, name="c", pads=[0, 2, 1, 0], strides=[1, 2])
    s = by_name(summarize(b.model()))
    r, j, start = field(s["c"])
    assert r == [3, 3] and j == [1, 2]
    # start = 0.5 + ((3 - 1)/2 - p_begin) * 1
    assert start == [1.5, -0.5]
    assert s["c"]["output_shape"] == [1, 1, 7, 4]


@pytest.mark.parametrize("auto_pad,start", [("SAME_UPPER", 1.5), ("SAME_LOWER", 0.5),
                                            ("VALID", 1.5)])
def test_auto_pad(auto_pad, start):
    # 8 pixels, k=3, s=2: SAME pads total 1 -> UPPER puts it at the end, LOWER at the begin.
    b = Builder((1, 1, 8, 8))
    b.conv(1, 1, 3, name="c", strides=[2, 2], auto_pad=auto_pad)
    s = by_name(summarize(b.model()))
    assert field(s["c"]) == ([3, 3], [2, 2], [start, start])


def test_pooling_same_as_conv():
    b = Builder((1, 2, 8, 8))
    b.conv(2, 2, 3, name="c", pads=[1, 1, 1, 1])
    b.op("MaxPool", name="mp", kernel_shape=[2, 2], strides=[2, 2])
    b.op("AveragePool", name="ap", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
    s = by_name(summarize(b.model()))
    assert field(s["mp"]) == ([4, 4], [2, 2], [1, 1])          # r 3 + 1, start 0.5 + 0.5
    assert field(s["ap"]) == ([8, 8], [2, 2], [1, 1])          # r 4 + 2*2, start 1 + 0
    assert s["mp"]["flops"] == 0 and s["mp"]["elementwise_flops"] == 2 * 4 * 4 * 4


def test_1d_and_3d():
    b = Builder((1, 1, 16))
    b.conv(1, 2, [5], name="c1d", strides=[2])
    s = by_name(summarize(b.model()))
    assert field(s["c1d"]) == ([5], [2], [2.5])
    b = Builder((1, 1, 4, 8, 8))
    b.conv(1, 2, [3, 3, 3], name="c3d", strides=[1, 2, 2], pads=[1, 1, 1, 1, 1, 1])
    b.op("MaxPool", name="p3d", kernel_shape=[1, 2, 2], strides=[1, 2, 2])
    s = by_name(summarize(b.model()))
    assert field(s["c3d"]) == ([3, 3, 3], [1, 2, 2], [0.5, 0.5, 0.5])
    assert field(s["p3d"]) == ([3, 5, 5], [1, 4, 4], [0.5, 1.5, 1.5])


def test_elementwise_pass_through():
    b = Builder((1, 2, 6, 6))
    b.conv(2, 2, 3, name="c", pads=[1, 1, 1, 1])
    b.op("Relu", name="r")
    b.op("Sigmoid", name="sg")
    s = by_name(summarize(b.model()))
    assert field(s["r"]) == field(s["c"]) == field(s["sg"])
    assert s["r"]["elementwise_flops"] == 2 * 6 * 6


def test_residual_merge_takes_larger_field():
    b = Builder((1, 4, 8, 8))
    c1 = b.conv(4, 4, 3, x="x", name="c1", pads=[1, 1, 1, 1])
    c2 = b.conv(4, 4, 3, x=c1, name="c2", pads=[1, 1, 1, 1])
    b.op("Add", [c2, "x"], name="add")
    s = summarize(b.model())
    n = by_name(s)
    assert field(n["add"]) == ([5, 5], [1, 1], [0.5, 0.5])
    assert kinds(s) == []


def test_merge_warns_when_jumps_disagree():
    b = Builder((1, 1, 8, 8))
    a = b.conv(1, 1, 5, x="x", name="a")                      # 4x4, j 1
    c = b.conv(1, 1, 2, x="x", name="c", strides=[2, 2])      # 4x4, j 2
    b.op("Add", [a, c], name="add")
    s = summarize(b.model())
    assert kinds(s, "add") == ["jump_mismatch"]
    assert by_name(s)["add"]["receptive_field"] == [5, 5]


def test_global_pool_sees_the_whole_input():
    b = Builder((1, 2, 6, 6))
    b.conv(2, 4, 3, name="c", pads=[1, 1, 1, 1])
    b.op("GlobalAveragePool", name="gap")
    b.op("Flatten", name="flat")
    s = by_name(summarize(b.model()))
    # union of the 6 features' fields: 3 + (6 - 1)*1 = 8 (padding included); centre 3
    assert field(s["gap"]) == ([8, 8], [None, None], [3, 3])
    assert field(s["flat"]) == field(s["gap"])


def test_squeeze_excitation_gate_does_not_swamp_the_field():
    b = Builder((1, 4, 8, 8))
    c = b.conv(4, 4, 3, x="x", name="c", pads=[1, 1, 1, 1])
    b.op("GlobalAveragePool", [c], name="gap")
    b.conv(4, 4, 1, name="fc")
    b.op("Sigmoid", name="gate")
    b.op("Mul", [c, "gate"], name="scale")
    s = summarize(b.model())
    assert field(by_name(s)["scale"]) == ([3, 3], [1, 1], [0.5, 0.5])
    assert kinds(s) == []


# -- upsampling: fractional jumps ----------------------------------------------------------

def _convtranspose(b, c_in, c_out, k, name, **attrs):
    w = b.const(RNG.standard_normal([c_in, c_out, k, k]).astype(np.float32))
    return b.op("ConvTranspose", [b.last, w], name=name, kernel_shape=[k, k], **attrs)


def test_convtranspose_checkerboard_k3_s2_warns():
    b = Builder((1, 2, 4, 4))
    _convtranspose(b, 2, 2, 3, "up", strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    s = summarize(b.model())
    assert kinds(s, "up") == ["checkerboard"]
    assert "Resize" in s["warnings"][0]["message"]
    n = by_name(s)["up"]
    assert n["output_shape"] == [1, 2, 8, 8]
    # j = 1/2; phase 0 reads taps {0, 2}: one input feature apart -> r = 1 + 1;
    # start = 0.5 + (p - (k-1)/2)/s = 0.5 + (1 - 1)/2 = 0.5
    assert field(n) == ([2, 2], [0.5, 0.5], [0.5, 0.5])


def test_convtranspose_k4_s2_does_not_warn():
    b = Builder((1, 2, 4, 4))
    _convtranspose(b, 2, 3, 4, "up", strides=[2, 2], pads=[1, 1, 1, 1])
    s = summarize(b.model())
    assert kinds(s) == []
    n = by_name(s)["up"]
    assert n["output_shape"] == [1, 3, 8, 8]
    # start = 0.5 + (1 - 1.5)/2 = 0.25: output pixels centred at 0.25, 0.75, ... (half pixels)
    assert field(n) == ([2, 2], [0.5, 0.5], [0.25, 0.25])
    # FLOPs = 2 x |X| x (M/g) x k^2, params = W
    assert n["flops"] == 2 * (2 * 4 * 4) * 3 * 16
    assert n["params"] == 2 * 3 * 16


def test_convtranspose_undoes_conv_geometry():
    b = Builder((1, 1, 8, 8))
    b.conv(1, 1, 4, name="down", strides=[2, 2], pads=[1, 1, 1, 1])
    _convtranspose(b, 1, 1, 4, "up", strides=[2, 2], pads=[1, 1, 1, 1])
    n = by_name(summarize(b.model()))
    assert field(n["down"]) == ([4, 4], [2, 2], [1, 1])
    r, j, start = field(n["up"])
    assert j == [1, 1] and start == [0.5, 0.5]     # back on the pixel grid
    assert r == [6, 6]                             # 4 + 1 * 2


def test_resize_and_depth_to_space():
    b = Builder((1, 4, 4, 4))
    scales = b.const(np.array([1, 1, 2, 2], np.float32), "scales")
    b.op("Resize", [b.last, "", scales], name="near", mode="nearest")
    b.op("Resize", [b.last, "", scales], name="lin", mode="linear")
    b.op("DepthToSpace", name="d2s", blocksize=2)
    n = by_name(summarize(b.model()))
    assert field(n["near"]) == ([1, 1], [0.5, 0.5], [0.25, 0.25])
    # linear reads 2 neighbours: r + 1 * j_in
    assert field(n["lin"]) == ([1.5, 1.5], [0.25, 0.25], [0.125, 0.125])
    assert field(n["d2s"]) == ([1.5, 1.5], [0.125, 0.125], [0.0625, 0.0625])
    assert n["d2s"]["output_shape"] == [1, 1, 32, 32]


def test_stride_greater_than_kernel():
    b = Builder((1, 2, 8, 8))
    b.conv(2, 2, 1, name="skip", strides=[2, 2])
    b.conv(2, 2, 3, name="ok", strides=[2, 2], pads=[1, 1, 1, 1])
    s = summarize(b.model())
    assert kinds(s, "skip") == ["stride_gt_kernel"]
    assert kinds(s, "ok") == []


# -- FLOPs and params ------------------------------------------------------------------------

def resnet_block():
    """x[1,16,8,8] -> conv3x3 -> BN -> Relu -> conv3x3(+bias) -> BN -> +x -> Relu -> GAP -> fc."""
    b = Builder((1, 16, 8, 8))
    b.conv(16, 16, 3, x="x", name="conv1", pads=[1, 1, 1, 1])
    b.bn(16, name="bn1")
    b.op("Relu", name="relu1")
    b.conv(16, 16, 3, name="conv2", pads=[1, 1, 1, 1], bias=True)
    b.bn(16, name="bn2")
    b.op("Add", ["bn2", "x"], name="add")
    b.op("Relu", name="relu2")
    b.op("GlobalAveragePool", name="gap")
    b.op("Flatten", name="flat")
    w = b.const(RNG.standard_normal((10, 16)).astype(np.float32))
    bias = b.const(RNG.standard_normal(10).astype(np.float32), "b")
    b.op("Gemm", ["flat", w, bias], name="fc", transB=1)
    return b.model()


def test_resnet_block_flops_and_params_by_hand():
    s = summarize(resnet_block())
    n = by_name(s)
    conv_macs = (16 * 8 * 8) * (16 * 3 * 3)          # |Y| x C x k x k = 147456
    assert n["conv1"]["flops"] == 2 * conv_macs == 294912
    assert n["conv2"]["flops"] == 294912
    assert n["conv1"]["params"] == 16 * 16 * 9 == 2304
    assert n["conv2"]["params"] == 2304 + 16
    assert n["bn1"]["params"] == n["bn2"]["params"] == 2 * 16   # scale + B (mean/var are stats)
    assert n["fc"]["flops"] == 2 * 16 * 10 and n["fc"]["params"] == 170
    assert n["relu1"]["flops"] == 0 and n["add"]["flops"] == 0
    assert s["total_flops"] == 2 * 294912 + 320
    assert s["total_params"] == 2304 + 32 + 2320 + 32 + 170 == 4858
    assert field(n["add"]) == ([5, 5], [1, 1], [0.5, 0.5])
    assert n["fc"]["receptive_field"] == [12, 12] and n["fc"]["jump"] == [None, None]


def test_resnet_block_optimized_folds_batchnorm():
    s = summarize(resnet_block(), optimized=True)
    n = by_name(s)
    assert "bn1" not in n and "bn2" not in n
    convs = [e for e in s["nodes"] if e["op_type"] == "Conv"]
    assert [e["params"] for e in convs] == [2304 + 16, 2304 + 16]     # folded bias added
    assert s["total_params"] == 2 * 2320 + 170
    assert s["total_flops"] == 2 * 294912 + 320
    # the last conv carries the fused residual Add: same field as the unoptimized Add
    assert field(convs[-1]) == ([5, 5], [1, 1], [0.5, 0.5])


# -- input shapes -----------------------------------------------------------------------------

def test_symbolic_batch_defaults_to_one():
    b = Builder(("N", 1, 5, 5))
    b.conv(1, 1, 3, name="c")
    s = summarize(b.model())
    assert s["inputs"] == {"x": [1, 1, 5, 5]}
    assert by_name(s)["c"]["output_shape"] == [1, 1, 3, 3]


def test_unknown_spatial_dim_is_a_clear_error():
    b = Builder(("N", 1, "H", "W"))
    b.conv(1, 1, 3, name="c")
    with pytest.raises(InputError, match=r"input 'x' has unknown dimension 2.*--shape x="):
        summarize(b.model())
    s = summarize(b.model(), {"x": (2, 1, 7, 6)})
    assert by_name(s)["c"]["output_shape"] == [2, 1, 5, 4]
    s = summarize(b.model(), {"H": 9, "W": 9})
    assert by_name(s)["c"]["output_shape"] == [1, 1, 7, 7]
    with pytest.raises(InputError, match="match no input"):
        summarize(b.model(), {"y": (1, 1, 5, 5)})


# -- the command line -------------------------------------------------------------------------

def _save(model, tmp_path, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def test_info_json_schema(tmp_path, capsys):
    path = _save(resnet_block(), tmp_path)
    assert main(["info", path, "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)                     # exactly one JSON object on stdout
    assert isinstance(data, dict)
    for key, typ in (("nodes", list), ("warnings", list), ("total_params", int),
                     ("total_flops", int)):
        assert isinstance(data[key], typ)
    assert data["total_params"] == 4858
    for n in data["nodes"]:
        assert {"name", "op_type", "output_shape", "params", "flops", "receptive_field",
                "jump", "start"} <= set(n)
        assert isinstance(n["name"], str) and isinstance(n["op_type"], str)
        assert all(isinstance(d, int) for d in n["output_shape"])
        assert isinstance(n["params"], int) and isinstance(n["flops"], int)
        for k in ("receptive_field", "jump", "start"):
            assert isinstance(n[k], list) and len(n[k]) == 2
            assert all(v is None or isinstance(v, (int, float)) for v in n[k])
    for w in data["warnings"]:
        assert set(w) == {"node", "kind", "message"}


def test_info_json_warnings_and_shape_flag(tmp_path, capsys):
    b = Builder(("N", 2, "H", "W"))
    _convtranspose(b, 2, 2, 3, "up", strides=[2, 2])
    path = _save(b.model(), tmp_path)
    assert main(["info", path, "--json", "--shape", "x=1x2x4x4"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(w["node"], w["kind"]) for w in data["warnings"]] == [("up", "checkerboard")]
    assert data["nodes"][0]["output_shape"] == [1, 2, 9, 9]
    assert main(["info", path, "--json"]) == 2          # H, W unknown: clear error
    err = capsys.readouterr().err
    assert "unknown dimension 2" in err and "--shape x=" in err


def test_info_table(tmp_path, capsys):
    path = _save(resnet_block(), tmp_path)
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("node"))
    for col in ("op", "output shape", "params", "FLOPs", "RF", "jump", "start"):
        assert col in header
    assert any(line.startswith("conv1 ") and "1x16x8x8" in line and "2,304" in line
               for line in lines)
    assert "total:" in out and "4,858 params" in out


def test_info_optimized_and_plot_without_matplotlib(tmp_path, capsys):
    path = _save(resnet_block(), tmp_path)
    png = tmp_path / "rf.png"
    assert main(["info", path, "--optimized", "--json", "--plot", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 2 * 2320 + 170
    try:
        import matplotlib  # noqa: F401
        assert png.exists()
    except ImportError:
        assert not png.exists()


def test_custom_fastcnn_conv_ops():
    """com.fastcnn LocallyConnected / TiledConv: conv geometry, MACs = |Y| x C/g x k^2."""
    b = Builder((1, 2, 6, 6))
    w_lc = b.const(RNG.standard_normal((4, 4, 3, 2, 3, 3)).astype(np.float32))   # [O1,O2,M,C,k,k]
    b_lc = b.const(RNG.standard_normal((3, 4, 4)).astype(np.float32), "b")
    b.nodes.append(helper.make_node("LocallyConnected", ["x", w_lc, b_lc], ["lc"], name="lc",
                                    domain="com.fastcnn", kernel_shape=[3, 3]))
    w_t = b.const(RNG.standard_normal((2, 2, 5, 3, 3, 3)).astype(np.float32))    # [T1,T2,M,C,k,k]
    b.nodes.append(helper.make_node("TiledConv", ["lc", w_t], ["tc"], name="tc",
                                    domain="com.fastcnn", kernel_shape=[3, 3], strides=[1, 1],
                                    pads=[1, 1, 1, 1]))
    b.last = "tc"
    m = b.model()
    m.opset_import.append(helper.make_opsetid("com.fastcnn", 1))
    n = by_name(summarize(m))
    lc, tc = n["lc"], n["tc"]
    assert lc["op_type"] == "com.fastcnn.LocallyConnected"
    assert lc["output_shape"] == [1, 3, 4, 4] and tc["output_shape"] == [1, 5, 4, 4]
    assert lc["flops"] == 2 * (3 * 4 * 4) * (2 * 9)
    assert tc["flops"] == 2 * (5 * 4 * 4) * (3 * 9)
    assert lc["params"] == 4 * 4 * 3 * 2 * 9 + 3 * 16
    assert field(lc) == ([3, 3], [1, 1], [1.5, 1.5])
    assert field(tc) == ([5, 5], [1, 1], [1.5, 1.5])


def test_pad_slice_and_unknown_ops():
    b = Builder((1, 2, 8, 8))
    pads = b.const(np.array([0, 0, 2, 1, 0, 0, 0, 1], np.int64), "pads")
    b.op("Pad", [b.last, pads], name="pad")                              # 10 x 10
    b.conv(2, 2, 3, name="c")                                            # 8 x 8
    st_, en, ax, sp = (b.const(np.array(v, np.int64), "s") for v in ([1], [8], [3], [2]))
    b.op("Slice", ["c", st_, en, ax, sp], name="sl")                     # W: 1, 3, 5, 7
    b.nodes.append(helper.make_node("Mystery", ["sl"], ["my"], name="my", domain="foo"))
    b.last = "my"
    b.op("Relu", name="after")
    m = b.model()
    m.opset_import.append(helper.make_opsetid("foo", 1))
    s = summarize(m)
    n = by_name(s)
    assert field(n["pad"]) == ([1, 1], [1, 1], [-1.5, -0.5])
    assert field(n["c"]) == ([3, 3], [1, 1], [-0.5, 0.5])
    assert n["sl"]["output_shape"] == [1, 2, 8, 4]
    assert field(n["sl"]) == ([3, 3], [1, 2], [-0.5, 1.5])
    assert n["my"]["output_shape"] is None and n["after"]["output_shape"] is None
    assert "shape_unknown" in kinds(s, "my")


# -- channels-last inputs (tf2onnx: Transposes around every Conv) ---------------------------

def _tf_style(nhwc):
    """input -> Pad(H, W) -> [Transpose] -> Conv 3x3/s2 -> [Transpose] -> Mul(c) ->
    Slice(W from 1) -> ReduceMean(H, W); NHWC with the Transposes of a tf2onnx export, or
    the same computation in NCHW."""
    rng = np.random.default_rng(0)
    a = (1, 2) if nhwc else (2, 3)          # spatial axes of the activations
    shape = [1, 11, 11, 2] if nhwc else [1, 2, 11, 11]
    pads = [0, 0, 0, 0, 0, 0, 0, 0]
    pads[a[0]], pads[a[1]] = 2, 1                      # begin pads H 2, W 1
    inits = [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.random(4 if nhwc else (4, 1, 1)).astype(np.float32), "c"),
             numpy_helper.from_array(np.array(pads, np.int64), "pads"),
             numpy_helper.from_array(np.array([1], np.int64), "st"),
             numpy_helper.from_array(np.array([100], np.int64), "en"),
             numpy_helper.from_array(np.array([a[1]], np.int64), "ax")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], name="pad")]
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["p"], ["pt"], name="to_nchw", perm=[0, 3, 1, 2]))
    nodes.append(helper.make_node("Conv", ["pt" if nhwc else "p", "w"], ["cv"], name="conv",
                                  strides=[2, 2]))
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["cv"], ["cvt"], name="to_nhwc", perm=[0, 2, 3, 1]))
    nodes += [helper.make_node("Mul", ["cvt" if nhwc else "cv", "c"], ["m"], name="mul"),
              helper.make_node("Slice", ["m", "st", "en", "ax"], ["s"], name="slice"),
              helper.make_node("ReduceMean", ["s"], ["y"], name="gap", axes=list(a), keepdims=0)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_nhwc_input_fields_follow_the_transposes():
    """A channels-last input read through a Pad, then Transposes to NCHW and back: the
    fields are those of the NCHW equivalent at every node (not the bogus global field the
    Transposes used to give, nor rf_exceeds_input warnings)."""
    s_nhwc, s_nchw = summarize(_tf_style(True)), summarize(_tf_style(False))
    assert s_nhwc["image"] == {"name": "x", "spatial": [11, 11]} == s_nchw["image"]
    assert kinds(s_nhwc) == ["nhwc_input"] and kinds(s_nchw) == []
    a, b = by_name(s_nhwc), by_name(s_nchw)
    for name in ("pad", "conv", "mul", "slice", "gap"):
        assert field(a[name]) == field(b[name]), name
    assert field(a["conv"]) == ([3, 3], [2, 2], [-0.5, 0.5])       # begin pads 2, 1
    assert field(a["slice"]) == ([3, 3], [2, 2], [-0.5, 2.5])      # W starts 1 feature in
    assert field(a["to_nhwc"]) == field(a["conv"])


def test_keras_nhwc_net_has_no_bogus_warnings():
    from fastcnn import zoo
    s = summarize(zoo.keras_nhwc_net())
    assert s["image"]["spatial"] == [224, 224]
    assert kinds(s) == ["nhwc_input"]
    nodes = by_name(s)
    assert field(nodes["stem"]) == ([3, 3], [2, 2], [1.5, 1.5])
    head_r, head_j, _ = field(nodes["head"])
    assert head_j == [8, 8] and head_r[0] == head_r[1] < 224
