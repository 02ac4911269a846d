"""Session creation reads model files through a read-only mapping: the session keeps
nothing of it, so rewriting or truncating the file afterwards changes nothing."""
import numpy as np
import pytest
from onnx import helper

import fastcnn
from fastcnn.errors import ModelLoadError

from conftest import F, make_model


def _model(rng):
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                      [("x", F, [1, 8, 10, 10])], [("y", F, None)], {"w": w})


def test_file_rewritten_after_creation(tmp_path, rng):
    m = _model(rng)
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    sess = fastcnn.InferenceSession(str(path), num_threads=1)
    x = rng.standard_normal((1, 8, 10, 10)).astype(np.float32)
    (y0,) = sess.run(None, {"x": x})
    path.write_bytes(b"\0" * 10)          # truncated and rewritten in place
    (y1,) = sess.run(None, {"x": x})
    np.testing.assert_array_equal(y0, y1)
    (y2,) = fastcnn.InferenceSession(m.SerializeToString(), num_threads=1).run(None, {"x": x})
    np.testing.assert_array_equal(y0, y2)
    for w in sess.graph.initializers.values():   # copies, not views of the mapping
        assert w.base is None or not hasattr(w.base, "madvise")


def test_empty_and_corrupt_files(tmp_path, rng):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        fastcnn.InferenceSession(str(p))
    data = _model(rng).SerializeToString()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError):
        fastcnn.InferenceSession(str(p))


@pytest.mark.parametrize("k,n", [(512, 1000), (7, 16), (3, 5), (1, 33), (0, 4), (64, 48)])
@pytest.mark.parametrize("trans", [False, True])
def test_pack_b_matches_kernel_packing(k, n, trans, rng):
    """gemm.pack_b packs a constant B straight from the (transposed) weight view Gemm and
    MatMul hand it: the zero-padded [ceil(N/16), K, 16] panels, as from a contiguous copy."""
    from fastcnn.ops import matmul
    if matmul._G is None:
        pytest.skip("kernels not built")
    b = rng.standard_normal((n, k) if trans else (k, n)).astype(np.float32)
    view = b.T if trans else b
    nb = -(-n // 16)
    padded = np.zeros((k, nb * 16), np.float32)
    padded[:, :n] = view
    want = padded.reshape(k, nb, 16).transpose(1, 0, 2)
    np.testing.assert_array_equal(matmul._G.pack_b(view), want)
    np.testing.assert_array_equal(matmul._G.pack_b(b, trans=trans), want)


def test_fresh_process_does_not_import_onnx(tmp_path, rng):
    """`import fastcnn` and a session from a file load onnx's protobuf module only, not
    onnx (0.6 s of import with ml_dtypes); a later `import onnx` shares its classes."""
    import subprocess
    import sys
    path = tmp_path / "m.onnx"
    path.write_bytes(_model(rng).SerializeToString())
    code = f"""
import sys, numpy as np, fastcnn
s = fastcnn.InferenceSession({str(path)!r}, num_threads=1)
(y,) = s.run(None, {{"x": np.ones((1, 8, 10, 10), np.float32)}})
assert "onnx" not in sys.modules, "onnx imported"
import onnx
from fastcnn.ir import onnx_proto
assert onnx.onnx_ml_pb2 is onnx_proto.pb and onnx.ModelProto is onnx_proto.ModelProto
m = onnx.load({str(path)!r})
assert onnx.numpy_helper.to_array(m.graph.initializer[0]).shape == (16, 8, 3, 3)
(y2,) = fastcnn.InferenceSession(m, num_threads=1).run(None, {{"x": np.ones((1, 8, 10, 10), np.float32)}})
assert (y == y2).all()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _two_conv_model(rng, shared=False, batch=1):
    """Two dense 3x3 convs (16 -> 32 -> 32, the 16-lane layout on AVX-512) and a residual;
    `shared`: both convs read one weight (never packed in place)."""
    w1 = rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.2
    w2 = rng.standard_normal((32, 32, 3, 3)).astype(np.float32) * 0.2
    b = rng.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1", "b"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w1b" if shared else "w2", "b"], ["c"],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c", "w1b" if shared else "w3"], ["d"],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["d", "r"], ["y"])]
    inits = {"w1": w1, "b": b}
    if shared:
        inits["w1b"] = w2
    else:
        inits["w2"], inits["w3"] = w2, w2[::-1].copy()
    return make_model(nodes, [("x", F, [batch, 16, 12, 11])], [("y", F, None)], inits)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("from_file", [False, True])
def test_first_plan_packs_weights_in_place(tmp_path, rng, shared, from_file, monkeypatch):
    """The first plan packs the weights one conv alone reads over their own memory (no
    fresh pages; a weight two convs read never is): same outputs as with the ordinary
    packing and onnxruntime, and the graph (optimized_graph, or a second plan) gets the
    real weights back, exactly."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import numpy_helper
    from fastcnn.ops import conv_fast
    m = _two_conv_model(rng, shared, batch="N")
    src = m.SerializeToString()
    if from_file:
        src = tmp_path / "m.onnx"
        src.write_bytes(m.SerializeToString())
        src = str(src)
    x = rng.standard_normal((1, 16, 12, 11)).astype(np.float32)
    sess = fastcnn.InferenceSession(src, num_threads=2)
    with monkeypatch.context() as mp:      # the ordinary packing, into fresh arrays
        mp.setattr(conv_fast._kc, "pack_conv_weights_inplace", lambda *a: None)
        ref = fastcnn.InferenceSession(m.SerializeToString(), num_threads=2)
    assert ref._consumed == []
    names = sorted(n for n, _, _ in sess._consumed)
    assert names == (["w1"] if shared else ["w1", "w2", "w3"])   # w1b: read by two convs
    (y,), (y_ref,) = sess.run(None, {"x": x}), ref.run(None, {"x": x})
    np.testing.assert_array_equal(y, y_ref)
    (y_ort,) = ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, y_ort, rtol=1e-4, atol=1e-4)
    for _ in range(3):            # rebinding (the caller's arrays in place) reuses the packing
        (y2,) = sess.run(None, {"x": x.copy()})
        np.testing.assert_array_equal(y2, y)
    # a second batch size plans again from the restored weights
    x3 = rng.standard_normal((3, 16, 12, 11)).astype(np.float32)
    (y3,), (y3_ref,) = sess.run(None, {"x": x3}), ref.run(None, {"x": x3})
    np.testing.assert_array_equal(y3, y3_ref)
    assert sess._consumed == []
    (y4,) = sess.run(None, {"x": x})      # the first plan still runs on its packing
    np.testing.assert_array_equal(y4, y)
    orig = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    g = sess.optimized_graph()
    for k in ("w1", "w2", "w3", "w1b"):
        if k in orig:
            np.testing.assert_array_equal(g.initializers[k], orig[k], err_msg=k)


