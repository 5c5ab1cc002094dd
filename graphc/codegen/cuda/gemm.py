"""The Gemm statement in CUDA C: C[i, j] (+)= sum_k A[i, k] * B[k, j].

Where the Gemm is the kernel's work, blocks take tiles of C (launch kind "tiles"): TILE x TILE
elements, each of the block's SIDE x SIDE threads computing PER_THREAD x PER_THREAD of them
(rows ty + SIDE * i, columns tx + SIDE * j, so that neighbouring threads store neighbouring
columns), while k advances TILE_K at a time through tiles of A and B in shared memory. Each
thread loads elements of those tiles in the order that is contiguous in memory for the
operand's strides (a transposed operand too), and the tiles are padded by a column so that
neither order meets bank conflicts. Products with few rows or columns (launch kind "gemm"), and
Gemms elsewhere in a kernel, compute each element as one dot product per thread. Either way
an element accumulates over k in order with fma, in the product's dtype.
"""
from .launch import GEMM_TILE as TILE
from .launch import THREADS
from .types import REGISTER, math_suffix

TILE_K = 16
PER_THREAD = 4
SIDE = TILE // PER_THREAD
assert SIDE * SIDE == THREADS


def render_gemm(r, g, distributed):
    """Emit Gemm g through the kernel renderer r; `distributed`: the kernel's threads share
    it (no loop sharing out iterations is open)."""
    if distributed and r.launch.kind == "tiles":
        Tiled(r, g).render()
    else:
        render_dot_products(r, g, distributed)


class Operands:
    """A Gemm's sizes, pointers and strides as C expressions of the renderer r."""

    def __init__(self, r, g):
        self.t, self.fma = REGISTER[g.dtype], f"fma{math_suffix(g.dtype)}"
        self.n, self.k = r.value(g.n), r.value(g.k)
        self.a_at, self.a_rows, self.a_cols = (r.value(x) for x in (g.a.offset, g.a.rows,
                                                                     g.a.cols))
        self.b_at, self.b_rows, self.b_cols = (r.value(x) for x in (g.b.offset, g.b.rows,
                                                                     g.b.cols))
        self.c_at, self.c_rows = r.value(g.c.offset), r.value(g.c.rows)
        self.a, self.b = r.pointer(g.a.buffer, g.dtype), r.pointer(g.b.buffer, g.dtype)
        self.c = r.pointer(g.c.buffer, g.dtype, written=True)
        self.store = "+=" if g.accumulate else "="

    def at_a(self, row, k):
        return f"{self.a}[{offset(self.a_at, (row, self.a_rows), (k, self.a_cols))}]"

    def at_b(self, k, col):
        return f"{self.b}[{offset(self.b_at, (k, self.b_rows), (col, self.b_cols))}]"

    def at_c(self, row, col):
        return f"{self.c}[{offset(self.c_at, (row, self.c_rows), (col, '1LL'))}]"


def offset(base, *terms):
    """base + sum of index * stride, leaving out zeros and unit strides."""
    parts = [] if base == "0LL" else [base]
    parts += [index if stride == "1LL" else f"{index} * {stride}" for index, stride in terms]
    return " + ".join(parts)


def render_dot_products(r, g, distributed):
    """One dot product per element of C: the grid-stride loop shares the elements when
    `distributed`, else this thread computes them all."""
    o = Operands(r, g)
    row, col, kk, acc = r.fresh("row"), r.fresh("col"), r.fresh("k"), r.fresh("acc")
    if distributed:
        element = r.fresh("element")
        r.open_grid_stride(element)
        r.line(f"const long long {row} = {element} / {o.n}, {col} = {element} % {o.n};")
    else:
        r.open_loop(row, r.value(g.m))
        r.open_loop(col, o.n)
    r.line(f"{o.t} {acc} = 0;")
    r.open_loop(kk, o.k)
    r.line(f"{acc} = {o.fma}({o.at_a(row, kk)}, {o.at_b(kk, col)}, {acc});")
    r.close_block()
    r.line(f"{o.at_c(row, col)} {o.store} {acc};")
    r.close_block()
    if not distributed:
        r.close_block()


