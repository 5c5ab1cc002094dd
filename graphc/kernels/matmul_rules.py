"""Lowering of matmul (numpy's rules: 1-D operands, broadcast batch dims) to Gemm statements.

Operands are read as matrices through strides: a 1-D operand as A's one row, (k,) -> (1, k), or
as B's one column, (k,) -> (k, 1), and the output leaves that axis out, as numpy's does. Batch
dims become loops around the Gemm, each product reading its operands' broadcast batch entry;
where B has no batch dims and A's lie contiguously above its rows (A row-major), they fold into
the rows of one Gemm instead: (b, m, k) @ (k, n) is one (b*m) x k x n product (an A whose
batch dims do not lie so, a transpose, is copied row-major first: one product packs B once). A
matrix-vector product left to the Gemm (below) runs as the vector's row times the matrix's
transpose (the GEMM's register tiles are wider than tall). float16 and bfloat16 products go
as products.py says.

Products with a vector side (M or N is 1 at compile time: a 1-D operand, or a matrix of one
row or column) are memory-bound: a Gemm would pack the matrix and fill register tiles with rows
that do not exist. They, and integer products (rare; no target's Gemm takes them), are a loop
over the output of Reduce(sum)s instead, the epilogue fused: (m, k) @ (k,) is a dot product
per row, parallel over the rows, reading along k; (k,) @ (k, n) a column reduction, parallel
over the columns, which the code generators block (each reads rows of B in order). Float
products run in the compute dtype (float16, bfloat16: float32) and are rounded once; integer
ones wrap around as numpy's do. A batched one whose matrix lies in memory across k (its column
sums would step through memory by whole rows inside each batch entry) stays a Gemm.
"""
from . import ir
from .lower import Emitter, broadcast_index, loop_nest, nest
from .products import WIDER, Products, compute_dtype, in_place, rounded


def matmul(group, slots, name):
    node = group.root
    a, b = node.inputs
    out = node.outputs[0]
    dtype = compute_dtype(out.dtype.name, slots)
    if dtype not in slots.gemm_dtypes:
        return _sums(group, slots, name, dtype)
    if _vector_product(group, slots):  # half products in float32, as a half Gemm's
        return _sums(group, slots, name, WIDER.get(dtype, dtype))
    low = Products(group, slots, name)
    em = low.k
    a_slot, a_at, a_str = low.strided(a)
    b_slot, b_at, b_str = low.strided(b)
    nb = _batch_rank(a, b, out)
    batch = em.dims(out.shape[:nb])
    if nb and b.rank <= 2 and not _rows_below_batch(a_str, em.dims(a.shape), nb):
        # A copied row-major makes one product of all its rows, where one per batch entry
        # would pack all of B again each time (an RNN's time-major input projection)
        a_slot, a_at = low.contiguous(a), ir.const(0)
        a_str = ir.contiguous_strides(em.dims(a.shape))
    # A's rows and B's columns (one for a vector), with their strides
    m, a_rows = (em.dim(a.shape[-2]), a_str[-2]) if a.rank > 1 else (ir.const(1), ir.const(0))
    n, b_cols = (em.dim(b.shape[-1]), b_str[-1]) if b.rank > 1 else (ir.const(1), ir.const(0))
    b_k = b_str[-2] if b.rank > 1 else b_str[-1]
    c_str = ir.contiguous_strides(batch + [m, n])
    if nb and b.rank <= 2 and _rows_below_batch(a_str, em.dims(a.shape), nb):
        m, nb, batch = ir.product(batch + [m]), 0, []  # one product over all the rows
    epilogue = _epilogue(group, slots, low.dtype, c_str) if nb == 0 else None
    c_slot = low.product_slot() if epilogue is None else slots.buffer(group.outputs[0])
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
    gemm = ir.Gemm(low.dtype, m, n, em.dim(a.shape[-1]), a_op, b_op, c_op,
                   packed_b=_packed_b(low, b, b_op), **(epilogue or {}))
    if epilogue is not None:  # the Gemm computes the group's output
        low.add((gemm,))
        return low.kernels
    low.add(nest(list(zip(bvars, batch)), (gemm,)), (node.name,))
    return low.finish(low.load(c_slot, out.shape), stored=c_slot)