def test_optimized_graph_restores_weights(rng):
    """optimized_graph() right after creation: the real weights, bit for bit."""
    from onnx import numpy_helper
    m = _two_conv_model(rng)
    sess = fastcnn.InferenceSession(m.SerializeToString(), num_threads=1)
    assert sess._consumed
    g = sess.graph
    assert not sess._consumed and g is sess.optimized_graph()
    for t in m.graph.initializer:
        np.testing.assert_array_equal(g.initializers[t.name], numpy_helper.to_array(t))


def test_pack_in_place_matches_pack(rng):
    """conv_nchwc.pack_conv_weights_inplace writes exactly pack_conv_weights' layout into
    the weight's own (64-byte aligned) memory, or declines."""
    from fastcnn._kernels import conv_nchwc as cn
    from fastcnn.ir.onnx_import import _copy_aligned
    lanes_ok = [8] + ([16] if cn.isa_name() == "avx512" else [])
    for shape, group in [((32, 16, 3, 3), 1), ((64, 16, 1, 1), 1), ((32, 8, 3, 3), 2),
                         ((16, 24, 5), 1), ((32, 8, 3, 2, 2), 1), ((48, 16, 3, 3), 3)]:
        for lanes in lanes_ok:
            w = rng.standard_normal(shape).astype(np.float32)
            want = cn.pack_conv_weights(w, group, True, lanes)
            wa = _copy_aligned(w.reshape(-1), shape)
            got = cn.pack_conv_weights_inplace(wa, group, lanes)
            if (shape[0] // group) % lanes:
                assert got is None
                np.testing.assert_array_equal(wa, w)          # untouched
                continue
            assert got is not None and np.shares_memory(got, wa), (shape, group, lanes)
            np.testing.assert_array_equal(got, want)
    w = _copy_aligned(rng.standard_normal(32 * 12 * 9).astype(np.float32), (32, 12, 3, 3))
    assert cn.pack_conv_weights_inplace(w, 1, 8) is None           # C not a multiple of 8
    w = _copy_aligned(rng.standard_normal(32 * 16 * 9 + 1).astype(np.float32), (32 * 16 * 9 + 1,))
    assert cn.pack_conv_weights_inplace(w[1:].reshape(32, 16, 3, 3), 1, 8) is None  # unaligned
    w = _copy_aligned(rng.standard_normal(32 * 16 * 9).astype(np.float32), (32, 16, 3, 3))
    w.flags.writeable = False
    assert cn.pack_conv_weights_inplace(w, 1, 8) is None
