"""Single convolutions with the shapes of real networks: fastcnn vs onnxruntime at 1 and 2
threads.  Each case is one Conv node (with bias) at batch 1.

    pytest benchmarks/bench_layers_conv.py -k resnet18
    pytest benchmarks/bench_layers_conv.py --benchmark-disable     # smoke
"""
import functools

import numpy as np
import pytest

from conftest import RUNTIMES, THREADS
from fastcnn import zoo

# name: (input shape, out channels, kernel, strides, dilations, group, pads or None)
CASES = {
    # ResNet-18
    "resnet18.conv1 7x7/2 3->64 @224": ((1, 3, 224, 224), 64, (7, 7), (2, 2), (1, 1), 1, None),
    "resnet18.layer1 3x3 64->64 @56": ((1, 64, 56, 56), 64, (3, 3), (1, 1), (1, 1), 1, None),
    "resnet18.layer2 3x3/2 64->128 @56": ((1, 64, 56, 56), 128, (3, 3), (2, 2), (1, 1), 1, None),
    "resnet18.layer2.ds 1x1/2 64->128": ((1, 64, 56, 56), 128, (1, 1), (2, 2), (1, 1), 1, None),
    "resnet18.layer3 3x3 256->256 @14": ((1, 256, 14, 14), 256, (3, 3), (1, 1), (1, 1), 1, None),
    "resnet18.layer4 3x3 512->512 @7": ((1, 512, 7, 7), 512, (3, 3), (1, 1), (1, 1), 1, None),
    # MobileNetV2
    "mbv2 expand 1x1 24->144 @56": ((1, 24, 56, 56), 144, (1, 1), (1, 1), (1, 1), 1, None),
    "mbv2 dw 3x3 144 @56": ((1, 144, 56, 56), 144, (3, 3), (1, 1), (1, 1), 144, None),
    "mbv2 dw 3x3/2 96 @112": ((1, 96, 112, 112), 96, (3, 3), (2, 2), (1, 1), 96, None),
    "mbv2 project 1x1 144->24 @56": ((1, 144, 56, 56), 24, (1, 1), (1, 1), (1, 1), 1, None),
    "mbv2 last 1x1 320->1280 @7": ((1, 320, 7, 7), 1280, (1, 1), (1, 1), (1, 1), 1, None),
    # MobileNetV3-small
    "mbv3 dw 5x5/2 96 @28": ((1, 96, 28, 28), 96, (5, 5), (2, 2), (1, 1), 96, None),
    "mbv3 dw 5x5 576 @7": ((1, 576, 7, 7), 576, (5, 5), (1, 1), (1, 1), 576, None),
    "mbv3 se fc1 1x1 576->144 @1": ((1, 576, 1, 1), 144, (1, 1), (1, 1), (1, 1), 1, None),
    # ResNeXt-50 32x4d
    "resnext 3x3 128 g32 @56": ((1, 128, 56, 56), 128, (3, 3), (1, 1), (1, 1), 32, None),
    "resnext 3x3/2 256 g32 @56": ((1, 256, 56, 56), 256, (3, 3), (2, 2), (1, 1), 32, None),
    # DeepLab atrous (ASPP on an output-stride-16 map)
    "deeplab 3x3 d6 256->64 @33": ((1, 256, 33, 33), 64, (3, 3), (1, 1), (6, 6), 1, None),
    "deeplab 3x3 d12 256->64 @33": ((1, 256, 33, 33), 64, (3, 3), (1, 1), (12, 12), 1, None),
    "deeplab 3x3 d18 256->64 @33": ((1, 256, 33, 33), 64, (3, 3), (1, 1), (18, 18), 1, None),
    # WaveNet 1D (causal: left padding only)
    "wavenet k2 d1 32->32 @8192": ((1, 32, 8192), 32, (2,), (1,), (1,), 1, [1, 0]),
    "wavenet k2 d64 32->32 @8192": ((1, 32, 8192), 32, (2,), (1,), (64,), 1, [64, 0]),
    "wavenet k2 d512 32->32 @8192": ((1, 32, 8192), 32, (2,), (1,), (512,), 1, [512, 0]),
    "wavenet skip 1x1 32->64 @8192": ((1, 32, 8192), 64, (1,), (1,), (1,), 1, [0, 0]),
    # 3D CNN (C3D-style)
    "c3d 3x3x3 16->32 @8x28x28": ((1, 16, 8, 28, 28), 32, (3, 3, 3), (1, 1, 1), (1, 1, 1), 1,
                                  None),
    "c3d 3x3x3 64->64 @4x14x14": ((1, 64, 4, 14, 14), 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), 1,
                                  None),
    # Inception k x 1 / 1 x k
    "inception 1x7 128->128 @17": ((1, 128, 17, 17), 128, (1, 7), (1, 1), (1, 1), 1, None),
    "inception 7x1 128->192 @17": ((1, 128, 17, 17), 192, (7, 1), (1, 1), (1, 1), 1, None),
    "inception 1x3 192->96 @17": ((1, 192, 17, 17), 96, (1, 3), (1, 1), (1, 1), 1, None),
}


def conv_flops(shape, cout, kernel, strides, dilations, group, pads):
    nd = len(kernel)
    if pads is None:
        pads = [d * (k - 1) // 2 for k, d in zip(kernel, dilations)] * 2
    out = [(i + pads[a] + pads[a + nd] - d * (k - 1) - 1) // s + 1
           for a, (i, k, s, d) in enumerate(zip(shape[2:], kernel, strides, dilations))]
    return 2.0 * shape[0] * cout * np.prod(out) * (shape[1] // group) * np.prod(kernel)


@functools.lru_cache(maxsize=None)
def _case(name):
    shape, cout, k, s, d, g, pads = CASES[name]
    model = zoo.single_conv(shape, cout, k, strides=s, pads=pads, dilations=d, group=g)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return model, {"x": x}, conv_flops(shape, cout, k, s, d, g, pads)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", list(CASES))
def test_conv(bench_pair, case, threads, runtime):
    model, feeds, flops = _case(case)
    bench_pair("conv layers", case, model, feeds, runtime, threads, flops=flops)
