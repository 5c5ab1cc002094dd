"""The Gemm statement in CUDA C: C[i, j] (+)= sum_k A[i, k] * B[k, j].

Where the Gemm is the kernel's work, blocks take tiles of C (launch kind "tiles"), TILE x TILE
elements each, while k advances through tiles of A and B copied into shared memory: each
thread copies elements in the order that is contiguous in memory for the operand's strides
(a transposed operand too), zeros where a tile runs past the matrix, so that edge tiles need
no other care. Two ways to multiply the tiles:
- on the tensor cores (nvcuda::wmma), for float16 and bfloat16 and, where the user allows
  tf32, for float32: the 8 warps of a block each compute a 16 x 32 part of the tile as two
  16 x 16 fragments accumulating in float32; the block's fragments go through shared memory
  once more on their way out, so that the stores to C check the matrix's bounds and are
  contiguous;
- on the CUDA cores otherwise: each of the block's SIDE x SIDE threads computes PER_THREAD x
  PER_THREAD elements (rows ty + SIDE * i, columns tx + SIDE * j, so that neighbouring threads
  store neighbouring columns) from registers, the tiles padded by a column so that neither
  copying order meets bank conflicts, and kept in two stages: the next k's tiles are copied
  while the current ones are multiplied.
Products with few rows or columns compute each element as one dot product: a thread's, where k
is short (launch kind "gemm", and Gemms elsewhere in a kernel), else a warp's (kind
"warp_dots": the lanes take every 32nd k, then sum their partial results by shuffles), so that
a product of a few elements with long sums (a filter's gradient: 288 elements, k = 86,528)
still fills the GPU. A thread's dot product accumulates over k in order with fma, in the
register type of the product's dtype (float for float16 and bfloat16).
A float16 or bfloat16 product is rounded once, when it is stored.
"""
from dataclasses import dataclass

from ...kernels import ir
from .launch import GEMM_TILE as TILE
from .launch import THREADS, WARP
from .types import REGISTER, from_storage, math_suffix, to_storage

TILE_K = 16
PER_THREAD = 4
SIDE = TILE // PER_THREAD
assert SIDE * SIDE == THREADS

PRELUDE = r"""// ---- tensor cores (wmma: sm_80 and later for bfloat16 and tf32) -------------------
#include <mma.h>
#include <cuda_bf16.h>
namespace wmma = nvcuda::wmma;
"""


@dataclass(frozen=True)
class TensorCores:
    """How a product goes through the tensor cores: its inputs' name, their C type in shared
    memory and wmma's name for it, the k of the m16n16k shape, and the conversion of a float
    into the staged type (tf32: rounded to 10 bits of mantissa, as the units take it)."""
    name: str
    staged: str
    fragment: str
    k: int
    convert: str


