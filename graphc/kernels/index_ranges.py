"""Index arithmetic simplified by the ranges of the loop variables, before legalization.

Lowering composes index maps by substitution, so a reshape of a transpose of a reshape (a
channel shuffle after a grouped product) reads its input at floordivs and mods of flat
positions, which legalize.py expands into divisions and selects that LLVM keeps in the inner
loop: ShuffleNet's first such kernel ran 20 ns per element. Where the divisor d is a positive
constant and the dividend a = d*q + r (q: the terms whose coefficients d divides, and the
constant's multiple of d), for every integer
    floordiv(a, d) = q + floordiv(r, d),   mod(a, d) = mod(r, d),
and where the ranges of r's loop variables (a loop's [0, extent), a Reduce's too) put r in
[0, d), floordiv(r, d) = 0 and mod(r, d) = r; floordiv(floordiv(x, b), d) = floordiv(x, b*d)
and mod(mod(x, b), d) = mod(x, d) where d divides b. Only index arithmetic is rewritten: ops of
variables, run-time dims and constants, never of loaded values (whose products may wrap).
"""
from . import ir
from .legalize import Rewrite

_LINEAR = {"add": 1, "sub": -1}


def simplify_indices(kernels):
    """The kernels with their floordivs and mods by positive constants simplified."""
    return [_Simplifier(k).kernel(k) for k in kernels]


