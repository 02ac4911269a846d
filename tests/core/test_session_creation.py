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
