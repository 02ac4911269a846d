"""Real CNN architectures, written in plain torch after torchvision's (and YOLOv5's,
U-Net's) definitions -- same layer types, same exporter idioms, reduced widths and
depths -- exported with the TorchScript exporter (dynamo=False) at opsets 11, 13 and 17
with a dynamic batch (and, for the models marked so, dynamic H and W: that gives the
Shape/Gather/Concat plumbing of interpolate, adaptive pooling and F.pad), run by fastcnn
at batch 1 and 2 on 1 and 2 threads and compared with torch's own output.

Every BatchNorm (and LayerNorm) gets random running statistics and affine parameters, so
batch-norm folding is really exercised.  Skipped without torch."""
import io
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import fastcnn  # noqa: E402

OPSETS = (11, 13, 17)


# -- harness ------------------------------------------------------------------------

def randomize(module, seed=0):
    """Non-trivial normalization statistics and affine parameters, then eval()."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return module.eval()


def export(module, x, opset, dynamic_hw=False, n_outputs=1, fold=True, dynamic_batch=True):
    """fold=False (do_constant_folding off) keeps every BatchNormalization (the exporter
    otherwise folds eval-mode BN into the conv before fastcnn sees it) and leaves the
    shape arithmetic to fastcnn's own constant folding."""
    names = [f"y{i}" for i in range(n_outputs)]
    axes = {0: "N", 2: "H", 3: "W"} if dynamic_hw else {0: "N"}
    dyn = {"x": axes}
    dyn.update({n: {0: "N"} for n in names})
    if not dynamic_batch:
        dyn = None
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the TorchScript exporter's warnings
        torch.onnx.export(module, (x,), f, opset_version=opset, dynamo=False,
                          input_names=["x"], output_names=names, dynamic_axes=dyn,
                          do_constant_folding=fold)
    return f.getvalue()


def _outputs(y):
    return [t.numpy() for t in (y if isinstance(y, (tuple, list)) else (y,))]


def check(module, x_shape, opset, dynamic_hw=False, seed=0, batches=(1, 2), threads=(1, 2),
          hw_alt=None, fold=True, dynamic_batch=True):
    """Export `module` with input (N,) + x_shape and compare fastcnn with torch.
    hw_alt: another spatial size to run as well when H/W are dynamic."""
    torch.manual_seed(seed)
    module = randomize(module, seed)
    x0 = torch.randn(1, *x_shape)
    with torch.no_grad():
        n_out = len(_outputs(module(x0)))
    model = export(module, x0, opset, dynamic_hw, n_out, fold, dynamic_batch)
    if not dynamic_batch:
        batches = (1,)
    shapes = [tuple(x_shape)]
    if dynamic_hw and hw_alt is not None:
        shapes.append(tuple(x_shape[:1]) + tuple(hw_alt))
    cases = []
    for shp in shapes:
        for b in batches:
            x = torch.randn(b, *shp)
            with torch.no_grad():
                cases.append((x.numpy(), _outputs(module(x))))
    for nt in threads:
        sess = fastcnn.InferenceSession(model, num_threads=nt)
        for x, want in cases:
            got = sess.run(None, {"x": x})
            assert len(got) == len(want)
            for k, (g_, w) in enumerate(zip(got, want)):
                assert g_.shape == w.shape, (k, x.shape, g_.shape, w.shape)
                scale = float(np.max(np.abs(w))) if w.size else 0.0
                np.testing.assert_allclose(g_, w, rtol=1e-4, atol=1e-4 * scale + 1e-5,
                                           err_msg=f"output {k}, x {x.shape}, {nt} threads")


