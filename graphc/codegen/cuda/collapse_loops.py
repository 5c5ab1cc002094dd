"""One parallel loop over a whole loop nest, for kernels whose threads would take only the
outermost loop's iterations (launch kind "loop"): a pool, or its gradient, over a batch of 64
images is 64 threads on the GPU, each doing an image's outputs one after another. With the
perfect nest under the parallel loop made one loop over the product of its extents, the
threads take single outputs, and neighbouring threads read neighbouring channels. The CPU
keeps its kernels: it threads the outer loop and vectorizes the inner ones.

The collapsed loop's variable binds the old ones to the digits of its position (ir.unflatten,
legalized); a store at the row-major position of the collapsed variables stores at the new
variable's.
Loops are collapsed only where their iterations are independent, so that threads may take
them in any order: no Gemm and no accumulating store in the kernel, no load of a buffer it
stores to, the stores to a buffer all at one index, and each index the row-major position of
loop variables (in some order of theirs) that include every collapsed one, so that distinct
iterations store to distinct elements. Nor does a collapse add work: every reduction must
depend on every collapsed variable (one that does not was computed once for all their
iterations). A kernel keeps its launch kind: where the collapsed nest would go to teams of
threads (a reduction that becomes long per iteration), fewer loops are collapsed.
"""
import dataclasses
import math

from ...kernels import ir
from ...kernels.access import expressions
from ...kernels.legalize import expression
from .launch import launch


def collapse_loops(kernels):
    """The kernels, with each "loop" kernel's nest of independent loops made one parallel loop."""
    return [_collapsed(k) if launch(k).kind == "loop" else k for k in kernels]


def _collapsed(kernel):
    loops = _nest(kernel)
    for depth in range(_independent(kernel, loops), 1, -1):
        merged = _merge(kernel, loops[:depth])
        if launch(merged).kind == "loop":
            return merged
    return kernel


def _nest(kernel):
    """The parallel loop and the loops each of which is the whole body of the one before, as
    long as their extents are fixed."""
    loops = [kernel.parallel_loop]
    while len(loops[-1].body) == 1 and isinstance(loops[-1].body[0], ir.Loop) \
            and not ir.free_vars(loops[-1].body[0].extent):
        loops.append(loops[-1].body[0])
    return loops


def _independent(kernel, loops):
    """How many of the nest's outer loops may be collapsed (see the module's doc)."""
    statements = list(ir.walk_statements(kernel.body))
    extents = {s.var.name: s.extent for s in statements if isinstance(s, ir.Loop)}
    stores = [s for s in statements if isinstance(s, ir.Store)]
    twice = len(extents) < sum(isinstance(s, ir.Loop) for s in statements)  # a name, 2 loops
    if twice or ir.accumulates(kernel.body) or any(isinstance(s, ir.Gemm) for s in statements):
        return 0
    index = {}
    for s in stores:
        if index.setdefault(s.buffer, s.index) != s.index:
            return 0
    found = list(expressions(kernel))
    if any(isinstance(e, ir.Load) and e.buffer in index for e in found):
        return 0
    spans = [_position(i, extents) for i in index.values()]
    if None in spans:
        return 0
    needed = [set(order) for order in spans] + [
        ir.free_vars(e) for e in found if isinstance(e, ir.Reduce)]
    depth = 0
    while depth < len(loops) and all(loops[depth].var.name in n for n in needed):
        depth += 1
    return depth


def _terms(index):
    """{variable name: stride} of an index that is a sum of loop variables times strides
    free of them, each variable once; else None."""
    terms, todo = {}, [index]
    while todo:
        e = todo.pop()
        if isinstance(e, ir.Op) and e.name == "add":
            todo.extend(e.args)
            continue
        if isinstance(e, ir.Var):
            var, stride = e, ir.const(1)
        elif isinstance(e, ir.Op) and e.name == "mul" and isinstance(e.args[0], ir.Var):
            var, stride = e.args
        else:
            return None
        if var.name in terms or ir.free_vars(stride):
            return None
        terms[var.name] = stride
    return terms


def _position(index, extents):
    """The loop variables, outermost first, of which `index` is the row-major position (as
    ir.linear builds it) given the loops' extents; else None."""
    terms = _terms(index)
    if terms is None:
        return None
    order, step = [], ir.const(1)
    while terms:
        name = next((n for n, stride in terms.items() if stride == step), None)
        if name not in extents:
            return None
        order.append(name)
        step = ir.mul(step, extents[name])
        del terms[name]
    return order[::-1]


def _merge(kernel, loops):
    """The kernel with `loops` (its parallel loop and the nest under it) made one."""
    names = [loop.var.name for loop in loops]
    extents = [loop.extent for loop in loops]
    var = ir.Var(_fresh("_".join(names), kernel))
    fixed = math.prod(e.value for e in extents if isinstance(e, ir.Const))
    total = ir.mul(ir.product(e for e in extents if not isinstance(e, ir.Const)),
                   ir.const(fixed))
    digits = dict(zip(names, map(expression, ir.unflatten(var, extents))))
    all_extents = {s.var.name: s.extent for s in ir.walk_statements(kernel.body)
                   if isinstance(s, ir.Loop)} | {var.name: total}

    def index(e):
        """A store's index: the collapsed variables' run in its order replaced by var's."""
        order = _position(e, all_extents)
        at = order.index(names[0])
        if order[at:at + len(names)] != names:
            return ir.substitute(e, digits)
        order[at:at + len(names)] = [var.name]
        return ir.linear([ir.Var(n) for n in order],
                         ir.contiguous_strides([all_extents[n] for n in order]))

    def statement(s):
        if isinstance(s, ir.Loop):
            return dataclasses.replace(s, extent=ir.substitute(s.extent, digits),
                                       body=tuple(map(statement, s.body)))
        if isinstance(s, ir.Store):
            return dataclasses.replace(s, index=index(s.index),
                                       value=ir.substitute(s.value, digits))
        return dataclasses.replace(s, ok=ir.substitute(s.ok, digits),
                                   value=ir.substitute(s.value, digits))  # a Check

    body = tuple(map(statement, loops[-1].body))
    return dataclasses.replace(kernel, body=(ir.Loop(var, total, body, parallel=True),))


def _fresh(name, kernel):
    """`name`, or it with underscores after it, bound by no loop or reduction of the kernel."""
    taken = {s.var.name for s in ir.walk_statements(kernel.body) if isinstance(s, ir.Loop)}
    taken |= {v.name for e in expressions(kernel) if isinstance(e, ir.Reduce)
              for v, _ in e.loops}
    while name in taken:
        name += "_"
    return name
