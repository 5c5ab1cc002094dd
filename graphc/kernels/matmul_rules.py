"""Lowering of matmul (numpy's rules: 1-D operands, broadcast batch dims) to Gemm statements.

Operands are read as matrices through strides: a 1-D operand as A's one row, (k,) -> (1, k), or
as B's one column, (k,) -> (k, 1), and the output leaves that axis out, as numpy's does. Batch
dims become loops around the Gemm, each product reading its operands' broadcast batch entry;
where B has no batch dims and A's lie contiguously above its rows (A row-major), they fold into
the rows of one Gemm instead: (b, m, k) @ (k, n) is one (b*m) x k x n product, and (b, m, k) @
(k,) one matrix-vector product, which runs as the vector's row times the matrix's transpose
(the GEMM's register tiles are wider than tall). float16 and bfloat16 products go as
products.py says.

Integer products (rare; no target's Gemm takes them) are a loop over the output of Reduce(sum)s,
which wrap around as numpy's do.
"""
from . import ir
from .lower import Emitter, broadcast_index, loop_nest, nest
from .products import Products, compute_dtype


def matmul(group, slots, name):
    node = group.root
    a, b = node.inputs
    out = node.outputs[0]
    if compute_dtype(out.dtype.name, slots) not in slots.gemm_dtypes:
        return _sums(group, slots, name)
    low = Products(group, slots, name)
    em = low.k
    a_slot, a_at, a_str = low.strided(a)
    b_slot, b_at, b_str = low.strided(b)
    nb = _batch_rank(a, b, out)
    batch = em.dims(out.shape[:nb])
    # A's rows and B's columns (one for a vector), with their strides
    m, a_rows = (em.dim(a.shape[-2]), a_str[-2]) if a.rank > 1 else (ir.const(1), ir.const(0))
    n, b_cols = (em.dim(b.shape[-1]), b_str[-1]) if b.rank > 1 else (ir.const(1), ir.const(0))
    b_k = b_str[-2] if b.rank > 1 else b_str[-1]
    c_str = ir.contiguous_strides(batch + [m, n])
    c_slot = low.product_slot()
    if nb and b.rank <= 2 and _rows_below_batch(a_str, em.dims(a.shape), nb):
        m, nb, batch = ir.product(batch + [m]), 0, []  # one product over all the rows
    bvars = [ir.Var(f"b{i}") for i in range(nb)]
    if nb:
        a_at = ir.add(a_at, _batch_offset(a, a_str, out.shape[:nb], bvars, em.dim))
        b_at = ir.add(b_at, _batch_offset(b, b_str, out.shape[:nb], bvars, em.dim))
    a_op = ir.Operand(a_slot, a_at, a_rows, a_str[-1])
    b_op = ir.Operand(b_slot, b_at, b_k, b_cols)
    c_op = ir.Operand(c_slot, ir.linear(bvars, c_str), c_str[-2], ir.const(1))
    if b.rank == 1 and a.rank > 1:
        # a matrix times a vector as the vector's row times the matrix's transpose, C's
        # column as a row: the GEMM's tiles are wider than tall, so one column wastes more
        m, n = ir.const(1), m
        a_op, b_op = (ir.Operand(b_slot, b_at, ir.const(0), b_k),
                      ir.Operand(a_slot, a_at, a_str[-1], a_rows))
        c_op = ir.Operand(c_slot, c_op.offset, ir.const(0), ir.const(1))
    gemm = ir.Gemm(low.dtype, m, n, em.dim(a.shape[-1]), a_op, b_op, c_op)
    low.add(nest(list(zip(bvars, batch)), (gemm,)), (node.name,))
    return low.finish(low.load(c_slot, out.shape), stored=c_slot)


def _batch_rank(a, b, out):
    """How many of out's leading axes are batch axes (the rest: A's rows, B's columns)."""
    return out.rank - (a.rank > 1) - (b.rank > 1)


def _batch_offset(t, strides, batch_shape, bvars, dim):
    """Where t's matrix for batch index bvars starts (t's batch dims broadcast as numpy's)."""
    lead = t.shape[:-2]
    return ir.linear(broadcast_index(lead, batch_shape, bvars, dim), strides[:len(lead)])


def _rows_below_batch(strides, dims, nb):
    """Whether the first nb axes of a matrix stack (strides, dims) step over its rows
    contiguously, so that they and the rows are one axis of rows."""
    return all(strides[i] == ir.mul(strides[i + 1], dims[i + 1]) for i in range(nb))


def _sums(group, slots, name):
    """out[..., i, j] = Reduce(sum over kk) of a[..., i, kk] * b[..., kk, j], in out's dtype."""
    node = group.root
    a, b = node.inputs
    out = node.outputs[0]
    nb = _batch_rank(a, b, out)
    batch_shape = out.shape[:nb]

    def product(idx):
        batch, rest = idx[:nb], idx[nb:]
        i, j = rest[:a.rank > 1], rest[a.rank > 1:]

        def term(kk):
            x = emitter.value(a, broadcast_index(a.shape[:-2], batch_shape, batch, emitter.dim)
                              + (*i, kk[0]))
            y = emitter.value(b, broadcast_index(b.shape[:-2], batch_shape, batch, emitter.dim)
                              + (kk[0], *j))
            return ir.op("mul", x, y)
        return emitter.reduce("sum", a.shape[-1:], (0,), term, out.dtype.name)
    emitter = Emitter(group, slots, {(node.id, 0): product})
    return [loop_nest(emitter, group, out.shape, (), group.outputs, name)]
