"""Graph passes, one per module, applied in the order of DEFAULT_PIPELINE.

Each pass is `run(graph) -> bool` (did it change the graph?).  A pass's
level says from which optimization level on it runs.
"""
from __future__ import annotations

from typing import Callable, List, Tuple

# (name, level, run): filled as passes are added.
DEFAULT_PIPELINE: List[Tuple[str, str, Callable]] = []

_LEVELS = {"none": 0, "basic": 1, "all": 2}


def optimize(graph, level: str = "all") -> List[str]:
    """Apply the pipeline up to `level`; return the names of passes that changed the graph."""
    applied = []
    for name, lvl, run in DEFAULT_PIPELINE:
        if _LEVELS[lvl] <= _LEVELS[level] and run(graph):
            applied.append(name)
    graph.remove_unused()
    return applied
