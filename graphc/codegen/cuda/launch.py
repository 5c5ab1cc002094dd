"""How each generated kernel is launched: the range [0, extent) whose iterations [lo, hi) its
blocks or threads take, and the block size. The renderer and the runtime both read it here.

Kinds of kernels:
- "flat": elementwise, the loop nest one range of positions that threads take `vector` at a
  time (elementwise.py).
- "loop": the outermost loop is parallel; each thread takes iterations of it (grid-stride).
- "rows": the same, but each block takes iterations, its threads sharing the iteration's long
  reductions and inner loops (a softmax or a row sum: one block per row).
- "warp_rows": the same with a warp in place of a block, where the rows are short.
- "split_rows": rows of stores of reductions (a row sum): one block per row where there are
  many rows; where a few long rows would leave the GPU idle, `shares` blocks take each row,
  each leaving a partial result per reduction, and the row's last block to finish combines
  them in order and stores (two passes in one launch, as "grid").
- "tiles": a matrix product (in loops over a batch): blocks take tiles of the product.
- "gemm": the same with few rows or columns: threads share the product's elements.
- "warp_dots": the same with long (or run-time) sums: warps share the elements, the lanes of a
  warp the sum.
- "grid": no parallel loop, but long reductions to scalars: every block takes a share of each,
  and the last block to finish combines the blocks' results (two passes in one launch).
- "block": the same where the grid cannot share them (one reduction needs another's result,
  or an index is checked): one block, its threads sharing them.
- "single": anything else; one thread runs it.
"""
import operator
from dataclasses import dataclass

from ...kernels import ir
from .elementwise import flat_nest, vector_width
from .values import Values, statement_exprs

THREADS = 256  # a multiple of the warp size
WARP = 32
MAX_BLOCKS = 65535  # a grid-stride loop covers the rest; plenty to fill any GPU
SHARED_FROM = 64  # reductions this long (or of run-time length) are shared by a warp or block
WARP_ROWS = 1024  # rows whose work is all known to be this short or shorter: a warp per row
PER_THREAD = ("flat", "loop", "gemm", "single")  # kinds whose threads, not blocks, take iterations
GEMM_TILE = 64  # rows and columns of a tile of a matrix product
SMALL_GEMM = 16  # products with fewer rows or columns than this are not tiled


@dataclass(frozen=True)
class Team:
    """Who shares a row's work, as C expressions: the member's number and the team's size, the
    team's number among all running and how many run, the function combining the members'
    partial results (reductions.py), and the condition for the thread that stores."""
    member: str
    size: str
    number: str
    count: str
    reduce: str
    first: str = "threadIdx.x == 0"


BLOCK = Team("threadIdx.x", "blockDim.x", "blockIdx.x", "gridDim.x", "gc_block_reduce")
TEAMS = {"rows": BLOCK, "block": BLOCK,
         # `shares` blocks a row (render.py defines it: gc_split_shares)
         "split_rows": Team("(long long)(blockIdx.x % shares) * blockDim.x + threadIdx.x",
                            "(long long)shares * blockDim.x", "blockIdx.x / shares",
                            "gridDim.x / shares", "gc_block_reduce"),
         "warp_rows": Team("gc_lane()", "GC_WARP", "gc_warp()", "gc_warps()", "gc_warp_reduce",
                           "gc_lane() == 0"),
         "grid": Team("gc_grid_thread()", "gc_grid_threads()", "0", "1", "gc_block_reduce")}