TENSOR_CORES = {
    "float16": TensorCores("float16", "__half", "__half", 16, "__float2half_rn"),
    "bfloat16": TensorCores("bfloat16", "__nv_bfloat16", "__nv_bfloat16", 16,
                            "__float2bfloat16_rn"),
    "tf32": TensorCores("tf32", "float", "wmma::precision::tf32", 8, "wmma::__float_to_tf32"),
}
FRAGMENT = 16  # rows and columns of a wmma fragment
STAGE_K = 32  # k per tile of A and B in shared memory
PAD_BYTES = 16  # per row of a shared tile: wmma wants rows a multiple of 16 bytes long
WARPS = THREADS // WARP
WARP_COLUMNS = 2  # fragments side by side in a warp's part of the tile
WARPS_DOWN = TILE // FRAGMENT  # warps above each other in the tile
assert WARPS_DOWN * (TILE // (FRAGMENT * WARP_COLUMNS)) == WARPS


def tensor_cores(dtype, tf32=False):
    """The tensor-core form of a product of dtype (float32 with `tf32` only), or None where
    it runs on the CUDA cores."""
    if dtype == "float32":
        return TENSOR_CORES["tf32"] if tf32 else None
    return TENSOR_CORES.get(dtype)


def render_gemm(r, g, distributed):
    """Emit Gemm g through the kernel renderer r; `distributed`: the kernel's threads share
    it (no loop sharing out iterations is open)."""
    if g.bias is not None or g.relu:  # the CUDA target declares no Gemm epilogue
        raise ir.Unsupported("a Gemm with an epilogue (bias, relu)")
    if not (distributed and r.launch.kind == "tiles"):
        render_dot_products(r, g, distributed)
    elif tensor_cores(g.dtype, r.tf32):
        TensorCoreTiles(r, g, tensor_cores(g.dtype, r.tf32)).render()
    else:
        Tiled(r, g).render()


class Operands:
    """A Gemm's sizes, operands and C as C expressions of the renderer r."""

    def __init__(self, r, g):
        self.r, self.dtype = r, g.dtype
        self.t, self.fma = REGISTER[g.dtype], f"fma{math_suffix(g.dtype)}"
        self.n, self.k = r.value(g.n), r.value(g.k)
        self.a, self.b = (reader(r, o, g.dtype) for o in (g.a, g.b))
        self.c_at, self.c_rows = r.value(g.c.offset), r.value(g.c.rows)
        self.c = r.pointer(g.c.buffer, g.dtype, written=True)
        self.accumulate = g.accumulate

    def at_a(self, row, k):
        """The value of A[row, k] in its register type (a gathered operand's lines first)."""
        return self.a.element(self.r, row, k)

    def at_b(self, k, col):
        return self.b.element(self.r, k, col)

    def store(self, row, col, value):
        """The statement storing (or adding) a float `value` into C[row, col], rounded once
        to the product's dtype."""
        c = f"{self.c}[{offset(self.c_at, (row, self.c_rows), (col, '1LL'))}]"
        if self.accumulate:
            value = f"{from_storage(c, self.dtype)} + {value}"
        if self.dtype == "bfloat16":
            value = f"gc_round_bfloat16({value})"
        return f"{c} = {to_storage(value, self.dtype)};"


def reader(r, o, dtype):
    return Gathered(o) if isinstance(o, ir.Gathered) else Strided(r, o, dtype)


class Strided:
    """The elements of a strided operand: loads from its buffer."""
    emits = False  # element() writes no lines

    def __init__(self, r, o, dtype):
        self.at, self.rows, self.cols = (r.value(x) for x in (o.offset, o.rows, o.cols))
        self.pointer, self.dtype = r.pointer(o.buffer, dtype), dtype

    def element(self, r, row, col):
        at = offset(self.at, (row, self.rows), (col, self.cols))
        return from_storage(f"{self.pointer}[{at}]", self.dtype)

    def along_rows(self):
        """C condition: neighbouring rows are neighbours in memory (and columns are not)."""
        return f"{self.rows} == 1 && {self.cols} != 1"

    def along_cols(self):
        return f"{self.cols} == 1"


class Gathered:
    """The elements of a gathered operand: its value, computed where it is read by lines
    written in the current block, with its variables bound to the element's row and column."""
    emits = True

    def __init__(self, o):
        self.o = o

    def element(self, r, row, col):
        o = self.o
        used = ir.free_vars(o.value)
        binds = [f"{v.name} = {at}" for v, at in ((o.row, row), (o.col, col)) if v.name in used]
        r.bound[-1].update(v.name for v in (o.row, o.col))
        if binds:  # a value constant along a side reads no index there: nvcc warns of it
            r.line(f"const long long {', '.join(binds)};")
        return r.value(o.value)

    def along_rows(self):
        return "true" if self.o.along == "row" else "false"

    def along_cols(self):
        return "true" if self.o.along == "col" else "false"


def offset(base, *terms):
    """base + sum of index * stride, leaving out zeros and unit strides."""
    parts = [] if base == "0LL" else [base]
    parts += [index if stride == "1LL" else f"{index} * {stride}" for index, stride in terms]
    return " + ".join(parts)


def render_dot_products(r, g, distributed):
    """One dot product per element of C: when `distributed`, the grid's threads (or warps,
    launch kind "warp_dots") share the elements, else this thread computes them all."""
    o = Operands(r, g)
    row, col, kk, acc = r.fresh("row"), r.fresh("col"), r.fresh("k"), r.fresh("acc")
    by_warps = distributed and r.launch.kind == "warp_dots"
    if by_warps:
        element = r.fresh("element")
        r.open_block(f"for (long long {element} = lo + gc_warp(); {element} < hi; "
                     f"{element} += gc_warps())", (element,))
    elif distributed:
        element = r.fresh("element")
        r.open_grid_stride(element)
    else:
        r.open_loop(row, r.value(g.m))
        r.open_loop(col, o.n)
    if distributed:
        r.line(f"const long long {row} = {element} / {o.n}, {col} = {element} % {o.n};")
    r.line(f"{o.t} {acc} = 0;")
    if by_warps:
        r.open_block(f"for (long long {kk} = gc_lane(); {kk} < {o.k}; {kk} += GC_WARP)", (kk,))
    else:
        r.open_loop(kk, o.k)
    r.line(f"{acc} = {o.fma}({o.at_a(row, kk)}, {o.at_b(kk, col)}, {acc});")
    r.close_block()
    if by_warps:  # every lane of the warp takes the same elements: all meet at the shuffles
        r.line(f"{acc} = gc_warp_reduce({acc}, gc_plus());")
        r.line(f"if (gc_lane() == 0) {o.store(row, col, acc)}")
    else:
        r.line(o.store(row, col, acc))
    r.close_block()
    if not distributed:
        r.close_block()


class Tiles:
    """What both tiled forms share: the loop over the tiles of C and over k, and the copies
    of A's and B's tiles into shared memory. A subclass's render() declares its shared
    tiles, then calls open_tiles()."""
    depth = TILE_K  # k per tile of A and B

    def __init__(self, r, g, names):
        """`names`: the subclass's names for r.fresh, in self.v beside the shared ones."""
        self.r, self.g, self.o = r, g, Operands(r, g)
        self.m = r.value(g.m)
        self.v = {x: r.fresh(x) for x in ("a_k_first", "b_k_first", "tiles_n", "tile",
                                          "first_row", "first_col", "first_k") + names}

    def open_tiles(self):
        """Open the loop over the block's tiles of C."""
        r, v, o = self.r, self.v, self.o
        r.line(f"const bool {v['a_k_first']} = {o.a.along_cols()}, "
               f"{v['b_k_first']} = {o.b.along_rows()};")
        r.line(f"const long long {v['tiles_n']} = ({o.n} + {TILE - 1}) / {TILE};")
        r.open_block(f"for (long long {v['tile']} = lo + blockIdx.x; {v['tile']} < hi; "
                     f"{v['tile']} += gridDim.x)")
        r.line(f"const long long {v['first_row']} = {v['tile']} / {v['tiles_n']} * {TILE}, "
               f"{v['first_col']} = {v['tile']} % {v['tiles_n']} * {TILE};")


    def load_tiles(self, a_target, b_target, k0, convert=lambda value: value):
        """Copy the tiles of A and B at k0 into shared memory: a_target(k, row) and
        b_target(k, column) name the elements, `convert` the staged value of a register."""
        v, o = self.v, self.o
        self.load_tile(a_target, "row", self.m, v["a_k_first"], o.a, o.at_a, v["first_row"],
                       k0, convert)
        self.load_tile(b_target, "col", o.n, v["b_k_first"], o.b, lambda col, k: o.at_b(k, col),
                       v["first_col"], k0, convert)

    def load_tile(self, target, along, size, k_first, operand, element, start, k0, convert):
        """Copy the operand's depth x TILE tile at (k0, start) into shared memory, zeros
        outside the matrix; consecutive threads take consecutive k when k_first. A gathered
        operand's elements are computed inside the matrix only."""
        r, o, depth = self.r, self.o, self.depth
        e, kk, x, at, k = (r.fresh(h) for h in ("e", "tk", "t" + along[0], along, "k"))
        r.open_block(f"for (int {e} = threadIdx.x; {e} < {depth * TILE}; {e} += blockDim.x)")
        r.line(f"const int {kk} = {k_first} ? {e} % {depth} : {e} / {TILE}, "
               f"{x} = {k_first} ? {e} / {depth} : {e} % {TILE};")
        r.line(f"const long long {at} = {start} + {x}, {k} = "
               f"{kk if k0 == '0' else f'{k0} + {kk}'};")
        inside = f"{at} < {size} && {k} < {o.k}"
        if operand.emits:
            value = r.fresh("element")
            r.line(f"{o.t} {value} = 0;")
            r.open_block(f"if ({inside})")
            r.line(f"{value} = {element(at, k)};")
            r.close_block()
        else:
            value = f"{inside} ? {element(at, k)} : 0"
        r.line(f"{target(kk, x)} = {convert(value)};")
        r.close_block()


class Tiled(Tiles):
    """The CUDA cores' tiles: PER_THREAD x PER_THREAD elements of C per thread. Two stages of
    A's and B's tiles in shared memory: the block copies the next k's tiles into one while
    it multiplies those in the other, one barrier per step of k."""

    def __init__(self, r, g):
        super().__init__(r, g, ("a_tile", "b_tile", "tx", "ty", "acc", "tk", "a", "b",
                                "stage"))

    def render(self):
        r, o, v = self.r, self.o, self.v
        k0, stage = v["first_k"], v["stage"]
        r.line(f"// C in tiles of {TILE} x {TILE}, each thread computing {PER_THREAD} x "
               f"{PER_THREAD} elements; k by {TILE_K} through shared memory, in two stages")
        r.line(f"__shared__ {o.t} {v['a_tile']}[2][{TILE_K}][{TILE + 1}];  "
               "// [stage][k][row]")
        r.line(f"__shared__ {o.t} {v['b_tile']}[2][{TILE_K}][{TILE + 1}];  "
               "// [stage][k][column]")
        r.line(f"const int {v['tx']} = threadIdx.x % {SIDE}, {v['ty']} = threadIdx.x / {SIDE};")
        self.open_tiles()
        r.line(f"{o.t} {v['acc']}[{PER_THREAD}][{PER_THREAD}] = {{}};")
        self.load_stage("0", "0")
        r.line("__syncthreads();")
        r.open_block(f"for (long long {k0} = 0, {stage} = 0; {k0} < {o.k}; "
                     f"{k0} += {TILE_K}, {stage} ^= 1)")
        r.line("// the other stage's readers passed the last barrier: it takes the next k")
        r.open_block(f"if ({k0} + {TILE_K} < {o.k})")
        self.load_stage(f"{stage} ^ 1", f"{k0} + {TILE_K}")
        r.close_block()
        self.multiply()
        r.line("__syncthreads();")
        r.close_block()
        self.store()
        r.close_block()

    def load_stage(self, stage, k0):
        a, b = self.v["a_tile"], self.v["b_tile"]
        self.load_tiles(lambda k, row: f"{a}[{stage}][{k}][{row}]",
                        lambda k, col: f"{b}[{stage}][{k}][{col}]", k0)

    def multiply(self):
        r, v, o = self.r, self.v, self.o
        i, j = r.fresh("i"), r.fresh("j")
        r.open_block(f"for (int {v['tk']} = 0; {v['tk']} < {TILE_K}; ++{v['tk']})")
        a_row, b_row = (f"{v[x]}[{v['stage']}][{v['tk']}]" for x in ("a_tile", "b_tile"))
        r.line(f"{o.t} {v['a']}[{PER_THREAD}], {v['b']}[{PER_THREAD}];")
        r.line(f"for (int {i} = 0; {i} < {PER_THREAD}; ++{i}) "
               f"{v['a']}[{i}] = {a_row}[{v['ty']} + {SIDE} * {i}];")
        r.line(f"for (int {j} = 0; {j} < {PER_THREAD}; ++{j}) "
               f"{v['b']}[{j}] = {b_row}[{v['tx']} + {SIDE} * {j}];")
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
        value = f"{v['acc']}[{i}][{j}]"
        r.line(f"if ({row} < {self.m} && {col} < {o.n}) {o.store(row, col, value)}")
        r.close_block()
        r.close_block()


class TensorCoreTiles(Tiles):
    """The tensor cores' tiles: warp w computes rows FRAGMENT * (w % WARPS_DOWN) onwards,
    columns FRAGMENT * WARP_COLUMNS * (w / WARPS_DOWN) onwards, in WARP_COLUMNS fragments."""
    depth = STAGE_K

    def __init__(self, r, g, cores):
        super().__init__(r, g, ("a_tile", "b_tile", "c_tile", "warp_row", "warp_col", "acc",
                                "tk", "a", "b", "j"))
        self.cores = cores

    def render(self):
        r, o, v, cores = self.r, self.o, self.v, self.cores
        staged_pad = PAD_BYTES // (2 if cores.staged != "float" else 4)
        self.lda, self.ldb, self.ldc = STAGE_K + staged_pad, TILE + staged_pad, TILE + 4
        r.line(f"// C in tiles of {TILE} x {TILE} on the tensor cores (wmma m16n16k{cores.k}, "
               f"{cores.name} inputs, float accumulators): each warp computes {FRAGMENT} x "
               f"{FRAGMENT * WARP_COLUMNS} elements; k by {STAGE_K} through shared memory")
        r.line(f"__shared__ __align__(32) {cores.staged} {v['a_tile']}[{TILE}][{self.lda}];  "
               "// [row][k]")
        r.line(f"__shared__ __align__(32) {cores.staged} {v['b_tile']}[{STAGE_K}][{self.ldb}];"
               "  // [k][column]")
        r.line(f"__shared__ __align__(32) float {v['c_tile']}[{TILE}][{self.ldc}];  "
               "// [row][column]: the accumulators on their way out")
        warp = f"threadIdx.x / {WARP}"
        r.line(f"const int {v['warp_row']} = {warp} % {WARPS_DOWN} * {FRAGMENT}, "
               f"{v['warp_col']} = {warp} / {WARPS_DOWN} * {FRAGMENT * WARP_COLUMNS};")
        self.open_tiles()
        j = v["j"]
        r.line(f"wmma::fragment<wmma::accumulator, {FRAGMENT}, {FRAGMENT}, {cores.k}, float> "
               f"{v['acc']}[{WARP_COLUMNS}];")
        r.line(f"for (int {j} = 0; {j} < {WARP_COLUMNS}; ++{j}) "
               f"wmma::fill_fragment({v['acc']}[{j}], 0.0f);")
        k0 = v["first_k"]
        r.open_block(f"for (long long {k0} = 0; {k0} < {o.k}; {k0} += {self.depth})")
        self.load_tiles(lambda k, row: f"{v['a_tile']}[{row}][{k}]",
                        lambda k, col: f"{v['b_tile']}[{k}][{col}]", k0,
                        lambda value: f"{cores.convert}({value})")
        r.line("__syncthreads();")
        self.multiply()
        r.line("__syncthreads();")
        r.close_block()
        self.store()
        r.line("__syncthreads();  // the tile is out before the next one's accumulators land")
        r.close_block()

    def fragment(self, use, name):
        cores = self.cores
        return (f"wmma::fragment<wmma::{use}, {FRAGMENT}, {FRAGMENT}, {cores.k}, "
                f"{cores.fragment}, wmma::row_major> {name};")

    def multiply(self):
        r, v, k = self.r, self.v, self.cores.k
        tk, j = v["tk"], v["j"]
        r.open_block(f"for (int {tk} = 0; {tk} < {STAGE_K}; {tk} += {k})")
        r.line(self.fragment("matrix_a", v["a"]))
        r.line(f"wmma::load_matrix_sync({v['a']}, &{v['a_tile']}[{v['warp_row']}][{tk}], "
               f"{self.lda});")
        r.open_block(f"for (int {j} = 0; {j} < {WARP_COLUMNS}; ++{j})")
        r.line(self.fragment("matrix_b", v["b"]))
        r.line(f"wmma::load_matrix_sync({v['b']}, "
               f"&{v['b_tile']}[{tk}][{v['warp_col']} + {FRAGMENT} * {j}], {self.ldb});")
        r.line(f"wmma::mma_sync({v['acc']}[{j}], {v['a']}, {v['b']}, {v['acc']}[{j}]);")
        r.close_block()
        r.close_block()

    def store(self):
        """The accumulators into the shared C tile, then the tile's elements inside the
        matrix into C, neighbouring threads storing neighbouring columns."""
        r, v, o, j = self.r, self.v, self.o, self.v["j"]
        r.line(f"for (int {j} = 0; {j} < {WARP_COLUMNS}; ++{j}) wmma::store_matrix_sync("
               f"&{v['c_tile']}[{v['warp_row']}][{v['warp_col']} + {FRAGMENT} * {j}], "
               f"{v['acc']}[{j}], {self.ldc}, wmma::mem_row_major);")
        r.line("__syncthreads();")
        e, row, col = r.fresh("e"), r.fresh("row"), r.fresh("col")
        r.open_block(f"for (int {e} = threadIdx.x; {e} < {TILE * TILE}; {e} += blockDim.x)")
        r.line(f"const long long {row} = {v['first_row']} + {e} / {TILE}, "
               f"{col} = {v['first_col']} + {e} % {TILE};")
        value = f"{v['c_tile']}[{e} / {TILE}][{e} % {TILE}]"
        r.line(f"if ({row} < {self.m} && {col} < {o.n}) {o.store(row, col, value)}")
        r.close_block()
