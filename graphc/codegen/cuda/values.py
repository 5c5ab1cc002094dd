"""What the CUDA renderer and launcher know about a kernel's expressions: value numbers (equal
expressions share one), the loop variables each depends on, and which are index arithmetic."""
from ...kernels import ir

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


def walk_statements(stmts):
    for s in stmts:
        yield s
        if isinstance(s, ir.Loop):
            yield from walk_statements(s.body)


def operands(e):
    """The expressions e's value is computed from in its own scope (a Reduce's value is
    computed inside its loops)."""
    if isinstance(e, ir.Op):
        return e.args
    if isinstance(e, ir.Load):
        return (e.index,)
    if isinstance(e, ir.Reduce):
        return tuple(extent for _, extent in e.loops)
    return ()


def _fields(e):
    if isinstance(e, ir.Const):
        return (repr(e.value), e.dtype)  # repr: 0.0 and -0.0 are different constants
    if isinstance(e, ir.Var):
        return (e.name,)
    if isinstance(e, ir.Dim):
        return (e.slot,)
    if isinstance(e, (ir.Load)):
        return (e.buffer, e.dtype)
    if isinstance(e, ir.Op):
        return (e.name, e.dtype)
    return (e.op, e.dtype, tuple(v.name for v, _ in e.loops))


class Values:
    """Numbers for the expressions of a kernel, equal expressions sharing one, with the loop
    variables each depends on and whether it is index arithmetic (+, -, * of int64 loop
    variables, dims and constants: no data, so it cannot overflow)."""

    def __init__(self):
        self.number = {}  # id(expr) -> its number
        self.keys = {}  # (kind, fields, operands' numbers) -> number
        self.free = []  # number -> frozenset of loop variable names
        self.index = []  # number -> index arithmetic?
        self.kept = []  # the numbered expressions, so that their ids stay theirs

    def __call__(self, expr):
        number, stack = self.number, [expr]
        while stack:  # iteratively: chains of operations may be deeper than the recursion limit
            e = stack[-1]
            if id(e) in number:
                stack.pop()
                continue
            kids = operands(e) + ((e.value,) if isinstance(e, ir.Reduce) else ())
            waiting = [k for k in kids if id(k) not in number]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            key = (type(e), _fields(e)) + tuple(number[id(k)] for k in kids)
            n = number[id(e)] = self.keys.setdefault(key, len(self.keys))
            self.kept.append(e)
            if n < len(self.free):
                continue
            free = frozenset().union(*(self.free[number[id(k)]] for k in kids))
            if isinstance(e, ir.Var):
                free = frozenset((e.name,))
            elif isinstance(e, ir.Reduce):
                free -= {v.name for v, _ in e.loops}
            self.free.append(free)
            self.index.append(isinstance(e, (ir.Var, ir.Dim)) or (
                e.dtype == ir.INDEX and isinstance(e, ir.Const)) or (
                isinstance(e, ir.Op) and e.name in INDEX_OPS and e.dtype == ir.INDEX
                and all(self.index[number[id(k)]] for k in kids)))
        return number[id(expr)]
