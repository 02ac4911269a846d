"""PyTorch round trips of the upsampling family: modules exported with torch.onnx (the
TorchScript exporter, dynamo=False: the dynamo one needs onnxscript) at opsets 11, 13 and
17, run by fastcnn and compared with torch's own output.  Skipped without torch."""
import io
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
Fn = torch.nn.functional

import fastcnn  # noqa: E402
from fastcnn.ops.conv_transpose import ConvTranspose  # noqa: E402

OPSETS = (11, 13, 17)
TOL = dict(rtol=1e-4, atol=1e-4)


def export(module, x, opset):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the TorchScript exporter's deprecation
        torch.onnx.export(module, (x,), f, opset_version=opset, dynamo=False,
                          input_names=["x"], output_names=["y"])
    return f.getvalue()


def round_trip(module, x_shape, opset, threads=(1, 2), seed=0):
    torch.manual_seed(seed)
    module = module.eval()
    x = torch.randn(*x_shape)
    with torch.no_grad():
        want = module(x).numpy()
    model = export(module, x, opset)
    sessions = []
    for nt in threads:
        sess = fastcnn.InferenceSession(model, num_threads=nt)
        y = sess.run(None, {"x": x.numpy()})[0]
        assert y.shape == want.shape
        np.testing.assert_allclose(y, want, **TOL)
        sessions.append(sess)
    return sessions, x.numpy()


def conv_transpose_algos(sess, x):
    plan = sess._plan({"x": x.shape})
    return [st.op.algorithm_name for st in plan.steps if isinstance(st.op, ConvTranspose)]


CONV_T = {
    "k4s2p1": dict(in_channels=16, out_channels=8, kernel_size=4, stride=2, padding=1),
    "k3s2p1op1": dict(in_channels=8, out_channels=12, kernel_size=3, stride=2, padding=1,
                      output_padding=1),
    "k3s3_dil2_op2": dict(in_channels=5, out_channels=6, kernel_size=3, stride=3, dilation=2,
                          output_padding=2, bias=False),
    "groups2": dict(in_channels=16, out_channels=16, kernel_size=3, stride=2, padding=1,
                    groups=2),
    "depthwise": dict(in_channels=8, out_channels=8, kernel_size=4, stride=2, padding=1,
                      groups=8),
    "rect": dict(in_channels=8, out_channels=8, kernel_size=(2, 3), stride=(2, 1),
                 padding=(0, 1)),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("cfg", list(CONV_T))
def test_conv_transpose2d(cfg, opset):
    sessions, x = round_trip(nn.ConvTranspose2d(**CONV_T[cfg]), (2, CONV_T[cfg]["in_channels"],
                                                                  5, 6), opset)
    # a single layer is at the graph's edge: it runs plain when its output is the larger
    assert conv_transpose_algos(sessions[0], x)[0].startswith("phases")


@pytest.mark.parametrize("opset", OPSETS)
def test_conv_transpose1d_and_3d(opset):
    round_trip(nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1), (1, 8, 9), opset)
    round_trip(nn.ConvTranspose3d(4, 8, 3, stride=(1, 2, 2), padding=1,
                                  output_padding=(0, 1, 1)), (1, 4, 3, 4, 5), opset)


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle(r, opset):
    round_trip(nn.PixelShuffle(r), (2, 4 * r * r, 5, 6), opset)
    round_trip(nn.PixelUnshuffle(r), (2, 3, 4 * r, 2 * r), opset)


UPSAMPLE = {
    "nearest_x2": dict(scale_factor=2, mode="nearest"),
    "nearest_x3": dict(scale_factor=3, mode="nearest"),
    "bilinear": dict(scale_factor=2, mode="bilinear", align_corners=False),
    "bilinear_align": dict(scale_factor=2, mode="bilinear", align_corners=True),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("cfg", list(UPSAMPLE))
def test_upsample(cfg, opset):
    round_trip(nn.Upsample(**UPSAMPLE[cfg]), (2, 3, 5, 7), opset)


class Interp(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return Fn.interpolate(x, **self.kw)


INTERP = {
    "scale_nearest": dict(scale_factor=(2, 1.5), mode="nearest"),
    "size_nearest": dict(size=(11, 4), mode="nearest"),
    "scale_bilinear": dict(scale_factor=1.5, mode="bilinear", align_corners=False),
    "size_bilinear": dict(size=(9, 13), mode="bilinear", align_corners=False),
    "size_bilinear_align": dict(size=(9, 13), mode="bilinear", align_corners=True),
    "down_bilinear": dict(size=(3, 4), mode="bilinear", align_corners=False),
    "bicubic": dict(scale_factor=2, mode="bicubic", align_corners=False),
}


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("cfg", list(INTERP))
def test_interpolate(cfg, opset):
    round_trip(Interp(**INTERP[cfg]), (1, 4, 6, 8), opset)


class Decoder(nn.Module):
    """A small U-Net-style decoder: every upsampling kind, BN and activations to fold/fuse."""

    def __init__(self):
        super().__init__()
        self.up1 = nn.ConvTranspose2d(32, 16, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3 * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        for bn in (self.bn1, self.bn2):     # non-trivial running statistics
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x):
        x = Fn.relu(self.bn1(self.up1(x)))
        x = Fn.leaky_relu(self.conv1(x), 0.1)
        x = Fn.relu(self.bn2(self.up2(x)))
        x = Fn.interpolate(self.conv2(x), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.shuffle(self.head(x)))


@pytest.mark.parametrize("opset", OPSETS)
def test_decoder(opset):
    sessions, x = round_trip(Decoder(), (2, 32, 6, 5), opset)
    sess = sessions[0]
    assert conv_transpose_algos(sess, x) == ["phases", "phases"]
    ops = [n.op_type for n in sess.optimized_graph().nodes]
    assert "BatchNormalization" not in ops and "Relu" not in ops, ops
