import os
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import fastcnn
from fastcnn.errors import InputError, InvalidGraphError, ModelLoadError, UnsupportedOpError
from fastcnn.runtime.memory import Buffer, plan_offsets

from conftest import F, I64, make_model


def relu_add_model():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "x"], ["a"], name="add"),
             helper.make_node("Shape", ["a"], ["s"], name="shape"),
             helper.make_node("Reshape", ["a", "s2"], ["y"], name="reshape")]
    return make_model(nodes, [("x", F, ["N", 3, 4])], [("y", F, None)],
                      {"s2": np.array([-1, 12], np.int64)})


def test_run_and_metadata(rng):
    sess = fastcnn.InferenceSession(relu_add_model())
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.shape, inp.type) == ("x", ["N", 3, 4], "tensor(float)")
    for n in (1, 5):   # symbolic batch: a plan per input shape
        x = rng.standard_normal((n, 3, 4)).astype(np.float32)
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_array_equal(y, (np.maximum(x, 0) + x).reshape(-1, 12))


def test_load_from_path_and_bytes(tmp_path, rng):
    m = relu_add_model()
    p = tmp_path / "m.onnx"
    onnx.save(m, str(p))
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    a = fastcnn.InferenceSession(str(p)).run(None, {"x": x})[0]
    b = fastcnn.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("feeds,msg", [
    ({}, "missing input 'x'"),
    ({"x": np.zeros((1, 3, 4), np.float32), "z": np.zeros(1)}, "unknown input"),
    ({"x": np.zeros((1, 3, 4), np.float64)}, "dtype float64, expected float32"),
    ({"x": np.zeros((1, 3), np.float32)}, "rank 2"),
    ({"x": np.zeros((1, 3, 5), np.float32)}, "dimension 2 must be 4"),
])
def test_bad_feeds_name_the_input(feeds, msg):
    sess = fastcnn.InferenceSession(relu_add_model())
    with pytest.raises(InputError, match=msg):
        sess.run(None, feeds)


def test_unknown_output_name():
    sess = fastcnn.InferenceSession(relu_add_model())
    with pytest.raises(InputError, match="unknown output"):
        sess.run(["nope"], {"x": np.zeros((1, 3, 4), np.float32)})


def test_unsupported_ops_listed_together():
    nodes = [helper.make_node("FancyOp", ["x"], ["a"], name="n1"),
             helper.make_node("OtherOp", ["a"], ["y"], name="n2")]
    m = make_model(nodes, [("x", F, [1])], [("y", F, [1])])
    with pytest.raises(UnsupportedOpError) as e:
        fastcnn.InferenceSession(m)
    assert "FancyOp" in str(e.value) and "n1" in str(e.value)
    assert "OtherOp" in str(e.value) and "n2" in str(e.value)


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage" * 10, os.urandom(64)])
def test_corrupt_files(tmp_path, data):
    p = tmp_path / "bad.onnx"
    p.write_bytes(data)
    with pytest.raises(ModelLoadError):
        fastcnn.InferenceSession(str(p))


def test_truncated_file(tmp_path):
    data = relu_add_model().SerializeToString()
    p = tmp_path / "t.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises((ModelLoadError, InvalidGraphError)):
        fastcnn.InferenceSession(str(p))


def test_cycle_and_undefined_input():
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="r1"),
             helper.make_node("Relu", ["a"], ["b"], name="r2"),
             helper.make_node("Add", ["a", "x"], ["y"], name="add")]
    with pytest.raises(InvalidGraphError, match="cycle"):
        fastcnn.InferenceSession(make_model(nodes, [("x", F, [1])], [("y", F, [1])]))
    nodes = [helper.make_node("Relu", ["ghost"], ["y"], name="r")]
    with pytest.raises(InvalidGraphError, match="ghost"):
        fastcnn.InferenceSession(make_model(nodes, [("x", F, [1])], [("y", F, [1])]))


def test_initializer_data_mismatch():
    m = relu_add_model()
    t = m.graph.initializer[0]
    t.dims[:] = [5]   # declares 5 int64 but stores 2
    with pytest.raises(InvalidGraphError, match="s2"):
        fastcnn.InferenceSession(m)


def test_too_new_opset():
    m = relu_add_model()
    m.opset_import[0].version = onnx.defs.onnx_opset_version() + 5
    with pytest.raises(ModelLoadError, match="opset"):
        fastcnn.InferenceSession(m)


