"""What the CUDA renderer and launcher know about a kernel's expressions: value numbers (equal
expressions share one), the loop variables each depends on, and which are index arithmetic."""
from ...kernels import ir
from ...kernels.numbering import ValueNumbering

INDEX_OPS = {"add": "+", "sub": "-", "mul": "*"}  # written inline when on index values only


def statement_exprs(stmts):
    """The expressions directly under a statement list, Check statements included."""
    for s in stmts:
        if isinstance(s, ir.Check):
            yield from (s.ok, s.value)
        elif isinstance(s, ir.Loop):
            yield s.extent
            yield from statement_exprs(s.body)
        else:
            yield from ir.statement_exprs([s])


class Values(ValueNumbering):
    """Value numbers of a kernel's expressions, and which are index arithmetic (+, -, * of
    int64 loop variables, dims and constants: no data, so it cannot overflow)."""

    def __init__(self):
        super().__init__()
        self.index = []  # number -> index arithmetic?

    def first_seen(self, e, n, kids):
        number = self.number
        self.index.append(isinstance(e, (ir.Var, ir.Dim)) or (
            e.dtype == ir.INDEX and isinstance(e, ir.Const)) or (
            isinstance(e, ir.Op) and e.name in INDEX_OPS and e.dtype == ir.INDEX
            and all(self.index[number[id(k)]] for k in kids)))
