"""A zoo of CNNs built with `onnx.helper`, no downloads: real architecture shapes, random weights.

Every builder returns an `onnx.ModelProto` whose weights are random but deterministic
(seeded), written the way exporters write them: Conv followed by a *separate*
BatchNormalization, activations as their own nodes (Relu, Clip for ReLU6, HardSwish,
HardSigmoid, PRelu), residual Adds, Flatten→Gemm heads, and PyTorch's
Shape→Gather→Unsqueeze→Concat→Reshape plumbing in MobileNetV2's head.  The batch
dimension is the symbolic "N".

    from fastcnn import zoo
    model = zoo.MODELS["resnet18"]()              # onnx.ModelProto
    feeds = zoo.random_inputs("resnet18", batch=1)

| name               | input (batch 1)      | output          | params     | GFLOP (2·MAC) |
|--------------------|----------------------|-----------------|------------|---------------|
| resnet18           | input 1×3×224×224    | output 1×1000   | 11,689,512 | 3.628         |
| mobilenet_v2       | input 1×3×224×224    | output 1×1000   | 3,504,872  | 0.602         |
| mobilenet_v3_small | input 1×3×224×224    | output 1×1000   | 2,542,856  | 0.113         |
| unet_decoder       | x 1×256×16×16        | y 1×3×256×256   | 805,264    | 1.741         |
| wavenet1d          | x 1×1×8192           | y 1×256×8192    | 94,176     | 1.511         |
| c3d_small          | x 1×3×8×56×56        | y 1×101         | 415,829    | 0.542         |
| inception_kx1      | x 1×3×72×72          | y 1×1000        | 2,759,560  | 1.297         |
| nhwc_input_net     | x 1×128×128×3 (NHWC) | y 1×1000        | 389,736    | 0.133         |
| tiny               | x 1×3×24×24          | y 1×10          | 88,858     | 0.003         |
| resnext_block      | x 1×256×56×56        | y 1×512×28×28   | 420,352    | 1.291         |
| deeplab_atrous     | x 1×256×33×33        | y 1×21×264×264  | 1,125,085  | 2.412         |
| keras_nhwc_net     | x 1×224×224×3 (NHWC) | y 1×1000        | 306,344    | 0.218         |

Opset 13, except mobilenet_v3_small (HardSwish) and unet_decoder at 17.  Params as
torchvision counts them (BN running statistics excluded); GFLOP counts Conv, ConvTranspose,
Gemm and MatMul.

(`python -m fastcnn.zoo` prints the full, computed table.)
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8
BATCH = "N"


class _Builder:
    """Appends nodes and seeded initializers; every helper returns its output name."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self._count: Counter = Counter()

    # -- naming / constants ---------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._count[prefix] += 1
        return f"{prefix}_{self._count[prefix]}"

    def const(self, array, name: Optional[str] = None) -> str:
        name = name or self._name("const")
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: Optional[str] = None,
             n_out: int = 1, **attrs) -> str:
        name = name or self._name(op)
        outs = [f"{name}_out" if k == 0 else f"{name}_out{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # -- layers ---------------------------------------------------------------------
    def conv(self, x, cin, cout, k, stride=1, pad=None, dilation=1, group=1, bias=False,
             name=None, pads=None, gain=2.0):
        k = tuple(k) if isinstance(k, (tuple, list)) else (k, k)
        nd = len(k)
        st = tuple(stride) if isinstance(stride, (tuple, list)) else (stride,) * nd
        dl = tuple(dilation) if isinstance(dilation, (tuple, list)) else (dilation,) * nd
        if pads is None:
            if pad is None:
                p = tuple(d * (kk - 1) // 2 for kk, d in zip(k, dl))
            else:
                p = tuple(pad) if isinstance(pad, (tuple, list)) else (pad,) * nd
            pads = list(p) + list(p)
        name = name or self._name("Conv")
        fan_in = (cin // group) * int(np.prod(k))
        w = self.rng.normal(0, np.sqrt(gain / fan_in), (cout, cin // group) + k).astype(np.float32)
        ins = [x, self.const(w, f"{name}.weight")]
        if bias:
            ins.append(self.const(self.rng.normal(0, 0.05, cout).astype(np.float32),
                                  f"{name}.bias"))
        return self.node("Conv", ins, name, kernel_shape=list(k), strides=list(st),
                         pads=list(pads), dilations=list(dl), group=group)

    def conv_transpose(self, x, cin, cout, k, stride, pad, output_padding=0, name=None):
        k = (k, k) if isinstance(k, int) else tuple(k)
        name = name or self._name("ConvTranspose")
        w = self.rng.normal(0, np.sqrt(2.0 / (cin * k[0] * k[1] / (stride * stride))),
                            (cin, cout) + k).astype(np.float32)
        b = self.rng.normal(0, 0.05, cout).astype(np.float32)
        attrs = dict(kernel_shape=list(k), strides=[stride, stride], pads=[pad] * 4)
        if output_padding:
            attrs["output_padding"] = [output_padding] * 2
        return self.node("ConvTranspose", [x, self.const(w, f"{name}.weight"),
                                           self.const(b, f"{name}.bias")], name, **attrs)

    def bn(self, x, c, name=None):
        name = name or self._name("BatchNormalization")
        r = self.rng
        gamma = r.uniform(0.5, 1.0, c).astype(np.float32)
        beta = r.normal(0, 0.1, c).astype(np.float32)
        mean = r.normal(0, 0.1, c).astype(np.float32)
        var = r.uniform(0.5, 1.5, c).astype(np.float32)
        ins = [x] + [self.const(a, f"{name}.{s}") for a, s in
                     ((gamma, "weight"), (beta, "bias"), (mean, "running_mean"),
                      (var, "running_var"))]
        return self.node("BatchNormalization", ins, name, epsilon=1e-5, momentum=0.9)

    def conv_bn(self, x, cin, cout, k, stride=1, act="relu", name=None, **kw):
        prefix = name or self._name("block")
        y = self.conv(x, cin, cout, k, stride, name=f"{prefix}.conv", **kw)
        y = self.bn(y, cout, name=f"{prefix}.bn")
        return self.act(y, act, cout)

    def act(self, x, kind, c=None):
        if kind is None:
            return x
        if kind == "relu":
            return self.node("Relu", [x])
        if kind == "relu6":
            return self.node("Clip", [x, self._scalar(0.0), self._scalar(6.0)])
        if kind == "hardswish":
            return self.node("HardSwish", [x])
        if kind == "hardsigmoid":
            return self.node("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5)
        if kind == "prelu":
            slope = self.rng.uniform(0.05, 0.3, (c, 1, 1)).astype(np.float32)
            return self.node("PRelu", [x, self.const(slope)])
        if kind == "tanh":
            return self.node("Tanh", [x])
        if kind == "sigmoid":
            return self.node("Sigmoid", [x])
        raise ValueError(kind)

    def _scalar(self, v, dtype=np.float32):
        key = ("scalar", float(v), np.dtype(dtype).name)
        if not hasattr(self, "_scalars"):
            self._scalars = {}
        if key not in self._scalars:
            self._scalars[key] = self.const(np.array(v, dtype))
        return self._scalars[key]

    def gemm(self, x, cin, cout, name=None):
        name = name or self._name("Gemm")
        w = self.rng.normal(0, np.sqrt(1.0 / cin), (cout, cin)).astype(np.float32)
        b = self.rng.normal(0, 0.05, cout).astype(np.float32)
        return self.node("Gemm", [x, self.const(w, f"{name}.weight"), self.const(b, f"{name}.bias")],
                         name, alpha=1.0, beta=1.0, transB=1)

    def add(self, a, b):
        return self.node("Add", [a, b])

    def mul(self, a, b):
        return self.node("Mul", [a, b])

    def gap(self, x):
        return self.node("GlobalAveragePool", [x])

    def flatten(self, x):
        return self.node("Flatten", [x], axis=1)

    def model(self, name, inputs, outputs, opset=13, doc="") -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fastcnn.zoo", doc_string=doc)
        m.ir_version = IR_VERSION
        return m


def _in(name, *dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *dims])


def _out(name, *dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *dims])


def _rename_output(b: _Builder, value: str, new: str) -> None:
    for n in b.nodes:
        for k, o in enumerate(n.output):
            if o == value:
                n.output[k] = new


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ---------------------------------------------------------------------------------------
# Classification networks (exactly torchvision's shapes)
# ---------------------------------------------------------------------------------------
def resnet18(num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """torchvision ResNet-18: 11,689,512 params, 1.82 GMAC (3.64 GFLOP) at 224×224."""
    b = _Builder(seed)
    x = b.conv_bn("input", 3, 64, 7, 2, name="conv1", pad=3)
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for li, cout in enumerate((64, 128, 256, 512), start=1):
        for bi in range(2):
            stride = 2 if (bi == 0 and li > 1) else 1
            p = f"layer{li}.{bi}"
            y = b.conv_bn(x, cin, cout, 3, stride, name=f"{p}.conv1")
            y = b.conv_bn(y, cout, cout, 3, 1, act=None, name=f"{p}.conv2")
            if stride != 1 or cin != cout:
                sc = b.conv_bn(x, cin, cout, 1, stride, act=None, name=f"{p}.downsample")
            else:
                sc = x
            x = b.act(b.add(y, sc), "relu")
            cin = cout
    x = b.flatten(b.gap(x))
    _rename_output(b, b.gemm(x, 512, num_classes, name="fc"), "output")
    return b.model("resnet18", [_in("input", 3, 224, 224)], [_out("output", num_classes)],
                   doc=resnet18.__doc__)


def mobilenet_v2(num_classes: int = 1000, seed: int = 1) -> onnx.ModelProto:
    """torchvision MobileNetV2 (width 1.0): 3,504,872 params, 0.30 GMAC; ReLU6 as Clip; the
    head flattens with PyTorch's x.view(x.size(0), -1) plumbing (Shape→Gather→Unsqueeze→
    Concat→Reshape)."""
    b = _Builder(seed)
    x = b.conv_bn("input", 3, 32, 3, 2, act="relu6", name="features.0")
    cin = 32
    idx = 1
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            p = f"features.{idx}"
            y = x
            if t != 1:
                y = b.conv_bn(y, cin, hidden, 1, act="relu6", name=f"{p}.expand")
            y = b.conv_bn(y, hidden, hidden, 3, stride, act="relu6", group=hidden,
                          name=f"{p}.dw")
            y = b.conv_bn(y, hidden, c, 1, act=None, name=f"{p}.project")
            if stride == 1 and cin == c:
                y = b.add(x, y)
            x, cin = y, c
            idx += 1
    x = b.conv_bn(x, cin, 1280, 1, act="relu6", name=f"features.{idx}")
    x = b.gap(x)
    # x.view(x.size(0), -1), as torch.onnx exports it
    shape = b.node("Shape", [x])
    n = b.node("Gather", [shape, b.const(np.array(0, np.int64))], axis=0)
    n = b.node("Unsqueeze", [n, b.const(np.array([0], np.int64))])
    target = b.node("Concat", [n, b.const(np.array([-1], np.int64))], axis=0)
    x = b.node("Reshape", [x, target])
    x = b.node("Dropout", [x])      # inference: identity (ratio input omitted)
    _rename_output(b, b.gemm(x, 1280, num_classes, name="classifier.1"), "output")
    return b.model("mobilenet_v2", [_in("input", 3, 224, 224)], [_out("output", num_classes)],
                   doc=mobilenet_v2.__doc__)


def _squeeze_excite(b: _Builder, x, c, name):
    sq = _make_divisible(c // 4, 8)
    s = b.gap(x)
    s = b.conv(s, c, sq, 1, bias=True, name=f"{name}.fc1")
    s = b.act(s, "relu")
    s = b.conv(s, sq, c, 1, bias=True, name=f"{name}.fc2", gain=1.0)
    s = b.act(s, "hardsigmoid")
    return b.mul(s, x)


def mobilenet_v3_small(num_classes: int = 1000, seed: int = 2) -> onnx.ModelProto:
    """torchvision MobileNetV3-Small: 2,542,856 params, 0.06 GMAC; HardSwish (opset 14+, built
    at opset 17), squeeze-and-excitation (GlobalAveragePool → 1×1 conv → Relu → 1×1 conv →
    HardSigmoid → Mul)."""
    b = _Builder(seed)
    x = b.conv_bn("input", 3, 16, 3, 2, act="hardswish", name="features.0")
    cfg = [  # in, kernel, expanded, out, SE, activation, stride
        (16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
        (24, 3, 88, 24, False, "relu", 1), (24, 5, 96, 40, True, "hardswish", 2),
        (40, 5, 240, 40, True, "hardswish", 1), (40, 5, 240, 40, True, "hardswish", 1),
        (40, 5, 120, 48, True, "hardswish", 1), (48, 5, 144, 48, True, "hardswish", 1),
        (48, 5, 288, 96, True, "hardswish", 2), (96, 5, 576, 96, True, "hardswish", 1),
        (96, 5, 576, 96, True, "hardswish", 1)]
    for i, (cin, k, exp, cout, se, act, s) in enumerate(cfg, start=1):
        p = f"features.{i}"
        y = x
        if exp != cin:
            y = b.conv_bn(y, cin, exp, 1, act=act, name=f"{p}.expand")
        y = b.conv_bn(y, exp, exp, k, s, act=act, group=exp, name=f"{p}.dw")
        if se:
            y = _squeeze_excite(b, y, exp, f"{p}.se")
        y = b.conv_bn(y, exp, cout, 1, act=None, name=f"{p}.project")
        if s == 1 and cin == cout:
            y = b.add(y, x)
        x = y
    x = b.conv_bn(x, 96, 576, 1, act="hardswish", name="features.12")
    x = b.flatten(b.gap(x))
    x = b.act(b.gemm(x, 576, 1024, name="classifier.0"), "hardswish")
    _rename_output(b, b.gemm(x, 1024, num_classes, name="classifier.3"), "output")
    return b.model("mobilenet_v3_small", [_in("input", 3, 224, 224)],
                   [_out("output", num_classes)], opset=17, doc=mobilenet_v3_small.__doc__)


# ---------------------------------------------------------------------------------------
# Dense prediction, sequence, video
# ---------------------------------------------------------------------------------------
def unet_decoder(seed: int = 3) -> onnx.ModelProto:
    """U-Net-style decoder 256×16×16 → 3×256×256: ConvTranspose k4/s2/p1, ConvTranspose
    k3/s2/p1 with output_padding 1, bilinear Resize ×2, and a sub-pixel (DepthToSpace, CRD as
    torch's pixel_shuffle exports it) head."""
    b = _Builder(seed)
    x = b.conv_transpose("x", 256, 128, 4, 2, 1, name="up1")              # 32×32
    x = b.act(b.bn(x, 128, name="up1.bn"), "relu")
    x = b.conv_bn(x, 128, 128, 3, name="dec1")
    x = b.conv_transpose(x, 128, 64, 3, 2, 1, output_padding=1, name="up2")  # 64×64
    x = b.act(b.bn(x, 64, name="up2.bn"), "relu")
    x = b.conv_bn(x, 64, 64, 3, name="dec2")
    x = b.node("Resize", [x, "", b.const(np.array([1, 1, 2, 2], np.float32), "up3.scales")],
               "up3", mode="linear", coordinate_transformation_mode="pytorch_half_pixel")  # 128
    x = b.conv_bn(x, 64, 32, 3, name="dec3")
    x = b.conv(x, 32, 3 * 4, 3, bias=True, name="head", gain=1.0)
    _rename_output(b, b.node("DepthToSpace", [x], "pixel_shuffle", blocksize=2, mode="CRD"),
                   "y")
    return b.model("unet_decoder", [_in("x", 256, 16, 16)], [_out("y", 3, 256, 256)],
                   opset=17, doc=unet_decoder.__doc__)


def wavenet1d(length: int = 8192, channels: int = 32, skip: int = 64, seed: int = 4,
              n_layers: int = 10) -> onnx.ModelProto:
    """WaveNet stack on a 1×1×8192 signal: causal dilated Conv1d k=2 with dilations 1…512
    (left padding only), gated tanh·sigmoid units, 1×1 residual and skip convs, ReLU → 1×1
    → ReLU → 1×1 output to 256 classes."""
    b = _Builder(seed)
    x = b.conv("x", 1, channels, (2,), pads=[1, 0], bias=True, name="causal")
    skips = None
    for i in range(n_layers):
        d = 2 ** i
        p = f"layers.{i}"
        f = b.conv(x, channels, channels, (2,), dilation=d, pads=[d, 0], bias=True,
                   name=f"{p}.filter", gain=1.0)
        g = b.conv(x, channels, channels, (2,), dilation=d, pads=[d, 0], bias=True,
                   name=f"{p}.gate", gain=1.0)
        z = b.mul(b.act(f, "tanh"), b.act(g, "sigmoid"))
        s = b.conv(z, channels, skip, (1,), bias=True, name=f"{p}.skip", gain=1.0)
        skips = s if skips is None else b.add(skips, s)
        r = b.conv(z, channels, channels, (1,), bias=True, name=f"{p}.residual", gain=1.0)
        x = b.add(x, r)
    y = b.act(skips, "relu")
    y = b.act(b.conv(y, skip, skip, (1,), bias=True, name="post1"), "relu")
    _rename_output(b, b.conv(y, skip, 256, (1,), bias=True, name="post2", gain=1.0), "y")
    return b.model("wavenet1d", [_in("x", 1, length)], [_out("y", 256, length)],
                   doc=wavenet1d.__doc__)


def c3d_small(num_classes: int = 101, seed: int = 5) -> onnx.ModelProto:
    """C3D-style video net on 3×8×56×56 clips: 3×3×3 Conv3d + BN + ReLU, MaxPool3d (1,2,2)
    then (2,2,2), global pool, Gemm to 101 classes."""
    b = _Builder(seed)
    k3 = (3, 3, 3)
    x = b.conv_bn("x", 3, 16, k3, 1, name="conv1")
    x = b.node("MaxPool", [x], "pool1", kernel_shape=[1, 2, 2], strides=[1, 2, 2])
    x = b.conv_bn(x, 16, 32, k3, 1, name="conv2")
    x = b.node("MaxPool", [x], "pool2", kernel_shape=[2, 2, 2], strides=[2, 2, 2])
    x = b.conv_bn(x, 32, 64, k3, 1, name="conv3a")
    x = b.conv_bn(x, 64, 64, k3, 1, name="conv3b")
    x = b.node("MaxPool", [x], "pool3", kernel_shape=[2, 2, 2], strides=[2, 2, 2])
    x = b.conv_bn(x, 64, 128, k3, 1, name="conv4")
    x = b.flatten(b.gap(x))
    _rename_output(b, b.gemm(x, 128, num_classes, name="fc"), "y")
    return b.model("c3d_small", [_in("x", 3, 8, 56, 56)], [_out("y", num_classes)],
                   doc=c3d_small.__doc__)


def _inception_c(b: _Builder, x, cin, c7, name):
    """Inception-v3 'Figure 6' module: 7×7 factorized as 1×7/7×1; out 4×192 channels."""
    b1 = b.conv_bn(x, cin, 192, 1, name=f"{name}.b1")
    b7 = b.conv_bn(x, cin, c7, 1, name=f"{name}.b7_1")
    b7 = b.conv_bn(b7, c7, c7, (1, 7), pad=(0, 3), name=f"{name}.b7_2")
    b7 = b.conv_bn(b7, c7, 192, (7, 1), pad=(3, 0), name=f"{name}.b7_3")
    d = b.conv_bn(x, cin, c7, 1, name=f"{name}.d_1")
    d = b.conv_bn(d, c7, c7, (7, 1), pad=(3, 0), name=f"{name}.d_2")
    d = b.conv_bn(d, c7, c7, (1, 7), pad=(0, 3), name=f"{name}.d_3")
    d = b.conv_bn(d, c7, c7, (7, 1), pad=(3, 0), name=f"{name}.d_4")
    d = b.conv_bn(d, c7, 192, (1, 7), pad=(0, 3), name=f"{name}.d_5")
    p = b.node("AveragePool", [x], f"{name}.pool", kernel_shape=[3, 3], strides=[1, 1],
               pads=[1, 1, 1, 1], count_include_pad=1)
    p = b.conv_bn(p, cin, 192, 1, name=f"{name}.bp")
    return b.node("Concat", [b1, b7, d, p], f"{name}.concat", axis=1)


def _inception_e(b: _Builder, x, cin, name):
    """Inception-v3 'Figure 7' module (narrowed): a 1×1 branch, a 1×1 → parallel 1×3 and 3×1
    pair, and an AveragePool → 1×1 branch; out 128+96+96+192 = 512 channels."""
    b1 = b.conv_bn(x, cin, 128, 1, name=f"{name}.b1")
    b3 = b.conv_bn(x, cin, 192, 1, name=f"{name}.b3_1")
    b3a = b.conv_bn(b3, 192, 96, (1, 3), pad=(0, 1), name=f"{name}.b3_2a")
    b3b = b.conv_bn(b3, 192, 96, (3, 1), pad=(1, 0), name=f"{name}.b3_2b")
    p = b.node("AveragePool", [x], f"{name}.pool", kernel_shape=[3, 3], strides=[1, 1],
               pads=[1, 1, 1, 1], count_include_pad=1)
    p = b.conv_bn(p, cin, 192, 1, name=f"{name}.bp")
    return b.node("Concat", [b1, b3a, b3b, p], f"{name}.concat", axis=1)   # 512


def inception_kx1(num_classes: int = 1000, seed: int = 6) -> onnx.ModelProto:
    """Inception-v3-style net on 3×72×72: a 2-conv stem to 192×17×17, two 'Figure 6'
    modules (1×7/7×1 factorized convs, AveragePool 3×3/s1 with count_include_pad, Concat),
    one 'Figure 7' module (parallel 1×3 and 3×1), global pool, Gemm."""
    b = _Builder(seed)
    x = b.conv_bn("x", 3, 32, 3, 2, name="stem1")                 # 36×36
    x = b.conv_bn(x, 32, 192, 3, 2, pad=0, name="stem2")           # 17×17
    x = _inception_c(b, x, 192, 64, "mixed_6a")                    # 768
    x = _inception_c(b, x, 768, 128, "mixed_6b")                   # 768
    x = _inception_e(b, x, 768, "mixed_7a")                        # 512
    x = b.flatten(b.gap(x))
    _rename_output(b, b.gemm(x, 512, num_classes, name="fc"), "y")
    return b.model("inception_kx1", [_in("x", 3, 72, 72)], [_out("y", num_classes)],
                   doc=inception_kx1.__doc__)


def nhwc_input_net(num_classes: int = 1000, seed: int = 7) -> onnx.ModelProto:
    """A tf2onnx-style MobileNet-v1 slice: NHWC input 1×128×128×3, Transpose to NCHW, convs
    with BN already folded (bias), ReLU6 as Clip, TF 'SAME' stride-2 padding (pads 0,0,1,1),
    depthwise-separable blocks, GlobalAveragePool, Squeeze, MatMul + Add head."""
    b = _Builder(seed)
    x = b.node("Transpose", ["x"], "to_nchw", perm=[0, 3, 1, 2])
    x = b.act(b.conv(x, 3, 32, 3, 2, pads=[0, 0, 1, 1], bias=True, name="conv0"), "relu6")
    cin = 32
    for i, (cout, s) in enumerate(((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))):
        pads = [0, 0, 1, 1] if s == 2 else [1, 1, 1, 1]
        x = b.act(b.conv(x, cin, cin, 3, s, pads=pads, group=cin, bias=True,
                         name=f"dw{i}"), "relu6")
        x = b.act(b.conv(x, cin, cout, 1, bias=True, name=f"pw{i}"), "relu6")
        cin = cout
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Squeeze", [x, b.const(np.array([2, 3], np.int64))], "squeeze")
    w = b.rng.normal(0, np.sqrt(1.0 / cin), (cin, num_classes)).astype(np.float32)
    x = b.node("MatMul", [x, b.const(w, "logits.weight")], "logits.matmul")
    bias = b.rng.normal(0, 0.05, num_classes).astype(np.float32)
    _rename_output(b, b.node("Add", [x, b.const(bias, "logits.bias")], "logits.add"), "y")
    return b.model("nhwc_input_net", [_in("x", 128, 128, 3)], [_out("y", num_classes)],
                   doc=nhwc_input_net.__doc__)


def tiny(seed: int = 8) -> onnx.ModelProto:
    """The overhead-bound case: three 3×3 convs on 1×3×24×24 with PRelu, then two dense
    layers (Flatten → Gemm 1152→64 → Relu → Gemm 64→10)."""
    b = _Builder(seed)
    x = b.act(b.conv("x", 3, 16, 3, 1, bias=True, name="conv1"), "prelu", 16)        # 24
    x = b.act(b.conv(x, 16, 32, 3, 2, bias=True, name="conv2"), "prelu", 32)         # 12
    x = b.act(b.conv(x, 32, 32, 3, 2, bias=True, name="conv3"), "prelu", 32)         # 6
    x = b.act(b.gemm(b.flatten(x), 32 * 6 * 6, 64, name="fc1"), "relu")
    _rename_output(b, b.gemm(x, 64, 10, name="fc2"), "y")
    return b.model("tiny", [_in("x", 3, 24, 24)], [_out("y", 10)], doc=tiny.__doc__)


def resnext_block(seed: int = 9) -> onnx.ModelProto:
    """Two ResNeXt-50 32×4d bottlenecks on 256×56×56: one identity block (width 128, 3×3
    grouped conv, 32 groups) and one strided block (width 256, 3×3/s2 grouped, 1×1/s2
    projection shortcut) → 512×28×28."""
    b = _Builder(seed)
    x = "x"
    y = b.conv_bn(x, 256, 128, 1, name="block1.conv1")
    y = b.conv_bn(y, 128, 128, 3, group=32, name="block1.conv2")
    y = b.conv_bn(y, 128, 256, 1, act=None, name="block1.conv3")
    x = b.act(b.add(y, x), "relu")
    y = b.conv_bn(x, 256, 256, 1, name="block2.conv1")
    y = b.conv_bn(y, 256, 256, 3, 2, group=32, name="block2.conv2")
    y = b.conv_bn(y, 256, 512, 1, act=None, name="block2.conv3")
    sc = b.conv_bn(x, 256, 512, 1, 2, act=None, name="block2.downsample")
    _rename_output(b, b.act(b.add(y, sc), "relu"), "y")
    return b.model("resnext_block", [_in("x", 256, 56, 56)], [_out("y", 512, 28, 28)],
                   doc=resnext_block.__doc__)


def deeplab_atrous(num_classes: int = 21, seed: int = 10) -> onnx.ModelProto:
    """DeepLabV3 head on a 256×33×33 output-stride-16 feature map (513×513 image): a dilation-2
    3×3 conv, ASPP (1×1, 3×3 at dilations 6/12/18, image pooling with a bilinear Resize back),
    Concat, 1×1 projection, 3×3, classifier, bilinear Resize ×8."""
    b = _Builder(seed)
    c = 64
    x = b.conv_bn("x", 256, 256, 3, dilation=2, name="backbone.dilated")
    branches = [b.conv_bn(x, 256, c, 1, name="aspp.0")]
    for i, d in enumerate((6, 12, 18), start=1):
        branches.append(b.conv_bn(x, 256, c, 3, dilation=d, name=f"aspp.{i}"))
    p = b.conv_bn(b.gap(x), 256, c, 1, name="aspp.pool")
    p = b.node("Resize", [p, "", b.const(np.array([1, 1, 33, 33], np.float32))],
               "aspp.pool.upsample", mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel")
    x = b.node("Concat", branches + [p], "aspp.concat", axis=1)
    x = b.conv_bn(x, 5 * c, c, 1, name="aspp.project")
    x = b.conv_bn(x, c, c, 3, name="head.conv")
    x = b.conv(x, c, num_classes, 1, bias=True, name="head.classifier", gain=1.0)
    _rename_output(b, b.node("Resize", [x, "", b.const(np.array([1, 1, 8, 8], np.float32))],
                             "upsample", mode="linear",
                             coordinate_transformation_mode="pytorch_half_pixel"), "y")
    return b.model("deeplab_atrous", [_in("x", 256, 33, 33)], [_out("y", num_classes, 264, 264)],
                   doc=deeplab_atrous.__doc__)


def keras_nhwc_net(num_classes: int = 1000, seed: int = 11) -> onnx.ModelProto:
    """A Keras MobileNetV2 slice as tf2onnx exports it when its optimizer leaves the layout
    alone: NHWC input 1×224×224×3, every conv wrapped as Transpose(0,3,1,2) -> Conv (no
    bias) -> Transpose(0,2,3,1), BatchNormalization as Mul + Add by [C] constants on the
    NHWC tensor, ReLU6 as Clip(0, 6), ZeroPadding2D before the stride-2 convs as an NHWC
    Pad, residual Adds in NHWC; 16 convs (stem, 5 inverted-residual blocks, 1×1 head),
    GlobalAveragePooling2D as ReduceMean over axes 1, 2, Dense as MatMul + Add, Softmax."""
    b = _Builder(seed)
    zero, six = b._scalar(0.0), b._scalar(6.0)

    def conv(x, cin, cout, k, s=1, group=1, act=True, name=None):
        t = b.node("Transpose", [x], f"{name}.to_nchw", perm=[0, 3, 1, 2])
        pads = [0, 0, 0, 0] if s == 2 else [k // 2] * 4       # stride 2: padded in NHWC
        c = b.conv(t, cin, cout, k, s, pads=pads, group=group, name=name)
        y = b.node("Transpose", [c], f"{name}.to_nhwc", perm=[0, 2, 3, 1])
        scale = b.rng.uniform(0.8, 1.5, cout).astype(np.float32)
        shift = b.rng.normal(0, 0.1, cout).astype(np.float32)
        y = b.node("Mul", [y, b.const(scale, f"{name}.bn.scale")], f"{name}.bn.mul")
        y = b.node("Add", [y, b.const(shift, f"{name}.bn.shift")], f"{name}.bn.add")
        return b.node("Clip", [y, zero, six], f"{name}.relu6") if act else y

    def pad(x, name):      # ZeroPadding2D(((0, 1), (0, 1))) on NHWC
        return b.node("Pad", [x, b.const(np.array([0, 0, 0, 0, 0, 1, 1, 0], np.int64))],
                      name, mode="constant")

    x = conv(pad("x", "stem.pad"), 3, 32, 3, 2, name="stem")                  # 112×112×32
    x = conv(x, 32, 32, 3, group=32, name="b0.dw")
    x = conv(x, 32, 16, 1, act=False, name="b0.project")
    cin = 16
    for i, (cout, s) in enumerate(((24, 2), (24, 1), (32, 2), (32, 1)), start=1):
        mid = cin * 6
        h = conv(x, cin, mid, 1, name=f"b{i}.expand")
        if s == 2:
            h = pad(h, f"b{i}.pad")
        h = conv(h, mid, mid, 3, s, group=mid, name=f"b{i}.dw")
        h = conv(h, mid, cout, 1, act=False, name=f"b{i}.project")
        x = b.node("Add", [x, h], f"b{i}.add") if s == 1 and cin == cout else h
        cin = cout
    x = conv(x, cin, 256, 1, name="head")                                       # 28×28×256
    x = b.node("ReduceMean", [x], "gap", axes=[1, 2], keepdims=0)
    w = b.rng.normal(0, 0.08, (256, num_classes)).astype(np.float32)   # a peaked softmax
    x = b.node("MatMul", [x, b.const(w, "logits.weight")], "logits.matmul")
    x = b.node("Add", [x, b.const(b.rng.normal(0, 0.05, num_classes).astype(np.float32),
                                  "logits.bias")], "logits.add")
    _rename_output(b, b.node("Softmax", [x], "softmax", axis=-1), "y")
    return b.model("keras_nhwc_net", [_in("x", 224, 224, 3)], [_out("y", num_classes)],
                   doc=keras_nhwc_net.__doc__)


# ---------------------------------------------------------------------------------------
# Single-layer models (per-layer benchmarks and op tests)
# ---------------------------------------------------------------------------------------
def single_conv(in_shape: Sequence[int], cout: int, kernel: Sequence[int], strides=None,
                pads=None, dilations=None, group: int = 1, bias: bool = True,
                seed: int = 0, opset: int = 13) -> onnx.ModelProto:
    """One Conv node, fixed input shape (batch included): 'x' → 'y'."""
    nd = len(kernel)
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    if pads is None:
        pads = [d * (k - 1) // 2 for k, d in zip(kernel, dilations)] * 2
    b = _Builder(seed)
    y = b.conv("x", in_shape[1], cout, tuple(kernel), tuple(strides), pads=list(pads),
               dilation=tuple(dilations), group=group, bias=bias, name="conv")
    _rename_output(b, y, "y")
    out_sp = [(i + pads[a] + pads[a + nd] - d * (k - 1) - 1) // s + 1
              for a, (i, k, s, d) in enumerate(zip(in_shape[2:], kernel, strides, dilations))]
    g = helper.make_graph(b.nodes, "single_conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         [in_shape[0], cout, *out_sp])],
                          b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="fastcnn.zoo")
    m.ir_version = IR_VERSION
    return m


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
MODELS: Dict[str, Callable[[], onnx.ModelProto]] = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "unet_decoder": unet_decoder,
    "wavenet1d": wavenet1d,
    "c3d_small": c3d_small,
    "inception_kx1": inception_kx1,
    "nhwc_input_net": nhwc_input_net,
    "tiny": tiny,
    "resnext_block": resnext_block,
    "deeplab_atrous": deeplab_atrous,
    "keras_nhwc_net": keras_nhwc_net,
}

#: default input shapes at batch 1: {model: {input name: shape}}
INPUT_SHAPES: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "resnet18": {"input": (1, 3, 224, 224)},
    "mobilenet_v2": {"input": (1, 3, 224, 224)},
    "mobilenet_v3_small": {"input": (1, 3, 224, 224)},
    "unet_decoder": {"x": (1, 256, 16, 16)},
    "wavenet1d": {"x": (1, 1, 8192)},
    "c3d_small": {"x": (1, 3, 8, 56, 56)},
    "inception_kx1": {"x": (1, 3, 72, 72)},
    "nhwc_input_net": {"x": (1, 128, 128, 3)},
    "tiny": {"x": (1, 3, 24, 24)},
    "resnext_block": {"x": (1, 256, 56, 56)},
    "deeplab_atrous": {"x": (1, 256, 33, 33)},
    "keras_nhwc_net": {"x": (1, 224, 224, 3)},
}

#: documented output shapes at batch 1: {model: {output name: shape}}
OUTPUT_SHAPES: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "resnet18": {"output": (1, 1000)},
    "mobilenet_v2": {"output": (1, 1000)},
    "mobilenet_v3_small": {"output": (1, 1000)},
    "unet_decoder": {"y": (1, 3, 256, 256)},
    "wavenet1d": {"y": (1, 256, 8192)},
    "c3d_small": {"y": (1, 101)},
    "inception_kx1": {"y": (1, 1000)},
    "nhwc_input_net": {"y": (1, 1000)},
    "tiny": {"y": (1, 10)},
    "resnext_block": {"y": (1, 512, 28, 28)},
    "deeplab_atrous": {"y": (1, 21, 264, 264)},
    "keras_nhwc_net": {"y": (1, 1000)},
}

#: trainable parameter counts as torchvision counts them (BN running stats excluded)
PARAMS = {"resnet18": 11_689_512, "mobilenet_v2": 3_504_872, "mobilenet_v3_small": 2_542_856}


def input_shapes(name: str, batch: int = 1) -> Dict[str, Tuple[int, ...]]:
    """Default input shapes of zoo model `name` with the batch dimension set."""
    return {k: (batch,) + tuple(v[1:]) for k, v in INPUT_SHAPES[name].items()}


def random_inputs(name_or_shapes, batch: int = 1, seed: int = 0) -> Dict[str, np.ndarray]:
    """Seeded float32 feeds for a zoo model name or a {input: shape} dict."""
    shapes = (input_shapes(name_or_shapes, batch) if isinstance(name_or_shapes, str)
              else name_or_shapes)
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def count_params(model: onnx.ModelProto) -> int:
    """Float parameters, excluding BatchNormalization running mean/var (as torchvision counts)."""
    stats = set()
    for n in model.graph.node:
        if n.op_type == "BatchNormalization":
            stats.update(n.input[3:5])
    total = 0
    for t in model.graph.initializer:
        if t.name in stats or t.data_type not in (TensorProto.FLOAT, TensorProto.FLOAT16,
                                                  TensorProto.DOUBLE):
            continue
        if t.dims and len(t.dims) > 0:
            total += int(np.prod(t.dims))
        elif len(t.dims) == 0 and t.name.endswith(("weight", "bias")):
            total += 1
    return total


def get(name: str) -> onnx.ModelProto:
    """Build zoo model `name` (a key of MODELS); names the choices when unknown."""
    if name not in MODELS:
        raise KeyError(f"unknown zoo model '{name}'; choose from {', '.join(MODELS)}")
    return MODELS[name]()


def _main():  # pragma: no cover - a table for the docs
    from .benchmark import model_flops
    print(f"{'model':20s} {'params':>12s} {'GFLOP':>8s}  input → output")
    for name in MODELS:
        m = get(name)
        fl = model_flops(m, input_shapes(name))[0]
        ins = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in INPUT_SHAPES[name].items())
        outs = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in OUTPUT_SHAPES[name].items())
        print(f"{name:20s} {count_params(m):12,d} {fl / 1e9:8.3f}  {ins} → {outs}")


if __name__ == "__main__":  # pragma: no cover
    _main()