TEAMS_PER_BLOCK = {"warp_rows": THREADS // WARP, "warp_dots": THREADS // WARP}
GRID_BLOCKS = 256  # the most blocks of a "grid" or split "split_rows" kernel (partial results)
SPLIT_COUNTS = 4  # the word where split rows' counts of finished blocks start (32 bits each)
# of the kernels' error report and work area: the report (2 words), a "grid" kernel's count
# of finished blocks (1), one spare, then split rows' counts
ERROR_WORDS = SPLIT_COUNTS + GRID_BLOCKS // 2
SPLIT_FROM = 16 * THREADS  # the least elements of a row that one share takes


@dataclass(frozen=True)
class Launch:
    kind: str
    extent: ir.Expr  # of the range the kernel's iterations [lo, hi) come from
    threads: int = THREADS
    vector: int = 1  # iterations a thread takes at once
    row: ir.Expr = None  # "split_rows": the length of its longest reduction


def gemm_of(kernel):
    """The Gemm of a kernel whose body is loops (none parallel) around one Gemm, else None."""
    body = kernel.body
    while len(body) == 1 and isinstance(body[0], ir.Loop) and not body[0].parallel:
        body = body[0].body
    return body[0] if len(body) == 1 and isinstance(body[0], ir.Gemm) else None


def launch(kernel):
    loop = kernel.parallel_loop
    gemm = gemm_of(kernel)
    if gemm is not None:
        if any(isinstance(d, ir.Const) and d.value < SMALL_GEMM for d in (gemm.m, gemm.n)):
            short = _at_most(gemm.k, SHARED_FROM - 1)
            return Launch("gemm" if short else "warp_dots", ir.mul(gemm.m, gemm.n))
        return Launch("tiles", ir.mul(_tiles(gemm.m), _tiles(gemm.n)))
    shared = shared_work(kernel)
    if shared is not None:
        if loop is None:
            grid = grid_reductions(kernel)
            if grid:
                return Launch("grid", _longest(grid))
            return Launch("block", ir.const(1))
        if all(_at_most(size, WARP_ROWS) for size in shared):
            return Launch("warp_rows", loop.extent)
        split = _scalar_reductions(loop.body, {loop.var.name})
        if split and not any(ir.free_vars(x) for r in split for _, x in r.loops):
            return Launch("split_rows", loop.extent, row=_longest(split))
        return Launch("rows", loop.extent)
    if flat_nest(kernel):
        return Launch("flat", ir.product(x for _, x in flat_nest(kernel)[0]),
                      vector=vector_width(kernel))
    if loop is not None:
        return Launch("loop", loop.extent)
    return Launch("single", ir.const(1), threads=1)


def _tiles(size):
    return ir.floordiv(ir.add(size, ir.const(GEMM_TILE - 1)), ir.const(GEMM_TILE))


def _longest(reductions):
    extent = ir.product(x for _, x in reductions[0].loops)
    for r in reductions[1:]:
        extent = ir.op("maximum", extent, ir.product(x for _, x in r.loops))
    return extent


def blocks(launch, hi, dims=()):
    """Blocks for a launch over [0, hi) (0 when there is nothing to do), given the dims."""
    if launch.kind == "grid":  # stores its results even when every reduction is empty
        return min(max(-(-hi // launch.threads), 1), GRID_BLOCKS)
    if hi <= 0:
        return 0
    if launch.kind == "split_rows":
        shares = min(-(-evaluate(launch.row, dims) // SPLIT_FROM), GRID_BLOCKS // hi)
        if shares > 1:
            return hi * shares
    per_block = (launch.threads * launch.vector if launch.kind in PER_THREAD
                 else TEAMS_PER_BLOCK.get(launch.kind, 1))
    return min(-(-hi // per_block), MAX_BLOCKS)


def grid_reductions(kernel):
    """The reductions, in the order they are first used, of a kernel of stores of scalars whose
    reductions to scalars a grid can share: none of them reads another and nothing is index
    checked outside them. None otherwise."""
    return _scalar_reductions(kernel.body, set())


def row_reductions(kernel):
    """The reductions of a "split_rows" kernel's row, in the order they are first used."""
    loop = kernel.parallel_loop
    return _scalar_reductions(loop.body, {loop.var.name})


def _scalar_reductions(stores, outer):
    """The reductions depending on `outer` loop variables only under `stores` (Store
    statements only, else None), as grid_reductions."""
    if not all(isinstance(s, ir.Store) for s in stores):
        return None
    found, seen, todo = [], set(), [e for s in reversed(stores) for e in (s.value, s.index)]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ir.Op) and e.name == "check_index":
            return None
        if isinstance(e, ir.Reduce) and ir.free_vars(e) <= outer:
            if any(isinstance(x, ir.Reduce) and ir.free_vars(x) <= outer or isinstance(x, ir.Op)
                   and x.name == "check_index" for x in _under(e)):
                return None
            found.append(e)
            continue
        todo.extend(reversed(ir.children(e)))
    return found or None


def _under(e):
    seen, todo = set(), list(ir.children(e))
    while todo:
        x = todo.pop()
        if id(x) not in seen:
            seen.add(id(x))
            yield x
            todo.extend(ir.children(x))


def work_words(kernels):
    """The 8-byte words of the error report and work area these kernels need: the report and a
    count of finished blocks and split rows' counts, then 16 bytes per block and reduction of
    "grid" and "split_rows" kernels."""
    grids = [len(grid_reductions(k) if launch(k).kind == "grid" else row_reductions(k))
             for k in kernels if launch(k).kind in ("grid", "split_rows")]
    return ERROR_WORDS + 2 * GRID_BLOCKS * max(grids, default=0)


def shared_work(kernel):
    """The sizes of the work a warp or block would share in each iteration of the kernel's
    parallel loop (or in the kernel, without one): its reductions' and its loops' extents; None
    unless it should be shared: some reduction there is long, and every index check there
    depends on that iteration only, so that a bad index stops all the team's threads together
    (they meet at barriers and shuffles: a thread must not leave alone)."""
    loop = kernel.parallel_loop
    body = loop.body if loop else kernel.body
    outer = {loop.var.name} if loop else set()
    nested = [x for s in body if isinstance(s, ir.Loop) for x in ir.walk_statements(s.body)]
    if any(isinstance(s, ir.Gemm) for s in list(body) + nested) or any(
            isinstance(s, ir.Check) for s in nested):
        return None
    values, seen, todo = Values(), set(), list(statement_exprs(body))
    sizes = [s.extent for s in body if isinstance(s, ir.Loop)]
    long = False
    while todo:
        e = todo.pop()
        n = values(e)
        if n in seen:
            continue
        seen.add(n)
        free = values.free[n]
        if isinstance(e, ir.Reduce) and free <= outer:
            sizes.append(ir.product(extent for _, extent in e.loops))
            long = long or not _at_most(sizes[-1], SHARED_FROM - 1)
        if isinstance(e, ir.Op) and e.name == "check_index" and not free <= outer:
            return None
        todo.extend(ir.children(e))
    return sizes if long else None


def _at_most(size, bound):
    """Whether size is known to be at most bound: a constant, or a minimum with such a term
    (a read that a run-time extent of 0 must not make: rules._unless_empty)."""
    if isinstance(size, ir.Op) and size.name == "minimum":
        return any(_at_most(a, bound) for a in size.args)
    return isinstance(size, ir.Const) and size.value <= bound


def _truncdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# index arithmetic on the host, for launch ranges: the kernel IR's semantics on Python ints
# (legal index arithmetic, and the compound floordiv and mod, as launch's own tile counts use)
HOST_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "neg": operator.neg,
            "truncdiv": _truncdiv,
            "floordiv": lambda a, b: a // b if b else 0, "mod": lambda a, b: a % b if b else 0,
            "maximum": max, "minimum": min,
            "equal": operator.eq, "not_equal": operator.ne, "less": operator.lt,
            "less_equal": operator.le, "greater": operator.gt, "greater_equal": operator.ge,
            "logical_and": lambda a, b: a and b, "logical_or": lambda a, b: a or b,
            "logical_xor": operator.ne, "where": lambda c, a, b: a if c else b}


def evaluate(expr, dims):
    """The value of an index expression of constants and run-time dims."""
    if isinstance(expr, ir.Const):
        return int(expr.value)
    if isinstance(expr, ir.Dim):
        return int(dims[expr.slot])
    if isinstance(expr, ir.Op) and expr.name in HOST_OPS:
        return HOST_OPS[expr.name](*(evaluate(a, dims) for a in expr.args))
    raise ValueError(f"a launch range is not computable on the host: {expr}")
