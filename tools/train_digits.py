#!/usr/bin/env python3
"""Train the small digits CNN shipped with fastcnn and export it to ONNX.

This is a build-time tool, not part of the fastcnn runtime.  It needs
scikit-learn (for the bundled 8x8 digits data set -- no download), NumPy,
``onnx`` (export + checker) and ``onnxruntime`` (cross-check).  None of
these except NumPy are runtime dependencies of fastcnn.

Usage::

    python tools/train_digits.py            # writes fastcnn/data/*
    python tools/train_digits.py --out-dir /tmp/x --epochs 30

Outputs
-------
``fastcnn/data/digits_cnn.onnx``
    opset 13, ir_version 8.  Input ``image`` float32 ``[N, 1, 8, 8]``
    (symbolic batch dim ``"N"``, pixels scaled to [0, 1]).  Outputs
    ``logits`` float32 ``[N, 10]`` and ``probabilities`` float32 ``[N, 10]``
    (Softmax over axis 1 of the logits).
``fastcnn/data/digits_samples.npz``
    ``images`` float32 ``[64, 1, 8, 8]`` and ``labels`` int64 ``[64]``, the
    first 64 images of the held-out TEST split (never seen in training).

Data
----
``sklearn.datasets.load_digits`` (1797 images, 8x8, values 0..16), scaled by
1/16 into [0, 1].  Split with a fixed permutation (seed 0) into 1397 train /
400 test images.

Architecture (trained in pure NumPy, manual forward/backward, Adam)
------------------------------------------------------------------
::

    image [N,1,8,8]
    conv1  Conv 1->8, 3x3, pad 1, stride 1   -> [N,8,8,8]
    bn1    BatchNormalization (inference form, see below)
    relu1  Relu
    pool1  MaxPool 2x2 stride 2              -> [N,8,4,4]
    conv2  Conv 8->16, 3x3, pad 1, stride 1  -> [N,16,4,4]
    relu2  Relu
    pool2  MaxPool 2x2 stride 2              -> [N,16,2,2]
    flatten Flatten axis 1                   -> [N,64]
    fc1    Gemm 64->32 (transB=1)            -> [N,32]
    relu3  Relu
    fc2    Gemm 32->10 (transB=1)            -> logits [N,10]
    softmax Softmax axis 1                   -> probabilities [N,10]

Convolutions are cross-correlations, exactly as ONNX ``Conv`` defines them
(no kernel flip).  Weights use the ONNX layouts directly: Conv ``W`` is
``[M, C, kH, kW]``, Gemm ``B`` is ``[out, in]`` with ``transB=1``.

BatchNormalization re-parameterization (bn1)
--------------------------------------------
The network is trained WITHOUT batch norm.  To make the demo exercise
Conv+BatchNormalization folding, the exported graph contains an
inference-form ``BatchNormalization`` (epsilon 1e-5) after ``conv1`` whose
parameters are an exact re-parameterization of the trained conv1:

* ``mean``/``var`` are the real per-channel statistics of the trained conv1
  output over the training set (so they look like genuine running stats);
* ``scale`` (gamma) and ``B`` (beta) are drawn from a fixed RNG
  (gamma in [0.5, 1.5], beta in [-0.25, 0.25]);
* with ``s = gamma / sqrt(var + eps)`` the exported conv1 parameters are
  ``W' = W / s`` (per output channel) and ``b' = (b - beta) / s + mean``.

Then ``BN(conv'(x)) = s * (W x / s + (b - beta)/s + mean - mean) + beta
= W x + b``, i.e. the exported graph computes the same function as the
trained network up to float32 rounding.  Folding the BN back into conv1
(``W'' = W' * s``, ``b'' = (b' - mean) * s + beta``) recovers the trained
weights.  All of this is computed in float64 and cast to float32 once.

Reproducibility: fixed seeds for the split (0), initialisation / shuffling
(1234) and the BN re-parameterization (7).  Runs in a few seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

SPLIT_SEED = 0
TRAIN_SEED = 1234
BN_SEED = 7
N_TEST = 400
N_SAMPLES = 64
BN_EPS = 1e-5

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "fastcnn", "data")


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def load_data():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    perm = np.random.RandomState(SPLIT_SEED).permutation(len(y))
    test_idx, train_idx = perm[:N_TEST], perm[N_TEST:]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


# --------------------------------------------------------------------------
# NumPy layers (float64 during training)
# --------------------------------------------------------------------------
def im2col3x3(x):
    """x [N,C,H,W] -> cols [N,H,W,C*9] for a 3x3 kernel, pad 1, stride 1.

    Column order is (c, kh, kw), matching W.reshape(M, C*9).
    """
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, c, 3, 3, h, w), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i:i + h, j:j + w]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n, h, w, c * 9)


def col2im3x3(dcols, shape):
    """Adjoint of im2col3x3: dcols [N,H,W,C*9] -> dx [N,C,H,W]."""
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 3, 3).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += d[:, :, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def conv_fwd(x, W, b):
    cols = im2col3x3(x)                                  # [N,H,W,C*9]
    out = cols @ W.reshape(W.shape[0], -1).T + b         # [N,H,W,M]
    return out.transpose(0, 3, 1, 2), cols


def conv_bwd(dout, cols, x_shape, W):
    d = dout.transpose(0, 2, 3, 1)                       # [N,H,W,M]
    m = W.shape[0]
    dW = (d.reshape(-1, m).T @ cols.reshape(-1, cols.shape[-1])).reshape(W.shape)
    db = d.sum(axis=(0, 1, 2))
    dcols = d @ W.reshape(m, -1)
    return col2im3x3(dcols, x_shape), dW, db


def pool_fwd(x):
    """2x2 max pool, stride 2.  Returns output and a one-hot argmax mask."""
    n, c, h, w = x.shape
    xr = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    xr = xr.reshape(n, c, h // 2, w // 2, 4)
    idx = xr.argmax(axis=-1)
    out = np.take_along_axis(xr, idx[..., None], axis=-1)[..., 0]
    return out, idx


def pool_bwd(dout, idx, x_shape):
    n, c, h, w = x_shape
    d = np.zeros((n, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(d, idx[..., None], dout[..., None], axis=-1)
    d = d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return d.reshape(x_shape)


def init_params(rng):
    def he(shape, fan_in):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)

    return {
        "conv1_W": he((8, 1, 3, 3), 9), "conv1_b": np.zeros(8),
        "conv2_W": he((16, 8, 3, 3), 72), "conv2_b": np.zeros(16),
        "fc1_W": he((32, 64), 64), "fc1_b": np.zeros(32),
        "fc2_W": rng.normal(0.0, np.sqrt(1.0 / 32), size=(10, 32)), "fc2_b": np.zeros(10),
    }


def forward(p, x, keep=False):
    c1, cols1 = conv_fwd(x, p["conv1_W"], p["conv1_b"])
    r1 = np.maximum(c1, 0.0)
    p1, i1 = pool_fwd(r1)
    c2, cols2 = conv_fwd(p1, p["conv2_W"], p["conv2_b"])
    r2 = np.maximum(c2, 0.0)
    p2, i2 = pool_fwd(r2)
    f = p2.reshape(len(x), -1)
    h = f @ p["fc1_W"].T + p["fc1_b"]
    hr = np.maximum(h, 0.0)
    logits = hr @ p["fc2_W"].T + p["fc2_b"]
    if not keep:
        return logits
    cache = dict(x=x, c1=c1, cols1=cols1, r1=r1, p1=p1, i1=i1, c2=c2,
                 cols2=cols2, r2=r2, p2=p2, i2=i2, f=f, h=h, hr=hr)
    return logits, cache


def backward(p, cache, dlogits):
    g = {}
    g["fc2_W"] = dlogits.T @ cache["hr"]
    g["fc2_b"] = dlogits.sum(0)
    dh = (dlogits @ p["fc2_W"]) * (cache["h"] > 0)
    g["fc1_W"] = dh.T @ cache["f"]
    g["fc1_b"] = dh.sum(0)
    dp2 = (dh @ p["fc1_W"]).reshape(cache["p2"].shape)
    dr2 = pool_bwd(dp2, cache["i2"], cache["r2"].shape)
    dc2 = dr2 * (cache["c2"] > 0)
    dp1, g["conv2_W"], g["conv2_b"] = conv_bwd(dc2, cache["cols2"], cache["p1"].shape, p["conv2_W"])
    dr1 = pool_bwd(dp1, cache["i1"], cache["r1"].shape)
    dc1 = dr1 * (cache["c1"] > 0)
    _, g["conv1_W"], g["conv1_b"] = conv_bwd(dc1, cache["cols1"], cache["x"].shape, p["conv1_W"])
    return g


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def gradcheck(rng):
    """Finite-difference check of the manual backward pass on a tiny batch."""
    p = init_params(rng)
    for k in p:
        if k.endswith("_b"):
            p[k] = rng.normal(0, 0.1, size=p[k].shape)
    x = rng.uniform(0, 1, size=(3, 1, 8, 8))
    y = np.array([1, 4, 7])

    def loss(pp):
        pr = softmax(forward(pp, x))
        return -np.log(pr[np.arange(3), y]).mean()

    logits, cache = forward(p, x, keep=True)
    d = softmax(logits)
    d[np.arange(3), y] -= 1.0
    g = backward(p, cache, d / 3)
    worst = 0.0
    for k in p:
        flat = p[k].reshape(-1)
        for idx in rng.choice(flat.size, size=min(5, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + 1e-6
            lp = loss(p)
            flat[idx] = old - 1e-6
            lm = loss(p)
            flat[idx] = old
            num = (lp - lm) / 2e-6
            ana = g[k].reshape(-1)[idx]
            worst = max(worst, abs(num - ana) / max(1e-8, abs(num) + abs(ana)))
    return worst


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------
def train(xtr, ytr, xte, yte, epochs, batch, lr, weight_decay, verbose=True):
    rng = np.random.RandomState(TRAIN_SEED)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    n = len(ytr)
    for ep in range(epochs):
        cur_lr = lr * 0.5 * (1.0 + np.cos(np.pi * ep / epochs))  # cosine decay
        perm = rng.permutation(n)
        tot = 0.0
        for s in range(0, n, batch):
            bi = perm[s:s + batch]
            xb, yb = xtr[bi], ytr[bi]
            logits, cache = forward(p, xb, keep=True)
            pr = softmax(logits)
            tot += -np.log(pr[np.arange(len(yb)), yb] + 1e-12).sum()
            d = pr
            d[np.arange(len(yb)), yb] -= 1.0
            g = backward(p, cache, d / len(yb))
            t += 1
            for k in p:
                gk = g[k]
                if weight_decay and k.endswith("_W"):
                    gk = gk + weight_decay * p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] -= cur_lr * mh / (np.sqrt(vh) + eps)
        if verbose and (ep % 5 == 4 or ep == epochs - 1):
            tr_acc = (forward(p, xtr).argmax(1) == ytr).mean()
            te_acc = (forward(p, xte).argmax(1) == yte).mean()
            print(f"  epoch {ep + 1:3d}  loss {tot / n:.4f}  train acc {tr_acc:.4f}  test acc {te_acc:.4f}")
    return p


# --------------------------------------------------------------------------
# BN re-parameterization and ONNX export
# --------------------------------------------------------------------------
def bn_reparam(p, xtr):
    """Return exported conv1 (W', b') and BN params (gamma, beta, mean, var)."""
    c1, _ = conv_fwd(xtr, p["conv1_W"], p["conv1_b"])
    mean = c1.mean(axis=(0, 2, 3))
    var = c1.var(axis=(0, 2, 3))
    rng = np.random.RandomState(BN_SEED)
    gamma = rng.uniform(0.5, 1.5, size=8)
    beta = rng.uniform(-0.25, 0.25, size=8)
    # Round the BN params to float32 first so the algebra below uses exactly
    # the values that end up in the file.
    mean, var, gamma, beta = (a.astype(np.float32).astype(np.float64) for a in (mean, var, gamma, beta))
    s = gamma / np.sqrt(var + BN_EPS)
    W1 = p["conv1_W"] / s[:, None, None, None]
    b1 = (p["conv1_b"] - beta) / s + mean
    return W1, b1, gamma, beta, mean, var


def build_onnx(p, W1, b1, gamma, beta, mean, var):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def init(name, arr, dtype=np.float32):
        return numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name)

    inits = [
        init("conv1.weight", W1), init("conv1.bias", b1),
        init("bn1.scale", gamma), init("bn1.bias", beta),
        init("bn1.mean", mean), init("bn1.var", var),
        init("conv2.weight", p["conv2_W"]), init("conv2.bias", p["conv2_b"]),
        init("fc1.weight", p["fc1_W"]), init("fc1.bias", p["fc1_b"]),
        init("fc2.weight", p["fc2_W"]), init("fc2.bias", p["fc2_b"]),
    ]
    conv_attrs = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1)
    pool_attrs = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [
        helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1_out"], name="conv1", **conv_attrs),
        helper.make_node("BatchNormalization", ["conv1_out", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"],
                         ["bn1_out"], name="bn1", epsilon=BN_EPS),
        helper.make_node("Relu", ["bn1_out"], ["relu1_out"], name="relu1"),
        helper.make_node("MaxPool", ["relu1_out"], ["pool1_out"], name="pool1", **pool_attrs),
        helper.make_node("Conv", ["pool1_out", "conv2.weight", "conv2.bias"], ["conv2_out"], name="conv2", **conv_attrs),
        helper.make_node("Relu", ["conv2_out"], ["relu2_out"], name="relu2"),
        helper.make_node("MaxPool", ["relu2_out"], ["pool2_out"], name="pool2", **pool_attrs),
        helper.make_node("Flatten", ["pool2_out"], ["flatten_out"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flatten_out", "fc1.weight", "fc1.bias"], ["fc1_out"], name="fc1",
                         alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Relu", ["fc1_out"], ["relu3_out"], name="relu3"),
        helper.make_node("Gemm", ["relu3_out", "fc2.weight", "fc2.bias"], ["logits"], name="fc2",
                         alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
    ]
    graph = helper.make_graph(nodes, "digits_cnn", inputs, outputs, initializer=inits,
                              doc_string="8x8 digits classifier (sklearn load_digits), pixels in [0,1]")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="fastcnn-tools-train_digits", producer_version="1")
    model.ir_version = 8
    model.doc_string = ("Trained by tools/train_digits.py. Input 'image' float32 [N,1,8,8] in [0,1]; "
                        "outputs 'logits' and 'probabilities' float32 [N,10]. bn1 is an exact "
                        "re-parameterization of conv1 (foldable).")
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=DEFAULT_OUT)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--no-gradcheck", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.time()
    if not args.no_gradcheck:
        err = gradcheck(np.random.RandomState(99))
        print(f"gradient check: worst relative error {err:.2e}")
        if err > 1e-5:
            sys.exit("gradient check failed")

    xtr, ytr, xte, yte = load_data()
    print(f"data: {len(ytr)} train / {len(yte)} test")
    p = train(xtr, ytr, xte, yte, args.epochs, args.batch, args.lr, args.weight_decay)
    # Weights are exported as float32: evaluate the numpy model in float32 too.
    p32 = {k: v.astype(np.float32).astype(np.float64) for k, v in p.items()}
    np_logits = forward(p32, xte)
    np_pred = np_logits.argmax(1)
    np_acc = (np_pred == yte).mean()
    print(f"numpy model test accuracy: {np_acc:.4f}")

    W1, b1, gamma, beta, mean, var = bn_reparam(p32, xtr)
    model = build_onnx(p32, W1, b1, gamma, beta, mean, var)

    import onnx
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "digits_cnn.onnx")
    onnx.save(model, onnx_path)
    onnx.checker.check_model(onnx_path, full_check=True)

    images = xte[:N_SAMPLES].astype(np.float32)
    labels = yte[:N_SAMPLES].astype(np.int64)
    npz_path = os.path.join(args.out_dir, "digits_samples.npz")
    np.savez_compressed(npz_path, images=images, labels=labels)

    # ---- cross-check with onnxruntime --------------------------------------
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    ort_logits, ort_prob = sess.run(["logits", "probabilities"], {"image": xte.astype(np.float32)})
    max_diff = np.abs(ort_logits.astype(np.float64) - np_logits).max()
    agree = (ort_logits.argmax(1) == np_pred).mean()
    prob_diff = np.abs(ort_prob - softmax(ort_logits.astype(np.float64))).max()
    ort_acc = (ort_logits.argmax(1) == yte).mean()
    s_logits, = sess.run(["logits"], {"image": images})
    s_acc = (s_logits.argmax(1) == labels).mean()
    print(f"onnxruntime vs numpy: max |logit diff| {max_diff:.2e}, argmax agreement {agree:.4f}, "
          f"max |softmax diff| {prob_diff:.2e}")
    print(f"ONNX model test accuracy (held-out {len(yte)}): {ort_acc:.4f}")
    print(f"ONNX model accuracy on the {N_SAMPLES} samples: {s_acc:.4f}")
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes)")
    print(f"wrote {npz_path} ({os.path.getsize(npz_path)} bytes)")
    print(f"total time {time.time() - t0:.1f} s")

    ok = agree == 1.0 and max_diff < 1e-4 and ort_acc >= 0.95
    if not ok:
        sys.exit("verification FAILED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