def _external_model(tmp_path, location):
    w = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    t = onnx.numpy_helper.from_array(w, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(w.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], name="add")]
    m = make_model(nodes, [("x", F, [1, 3, 4])], [("y", F, [1, 3, 4])])
    m.graph.initializer.append(t)
    p = tmp_path / "model" / "m.onnx"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(m.SerializeToString())
    return p, w


def test_external_data_inside_folder(tmp_path):
    p, w = _external_model(tmp_path, "weights.bin")
    (p.parent / "weights.bin").write_bytes(w.tobytes())
    (y,) = fastcnn.InferenceSession(str(p)).run(None, {"x": np.ones((1, 3, 4), np.float32)})
    np.testing.assert_array_equal(y, w + 1)


@pytest.mark.parametrize("loc", ["../secret.bin", "/etc/passwd", "link.bin"])
def test_external_data_cannot_escape(tmp_path, loc):
    p, w = _external_model(tmp_path, loc)
    (tmp_path / "secret.bin").write_bytes(w.tobytes())
    if loc == "link.bin":
        os.symlink(tmp_path / "secret.bin", p.parent / "link.bin")
    with pytest.raises(ModelLoadError, match="outside|leaves"):
        fastcnn.InferenceSession(str(p))


def test_external_data_length_checked(tmp_path):
    p, w = _external_model(tmp_path, "weights.bin")
    (p.parent / "weights.bin").write_bytes(w.tobytes()[:20])
    with pytest.raises(ModelLoadError, match="exceed"):
        fastcnn.InferenceSession(str(p))


def test_concurrent_runs_are_exact(rng):
    sess = fastcnn.InferenceSession(relu_add_model(), num_threads=1)
    xs = [rng.standard_normal((3, 3, 4)).astype(np.float32) for _ in range(8)]
    want = [sess.run(None, {"x": x})[0] for x in xs]
    errors = []

    def worker(k):
        for _ in range(200):
            got = sess.run(None, {"x": xs[k]})[0]
            if not np.array_equal(got, want[k]):
                errors.append(k)

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_memory_planner_reuses_dead_buffers():
    bufs = [Buffer(1000, 0, 1), Buffer(1000, 1, 2), Buffer(1000, 2, 3), Buffer(1000, 3, 4)]
    total = plan_offsets(bufs)
    assert total == 2 * 1024  # two live at a time, 64-byte aligned
    for a in bufs:
        for b in bufs:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + 1024 <= b.offset or b.offset + 1024 <= a.offset


def test_plan_uses_inplace_and_views(rng):
    # a chain of 50 Relus over a 1 MB tensor must not need 50 MB.
    nodes = [helper.make_node("Relu", [f"v{k}"], [f"v{k + 1}"], name=f"r{k}") for k in range(50)]
    nodes.append(helper.make_node("Flatten", ["v50"], ["y"], name="flat"))
    m = make_model(nodes, [("v0", F, [1, 256, 32, 32])], [("y", F, None)])
    sess = fastcnn.InferenceSession(m)
    x = rng.standard_normal((1, 256, 32, 32)).astype(np.float32)
    (y,) = sess.run(None, {"v0": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0).reshape(1, -1))
    plan = next(iter(sess._plans.values()))
    assert plan.arena_bytes <= 2 * x.nbytes + 4096


def test_scalar_initializers_stay_scalar():
    from fastcnn.ir.onnx_import import import_model
    m = make_model([helper.make_node("Add", ["x", "c"], ["y"], name="add")],
                   [("x", F, [2])], [("y", F, [2])], {"c": np.array(3.0, np.float32)})
    assert import_model(m).initializers["c"].shape == ()


def test_arena_buffers_are_64_byte_aligned():
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Sigmoid", ["a"], ["b"], name="s"),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    sess = fastcnn.InferenceSession(make_model(nodes, [("x", F, [1, 3, 5, 7])], [("y", F, None)]))
    plan = next(iter(sess._plans.values()))
    bound = plan._pool[0]
    assert bound.arena.ctypes.data % 64 == 0
    for name in ("a", "b", "y"):
        assert plan.view(bound.arena, name).ctypes.data % 64 == 0


