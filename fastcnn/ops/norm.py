"""Normalizations: BatchNormalization (inference), InstanceNormalization, LRN,
LayerNormalization, GroupNormalization, MeanVarianceNormalization.

BatchNormalization with constant statistics becomes a per-channel affine
y = x * s[c] + t[c],  s = scale / sqrt(var + eps),  t = B - mean * s,
precomputed at prepare time and run by the `affine_channel` kernel (float32).
Normally the BN-folding pass removes BN after a Conv; this is the standalone form
(DenseNet's BN-ReLU-Conv, a BN after a Concat).  The activation that follows it may be
fused (passes/fuse_activation.py: attributes `fastcnn_activation`/`_params`, as for
Conv): y = act(x * s[c] + t[c]) in the same pass over the data.
"""
from __future__ import annotations

import functools

import numpy as np

from .activation import F32, _k, keep_alive
from .base import Op, TensorInfo, optional
from .attrs import flag_attr, float_attr, int_attr, ints_attr
from .conv_util import parse_epilogue
from .registry import register
from .tensor_ops import norm_axis


def _eps(op, default=1e-5):
    e = op.attr("epsilon", default)
    if not isinstance(e, (int, float)) or not np.isfinite(e) or e < 0:
        raise op.error(f"epsilon must be a finite non-negative number, got {e!r}")
    return float(e)


