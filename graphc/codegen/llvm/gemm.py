"""Matrix multiply C = A @ B (or C += A @ B) as LLVM IR, in the Goto/BLIS scheme.

`define_gemm(module, dtype)` adds `graphc_gemm_f32` or `graphc_gemm_f64` to a module, and
`declare_gemm(module, dtype)` declares it there, for code linked beside a module that defines it:

    void gemm(i64 M, i64 N, i64 K,
              T* A, i64 rsa, i64 csa,    A[i, k] at A[i*rsa + k*csa]   (element strides)
              T* B, i64 rsb, i64 csb,    B[k, j] at B[k*rsb + j*csb]
              T* C, i64 rsc,             C[i, j] at C[i*rsc + j]
              i32 accumulate,            0: C = A @ B, 1: C += A @ B
              i64 m_lo, i64 m_hi)        this call's share of C, to split work over threads

A share [m_lo, m_hi) of [0, M) is the rows [m_lo, m_hi) of C, or, where M < N and N >= 4 NR,
the columns [N*m_lo/M, N*m_hi/M) of every row (rounded to whole vectors): each share packs all
of the smaller operand, so calls that split C into shares pack the larger one once between
them. Shares that partition [0, M) partition C, and every element of C is the same sum in the
same order whatever the shares. C must not overlap A or B. With K == 0, C becomes 0 (or stays as it is when accumulating).

The stages, one function each:
  pack_a       an mc x kc block of A into panels of MR rows, k-major, zero padded
  pack_b       a kc x nc block of B into panels of NR columns, k-major, zero padded
               (one generator for both: a panel is `width` lanes along k)
  microkernel  an h x NR tile of C from one A panel and one B panel: h x NR/lanes vector
               accumulators, one broadcast element of A times vectors of B per FMA, UNROLL
               steps of k per loop iteration, the tile's lines of C prefetched first; one per
               height h in MR, 2/3 MR, 1/3 MR, so that short row remainders waste little
  edge         a tile cut by the border of C: a microkernel into a scratch tile, then
  store_part   copies out the rows x cols that exist, so nothing outside C is touched
  blocked      the five loops around the microkernel, over blocks of the given sizes
  scratch      this thread's packing buffer: allocated on its first call, grown when a call
               needs more, reused by every later call (no allocation, no page faults) and freed
               when the thread exits (a pthread key per loaded copy of this code)
  gemm         the entry: rows in range, K == 0, the packing buffers (the thread's scratch, or
               a small stack buffer with small blocks where the heap has none to give)

`graphc_gemm_f32_full` (and f64) takes three more arguments:
  void* cache   null, or a buffer of the size kernels/ir.py's `packed_b_elements` gives that
                holds all of B packed, for products whose B stays the same over many calls (a
                loop's invariant weights): the first call to find it stale packs all of B into
                it, and every call whose key (B's address, K, N, strides) matches reads B's
                panels from it instead of packing its blocks. Its owner marks it stale (zeroes
                its first word) whenever B may have changed: the runtime, before each run of a
                loop.
  T* bias       null, or N contiguous elements added to every row of C after its sum
  i32 relu      1: C = relu(...) after that (NaN stays NaN, -0.0 becomes 0.0, as np.maximum)
The epilogue C = relu(A @ B (+ C) + bias) is applied where each tile's last block of k is
stored, while the tile is in registers: no second pass over C, and the same sums in the
same order as the product followed by a separate add and relu.

B of at most one vector of columns (N <= lanes: dense layers with few classes) goes to a second
copy of these stages built for tiles one vector wide and taller (`narrow_blocking`), which
waste fewer lanes on columns that do not exist; both share the thread's scratch.

Packing makes every microkernel load contiguous and aligned whatever the strides of A and B,
and padding makes partial panels plain full ones, so the microkernel has no tail logic.
"""
import contextlib
import ctypes
from dataclasses import dataclass

from llvmlite import ir

from ...errors import DTypeError
from ...kernels.ir import PACKED_B_EXTRA_BYTES, PACKED_B_PAD
from . import jit

I1, I32, I64 = ir.IntType(1), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()

_SCALARS = {"float32": (ir.FloatType(), 4, "f32"), "float64": (ir.DoubleType(), 8, "f64")}
DTYPES = tuple(_SCALARS)  # the Gemm statements this GEMM computes (lower.Slots.gemm_dtypes)

BUFFER_ALIGN = 64  # a cache line; also the widest vector's alignment
UNROLL = 4  # steps of k per iteration of the microkernel's loop (a power of two: depth & -UNROLL)

# A packed-B cache (the full entry's `cache`) starts with 8 words: its state, how many
# times it was packed, then the key of the copy it holds (B's address, K, N, B's strides, kc);
# the copy follows at the first aligned address after them
_CACHE_HEADER_BYTES = 64
_STALE, _PACKING, _READY = 0, 1, 2
assert _CACHE_HEADER_BYTES + BUFFER_ALIGN <= PACKED_B_EXTRA_BYTES


@dataclass(frozen=True)
class Blocking:
    """Register tile MR x NR and cache blocks: an MR x kc panel of A stays in L1 while the
    microkernel walks the kc x nc block of B held in L2; the mc x kc block of A sits in L3."""
    mr: int
    nr: int
    kc: int
    nc: int
    mc: int

    def __post_init__(self):
        if self.nc % self.nr or self.mc % self.mr or min(self.mr, self.nr, self.kc) < 1:
            raise ValueError(f"inconsistent blocking {self}")