class Tiled:
    def __init__(self, r, g):
        self.r, self.g, self.o = r, g, Operands(r, g)
        self.m = r.value(g.m)

    def render(self):
        r, o, m = self.r, self.o, self.m
        names = {x: r.fresh(x) for x in ("a_tile", "b_tile", "tx", "ty", "a_k_first",
                                        "b_k_first", "tiles_n", "tile", "first_row",
                                        "first_col", "acc", "first_k", "tk", "a", "b")}
        self.v = v = names
        r.line(f"// C in tiles of {TILE} x {TILE}, each thread computing {PER_THREAD} x "
               f"{PER_THREAD} elements; k by {TILE_K} through shared memory")
        r.line(f"__shared__ {o.t} {v['a_tile']}[{TILE_K}][{TILE + 1}];  // [k][row]")
        r.line(f"__shared__ {o.t} {v['b_tile']}[{TILE_K}][{TILE + 1}];  // [k][column]")
        r.line(f"const int {v['tx']} = threadIdx.x % {SIDE}, {v['ty']} = threadIdx.x / {SIDE};")
        r.line(f"const bool {v['a_k_first']} = {o.a_cols} == 1, "
               f"{v['b_k_first']} = {o.b_rows} == 1 && {o.b_cols} != 1;")
        r.line(f"const long long {v['tiles_n']} = ({o.n} + {TILE - 1}) / {TILE};")
        r.open_block(f"for (long long {v['tile']} = lo + blockIdx.x; {v['tile']} < hi; "
                     f"{v['tile']} += gridDim.x)")
        r.line(f"const long long {v['first_row']} = {v['tile']} / {v['tiles_n']} * {TILE}, "
               f"{v['first_col']} = {v['tile']} % {v['tiles_n']} * {TILE};")
        r.line(f"{o.t} {v['acc']}[{PER_THREAD}][{PER_THREAD}] = {{}};")
        k0 = v["first_k"]
        r.open_block(f"for (long long {k0} = 0; {k0} < {o.k}; {k0} += {TILE_K})")
        self.load_tile("a", "row", m, v["a_k_first"],
                       lambda row, k: o.at_a(row, k), v["first_row"])
        self.load_tile("b", "col", o.n, v["b_k_first"],
                       lambda col, k: o.at_b(k, col), v["first_col"])
        r.line("__syncthreads();")
        self.multiply()
        r.line("__syncthreads();")
        r.close_block()
        self.store()
        r.close_block()

    def load_tile(self, which, along, size, k_first, element, start):
        """Copy the operand's TILE_K x TILE tile at (k0, start) into shared memory, zeros
        outside the matrix; consecutive threads take consecutive k when k_first."""
        r, v, o = self.r, self.v, self.o
        e, kk, x, at, k = (r.fresh(h) for h in ("e", "tk", "t" + along[0], along, "k"))
        r.open_block(f"for (int {e} = threadIdx.x; {e} < {TILE_K * TILE}; {e} += blockDim.x)")
        r.line(f"const int {kk} = {k_first} ? {e} % {TILE_K} : {e} / {TILE}, "
               f"{x} = {k_first} ? {e} / {TILE_K} : {e} % {TILE};")
        r.line(f"const long long {at} = {start} + {x}, {k} = {v['first_k']} + {kk};")
        r.line(f"{v[which + '_tile']}[{kk}][{x}] = {at} < {size} && {k} < {o.k} ? "
               f"{element(at, k)} : 0;")
        r.close_block()

    def multiply(self):
        r, v, o = self.r, self.v, self.o
        i, j = r.fresh("i"), r.fresh("j")
        r.open_block(f"for (int {v['tk']} = 0; {v['tk']} < {TILE_K}; ++{v['tk']})")
        r.line(f"{o.t} {v['a']}[{PER_THREAD}], {v['b']}[{PER_THREAD}];")
        r.line(f"for (int {i} = 0; {i} < {PER_THREAD}; ++{i}) "
               f"{v['a']}[{i}] = {v['a_tile']}[{v['tk']}][{v['ty']} + {SIDE} * {i}];")
        r.line(f"for (int {j} = 0; {j} < {PER_THREAD}; ++{j}) "
               f"{v['b']}[{j}] = {v['b_tile']}[{v['tk']}][{v['tx']} + {SIDE} * {j}];")
        r.line(f"for (int {i} = 0; {i} < {PER_THREAD}; ++{i})")
        r.line(f"    for (int {j} = 0; {j} < {PER_THREAD}; ++{j})")
        r.line(f"        {v['acc']}[{i}][{j}] = {o.fma}({v['a']}[{i}], {v['b']}[{j}], "
               f"{v['acc']}[{i}][{j}]);")
        r.close_block()

    def store(self):
        r, v, o = self.r, self.v, self.o
        i, j, row, col = r.fresh("i"), r.fresh("j"), r.fresh("row"), r.fresh("col")
        r.open_block(f"for (int {i} = 0; {i} < {PER_THREAD}; ++{i})")
        r.open_block(f"for (int {j} = 0; {j} < {PER_THREAD}; ++{j})")
        r.line(f"const long long {row} = {v['first_row']} + {v['ty']} + {SIDE} * {i}, "
               f"{col} = {v['first_col']} + {v['tx']} + {SIDE} * {j};")
        r.line(f"if ({row} < {self.m} && {col} < {o.n}) "
               f"{o.at_c(row, col)} {o.store} {v['acc']}[{i}][{j}];")
        r.close_block()
        r.close_block()
