"""Typed, validated attribute access for ops: a wrong type or value raises
InvalidGraphError naming the node, never a bare TypeError/ValueError."""
from __future__ import annotations

import math


def int_attr(op, name, default=None, choices=None, lo=None):
    v = op.attr(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise op.error(f"attribute '{name}' must be an integer, got {v!r}")
    if choices is not None and v not in choices:
        raise op.error(f"attribute '{name}' must be one of {list(choices)}, got {v}")
    if lo is not None and v < lo:
        raise op.error(f"attribute '{name}' must be >= {lo}, got {v}")
    return v


def flag_attr(op, name, default=0):
    return int_attr(op, name, default, choices=(0, 1))


def float_attr(op, name, default=None, finite=True):
    v = op.attr(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise op.error(f"attribute '{name}' must be a float, got {v!r}")
    v = float(v)
    if finite and not math.isfinite(v):
        raise op.error(f"attribute '{name}' must be finite, got {v}")
    return v


def ints_attr(op, name, default=None):
    v = op.attr(name, default)
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                   for x in v):
        raise op.error(f"attribute '{name}' must be a list of integers, got {v!r}")
    return list(v)


def str_attr(op, name, default=None, choices=None):
    v = op.attr(name, default)
    if v is None:
        return None
    if not isinstance(v, str):
        raise op.error(f"attribute '{name}' must be a string, got {v!r}")
    if choices is not None and v not in choices:
        raise op.error(f"attribute '{name}' must be one of {list(choices)}, got {v!r}")
    return v
