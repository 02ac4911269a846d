"""ONNX op implementations, one op family per module.

Importing this package imports every module in it, which registers the ops.
"""
import importlib
import pkgutil

from .registry import lookup, register, supported_ops  # noqa: F401

for _m in pkgutil.iter_modules(__path__):
    if _m.name not in ("registry", "base"):
        importlib.import_module(f"{__name__}.{_m.name}")