def _make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvNormAct(nn.Sequential):
    """torchvision.ops.Conv2dNormActivation."""

    def __init__(self, cin, cout, k=3, stride=1, groups=1, norm=nn.BatchNorm2d, act=nn.ReLU,
                 dilation=1, padding=None, bias=None):
        if padding is None:
            padding = (k - 1) // 2 * dilation
        layers = [nn.Conv2d(cin, cout, k, stride, padding, dilation=dilation, groups=groups,
                            bias=norm is None if bias is None else bias)]
        if norm is not None:
            layers.append(norm(cout))
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.SiLU,
                                                          nn.Hardswish) else act())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation."""

    def __init__(self, cin, csq, act=nn.ReLU, scale_act=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(cin, csq, 1)
        self.fc2 = nn.Conv2d(csq, cin, 1)
        self.activation = act()
        self.scale_activation = scale_act()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x


# -- ResNet-50 / ResNeXt --------------------------------------------------------------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, groups=groups,
                               bias=False, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, layers=(3, 4, 6, 3), width=64, groups=1, width_per_group=64,
                 num_classes=1000, replace_stride_with_dilation=(False, False, False),
                 classifier=True):
        super().__init__()
        self.inplanes = width
        self.dilation = 1
        self.groups, self.base_width = groups, width_per_group
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(width * 4, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(width * 8, layers[3], 2, replace_stride_with_dilation[2])
        self.classifier = classifier
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * 4, num_classes)

    def _make_layer(self, planes, blocks, stride=1, dilate=False):
        downsample = None
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, self.groups,
                             self.base_width, previous_dilation)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, groups=self.groups,
                                     base_width=self.base_width, dilation=self.dilation))
        return nn.Sequential(*layers)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        x = self.features(x)
        if not self.classifier:
            return x
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet50(full=False):
    return ResNet() if full else ResNet((1, 2, 2, 1), width=16, num_classes=10)


def resnext(full=False):
    # ResNeXt-50 32x4d: 32 groups of 4 channels; reduced: 8 groups of 4, then 8 wide
    return ResNet((1, 1, 1, 1), width=16, groups=8, width_per_group=4, num_classes=10)


# -- RegNet (Y: with SE) --------------------------------------------------------------

class ResBottleneckBlock(nn.Module):
    def __init__(self, cin, cout, stride, group_width, bottleneck_multiplier=1.0, se_ratio=0.25):
        super().__init__()
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = ConvNormAct(cin, cout, 1, stride, act=None)
        w_b = int(round(cout * bottleneck_multiplier))
        g = w_b // group_width
        layers = [("a", ConvNormAct(cin, w_b, 1)),
                  ("b", ConvNormAct(w_b, w_b, 3, stride, groups=g))]
        if se_ratio:
            layers.append(("se", SqueezeExcitation(w_b, int(round(se_ratio * cin)))))
        layers.append(("c", ConvNormAct(w_b, cout, 1, act=None)))
        self.f = nn.Sequential(__import__("collections").OrderedDict(layers))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        if self.proj is not None:
            x = self.proj(x) + self.f(x)
        else:
            x = x + self.f(x)
        return self.activation(x)


class RegNet(nn.Module):
    def __init__(self, widths=(32, 64, 128), depths=(1, 2, 1), group_widths=(8, 16, 32),
                 num_classes=10):
        super().__init__()
        self.stem = ConvNormAct(3, 32, 3, 2)
        blocks, cin = [], 32
        for w, d, gw in zip(widths, depths, group_widths):
            for i in range(d):
                blocks.append(ResBottleneckBlock(cin, w, 2 if i == 0 else 1, gw))
                cin = w
        self.trunk_output = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.avgpool(self.trunk_output(self.stem(x)))
        return self.fc(x.flatten(start_dim=1))


# -- MobileNetV2 / V3 -----------------------------------------------------------------

class InvertedResidualV2(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(inp, hidden, 1, act=nn.ReLU6))
        layers += [ConvNormAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, width_mult=1.0, num_classes=1000, settings=None, last_channel=1280):
        super().__init__()
        settings = settings or [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                                [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        cin = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(last_channel * max(1.0, width_mult))
        features = [ConvNormAct(3, cin, stride=2, act=nn.ReLU6)]
        for t, c, n, s in settings:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidualV2(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(ConvNormAct(cin, self.last_channel, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v2(full=False):
    if full:
        return MobileNetV2()
    return MobileNetV2(0.5, 10, [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 1, 2],
                                 [6, 96, 1, 1], [6, 160, 1, 2]], last_channel=256)


class InvertedResidualV3(nn.Module):
    def __init__(self, cin, k, exp, cout, use_se, act, stride):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        A = nn.Hardswish if act == "HS" else nn.ReLU
        layers = []
        if exp != cin:
            layers.append(ConvNormAct(cin, exp, 1, act=A))
        layers.append(ConvNormAct(exp, exp, k, stride, groups=exp, act=A))
        if use_se:
            layers.append(SqueezeExcitation(exp, _make_divisible(exp // 4, 8),
                                            scale_act=nn.Hardsigmoid))
        layers.append(ConvNormAct(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        r = self.block(x)
        return r + x if self.use_res_connect else r


V3_LARGE = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
            (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
            (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
            (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
            (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
            (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
            (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
            (160, 5, 960, 160, True, "HS", 1)]
V3_SMALL = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
            (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
            (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
            (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
            (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
            (96, 5, 576, 96, True, "HS", 1)]


class MobileNetV3(nn.Module):
    def __init__(self, settings, last_channel, num_classes=1000):
        super().__init__()
        layers = [ConvNormAct(3, settings[0][0], 3, 2, act=nn.Hardswish)]
        for s in settings:
            layers.append(InvertedResidualV3(*s))
        lastconv_in = settings[-1][3]
        lastconv_out = 6 * lastconv_in
        layers.append(ConvNormAct(lastconv_in, lastconv_out, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(lastconv_out, last_channel),
                                        nn.Hardswish(inplace=True), nn.Dropout(0.2, inplace=True),
                                        nn.Linear(last_channel, num_classes))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def mobilenet_v3_large(full=False):
    return MobileNetV3(V3_LARGE, 1280, 1000 if full else 10)


def mobilenet_v3_small(full=False):
    return MobileNetV3(V3_SMALL, 1024, 1000 if full else 10)


# -- EfficientNet-B0 ------------------------------------------------------------------

class StochasticDepth(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = torch.empty([x.shape[0]] + [1] * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand, sd_prob):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        exp = _make_divisible(cin * expand, 8)
        layers = []
        if exp != cin:
            layers.append(ConvNormAct(cin, exp, 1, act=nn.SiLU))
        layers.append(ConvNormAct(exp, exp, k, stride, groups=exp, act=nn.SiLU))
        layers.append(SqueezeExcitation(exp, max(1, cin // 4), act=nn.SiLU))
        layers.append(ConvNormAct(exp, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(sd_prob)

    def forward(self, x):
        r = self.block(x)
        if self.use_res_connect:
            r = self.stochastic_depth(r) + x
        return r


class EfficientNet(nn.Module):
    B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
          (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
          (6, 3, 1, 192, 320, 1)]

    def __init__(self, settings=None, num_classes=1000, last=1280):
        super().__init__()
        settings = settings or self.B0
        layers = [ConvNormAct(3, settings[0][3], 3, 2, act=nn.SiLU)]
        total = sum(s[5] for s in settings)
        idx = 0
        for e, k, s, cin, cout, n in settings:
            stage = []
            for i in range(n):
                stage.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e,
                                    0.2 * idx / total))
                idx += 1
            layers.append(nn.Sequential(*stage))
        layers.append(ConvNormAct(settings[-1][4], last, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(last, num_classes))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def efficientnet_b0(full=False):
    if full:
        return EfficientNet()
    return EfficientNet([(1, 3, 1, 16, 8, 1), (6, 3, 2, 8, 16, 2), (6, 5, 2, 16, 24, 1),
                         (6, 3, 2, 24, 40, 1), (6, 5, 1, 40, 48, 2), (6, 5, 2, 48, 64, 1)],
                        10, 256)


# -- DenseNet-121 ---------------------------------------------------------------------

class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        prev = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        concated = torch.cat(prev, 1)
        out = self.conv1(self.relu1(self.norm1(concated)))
        return self.conv2(self.relu2(self.norm2(out)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n, cin, bn_size, growth):
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x):
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2, 2))


class DenseNet(nn.Module):
    def __init__(self, growth=32, blocks=(6, 12, 24, 16), init=64, bn_size=4, num_classes=1000):
        super().__init__()
        feats = [nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init),
                 nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        c = init
        for i, n in enumerate(blocks):
            feats.append(DenseBlock(n, c, bn_size, growth))
            c += n * growth
            if i != len(blocks) - 1:
                feats.append(Transition(c, c // 2))
                c //= 2
        feats.append(nn.BatchNorm2d(c))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def densenet121(full=False):
    return DenseNet() if full else DenseNet(8, (2, 3, 2), 16, 2, 10)


# -- SqueezeNet -----------------------------------------------------------------------

class Fire(nn.Module):
    def __init__(self, cin, sq, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, sq, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(sq, e1, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(sq, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self, version="1_0", num_classes=1000):
        super().__init__()
        MP = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        if version == "1_0":
            self.features = nn.Sequential(
                nn.Conv2d(3, 96, 7, 2), nn.ReLU(inplace=True), MP(),
                Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), MP(),
                Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                Fire(384, 64, 256, 256), MP(), Fire(512, 64, 256, 256))
        else:
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), MP(),
                Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), MP(),
                Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), MP(),
                Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                Fire(512, 64, 256, 256))
        final_conv = nn.Conv2d(512, num_classes, 1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), final_conv, nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet1_0(full=False):
    return SqueezeNet("1_0", 1000 if full else 10)


def squeezenet1_1(full=False):
    return SqueezeNet("1_1", 1000 if full else 10)


# -- ShuffleNetV2 ---------------------------------------------------------------------

def channel_shuffle(x, groups):
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleBlock(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        bf = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else bf, bf, 1, bias=False), nn.BatchNorm2d(bf),
            nn.ReLU(inplace=True),
            nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000):
        super().__init__()
        cin = channels[0]
        self.conv1 = nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for n, cout in zip(repeats, channels[1:4]):
            seq = [ShuffleBlock(cin, cout, 2)] + [ShuffleBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*seq))
            cin = cout
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(nn.Conv2d(cin, channels[-1], 1, bias=False),
                                   nn.BatchNorm2d(channels[-1]), nn.ReLU(inplace=True))
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        x = x.mean([2, 3])
        return self.fc(x)


def shufflenet_v2(full=False):
    return ShuffleNetV2() if full else ShuffleNetV2((2, 2, 1), (24, 48, 96, 192, 256), 10)


# -- GoogLeNet / Inception-v3 ---------------------------------------------------------

class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin, ch1, ch3r, ch3, ch5r, ch5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3r, kernel_size=1),
                                     BasicConv2d(ch3r, ch3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5r, kernel_size=1),
                                     BasicConv2d(ch5r, ch5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(cin, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def _transform_input(x):
    """torchvision's transform_input=True (set with the pretrained weights)."""
    x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return torch.cat((x_ch0, x_ch1, x_ch2), 1)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes=1000, full=True):
        super().__init__()
        d = 1 if full else 4
        c = lambda *v: [max(4, a // d) for a in v]  # noqa: E731
        self.conv1 = BasicConv2d(3, 64 // d, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64 // d, 64 // d, kernel_size=1)
        self.conv3 = BasicConv2d(64 // d, 192 // d, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        cfg = [("3a", 192, (64, 96, 128, 16, 32, 32)), ("3b", 256, (128, 128, 192, 32, 96, 64)),
               ("M", 0, 0),
               ("4a", 480, (192, 96, 208, 16, 48, 64)), ("4b", 512, (160, 112, 224, 24, 64, 64)),
               ("4c", 512, (128, 128, 256, 24, 64, 64)), ("4d", 512, (112, 144, 288, 32, 64, 64)),
               ("4e", 528, (256, 160, 320, 32, 128, 128)), ("M2", 0, 0),
               ("5a", 832, (256, 160, 320, 32, 128, 128)), ("5b", 832, (384, 192, 384, 48, 128, 128))]
        if not full:
            cfg = [cfg[0], cfg[1], cfg[2], cfg[3], cfg[8], cfg[9]]
        blocks, cin = [], 192 // d
        for name, _, ch in cfg:
            if name == "M":
                blocks.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
            elif name == "M2":
                blocks.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
            else:
                ch = c(*ch)
                blocks.append(Inception(cin, *ch))
                cin = ch[0] + ch[2] + ch[4] + ch[5]
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = _transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.blocks(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def googlenet(full=False):
    return GoogLeNet(1000, True) if full else GoogLeNet(10, False)


class InceptionA(nn.Module):
    def __init__(self, cin, pool_features, d):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48 // d, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48 // d, 64 // d, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)
        self.cout = (64 + 64 + 96) // d + pool_features

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384 // d, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64 // d, 96 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96 // d, 96 // d, kernel_size=3, stride=2)
        self.cout = (384 + 96) // d + cin

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7, d):
        super().__init__()
        o = 192 // d
        self.branch1x1 = BasicConv2d(cin, o, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, o, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, o, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, o, kernel_size=1)
        self.cout = 4 * o

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5):
            bd = m(bd)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192 // d, 320 // d, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192 // d, 192 // d, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192 // d, 192 // d, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192 // d, 192 // d, kernel_size=3, stride=2)
        self.cout = (320 + 192) // d + cin

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin, d):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 320 // d, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384 // d, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384 // d, 384 // d, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384 // d, 384 // d, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448 // d, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448 // d, 384 // d, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384 // d, 384 // d, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384 // d, 384 // d, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192 // d, kernel_size=1)
        self.cout = (320 + 4 * 384 + 192) // d

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b3, bd, bp], 1)


