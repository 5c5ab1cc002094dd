"""Kernel IR -> CUDA C: one `extern "C" __global__` function per kernel,

    void kernel(void* const* buffers, const long long* dims, long long* error,
                long long lo, long long hi)

reading the program's buffers and run-time dims by slot from two device arrays, and reporting a
bad gather index as error[0] = what + 1, error[1] = the index (the first report wins; the thread
that finds it stops). Threads share the iterations [lo, hi) of the kernel's launch range (see
launch.py) in a grid-stride loop: the parallel outermost loop's iterations, or a matrix
product's elements; a kernel with neither runs on one thread. Inner loops and reductions run
sequentially in each thread; float32 (and narrower) sums accumulate in double, as on the CPU.

Every value is a named C constant computed once per scope (equal expressions are one value),
at its first use; a Reduce that does not depend on an inner loop is computed in front of it,
so a softmax row kernel computes its row's max and sum once per row, as the LLVM generator
does. Index arithmetic on loop variables, dims and constants is written inline.
"""
import itertools
import re

from ...kernels import ir
from .gemm import render_gemm
from .launch import launch
from .scalar import PRELUDE, render_op
from .types import FLOATS, REGISTER, STORAGE, literal
from .values import INDEX_OPS, Values, operands, statement_exprs, walk_statements

PARAMS = ("void* const* __restrict__ buffers, const long long* __restrict__ dims,\n"
          "        long long* __restrict__ error, long long lo, long long hi")
RESERVED = re.compile(r"(buf|dim)\d+|first|stride|lo|hi|buffers|dims|error")


def render_program(segments, tag=None):
    """One translation unit: the prelude, then every kernel of every segment (lists of
    ir.Kernel), in order; symbols are the kernels' names, suffixed with `_{tag}` if given."""
    kernels = [render_kernel(k, symbol(k, tag)) for segment in segments for k in segment]
    return "\n\n".join([PRELUDE.rstrip()] + kernels) + "\n"


def symbol(kernel, tag=None):
    return f"{kernel.name}_{tag}" if tag else kernel.name


def render_kernel(kernel, name=None):
    """The CUDA C function of one kernel (without the prelude it calls)."""
    return KernelRenderer(kernel, name or kernel.name).render()


