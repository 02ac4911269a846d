"""Large feeds are read straight from the caller's array (the reading steps are rebound),
not copied into the arena: results stay exact across new arrays, reused and mutated
arrays, non-contiguous or mistyped feeds, and together with directly written outputs."""
import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

import fastcnn

from conftest import F, make_model

RNG = np.random.default_rng(7)


def _resize_model():
    sc = np.array([1, 1, 2, 2], np.float32)
    nodes = [helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest")]
    return make_model(nodes, [("x", F, [1, 16, 128, 128])], [("y", F, None)], {"sc": sc},
                      opset=13)


def _two_readers_model():
    w = (RNG.standard_normal((8, 16, 3, 3)) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]),
             helper.make_node("GlobalAveragePool", ["p"], ["h"]),
             helper.make_node("Concat", ["g", "h"], ["y"], axis=1)]
    return make_model(nodes, [("x", F, [1, 16, 128, 128])], [("y", F, None)], {"w": w},
                      opset=13)


@pytest.mark.parametrize("build", [_resize_model, _two_readers_model])
@pytest.mark.parametrize("nt", [1, 2])
def test_feeds_read_in_place(build, nt):
    m = build()
    sess = fastcnn.InferenceSession(m, num_threads=nt)
    ref = ort.InferenceSession(m.SerializeToString())
    x = RNG.standard_normal((1, 16, 128, 128)).astype(np.float32)
    plan = None
    for trial in range(6):
        if trial == 1:
            x = RNG.standard_normal(x.shape).astype(np.float32)          # a new array
        elif trial == 2:
            x[...] = RNG.standard_normal(x.shape)                        # the same, mutated
        elif trial == 3:
            x = np.asfortranarray(RNG.standard_normal(x.shape).astype(np.float32))  # copied in
        elif trial == 4:
            x = RNG.standard_normal(x.shape).astype(np.float32)          # back to in place
        elif trial == 5:
            x = RNG.standard_normal(x.shape)                             # float64: refused
            with pytest.raises(Exception):
                sess.run(None, {"x": x})
            x = x.astype(np.float32)
        got = sess.run(None, {"x": x})[0]
        want = ref.run(None, {"x": np.ascontiguousarray(x)})[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"trial {trial}")
        plan = next(iter(sess._plans.values()))
    assert plan.direct_inputs       # the feed was read in place, not copied
    before = x.copy()
    sess.run(None, {"x": x})
    np.testing.assert_array_equal(x, before)      # and never written


def _edge_reorder_model():
    """A blocked depthwise conv alone: its graph input and output are reached by edge
    reorders, which rebind cheaply and so read/write in place from 32 KiB."""
    w = (RNG.standard_normal((96, 1, 5, 5)) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], group=96, pads=[2, 2, 2, 2])]
    return make_model(nodes, [("x", F, [1, 96, 14, 14])], [("y", F, None)], {"w": w},
                      opset=13)


@pytest.mark.parametrize("nt", [1, 2])
def test_edge_reorders_in_place(nt):
    m = _edge_reorder_model()
    sess = fastcnn.InferenceSession(m, num_threads=nt)
    ref = ort.InferenceSession(m.SerializeToString())
    plan = next(iter(sess._plans.values()))
    assert plan.direct_inputs and plan.direct_outputs        # 75 KB each way
    kept, xs = [], []
    for trial in range(8):
        x = RNG.standard_normal((1, 96, 14, 14)).astype(np.float32)
        if trial % 3 == 2:
            x = np.asfortranarray(x)                         # copied in instead
        xs.append(x)
        got = sess.run(None, {"x": x})[0]
        if trial % 2:
            kept.append((got, ref.run(None, {"x": np.ascontiguousarray(x)})[0]))
        else:
            np.testing.assert_allclose(got, ref.run(None, {"x": np.ascontiguousarray(x)})[0],
                                       rtol=1e-5, atol=1e-6, err_msg=f"trial {trial}")
    for k, (got, want) in enumerate(kept):     # outputs the caller kept were not reused
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"kept {k}")
    # the static-shape fast path still refuses what the general checks refuse
    with pytest.raises(fastcnn.InputError, match="dtype"):
        sess.run(None, {"x": xs[0].astype(np.float64)})
    with pytest.raises(fastcnn.InputError, match="shape"):
        sess.run(None, {"x": np.zeros((1, 96, 14, 15), np.float32)})
    with pytest.raises(fastcnn.InputError, match="unknown input"):
        sess.run(None, {"z": xs[0]})