def _epilogue(group, slots, dtype, c_str):
    """Gemm's bias and relu fields where the group's one output is relu(C + bias), C + bias or
    relu(C) of a matrix product C, elementwise in the product's dtype, with a bias row read
    in place (contiguous, outside the group): the Gemm then stores that output itself, with
    no loop over C after it. Else None (also where the target's Gemm takes no epilogue). C
    is 2-D, or a stack of matrices that the caller computes as one product of all their rows
    (a sequence's input projection `x @ W + b` with x (steps, batch, features))."""
    node = group.root
    out = node.outputs[0]
    final = group.outputs[0]
    if (not slots.gemm_epilogue or len(group.outputs) != 1 or final is out or out.rank < 2
            or node.inputs[0].rank != out.rank or node.inputs[1].rank != 2
            or final.dtype.name != dtype or out.dtype.name != dtype
            or tuple(final.shape) != tuple(out.shape)):
        return None
    rows, j = [ir.Var(f"i{axis}") for axis in range(out.rank - 1)], ir.Var("j")
    product = ir.Load(-1, ir.linear(rows + [j], c_str), dtype)  # C, whatever slot it ends in
    emitter = Emitter(group, slots, {(node.id, 0): lambda idx: ir.Load(
        -1, ir.linear(idx, c_str), dtype)})
    value = emitter.value(final, tuple(rows) + (j,))
    fields = {}
    if _is_op(value, "relu", 1):
        fields["relu"], value = True, value.args[0]
    if _is_op(value, "add", 2) and product in value.args:
        bias = value.args[1] if value.args[0] == product else value.args[0]
        offset = ir.substitute(bias.index, {"j": ir.const(0)}) if isinstance(
            bias, ir.Load) else None
        if (offset is None or bias.dtype != dtype or bias.buffer < 0
                or ir.add(offset, j) != bias.index
                or ir.free_vars(offset) & {v.name for v in rows}):
            return None
        fields["bias"], value = ir.Operand(bias.buffer, offset, ir.const(0), ir.const(1)), product
    return fields if fields and value == product else None


def _is_op(e, name, arity):
    return isinstance(e, ir.Op) and e.name == name and len(e.args) == arity


def _packed_b(low, b, b_op):
    """A slot for B's packed copy (Gemm.packed_b) where B is a matrix of static size read in
    place from an argument of a loop's body that is the same at every step (the recurrent
    weights of an RNN: packed once per run of the loop, not at every step); else None."""
    source = b
    while source.node.id in low.k.members:  # a transpose or reshape read in place
        source = source.node.inputs[0]
    shape = b.shape
    if (source.node.op != "argument" or source.node.attrs["uid"] not in low.slots.invariant
            or b.rank != 2 or b_op.buffer != low.slots.buffer(source)
            or not all(isinstance(d, int) for d in shape)):
        return None
    return low.slots.packed_copy(low.dtype, shape[0], shape[1])


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


def _vector_side(a, b):
    """0 when A has one row (M == 1), 1 when B has one column (N == 1), else None."""
    if a.rank == 1 or _one(a.shape[-2]):
        return 0
    if b.rank == 1 or _one(b.shape[-1]):
        return 1
    return None


def _one(d):
    """Whether dim d is 1 at compile time."""
    return isinstance(d, int) and d == 1


def _vector_product(group, slots):
    """Whether the matmul of `group` runs as sums (see the module's doc): a vector side, and
    no batch axis or a matrix read along k."""
    a, b = group.root.inputs
    side = _vector_side(a, b)
    if side is None:
        return False
    batch = group.root.outputs[0].shape[:_batch_rank(a, b, group.root.outputs[0])]
    if all(_one(d) for d in batch):
        return True
    matrix = (a, b)[1 - side]
    found = in_place(Emitter(group, slots), matrix)
    # a prologue computes the matrix in its own order, which is along k; k is A's last axis
    # and B's last but one, or its only one (A of one row times a 1-D B)
    k_axis = -2 if side == 0 and matrix.rank > 1 else -1
    return found is None or found[2][k_axis] == ir.const(1)


def _sums(group, slots, name, dtype):
    """out[..., i, j] = Reduce(sum over kk) of a[..., i, kk] * b[..., kk, j] in `dtype`, then
    out's dtype. A vector side computed in the group (a prologue) is copied first, once,
    rather than computed again for every row or column of the other side."""
    node = group.root
    a, b = node.inputs
    out = node.outputs[0]
    nb = _batch_rank(a, b, out)
    batch_shape = out.shape[:nb]
    low = Products(group, slots, name, dtype)
    overrides = {(node.id, 0): lambda idx: rounded(product(idx), out.dtype.name)}
    side = _vector_side(a, b)
    vector = None if side is None else (a, b)[side]
    if vector is not None and in_place(low.k, vector) is None:
        overrides[vector.node.id, vector.index] = low.load(low.contiguous(vector), vector.shape)

    def product(idx):
        batch, rest = idx[:nb], idx[nb:]
        i, j = rest[:a.rank > 1], rest[a.rank > 1:]

        def term(kk):
            x = emitter.value(a, broadcast_index(a.shape[:-2], batch_shape, batch, emitter.dim)
                              + (*i, kk[0]))
            y = emitter.value(b, broadcast_index(b.shape[:-2], batch_shape, batch, emitter.dim)
                              + (kk[0], *j))
            return ir.op("mul", low.cast(x), low.cast(y))
        return emitter.reduce("sum", a.shape[-1:], (0,), term, dtype)
    emitter = Emitter(group, slots, overrides)
    low.kernels.append(loop_nest(emitter, group, out.shape, (), group.outputs,
                                 f"{name}_{len(low.kernels)}" if low.kernels else name))
    return low.kernels

