"""The error hierarchy: every failure a user can cause is a GraphcError subclass.

Each error carries the node it concerns (name and op) and the user's source line that created
that node, so a message always points back at the user's own code.
"""


class GraphcError(Exception):
    """Base of every error graphc raises on purpose."""

    def __init__(self, message, node=None):
        self.node = node
        self.detail = message
        super().__init__(_with_node(message, node))


def _with_node(message, node):
    if node is None:
        return message
    where = f" (created at {node.source})" if getattr(node, "source", None) else ""
    return f"node '{node.name}' [{node.op}]{where}: {message}"


class ShapeError(GraphcError):
    """Shapes that do not fit together (building or feeding a graph)."""


class DTypeError(GraphcError):
    """A dtype an op does not accept, or a cast that would lose information."""


class FeedError(GraphcError):
    """A missing feed, or a fed value whose shape or dtype the placeholder refuses."""


class GraphMismatchError(GraphcError):
    """Tensors from different graphs used together."""


class GradientError(GraphcError):
    """A gradient that does not exist or was asked for wrongly."""


class NumericsError(GraphcError):
    """A NaN or Inf found under check_numerics=True."""


class CheckpointError(GraphcError):
    """A checkpoint or graph file that is missing, corrupt, truncated or does not match."""


class ResourceError(GraphcError):
    """An allocation too large to make, or a device that is not available."""


class IndexError_(GraphcError, IndexError):
    """An index out of range (gather, sparse labels, basic indexing)."""


class DeviceError(ResourceError):
    """A device that does not exist or is not built yet."""
