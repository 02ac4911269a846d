"""Exceptions raised by fastcnn.  Every one names what went wrong and where."""


class FastCNNError(Exception):
    """Base class of every fastcnn error."""


class ModelLoadError(FastCNNError, ValueError):
    """The model file or bytes could not be read as a valid ONNX model."""


class InvalidGraphError(FastCNNError, ValueError):
    """The graph is structurally wrong: cycles, undefined inputs, bad attributes or shapes."""


class UnsupportedOpError(FastCNNError, NotImplementedError):
    """One or more nodes use ops (or op versions) fastcnn does not implement."""

    def __init__(self, missing, supported=None):
        self.missing = list(missing)
        lines = [f"  {op} (domain '{dom or 'ai.onnx'}', opset {ver}) at node '{name}'"
                 for (dom, op, ver, name) in self.missing]
        msg = f"{len(self.missing)} node(s) use unsupported ops:\n" + "\n".join(lines)
        if supported:
            msg += "\nSupported ops: " + ", ".join(sorted(supported))
        super().__init__(msg)


class InputError(FastCNNError, ValueError):
    """A feed passed to run() is missing, unknown, or has the wrong shape or dtype."""


class ShapeError(InvalidGraphError):
    """A node's input shapes are inconsistent with its attributes."""


def node_error(node, message, cls=InvalidGraphError):
    """Build an exception naming the node (op type and name)."""
    return cls(f"{node.op_type} node '{node.name}': {message}")
