"""ONNX → Graph IR.

Accepts a path, bytes or a `ModelProto`.  Initializers and `Constant` nodes
become numpy arrays; attributes become plain Python values; external tensor
data is read only from inside the model's folder, with offsets and lengths
checked against the file.
"""
from __future__ import annotations

import functools
import math
import mmap
import os
import sys
from typing import Optional, Union

import numpy as np
from .onnx_proto import AttributeProto, ModelProto, TensorProto

from ..errors import InvalidGraphError, ModelLoadError
from . import onnx_arity as _arity
from .graph import Graph, Node, ValueInfo

MAX_TENSOR_BYTES = 8 << 30   # refuse single tensors above 8 GiB


def _onnx():
    """onnx itself, imported only where a model needs it (external data aside: functions
    to inline, non-raw tensor data, opsets newer than our table, unusual dtypes): importing
    it costs ~0.6 s with numpy 2.4 and ml_dtypes 0.7 (see onnx_proto.py)."""
    import onnx
    import onnx.defs
    import onnx.helper
    import onnx.inliner
    import onnx.numpy_helper
    return onnx


_NP_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.UINT8: np.uint8,
              TensorProto.INT8: np.int8, TensorProto.UINT16: np.uint16,
              TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
              TensorProto.INT64: np.int64, TensorProto.STRING: np.object_,
              TensorProto.BOOL: np.bool_, TensorProto.FLOAT16: np.float16,
              TensorProto.DOUBLE: np.float64, TensorProto.UINT32: np.uint32,
              TensorProto.UINT64: np.uint64, TensorProto.COMPLEX64: np.complex64,
              TensorProto.COMPLEX128: np.complex128}


def np_dtype(elem_type: int) -> np.dtype:
    t = _NP_DTYPES.get(elem_type)
    if t is not None:
        return np.dtype(t)
    try:
        return np.dtype(_onnx().helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        raise InvalidGraphError(f"unsupported ONNX element type {elem_type}") from None


# -- reading: the initializers' raw bytes without protobuf's copies ------------------------------
class _WireError(Exception):
    pass


def _varint(buf, pos: int, end: int):
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _WireError
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf, pos: int, end: int):
    """(field number, wire type, start of field, start of payload, end of field) of one
    protobuf message's fields in buf[pos:end]."""
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos, end)
        wt = key & 7
        if wt == 0:
            _, q = _varint(buf, pos, end)
        elif wt == 1:
            q = pos + 8
        elif wt == 5:
            q = pos + 4
        elif wt == 2:
            n, pos = _varint(buf, pos, end)
            q = pos + n
        else:
            raise _WireError
        if q > end:
            raise _WireError
        yield key >> 3, wt, start, pos, q
        pos = q


def _len_field(field: int, payload: bytes) -> bytes:
    out = bytearray()
    for v in (field << 3 | 2, len(payload)):
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out) + payload


def _split_raw_data(data: bytes):
    """ModelProto bytes -> (the same model without its graph's initializers' raw_data, the
    raw_data of each initializer in order (a memoryview, or None)).  Parsing the large
    strings is what costs: protobuf copies them into the message and again on every access.
    Raises _WireError on anything unexpected (the caller then parses normally)."""
    mv = memoryview(data)
    out, raws = [], []
    for f, wt, start, p0, p1 in _fields(mv, 0, len(data)):
        if f != 7 or wt != 2:                       # ModelProto.graph = 7
            out.append(mv[start:p1])
            continue
        graph = []
        for gf, gwt, gs, q0, q1 in _fields(mv, p0, p1):
            if gf != 5 or gwt != 2:                 # GraphProto.initializer = 5
                graph.append(mv[gs:q1])
                continue
            tensor, raw = [], None
            for tf, twt, ts, r0, r1 in _fields(mv, q0, q1):
                if tf == 9 and twt == 2:            # TensorProto.raw_data = 9
                    raw = mv[r0:r1]
                else:
                    tensor.append(mv[ts:r1])
            graph.append(_len_field(5, b"".join(tensor)))
            raws.append(raw)
        out.append(_len_field(7, b"".join(graph)))
    return b"".join(out), raws


def _file_bytes(path: str):
    """The file's contents: a read-only mapping of it (its pages are the page cache's, so
    the initializers are copied once, straight into their arrays, instead of read into a
    bytes object first: ResNet-18's 47 MB file took ~24 ms to read in a fresh process),
    or its bytes where it cannot be mapped.  Nothing keeps the mapping once the model is
    imported: every array is a copy."""
    with open(path, "rb") as f:
        try:
            if os.fstat(f.fileno()).st_size > 0:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            pass
        return f.read()


