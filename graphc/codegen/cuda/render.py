"""Kernel IR -> CUDA C: one `extern "C" __global__` function per kernel,

    void kernel(void* const* buffers, const long long* dims, long long* error,
                long long lo, long long hi)

reading the program's buffers and run-time dims by slot from two device arrays, and reporting a
bad gather index as error[0] = what + 1, error[1] = the index (the first report wins; the
threads that find it stop). The kernel's launch (launch.py) says who takes the iterations
[lo, hi) of its range:
- threads, in a grid-stride loop: the positions of an elementwise kernel's whole loop nest,
  several at a time where the buffers are aligned (elementwise.py); else the parallel loop's
  iterations or a matrix product's elements, inner loops and reductions running sequentially
  in each thread;
- teams: blocks ("rows", "block") or warps ("warp_rows", for short rows): the threads of a
  team share each iteration's reductions (each takes every team-size-th position, then the
  team combines their results: launch.TEAMS) and its inner loops; stores outside those loops
  are the team's first thread's. Such code must run alike in all the team's threads where it
  meets a barrier or shuffle, so index checks are made there, in front of the loops, under the
  condition that the loops run at all;
- one thread, for a kernel with neither a parallel loop nor a long reduction.
float32 (and narrower) sums accumulate in double, as on the CPU.

Every value is a named C constant computed once per scope (equal expressions are one value),
at its first use; a Reduce that does not depend on an inner loop is computed in front of it,
so a softmax row kernel computes its row's max and sum once per row, as the LLVM generator
does. Index arithmetic on loop variables, dims and constants is written inline.
"""
import itertools
import re

from ...kernels import ir
from ...kernels.numbering import operands
from .elementwise import PRELUDE as VECTORS
from .elementwise import render_flat
from .gemm import PRELUDE as TENSOR_CORES
from .gemm import render_gemm
from .launch import TEAMS, grid_reductions, launch, row_reductions
from .reductions import (PRELUDE as REDUCTIONS, accumulate, accumulator, block_combine,
                         combine, narrowing, start)
from .rows import cached_rows
from .scalar import PRELUDE as SCALARS
from .scalar import render_op
from .types import FLOATS, REGISTER, STORAGE, from_storage, literal, to_storage
from .values import INDEX_OPS, Values, statement_exprs

PARAMS = ("void* const* __restrict__ buffers, const long long* __restrict__ dims,\n"
          "        long long* __restrict__ error, long long lo, long long hi")
PRELUDE = SCALARS + "\n" + REDUCTIONS + "\n" + VECTORS + "\n" + TENSOR_CORES
RESERVED = re.compile(r"(buf|dim)\d+|first|stride|lo|hi|buffers|dims|error|shares")


def render_program(segments, tag=None, tf32=False):
    """One translation unit: the prelude, then every kernel of every segment (lists of
    ir.Kernel), in order; symbols are the kernels' names, suffixed with `_{tag}` if given.
    `tf32`: float32 matrix products may round their inputs to tf32 for the tensor cores."""
    kernels = [render_kernel(k, symbol(k, tag), tf32) for segment in segments for k in segment]
    return "\n\n".join([PRELUDE.rstrip()] + kernels) + "\n"


def symbol(kernel, tag=None):
    return f"{kernel.name}_{tag}" if tag else kernel.name


def render_kernel(kernel, name=None, tf32=False):
    """The CUDA C function of one kernel (without the prelude it calls)."""
    return KernelRenderer(kernel, name or kernel.name, tf32).render()


