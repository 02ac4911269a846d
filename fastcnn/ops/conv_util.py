"""Attribute and shape logic shared by Conv, ConvTranspose and the pooling ops.

`WindowAttrs` parses and validates the sliding-window attributes once
(`auto_pad`, `kernel_shape`, `strides`, `pads`, `dilations`, `ceil_mode`);
`resolve(...)` turns them into a `Window` for concrete input dims:

    effective kernel   ek = (k - 1)·d + 1
    NOTSET             explicit pads;  out = ⌊(in + pb + pe − ek) / s⌋ + 1
                       (pooling with ceil_mode: ⌈…⌉ + 1, minus one when the last
                       window would start inside the right padding)
    VALID              pads 0;         out = ⌊(in − ek) / s⌋ + 1
    SAME_UPPER/LOWER   out = ⌈in / s⌉; total = max(0, (out−1)·s + ek − in);
                       UPPER puts the odd cell at the end, LOWER at the beginning

The fused epilogue (set by a later fusion pass on internal Conv nodes) is
parsed here too: `fastcnn_activation` (name), `fastcnn_activation_params`
(floats), `fastcnn_residual=1` (input 3 is added before the activation).
Codes match `_kernels/src/epilogue.h`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .attrs import flag_attr

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Window:
    """A resolved sliding window over `ndim` spatial dims (all tuples of ints)."""
    in_spatial: Tuple[int, ...]
    out_spatial: Tuple[int, ...]
    kernel: Tuple[int, ...]
    strides: Tuple[int, ...]
    dilations: Tuple[int, ...]
    pads_begin: Tuple[int, ...]
    pads_end: Tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.kernel)

    @property
    def pads(self) -> List[int]:
        """ONNX order: all begins, then all ends."""
        return list(self.pads_begin) + list(self.pads_end)

    def as_3d(self):
        """Every field padded on the left to 3 spatial dims (size-1 dims, stride 1, no pad)."""
        k = 3 - self.ndim
        one, zero = (1,) * k, (0,) * k
        return Window(one + self.in_spatial, one + self.out_spatial, one + self.kernel,
                      one + self.strides, one + self.dilations, zero + self.pads_begin,
                      zero + self.pads_end)


def _ints(op, name, value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, np.integer))
                                                       for v in value):
        raise op.error(f"attribute '{name}' must be a list of ints, got {value!r}")
    return tuple(int(v) for v in value)


class WindowAttrs:
    """Parsed, validated window attributes of one node (spatial rank may be unknown yet)."""

    def __init__(self, op, *, kernel_required: bool, allow_dilations: bool = True,
                 allow_ceil: bool = False):
        self.op = op
        auto_pad = op.attr("auto_pad", "NOTSET")
        if isinstance(auto_pad, bytes):
            auto_pad = auto_pad.decode()
        if auto_pad == "":
            auto_pad = "NOTSET"
        if auto_pad not in AUTO_PADS:
            raise op.error(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got {auto_pad!r}")
        self.auto_pad = auto_pad
        self.kernel_shape = _ints(op, "kernel_shape", op.attr("kernel_shape"))
        if kernel_required and self.kernel_shape is None:
            raise op.error("attribute 'kernel_shape' is required")
        self.strides = _ints(op, "strides", op.attr("strides"))
        self.pads = _ints(op, "pads", op.attr("pads"))
        self.dilations = _ints(op, "dilations", op.attr("dilations")) if allow_dilations else None
        self.ceil_mode = bool(flag_attr(op, "ceil_mode", 0)) if allow_ceil else False
        if self.kernel_shape is not None:
            if len(self.kernel_shape) == 0:
                raise op.error("kernel_shape is empty")
            if any(k <= 0 for k in self.kernel_shape):
                raise op.error(f"kernel_shape must be positive, got {list(self.kernel_shape)}")
        if self.strides is not None and any(s <= 0 for s in self.strides):
            raise op.error(f"strides must be positive, got {list(self.strides)}")
        if self.dilations is not None and any(d <= 0 for d in self.dilations):
            raise op.error(f"dilations must be positive, got {list(self.dilations)}")
        if self.pads is not None:
            if any(p < 0 for p in self.pads):
                raise op.error(f"pads must be non-negative, got {list(self.pads)}")
            if len(self.pads) % 2:
                raise op.error(f"pads must hold a begin and an end per spatial axis, "
                               f"got {len(self.pads)} values")
        n = self.spatial_rank()
        if n is not None:
            self.check_rank(n)

    def spatial_rank(self) -> Optional[int]:
        if self.kernel_shape is not None:
            return len(self.kernel_shape)
        for v, div in ((self.strides, 1), (self.dilations, 1), (self.pads, 2)):
            if v is not None:
                return len(v) // div
        return None

    def check_rank(self, n: int) -> None:
        op = self.op
        for name, v, want in (("kernel_shape", self.kernel_shape, n), ("strides", self.strides, n),
                              ("dilations", self.dilations, n), ("pads", self.pads, 2 * n)):
            if v is not None and len(v) != want:
                raise op.error(f"attribute '{name}' has {len(v)} values, expected {want} "
                               f"for {n} spatial dims")

    def resolve(self, in_spatial: Sequence[int], kernel: Optional[Sequence[int]] = None,
                pooling: bool = False) -> Window:
        """Window for these input dims; `kernel` from W for Conv (checked against kernel_shape)."""
        op = self.op
        n = len(in_spatial)
        if n < 1:
            raise op.shape_error("input has no spatial dimensions")
        if any(int(d) <= 0 for d in in_spatial):
            raise op.shape_error(f"input has an empty spatial dim (spatial shape "
                                 f"{list(in_spatial)})")
        self.check_rank(n)
        if kernel is None:
            kernel = self.kernel_shape
        elif self.kernel_shape is not None and tuple(kernel) != self.kernel_shape:
            raise op.shape_error(f"kernel_shape {list(self.kernel_shape)} does not match the "
                                 f"weight's spatial shape {list(kernel)}")
        kernel = tuple(int(k) for k in kernel)
        if any(k <= 0 for k in kernel):
            raise op.shape_error(f"kernel shape must be positive, got {list(kernel)}")
        strides = self.strides or (1,) * n
        dil = self.dilations or (1,) * n
        ek = [(kernel[i] - 1) * dil[i] + 1 for i in range(n)]
        if self.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = [-(-in_spatial[i] // strides[i]) for i in range(n)]
            total = [max(0, (out[i] - 1) * strides[i] + ek[i] - in_spatial[i]) for i in range(n)]
            if self.auto_pad == "SAME_UPPER":
                pb = [t // 2 for t in total]
            else:
                pb = [t - t // 2 for t in total]
            pe = [t - b for t, b in zip(total, pb)]
        else:
            if self.auto_pad == "VALID":
                pb, pe = [0] * n, [0] * n
            else:
                p = self.pads or (0,) * (2 * n)
                pb, pe = list(p[:n]), list(p[n:])
            out = []
            for i in range(n):
                span = in_spatial[i] + pb[i] + pe[i] - ek[i]
                if span < 0:
                    raise op.shape_error(
                        f"kernel extent {ek[i]} (kernel {kernel[i]}, dilation {dil[i]}) is larger "
                        f"than the padded input {in_spatial[i] + pb[i] + pe[i]} on spatial axis {i} "
                        f"(input {list(in_spatial)}, pads {pb + pe})")
                if pooling and self.ceil_mode:
                    o = -(-span // strides[i]) + 1
                    if (o - 1) * strides[i] >= in_spatial[i] + pb[i]:
                        o -= 1
                else:
                    o = span // strides[i] + 1
                out.append(o)
        return Window(tuple(int(v) for v in in_spatial), tuple(int(o) for o in out), kernel,
                      tuple(strides), tuple(dil), tuple(int(v) for v in pb),
                      tuple(int(v) for v in pe))


# -- fused epilogue ---------------------------------------------------------------------
# name -> (code in epilogue.h, default params)
ACTIVATIONS = {
    "": (0, ()), "None": (0, ()), "Identity": (0, ()),
    "Relu": (1, ()),
    "Clip": (2, (-np.inf, np.inf)),
    "LeakyRelu": (3, (0.01,)),
    "HardSigmoid": (4, (0.2, 0.5)),
    "HardSwish": (5, ()),
    "Sigmoid": (6, ()),
    "Silu": (7, ()), "Swish": (7, ()),
    "Tanh": (8, ()),
    "Mish": (9, ()),
    "PRelu": (10, ()),
    "Elu": (11, (1.0,)),
    "Gelu": (12, ()),
}


@dataclass(frozen=True)
class Epilogue:
    """y = act(acc + bias + residual): the activation and whether input 3 is a residual."""
    name: str = ""
    kind: int = 0
    p0: float = 0.0
    p1: float = 0.0
    slope: Optional[np.ndarray] = None   # PRelu: one slope per output channel
    residual: bool = False

    @property
    def is_identity(self) -> bool:
        return self.kind == 0 and not self.residual

    def apply_numpy(self, y: np.ndarray) -> None:
        """Activation in place on y (N, M, ...), for dtypes the C epilogue does not take."""
        k = self.kind
        if k == 0:
            return
        if k == 1:
            np.maximum(y, 0, out=y)
        elif k == 2:
            np.clip(y, self.p0, self.p1, out=y)
        elif k == 3:
            np.copyto(y, np.where(y >= 0, y, y * self.p0))
        elif k == 4:
            np.clip(y * self.p0 + self.p1, 0, 1, out=y)
        elif k == 5:
            y *= np.clip(y / 6 + 0.5, 0, 1)
        elif k == 6:
            np.copyto(y, 1 / (1 + np.exp(-y)))
        elif k == 7:
            y *= 1 / (1 + np.exp(-y))
        elif k == 8:
            np.tanh(y, out=y)
        elif k == 9:
            y *= np.tanh(np.logaddexp(0, y))
        elif k == 10:
            s = self.slope.reshape((1, -1) + (1,) * (y.ndim - 2)).astype(y.dtype)
            np.copyto(y, np.where(y >= 0, y, y * s))
        elif k == 11:
            np.copyto(y, np.where(y >= 0, y, self.p0 * np.expm1(np.minimum(y, 0))))
        elif k == 12:
            from math import erf, sqrt
            np.copyto(y, 0.5 * y * (1 + np.vectorize(erf)(y / sqrt(2))))


def parse_epilogue(op, n_out_channels: Optional[int] = None) -> Epilogue:
    """Read the internal fastcnn_* attributes of a Conv-like node."""
    name = op.attr("fastcnn_activation", "") or ""
    if isinstance(name, bytes):
        name = name.decode()
    if name not in ACTIVATIONS:
        raise op.error(f"fastcnn_activation {name!r} is not one of "
                       f"{sorted(k for k in ACTIVATIONS if k)}")
    kind, defaults = ACTIVATIONS[name]
    params = op.attr("fastcnn_activation_params", None)
    if params is not None and (not isinstance(params, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in params)):
        raise op.error(f"fastcnn_activation_params must be a list of floats, got {params!r}")
    params = list(defaults) if params is None else [float(v) for v in params]
    residual = bool(flag_attr(op, "fastcnn_residual", 0))
    slope = None
    if kind == 10:
        if not params:
            raise op.error("fastcnn_activation PRelu needs the slopes in fastcnn_activation_params")
        slope = np.asarray(params, np.float32)
        if n_out_channels is not None and slope.size not in (1, n_out_channels):
            raise op.error(f"PRelu slopes: {slope.size} values for {n_out_channels} channels")
        return Epilogue(name, kind, 0.0, 0.0, slope, residual)
    if len(params) < len(defaults):
        params = params + list(defaults[len(params):])
    p0 = float(params[0]) if len(params) > 0 else 0.0
    p1 = float(params[1]) if len(params) > 1 else 0.0
    return Epilogue(name, kind, p0, p1, None, residual)


FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_float(op, info, what="X", extra=()):
    """The generic kernels take float32 and float64 (plus `extra` dtypes the op converts)."""
    dt = np.dtype(info.dtype)
    if dt not in FLOATS and dt not in [np.dtype(e) for e in extra]:
        names = ", ".join(d.name for d in list(FLOATS) + [np.dtype(e) for e in extra])
        raise op.error(f"input {what} has dtype {dt}; supported: {names}")


def compute_dtype(dtype) -> np.dtype:
    """The dtype the kernels run in: float16 computes in float32, small ints in float64."""
    dt = np.dtype(dtype)
    if dt in FLOATS:
        return dt
    if dt == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def converting(bound, pairs_in, pairs_out):
    """Wrap a bound step that runs in another dtype: copy (cast) inputs in, outputs out."""
    copyto = np.copyto

    def run():
        for dst, src in pairs_in:
            copyto(dst, src, casting="unsafe")
        bound()
        for dst, src in pairs_out:
            copyto(dst, src, casting="unsafe")
    return run
