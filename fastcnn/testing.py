"""Helpers for conformance harnesses."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from .session import InferenceSession


def run_onnx(model_path, inputs: Sequence[np.ndarray], num_threads=None) -> List[np.ndarray]:
    """Run a model with `inputs` given in graph.input order; return every output."""
    sess = InferenceSession(model_path, num_threads=num_threads)
    names = [a.name for a in sess.get_inputs()]
    if len(inputs) != len(names):
        raise ValueError(f"the model takes {len(names)} inputs {names}, got {len(inputs)}")
    return sess.run(None, dict(zip(names, inputs)))
