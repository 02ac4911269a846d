"""Slow, obviously-correct numpy versions of the ops: test oracle and fallback.

Submodules: `conv` (convolution, transposed convolution, pooling),
`matrix` (convolution as a doubly block Toeplitz matrix).
"""
from importlib import import_module as _imp

for _m in ("conv", "matrix"):
    try:
        _mod = _imp(f"{__name__}.{_m}")
    except ModuleNotFoundError as _e:  # submodule not written yet
        if _e.name != f"{__name__}.{_m}":
            raise
        continue
    for _k in getattr(_mod, "__all__", []):
        globals()[_k] = getattr(_mod, _k)