def read_model(model: Union[str, os.PathLike, bytes, ModelProto]):
    """Return (ModelProto, base_dir or None, raws) without touching external data; raws, when
    not None, holds the raw_data of each graph initializer, left out of the ModelProto."""
    if isinstance(model, ModelProto):
        return model, None, None
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, base = bytes(model), None
        where = "the given bytes"
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise ModelLoadError(f"model file '{path}' does not exist")
        data = _file_bytes(path)
        base = os.path.dirname(os.path.abspath(path))
        where = f"'{path}'"
    else:
        raise TypeError(f"model must be a path, bytes or onnx.ModelProto, not {type(model).__name__}")
    if not data:
        raise ModelLoadError(f"{where} is empty, not an ONNX model")
    proto = ModelProto()
    raws = None
    try:
        skeleton, raws = _split_raw_data(data)
        proto.ParseFromString(skeleton)
        if len(raws) != len(proto.graph.initializer):
            raise _WireError
    except Exception:           # not what we expected: let protobuf parse (and judge) it all
        raws = None
        proto = ModelProto()
    try:
        if raws is None:
            proto.ParseFromString(data if isinstance(data, bytes) else bytes(data))
    except Exception as e:
        raise ModelLoadError(f"{where} is not a valid ONNX model (corrupt or truncated?): {e}") from None
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise ModelLoadError(f"{where} does not hold an ONNX graph (corrupt or truncated file?)")
    return proto, base, raws


