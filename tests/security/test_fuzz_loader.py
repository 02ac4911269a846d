"""Random mutations of a valid model through the loader (and, when it loads, a run).

Byte level: bit flips, byte overwrites, insertions, deletions, truncations.
Protobuf level: fields swapped or set to hostile values (dims, data types,
attribute types and values, input/output names, op types, opsets).
Every mutant goes through `fastcnn.InferenceSession` and one `run` in a
crash-isolating child batch (`run_isolated`, see test_hostile_models.py):
the only allowed outcomes are success or a FastCNNError / ValueError-family
exception.  A segfault, abort, hang, MemoryError or any other exception type
fails the test and prints the mutant's recipe (seed + index) to replay it.
"""
from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from test_hostile_models import describe, run_isolated

N_BYTE_MUTANTS = 300
N_PROTO_MUTANTS = 300
SEED = 20261124
ALLOWED = ("FastCNNError", "ValueError")


def base_model():
    """Conv+Relu+MaxPool+Reshape+Gemm: initializers, attributes, shape plumbing."""
    rng = np.random.default_rng(0)
    inits = {
        "W": rng.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "B": rng.standard_normal(4).astype(np.float32),
        "S": np.array([1, -1], np.int64),
        "G": rng.standard_normal((36, 5)).astype(np.float32),
        "C": rng.standard_normal(5).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["X", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1],
                         strides=[1, 1], dilations=[1, 1], group=1, kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Reshape", ["p", "S"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "G", "C"], ["Y"], name="gemm", alpha=1.0, beta=1.0),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                                     [1, 2, 6, 6])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 5])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


FEEDS = {"X": np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(np.float32)}


def byte_mutant(data: bytes, r: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(r.choice((1, 1, 2, 4, 16))):
        kind = r.randrange(6)
        if not b:
            break
        i = r.randrange(len(b))
        if kind == 0:
            b[i] ^= 1 << r.randrange(8)
        elif kind == 1:
            b[i] = r.choice((0x00, 0xFF, 0x7F, 0x80, r.randrange(256)))
        elif kind == 2:
            b[i:i] = bytes(r.randrange(256) for _ in range(r.randrange(1, 9)))
        elif kind == 3:
            del b[i:i + r.randrange(1, 9)]
        elif kind == 4:
            del b[i:]
        else:     # a varint length prefix made huge
            b[i:i + 1] = b"\xff\xff\xff\xff\x0f"
    return bytes(b)


HOSTILE_INTS = [0, -1, 1, 2, 7, -(1 << 31), (1 << 31) - 1, 1 << 40, -(1 << 62), (1 << 63) - 1]
OPS = ["Conv", "Relu", "MaxPool", "AveragePool", "ConvTranspose", "Gemm", "Reshape", "Add",
       "Concat", "Pad", "Resize", "Tile", "Expand", "Slice", "Transpose", "Identity",
       "GlobalAveragePool", "Flatten", "Gather", "Split", "Squeeze", "Unsqueeze", "Einsum",
       "Softmax", "BatchNormalization", "ConstantOfShape", "Constant", "Nope"]


def proto_mutant(m: onnx.ModelProto, r: random.Random) -> onnx.ModelProto:
    m = onnx.ModelProto.FromString(m.SerializeToString())
    g = m.graph
    for _ in range(r.choice((1, 1, 2, 3))):
        kind = r.randrange(12)
        node = r.choice(g.node)
        init = r.choice(g.initializer)
        if kind == 0 and node.attribute:                      # attribute value
            a = r.choice(node.attribute)
            if a.type == AttributeProto.INTS and a.ints:
                a.ints[r.randrange(len(a.ints))] = r.choice(HOSTILE_INTS)
            elif a.type == AttributeProto.INTS:
                a.ints.append(r.choice(HOSTILE_INTS))
            elif a.type == AttributeProto.INT:
                a.i = r.choice(HOSTILE_INTS)
            elif a.type == AttributeProto.FLOAT:
                a.f = r.choice([float("nan"), float("inf"), -1e38, 0.0])
        elif kind == 1 and node.attribute:                    # attribute type swap
            a = r.choice(node.attribute)
            a.type = r.choice([t for t in AttributeProto.AttributeType.values()])
        elif kind == 2 and node.attribute:                    # ints list length
            a = r.choice(node.attribute)
            if a.type == AttributeProto.INTS:
                if r.random() < 0.5 and a.ints:
                    del a.ints[-1]
                else:
                    a.ints.extend([r.choice(HOSTILE_INTS)] * r.randrange(1, 4))
        elif kind == 3:                                       # initializer dims
            if init.dims and r.random() < 0.7:
                init.dims[r.randrange(len(init.dims))] = r.choice(HOSTILE_INTS)
            else:
                init.dims.append(r.choice((0, 1, 2, 1 << 33)))
        elif kind == 4:                                       # data type
            init.data_type = r.choice(list(TensorProto.DataType.values()) + [99, -1])
        elif kind == 5:                                       # raw data length
            raw = init.raw_data
            init.raw_data = raw[: r.randrange(len(raw) + 1)] if r.random() < 0.5 else raw + b"\0" * 4
        elif kind == 6:                                       # names rewired
            i = r.randrange(len(node.input)) if node.input else None
            names = [v.name for v in g.initializer] + [o for n in g.node for o in n.output] + \
                ["X", "", "ghost", "Y"]
            if i is not None:
                node.input[i] = r.choice(names)
        elif kind == 7:                                       # op type
            node.op_type = r.choice(OPS)
        elif kind == 8:                                       # opset
            m.opset_import[0].version = r.choice([1, 6, 7, 9, 11, 13, 17, 21, 99, 0])
        elif kind == 9:                                       # inputs added/removed
            if node.input and r.random() < 0.5:
                del node.input[-1]
            else:
                node.input.append(r.choice(["X", "W", "B", "S", ""]))
        elif kind == 10:                                      # graph input shape
            d = g.input[0].type.tensor_type.shape.dim
            d[r.randrange(len(d))].dim_value = r.choice(HOSTILE_INTS[:8])
        else:                                                 # typed field instead of raw
            t = numpy_helper.from_array(np.zeros(r.randrange(0, 6), np.float32), init.name)
            init.ClearField("raw_data")
            init.float_data.extend(t.float_data or [0.0] * r.randrange(0, 6))
    return m


def _check(results, recipe):
    bad = []
    for k, res in enumerate(results):
        if res["result"] == "ok":
            continue
        if res["result"] == "raised" and any(c in res["mro"] for c in ALLOWED):
            continue
        bad.append(f"{recipe} #{k}: {describe(res)}\n{res.get('tb', '')}")
    assert not bad, f"{len(bad)} mutants broke the loader:\n" + "\n".join(bad[:10])


def _summary(results):
    out = {}
    for res in results:
        key = res["result"] if res["result"] != "raised" else res["type"]
        out[key] = out.get(key, 0) + 1
    return out


def test_byte_mutations():
    data = base_model().SerializeToString()
    r = random.Random(SEED)
    cases = [(f"byte{k}", byte_mutant(data, r), FEEDS, {"num_threads": 2})
             for k in range(N_BYTE_MUTANTS)]
    res = run_isolated(cases)
    print("byte mutants:", _summary(res))
    _check(res, f"byte_mutant(seed {SEED})")


def test_proto_mutations():
    m = base_model()
    r = random.Random(SEED + 1)
    cases = []
    for k in range(N_PROTO_MUTANTS):
        mm = proto_mutant(m, r)
        try:
            data = mm.SerializeToString()
        except Exception:       # an unserializable mutant (e.g. an enum out of range)
            continue
        cases.append((f"proto{k}", data, FEEDS, {"num_threads": 2}))
    res = run_isolated(cases)
    print("proto mutants:", _summary(res))
    _check(res, f"proto_mutant(seed {SEED + 1})")


def test_valid_model_still_loads():
    """The base of the mutants is valid, so the mutants test the loader, not a broken model."""
    import fastcnn
    (y,) = fastcnn.InferenceSession(base_model().SerializeToString()).run(None, FEEDS)
    assert y.shape == (1, 5) and np.isfinite(y).all()
