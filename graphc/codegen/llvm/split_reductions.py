"""Full reductions on all threads: a Reduce that depends on no loop (a sum of a whole tensor to
a scalar) is computed once, by one thread. This pass gives each such large reduction a kernel of
its own in front: a parallel loop over up to CHUNKS chunks of its outermost loop, each storing
its partial result into scratch, and leaves in its place a Reduce over those partials. float32
sums and products add their partials in their accumulator's dtype (float64: kernels/ir.py's
REDUCTIONS), so they stay at least as accurate as numpy's pairwise ones.

Chunks take K = ceil(n / CHUNKS) positions of the outermost loop each (at least CHUNK_MIN
elements), n // K of them in parallel; the n % K positions left are reduced on one thread with
the partials, so that no chunk needs a mask and every load stays in order and in bounds.
Integer reductions and float max/min are exact in any order; argmax/argmin, bool and the 16-bit
floats keep their one-thread loop, as do reductions known to be small.

A kernel pass of the CPU target (graphc/targets/cpu.py): on the GPU, the CUDA code generator
shares such a reduction among a grid's blocks itself (launch kind "grid").
"""
import dataclasses

from ...kernels import ir
from ...kernels.legalize import expression

CHUNKS = 64  # partial results at most: a few per thread
CHUNK_MIN = 1 << 15  # positions per chunk at least, so that a chunk outweighs its dispatch
DTYPES = ("float32", "float64", "int32", "int64")


def split_reductions(kernels, slots):
    """The kernels with their large loop-free reductions split (slots gives the scratch)."""
    out = []
    for kernel in kernels:
        splitter = _Splitter(kernel, slots)
        if not splitter.worth(kernel.body):
            out.append(kernel)
            continue
        body = splitter.statements(kernel.body)
        out += splitter.kernels + [dataclasses.replace(kernel, body=body)]
    return out


def _splittable(e):
    return (isinstance(e, ir.Reduce) and ir.REDUCTIONS[e.op].combine is not None
            and e.value.dtype in DTYPES
            and not ir.free_vars(e) and not _small(ir.product(x for _, x in e.loops)))


def _small(size):
    return isinstance(size, ir.Const) and size.value < 2 * CHUNK_MIN


class _Splitter:
    def __init__(self, kernel, slots):
        self.kernel, self.slots = kernel, slots
        self.kernels = []
        self.splits = 0  # numbers the splits: names of their kernels and variables
        self.memo = {}
        self.made = set()  # the Reduces over partials this pass made

    def worth(self, body):
        seen, todo = set(), list(ir.statement_exprs(body))
        while todo:
            e = todo.pop()
            if id(e) not in seen:
                seen.add(id(e))
                if _splittable(e):
                    return True
                todo.extend(ir.children(e))
        return False

    def statements(self, body):
        out = []
        for s in body:
            if isinstance(s, ir.Loop):
                out.append(dataclasses.replace(s, extent=self.expr(s.extent),
                                               body=self.statements(s.body)))
            elif isinstance(s, ir.Store):
                out.append(dataclasses.replace(s, index=self.expr(s.index),
                                               value=self.expr(s.value)))
            else:
                out.append(s)  # a Gemm's sizes and strides hold no reductions
        return tuple(out)

    def expr(self, e, bound=None):
        """e with its splittable reductions replaced (and loop variable `bound` = (name,
        expression) substituted)."""
        key = (id(e), bound and (bound[0], id(bound[1])))
        if key in self.memo:
            return self.memo[key][1]
        if isinstance(e, ir.Var) and bound and e.name == bound[0]:
            out = bound[1]
        elif isinstance(e, ir.Load):
            out = dataclasses.replace(e, index=self.expr(e.index, bound))
        elif isinstance(e, ir.Op):
            out = dataclasses.replace(e, args=tuple(self.expr(a, bound) for a in e.args))
        elif isinstance(e, ir.Reduce):
            loops = tuple((v, self.expr(x, bound)) for v, x in e.loops)
            out = dataclasses.replace(e, loops=loops, value=self.expr(e.value, bound))
            if id(e) not in self.made and _splittable(out):
                out = self.split(out)
        else:
            out = e
        self.memo[key] = (e, out, bound)  # kept, so that their ids stay their own
        return out

    def split(self, r):
        (first, n), rest = r.loops[0], r.loops[1:]
        total = ir.product(x for _, x in r.loops)
        wanted = ir.op("minimum", ir.op("minimum", ir.const(CHUNKS), n),
                       _ceil_div(total, ir.const(CHUNK_MIN)))
        size = ir.op("maximum", _ceil_div(n, wanted), ir.const(1))
        chunks = expression(ir.floordiv(n, size))
        wide = ir.accumulator(r.op, r.dtype)
        # numbered before its value is split, which may split reductions nested in it first
        number, self.splits = self.splits, self.splits + 1
        chunk, step, part, tail = (ir.Var(f"{first.name}_{hint}{number}")
                                   for hint in ("chunk", "step", "part", "tail"))

        def reduce_from(start, var, extent):
            value = self.expr(r.value, (first.name, ir.add(start, var)))
            value = value if wide == r.dtype else ir.Op("cast", (value,), wide)
            out = ir.Reduce(r.op, ((var, extent),) + rest, value, wide)
            self.made.add(id(out))
            return out
        slot = self.slots.scratch(wide, (CHUNKS,))
        store = ir.Store(slot, chunk, reduce_from(ir.mul(chunk, size), step, size))
        self.kernels.append(ir.Kernel(f"{self.kernel.name}_part{number}",
                                      (ir.Loop(chunk, chunks, (store,), parallel=True),), {},
                                      self.kernel.nodes))
        done = ir.mul(chunks, size)
        partials = ir.Reduce(r.op, ((part, chunks),), ir.Load(slot, part, wide), wide)
        self.made.add(id(partials))
        left = reduce_from(done, tail, ir.sub(n, done))
        out = ir.Op(ir.REDUCTIONS[r.op].combine, (partials, left), wide)
        return out if wide == r.dtype else ir.Op("cast", (out,), r.dtype)


def _ceil_div(a, b):
    return expression(ir.floordiv(ir.add(a, ir.sub(b, ir.const(1))), b))