def _external_bytes(t: TensorProto, base_dir: Optional[str]) -> bytes:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location")
    if not loc:
        raise ModelLoadError(f"tensor '{t.name}' has external data without a location")
    if "\0" in loc:
        raise ModelLoadError(f"tensor '{t.name}': external data path {loc!r} contains a NUL byte")
    if base_dir is None:
        raise ModelLoadError(f"tensor '{t.name}' stores its data in external file '{loc}', "
                             "but the model was not loaded from a path; load it from its file")
    if os.path.isabs(loc) or loc.startswith(("/", "\\")) or \
            ".." in loc.replace("\\", "/").split("/"):
        raise ModelLoadError(f"tensor '{t.name}': external data path '{loc}' leaves the model's folder")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, loc))
    if os.path.commonpath([root, path]) != root:
        raise ModelLoadError(f"tensor '{t.name}': external data path '{loc}' leads outside the "
                             "model's folder (symlink?)")
    if not os.path.isfile(path):   # also refuses directories, FIFOs and devices
        raise ModelLoadError(f"tensor '{t.name}': external data file '{loc}' not found "
                             "(or not a regular file)")
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ModelLoadError(f"tensor '{t.name}': cannot open external data file '{loc}': "
                             f"{e.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else size - offset
        except ValueError:
            raise ModelLoadError(f"tensor '{t.name}': bad external data offset/length") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise ModelLoadError(f"tensor '{t.name}': external data offset {offset} + length "
                                 f"{length} exceed file '{loc}' of {size} bytes")
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:   # the file shrank under us
        raise ModelLoadError(f"tensor '{t.name}': external data file '{loc}' is shorter than "
                             f"offset {offset} + length {length}")
    return data


ALIGN = 64


def _copy_aligned(flat: np.ndarray, dims) -> np.ndarray:
    """A copy of `flat` shaped `dims` whose data starts on a cache line (numpy's own start
    16 bytes in): the conv kernels may then pack a weight in its own memory
    (conv_nchwc.pack_conv_weights_inplace) instead of into fresh pages."""
    n = flat.size
    if n * flat.itemsize < 4096:
        return flat.reshape(dims).copy()
    raw = np.empty(n * flat.itemsize + ALIGN, np.uint8)
    skip = -raw.ctypes.data % ALIGN
    out = raw[skip:skip + n * flat.itemsize].view(flat.dtype).reshape(dims)
    out.reshape(-1)[...] = flat
    return out


def tensor_to_array(t: TensorProto, base_dir: Optional[str] = None, raw=None) -> np.ndarray:
    """TensorProto → numpy, validating that stored data matches the declared dims.  `raw`:
    the tensor's raw_data when read_model kept it out of the message."""
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise InvalidGraphError(f"tensor '{t.name}' has negative dims {dims}")
    dtype = np_dtype(t.data_type)
    count = math.prod(dims)          # Python ints: no int64 wrap-around on absurd dims
    if count * max(dtype.itemsize, 1) > MAX_TENSOR_BYTES:
        raise InvalidGraphError(f"tensor '{t.name}' declares {count} elements, too large")
    if raw is not None:
        if t.data_location == TensorProto.EXTERNAL or t.data_type == TensorProto.STRING:
            raise InvalidGraphError(f"tensor '{t.name}' has raw_data and external or string data")
        if dtype.kind in "fiub" and dtype.itemsize in (1, 2, 4, 8) and \
                sys.byteorder == "little" and len(raw) == count * dtype.itemsize:
            return _copy_aligned(np.frombuffer(raw, dtype), dims)    # one copy, straight in
        t = TensorProto.FromString(t.SerializeToString())     # (small: its data is not in it)
        t.raw_data = bytes(raw)                               # the general path judges it
    if t.data_location == TensorProto.EXTERNAL:
        raw = _external_bytes(t, base_dir)
        t = TensorProto.FromString(t.SerializeToString())
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
        t.raw_data = raw
    if t.HasField("raw_data") and t.data_type not in (TensorProto.STRING,):
        raw = t.raw_data            # (each access copies the bytes out of the message)
        if dtype.itemsize and len(raw) != count * dtype.itemsize:
            raise InvalidGraphError(
                f"tensor '{t.name}' declares dims {list(dims)} ({count} x {dtype.name}) but stores "
                f"{len(raw)} bytes")
        if dtype.kind in "fiub" and dtype.itemsize in (1, 2, 4, 8) and sys.byteorder == "little":
            # the common case, without numpy_helper's extra copies
            return _copy_aligned(np.frombuffer(raw, dtype), dims)
    try:
        arr = _onnx().numpy_helper.to_array(t)
    except Exception as e:
        raise InvalidGraphError(f"tensor '{t.name}' cannot be decoded: {e}") from None
    if arr.size != count:
        raise InvalidGraphError(
            f"tensor '{t.name}' declares dims {list(dims)} but holds {arr.size} values")
    arr = arr.reshape(dims)
    return arr if arr.flags.c_contiguous else arr.copy()   # keeps 0-d scalars 0-d


def _attr_value(a: AttributeProto, base_dir):
    T = AttributeProto
    if a.type == T.FLOAT:
        return float(a.f)
    if a.type == T.INT:
        return int(a.i)
    if a.type == T.STRING:
        return a.s.decode("utf-8", "replace")
    if a.type == T.TENSOR:
        return tensor_to_array(a.t, base_dir)
    if a.type == T.FLOATS:
        return [float(x) for x in a.floats]
    if a.type == T.INTS:
        return [int(x) for x in a.ints]
    if a.type == T.STRINGS:
        return [s.decode("utf-8", "replace") for s in a.strings]
    if a.type == T.TENSORS:
        return [tensor_to_array(t, base_dir) for t in a.tensors]
    if a.type == T.GRAPHS:
        return a  # kept opaque; no op we support takes a list of graphs
    if a.type == T.UNDEFINED and a.HasField("i"):
        return int(a.i)
    raise InvalidGraphError(f"attribute '{a.name}' has unsupported type {a.type}")


def _value_info(v) -> ValueInfo:
    tt = v.type.tensor_type
    dtype = np_dtype(tt.elem_type) if tt.elem_type else np.dtype(np.float32)
    if not tt.HasField("shape"):
        return ValueInfo(v.name, dtype, None)
    dims = []
    for d in tt.shape.dim:
        # dim_value -1 means "unknown": converters that hand a framework's batch -1 to
        # onnx.helper write it, and onnxruntime reads it so (other negatives stay errors)
        if d.HasField("dim_value") and d.dim_value != -1:
            dims.append(int(d.dim_value))
        elif d.HasField("dim_value"):
            dims.append(None)
        elif d.HasField("dim_param") and d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return ValueInfo(v.name, dtype, tuple(dims))


def _constant_value(node: Node) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        return a["value"]
    for key, dt in (("value_float", np.float32), ("value_int", np.int64)):
        if key in a:
            return np.array(a[key], dtype=dt)
    for key, dt in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in a:
            return np.array(a[key], dtype=dt)
    raise InvalidGraphError(f"Constant node '{node.name}' has no supported value attribute "
                            f"(has {sorted(a)})")


class _Arity:
    __slots__ = ("since_version", "min_input", "max_input", "max_output")

    def __init__(self, since_version, min_input, max_input, max_output):
        self.since_version, self.min_input = since_version, min_input
        self.max_input, self.max_output = max_input, max_output


@functools.lru_cache(maxsize=None)
def _schema(op_type: str, opset: int, domain: str):
    """The input/output counts of an op's schema at an opset, or None (unknown op or
    version).  From our own table (onnx_arity.py): the first onnx.defs.get_schema call
    builds onnx's whole schema registry, ~10 ms of a fresh process's first session; onnx
    is asked only for opsets newer than the table."""
    if domain == "" and opset <= _arity.OPSET:
        versions = _arity.OPS.get(op_type)
        if versions is None:
            return None
        found = None
        for v in versions:
            if v[0] > opset:
                break
            found = v
        return None if found is None else _Arity(*found)
    try:
        s = _onnx().defs.get_schema(op_type, opset, domain)
    except Exception:
        return None
    return _Arity(s.since_version, s.min_input, s.max_input, s.max_output)


def _check_arity(n, name: str, domain: str, opsets) -> None:
    """A node must produce something, and (for ONNX ops) have as many inputs and
    outputs as its schema allows: kernels are bound by position and trust it."""
    if not any(n.output):
        raise InvalidGraphError(f"{n.op_type} node '{name}' has no outputs")
    if domain != "" or domain not in opsets:
        return
    s = _schema(n.op_type, opsets[domain], domain)
    if s is None:        # unknown op or version: the op registry reports it, with every other
        return
    n_in = len(n.input)
    while n_in and not n.input[n_in - 1]:    # trailing omitted optionals do not count
        n_in -= 1
    n_out = len(n.output)
    if n_in < s.min_input or n_in > s.max_input:
        want = (f"{s.min_input}" if s.min_input == s.max_input
                else f"{s.min_input} to {s.max_input}")
        raise InvalidGraphError(f"{n.op_type} node '{name}' has {n_in} inputs; "
                                f"{n.op_type}-{s.since_version} takes {want}")
    if n_out > s.max_output:
        raise InvalidGraphError(f"{n.op_type} node '{name}' has {n_out} outputs; "
                                f"{n.op_type}-{s.since_version} has at most {s.max_output}")


MAX_SUBGRAPH_DEPTH = 32


def _import_nodes(g, base_dir, opsets, inits, depth) -> list:
    """The nodes of GraphProto `g`; its Constant nodes go to `inits`.  A node with graph
    attributes (If's branches) gets each as a `Graph` and, appended to its inputs, the
    outer values the subgraphs read (their captures, in `attrs['fastcnn_captures']`):
    liveness, toposort and the passes then see those reads like any other."""
    nodes = []
    used_names = set()
    for k, n in enumerate(g.node):
        attrs = {}
        subgraphs = []
        for a in n.attribute:
            if a.ref_attr_name:
                raise InvalidGraphError(f"node '{n.name}' uses a reference attribute (functions are not supported)")
            if a.type == AttributeProto.GRAPH:
                if depth >= MAX_SUBGRAPH_DEPTH:
                    raise InvalidGraphError(f"{n.op_type} node '{n.name}': subgraphs nested "
                                            f"more than {MAX_SUBGRAPH_DEPTH} deep")
                attrs[a.name] = _import_subgraph(a.g, base_dir, opsets, depth + 1)
                subgraphs.append(attrs[a.name])
            else:
                attrs[a.name] = _attr_value(a, base_dir)
        name = n.name or f"{n.op_type}_{k}"
        while name in used_names:
            name = f"{name}_{k}"
        used_names.add(name)
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        _check_arity(n, name, domain, opsets)
        node = Node(n.op_type, name, list(n.input), list(n.output), attrs, domain)
        if subgraphs:
            captures = []
            for sg in subgraphs:
                captures += [c for c in sg.captures if c not in captures]
            attrs["fastcnn_captures"] = captures
            node.inputs += captures
        if node.op_type == "Constant" and domain == "":
            if len(node.outputs) != 1:
                raise InvalidGraphError(f"Constant node '{name}' must have one output")
            inits[node.outputs[0]] = _constant_value(node)
            continue
        nodes.append(node)
    return nodes


def _import_subgraph(g, base_dir, opsets, depth) -> Graph:
    """A subgraph (If's then/else branch) as a `Graph` whose `captures` lists the values
    of enclosing scopes it reads, in order of first use."""
    inits = {}
    for t in g.initializer:
        if not t.name:
            raise InvalidGraphError(f"an initializer of subgraph '{g.name}' has no name")
        inits[t.name] = tensor_to_array(t, base_dir)
    for st in g.sparse_initializer:
        raise InvalidGraphError(f"sparse initializer '{st.values.name}' is not supported")
    nodes = _import_nodes(g, base_dir, opsets, inits, depth)
    inputs = [_value_info(v) for v in g.input if v.name not in inits]
    outputs = [_value_info(v) for v in g.output]
    local = set(inits) | {v.name for v in inputs} | {o for n in nodes for o in n.outputs if o}
    captures = []
    for name in [i for n in nodes for i in n.inputs] + [v.name for v in outputs]:
        if name and name not in local and name not in captures:
            captures.append(name)
    sub = Graph(nodes, inputs + [ValueInfo(c, np.dtype(np.float32), None) for c in captures],
                outputs, inits, opsets, g.name or "subgraph")
    sub.toposort()          # captures count as available while sorting
    sub.inputs = inputs
    sub.captures = captures
    return sub


MAX_INLINED_NODES = 1 << 20


def _inlined_size(proto) -> int:
    """How many nodes the main graph has once every local function call is expanded
    (a function calling another twice, nested, grows exponentially); recursion is
    left for the inliner to report."""
    funcs = {(f.domain, f.name): f for f in proto.functions}
    memo, active = {}, set()

    def size(nodes):
        total = 0
        for n in nodes:
            key = (n.domain, n.op_type)
            if key in funcs and key not in active:
                if key not in memo:
                    active.add(key)
                    memo[key] = size(funcs[key].node)
                    active.discard(key)
                total += memo[key]
            else:
                total += 1
            if total > MAX_INLINED_NODES:
                return total
        return total

    return size(proto.graph.node)


def _inline_local_functions(proto):
    """The main graph's nodes with calls of the model's local functions (FunctionProto:
    the dynamo exporter's and export_modules_as_functions' modules) expanded by onnx's
    inliner, as a GraphProto holding nodes only (initializers are not copied)."""
    n = _inlined_size(proto)
    if n > MAX_INLINED_NODES:
        raise InvalidGraphError(f"the model's local functions expand to more than "
                                f"{MAX_INLINED_NODES} nodes")
    onnx = _onnx()
    skeleton = ModelProto()
    skeleton.ir_version = proto.ir_version
    skeleton.opset_import.extend(proto.opset_import)
    skeleton.functions.extend(proto.functions)
    skeleton.graph.node.extend(proto.graph.node)
    skeleton.graph.input.extend(proto.graph.input)
    skeleton.graph.output.extend(proto.graph.output)
    try:
        inlined = onnx.inliner.inline_local_functions(skeleton)   # (onnx = _onnx())
    except Exception as e:
        raise InvalidGraphError(f"the model's local functions could not be inlined: {e}") from None
    return inlined.graph


def import_model(model) -> Graph:
    """Load an ONNX model (path, bytes or ModelProto) into a `Graph`."""
    proto, base_dir, raws = read_model(model)
    g = proto.graph
    opsets = {}
    for o in proto.opset_import:
        dom = "" if o.domain in ("", "ai.onnx") else o.domain
        opsets[dom] = int(o.version)
    if "" not in opsets:
        if proto.ir_version and proto.ir_version < 3:
            opsets[""] = 1
        else:
            raise ModelLoadError("the model imports no default ONNX opset (opset_import is empty)")
    known = _arity.OPSET       # (onnx's own newest opset only asked for above that)
    if opsets[""] > known and opsets[""] > (known := _onnx().defs.onnx_opset_version()):
        raise ModelLoadError(f"the model needs ONNX opset {opsets['']}, newer than the newest "
                             f"this onnx package knows ({known}); upgrade onnx")
    if opsets[""] < 1:
        raise ModelLoadError(f"invalid ONNX opset version {opsets['']}")

    inits = {}
    for k, t in enumerate(g.initializer):
        if not t.name:
            raise InvalidGraphError("an initializer has no name")
        inits[t.name] = tensor_to_array(t, base_dir, None if raws is None else raws[k])
    for st in g.sparse_initializer:
        raise InvalidGraphError(f"sparse initializer '{st.values.name}' is not supported")

    node_graph = _inline_local_functions(proto) if len(proto.functions) else g
    nodes = _import_nodes(node_graph, base_dir, opsets, inits, depth=0)

    init_names = set(inits)
    inputs = [_value_info(v) for v in g.input if v.name not in init_names]
    outputs = [_value_info(v) for v in g.output]
    if not outputs:
        raise InvalidGraphError("the graph declares no outputs")
    value_info = {v.name: _value_info(v) for v in g.value_info}
    graph = Graph(nodes, inputs, outputs, inits, opsets, g.name or "graph", value_info)
    graph.toposort()
    return graph
