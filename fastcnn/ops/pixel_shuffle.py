"""DepthToSpace and SpaceToDepth (pixel shuffle / unshuffle).

    DepthToSpace  y[n, c, h*b+i, w*b+j] = x[n, chan(c, i, j), h, w]
    SpaceToDepth  y[n, chan(c, i, j), h, w] = x[n, c, h*b+i, w*b+j]
    chan = (i*b + j)*C + c     mode DCR (the default of both ops)
    chan = c*b*b + i*b + j     mode CRD (DepthToSpace 11+, SpaceToDepth 28+; PyTorch's
                               pixel_shuffle / pixel_unshuffle order)

float32 runs the parallel copy kernels of `_kernels.pixel_shuffle` as native executor
steps; other dtypes use a numpy transpose.

The fuse_pixel_shuffle pass replaces PyTorch's Reshape → Transpose → Reshape export
with one of these nodes and records the two reshape targets in `fastcnn_in_shape`
and `fastcnn_out_shape`.  Then the node reads its input as the flat buffer the
first Reshape would have seen (any input shape with the right element count) and
writes the shape the second Reshape gives; `infer` resolves both targets (0 copies
a dim, -1 infers one) and raises when the input cannot be viewed as the pattern
assumes.
"""
from __future__ import annotations

import numpy as np

from .attrs import int_attr, ints_attr, str_attr
from .base import Op, TensorInfo
from .registry import register

try:
    from .._kernels import pixel_shuffle as _k
except ImportError:  # no compiled kernels: numpy
    _k = None

F32 = np.dtype(np.float32)


def _noop():
    pass


def resolve_reshape(op, target, in_shape):
    """The shape Reshape (allowzero=0) gives `in_shape` for `target`, or raise."""
    out = []
    for k, d in enumerate(target):
        if d == 0:
            if k >= len(in_shape):
                raise op.shape_error(f"reshape target {list(target)} copies dim {k} of an input "
                                     f"of rank {len(in_shape)}")
            out.append(int(in_shape[k]))
        else:
            out.append(int(d))
    total = int(np.prod(in_shape, dtype=np.int64))
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise op.shape_error(f"invalid reshape target {list(target)}")
    if -1 in out:
        rest = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if rest == 0 or total % rest:
            raise op.shape_error(f"cannot reshape {list(in_shape)} to {list(target)}")
        out[out.index(-1)] = total // rest
    if int(np.prod(out, dtype=np.int64)) != total:
        raise op.shape_error(f"cannot reshape {list(in_shape)} ({total} elements) to "
                             f"{list(target)}")
    return tuple(out)


