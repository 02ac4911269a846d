"""fastcnn: a CPU inference engine for ONNX convolutional networks.

    ONNX file ──import──▶ Graph IR ──passes──▶ optimized Graph ──plan──▶ Plan ──run(feeds)──▶ outputs

Everything that can be decided once is decided before the first run: op
attributes, shapes, constant folding of shape plumbing, the algorithm of each
convolution, prepacked weights and buffer offsets in one arena.

    import fastcnn, numpy as np
    sess = fastcnn.InferenceSession("model.onnx", num_threads=2)
    x = np.random.rand(1, 3, 224, 224).astype(np.float32)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
"""
from .errors import (FastCNNError, InputError, InvalidGraphError, ModelLoadError,  # noqa: F401
                     ShapeError, UnsupportedOpError)
from .session import InferenceSession, NodeArg  # noqa: F401
from .runtime.threads import set_spin_us  # noqa: F401

__version__ = "0.1.0"


def load(model, **kwargs) -> InferenceSession:
    """Shorthand for InferenceSession(model, **kwargs)."""
    return InferenceSession(model, **kwargs)