class InceptionV3(nn.Module):
    """Inception-v3's stem and one block of each kind A-E, widths / 8."""

    def __init__(self, d=8, num_classes=10):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32 // d * 2, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32 // d * 2, 32 // d * 2, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32 // d * 2, 64 // d, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64 // d, 80 // d, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80 // d, 192 // d, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        a = InceptionA(192 // d, 32 // d, d)
        b = InceptionB(a.cout, d)
        c = InceptionC(b.cout, 128 // d, d)
        dd = InceptionD(c.cout, d)
        e = InceptionE(dd.cout, d)
        self.mixed = nn.Sequential(a, b, c, dd, e)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(e.cout, num_classes)

    def forward(self, x):
        x = _transform_input(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool1(x)
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.mixed(x)
        x = torch.flatten(self.dropout(self.avgpool(x)), 1)
        return self.fc(x)


# -- VGG-11 / AlexNet -----------------------------------------------------------------

class VGG(nn.Module):
    def __init__(self, cfg=(64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
                 d=1, hidden=4096, num_classes=1000, batch_norm=False):
        super().__init__()
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(nn.Conv2d(cin, v // d, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v // d))
                layers.append(nn.ReLU(inplace=True))
                cin = v // d
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


def vgg11(full=False):
    return VGG() if full else VGG(d=8, hidden=128, num_classes=10)


def vgg11_bn(full=False):
    return VGG(d=8, hidden=64, num_classes=10, batch_norm=True)


class AlexNet(nn.Module):
    def __init__(self, d=1, hidden=4096, num_classes=1000, lrn=False):
        super().__init__()
        c = [64 // d, 192 // d, 384 // d, 256 // d, 256 // d]
        L = (lambda: [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)]) if lrn else list
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(inplace=True), *L(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), *L(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        # with LRN (the original network's), the exporter loses the static sizes that
        # adaptive_avg_pool2d needs: a flatten of the 6x6 map as before torchvision's pool
        self.avgpool = nn.Identity() if lrn else nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes))

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


# -- ConvNeXt -------------------------------------------------------------------------

class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    def __init__(self, dim, layer_scale=1e-6, sd_prob=0.0):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
            Permute([0, 2, 3, 1]), nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim),
            nn.GELU(), nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(sd_prob)

    def forward(self, x):
        result = self.layer_scale * self.block(x)
        return self.stochastic_depth(result) + x


class ConvNeXt(nn.Module):
    def __init__(self, dims=(16, 32, 64), depths=(1, 2, 1), num_classes=10):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (dim, n) in enumerate(zip(dims, depths)):
            layers.append(nn.Sequential(*[CNBlock(dim, layer_scale=0.5) for _ in range(n)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6),
                                            nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[-1], num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


# -- MNASNet --------------------------------------------------------------------------

_BN_MOMENTUM = 1 - 0.9997


class MnasInvRes(nn.Module):
    def __init__(self, cin, cout, k, stride, exp):
        super().__init__()
        mid = cin * exp
        self.apply_residual = cin == cout and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, k, padding=k // 2, stride=stride, groups=mid, bias=False),
            nn.BatchNorm2d(mid, momentum=_BN_MOMENTUM), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout, momentum=_BN_MOMENTUM))

    def forward(self, x):
        return self.layers(x) + x if self.apply_residual else self.layers(x)


class MNASNet(nn.Module):
    def __init__(self, depths=(32, 16, 24, 40, 80, 96, 192, 320), repeats=(3, 3, 3, 2, 4, 1),
                 num_classes=10, last=256):
        super().__init__()
        BN = lambda c: nn.BatchNorm2d(c, momentum=_BN_MOMENTUM)  # noqa: E731
        layers = [nn.Conv2d(3, depths[0], 3, padding=1, stride=2, bias=False), BN(depths[0]),
                  nn.ReLU(inplace=True),
                  nn.Conv2d(depths[0], depths[0], 3, padding=1, stride=1, groups=depths[0],
                            bias=False), BN(depths[0]), nn.ReLU(inplace=True),
                  nn.Conv2d(depths[0], depths[1], 1, bias=False), BN(depths[1])]
        spec = [(3, 2, 3), (5, 2, 3), (5, 2, 6), (3, 1, 6), (5, 2, 6), (3, 1, 6)]
        for (k, s, e), cin, cout, n in zip(spec, depths[1:], depths[2:], repeats):
            layers.append(MnasInvRes(cin, cout, k, s, e))
            layers += [MnasInvRes(cout, cout, k, 1, e) for _ in range(n - 1)]
        layers += [nn.Conv2d(depths[7], last, 1, bias=False), BN(last), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2, inplace=True), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.layers(x).mean([2, 3])
        return self.classifier(x)


def mnasnet(full=False):
    return MNASNet((16, 8, 16, 24, 32, 48, 64, 96), (2, 2, 1, 1, 2, 1))


# -- DeepLabV3 / FCN ------------------------------------------------------------------

class ASPPPooling(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        size = x.shape[-2:]
        for mod in self:
            x = mod(x)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, cin, rates=(6, 12, 18), cout=32):
        super().__init__()
        mods = [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())]
        for r in rates:
            mods.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=r, dilation=r, bias=False),
                                      nn.BatchNorm2d(cout), nn.ReLU()))
        mods.append(ASPPPooling(cin, cout))
        self.convs = nn.ModuleList(mods)
        self.project = nn.Sequential(nn.Conv2d(len(mods) * cout, cout, 1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU(), nn.Dropout(0.5))

    def forward(self, x):
        return self.project(torch.cat([conv(x) for conv in self.convs], dim=1))


class DeepLabV3(nn.Module):
    """ResNet backbone with replace_stride_with_dilation=[False, True, True] (output stride
    8), DeepLabHead (ASPP) and the auxiliary FCNHead, both upsampled to the input size."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.backbone = ResNet((1, 1, 1, 1), width=8, replace_stride_with_dilation=(False, True, True),
                               classifier=False)
        self.classifier = nn.Sequential(ASPP(256), nn.Conv2d(32, 32, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, num_classes, 1))
        self.aux_classifier = nn.Sequential(nn.Conv2d(256, 16, 3, padding=1, bias=False),
                                            nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.1),
                                            nn.Conv2d(16, num_classes, 1))

    def forward(self, x):
        input_shape = x.shape[-2:]
        features = self.backbone.features(x)
        out = F.interpolate(self.classifier(features), size=input_shape, mode="bilinear",
                            align_corners=False)
        aux = F.interpolate(self.aux_classifier(features), size=input_shape, mode="bilinear",
                            align_corners=False)
        return out, aux


# -- U-Net ----------------------------------------------------------------------------

class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, mid=None):
        mid = mid or cout
        super().__init__(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid),
                         nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    def __init__(self, n_classes=3, w=8):
        super().__init__()
        self.inc = DoubleConv(3, w)
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), DoubleConv(w * 2 ** i, w * 2 ** (i + 1)))
                                    for i in range(3)])
        self.ups = nn.ModuleList([Up(w * 2 ** (i + 1), w * 2 ** i) for i in reversed(range(3))])
        self.outc = nn.Conv2d(w, n_classes, kernel_size=1)

    def forward(self, x):
        xs = [self.inc(x)]
        for d in self.downs:
            xs.append(d(xs[-1]))
        x = xs.pop()
        for up in self.ups:
            x = up(x, xs.pop())
        return self.outc(x)


# -- YOLOv5 ---------------------------------------------------------------------------

class YConv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    def __init__(self, c1, c2, k=1):
        super().__init__()
        self.conv = YConv(c1 * 4, c2, k)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                    x[..., 1::2, 1::2]], 1))


class YBottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = YConv(c1, c_, 1)
        self.cv2 = YConv(c_, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = YConv(c1, c_)
        self.cv2 = YConv(c1, c_)
        self.cv3 = YConv(2 * c_, c2)
        self.m = nn.Sequential(*(YBottleneck(c_, c_, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = YConv(c1, c_)
        self.cv2 = YConv(c_ * 4, c2)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Detect(nn.Module):
    def __init__(self, nc, chs, strides, na=3):
        super().__init__()
        self.nc, self.no, self.na, self.nl = nc, nc + 5, na, len(chs)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * na, 1) for c in chs)
        self.stride = strides
        anchors = torch.tensor([[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                                [116, 90, 156, 198, 373, 326]], dtype=torch.float32)
        self.register_buffer("anchors", anchors[:self.nl].view(self.nl, -1, 2) /
                             torch.tensor(strides, dtype=torch.float32).view(-1, 1, 1))

    def _make_grid(self, nx, ny, i):
        shape = 1, self.na, ny, nx, 2
        y, x = torch.arange(ny, dtype=torch.float32), torch.arange(nx, dtype=torch.float32)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid

    def forward(self, xs):
        z = []
        for i in range(self.nl):
            x = self.m[i](xs[i])
            bs, _, ny, nx = x.shape
            x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            grid, anchor_grid = self._make_grid(nx, ny, i)
            xy, wh, conf = x.sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            y = torch.cat((xy, wh, conf), 4)
            z.append(y.view(bs, self.na * nx * ny, self.no))
        return torch.cat(z, 1)


class YOLOv5(nn.Module):
    def __init__(self, w=8, nc=3):
        super().__init__()
        self.focus = Focus(3, w, 3)
        self.b1 = nn.Sequential(YConv(w, 2 * w, 3, 2), C3(2 * w, 2 * w))
        self.b2 = nn.Sequential(YConv(2 * w, 4 * w, 3, 2), C3(4 * w, 4 * w, 2))   # P3/8
        self.b3 = nn.Sequential(YConv(4 * w, 8 * w, 3, 2), C3(8 * w, 8 * w))      # P4/16
        self.b4 = nn.Sequential(YConv(8 * w, 16 * w, 3, 2), C3(16 * w, 16 * w), SPPF(16 * w, 16 * w))
        self.h1 = YConv(16 * w, 8 * w)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h2 = C3(16 * w, 8 * w, shortcut=False)
        self.h3 = YConv(8 * w, 4 * w)
        self.h4 = C3(8 * w, 4 * w, shortcut=False)                                 # P3 out
        self.h5 = YConv(4 * w, 4 * w, 3, 2)
        self.h6 = C3(8 * w, 8 * w, shortcut=False)                                 # P4 out
        self.detect = Detect(nc, (4 * w, 8 * w), (8.0, 16.0))

    def forward(self, x):
        x = self.b1(self.focus(x))
        p3 = self.b2(x)
        p4 = self.b3(p3)
        p5 = self.b4(p4)
        h1 = self.h1(p5)
        h2 = self.h2(torch.cat([self.up(h1), p4], 1))
        h3 = self.h3(h2)
        o3 = self.h4(torch.cat([self.up(h3), p3], 1))
        o4 = self.h6(torch.cat([self.h5(o3), h3], 1))
        return self.detect([o3, o4])


# -- 1D audio / 3D video --------------------------------------------------------------

class AudioCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        layers, cin = [], 1
        for cout, k, s, d in [(16, 9, 2, 1), (16, 3, 1, 2), (32, 3, 1, 4), (32, 3, 1, 8)]:
            layers += [nn.Conv1d(cin, cout, k, s, padding=d * (k - 1) // 2, dilation=d, bias=False),
                       nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]
            cin = cout
            if d in (1, 4):
                layers.append(nn.MaxPool1d(3, 2, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class VideoCNN(nn.Module):
    """r3d_18-style stem + a residual block + a strided block."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 16, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                                  nn.BatchNorm3d(16), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.b1 = nn.Sequential(nn.Conv3d(16, 16, 3, padding=1, bias=False), nn.BatchNorm3d(16),
                                nn.ReLU(inplace=True), nn.Conv3d(16, 16, 3, padding=1, bias=False),
                                nn.BatchNorm3d(16))
        self.b2 = nn.Sequential(nn.Conv3d(16, 32, 3, 2, 1, bias=False), nn.BatchNorm3d(32),
                                nn.ReLU(inplace=True), nn.MaxPool3d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = F.relu(self.b1(x) + x)
        x = self.avgpool(self.b2(x))
        return self.fc(x.flatten(1))


# -- the table ------------------------------------------------------------------------

# name: (factory, input shape without the batch, dynamic H/W, other H/W to try)
MODELS = {
    "resnet50": (lambda: resnet50(), (3, 64, 64), False, None),
    "resnet50_dynhw": (lambda: resnet50(), (3, 64, 64), True, (72, 56)),
    "resnext": (lambda: resnext(), (3, 64, 64), False, None),
    "regnet_y": (lambda: RegNet(), (3, 64, 64), False, None),
    "mobilenet_v2": (lambda: mobilenet_v2(), (3, 64, 64), True, (96, 80)),
    "mobilenet_v3_small": (lambda: mobilenet_v3_small(), (3, 64, 64), False, None),
    "mobilenet_v3_large": (lambda: mobilenet_v3_large(), (3, 64, 64), True, (72, 96)),
    "efficientnet_b0": (lambda: efficientnet_b0(), (3, 64, 64), True, (96, 64)),
    "densenet121": (lambda: densenet121(), (3, 64, 64), True, (80, 64)),
    "squeezenet1_0": (lambda: squeezenet1_0(), (3, 67, 67), False, None),
    "squeezenet1_1": (lambda: squeezenet1_1(), (3, 64, 64), True, (69, 75)),
    "shufflenet_v2": (lambda: shufflenet_v2(), (3, 64, 64), True, (96, 64)),
    "googlenet": (lambda: googlenet(), (3, 64, 64), False, None),
    "inception_v3": (lambda: InceptionV3(), (3, 107, 107), False, None),
    "vgg11": (lambda: vgg11(), (3, 224, 224), False, None),
    "vgg11_bn": (lambda: vgg11_bn(), (3, 224, 224), False, None),
    "alexnet": (lambda: AlexNet(4, 128, 10), (3, 224, 224), False, None),
    "alexnet_lrn": (lambda: AlexNet(4, 128, 10, lrn=True), (3, 224, 224), False, None),
    "convnext": (lambda: ConvNeXt(), (3, 64, 64), True, (96, 64)),
    "mnasnet": (lambda: mnasnet(), (3, 64, 64), False, None),
    "deeplabv3": (lambda: DeepLabV3(), (3, 64, 64), True, (72, 56)),
    "deeplabv3_static": (lambda: DeepLabV3(), (3, 65, 63), False, None),
    "unet": (lambda: UNet(), (3, 60, 60), False, None),
    "unet_dynhw": (lambda: UNet(), (3, 60, 60), True, (61, 75)),
    "yolov5": (lambda: YOLOv5(), (3, 64, 64), False, None),
    "yolov5_dynhw": (lambda: YOLOv5(), (3, 64, 64), True, (96, 64)),
    "audio1d": (lambda: AudioCNN(), (1, 4000), False, None),
    "video3d": (lambda: VideoCNN(), (3, 8, 32, 32), False, None),
}


@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", list(MODELS))
def test_architecture(name, opset, fold):
    factory, shape, dyn_hw, alt = MODELS[name]
    check(factory(), shape, opset, dynamic_hw=dyn_hw, hw_alt=alt, fold=fold)
