"""Rows read more than once, through shared memory: one pass over global memory per row.

In a kernel whose blocks take rows (launch kind "rows"), a softmax reads its row three times:
for the max, for the sum of exponentials and for the output. Where the row is a buffer's
elements base + v for a loop variable v of constant extent (base depending on the row only),
read in two or more of the row's loops and reductions, and not written by the kernel, the block
copies it into shared memory at the start of the row and every such load reads the copy. The
copies of one kernel take at most ROW_CACHE_BYTES.
"""
from dataclasses import dataclass

from ...kernels import ir
from .types import REGISTER, STORAGE_BYTES
from .values import statement_exprs

ROW_CACHE_BYTES = 32 * 1024


@dataclass(frozen=True)
class CachedRow:
    buffer: int
    base: ir.Expr
    extent: int
    dtype: str
    loads: tuple  # (the Load, its loop variable's name)

    @property
    def nbytes(self):
        return self.extent * STORAGE_BYTES[self.dtype]

    def declaration(self, name):
        return f"__shared__ {REGISTER[self.dtype]} {name}[{self.extent}];"


def cached_rows(kernel):
    """The rows of a "rows" kernel worth reading through shared memory."""
    loop = kernel.parallel_loop
    outer = {loop.var.name}
    extents = {s.var.name: s.extent for s in loop.body if isinstance(s, ir.Loop)}
    written = {s.buffer for s in ir.walk_statements(loop.body) if isinstance(s, ir.Store)}
    readers, seen, todo = {}, set(), list(statement_exprs(loop.body))
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ir.Reduce) and len(e.loops) == 1 and ir.free_vars(e) <= outer:
            extents[e.loops[0][0].name] = e.loops[0][1]
        todo.extend(ir.children(e))
    for e in _loads(loop.body):
        row = _row_of(e, extents, outer)
        if row is not None and e.buffer not in written:
            readers.setdefault(row, {})[e] = e.index.args[1].name
    out, budget = [], ROW_CACHE_BYTES
    for (buffer, base, extent, dtype), loads in readers.items():
        row = CachedRow(buffer, base, extent, dtype, tuple(loads.items()))
        if len(set(loads.values())) > 1 and row.nbytes <= budget:
            out.append(row)
            budget -= row.nbytes
    return out


def _loads(stmts):
    seen, todo = set(), list(statement_exprs(stmts))
    while todo:
        e = todo.pop()
        if id(e) not in seen:
            seen.add(id(e))
            if isinstance(e, ir.Load):
                yield e
            todo.extend(ir.children(e))


def _row_of(load, extents, outer):
    """(buffer, base, extent, dtype) of a load at base + v, v a row loop's variable."""
    index = load.index
    if not (isinstance(index, ir.Op) and index.name == "add"):
        return None
    base, var = index.args
    extent = extents.get(var.name) if isinstance(var, ir.Var) else None
    if not isinstance(extent, ir.Const) or not ir.free_vars(base) <= outer:
        return None
    return load.buffer, base, extent.value, load.dtype