class _Simplifier(Rewrite):
    def __init__(self, kernel):
        super().__init__(self._rule)
        self.ranges = _variable_ranges(kernel.body)
        self.bounds_memo = {}  # id(expression) -> (expression, (lo, hi)), None: unbounded
        self.pure_memo = {}  # id(expression) -> (expression, made of index arithmetic only)
        self.affine_memo = {}  # id(expression) -> (expression, affine())

    def _rule(self, e, args):
        d = _positive_const(args[1]) if len(args) == 2 else None
        if e.name not in ("floordiv", "mod") or d is None or e.dtype != ir.INDEX:
            return None
        a = args[0]
        if not self.pure(a):
            return None
        nested = isinstance(a, ir.Op) and a.name == e.name and len(a.args) == 2
        inner = _positive_const(a.args[1]) if nested else None
        if inner is not None and (e.name == "floordiv" or inner % d == 0):
            merged = (a.args[0], ir.const(inner * d if e.name == "floordiv" else d))
            return self._rule(e, merged) or ir.Op(e.name, merged, ir.INDEX)
        terms, c = self.affine(a)
        q_terms = {t: k // d for t, k in terms.items() if k % d == 0}
        r_terms = {t: k for t, k in terms.items() if k % d != 0}
        qc, rc = divmod(c, d)
        r = _rebuild(r_terms, rc)
        lo, hi = self.bounds(r)
        within = lo is not None and hi is not None and 0 <= lo and hi < d
        if e.name == "mod":
            if within:
                return r
            return None if r == a else ir.Op("mod", (r, args[1]), ir.INDEX)
        q = _rebuild(q_terms, qc)
        if within:
            return q
        if not q_terms and qc == 0:
            return None
        return ir.add(q, ir.Op("floordiv", (r, args[1]), ir.INDEX))

    def affine(self, e):
        """({term: coefficient}, constant) with e = sum(coefficient * term) + constant, its
        terms the operands of e's adds, subs and products by constants (each subexpression's
        form computed once: shared ones would be walked once per path)."""
        def kids(x):
            return [y for y, _ in _linear_parts(x) or ()]
        for sub in ir.bottom_up(e, lambda x: id(x) in self.affine_memo, kids):
            self.affine_memo[id(sub)] = (sub, self._own_affine(sub))
        return self.affine_memo[id(e)][1]

    def _own_affine(self, e):
        if _int_const(e) is not None:
            return {}, _int_const(e)
        parts = _linear_parts(e)
        if parts is None:
            return {e: 1}, 0
        terms, const = {}, 0
        for x, k in parts:
            x_terms, x_const = self.affine_memo[id(x)][1]
            const += k * x_const
            for t, c in x_terms.items():
                terms[t] = terms.get(t, 0) + k * c
        return {t: c for t, c in terms.items() if c}, const

    def pure(self, e):
        """Whether e is index arithmetic: ops of variables, dims and constants alone."""
        for sub in ir.bottom_up(e, lambda x: id(x) in self.pure_memo):
            kids = ir.children(sub)
            ok = (isinstance(sub, (ir.Var, ir.Dim, ir.Const)) or isinstance(sub, ir.Op)
                  and all(self.pure_memo[id(k)][1] for k in kids))
            self.pure_memo[id(sub)] = (sub, ok)
        return self.pure_memo[id(e)][1]

    def bounds(self, e):
        """(lo, hi) of an index expression's values; None where unbounded or unknown."""
        for sub in ir.bottom_up(e, lambda x: id(x) in self.bounds_memo):
            self.bounds_memo[id(sub)] = (sub, self._own_bounds(sub))
        return self.bounds_memo[id(e)][1]

    def _own_bounds(self, e):
        if isinstance(e, ir.Const):
            v = _int_const(e)
            return v, v
        if isinstance(e, ir.Var):
            return self.ranges.get(e.name, (None, None))
        if isinstance(e, ir.Dim):
            return 0, None
        if not isinstance(e, ir.Op) or len(e.args) != 2:
            return None, None
        (alo, ahi), (blo, bhi) = (self.bounds_memo[id(x)][1] for x in e.args)
        if e.name in _LINEAR:
            sign = _LINEAR[e.name]
            blo, bhi = (blo, bhi) if sign > 0 else (_neg(bhi), _neg(blo))
            return _plus(alo, blo), _plus(ahi, bhi)
        if e.name in ("minimum", "maximum"):
            pick = min if e.name == "minimum" else max
            return _pick(pick, alo, blo, e.name == "maximum"), _pick(pick, ahi, bhi,
                                                                   e.name == "minimum")
        d = _positive_const(e.args[1])
        if e.name == "mul" and (blo is None or blo != bhi):  # a constant factor on the left
            (alo, ahi), (blo, bhi) = (blo, bhi), (alo, ahi)
        if e.name == "mul" and blo is not None and blo == bhi:
            ends = (_times(alo, blo), _times(ahi, blo))
            return ends if blo >= 0 else ends[::-1]
        if e.name == "floordiv" and d is not None:
            return (None if alo is None else alo // d), (None if ahi is None else ahi // d)
        if e.name == "mod" and d is not None:
            if alo is not None and ahi is not None and 0 <= alo and ahi < d:
                return alo, ahi
            return 0, d - 1
        return None, None


def _variable_ranges(stmts):
    """name -> (0, extent - 1) of the loop and Reduce variables of a kernel (the hull where a
    name is bound twice; an unknown upper end where an extent is not constant)."""
    found = {}

    def bind(var, extent):
        hi = extent.value - 1 if isinstance(extent, ir.Const) else None
        if var.name in found:
            old = found[var.name][1]
            hi = None if old is None or hi is None else max(old, hi)
        found[var.name] = (0, hi)
    for s in ir.walk_statements(stmts):
        if isinstance(s, ir.Loop):
            bind(s.var, s.extent)
    for e in ir.distinct(ir.statement_exprs(stmts)):
        if isinstance(e, ir.Reduce):
            for var, extent in e.loops:
                bind(var, extent)
    return found


def _linear_parts(e):
    """[(operand, coefficient)] of an add, a sub or a product by a constant; None for others."""
    if isinstance(e, ir.Op) and e.name in _LINEAR:
        return [(e.args[0], 1), (e.args[1], _LINEAR[e.name])]
    if isinstance(e, ir.Op) and e.name == "mul":
        for x, k in ((e.args[0], e.args[1]), (e.args[1], e.args[0])):
            if _int_const(k) is not None:
                return [(x, _int_const(k))]
    return None


def _rebuild(terms, const):
    out = ir.const(0)
    for t, k in terms.items():
        out = ir.add(out, ir.mul(t, ir.const(k)))
    return ir.add(out, ir.const(const))


def _int_const(e):
    return int(e.value) if isinstance(e, ir.Const) and e.dtype == ir.INDEX else None


def _positive_const(e):
    v = _int_const(e)
    return v if v is not None and v > 0 else None


def _neg(x):
    return None if x is None else -x


def _plus(a, b):
    return None if a is None or b is None else a + b


def _times(a, k):
    return None if a is None else a * k


def _pick(pick, a, b, either):
    """pick(a, b) of two ends where None is unbounded: for the lower end of a maximum (or the
    upper end of a minimum) one known end bounds it (`either`), else both must be known."""
    if a is None or b is None:
        return (b if a is None else a) if either else None
    return pick(a, b)