@register("BatchNormalization", since_version=1)
class BatchNormalization(Op):
    inplace = {0: 0}
    #: activations the affine kernel applies in the same pass (scalar parameters only)
    fused_activations = frozenset({"Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish",
                                   "Sigmoid", "Tanh", "Silu", "Mish", "Elu"})

    def setup(self):
        self.eps = _eps(self)
        self.epilogue = parse_epilogue(self)
        if self.epilogue.residual or self.epilogue.name not in self.fused_activations | {""}:
            raise self.error(f"fastcnn_activation {self.epilogue.name!r} cannot be fused into "
                             "BatchNormalization")
        if self.opset >= 14 and flag_attr(self, "training_mode", 0):
            raise self.error("training_mode=1 is not supported (fastcnn runs inference only)")
        if self.opset < 7:
            flag_attr(self, "is_test", 0)   # training flag of BN-6: inference ignores it
        self.spatial = flag_attr(self, "spatial", 1) if self.opset < 9 else 1

    def infer(self, inputs):
        if len(inputs) < 5 or any(x is None for x in inputs[:5]):
            raise self.error("needs inputs X, scale, B, mean, var")
        x = inputs[0]
        if len(x.shape) < 2:
            raise self.shape_error(f"X must have rank >= 2, got {list(x.shape)}")
        c = x.shape[1]
        for k, name in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
            s = inputs[k].shape
            ok = (tuple(s) == (c,)) or (not self.spatial and tuple(s) == tuple(x.shape[1:]))
            if not ok:
                raise self.shape_error(f"{name} has shape {list(s)}, expected [{c}]")
        outs = [TensorInfo(x.shape, x.dtype)]
        for k in (3, 4):       # running mean / var outputs (opset < 14 training outputs)
            if len(self.node.outputs) > len(outs) and self.node.outputs[len(outs)]:
                v = inputs[k]
                outs.append(TensorInfo(v.shape, v.dtype, v.value) if v.value is not None
                            else TensorInfo(v.shape, v.dtype))
        return outs

    def _param_shape(self, x_ndim, p):
        return (p.shape[0],) + (1,) * (x_ndim - 2) if p.ndim == 1 else p.shape

    def layouts(self, inputs, block):
        """Channel-blocked in and out when X arrives blocked and the kernel can run it
        (a BN that could not be folded, e.g. after a Concat): no reorder around it."""
        x = inputs[0]
        if _k is None or not x.layout or x.dtype != F32 or len(x.shape) < 3 or \
                self.spatial != 1 or len(self.node.outputs) > 1 and any(self.node.outputs[1:]) or \
                any(inputs[k].value is None for k in range(1, 5)):
            return None
        return [block, 0, 0, 0, 0], [block]

    def prepare(self, inputs, outputs):
        self._affine = None
        self._s = None
        if all(inputs[k].value is not None for k in range(1, 5)):
            sc, b, m, v = [np.asarray(inputs[k].value, np.float64) for k in range(1, 5)]
            s = sc / np.sqrt(v + self.eps)
            t = b - m * s
            dt = inputs[0].dtype
            x = inputs[0]
            lanes = int(x.layout or 0)
            if lanes:      # [C] -> [ceil(C/B), B], zero padding lanes (they stay 0)
                pad = -(-s.size // lanes) * lanes - s.size
                s, t = np.pad(s, (0, pad)), np.pad(t, (0, pad))
            self._s = np.ascontiguousarray(s.astype(dt))
            self._t = np.ascontiguousarray(t.astype(dt))
            if _k is not None and dt == F32 and self._s.ndim == 1 and x.size:
                if lanes:
                    cb = -(-x.shape[1] // lanes)
                    self._affine = (x.shape[0], cb, int(np.prod(x.shape[2:], dtype=np.int64))
                                    * lanes, lanes)
                else:
                    self._affine = (x.shape[0], x.shape[1],
                                    int(np.prod(x.shape[2:], dtype=np.int64)), 1)

    def compute(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if self._affine is not None:
            n, c, inner, lanes = self._affine
            ep = self.epilogue
            _k.affine_channel(np.ascontiguousarray(x).reshape(-1), self._s, self._t,
                              y.reshape(-1), n, c, inner, ep.kind, ep.p0, ep.p1, self.n_threads,
                              lanes)
        else:
            if self._s is not None:
                shp = self._param_shape(x.ndim, self._s)
                y[...] = x * self._s.reshape(shp) + self._t.reshape(shp)
            else:
                sc, b, m, v = xs[1:5]
                shp = self._param_shape(x.ndim, sc)
                s = sc / np.sqrt(v + x.dtype.type(self.eps))
                y[...] = (x - m.reshape(shp)) * s.reshape(shp) + b.reshape(shp)
            if y.size:
                with np.errstate(all="ignore"):
                    self.epilogue.apply_numpy(y)
        for k, o in enumerate(ys[1:3]):
            if o is not None:
                o[...] = xs[3 + k]

    def bind(self, xs, ys, scratch=()):
        if self._affine is not None and len([o for o in ys if o is not None]) == 1:
            n, c, inner, lanes = self._affine
            x, y = xs[0], ys[0]
            ep = self.epilogue
            return keep_alive(functools.partial(
                _k.affine_channel_p, x.ctypes.data, self._s.ctypes.data, self._t.ctypes.data,
                y.ctypes.data, n, c, inner, lanes, ep.kind, ep.p0, ep.p1, self.n_threads),
                x, y, self._s, self._t)
        return super().bind(xs, ys, scratch)


@register("InstanceNormalization", since_version=1)
class InstanceNormalization(Op):
    def setup(self):
        self.eps = _eps(self)

    def infer(self, inputs):
        x, s, b = inputs[0], inputs[1], inputs[2]
        if len(x.shape) < 3:
            raise self.shape_error(f"X must have rank >= 3, got {list(x.shape)}")
        c = x.shape[1]
        if tuple(s.shape) != (c,) or tuple(b.shape) != (c,):
            raise self.shape_error(f"scale {list(s.shape)} and B {list(b.shape)} must be [{c}]")
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x, s, b = xs[0], xs[1], xs[2]
        axes = tuple(range(2, x.ndim))
        xd = x.astype(np.float64)
        m = xd.mean(axis=axes, keepdims=True)
        v = ((xd - m) ** 2).mean(axis=axes, keepdims=True)
        shp = (1, -1) + (1,) * (x.ndim - 2)
        ys[0][...] = (xd - m) / np.sqrt(v + self.eps) * s.reshape(shp) + b.reshape(shp)


@register("LRN", since_version=1)
class LRN(Op):
    def setup(self):
        self.size = self.attr("size")
        if not isinstance(self.size, int) or self.size < 1:
            raise self.error(f"size must be a positive integer, got {self.size!r}")
        self.alpha = float_attr(self, "alpha", 1e-4)
        self.beta = float_attr(self, "beta", 0.75)
        self.bias = float_attr(self, "bias", 1.0)

    def infer(self, inputs):
        x = inputs[0]
        if len(x.shape) < 3:
            raise self.shape_error(f"X must have rank >= 3, got {list(x.shape)}")
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x = xs[0].astype(np.float64)
        c = x.shape[1]
        sq = x * x
        lo, hi = (self.size - 1) // 2, -(-(self.size - 1) // 2)
        cs = np.concatenate([np.zeros_like(sq[:, :1]), np.cumsum(sq, axis=1)], axis=1)
        idx = np.arange(c)
        a = np.clip(idx - lo, 0, c)
        e = np.clip(idx + hi + 1, 0, c)
        s = cs[:, e] - cs[:, a]
        ys[0][...] = x / (self.bias + self.alpha / self.size * s) ** self.beta


@register("LayerNormalization", since_version=17)
class LayerNormalization(Op):
    def setup(self):
        self.eps = _eps(self)
        self.axis = int_attr(self, "axis", -1)

    def infer(self, inputs):
        x, s, b = inputs[0], inputs[1], optional(inputs, 2)
        r = len(x.shape)
        self.ax = norm_axis(self, self.axis, r)
        norm_shape = x.shape[self.ax:]
        for name, t in (("Scale", s), ("B", b)):
            if t is not None and (not _bc(t.shape, norm_shape) or
                                  np.broadcast_shapes(t.shape, norm_shape) != tuple(norm_shape)):
                raise self.shape_error(f"{name} {list(t.shape)} does not broadcast to "
                                       f"{list(norm_shape)}")
        stat = tuple(x.shape[:self.ax]) + (1,) * (r - self.ax)
        outs = [TensorInfo(x.shape, x.dtype), TensorInfo(stat, np.dtype(np.float32)),
                TensorInfo(stat, np.dtype(np.float32))]
        return outs[:max(1, len(self.node.outputs))]

    def compute(self, xs, ys, scratch=()):
        x, s = xs[0], xs[1]
        b = xs[2] if len(xs) > 2 else None
        axes = tuple(range(self.ax, x.ndim))
        xd = x.astype(np.float64)
        m = xd.mean(axis=axes, keepdims=True)
        v = ((xd - m) ** 2).mean(axis=axes, keepdims=True)
        inv = 1.0 / np.sqrt(v + self.eps)
        y = (xd - m) * inv * s
        if b is not None:
            y = y + b
        ys[0][...] = y
        if len(ys) > 1 and ys[1] is not None:
            ys[1][...] = m
        if len(ys) > 2 and ys[2] is not None:
            ys[2][...] = inv


def _bc(a, b):
    try:
        np.broadcast_shapes(tuple(a), tuple(b))
        return True
    except ValueError:
        return False


@register("GroupNormalization", since_version=18)
class GroupNormalization(Op):
    """opset 18: scale/bias per group; opset 21: per channel."""

    def setup(self):
        self.eps = _eps(self)
        self.g = self.attr("num_groups")
        if not isinstance(self.g, int) or self.g < 1:
            raise self.error(f"num_groups must be a positive integer, got {self.g!r}")

    def infer(self, inputs):
        x, s, b = inputs[0], inputs[1], inputs[2]
        if len(x.shape) < 2 or x.shape[1] % self.g:
            raise self.shape_error(f"channels of {list(x.shape)} not divisible by num_groups={self.g}")
        want = self.g if self.opset < 21 else x.shape[1]
        if tuple(s.shape) != (want,) or tuple(b.shape) != (want,):
            raise self.shape_error(f"scale {list(s.shape)} and bias {list(b.shape)} must be [{want}]")
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        x, s, b = xs[0], xs[1], xs[2]
        n, c = x.shape[:2]
        xg = x.astype(np.float64).reshape(n, self.g, -1)
        m = xg.mean(axis=2, keepdims=True)
        v = ((xg - m) ** 2).mean(axis=2, keepdims=True)
        y = ((xg - m) / np.sqrt(v + self.eps)).reshape(x.shape)
        if self.opset < 21:
            s = np.repeat(s, c // self.g)
            b = np.repeat(b, c // self.g)
        shp = (1, c) + (1,) * (x.ndim - 2)
        ys[0][...] = y * s.reshape(shp) + b.reshape(shp)


@register("MeanVarianceNormalization", since_version=9)
class MeanVarianceNormalization(Op):
    def setup(self):
        ints_attr(self, "axes")

    def infer(self, inputs):
        x = inputs[0]
        axes = self.attr("axes", [0, 2, 3])
        self.axes = tuple(sorted({norm_axis(self, a, len(x.shape), "axes entry") for a in axes}))
        return [TensorInfo(x.shape, x.dtype)]

    def compute(self, xs, ys, scratch=()):
        xd = xs[0].astype(np.float64)
        m = xd.mean(axis=self.axes, keepdims=True)
        v = ((xd - m) ** 2).mean(axis=self.axes, keepdims=True)
        ys[0][...] = (xd - m) / (np.sqrt(v) + 1e-9)
