"""The error hierarchy: every failure a user can cause is a GraphcError subclass.

Each error carries the node it concerns (name and op) and the user's source line that created
that node, so a message always points back at the user's own code.

Each class is also the built-in exception a numpy or Keras user would catch for the same
mistake (ShapeError is a ValueError, DTypeError a TypeError, ...), so code written against
those keeps working.
"""
import errno


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


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit together (building or feeding a graph)."""


class DTypeError(GraphcError, TypeError, ValueError):
    """A dtype an op does not accept, or a cast that would lose information.

    A TypeError, as numpy's casting errors are, and a ValueError like every other error about
    what a tensor holds."""


class FeedError(GraphcError, ValueError):
    """A missing feed, or a fed value whose shape or dtype the placeholder refuses."""


class GraphMismatchError(GraphcError):
    """Tensors from different graphs used together."""


class GradientError(GraphcError):
    """A gradient that does not exist or was asked for wrongly."""


class NumericsError(GraphcError):
    """A NaN or Inf found under check_numerics=True."""


class CheckpointError(GraphcError, OSError):
    """A checkpoint, model or graph file that is missing, corrupt, truncated or does not match,
    or that could not be written (a full disk, a folder without write permission, a read-only
    file system): an OSError too, whose `errno`, `strerror` and `filename` say which file and
    why when the operating system refused it."""

    def __init__(self, message, node=None, *, errno=None, strerror=None, filename=None):
        super().__init__(message, node)
        self.errno, self.strerror, self.filename = errno, strerror, filename

    def __str__(self):
        return self.args[0]  # OSError would show "[Errno 28] ..." instead of the message


class FileNotFoundError_(CheckpointError, FileNotFoundError):
    """A checkpoint, graph file or model file that does not exist; `filename` is its path."""

    def __init__(self, message, filename=None):
        super().__init__(message, errno=errno.ENOENT, strerror="No such file",
                         filename=filename)


class ResourceError(GraphcError):
    """An allocation too large to make, or a device that is not available."""


class IndexError_(GraphcError, IndexError):
    """An index out of range (gather, sparse labels, basic indexing)."""


class DeviceError(ResourceError):
    """A device that does not exist or is not built yet."""


class TruthValueError(GraphcError, TypeError):
    """A symbolic tensor used where Python needs True or False (`if`, `and`, `not`, `in`)."""


class OptionError(GraphcError, ValueError):
    """An option (a constructor's or a function's argument) given a value it does not take."""
