"""matmul: numpy semantics (1-D operands, batched with broadcasting of the batch dims)."""
import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir.types import TensorType, broadcast_shapes, format_shape
from ..kernels import matmul_rules
from .broadcast import unbroadcast
from .elementwise import coerce_pair
from .registry import apply, register


def _matmul_infer(a, b):
    if a.dtype is not b.dtype or a.dtype.is_bool:
        raise DTypeError(f"matmul needs two numeric operands of one dtype, got {a.dtype.name} "
                         f"and {b.dtype.name}")
    if a.rank == 0 or b.rank == 0:
        raise ShapeError("matmul does not take scalars; use * for scaling")
    a_shape = (1,) + a.shape if a.rank == 1 else a.shape
    b_shape = b.shape + (1,) if b.rank == 1 else b.shape
    k_a, k_b = a_shape[-1], b_shape[-2]
    if isinstance(k_a, int) and isinstance(k_b, int) and k_a != k_b:
        raise ShapeError(f"matmul of {format_shape(a.shape)} and {format_shape(b.shape)}: "
                         f"inner dims {k_a} and {k_b} differ")
    batch = broadcast_shapes(a_shape[:-2], b_shape[:-2], what="matmul (batch dims)")
    out = batch + (a_shape[-2], b_shape[-1])
    if a.rank == 1:
        out = out[:-2] + out[-1:]
    if b.rank == 1:
        out = out[:-1]
    return TensorType(a.dtype, out)


def _matmul_grad(node, g):
    a, b = node.inputs
    from .shape import expand_dims, matrix_transpose, reshape, squeeze
    # lift 1-D operands to matrices so one formula serves every case
    a2 = expand_dims(a, 0) if a.ndim == 1 else a
    b2 = expand_dims(b, -1) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = expand_dims(g2, -2 if b.ndim > 1 else 0)
    if b.ndim == 1:
        g2 = expand_dims(g2, -1)
    da = matmul(g2, matrix_transpose(b2))
    if b.ndim == 2 and a.ndim > 2 and all(isinstance(d, int) for d in b.shape):
        # b (a weight) is shared by all of a's batches: its gradient is one product over all
        # of a's rows, not a batched product (batch, k, n) summed over the batch afterwards
        k, n = b.shape
        db = matmul(matrix_transpose(reshape(a, (-1, k))), reshape(g, (-1, n)))
    else:
        db = matmul(matrix_transpose(a2), g2)
    if a.ndim == 1:
        da = squeeze(da, -2)
    if b.ndim == 1:
        db = squeeze(db, -1)
    return [unbroadcast(da, a), unbroadcast(db, b)]


register("matmul", infer=_matmul_infer, ref=np.matmul, grad=_matmul_grad, kind="contraction",
         lower_group=matmul_rules.matmul,
         doc="matrix product with numpy's broadcasting and 1-D rules")


def matmul(a, b, name=None):
    """a @ b as numpy computes it."""
    a, b = coerce_pair(a, b)
    return apply("matmul", [a, b], name=name)