class KernelRenderer:
    def __init__(self, kernel, name):
        self.kernel, self.name = kernel, name
        self.launch = launch(kernel)
        self.values = Values()
        self.lines, self.depth = [], 1
        self.scopes = [{}]  # value number -> its C expression, one dict per open block
        self.bound = [set()]  # loop variables bound by each open block
        self.buffers = {}  # slot -> (dtype, written?)
        self.dims = set()
        self.counter = itertools.count()
        self.grid_stride_used = False

    def render(self):
        body = self.kernel.body
        self.check_names()
        if self.launch.kind == "loop":
            self.loop(body[0], distributed=True)
        elif self.launch.kind == "gemm":
            for s in body:
                self.stmt(s, distributed=True)
        else:
            self.line("if (blockIdx.x != 0 || threadIdx.x != 0) return;  // one thread runs it")
            for s in body:
                self.stmt(s)
        nodes = ", ".join(n.replace("\n", " ") for n in self.kernel.nodes) or "no graph nodes"
        out = [f"// {self.kernel.name}: {nodes}"]
        if self.kernel.comment:
            out += [f"// {line}" for line in self.kernel.comment.splitlines()]
        out += [f'extern "C" __global__ void {self.name}(\n        {PARAMS})', "{"]
        out += ["    " + line for line in self.header()] + self.lines + ["}"]
        return "\n".join(out)

    def header(self):
        out = []
        for slot in sorted(self.buffers):
            dtype, written = self.buffers[slot]
            t = STORAGE[dtype]
            t = t if written else f"const {t}"
            out.append(f"{t}* __restrict__ buf{slot} = ({t}*)buffers[{slot}];")
        out += [f"const long long dim{slot} = dims[{slot}];" for slot in sorted(self.dims)]
        if self.grid_stride_used:
            out += ["const long long first = lo + (long long)blockIdx.x * blockDim.x"
                    " + threadIdx.x;", "const long long stride = (long long)gridDim.x * blockDim.x;"]
        return out

    def check_names(self):
        """Loop variables keep their IR names: none may be one the renderer gives."""
        names = {s.var.name for s in walk_statements(self.kernel.body) if isinstance(s, ir.Loop)}
        for e in statement_exprs(self.kernel.body):
            self.values(e)
        names |= {e.name for e in self.values.kept if isinstance(e, ir.Var)}
        self.var_names = names
        clash = {n for n in names if RESERVED.fullmatch(n)}
        if clash:
            raise ir.Unsupported(f"loop variables named like generated names: {sorted(clash)}")

    # -- output --------------------------------------------------------------------------------
    def line(self, text):
        self.lines.append("    " * self.depth + text)

    def fresh(self, hint):
        name = f"{hint}{next(self.counter)}"
        return self.fresh(hint) if name in self.var_names else name

    def open_block(self, header, loop_vars=()):
        self.line(header + " {")
        self.depth += 1
        self.scopes.append({})
        self.bound.append(set(loop_vars))

    def close_block(self):
        self.depth -= 1
        self.scopes.pop()
        self.bound.pop()
        self.line("}")

    def open_loop(self, var, extent):
        self.open_block(f"for (long long {var} = 0; {var} < {extent}; ++{var})", (var,))

    def open_grid_stride(self, var):
        """A loop in which the threads share the iterations [lo, hi)."""
        self.grid_stride_used = True
        self.open_block(f"for (long long {var} = first; {var} < hi; {var} += stride)", (var,))

    def pointer(self, slot, dtype, written=False):
        known, was_written = self.buffers.get(slot, (dtype, False))
        if known != dtype:
            raise ir.Unsupported(f"buffer {slot} used as {known} and as {dtype}")
        self.buffers[slot] = (dtype, written or was_written)
        return f"buf{slot}"

    # -- statements ----------------------------------------------------------------------------
    def stmt(self, s, distributed=False):
        """`distributed`: no grid-stride loop is open yet, so a Gemm shares its elements."""
        if isinstance(s, ir.Loop):
            self.loop(s, distributed=False)
        elif isinstance(s, ir.Store):
            value, index = self.value(s.value), self.value(s.index)
            buffer = self.pointer(s.buffer, s.value.dtype, written=True)
            self.line(f"{buffer}[{index}] = {to_storage(value, s.value.dtype)};")
        elif isinstance(s, ir.Gemm):
            render_gemm(self, s, distributed)
        elif isinstance(s, ir.Check):
            ok, value = self.value(s.ok), self.value(s.value)
            self.line(f"if (!({ok})) {{ gc_report(error, {s.what}, {value}); return; }}")
        else:
            raise ir.Unsupported(f"statement {type(s).__name__}")

    def loop(self, s, distributed):
        """A Loop statement: the grid-stride loop over [lo, hi) when `distributed`."""
        extent = None if distributed else self.value(s.extent)
        self.hoist(list(statement_exprs(s.body)), {s.var.name})
        if distributed:
            self.open_grid_stride(s.var.name)
        else:
            self.open_loop(s.var.name, extent)
        for x in s.body:
            self.stmt(x)
        self.close_block()

    def hoist(self, roots, inner):
        """Compute now the Reduces under roots that depend on none of the `inner` loops."""
        bound = set().union(*self.bound)
        seen, todo = set(), list(roots)
        while todo:
            e = todo.pop()
            n = self.values(e)
            if n in seen:
                continue
            seen.add(n)
            free = self.values.free[n]
            if isinstance(e, ir.Reduce) and not free & inner and free <= bound:
                self.value(e)
                continue
            todo.extend(ir.children(e))

    # -- expressions ---------------------------------------------------------------------------
    def lookup(self, e):
        n = self.values(e)
        for scope in reversed(self.scopes):
            if n in scope:
                return scope[n]
        return None

    def value(self, e):
        """The C expression of e's value, emitting what computes it first."""
        stack = [e]
        while stack:
            x = stack[-1]
            if self.lookup(x) is not None:
                stack.pop()
                continue
            if not isinstance(x, ir.Reduce):  # a Reduce computes its operands itself
                waiting = [k for k in operands(x) if self.lookup(k) is None]
                if waiting:
                    stack.extend(waiting)
                    continue
            stack.pop()
            self.scopes[-1][self.values(x)] = self.compute(x)
        return self.lookup(e)

    def compute(self, e):
        if isinstance(e, ir.Const):
            return literal(e.value, e.dtype)
        if isinstance(e, ir.Var):
            if e.name not in set().union(*self.bound):
                raise ir.Unsupported(f"variable {e.name} used outside its loop")
            return e.name
        if isinstance(e, ir.Dim):
            self.dims.add(e.slot)
            return f"dim{e.slot}"
        if isinstance(e, ir.Load):
            buffer = self.pointer(e.buffer, e.dtype)
            return self.define("load", e.dtype,
                               from_storage(f"{buffer}[{self.lookup(e.index)}]", e.dtype))
        if isinstance(e, ir.Op):
            args = [self.lookup(a) for a in e.args]
            if e.name == "check_index":
                i, n, what = args
                self.line(f"if ((unsigned long long){i} >= (unsigned long long){n}) "
                          f"{{ gc_report(error, {what}, {i}); return; }}")
                return i
            if self.values.index[self.values(e)]:
                return f"({args[0]} {INDEX_OPS[e.name]} {args[1]})"
            return self.define(e.name, e.dtype, render_op(e, args))
        if isinstance(e, ir.Reduce):
            return self.reduce(e)
        raise ir.Unsupported(f"expression {type(e).__name__}")

    def define(self, hint, dtype, text):
        name = self.fresh(hint)
        self.line(f"const {REGISTER[dtype]} {name} = {text};")
        return name

    # -- reductions ----------------------------------------------------------------------------
    def reduce(self, r):
        """The reduction as loops updating accumulators (for argmax/argmin: the best value,
        its position, and a running position over the loops, flattened in order)."""
        extents = [self.value(x) for _, x in r.loops]
        dtype = r.value.dtype
        name = self.fresh(r.op)
        narrow = narrowing(r.op, dtype)
        acc = f"{name}_acc" if narrow else name
        if r.op in ("argmax", "argmin"):
            best, pos = f"{name}_best", f"{name}_pos"
            high = r.op == "argmax"
            self.line(f"{REGISTER[dtype]} {best} = {extreme(dtype, not high)};")
            self.line(f"long long {name} = 0, {pos} = 0;")
        else:
            self.line(f"{accumulator(r.op, dtype)} {acc} = {identity(r.op, dtype)};")
        self.hoist([r.value], {v.name for v, _ in r.loops})
        for (var, _), extent in zip(r.loops, extents):
            self.open_loop(var.name, extent)
        v = self.value(r.value)
        if r.op in ("argmax", "argmin"):
            better = f"{v} {'>' if high else '<'} {best}"
            if dtype in FLOATS:  # NaN is the extreme, and the first NaN stays
                better = f"({better} || {v} != {v}) && {best} == {best}"
            self.line(f"if ({better}) {{ {best} = {v}; {name} = {pos}; }}")
            self.line(f"++{pos};")
        else:
            self.line(combine(r.op, dtype, acc, v))
        for _ in r.loops:
            self.close_block()
        if narrow:
            self.line(f"const {REGISTER[dtype]} {name} = {narrow.format(acc)};")
        return name


