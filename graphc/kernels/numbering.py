"""Value numbering of kernel IR expressions: equal expressions share one number, and each
number knows the loop variables its value depends on. The interpreter and the CUDA renderer
use it to compute every value once, in the outermost scope that binds its variables."""
from . import ir


def operands(e):
    """The expressions e's value is computed from in its own scope (a Reduce's value is
    computed inside its loops, so only its extents count)."""
    if isinstance(e, ir.Op):
        return e.args
    if isinstance(e, ir.Load):
        return (e.index,)
    if isinstance(e, ir.Reduce):
        return tuple(extent for _, extent in e.loops)
    return ()


def fields(e):
    """e's fields other than its operands."""
    if isinstance(e, ir.Const):
        return (repr(e.value), e.dtype)  # repr: 0.0 and -0.0 are different constants
    if isinstance(e, ir.Var):
        return (e.name, e.dtype)
    if isinstance(e, ir.Dim):
        return (e.slot, e.dtype)
    if isinstance(e, (ir.Load, ir.Op)):
        return (e.buffer if isinstance(e, ir.Load) else e.name, e.dtype)
    return (e.op, e.dtype, tuple(v.name for v, _ in e.loops))


class ValueNumbering:
    """`numbering(expr)` numbers expr and everything under it; `free[n]` is the frozenset of
    loop variable names number n depends on. Subclasses learn more of each new number by
    overriding `first_seen`."""

    def __init__(self):
        self.number = {}  # id(expr) -> its number
        self.keys = {}  # (kind, fields, operands' numbers) -> number
        self.free = []  # number -> frozenset of loop variable names
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
            key = (type(e), fields(e)) + tuple(number[id(k)] for k in kids)
            n = number[id(e)] = self.keys.setdefault(key, len(self.keys))
            self.kept.append(e)
            if n == len(self.free):
                free = frozenset().union(*(self.free[number[id(k)]] for k in kids))
                if isinstance(e, ir.Var):
                    free = frozenset((e.name,))
                elif isinstance(e, ir.Reduce):
                    free -= {v.name for v, _ in e.loops}
                self.free.append(free)
                self.first_seen(e, n, kids)
        return number[id(expr)]

    def first_seen(self, e, n, kids):
        """Called once per new number, after free[n] is known."""
