"""Collectives: ops whose value combines the same tensor across the processes of an MPI job
(graphc/distributed.py says how a job starts and how the values move).

    allreduce(x, op="sum"|"mean")   every rank gets the sum (or mean) of every rank's x
    broadcast(x, root=0)            every rank gets root's x

They are stateful ops (kind "stateful": a uid of their own, never merged with an equal-looking
node nor folded as a constant, a group of their own in fusion). Device cpu runs an allreduce
natively, as a start and a wait on the plan's buffers (compiler.CollectiveStep); otherwise a
device runs a collective as a host step between its native segments, and its reference calls
the job's communicator on the step's input buffer. In a process that is not part of a job (size 1) they are the identity.

Gradients (Horovod's definitions): the gradient of an allreduce is the allreduce, with the
same op, of the upstream gradients; the gradient of a broadcast is the sum of every rank's
upstream gradient, delivered to the root (the other ranks' inputs get zeros).
"""
import numpy as np

from ..errors import DTypeError, GraphcError
from ..ir.graph import new_uid
from ..ir.types import TensorType
from .registry import apply, register
from .sources import as_tensor

OPS = ("sum", "mean")
# what MPI moves here: no float16/bfloat16 (no MPI datatype in every implementation), no bool
DTYPES = ("float32", "float64", "int32", "int64")


def _check_dtype(x, what):
    if x.dtype.name not in DTYPES:
        raise DTypeError(f"{what} takes {', '.join(DTYPES)} tensors, got {x.dtype.name}")


def _allreduce_infer(x, *, uid, reduce):
    if reduce not in OPS:
        raise GraphcError(f"allreduce op must be one of {OPS}, got {reduce!r}")
    _check_dtype(x, "allreduce")
    if reduce == "mean" and not x.dtype.is_float:
        raise DTypeError(f"allreduce op='mean' needs a float tensor, got {x.dtype.name}")
    return TensorType(x.dtype, x.shape)


def _allreduce_ref(x, *, uid, reduce):
    from .. import distributed
    return distributed.communicator().allreduce(np.asarray(x), reduce, uid)


def _allreduce_grad(node, g):
    return [allreduce(g, op=node.attrs["reduce"])]


register("allreduce", infer=_allreduce_infer, ref=_allreduce_ref, grad=_allreduce_grad,
         kind="stateful", stateful=True,
         doc="the sum or mean of a tensor over every rank of the MPI job")


def _broadcast_infer(x, *, uid, root):
    _check_dtype(x, "broadcast")
    return TensorType(x.dtype, x.shape)


def _broadcast_ref(x, *, uid, root):
    from .. import distributed
    return distributed.communicator().broadcast(np.asarray(x), root, uid)


def _broadcast_grad(node, g):
    from .. import distributed
    if not node.inputs[0].dtype.is_float:
        return [None]
    total = allreduce(g, op="sum")
    # every rank runs the same collective; only the root's input receives the sum
    return [total if distributed.rank() == node.attrs["root"] else total * 0.0]


register("broadcast", infer=_broadcast_infer, ref=_broadcast_ref, grad=_broadcast_grad,
         kind="stateful", stateful=True,
         doc="the root rank's value of a tensor, on every rank of the MPI job")


def allreduce(x, op="mean", name=None):
    """The sum (op="sum") or mean (op="mean") of `x` over every rank of the job; its gradient
    is the allreduce, with the same op, of the upstream gradients."""
    x = as_tensor(x)
    if op not in OPS:
        raise GraphcError(f"allreduce op must be one of {OPS}, got {op!r}")
    return apply("allreduce", [x], name=name, uid=new_uid(), reduce=op)


def broadcast(x, root=0, name=None):
    """Rank `root`'s value of `x`, on every rank."""
    x = as_tensor(x)
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0:
        raise GraphcError(f"broadcast root must be a rank (an integer >= 0), got {root!r}")
    return apply("broadcast", [x], name=name, uid=new_uid(), root=int(root))


def is_collective(node):
    return node.op in ("allreduce", "broadcast")

