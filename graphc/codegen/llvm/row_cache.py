"""Row caches: values a reduction computes for every position of a row, kept for the loop after
it that needs them again.

A row kernel (softmax: out[i, j] = exp(x[i, j] - max) / sum_r exp(x[i, r] - max)) computes its
reductions in front of the loop over j that stores the row, and that loop would compute the
reduction's costly terms (exp(x[i, j] - max)) a second time. Where a reduction in front of a
loop runs one loop of the same extent, and a term of its value that calls a polynomial math
function (mathlib.POLYNOMIALS: tens of instructions per vector) is, with the reduction's
variable read as the loop's, a value the loop computes, the reduction also stores the term
into a stack array at its position, and the loop loads it from there instead. The array holds
one row (at most MAX_BYTES) and belongs to the thread that runs the kernel; row lengths known
only at run time keep the recomputation.

Generic over the kernel IR: softmax, its gradient, or any user expression of a row reduction
and an elementwise consumer that share a costly term.
"""
from typing import NamedTuple

from ...kernels import ir
from .mathlib import POLYNOMIALS

# a row of 16,384 float32 values at most: with the row it came from, it stays in L2
MAX_BYTES = 64 << 10
BYTES = {"bfloat16": 4, "float32": 4, "float64": 8}  # the dtypes cached, by register size


class Cached(NamedTuple):
    reduce: ir.Reduce  # the reduction that stores the term
    term: ir.Expr  # the term inside the reduction's value (its variable the reduction's)
    again: ir.Expr  # the same term in the loop (its variable the loop's)
    dtype: str


def row_caches(roots, var, extent, hoisted):
    """The terms to cache for the loop `for var in range(extent)` whose body's expressions are
    `roots`; `hoisted(reduce)` tells whether a reduction is to be computed in front of the loop
    (not one computed already, whose terms were not stored, nor one inside another reduction
    that runs once per value of its variable)."""
    if not isinstance(extent, ir.Const):
        return []
    exprs = list(ir.distinct(roots))
    in_loop = set(exprs)
    found = []
    for r in exprs:
        if (isinstance(r, ir.Reduce) and len(r.loops) == 1 and r.loops[0][1] == extent
                and var.name not in ir.free_vars(r) and hoisted(r)):
            found += _terms(r, var, in_loop)
    return [c for c in found if extent.value * BYTES[c.dtype] <= MAX_BYTES]


def _terms(r, var, in_loop):
    """The outermost costly terms of r's value that the loop computes too."""
    inner = r.loops[0][0].name
    renamed = _renamed(r.value, inner, var)
    costly = _costly(r.value)
    out, seen, todo = [], set(), [r.value]
    while todo:
        e = todo.pop()
        if id(e) in seen or isinstance(e, ir.Reduce) or inner not in ir.free_vars(e):
            continue
        seen.add(id(e))
        again = renamed[id(e)]
        if e.dtype in BYTES and id(e) in costly and again in in_loop:
            out.append(Cached(r, e, again, e.dtype))
        else:
            todo.extend(ir.children(e))
    return out


def _renamed(value, name, var):
    """{id(e): e with variable `name` read as var} for the expressions e under value (their
    copies under the renamed value lie at the same places)."""
    out, todo = {}, [(value, ir.substitute(value, {name: var}))]
    while todo:
        e, again = todo.pop()
        if id(e) not in out:
            out[id(e)] = again
            todo.extend(zip(ir.children(e), ir.children(again)))
    return out


def _costly(value):
    """The ids of the expressions under value (reductions' values aside) that call a
    polynomial math function."""
    out, done, todo = set(), set(), [(value, False)]
    while todo:
        e, ready = todo.pop()
        if isinstance(e, ir.Reduce) or (id(e) in done and not ready):
            continue
        if not ready:
            done.add(id(e))
            todo.append((e, True))
            todo.extend((c, False) for c in ir.children(e))
        elif (isinstance(e, ir.Op) and e.name in POLYNOMIALS
              or any(id(c) in out for c in ir.children(e))):
            out.add(id(e))
    return out
