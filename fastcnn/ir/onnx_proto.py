"""onnx's protobuf classes (ModelProto, TensorProto, ...) without importing onnx.

`import onnx` costs ~0.6 s with numpy 2.4 and ml_dtypes 0.7 (onnx.helper imports
ml_dtypes, whose ufunc registration is quadratic), while reading a model needs only the
generated module onnx/onnx_ml_pb2.py, which imports nothing but protobuf.  That module is
loaded here under its own name, `onnx.onnx_ml_pb2`, so a later `import onnx` finds it in
sys.modules and uses the very same classes (a ModelProto made by onnx is one of ours).
Where that is not possible (onnx already imported, another layout), it is onnx's own."""
from __future__ import annotations

import importlib.util
import os
import sys

_NAME = "onnx.onnx_ml_pb2"


class _BindOnImport:
    """Once: when onnx itself is imported, set its `onnx_ml_pb2` attribute to our module
    (the import system binds a submodule to its package only when it loads it)."""

    def find_spec(self, name, path=None, target=None):
        if name != "onnx":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            if _NAME in sys.modules:
                module.onnx_ml_pb2 = sys.modules[_NAME]
            run(module)
        spec.loader.exec_module = exec_module
        return spec


def _load():
    mod = sys.modules.get(_NAME)
    if mod is not None:
        return mod
    if "onnx" not in sys.modules:
        try:
            spec = importlib.util.find_spec("onnx")      # (does not import the package)
            path = os.path.join(os.path.dirname(spec.origin), "onnx_ml_pb2.py")
            if os.path.isfile(path):
                pspec = importlib.util.spec_from_file_location(_NAME, path)
                mod = importlib.util.module_from_spec(pspec)
                sys.modules[_NAME] = mod
                try:
                    pspec.loader.exec_module(mod)
                except BaseException:
                    sys.modules.pop(_NAME, None)
                    raise
                sys.meta_path.insert(0, _BindOnImport())
                return mod
        except Exception:
            pass
    import onnx.onnx_ml_pb2
    return onnx.onnx_ml_pb2


pb = _load()
ModelProto = pb.ModelProto
GraphProto = pb.GraphProto
TensorProto = pb.TensorProto
AttributeProto = pb.AttributeProto