def test_large_outputs_are_written_in_place_not_copied(rng):
    # a 4 MB output produced by one step and read by nobody after: fresh array per run
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["r"], ["y"], name="sig"),
             helper.make_node("Tanh", ["r"], ["t"], name="tanh")]
    m = make_model(nodes, [("x", F, [1, 16, 256, 256])], [("y", F, None), ("t", F, None)])
    sess = fastcnn.InferenceSession(m)
    plan = next(iter(sess._plans.values()))
    assert len(plan.direct_outputs) == 2
    x1 = rng.standard_normal((1, 16, 256, 256)).astype(np.float32)
    x2 = rng.standard_normal((1, 16, 256, 256)).astype(np.float32)
    y1, t1 = sess.run(None, {"x": x1})
    y2, t2 = sess.run(None, {"x": x2})
    assert y1 is not y2 and not np.shares_memory(y1, y2)
    np.testing.assert_allclose(y1, 1 / (1 + np.exp(-np.maximum(x1, 0))), rtol=1e-5)
    np.testing.assert_allclose(y2, 1 / (1 + np.exp(-np.maximum(x2, 0))), rtol=1e-5)
    np.testing.assert_allclose(t1, np.tanh(np.maximum(x1, 0)), rtol=1e-5, atol=1e-6)
    (t_only,) = sess.run(["t"], {"x": x1})
    np.testing.assert_array_equal(t_only, t1)


def test_raw_data_reader_matches_protobuf():
    """read_model keeps the initializers' raw bytes out of the protobuf message (fewer copies
    of large weights); the arrays must equal what the plain protobuf parse gives."""
    from onnx import numpy_helper
    from fastcnn.ir.onnx_import import import_model
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((64, 32, 3, 3)).astype(np.float32),
              "h": rng.standard_normal((5, 7)).astype(np.float16),
              "i": np.arange(12, dtype=np.int64).reshape(3, 4),
              "b": np.array([True, False, True]),
              "e": np.zeros((0, 3), np.float32),
              "s": np.array(2.5, np.float32)}
    inits = [numpy_helper.from_array(v, k) for k, v in arrays.items()]
    inits.append(helper.make_tensor("f", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]))  # float_data
    node = helper.make_node("Identity", ["x"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    fast = import_model(m.SerializeToString()).initializers
    slow = import_model(m).initializers
    assert set(fast) == set(slow) == set(arrays) | {"f"}
    for k in slow:
        assert fast[k].dtype == slow[k].dtype and fast[k].shape == slow[k].shape, k
        np.testing.assert_array_equal(fast[k], slow[k])
    np.testing.assert_array_equal(fast["w"], arrays["w"])


def _conv_net(batch, rng, reshape_to=None):
    """Conv -> Relu -> Conv with a symbolic (or fixed) batch; optional Reshape to a fixed
    shape that only one batch size satisfies."""
    w1 = (rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32)
    w2 = (rng.standard_normal((16, 16, 3, 3)) * 0.2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2"], ["y" if reshape_to is None else "c"], name="c2",
                              pads=[1, 1, 1, 1])]
    inits = {"w1": w1, "w2": w2}
    if reshape_to is not None:
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["y"], name="reshape"))
        inits["shape"] = np.array(reshape_to, np.int64)
    return make_model(nodes, [("x", F, [batch, 8, 12, 12])], [("y", F, None)], inits)


def _plain_conv_ref(m, x):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(m).run(None, {"x": x})[0]


def test_symbolic_batch_planned_for_batch_1_at_creation(rng):
    """Only the batch is symbolic: the session plans batch 1 at creation (packing and arena
    there, not in the first run); another batch shares the packed weights."""
    m = _conv_net("N", rng)
    sess = fastcnn.InferenceSession(m, num_threads=1)
    assert list(sess._plans) == [((1, 8, 12, 12),)]
    for n in (1, 3):
        x = rng.standard_normal((n, 8, 12, 12)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], _plain_conv_ref(m, x),
                                   rtol=1e-4, atol=1e-4)
    assert len(sess._plans) == 2
    from fastcnn.ops.conv_fast import NchwcDirect

    def packed(plan):
        return [st.op.algorithm.packed for st in plan.steps
                if isinstance(getattr(st.op, "algorithm", None), NchwcDirect)]
    p1, p3 = (packed(p) for p in sess._plans.values())
    assert p1 and len(p1) == len(p3) and all(a is b for a, b in zip(p1, p3))


def test_batch_1_guess_that_does_not_plan_is_not_an_error(rng):
    """A symbolic batch whose model only works for batch 2 (a fixed Reshape): creation
    still succeeds, batch 2 runs, batch 1 fails at run time naming the node."""
    m = _conv_net("N", rng, reshape_to=[2, 16, 12, 12])
    sess = fastcnn.InferenceSession(m)
    assert not sess._plans
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _plain_conv_ref(m, x), rtol=1e-4, atol=1e-4)
    with pytest.raises(fastcnn.FastCNNError, match="reshape"):
        sess.run(None, {"x": x[:1]})