def accumulator(op, dtype):
    """float32 and narrower sums and products accumulate in double."""
    return "double" if op in ("sum", "prod") and dtype in FLOATS else REGISTER[dtype]


def narrowing(op, dtype):
    """How an accumulator becomes the result: a format of it, or None when it is the result."""
    if accumulator(op, dtype) == REGISTER[dtype]:
        return None
    return "__half2float(__double2half({}))" if dtype == "float16" else "(float){}"


def extreme(dtype, high):
    """The dtype's highest (or lowest) value: the max/min reductions' identities."""
    if dtype == "bool":
        return literal(high, dtype)
    if dtype in FLOATS:
        return literal(float("inf") if high else float("-inf"), dtype)
    bits = 31 if dtype == "int32" else 63
    return literal((1 << bits) - 1 if high else -(1 << bits), dtype)


def identity(op, dtype):
    if op in ("max", "min"):
        return extreme(dtype, op == "min")
    one = op == "prod"
    if dtype == "bool":
        return literal(one, dtype)
    return literal(float(one) if dtype in FLOATS else int(one),
                   "float64" if dtype in FLOATS else dtype)


COMBINE = {  # (op, kind) -> the update of accumulator {0} by value {1}
    ("sum", "float"): "{0} += {1};", ("prod", "float"): "{0} *= {1};",
    ("sum", "int"): "{0} = gc_add({0}, {1});", ("prod", "int"): "{0} = gc_mul({0}, {1});",
    ("sum", "bool"): "{0} = {0} || {1};", ("prod", "bool"): "{0} = {0} && {1};",
}


def combine(op, dtype, acc, v):
    if op in ("max", "min"):
        return f"{acc} = gc_{op}imum({acc}, {v});"
    kind = "float" if dtype in FLOATS else "bool" if dtype == "bool" else "int"
    return COMBINE[op, kind].format(acc, v)


def to_storage(value, dtype):
    if dtype == "bool":
        return f"(unsigned char){value}"
    return f"__float2half_rn({value})" if dtype == "float16" else value


def from_storage(element, dtype):
    if dtype == "bool":
        return f"{element} != 0"
    return f"__half2float({element})" if dtype == "float16" else element