def default_blocking(dtype, vector_bits):
    """Blocking for this CPU class (48 KiB L1d, 1-2 MiB L2 per core): tiles of 6 rows by
    two vectors of B where there are 16 vector registers (AVX2), four where there are 32
    (AVX-512: 24 accumulators either way, but 4 loads of B and 6 broadcasts of A per 24 FMAs
    rather than 2 and 12 for 12 rows by two vectors, which measured 6-11% slower on one core
    at 1024^3 and 2048^3). kc makes an A panel 9 KiB; kc x nc of B about 576 KiB."""
    itemsize = _SCALARS[dtype][1]
    lanes = vector_bits // (8 * itemsize)
    mr, vectors = 6, 4 if vector_bits >= 512 else 2
    kc = 1536 // itemsize
    return Blocking(mr=mr, nr=vectors * lanes, kc=kc, nc=384, mc=mr * (3072 // mr))


def narrow_blocking(dtype, vector_bits):
    """Blocking for products of at most one vector of columns (N <= lanes; W5's and W4's
    dense layers have 10): one vector of B per row of the tile, 16 rows under AVX-512
    (measured faster than 24 at 64 and 128 rows), else 12, so 10 columns fill 10/16 of each
    FMA instead of 10/32."""
    wide = default_blocking(dtype, vector_bits)
    lanes = vector_bits // (8 * _SCALARS[dtype][1])
    mr = 16 if vector_bits >= 512 else 2 * wide.mr
    return Blocking(mr=mr, nr=lanes, kc=wide.kc, nc=wide.nc, mc=mr * (3072 // mr))


def gemm_argtypes():
    """ctypes argument types of the generated function (pointers as c_void_p)."""
    i64, p = ctypes.c_int64, ctypes.c_void_p
    return [i64, i64, i64, p, i64, i64, p, i64, i64, p, i64, ctypes.c_int32, i64, i64]


def gemm_name(dtype, full=False):
    return f"graphc_gemm_{_SCALARS[dtype][2]}" + ("_full" if full else "")


def full_argtypes():
    """ctypes argument types of the full entry: cache, bias, relu after the others."""
    return gemm_argtypes() + [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]


# the entry's parameters (T* as an opaque pointer)
_ENTRY_ARGS = [(I64, "m"), (I64, "n"), (I64, "k"), (PTR, "a"), (I64, "rsa"), (I64, "csa"),
               (PTR, "b"), (I64, "rsb"), (I64, "csb"), (PTR, "c"), (I64, "rsc"),
               (I32, "accumulate"), (I64, "m_lo"), (I64, "m_hi")]
_FULL_ARGS = [(PTR, "cache"), (PTR, "bias"), (I32, "relu")]
# a register tile's: C (+)= panel_a @ panel_b, then the epilogue (bias: null or the tile's
# columns of it; relu), which the caller asks for with the last block of k alone
_TILE_ARGS = [(PTR, "panel_a"), (PTR, "panel_b"), (I64, "depth"), (PTR, "c"), (I64, "rsc"),
              (I1, "accumulate"), (PTR, "bias"), (I1, "relu")]


def declare_gemm(module, dtype, full=False):
    """The gemm function of `dtype` (`full`: the entry that takes a packed-B cache and the
    epilogue's bias and relu last) declared (not defined) in `module`."""
    if dtype not in _SCALARS:
        raise DTypeError(f"gemm supports float32 and float64, not {dtype!r}")
    name = gemm_name(dtype, full)
    if name in module.globals:
        return module.globals[name]
    args = [t for t, _ in _ENTRY_ARGS + (_FULL_ARGS if full else [])]
    return ir.Function(module, ir.FunctionType(VOID, args), name)


def define_gemm(module, dtype, vector_bits=None, blocking=None, narrow=None):
    """The gemm function of `dtype` in `module`, defined on first use. `vector_bits` (default:
    the host's), `blocking` (default: `default_blocking`) and `narrow`, the blocking of calls
    with N <= lanes (default: `narrow_blocking` where `blocking` is the default, else the
    same code as the others), exist for tests and tuning."""
    if dtype not in _SCALARS:
        raise DTypeError(f"gemm supports float32 and float64, not {dtype!r}")
    name = gemm_name(dtype)
    if name in module.globals:
        return module.globals[name]
    vector_bits = vector_bits or jit.vector_bits()
    if blocking is None:
        blocking = default_blocking(dtype, vector_bits)
        narrow = narrow or narrow_blocking(dtype, vector_bits)
    wide = _GemmBuilder(module, dtype, vector_bits, blocking)
    scratch = wide.scratch(f"{name}_scratch")
    narrow_fn = narrow and _GemmBuilder(module, dtype, vector_bits, narrow).define(
        f"{name}_narrow", scratch, internal=True)[1]
    if wide.blk.nr > PACKED_B_PAD:
        raise ValueError(f"NR={wide.blk.nr} is wider than a packed-B cache's padding")
    return wide.define(name, scratch, narrow_fn)[0]


# ---------------------------------------------------------------------------------------------

def _const(value):
    return ir.Constant(I64, value)


@contextlib.contextmanager
def _loop(b, start, stop, step, name, carried=None):
    """for (name = start; name < stop; name += step): yields the induction variable.
    `carried`: a list of values the loop carries from one iteration to the next; in the body
    it holds this iteration's, the body leaves the next one's in it, and after the loop it
    holds the values at the loop's exit."""
    carried = [] if carried is None else carried
    pre = b.block
    fn = pre.function
    cond = fn.append_basic_block(f"{name}.cond")
    body = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.done")
    b.branch(cond)
    b.position_at_end(cond)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    phis = [b.phi(value.type, name=f"{name}.carried") for value in carried]
    for phi, value in zip(phis, carried):
        phi.add_incoming(value, pre)
    b.cbranch(b.icmp_signed("<", i, stop, name=f"{name}.more"), body, done)
    b.position_at_end(body)
    carried[:] = phis
    yield i
    for phi, value in zip(phis, carried):
        phi.add_incoming(value, b.block)
    i.add_incoming(b.add(i, step, name=f"{name}.next"), b.block)
    b.branch(cond)
    b.position_at_end(done)
    carried[:] = phis


def _mask(indices):
    return ir.Constant(ir.VectorType(I32, len(indices)), indices)


def _concat(b, vectors, name):
    """One vector of the given ones (equal types, a power of two of them) side by side."""
    while len(vectors) > 1:
        n = vectors[0].type.count
        vectors = [b.shuffle_vector(x, y, _mask(list(range(2 * n))), name=name)
                   for x, y in zip(vectors[::2], vectors[1::2])]
    return vectors[0]


def _min(b, x, y, name):
    return b.select(b.icmp_signed("<", x, y), x, y, name=name)


def _round_up(b, x, multiple, name):
    return b.mul(b.sdiv(b.add(x, _const(multiple - 1)), _const(multiple)), _const(multiple),
                 name=name)


class _GemmBuilder:
    def __init__(self, module, dtype, vector_bits, blocking):
        self.module = module
        self.t, self.itemsize, _ = _SCALARS[dtype]
        self.lanes = vector_bits // (8 * self.itemsize)
        self.vec = ir.VectorType(self.t, self.lanes)
        self.blk = blocking
        if blocking.nr % self.lanes:
            raise ValueError(f"NR={blocking.nr} is not a multiple of {self.lanes} lanes")
        # fmuladd fuses where the CPU has FMA and stays a multiply-add (no libm call) where not
        suffix = f"v{self.lanes}f{8 * self.itemsize}"
        self.fmuladd = self._declare(f"llvm.fmuladd.{suffix}", self.vec, [self.vec] * 3)
        self.aligned_alloc = self._declare("aligned_alloc", PTR, [I64, I64])
        self.free = self._declare("free", VOID, [PTR])
        self.pthread_once = self._declare("pthread_once", I32, [PTR, PTR])
        self.key_create = self._declare("pthread_key_create", I32, [PTR, PTR])
        self.get_specific = self._declare("pthread_getspecific", PTR, [I32])
        self.set_specific = self._declare("pthread_setspecific", I32, [I32, PTR])
        self.memset = self._declare("llvm.memset.p0.i64", VOID,
                                    [PTR, ir.IntType(8), I64, I1])
        # (address, 1: for writing, 3: keep in all cache levels, 1: data)
        self.prefetch = self._declare("llvm.prefetch.p0", VOID, [PTR, I32, I32, I32])

    def _declare(self, name, ret, args):
        if name in self.module.globals:
            return self.module.globals[name]
        return ir.Function(self.module, ir.FunctionType(ret, args), name)

    def _function(self, name, args, internal=True):
        fn = ir.Function(self.module, ir.FunctionType(VOID, [t for t, _ in args]), name)
        for arg, (_, arg_name) in zip(fn.args, args):
            arg.name = arg_name
        fn.attributes.add("nounwind")
        if internal:
            fn.linkage = "internal"
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def _at(self, b, base, index, name):
        return b.gep(base, [index], inbounds=True, name=name, source_etype=self.t)

    def define(self, name, scratch, narrow=None, internal=False):
        """The entry `name` (internal: one that serves another's narrow calls), its packing
        buffers from `scratch`; calls with N <= lanes go to the entry `narrow` where given."""
        pack_a = self.pack(f"{name}_pack_a", self.blk.mr)
        pack_b = self.pack(f"{name}_pack_b", self.blk.nr)
        store_part = self.store_part(f"{name}_store_part")
        tiles = {}
        for height in self.heights():
            kernel = self.microkernel(f"{name}_microkernel{height}", height)
            tiles[height] = kernel, self.edge(f"{name}_edge{height}", kernel, height, store_part)
        blocked = self.blocked(f"{name}_blocked", pack_a, pack_b, tiles)
        full = self.entry(f"{name}_full", blocked, pack_b, scratch, narrow, internal, store_part)
        return self.plain(name, full, internal), full

    def plain(self, name, full, internal):
        """The entry without a packed-B cache or epilogue: the full one given none."""
        fn, b = self._function(name, _ENTRY_ARGS, internal=internal)
        b.call(full, list(fn.args) + [ir.Constant(PTR, None), ir.Constant(PTR, None),
                                      ir.Constant(I32, 0)])
        b.ret_void()
        return fn

    def heights(self):
        """Tile heights, tallest first: MR, and two thirds and one third of it, so that the
        last rows of a block (of a thread's share of C, say) waste few FMAs."""
        mr = self.blk.mr
        return sorted({mr, max(1, 2 * mr // 3), max(1, mr // 3)}, reverse=True)

    # -- packing --------------------------------------------------------------------------

    def pack(self, name, width):
        """`count` lanes x `depth` of a strided matrix -> panels of `width` lanes, k-major:
        panel[k*width + l]. A packs its rows (lanes) along k; B its columns along k.
        Lanes past `count` are zero, so the microkernel multiplies zeros, never garbage (which
        may be slow denormals); their results are never stored."""
        fn, b = self._function(name, [(PTR, "src"), (I64, "lane_stride"), (I64, "depth_stride"),
                                      (I64, "count"), (I64, "depth"), (PTR, "dst")])
        src, lane_stride, depth_stride, count, depth, dst = fn.args
        w = _const(width)
        with _loop(b, _const(0), count, w, "p") as p:
            panel = self._at(b, dst, b.mul(p, depth), "panel")
            src_p = self._at(b, src, b.mul(p, lane_stride), "src_p")
            valid = _min(b, w, b.sub(count, p), "valid")
            # the two usual layouts get vector code, masked loads reading only the lanes
            # (and k) that exist and zeroing the others: lanes contiguous (B row-major, A
            # transposed) copy a row of lanes per k; k contiguous (A row-major, B transposed)
            # transpose lanes x vector-length blocks. Anything else goes scalar.
            by_rows = b.icmp_signed("==", lane_stride, _const(1), name="by_rows")
            by_blocks = b.icmp_signed("==", depth_stride, _const(1), name="by_blocks")
            whole = b.icmp_signed("==", valid, w, name="whole")
            with b.if_else(by_rows) as (rows, other):
                with rows:  # whole panels without masks: as fast as plain copies get
                    with b.if_else(whole) as (plain, part):
                        with plain:
                            self._copy_rows(b, src_p, depth_stride, depth, panel, width, None)
                        with part:
                            self._copy_rows(b, src_p, depth_stride, depth, panel, width,
                                            self._below(b, width, valid, "row_mask"))
                with other:
                    with b.if_else(by_blocks) as (blocks, scalar):
                        with blocks:
                            with b.if_else(whole) as (plain, part):
                                with plain:
                                    self._pack_by_blocks(b, src_p, lane_stride, depth, panel,
                                                         width, None)
                                with part:
                                    self._pack_by_blocks(b, src_p, lane_stride, depth, panel,
                                                         width, valid)
                        with scalar:
                            self._pack_scalar(b, src_p, lane_stride, depth_stride, depth, panel,
                                              width, valid)
        b.ret_void()
        return fn

    def _copy_rows(self, b, src, depth_stride, depth, panel, width, mask):
        """A row of `width` contiguous lanes per k (the lanes of `mask` where given)."""
        row = ir.VectorType(self.t, width)
        with _loop(b, _const(0), depth, _const(1), "k") as k:
            from_k = self._at(b, src, b.mul(k, depth_stride), "from")
            x = (b.load(from_k, name="x", typ=row, align=self.itemsize) if mask is None else
                 self._masked_load(b, from_k, mask, "x"))
            b.store(x, self._at(b, panel, b.mul(k, _const(width)), "to"), align=self.itemsize)

    def _pack_scalar(self, b, src, lane_stride, depth_stride, depth, panel, width, valid):
        with b.if_then(b.icmp_signed("<", valid, _const(width), name="part")):
            panel_bytes = b.mul(b.mul(depth, _const(width)), _const(self.itemsize))
            b.call(self.memset, [panel, ir.Constant(ir.IntType(8), 0), panel_bytes,
                                 ir.Constant(I1, 0)])
        with _loop(b, _const(0), depth, _const(1), "k") as k:
            from_k = self._at(b, src, b.mul(k, depth_stride), "from_k")
            to_k = self._at(b, panel, b.mul(k, _const(width)), "to_k")
            with _loop(b, _const(0), valid, _const(1), "l") as lane:
                x = b.load(self._at(b, from_k, b.mul(lane, lane_stride), "from"), name="x",
                           typ=self.t)
                b.store(x, self._at(b, to_k, lane, "to"))

    def _below(self, b, count, bound, name):
        """<count x i1>: lane i is i < bound."""
        iota = ir.Constant(ir.VectorType(I64, count), list(range(count)))
        splat = b.insert_element(ir.Constant(ir.VectorType(I64, count), ir.Undefined), bound,
                                 ir.Constant(I32, 0))
        splat = b.shuffle_vector(splat, ir.Constant(ir.VectorType(I64, count), ir.Undefined),
                                 _mask([0] * count))
        return b.icmp_signed("<", iota, splat, name=name)

    def _masked_load(self, b, ptr, mask, name):
        """The lanes of `mask` read from ptr, the others zero (and not read)."""
        typ = ir.VectorType(self.t, mask.type.count)
        load = self._declare(f"llvm.masked.load.v{typ.count}{self.t.intrinsic_name}.p0", typ,
                             [PTR, I32, mask.type, typ])
        return b.call(load, [ptr, ir.Constant(I32, self.itemsize), mask,
                             ir.Constant(typ, None)], name=name)

    def _pack_by_blocks(self, b, src, lane_stride, depth, panel, width, valid):
        """Vectors along k (unit stride) of `width` lanes, `valid` of them read (all where
        None), transposed in
        groups of up to 4 lanes (small shuffles; wider groups measured slower); the last
        block of k reads and writes only the k that exist."""
        lanes = self.lanes
        end = b.mul(b.sdiv(depth, _const(lanes)), _const(lanes), name="blocks_end")
        with _loop(b, _const(0), end, _const(lanes), "k") as k:
            self._transpose_block(b, src, lane_stride, panel, width, valid, k, None, None)
        rest = b.sub(depth, end, name="rest")
        with b.if_then(b.icmp_signed(">", rest, _const(0))):
            self._transpose_block(b, src, lane_stride, panel, width, valid, end,
                                  self._below(b, lanes, rest, "k_mask"), rest)

    def _transpose_block(self, b, src, lane_stride, panel, width, valid, k, k_mask, rest):
        """Lanes [0, width) x k .. k + lanes into the panel; lanes past `valid` (None: none)
        become zeros, and only the k of `k_mask` (None: all), `rest` of them, are read and
        written."""
        lanes = self.lanes
        group = next(g for g in (4, 2, 1) if width % g == 0)
        if k_mask is None and valid is not None:
            k_mask = ir.Constant(ir.VectorType(I1, lanes), [1] * lanes)
        with _loop(b, _const(0), _const(width), _const(group), "g") as g:
            from_g = self._at(b, src, b.add(b.mul(g, lane_stride), k), "from_g")
            rows = []
            for r in range(group):
                from_r = self._at(b, from_g, b.mul(_const(r), lane_stride), f"from{r}")
                if k_mask is None:
                    rows.append(b.load(from_r, name=f"row{r}", typ=self.vec,
                                       align=self.itemsize))
                    continue
                mask = k_mask
                if valid is not None:
                    exists = b.icmp_signed("<", b.add(g, _const(r)), valid, name=f"exists{r}")
                    mask = b.select(exists, k_mask, ir.Constant(k_mask.type, None),
                                    name=f"mask{r}")
                rows.append(self._masked_load(b, from_r, mask, f"row{r}"))
            block = _concat(b, rows, "block")
            to_g = self._at(b, panel, b.add(b.mul(k, _const(width)), g), "to_g")
            for j in range(lanes):
                # lanes g..g+group at k + j: element j of each row
                piece = b.shuffle_vector(block, block, _mask([r * lanes + j
                                                              for r in range(group)]),
                                         name=f"k{j}")
                to = self._at(b, to_g, _const(j * width), "to")
                if rest is None:
                    b.store(piece, to, align=self.itemsize)
                else:
                    with b.if_then(b.icmp_signed("<", _const(j), rest)):
                        b.store(piece, to, align=self.itemsize)

    # -- the register tile ----------------------------------------------------------------

    def microkernel(self, name, mr):
        """C[0:mr, 0:NR] (+)= the first mr rows of panel_a @ panel_b over `depth` (>= 0)."""
        nr, lanes = self.blk.nr, self.lanes
        nv = nr // lanes
        fn, b = self._function(name, _TILE_ARGS)
        for arg in fn.args[:2] + fn.args[3:4]:
            arg.add_attribute("noalias")
        pa, pb, depth, c, rsc, accumulate, bias, relu = fn.args
        # C's rows are far apart in memory and the tile was last touched a block of k ago:
        # fetching its lines now hides their latency behind the FMAs of the loop
        for r in range(mr):
            row = self._at(b, c, b.mul(_const(r), rsc), f"c_fetch{r}")
            for at in (row, self._at(b, row, _const(nr - 1), f"c_fetch{r}_end")):
                b.call(self.prefetch, [at, ir.Constant(I32, 1), ir.Constant(I32, 3),
                                       ir.Constant(I32, 1)])
        # the accumulators, row by row: acc[r * nv + v] is row r's vector v
        acc = [ir.Constant(self.vec, None)] * (mr * nv)  # zeroinitializer
        # UNROLL steps of k per iteration while they last (the loop's own instructions would
        # otherwise take issue slots from the FMAs), then one step per iteration
        unrolled = b.and_(depth, _const(-UNROLL), name="unrolled")
        with _loop(b, _const(0), unrolled, _const(UNROLL), "k4", acc) as k:
            for step in range(UNROLL):
                acc[:] = self._step(b, pa, pb, b.add(k, _const(step)), acc, mr)
        with _loop(b, unrolled, depth, _const(1), "k", acc) as k:
            acc[:] = self._step(b, pa, pb, k, acc, mr)
        new = [acc[r * nv:(r + 1) * nv] for r in range(mr)]
        rows = [self._at(b, c, b.mul(_const(r), rsc), f"c{r}") for r in range(mr)]
        ptrs = [[self._at(b, rows[r], _const(v * lanes), f"c{r}_{v}") for v in range(nv)]
                for r in range(mr)]
        flat = [p for row in ptrs for p in row]
        out = self._when(b, accumulate, sum(new, []), lambda xs: [
            b.fadd(b.load(p, name="old", align=self.itemsize, typ=self.vec), x, name="sum")
            for p, x in zip(flat, xs)])
        # the epilogue: one vector of bias per column of vectors, the same for every row
        out = self._when(b, b.icmp_unsigned("!=", bias, ir.Constant(PTR, None)), out,
                         lambda xs: self._add_bias(b, xs, bias, nv))
        out = self._when(b, relu, out, lambda xs: [self._relu(b, x) for x in xs])
        for p, x in zip(flat, out):
            b.store(x, p, align=self.itemsize)
        b.ret_void()
        return fn

    def _add_bias(self, b, values, bias, nv):
        """values (row by row, nv vectors a row) + the vectors of bias along a row."""
        vectors = [b.load(self._at(b, bias, _const(v * self.lanes), "bias_at"), name="bias",
                          align=self.itemsize, typ=self.vec) for v in range(nv)]
        return [b.fadd(x, vectors[i % nv], name="biased") for i, x in enumerate(values)]

    def _relu(self, b, x):
        """np.maximum(x, 0): x where x > 0 or NaN, else +0.0 (-0.0 included)."""
        zero = ir.Constant(x.type, None)
        return b.select(b.fcmp_unordered(">", x, zero), x, zero, name="relu")

    @staticmethod
    def _when(b, cond, values, transform):
        """transform(values) where cond holds, else values (a branch: `transform` may read
        memory that exists only then)."""
        before = b.block
        with b.if_then(cond):
            changed = transform(values)
            after = b.block
        out = []
        for x, y in zip(values, changed):
            phi = b.phi(x.type, name="maybe")
            phi.add_incoming(x, before)
            phi.add_incoming(y, after)
            out.append(phi)
        return out

    def _step(self, b, pa, pb, k, acc, mr):
        """The accumulators (flat, row by row) after step k: each row's broadcast element of
        A times B's row at k."""
        nr, lanes = self.blk.nr, self.lanes
        nv = nr // lanes
        b_k = self._at(b, pb, b.mul(k, _const(nr)), "b_k")
        bvec = [b.load(self._at(b, b_k, _const(v * lanes), f"b_ptr{v}"), name=f"b{v}",
                       align=lanes * self.itemsize, typ=self.vec) for v in range(nv)]
        a_k = self._at(b, pa, b.mul(k, _const(self.blk.mr)), "a_k")
        new = []
        for r in range(mr):
            a = b.load(self._at(b, a_k, _const(r), f"a_ptr{r}"), name=f"a{r}", typ=self.t)
            splat = self._splat(b, a, f"a{r}_splat")
            new += [b.call(self.fmuladd, [splat, x, acc[r * nv + v]], name=f"acc{r}_{v}")
                    for v, x in enumerate(bvec)]
        return new

    def _splat(self, b, x, name):
        one = b.insert_element(ir.Constant(self.vec, ir.Undefined), x, ir.Constant(I32, 0),
                               name=f"{name}.lane0")
        return b.shuffle_vector(one, ir.Constant(self.vec, ir.Undefined),
                                ir.Constant(ir.VectorType(I32, self.lanes), [0] * self.lanes),
                                name=name)

    def edge(self, name, microkernel, mr, store_part):
        """A tile of rows x cols < mr x NR: computed whole into scratch, stored in part."""
        nr = self.blk.nr
        fn, b = self._function(name, _TILE_ARGS + [(I64, "rows"), (I64, "cols")])
        pa, pb, depth, c, rsc, accumulate, bias, relu, rows, cols = fn.args
        tile = b.alloca(ir.ArrayType(self.t, mr * nr), name="tile")
        tile.align = BUFFER_ALIGN
        b.call(microkernel, [pa, pb, depth, tile, _const(nr), ir.Constant(I1, 0),
                             ir.Constant(PTR, None), ir.Constant(I1, 0)])
        b.call(store_part, [tile, _const(nr), c, rsc, accumulate, rows, cols, bias, relu])
        b.ret_void()
        return fn

    def store_part(self, name):
        """C[0:rows, 0:cols] (+)= tile[0:rows, 0:cols] (tile rows `rst` apart), then the
        epilogue (bias: null or cols elements; relu). One copy for all edges, never inlined:
        it runs once per edge tile, and compiling it costs time. (The tile may be C itself,
        not accumulating: the epilogue alone.)"""
        fn, b = self._function(name, [(PTR, "tile"), (I64, "rst"), (PTR, "c"), (I64, "rsc"),
                                      (I1, "accumulate"), (I64, "rows"), (I64, "cols"),
                                      (PTR, "bias"), (I1, "relu")])
        fn.attributes.add("noinline")
        tile, rst, c, rsc, accumulate, rows, cols, bias, relu = fn.args
        have_bias = b.icmp_unsigned("!=", bias, ir.Constant(PTR, None), name="have_bias")
        with _loop(b, _const(0), rows, _const(1), "r") as r:
            c_r = self._at(b, c, b.mul(r, rsc), "c_r")
            tile_r = self._at(b, tile, b.mul(r, rst), "tile_r")
            with _loop(b, _const(0), cols, _const(1), "j") as j:
                to = self._at(b, c_r, j, "to")
                x = b.load(self._at(b, tile_r, j, "from"), name="x", typ=self.t)
                x, = self._when(b, accumulate, [x], lambda xs: [
                    b.fadd(b.load(to, name="old", typ=self.t), xs[0], name="sum")])
                x, = self._when(b, have_bias, [x], lambda xs: [
                    b.fadd(xs[0], b.load(self._at(b, bias, j, "bias_at"), typ=self.t),
                           name="biased")])
                b.store(b.select(relu, self._relu(b, x), x, name="out"), to)
        b.ret_void()
        return fn

    # -- the loops around the microkernel ------------------------------------------------

    def blocked(self, name, pack_a, pack_b, tiles):
        """Rows [lo, hi) of C over blocks kc, nc, mc (mc, nc multiples of MR, NR) with packing
        buffers buf_a (mc x kc) and buf_b (kc x nc), both aligned."""
        mr, nr = self.blk.mr, self.blk.nr
        fn, b = self._function(name, [
            (I64, "lo"), (I64, "hi"), (I64, "n"), (I64, "k"),
            (PTR, "a"), (I64, "rsa"), (I64, "csa"), (PTR, "b"), (I64, "rsb"), (I64, "csb"),
            (PTR, "c"), (I64, "rsc"), (I1, "accumulate"),
            (PTR, "buf_a"), (PTR, "buf_b"), (I64, "kc"), (I64, "nc"), (I64, "mc"),
            (PTR, "packed"), (I64, "packed_n"), (I64, "first"), (PTR, "bias"), (I1, "relu")])
        (lo, hi, n, k, a, rsa, csa, src_b, rsb, csb, c, rsc, accumulate,
         buf_a, buf_b, kc_blk, nc_blk, mc_blk, packed, packed_n, first, bias, relu) = fn.args
        null = ir.Constant(PTR, None)
        have_packed = b.icmp_unsigned("!=", packed, null, name="have_packed")
        have_bias = b.icmp_unsigned("!=", bias, null, name="have_bias")
        with _loop(b, lo, hi, mc_blk, "i0") as i0:
            mc = _min(b, mc_blk, b.sub(hi, i0), "mc")
            with _loop(b, _const(0), k, kc_blk, "p0") as p0:
                kc = _min(b, kc_blk, b.sub(k, p0), "kc")
                # after the first block of k, C holds a partial sum to add to
                add = b.or_(accumulate, b.icmp_signed(">", p0, _const(0)), name="add")
                # the epilogue goes with the last block of k, once C holds the whole sum
                last = b.icmp_signed(">=", b.add(p0, kc), k, name="last")
                bias_now = b.and_(last, have_bias, name="bias_now")
                relu_now = b.and_(last, relu, name="relu_now")
                a_blk = self._at(b, a, b.add(b.mul(i0, rsa), b.mul(p0, csa)), "a_blk")
                b.call(pack_a, [a_blk, rsa, csa, mc, kc, buf_a])
                with _loop(b, _const(0), n, nc_blk, "j0") as j0:
                    nc = _min(b, nc_blk, b.sub(n, j0), "nc")
                    b_blk = self._at(b, src_b, b.add(b.mul(p0, rsb), b.mul(j0, csb)), "b_blk")
                    with b.if_then(b.not_(have_packed)):
                        b.call(pack_b, [b_blk, csb, rsb, nc, kc, buf_b])
                    # a packed copy of all of B: block p0 of k at p0 * packed_n, a column's
                    # panel at column * kc within it (no inbounds: packed may be null)
                    at = b.add(b.mul(p0, packed_n), b.mul(b.add(first, j0), kc), name="at")
                    in_copy = b.gep(packed, [at], source_etype=self.t, name="in_copy")
                    panels_b = b.select(have_packed, in_copy, buf_b, name="panels_b")
                    c_blk = self._at(b, c, b.add(b.mul(i0, rsc), j0), "c_blk")
                    with _loop(b, _const(0), mc, _const(mr), "ir") as i:
                        rows = _min(b, _const(mr), b.sub(mc, i), "rows")
                        panel_a = self._at(b, buf_a, b.mul(i, kc), "panel_a")
                        c_row = self._at(b, c_blk, b.mul(i, rsc), "c_row")
                        # the shortest tile that covers the rows left
                        heights = self.heights()
                        height = _const(heights[0])
                        for h in heights[1:]:
                            height = b.select(b.icmp_signed("<=", rows, _const(h)), _const(h),
                                              height, name="height")
                        with _loop(b, _const(0), nc, _const(nr), "jr") as j:
                            cols = _min(b, _const(nr), b.sub(nc, j), "cols")
                            panel_b = self._at(b, panels_b, b.mul(j, kc), "panel_b")
                            c_tile = self._at(b, c_row, j, "c_tile")
                            # (no inbounds: bias may be null)
                            bias_at = b.gep(bias, [b.add(j0, j)], source_etype=self.t)
                            bias_tile = b.select(bias_now, bias_at, null, name="bias_tile")
                            epilogue = [bias_tile, relu_now]
                            exact = b.and_(b.icmp_signed("==", rows, height),
                                           b.icmp_signed("==", cols, _const(nr)), name="exact")
                            for h, (kernel, edge) in tiles.items():
                                this = b.icmp_signed("==", height, _const(h), name=f"height{h}")
                                with b.if_then(this):
                                    with b.if_else(exact) as (full, part):
                                        with full:
                                            b.call(kernel, [panel_a, panel_b, kc, c_tile, rsc,
                                                            add, *epilogue])
                                        with part:
                                            b.call(edge, [panel_a, panel_b, kc, c_tile, rsc,
                                                          add, *epilogue, rows, cols])
        b.ret_void()
        return fn

    def _global(self, name, typ):
        var = ir.GlobalVariable(self.module, typ, name)
        var.linkage = "internal"
        var.initializer = ir.Constant(typ, 0)  # 0 is PTHREAD_ONCE_INIT too
        return var

    def scratch(self, name):
        """`ptr scratch(i64 bytes)`: this thread's buffer of at least `bytes` (a multiple of
        BUFFER_ALIGN), aligned, or null where the heap (or a pthread key) has none to give.
        A block starts with one line that holds its capacity; the key's destructor frees it."""
        once, key, have_key = (self._global(f"{name}_{x}", I32) for x in ("once", "key", "ok"))
        make_key, b = self._function(f"{name}_make_key", [])
        made = b.call(self.key_create, [key, self.free], name="made")
        b.store(b.zext(b.icmp_signed("==", made, ir.Constant(I32, 0)), I32), have_key)
        b.ret_void()

        fn = ir.Function(self.module, ir.FunctionType(PTR, [I64]), name)
        fn.linkage = "internal"
        fn.args[0].name = "bytes"
        bytes_ = fn.args[0]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.call(self.pthread_once, [once, make_key])
        with b.if_then(b.icmp_signed("==", b.load(have_key, name="have_key"),
                                     ir.Constant(I32, 0))):
            b.ret(ir.Constant(PTR, None))
        key_value = b.load(key, name="key")
        block = b.call(self.get_specific, [key_value], name="block")
        with b.if_then(b.icmp_unsigned("!=", block, ir.Constant(PTR, None))):
            capacity = b.load(block, name="capacity", typ=I64)
            with b.if_then(b.icmp_signed(">=", capacity, bytes_, name="fits")):
                b.ret(b.gep(block, [_const(BUFFER_ALIGN)], source_etype=ir.IntType(8),
                            name="buffer"))
        b.call(self.free, [block])  # free(NULL) is a no-op
        grown = b.call(self.aligned_alloc, [_const(BUFFER_ALIGN),
                                            b.add(bytes_, _const(BUFFER_ALIGN))], name="grown")
        b.call(self.set_specific, [key_value, grown])
        with b.if_then(b.icmp_unsigned("==", grown, ir.Constant(PTR, None))):
            b.ret(ir.Constant(PTR, None))
        b.store(bytes_, grown)
        b.ret(b.gep(grown, [_const(BUFFER_ALIGN)], source_etype=ir.IntType(8), name="buffer"))
        return fn

    def _share(self, b, by_columns, m, n, lo, hi, src_b, csb, c):
        """(lo, hi, n, B, C, first column) of the rows and columns this call computes: rows
        [lo, hi) of all columns, or (by_columns, lo < hi) all rows of the columns
        [n*lo/m, n*hi/m), cut at whole vectors (the last share to n)."""
        pre = b.block
        with b.if_then(by_columns):
            def column(x, name):
                at = b.sdiv(b.add(b.sdiv(b.mul(n, x), m), _const(self.lanes // 2)),
                            _const(self.lanes))
                at = _min(b, b.mul(at, _const(self.lanes)), n, name)
                return b.select(b.icmp_signed(">=", x, m), n, at, name=name)
            first, last = column(lo, "first_column"), column(hi, "last_column")
            values = (_const(0), m, b.sub(last, first), self._at(b, src_b, b.mul(first, csb), "b_share"),
                      self._at(b, c, first, "c_share"), first)
            cols = b.block
        phis = []
        for by_row, by_column, name in zip((lo, hi, n, src_b, c, _const(0)), values,
                                           ("lo", "hi", "n", "b", "c", "first")):
            phi = b.phi(by_row.type, name=f"share_{name}")
            phi.add_incoming(by_row, pre)
            phi.add_incoming(by_column, cols)
            phis.append(phi)
        return phis

    def entry(self, name, blocked, pack_b, scratch, narrow, internal, store_part):
        mr, nr, kc_max, nc_max, mc_max = (self.blk.mr, self.blk.nr, self.blk.kc, self.blk.nc,
                                          self.blk.mc)
        fn, b = self._function(name, _ENTRY_ARGS + _FULL_ARGS, internal=internal)
        (m, n, k, a, rsa, csa, src_b, rsb, csb, c, rsc, accumulate, m_lo, m_hi,
         cache, bias, relu) = fn.args
        null = ir.Constant(PTR, None)
        if narrow is not None:  # (its panels are narrower than a cache's)
            with b.if_then(b.icmp_signed("<=", n, _const(self.lanes), name="narrow")):
                b.call(narrow, list(fn.args[:len(_ENTRY_ARGS)]) + [null, bias, relu])
                b.ret_void()
        whole_b = (src_b, rsb, csb, k, n)
        # the fallback when the heap has nothing to give: panels of one tile on the stack
        small_kc = 64
        stack_a = b.alloca(ir.ArrayType(self.t, mr * small_kc), name="stack_a")
        stack_b = b.alloca(ir.ArrayType(self.t, small_kc * nr), name="stack_b")
        stack_a.align = stack_b.align = BUFFER_ALIGN
        lo = b.select(b.icmp_signed(">", m_lo, _const(0)), m_lo, _const(0), name="lo")
        hi = _min(b, m_hi, m, "hi")
        # (a share of a few columns would waste most of each tile's width: W5's filter gradient
        # of 9 x 32 halves measured slower than its shares of 4 and 5 rows)
        wide = b.and_(b.icmp_signed("<", m, n), b.icmp_signed(">=", n, _const(4 * nr)))
        by_columns = b.and_(wide, b.icmp_signed("<", lo, hi), name="by_columns")  # 0 < m
        lo, hi, n, src_b, c, first = self._share(b, by_columns, m, n, lo, hi, src_b, csb, c)
        have_bias = b.icmp_unsigned("!=", bias, null, name="have_bias")
        bias = b.select(have_bias, b.gep(bias, [first], source_etype=self.t), null, name="bias")
        relu = b.icmp_signed("!=", relu, ir.Constant(I32, 0), name="relu")
        add = b.icmp_signed("!=", accumulate, ir.Constant(I32, 0), name="add")
        nothing = b.or_(b.icmp_signed(">=", lo, hi), b.icmp_signed("<=", n, _const(0)))
        with b.if_then(nothing):
            b.ret_void()
        with b.if_then(b.icmp_signed("<=", k, _const(0), name="no_k")):
            with b.if_then(b.not_(add)):
                zero = ir.Constant(self.t, 0)
                with _loop(b, lo, hi, _const(1), "i") as i:
                    c_i = self._at(b, c, b.mul(i, rsc), "c_i")
                    with _loop(b, _const(0), n, _const(1), "j") as j:
                        b.store(zero, self._at(b, c_i, j, "to"))
            with b.if_then(b.or_(have_bias, relu)):  # the epilogue on C as it stands
                c_lo = self._at(b, c, b.mul(lo, rsc), "c_lo")
                b.call(store_part, [c_lo, rsc, c_lo, rsc, ir.Constant(I1, 0), b.sub(hi, lo), n,
                                    bias, relu])
            b.ret_void()

        # buffers no larger than the problem needs
        kc = _min(b, k, _const(kc_max), "kc")
        nc = _round_up(b, _min(b, n, _const(nc_max), "nc_used"), nr, "nc")
        mc = _round_up(b, _min(b, b.sub(hi, lo), _const(mc_max), "mc_used"), mr, "mc")
        bytes_a = _round_up(b, b.mul(b.mul(mc, kc), _const(self.itemsize)), BUFFER_ALIGN,
                            "bytes_a")
        bytes_b = _round_up(b, b.mul(b.mul(kc, nc), _const(self.itemsize)), BUFFER_ALIGN,
                            "bytes_b")
        heap_a = b.call(scratch, [b.add(bytes_a, bytes_b)], name="heap_a")
        heap_b = b.gep(heap_a, [bytes_a], source_etype=ir.IntType(8), name="heap_b")
        have_heap = b.icmp_unsigned("!=", heap_a, ir.Constant(PTR, None), name="have_heap")
        args = [lo, hi, n, k, a, rsa, csa, src_b, rsb, csb, c, rsc, add]
        packed_n = _round_up(b, whole_b[4], nr, "packed_n")
        with b.if_else(have_heap) as (heap, stack):
            with heap:
                packed = self.packed_b(b, cache, pack_b, whole_b, kc, packed_n, first)
                b.call(blocked, args + [heap_a, heap_b, kc, nc, mc, packed, packed_n, first,
                                        bias, relu])
            with stack:
                b.call(blocked, args + [stack_a, stack_b, _const(small_kc), _const(nr),
                                        _const(mr), null, packed_n, first, bias, relu])
        b.ret_void()
        return fn

    def packed_b(self, b, cache, pack_b, whole_b, kc, packed_n, first):
        """All of B packed into `cache` (see PACKED_B_HEADER), or null: no cache, another
        call packing it now, or a cache of another B or blocking. The first call to find the
        cache stale packs it (the others of the moment pack their own blocks meanwhile)."""
        null = ir.Constant(PTR, None)
        src_b, rsb, csb, k, n = whole_b
        key = [b.ptrtoint(src_b, I64), k, n, rsb, csb, kc]
        result = b.alloca(PTR, name="packed.addr")
        b.store(null, result)
        with b.if_then(b.icmp_unsigned("!=", cache, null, name="have_cache")):
            word = [b.gep(cache, [_const(i)], source_etype=I64) for i in range(2 + len(key))]
            data = b.inttoptr(_round_up(b, b.add(b.ptrtoint(cache, I64),
                                                 _const(_CACHE_HEADER_BYTES)),
                                        BUFFER_ALIGN, "data_at"), PTR, name="data")
            state = b.load_atomic(word[0], "acquire", 8, name="state", typ=I64)
            with b.if_then(b.icmp_signed("==", state, _const(_STALE))):
                claim = b.cmpxchg(word[0], _const(_STALE), _const(_PACKING), "acq_rel",
                                  "monotonic", name="claim")
                with b.if_then(b.extract_value(claim, 1, name="claimed")):
                    with _loop(b, _const(0), k, kc, "p0") as p0:
                        depth = _min(b, kc, b.sub(k, p0), "depth")
                        b.call(pack_b, [self._at(b, src_b, b.mul(p0, rsb), "b_blk"), csb, rsb,
                                        n, depth, self._at(b, data, b.mul(p0, packed_n), "to")])
                    for i, value in enumerate(key):
                        b.store(value, word[2 + i])
                    b.store(b.add(b.load(word[1], typ=I64), _const(1)), word[1])
                    b.atomic_rmw("xchg", word[0], _const(_READY), "release")
            ready = b.icmp_signed("==", b.load_atomic(word[0], "acquire", 8, typ=I64),
                                _const(_READY))
            for i, value in enumerate(key):
                same = b.icmp_signed("==", b.load(word[2 + i], typ=I64), value)
                ready = b.and_(ready, same)
            # a share's panels start at a multiple of NR columns of the copy
            aligned = b.icmp_signed("==", b.srem(first, _const(self.blk.nr)), _const(0))
            with b.if_then(b.and_(ready, aligned, name="use_cache")):
                b.store(data, result)
        return b.load(result, name="packed")