class _PixelShuffle(Op):
    to_space = True          # DepthToSpace; False: SpaceToDepth
    mode_since = 11

    def setup(self):
        self.blocksize = int_attr(self, "blocksize", None, lo=1)
        if self.blocksize is None:
            raise self.error("attribute 'blocksize' is required")
        if "fastcnn_mode" in self.node.attrs:
            self.mode = str_attr(self, "fastcnn_mode", "DCR", choices=("DCR", "CRD"))
        elif self.opset >= self.mode_since:
            self.mode = str_attr(self, "mode", "DCR", choices=("DCR", "CRD"))
        else:
            self.mode = "DCR"
        self.in_target = ints_attr(self, "fastcnn_in_shape")
        self.out_target = ints_attr(self, "fastcnn_out_shape")
        if (self.in_target is None) != (self.out_target is None) or \
                (self.in_target is not None and len(self.in_target) != 6):
            raise self.error("fastcnn_in_shape (6 dims) and fastcnn_out_shape go together")

    def _dims(self, x):
        """(N, C, H, W) with C the spatial tensor's channels and H, W the depth tensor's."""
        b = self.blocksize
        if self.to_space:
            N, Cd, H, W = x
            if Cd % (b * b):
                raise self.shape_error(f"input channels {Cd} are not divisible by blocksize² "
                                       f"= {b * b}")
            return N, Cd // (b * b), H, W
        N, C, Hs, Ws = x
        if Hs % b or Ws % b:
            raise self.shape_error(f"input spatial dims {Hs}x{Ws} are not divisible by "
                                   f"blocksize {b}")
        return N, C, Hs // b, Ws // b

    def _fused_view(self, x):
        """The 4-D input view the fused Reshape→Transpose→Reshape pattern implies."""
        b = self.blocksize
        s6 = resolve_reshape(self, self.in_target, x)
        if self.to_space:
            if self.mode == "CRD":
                N, C, i, j, H, W = s6
            else:
                N, i, j, C, H, W = s6
            if (i, j) != (b, b):
                raise self.shape_error(f"reshape {list(s6)} of input {list(x)} does not have "
                                       f"the block dims the fused pixel shuffle assumes")
            view = (N, C * b * b, H, W)
            t6 = (N, C, H, b, W, b)
        else:
            N, C, H, i, W, j = s6
            if (i, j) != (b, b):
                raise self.shape_error(f"reshape {list(s6)} of input {list(x)} does not have "
                                       f"the block dims the fused pixel unshuffle assumes")
            view = (N, C, H * b, W * b)
            t6 = (N, C, b, b, H, W) if self.mode == "CRD" else (N, b, b, C, H, W)
        out = resolve_reshape(self, self.out_target, t6)
        return view, out

    def infer(self, inputs):
        x = inputs[0]
        if x is None:
            raise self.error("input 0 is required")
        if self.in_target is not None:
            view, out = self._fused_view(x.shape)
        else:
            if len(x.shape) != 4:
                raise self.shape_error(f"input must be 4-D [N, C, H, W], got {list(x.shape)}")
            view = tuple(x.shape)
            out = None
        N, C, H, W = self._dims(view)
        b = self.blocksize
        std = (N, C, H * b, W * b) if self.to_space else (N, C * b * b, H, W)
        self.view, self.dims = view, (N, C, H, W)
        self.std_out = std
        return [TensorInfo(out if out is not None else std, x.dtype)]

    def _numpy(self, x, y):
        N, C, H, W = self.dims
        b = self.blocksize
        if self.to_space:
            if self.mode == "CRD":
                t = x.reshape(N, C, b, b, H, W).transpose(0, 1, 4, 2, 5, 3)
            else:
                t = x.reshape(N, b, b, C, H, W).transpose(0, 3, 4, 1, 5, 2)
        else:
            t = x.reshape(N, C, H, b, W, b)
            t = t.transpose(0, 1, 3, 5, 2, 4) if self.mode == "CRD" else \
                t.transpose(0, 3, 5, 1, 2, 4)
        np.copyto(y.reshape(t.shape), t)

    def _use_kernel(self, x, y):
        return (_k is not None and x.dtype == F32 and y.dtype == F32 and
                x.flags.c_contiguous and y.flags.c_contiguous)

    def compute(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if y.size == 0:
            return
        if self._use_kernel(x, y):
            N, C, H, W = self.dims
            mode = _k.MODES[self.mode]
            if self.to_space:
                _k.depth_to_space(x.reshape(self.view), y.reshape(self.std_out), self.blocksize,
                                  mode, self.n_threads)
            else:
                _k.space_to_depth(x.reshape(self.view), y.reshape(self.std_out), self.blocksize,
                                  mode, self.n_threads)
        else:
            self._numpy(np.asarray(x), y)

    def bind(self, xs, ys, scratch=()):
        x, y = xs[0], ys[0]
        if y.size == 0:
            return _noop
        if self._use_kernel(x, y):
            N, C, H, W = self.dims
            return _k.pixel_shuffle_call(self.to_space, x.ctypes.data, y.ctypes.data, N, C, H, W,
                                         self.blocksize, _k.MODES[self.mode], self.n_threads,
                                         (x, y))
        return super().bind(xs, ys, scratch)


@register("DepthToSpace", since_version=1)
@register("DepthToSpace", since_version=11)
@register("DepthToSpace", since_version=13)
class DepthToSpace(_PixelShuffle):
    to_space = True
    mode_since = 11


@register("SpaceToDepth", since_version=1)
@register("SpaceToDepth", since_version=13)
@register("SpaceToDepth", since_version=28)
class SpaceToDepth(_PixelShuffle):
    to_space = False
    mode_since = 28
