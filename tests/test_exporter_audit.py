"""Adversarial exporter-idiom audit: small graphs, each a pattern that once gave a silent
wrong answer, a crash or a needless error in fastcnn, compared with onnxruntime at 1 and
2 threads (see test_exporter_tf_paddle.py for the builder and the broad idiom coverage)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T

from test_exporter_tf_paddle import G, check, f32

RNG = np.random.default_rng(2026)


def _bn_params(g, c):
    return [g.c(g.rng.uniform(0.5, 1.5, c).astype(np.float32)), g.w(c), g.w(c),
            g.c(g.rng.uniform(0.5, 2, c).astype(np.float32))]


def gemm_c_rows_then_bn(c_shape):
    """BatchNorm1d after a Gemm whose C varies along the rows ([M, 1] with M == N): folding
    BN into the Gemm treated C as per column (wrong numbers)."""
    g = G(1)
    y = g.op("Gemm", ["x", g.w(4, 4), g.w(*c_shape)], transB=1, alpha=1.3, beta=0.7)
    y = g.op("BatchNormalization", [y] + _bn_params(g, 4))
    return g.model({"x": ([4, 4], T.FLOAT)}, [y], 15), [{"x": f32(RNG, 4, 4)}]


def bn_spatial0():
    """BatchNormalization-7 spatial=0 (parameters [C, H, W]) after a Conv: the BN fold
    reshaped them as per-channel vectors and raised a bare ValueError."""
    g = G(2)
    c = g.op("Conv", ["x", g.w(3, 3, 1, 1)])
    p = [g.c(g.rng.uniform(0.5, 1.5, (3, 5, 6)).astype(np.float32)), g.w(3, 5, 6), g.w(3, 5, 6),
         g.c(g.rng.uniform(0.5, 2, (3, 5, 6)).astype(np.float32))]
    y = g.op("BatchNormalization", [c] + p, spatial=0)
    return g.model({"x": ([2, 3, 5, 6], T.FLOAT)}, [y], 7), [{"x": f32(RNG, 2, 3, 5, 6)}]


def minus_one_dims():
    """Graph input dims written as dim_value -1 (old paddle2onnx, keras2onnx: a framework's
    batch -1 handed to onnx.helper): onnxruntime takes them as unknown; fastcnn refused the
    model ("declares negative dims")."""
    g = G(3)
    c = g.op("Conv", ["x", g.w(4, 3, 3, 3), g.w(4)], pads=[1, 1, 1, 1])
    y = g.op("Gemm", [g.op("Flatten", [g.op("GlobalAveragePool", [c])]), g.w(5, 4), g.w(5)],
             transB=1)
    m = g.model({"x": ([-1, 3, -1, -1], T.FLOAT)}, [y], 11)
    return m, [{"x": f32(RNG, 1, 3, 8, 8)}, {"x": f32(RNG, 3, 3, 5, 7)}]


CASES = {
    "gemm_c_Mx1_bn": lambda: gemm_c_rows_then_bn((4, 1)),
    "gemm_c_1xN_bn": lambda: gemm_c_rows_then_bn((1, 4)),
    "gemm_c_MxN_bn": lambda: gemm_c_rows_then_bn((4, 4)),
    "bn_spatial0_after_conv": bn_spatial0,
    "input_dims_minus_one": minus_one_dims,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exporter_audit(case):
    m, feeds = CASES[case]()
    check(m, feeds)
