"""Convolution as a matrix: the (doubly, triply) block Toeplitz matrix of a Conv.

A convolution is linear in its input, so for one image it is a matrix:

    conv(x)[0].ravel() == conv_matrix(w, x.shape[1:], ...) @ x[0].ravel()

`T` has one row per output element (M, O1..Od in C order) and one column per
input element (C, D1..Dd in C order).  Row (m, o) holds w[m, c, κ] in column
(c, o·s − p_begin + κ·d) for every tap that lands inside the input (taps that
land in the padding read zeros and are simply absent).  For 2D and one
channel this is the doubly block Toeplitz matrix of the lecture; with several
channels it is a block matrix of such blocks (dense here: these are oracles
for small cases, not kernels).

The transposed convolution is the adjoint.  ConvTranspose's weight
W [C, M/group, k...] maps x [C, D...] to y [M, O...] with

    O = s·(D − 1) + output_padding + d·(k − 1) + 1 − p_begin − p_end,
    y[m, o] = Σ_{c, i, κ : o = i·s − p_begin + κ·d} W[c, m mod (M/g), κ] · x[c, i].

Read W as the weight of an ordinary Conv with C output channels and M input
channels (shape [C, M/group, k...], same strides, pads, dilations, group):
that Conv maps the y-space [M, O...] back to the x-space [C, D...] (its
output size ⌊(O + p_begin + p_end − d(k−1) − 1)/s⌋ + 1 = D, because
output_padding < s), and its matrix T satisfies

    conv_transpose(x)[0].ravel() == T.T @ x[0].ravel(),   T = conv_matrix(W, (M, O...), ...)

`output_padding` only enlarges the y-space (the extra last rows/columns of y
receive no tap and stay zero, plus bias); `conv_transpose_matrix` builds that
y-space from the ConvTranspose attributes (including `output_shape`) and
returns T.T.  Bias is affine, not linear: add it separately.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["conv_matrix", "conv_transpose_matrix", "conv_output_shape",
           "conv_transpose_output_shape"]


def _norm(values, n, default):
    if values is None:
        return [default] * n
    values = [int(v) for v in values]
    if len(values) != n:
        raise ValueError(f"expected {n} values, got {values}")
    return values


def _spatial_args(w, input_shape, strides, pads, dilations):
    w = np.asarray(w)
    input_shape = tuple(int(d) for d in input_shape)
    nd = w.ndim - 2
    if nd < 1:
        raise ValueError(f"weight must have rank >= 3 ([M, C/group, k...]), got {w.shape}")
    if len(input_shape) == nd + 2:      # (1, C, D...) given: drop the batch
        if input_shape[0] != 1:
            raise ValueError("conv_matrix describes one image: batch must be 1")
        input_shape = input_shape[1:]
    if len(input_shape) != nd + 1:
        raise ValueError(f"input_shape {input_shape} does not match a {nd}D weight {w.shape}")
    strides = _norm(strides, nd, 1)
    dilations = _norm(dilations, nd, 1)
    pads = _norm(pads, 2 * nd, 0)
    return w, input_shape, nd, strides, pads, dilations


def conv_output_shape(kernel_shape, input_spatial, strides, pads, dilations) -> Tuple[int, ...]:
    """ONNX Conv output spatial sizes (explicit pads, floor)."""
    nd = len(kernel_shape)
    return tuple((input_spatial[a] + pads[a] + pads[a + nd]
                  - (dilations[a] * (kernel_shape[a] - 1) + 1)) // strides[a] + 1
                 for a in range(nd))


def conv_matrix(w, input_shape: Sequence[int], strides: Optional[Sequence[int]] = None,
                pads: Optional[Sequence[int]] = None,
                dilations: Optional[Sequence[int]] = None, group: int = 1) -> np.ndarray:
    """Dense matrix T of an ONNX Conv (no bias) for one image of shape (C, D1..Dd).

    w: [M, C/group, k1..kd]; pads in ONNX order (all begins, then all ends).
    Returns T of shape (M·ΠO, C·ΠD), dtype of w, with conv(x).ravel() == T @ x.ravel().
    """
    w, input_shape, nd, strides, pads, dilations = _spatial_args(
        w, input_shape, strides, pads, dilations)
    M, Cg = w.shape[0], w.shape[1]
    kernel = w.shape[2:]
    C, D = input_shape[0], input_shape[1:]
    if group < 1 or C != Cg * group or M % group:
        raise ValueError(f"channels do not match: input C={C}, weight {w.shape}, group={group}")
    O = conv_output_shape(kernel, D, strides, pads, dilations)
    if any(o < 1 for o in O):
        raise ValueError(f"empty output {O} for input {D}")
    Mg = M // group
    n_out, n_in = int(np.prod(O)), int(np.prod(D))
    T = np.zeros((M, n_out, C, n_in), dtype=w.dtype)
    out_idx = np.indices(O).reshape(nd, -1)                     # [nd, ΠO]
    rows = np.arange(n_out)
    for kappa in np.ndindex(*kernel):
        pos = [out_idx[a] * strides[a] - pads[a] + kappa[a] * dilations[a] for a in range(nd)]
        ok = np.ones(n_out, bool)
        for a in range(nd):
            ok &= (pos[a] >= 0) & (pos[a] < D[a])
        if not ok.any():
            continue
        cols = np.ravel_multi_index([p[ok] for p in pos], D)
        r = rows[ok]
        for m in range(M):
            g = m // Mg
            for c in range(Cg):
                # distinct (row, col) pairs per tap, but several taps may hit
                # the same pair only if dilation*kappa coincide, which they do not.
                T[m, r, g * Cg + c, cols] += w[(m, c) + kappa]
    return T.reshape(M * n_out, C * n_in)


def conv_transpose_output_shape(kernel_shape, input_spatial, strides, pads, dilations,
                                output_padding) -> Tuple[int, ...]:
    nd = len(kernel_shape)
    return tuple(strides[a] * (input_spatial[a] - 1) + output_padding[a]
                 + dilations[a] * (kernel_shape[a] - 1) + 1 - pads[a] - pads[a + nd]
                 for a in range(nd))


def conv_transpose_matrix(w, input_shape: Sequence[int], strides=None, pads=None,
                          dilations=None, group: int = 1, output_padding=None,
                          output_shape=None, auto_pad: str = "NOTSET") -> np.ndarray:
    """Dense matrix of an ONNX ConvTranspose (no bias) for one image (C, D1..Dd).

    w: [C, M/group, k1..kd].  Returns A of shape (M·ΠO, C·ΠD) with
    conv_transpose(x).ravel() == A @ x.ravel(); A is the transpose of the
    conv_matrix of w read as a Conv from the output space (M, O...) to (C, D...).
    `output_shape` (spatial sizes) overrides pads as the ONNX spec says
    (SAME_UPPER puts the odd pad at the end, anything else at the begin).
    """
    w, input_shape, nd, strides, pads, dilations = _spatial_args(
        w, input_shape, strides, pads, dilations)
    output_padding = _norm(output_padding, nd, 0)
    if any(not 0 <= op < max(s, d) for op, s, d in zip(output_padding, strides, dilations)):
        raise ValueError(f"output_padding {output_padding} must be < stride or dilation")
    C, D = input_shape[0], input_shape[1:]
    if C != w.shape[0]:
        raise ValueError(f"input has {C} channels, weight {w.shape} expects {w.shape[0]}")
    kernel = w.shape[2:]
    if output_shape is not None:
        output_shape = [int(v) for v in output_shape][-nd:]
        new_pads = [0] * (2 * nd)
        for a in range(nd):
            total = (strides[a] * (D[a] - 1) + output_padding[a]
                     + dilations[a] * (kernel[a] - 1) + 1 - output_shape[a])
            if auto_pad == "SAME_UPPER":
                new_pads[a], new_pads[a + nd] = total // 2, total - total // 2
            else:
                new_pads[a], new_pads[a + nd] = total - total // 2, total // 2
        pads = new_pads
    O = conv_transpose_output_shape(kernel, D, strides, pads, dilations, output_padding)
    if any(o < 1 for o in O):
        raise ValueError(f"empty output {O}")
    M = w.shape[1] * group
    # The adjoint Conv reads the y-space with output_padding ignored at the end:
    # its output size is D exactly (see module docstring).
    T = conv_matrix(w, (M,) + tuple(O), strides, pads, dilations, group)
    if T.shape[0] != C * int(np.prod(D)):
        raise AssertionError("adjoint conv has the wrong output size")   # pragma: no cover
    return np.ascontiguousarray(T.T)
