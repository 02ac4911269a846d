"""Liveness-based arena planning.

Each buffer lives from the step that writes it first to the step that reads
it last.  Buffers are placed greedily, largest first, at the lowest offset
that does not overlap (in address and in time) a buffer already placed —
the classic offset-assignment heuristic (TFLite's "greedy by size").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

ALIGN = 64


@dataclass
class Buffer:
    nbytes: int
    first: int        # first step index that writes it (-1: before the first step)
    last: int         # last step index that reads it
    offset: int = -1


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_offsets(buffers: List[Buffer]) -> int:
    """Assign `offset` to every buffer; return the arena size in bytes."""
    order = sorted(range(len(buffers)), key=lambda k: (-buffers[k].nbytes, buffers[k].first))
    placed: List[Buffer] = []
    total = 0
    for k in order:
        b = buffers[k]
        size = _align(max(b.nbytes, 1))
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last),
                      key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + size <= p.offset:
                break
            offset = max(offset, p.offset + _align(max(p.nbytes, 1)))
        b.offset = offset
        placed.append(b)
        total = max(total, offset + size)
    return total
