"""Large graph outputs are written straight into arrays handed to the caller; once the caller
drops one, the next run recycles it (no fresh pages to fault in), and an array the caller
still holds -- itself or through a view -- is never written again."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

import fastcnn


def _model():
    # 1x16x64x64 -> nearest x4 -> 1x16x256x256 float32 = 4 MiB: a direct output
    g = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "s")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def test_direct_outputs_recycled_only_when_dropped():
    sess = fastcnn.InferenceSession(_model(), num_threads=2)
    x = np.random.default_rng(0).standard_normal((1, 16, 64, 64)).astype(np.float32)
    plan = sess._plan({"x": x.shape})
    assert plan.direct_outputs
    want = lambda v: np.repeat(np.repeat(x * v, 4, axis=2), 4, axis=3)   # noqa: E731
    held = []
    for v in range(1, 6):
        y = sess.run(None, {"x": x * v})[0]
        held.append((v, y[0, 3:5], y if v % 2 else None))    # views and whole arrays
    for v in range(6, 9):
        sess.run(None, {"x": x * v})
    for v, view, whole in held:
        np.testing.assert_array_equal(view, want(v)[0, 3:5])
        if whole is not None:
            np.testing.assert_array_equal(whole, want(v))
    del held, view, whole, y
    ptrs = {sess.run(None, {"x": x})[0].ctypes.data for _ in range(4)}
    assert len(ptrs) == 1                      # dropped at once: the same array every run
    a = sess.run(None, {"x": x})[0]
    b = sess.run(None, {"x": x * 2})[0]        # a is held: another array
    assert a.ctypes.data != b.ctypes.data
    np.testing.assert_array_equal(a, want(1))
    np.testing.assert_array_equal(b, want(2))


def test_large_direct_outputs_are_fresh_mappings():
    """From 4 MiB a direct output comes from its own mapping (advised for huge pages),
    made straight on it: a view the caller keeps refers to the array itself, so the
    recycling sees it; the array behaves like any other."""
    import mmap

    from fastcnn.runtime.plan import _output_like
    small = _output_like(np.empty((3, 5), np.float32))
    assert small.shape == (3, 5) and small.dtype == np.float32
    big = _output_like(np.empty((1, 64, 128, 130), np.float32))
    assert big.shape == (1, 64, 128, 130) and big.dtype == np.float32 and big.flags.writeable
    assert big.flags.c_contiguous and big.ctypes.data % 4096 == 16
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert isinstance(big.base, mmap.mmap)
        assert big[0, 3:5].base is big
    big[...] = 2.5
    assert float(big.sum()) == 2.5 * big.size
