"""Graph passes, one per module, applied in the order of DEFAULT_PIPELINE.

Each pass is `run(graph) -> bool` (did it change the graph?).  A pass's
level says from which optimization level on it runs.
"""
from __future__ import annotations

from typing import Callable, List, Tuple

from . import (cancel_transposes, fold_affine, fold_batchnorm, fold_pad, fuse_activation,
               fuse_pixel_shuffle, fuse_residual, push_transposes)

# (name, level, run), in order.  "basic": exact rewrites of the graph's algebra;
# "all": also fusions into kernel epilogues.
DEFAULT_PIPELINE: List[Tuple[str, str, Callable]] = [
    ("push_transposes", "basic", push_transposes.run),
    ("cancel_transposes", "basic", cancel_transposes.run),
    ("fold_pad", "basic", fold_pad.run),
    ("fold_batchnorm", "basic", fold_batchnorm.run),
    ("fold_affine", "basic", fold_affine.run),
    ("fuse_pixel_shuffle", "basic", fuse_pixel_shuffle.run),
    ("fuse_residual", "all", fuse_residual.run),
    ("fuse_activation", "all", fuse_activation.run),
]

_LEVELS = {"none": 0, "basic": 1, "all": 2}


def optimize(graph, level: str = "all") -> List[str]:
    """Apply the pipeline up to `level`; return the names of passes that changed the graph."""
    applied = []
    for name, lvl, run in DEFAULT_PIPELINE:
        if _LEVELS[lvl] <= _LEVELS[level] and run(graph):
            applied.append(name)
    graph.remove_unused()
    return applied
