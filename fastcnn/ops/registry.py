"""Op registry: `@register("Conv", since_version=11)` on an `Op` subclass.

Lookup takes the newest registered version ≤ the model's opset for that
domain.  Registering the same (domain, op_type, since_version) twice raises.
"""
from __future__ import annotations

import bisect
from typing import Dict, List, Optional, Tuple, Type

_REGISTRY: Dict[Tuple[str, str], List[Tuple[int, type]]] = {}


def register(op_type: str, since_version: int = 1, domain: str = ""):
    def deco(cls):
        key = (domain, op_type)
        versions = _REGISTRY.setdefault(key, [])
        if any(v == since_version for v, _ in versions):
            raise RuntimeError(f"op {domain or 'ai.onnx'}::{op_type} version {since_version} "
                               "registered twice")
        bisect.insort(versions, (since_version, cls), key=lambda t: t[0])
        return cls
    return deco


def lookup(op_type: str, opset: int, domain: str = "") -> Optional[type]:
    versions = _REGISTRY.get((domain, op_type))
    if not versions:
        return None
    best = None
    for v, cls in versions:
        if v <= opset:
            best = cls
    return best


def supported_ops(domain: str = "") -> List[str]:
    return sorted(op for (d, op) in _REGISTRY if d == domain)


def all_registered():
    return {k: list(v) for k, v in _REGISTRY.items()}
