"""`fastcnn run` and `fastcnn demo`."""
from __future__ import annotations

import os
import time

import numpy as np

from .errors import InputError
from .session import InferenceSession

DATA = os.path.join(os.path.dirname(__file__), "data")


def parse_shapes(items):
    """["x=1x3x224x224", ...] → {"x": (1, 3, 224, 224)}"""
    shapes = {}
    for item in items or []:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise InputError(f"--shape expects NAME=1x3x224x224, got '{item}'")
        try:
            shapes[name] = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            raise InputError(f"--shape {item}: dimensions must be integers") from None
    return shapes


def random_feeds(sess: InferenceSession, shapes=None, seed=0):
    """Random inputs matching the model's inputs; symbolic dims from `shapes` or 1."""
    rng = np.random.default_rng(seed)
    shapes = shapes or {}
    feeds = {}
    for a in sess.get_inputs():
        if a.name in shapes:
            shape = shapes[a.name]
        else:
            if a.shape is None:
                raise InputError(f"input '{a.name}' has unknown rank; give --shape {a.name}=...")
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in a.shape)
        if np.issubdtype(a.dtype, np.floating):
            feeds[a.name] = rng.standard_normal(shape).astype(a.dtype)
        elif a.dtype == np.bool_:
            feeds[a.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feeds[a.name] = rng.integers(0, 10, shape).astype(a.dtype)
    return feeds


def run_command(args) -> int:
    sess = InferenceSession(args.model, num_threads=args.threads)
    feeds = random_feeds(sess, parse_shapes(args.shape))
    for item in args.input:
        name, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--input expects NAME=FILE.npy, got '{item}'")
        feeds[name] = np.load(path)
    t0 = time.perf_counter()
    outs = sess.run(None, feeds)
    ms = (time.perf_counter() - t0) * 1e3
    for a, x in zip(sess.get_inputs(), [feeds[a.name] for a in sess.get_inputs()]):
        print(f"input  {a.name}: {list(x.shape)} {x.dtype}")
    for a, y in zip(sess.get_outputs(), outs):
        summary = ""
        if y.size and np.issubdtype(y.dtype, np.number):
            summary = f"min {y.min():.4g} max {y.max():.4g} mean {y.mean():.4g}"
            if y.ndim == 2 and y.shape[1] > 1:
                summary += f" argmax {np.argmax(y, axis=1)[:8].tolist()}"
        print(f"output {a.name}: {list(y.shape)} {y.dtype} {summary}")
    print(f"latency {ms:.2f} ms (first run, {sess.num_threads} thread(s))")
    if args.output:
        np.savez(args.output, **{a.name: y for a, y in zip(sess.get_outputs(), outs)})
        print(f"saved {args.output}")
    return 0


def demo_command(args) -> int:
    model = os.path.join(DATA, "digits_cnn.onnx")
    samples = np.load(os.path.join(DATA, "digits_samples.npz"))
    images, labels = samples["images"], samples["labels"]
    sess = InferenceSession(model, num_threads=args.threads)
    print(f"fastcnn demo: a small CNN trained on scikit-learn's 8x8 digits ({model})")
    logits, probs = sess.run(["logits", "probabilities"], {"image": images})
    pred = np.argmax(logits, axis=1)
    for k in range(8):
        art = "\n".join("    " + "".join(" .:-=+*#%@"[min(9, int(v * 10))] for v in row)
                        for row in images[k, 0])
        print(f"sample {k}: label {labels[k]}, predicted {pred[k]} "
              f"(p={probs[k, pred[k]]:.3f})\n{art}")
    acc = float(np.mean(pred == labels))
    print(f"accuracy on {len(labels)} bundled samples: {acc * 100:.1f}%")
    one = images[:1]
    for _ in range(20):
        sess.run(None, {"image": one})
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        sess.run(None, {"image": one})
        times.append(time.perf_counter() - t0)
    sess.run(None, {"image": images})          # plans batch 64 (plans are cached per shape)
    tbs = []
    for _ in range(20):
        t0 = time.perf_counter()
        sess.run(None, {"image": images})
        tbs.append(time.perf_counter() - t0)
    tb = float(np.median(tbs))
    print(f"latency, batch 1: median {np.median(times) * 1e6:.0f} us over 200 runs; "
          f"batch {len(labels)}: {tb * 1e3:.2f} ms ({len(labels) / tb:.0f} images/s); "
          f"{sess.num_threads} thread(s)")
    return 0 if acc >= 0.9 else 1