class KernelRenderer:
    def __init__(self, kernel, name, tf32=False):
        self.kernel, self.name, self.tf32 = kernel, name, tf32
        self.launch = launch(kernel)
        self.values = Values()
        self.lines, self.depth = [], 1
        self.scopes = [{}]  # value number -> its C expression, one dict per open block
        self.bound = [set()]  # loop variables bound by each open block
        self.buffers = {}  # slot -> (dtype, written?)
        self.dims = set()
        self.counter = itertools.count()
        self.grid_stride_used = False
        # in a kernel whose teams share reductions: whether the code being emitted runs the
        # same in every thread of the team (barriers, shuffles and index checks may only go there)
        self.team = TEAMS.get(self.launch.kind)
        self.shared = self.team is not None
        self.uniform = self.shared
        self.check_guard = None  # a condition an index check is emitted under (see hoist)
        self.rows = cached_rows(kernel) if self.launch.kind == "rows" else []
        self.row_names = {}  # value number of a cached row's load -> (copy, loop variable)
        self.grid_partials = []  # (Reduce, name, accumulator, identity, combine) of a grid

    def render(self):
        body = self.kernel.body
        self.check_names()
        kind = self.launch.kind
        extent = self.launch.extent
        # nothing to do (and the index arithmetic of the empty outputs would divide by 0)
        if isinstance(extent, ir.Const) and extent.value == 0 and kind != "grid":
            self.line("// no iterations: the outputs are empty")
        elif kind in ("loop", "rows", "warp_rows", "split_rows"):
            self.loop(body[0], "threads" if kind == "loop" else "teams")
        elif kind == "flat":
            render_flat(self)
        elif kind == "grid":
            self.render_grid()
        elif kind in ("gemm", "warp_dots", "tiles"):
            for s in body:
                self.stmt(s, distributed=True)
        else:
            if kind == "single":
                self.line("if (blockIdx.x != 0 || threadIdx.x != 0) return;  "
                          "// one thread runs it")
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
            out.append(f"{t}* __restrict__ buf{slot} = gc_global(({t}*)buffers[{slot}]);")
        out += [f"const long long dim{slot} = dims[{slot}];" for slot in sorted(self.dims)]
        if self.launch.kind == "split_rows":
            out.append("const unsigned int shares = gc_split_shares(lo, hi);  // blocks a row")
        if self.grid_stride_used:
            out += ["const long long first = lo + (long long)blockIdx.x * blockDim.x"
                    " + threadIdx.x;",
                    "const long long stride = (long long)gridDim.x * blockDim.x;"]
        return out

    def check_names(self):
        """Loop variables keep their IR names: none may be one the renderer gives."""
        names = {s.var.name for s in ir.walk_statements(self.kernel.body) if isinstance(s, ir.Loop)}
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

    def open_shared_loop(self, var, extent, loop_vars=None):
        """A loop in which a team's threads share the iterations [0, extent): code in it is
        no longer uniform."""
        member, size = self.team.member, self.team.size
        self.open_block(f"for (long long {var} = {member}; {var} < {extent}; {var} += {size})",
                        loop_vars or (var,))
        self.uniform = False

    def close_shared_loop(self):
        self.close_block()
        self.uniform = True

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
            self.loop(s, distributed=distributed)
        elif isinstance(s, ir.Store):
            value, index = self.value(s.value), self.value(s.index)
            buffer = self.pointer(s.buffer, s.value.dtype, written=True)
            stored = to_storage(value, s.value.dtype)
            store = (accumulate(f"&{buffer}[{index}]", value, s.value.dtype) if s.accumulate
                     else f"{buffer}[{index}] = {stored};")
            self.line(f"if ({self.team.first}) {store}" if self.uniform else store)
        elif isinstance(s, ir.Gemm):
            render_gemm(self, s, distributed)
        elif isinstance(s, ir.Check):
            ok, value = self.value(s.ok), self.value(s.value)
            self.line(f"if (!({ok})) {{ gc_report(error, {s.what}, {value}); return; }}")
        else:
            raise ir.Unsupported(f"statement {type(s).__name__}")

    def loop(self, s, how="plain", distributed=False):
        """A Loop statement. `how`: "threads" (the grid-stride loop over [lo, hi)), "teams"
        (warps or blocks take the iterations [lo, hi)), else a loop in each thread, or, in
        uniform code of a kernel whose teams share reductions, a loop the team's threads share.
        `distributed` passes on to the body (loops over a batch of matrix products)."""
        var = s.var.name
        roots = list(statement_exprs(s.body))
        shared = how == "plain" and self.uniform
        if how == "threads":
            self.hoist(roots, {var})
            self.open_grid_stride(var)
        elif how == "teams":
            names = [self.fresh("row") for _ in self.rows]
            for row, name in zip(self.rows, names):
                self.line(row.declaration(name))
            self.hoist(roots, {var})
            self.open_block(f"for (long long {var} = lo + {self.team.number}; {var} < hi; "
                            f"{var} += {self.team.count})", (var,))
            self.copy_rows(names)
            if self.launch.kind == "split_rows":
                self.combine_shares()
        elif shared:
            extent = self.value(s.extent)
            self.hoist(roots, {var}, guard=nonempty([s.extent], [extent]))
            self.open_shared_loop(var, extent)
        else:
            extent = self.value(s.extent)
            self.hoist(roots, {var})
            self.open_loop(var, extent)
        for x in s.body:
            self.stmt(x, distributed)
        if shared:
            self.close_shared_loop()
        else:
            self.close_block()

    def copy_rows(self, names):
        """Copy this row's cached rows (rows.py) into shared memory; their loads read them."""
        if not self.rows:
            return
        self.line("__syncthreads();  // the last row's readers are done with the copies")
        for row, name in zip(self.rows, names):
            at, base = self.fresh("at"), self.value(row.base)
            buffer = self.pointer(row.buffer, row.dtype)
            self.line(f"for (int {at} = threadIdx.x; {at} < {row.extent}; {at} += blockDim.x) "
                      f"{name}[{at}] = {from_storage(f'{buffer}[{base} + {at}]', row.dtype)};")
            for load, var in row.loads:
                self.row_names[self.values(load)] = name, var
        self.line("__syncthreads();")

    def hoist(self, roots, inner, guard=None):
        """Compute now the Reduces under roots that depend on none of the `inner` loops, and
        with a guard (the condition for the loops to run at all), their index checks too: in
        front of a loop the team's threads share, a check must run in every thread or none."""
        bound = set().union(*self.bound)
        seen, todo = set(), list(roots)
        while todo:
            e = todo.pop()
            n = self.values(e)
            if n in seen:
                continue
            seen.add(n)
            free = self.values.free[n]
            invariant = not free & inner and free <= bound
            if invariant and isinstance(e, ir.Reduce):
                self.value(e)
                continue
            if invariant and guard and isinstance(e, ir.Op) and e.name == "check_index":
                self.check_guard = guard
                self.value(e)
                self.check_guard = None
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
            # a Reduce computes its operands itself; a load of a cached row needs no index
            if not isinstance(x, ir.Reduce) and self.values(x) not in self.row_names:
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
        if isinstance(e, ir.Load) and self.values(e) in self.row_names:
            name, var = self.row_names[self.values(e)]
            return self.define("load", e.dtype, f"{name}[{var}]")
        if isinstance(e, ir.Load):
            buffer = self.pointer(e.buffer, e.dtype)
            return self.define("load", e.dtype,
                               from_storage(f"{buffer}[{self.lookup(e.index)}]", e.dtype))
        if isinstance(e, ir.Op):
            args = [self.lookup(a) for a in e.args]
            if e.name == "check_index":
                if self.shared and not self.uniform:  # launch.shared_work excludes it
                    raise AssertionError(f"kernel {self.kernel.name}: an index check where "
                                         "the team's threads may disagree")
                i, n, what = args
                bad = f"gc_out_of_range({i}, {n})"
                guard = self.check_guard
                bad = f"{guard} && {bad}" if guard and guard != "true" else bad
                self.line(f"if ({bad}) {{ gc_report(error, {what}, {i}); return; }}")
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
        """The reduction as loops updating accumulators (argmax/argmin: the best value and its
        position over the loops, flattened in order). In uniform code of a kernel whose teams
        share reductions, the team's threads take positions in turn, then combine."""
        extents = [self.value(x) for _, x in r.loops]
        dtype, shared, arg = r.value.dtype, self.uniform, r.op in ("argmax", "argmin")
        name = self.fresh(r.op)
        narrow = narrowing(r.op, dtype)
        acc = f"{name}_best" if arg else f"{name}_acc" if narrow else name
        initial = start(r.op, dtype)
        if arg and shared:
            self.line(f"gc_best<{REGISTER[dtype]}> {acc} = {{{initial}, GC_NO_POSITION}};")
        elif arg:
            self.line(f"{REGISTER[dtype]} {acc} = {initial};")
            self.line(f"long long {name} = 0, {name}_pos = 0;")
        else:
            self.line(f"{accumulator(r.op, dtype)} {acc} = {initial};")
        names = [v.name for v, _ in r.loops]
        if shared:
            total = " * ".join(extents) if extents else "1"
            self.hoist([r.value], set(names),
                       guard=nonempty([x for _, x in r.loops], extents))
            position = names[0] if len(names) == 1 else self.fresh("position")
            self.open_shared_loop(position, total, names + [position])
            used = ir.free_vars(r.value)  # nvcc warns of the others, unread
            for var, line in zip(names, unflatten(position, names, extents)):
                if len(names) > 1 and var in used:
                    self.line(line)
        else:
            self.hoist([r.value], set(names))
            position = f"{name}_pos"
            for var, extent in zip(names, extents):
                self.open_loop(var, extent)
        v = self.value(r.value)
        if arg:
            best = f"{acc}.value" if shared else acc
            better = f"{v} {'>' if r.op == 'argmax' else '<'} {best}"
            if dtype in FLOATS:  # NaN is the extreme, and the first NaN stays
                better = f"({better} || {v} != {v}) && {best} == {best}"
            at = f"{acc}.at" if shared else name
            self.line(f"if ({better}) {{ {best} = {v}; {at} = {position}; }}")
            if not shared:
                self.line(f"++{position};")
        else:
            self.line(combine(r.op, dtype, acc, v))
        if not shared:
            for _ in names:
                self.close_block()
            if narrow:
                self.line(f"const {REGISTER[dtype]} {name} = {narrow.format(acc)};")
            return name
        self.close_shared_loop()
        functor = f"{block_combine(r.op, dtype)}()"
        self.line(f"{acc} = {self.team.reduce}({acc}, {functor});")
        if self.launch.kind in ("grid", "split_rows"):  # finished by the last block
            put = f"gc_grid_put(error, {len(self.grid_partials)}, {acc});"
            self.line(put if self.launch.kind == "grid" else f"if (shares > 1) {put}")
            first = f"gc_best<{REGISTER[dtype]}>{{{initial}, GC_NO_POSITION}}" if arg else \
                initial
            self.grid_partials.append((r, name, acc, first, functor))
            return name
        return self.result(r, name, acc)

    def result(self, r, name, acc):
        """The value of a shared reduction from its team's combined accumulator."""
        narrow = narrowing(r.op, r.value.dtype)
        if r.op in ("argmax", "argmin"):  # a reduction over nothing gives position 0
            self.line(f"const long long {name} = {acc}.at == GC_NO_POSITION ? 0 : {acc}.at;")
        elif narrow:
            self.line(f"const {REGISTER[r.value.dtype]} {name} = {narrow.format(acc)};")
        return name

    def render_grid(self):
        """A "grid" kernel: every block computes its share of each reduction; the last block
        to finish combines the blocks' results and makes the stores."""
        for r in grid_reductions(self.kernel):
            self.value(r)
        self.line("if (!gc_grid_last(error)) return;  // the last block combines the results")
        for which, (r, name, acc, first, functor) in enumerate(self.grid_partials):
            self.line(f"{acc} = gc_grid_combine(error, {which}, {first}, {functor}, 0, "
                      "gridDim.x);")
            self.result(r, name, acc)
        for s in self.kernel.body:
            self.stmt(s)

    def combine_shares(self):
        """In a "split_rows" kernel's row: every share computes its part of each reduction;
        where several blocks share the row, the last to finish combines their results in
        order, and the others go on (to no other row: each team has one at most)."""
        for r in row_reductions(self.kernel):
            self.value(r)
        self.open_block("if (shares > 1)")
        self.line(f"if (!gc_split_last(error, {self.team.number}, shares)) continue;")
        for which, (r, name, acc, first, functor) in enumerate(self.grid_partials):
            self.line(f"{acc} = gc_grid_combine(error, {which}, {first}, {functor}, "
                      f"{self.team.number} * shares, shares);")
        self.close_block()
        for r, name, acc, _, _ in self.grid_partials:
            self.result(r, name, acc)


def nonempty(extents, texts):
    """The condition for loops of these extents (C expressions `texts`) to run at all."""
    if all(isinstance(e, ir.Const) and e.value > 0 for e in extents):
        return "true"
    return " && ".join(f"{t} > 0" for e, t in zip(extents, texts)
                       if not (isinstance(e, ir.Const) and e.value > 0))


def unflatten(position, names, extents):
    """Lines binding the loop variables `names` to their values at a flat position."""
    out = []
    for i, var in enumerate(names):
        inner = extents[i + 1:]
        q = f"{position} / {inner[0] if len(inner) == 1 else '(' + ' * '.join(inner) + ')'}"
        q = position if not inner else q if i == 0 else f"({q})"
        out.append(f"const long long {var} = {q if i == 0 else f'{q} % {extents[i]}'};")
    return out

