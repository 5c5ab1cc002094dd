"""The generated GEMM against numpy in float64: shapes, strides, accumulation, row ranges,
vector widths and blockings, and that nothing outside A, B and C is touched."""
import ctypes
import functools
import mmap
import resource
import threading

import numpy as np
import pytest
from llvmlite import ir

from graphc.codegen.llvm import gemm, jit
from graphc.errors import DTypeError

EPS = {"float32": np.finfo(np.float32).eps, "float64": np.finfo(np.float64).eps}

# odd sizes; whole tiles; row remainders that fit each tile height (8 and 4 rows under MR = 12,
# 4 and 2 under MR = 6) exactly and not; more than one block of k, n and rows
SHAPES = [(1, 1, 1), (7, 5, 3), (13, 33, 17), (12, 32, 8), (24, 64, 1), (20, 64, 9),
          (10, 48, 33), (8, 16, 5), (1023, 17, 129), (1, 1000, 7), (64, 1, 64), (25, 65, 385),
          (5, 400, 6), (3, 7, 1100), (3100, 10, 70), (37, 16, 20), (37, 17, 20)]

# (vector bits, blocking) of the builds tested besides the host's defaults: narrower vector
# registers; blocks small enough that small matrices cross every block boundary; and the
# one-tile blocks that the stack fallback uses where the heap gives no buffers
BLOCKINGS = {
    "small": {"float32": gemm.Blocking(mr=12, nr=32, kc=5, nc=64, mc=24),
              "float64": gemm.Blocking(mr=12, nr=16, kc=7, nc=32, mc=36)},
    "tile": {"float32": gemm.Blocking(mr=12, nr=32, kc=64, nc=32, mc=12),
             "float64": gemm.Blocking(mr=12, nr=16, kc=64, nc=16, mc=12)},
}
# the tiles of B one vector wide (N <= lanes) in blocks as small: "narrow" replaces the
# default narrow blocking, the wide one stays the default
NARROW = {"float32": gemm.Blocking(mr=16, nr=16, kc=5, nc=32, mc=32),
          "float64": gemm.Blocking(mr=16, nr=8, kc=7, nc=16, mc=48)}
VARIANTS = [(None, None), (256, None), (128, None), (None, "small"), (None, "tile"),
            (None, "narrow")]


@functools.lru_cache(maxsize=None)
def compiled(dtype, vector_bits=None, blocking=None):
    module = ir.Module(name="test_gemm")
    module.triple = jit.host()[0]
    wide = BLOCKINGS[blocking][dtype] if blocking in BLOCKINGS else None
    gemm.define_gemm(module, dtype, vector_bits=vector_bits, blocking=wide,
                     narrow=NARROW[dtype] if blocking == "narrow" else None)
    library = jit.load_object(jit.compile_ir(str(module)))
    fn = library.function(gemm.gemm_name(dtype), None, *gemm.gemm_argtypes())
    return library, fn


def call(a, b, c, accumulate=0, rows=None, **build):
    """The generated gemm on numpy arrays of any strides (in elements, C rows contiguous)."""
    _, fn = compiled(c.dtype.name, **build)
    m, k = a.shape
    n = b.shape[1]
    lo, hi = rows or (0, m)
    size = c.itemsize
    assert c.strides[1] == size
    fn(m, n, k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
       b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
       c.ctypes.data, c.strides[0] // size, accumulate, lo, hi)


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def check(c, a, b, c0=None):
    """c == c0 + a @ b within the rounding bound of a k-term dot product (gamma_{k+1})."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = a64 @ b64
    scale = np.abs(a64) @ np.abs(b64)
    if c0 is not None:
        expected = expected + c0
        scale = scale + np.abs(c0)
    bound = (a.shape[1] + 2) * EPS[c.dtype.name] * scale
    err = np.abs(c.astype(np.float64) - expected)
    assert np.all(err <= bound), f"max excess error {np.max(err - bound)}"


@pytest.mark.parametrize("vector_bits,blocking", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_matches_numpy(m, n, k, dtype, vector_bits, blocking):
    rng = np.random.default_rng([m, n, k])
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    c = np.full((m, n), np.nan, dtype)
    call(a, b, c, vector_bits=vector_bits, blocking=blocking)
    check(c, a, b)


@pytest.mark.parametrize("vector_bits,blocking", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exact_on_small_integers(dtype, vector_bits, blocking):
    # products and sums of small integers are exact: any lost, doubled or misplaced term shows
    rng = np.random.default_rng(7)
    m, n, k = 37, 71, 613
    a = rng.integers(-4, 5, (m, k)).astype(dtype)
    b = rng.integers(-4, 5, (k, n)).astype(dtype)
    c = np.empty((m, n), dtype)
    call(a, b, c, vector_bits=vector_bits, blocking=blocking)
    np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))


@pytest.mark.parametrize("vector_bits,blocking", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["a_t", "b_t", "both_t", "every_other", "reversed"])
def test_strided_operands(layout, dtype, vector_bits, blocking):
    rng = np.random.default_rng(3)
    m, n, k = 45, 77, 130
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    if layout in ("a_t", "both_t"):
        a = np.ascontiguousarray(a.T).T  # csa = m, rsa = 1
    if layout in ("b_t", "both_t"):
        b = np.ascontiguousarray(b.T).T
    if layout == "every_other":
        a = np.repeat(np.repeat(a, 2, 0), 3, 1)[::2, ::3]
        b = np.repeat(np.repeat(b, 3, 0), 2, 1)[::3, ::2]
    wide = np.full((m, n + 9), np.nan, dtype)  # rsc = n + 9
    c = wide[:, 4:4 + n]
    if layout == "reversed":  # negative strides everywhere, C's rows included
        a, b, c = a[::-1, ::-1], b[::-1, ::-1], c[::-1]
    call(a, b, c, vector_bits=vector_bits, blocking=blocking)
    check(c, a, b)
    assert np.isnan(wide[:, :4]).all() and np.isnan(wide[:, 4 + n:]).all()


@pytest.mark.parametrize("vector_bits,blocking", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(7, 5, 3), (50, 90, 700), (12, 32, 16)])
def test_accumulate(m, n, k, dtype, vector_bits, blocking):
    rng = np.random.default_rng([m, n, k, 1])
    a, b = random(rng, (m, k), dtype), random(rng, (k, n), dtype)
    c0 = random(rng, (m, n), dtype)
    c = c0.copy()
    call(a, b, c, accumulate=1, vector_bits=vector_bits, blocking=blocking)
    check(c, a, b, c0.astype(np.float64))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_empty_k_zeroes_or_keeps_c(dtype):
    a, b = np.empty((40, 0), dtype), np.empty((0, 9), dtype)
    c = np.full((40, 9), 3.5, dtype)
    call(a, b, c, accumulate=1)
    assert (c == 3.5).all()
    call(a, b, c, accumulate=0)
    assert (c == 0).all()
    c[:] = 3.5
    call(a, b, c, rows=(2, 5))
    assert (c[2:5] == 0).all() and (c[:2] == 3.5).all() and (c[5:] == 3.5).all()
    wide = np.full((9, 300), 3.5, dtype)  # shares of far fewer rows than columns are columns
    call(a[:9], b.reshape(0, 300), wide, rows=(0, 4))  # 300 * 4/9 to whole vectors
    lanes = jit.vector_bits() // (8 * c.itemsize)
    split = (300 * 4 // 9 + lanes // 2) // lanes * lanes
    assert (wide[:, :split] == 0).all() and (wide[:, split:] == 3.5).all()


def full_call(a, b, c, bias, relu, accumulate=0, shares=1, **build):
    """The full entry with an epilogue (bias: an array or None) in `shares` calls."""
    library, _ = compiled(c.dtype.name, **build)
    fn = library.function(gemm.gemm_name(c.dtype.name, full=True), None, *gemm.full_argtypes())
    m, k = a.shape
    size = c.itemsize
    for part in range(shares):
        fn(m, b.shape[1], k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
           b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
           c.ctypes.data, c.strides[0] // size, accumulate, m * part // shares,
           m * (part + 1) // shares, None, None if bias is None else bias.ctypes.data, relu)


def with_specials(rng, x, count):
    """x with `count` of its elements (where it has any) set to inf, -inf, NaN and -0.0."""
    flat = x.reshape(-1)
    if flat.size:
        at = rng.integers(0, flat.size, count)
        flat[at] = rng.choice(np.array([np.inf, -np.inf, np.nan, -0.0], x.dtype), count)
    return x


@pytest.mark.parametrize("vector_bits,blocking", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k,shares", [(1, 1, 1, 1), (5, 17, 5, 2), (37, 71, 613, 3),
                                          (24, 64, 9, 2), (9, 300, 40, 3), (130, 8, 30, 2),
                                          (17, 33, 0, 2), (1023, 17, 129, 2)])
@pytest.mark.parametrize("bias,relu", [(True, 1), (True, 0), (False, 1)])
def test_fused_epilogue_is_the_product_then_bias_then_relu(m, n, k, shares, dtype, vector_bits,
                                                           blocking, bias, relu):
    # the same sums in the same order as the plain product: the epilogue's result is exactly
    # numpy's add and maximum on it, infinities, NaN and -0.0 included
    rng = np.random.default_rng([m, n, k, shares])
    a = with_specials(rng, random(rng, (m, k), dtype), 3)
    b = with_specials(rng, random(rng, (k, n), dtype), 3)
    b = np.ascontiguousarray(b.T).T if shares == 3 else b  # transposed B too
    bias_v = with_specials(rng, random(rng, (n,), dtype), 2) if bias else None
    for accumulate in (0, 1):
        c0 = with_specials(rng, random(rng, (m, n), dtype), 2)
        product = c0.copy()
        call(a, b, product, accumulate=accumulate, vector_bits=vector_bits, blocking=blocking)
        with np.errstate(invalid="ignore"):  # inf + -inf
            expected = product + bias_v if bias else product
        expected = np.maximum(expected, 0) if relu else expected
        wide = np.full((m, n + 3), -7.0, dtype)  # rsc = n + 3: nothing past C's columns
        c = wide[:, :n]
        c[:] = c0
        full_call(a, b, c, bias_v, relu, accumulate=accumulate, shares=shares,
                  vector_bits=vector_bits, blocking=blocking)
        np.testing.assert_array_equal(c, expected)
        assert not np.signbit(c[c == 0]).any() or not relu  # relu(-0.0) is +0.0
        assert (wide[:, n:] == -7.0).all()


@pytest.mark.parametrize("m,n,rows", [(0, 5, None), (5, 0, None), (9, 9, (4, 4)), (9, 9, (6, 2))])
def test_nothing_to_do_writes_nothing(m, n, rows):
    rng = np.random.default_rng(0)
    a, b = random(rng, (m, 8), "float32"), random(rng, (8, n), "float32")
    guard = np.full((m + 2, n + 2), -7.0, np.float32)
    call(a, b, guard[1:1 + m, 1:1 + n], rows=rows)
    assert (guard == -7.0).all()


@pytest.mark.parametrize("blocking", [None, "small"])
@pytest.mark.parametrize("rows", [(0, 1), (3, 17), (12, 24), (30, 61), (0, 61)])
def test_row_range_writes_only_its_rows(rows, blocking):
    rng = np.random.default_rng(list(rows))
    m, n, k = 61, 45, 77
    a, b = random(rng, (m, k), "float32"), random(rng, (k, n), "float32")
    c = np.full((m, n), -7.0, np.float32)
    call(a, b, c, rows=rows, blocking=blocking)
    lo, hi = rows
    check(c[lo:hi], a[lo:hi], b)
    assert (c[:lo] == -7.0).all() and (c[hi:] == -7.0).all()


def test_guard_around_c_survives():
    rng = np.random.default_rng(11)
    for m, n, k in SHAPES:
        a, b = random(rng, (m, k), "float32"), random(rng, (k, n), "float32")
        sentinel = np.float32(-1234.5)
        big = np.full((m + 4, n + 37), sentinel, np.float32)
        c = big[2:2 + m, 3:3 + n]
        for accumulate in (0, 1):
            call(a, b, c, accumulate=accumulate)
        check(c, a, b, (a.astype(np.float64) @ b.astype(np.float64)))
        mask = np.ones(big.shape, bool)
        mask[2:2 + m, 3:3 + n] = False
        assert (big[mask] == sentinel).all(), (m, n, k)


class _Guarded:
    """Arrays placed against inaccessible pages: reading past either end of one faults."""

    def __init__(self):
        self._keep = []
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def array(self, values, at_end):
        page = mmap.PAGESIZE
        body = -(-values.nbytes // page) * page
        region = mmap.mmap(-1, body + 2 * page)
        base = ctypes.addressof(ctypes.c_char.from_buffer(region))
        for start in (base, base + page + body):
            assert self._libc.mprotect(start, page, 0) == 0  # PROT_NONE
        offset = page + (body - values.nbytes if at_end else 0)
        out = np.frombuffer(region, values.dtype, values.size, offset).reshape(values.shape)
        out[...] = values
        self._keep.append(region)
        return out


@pytest.mark.parametrize("at_end", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (7, 5, 3), (13, 33, 17), (30, 100, 390)])
def test_reads_only_inside_a_and_b(m, n, k, dtype, at_end):
    rng = np.random.default_rng([m, n, k])
    guarded = _Guarded()
    a = guarded.array(random(rng, (m, k), dtype), at_end)
    b = guarded.array(random(rng, (k, n), dtype), at_end)
    c = guarded.array(np.zeros((m, n), dtype), at_end)
    call(a, b, c)
    check(c, a, b)
    at = guarded.array(np.ascontiguousarray(random(rng, (k, m), dtype)), at_end).T
    bt = guarded.array(np.ascontiguousarray(random(rng, (n, k), dtype)), at_end).T
    call(at, bt, c, accumulate=0)
    check(c, at, bt)


def test_threads_share_one_function():
    rng = np.random.default_rng(5)
    m, n, k = 301, 257, 199
    a, b = random(rng, (m, k), "float32"), random(rng, (k, n), "float32")
    c = np.full((m, n), np.nan, np.float32)
    bands = [(0, 100), (100, 101), (101, 250), (250, m)]
    workers = [threading.Thread(target=call, args=(a, b, c), kwargs={"rows": r}) for r in bands]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    check(c, a, b)


def test_defined_once_per_module_and_dtype():
    module = ir.Module(name="twice")
    f32 = gemm.define_gemm(module, "float32")
    assert gemm.define_gemm(module, "float32") is f32
    f64 = gemm.define_gemm(module, "float64")
    assert f64 is not f32 and f64.name == "graphc_gemm_f64" and f32.name == "graphc_gemm_f32"
    assert [str(t) for t in f32.function_type.args] == \
        ["i64", "i64", "i64", "ptr", "i64", "i64", "ptr", "i64", "i64", "ptr", "i64", "i32",
         "i64", "i64"]
    assert len(gemm.gemm_argtypes()) == len(f32.args)
    with pytest.raises(DTypeError, match="float16"):
        gemm.define_gemm(module, "float16")


def test_microkernel_uses_the_widest_vectors():
    module = ir.Module(name="asm")
    module.triple = jit.host()[0]
    gemm.define_gemm(module, "float32")
    width = jit.vector_bits()
    register = {512: "zmm", 256: "ymm", 128: "xmm"}[width]
    fma = "vfmadd" if "fma" in jit.host_features() else "mul"
    assert any(fma in line and register in line for line in jit.assembly(str(module)).splitlines())


def test_narrow_products_take_tiles_one_vector_wide():
    """N <= lanes goes to the narrow copy (tiles of one vector, more rows); wider N does not."""
    module = ir.Module(name="narrow")
    gemm.define_gemm(module, "float32", vector_bits=512)
    text = str(module)
    assert "graphc_gemm_f32_narrow_microkernel16" in text
    assert 'icmp sle i64 %"n", 16' in text
    narrow = gemm.narrow_blocking("float32", 512)
    assert (narrow.mr, narrow.nr) == (16, 16) and gemm.default_blocking("float32", 512).nr == 64
    assert "narrow" not in str(_with_blocking(BLOCKINGS["small"]["float32"]))


def _with_blocking(blocking):
    module = ir.Module(name="blocked")
    gemm.define_gemm(module, "float32", vector_bits=512, blocking=blocking)
    return module


def _in_thread(work):
    """work() run on a new thread; returns what it returned (exceptions re-raised)."""
    out = {}

    def target():
        try:
            out["value"] = work()
        except BaseException as err:  # re-raised on the caller's thread
            out["error"] = err
    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_packing_buffer_grows_and_is_reused(dtype):
    # on a new thread: small, large (the buffer grows), large and small again (the buffer is
    # reused), each against numpy; once grown, calls take no new pages
    rng = np.random.default_rng(21)
    shapes = [(31, 33, 9), (700, 300, 500), (700, 300, 500), (5, 7, 3)]
    operands = [(random(rng, (m, k), dtype), random(rng, (k, n), dtype),
                 np.full((m, n), np.nan, dtype)) for m, n, k in shapes]  # C paged in
    compiled(dtype)

    def work():
        faults = []
        for a, b, c in operands:
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            call(a, b, c)
            faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
            check(c, a, b)
        return faults
    faults = _in_thread(work)
    # the first large call pages in its buffer (a heap block freed after each call took new
    # pages every time); later calls take none
    assert faults[2] <= 2 and faults[3] <= 2, faults


def call_in_parts(a, b, c, parts, accumulate=0):
    """The gemm as a thread pool runs it: [0, m) cut into `parts` contiguous shares (the first
    m % parts one longer), one call per share, all at once on threads of their own."""
    m = a.shape[0]
    q, r = divmod(m, parts)
    starts = [i * q + min(i, r) for i in range(parts + 1)]
    workers = [threading.Thread(target=call, args=(a, b, c, accumulate), kwargs={"rows": share})
               for share in zip(starts, starts[1:])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


# shapes of train steps: tiny and odd extents, one row or column, long k with few rows and
# columns (filter gradients), small k with many rows (first layers)
STEP_SHAPES = [(1, 1, 1), (1, 9, 31), (9, 32, 1), (9, 1, 33), (31, 33, 9), (33, 31, 288),
               (288, 33, 31), (9, 32, 5000), (31, 9, 4099), (1, 288, 33), (300, 64, 9)]


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("accumulate", [0, 1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["a b", "a_t b", "a b_t", "a_t b_t"])
@pytest.mark.parametrize("m,n,k", STEP_SHAPES)
def test_train_step_shapes(m, n, k, layout, dtype, accumulate, parts):
    rng = np.random.default_rng([m, n, k, accumulate])
    a = random(rng, (k, m), dtype).T if "a_t" in layout else random(rng, (m, k), dtype)
    b = random(rng, (n, k), dtype).T if "b_t" in layout else random(rng, (k, n), dtype)
    c0 = random(rng, (m, n), dtype)
    c = c0.copy()
    call_in_parts(a, b, c, parts, accumulate)
    check(c, a, b, c0.astype(np.float64) if accumulate else None)
    if parts == 2:  # the same sums in the same order, however the work is split
        alone = c0.copy()
        call(a, b, alone, accumulate)
        np.testing.assert_array_equal(c, alone)


@pytest.mark.parametrize("m,n,parts", [(20, 300, 3), (9, 260, 2), (5, 400, 4)])
def test_shares_of_few_rows_are_whole_columns(m, n, parts):
    # far fewer rows than columns: each share computes every row of a block of whole columns;
    # the shares' blocks are disjoint and cover C
    rng = np.random.default_rng([m, n])
    a, b = random(rng, (m, 7), "float32"), random(rng, (7, n), "float32")
    q, r = divmod(m, parts)
    starts = [i * q + min(i, r) for i in range(parts + 1)]
    owner = np.full(n, -1)
    for share, rows in enumerate(zip(starts, starts[1:])):
        c = np.full((m, n), np.nan, np.float32)
        call(a, b, c, rows=rows)
        written = ~np.isnan(c)
        columns = written.all(axis=0)
        assert (written == columns).all()  # whole columns only
        assert (owner[columns] == -1).all()
        owner[columns] = share
        check(c[:, columns], a, b[:, columns])
    assert (owner >= 0).all() and (np.diff(owner) >= 0).all()


def cached_call(a, b, c, cache, shares=1, accumulate=0, **build):
    """The full entry, a cache and no epilogue, on numpy arrays (B of any strides), in `shares` calls that split C."""
    library, _ = compiled(c.dtype.name, **build)
    fn = library.function(gemm.gemm_name(c.dtype.name, full=True), None,
                          *gemm.full_argtypes())
    m, k = a.shape
    n = b.shape[1]
    size = c.itemsize
    for part in range(shares):
        fn(m, n, k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
           b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
           c.ctypes.data, c.strides[0] // size, accumulate, m * part // shares,
           m * (part + 1) // shares, cache.ctypes.data, None, 0)


def packs(cache):
    """How many times the cached entry packed B into `cache` (its header's second word)."""
    return int(cache[:16].view(np.int64)[1])


@pytest.mark.parametrize("blocking", [None, "small", "tile"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k,shares", [(64, 1024, 256, 2), (64, 256, 1024, 2),
                                          (37, 71, 613, 3), (13, 33, 17, 1), (300, 40, 9, 2),
                                          (5, 400, 6, 2), (64, 8, 30, 2)])
@pytest.mark.parametrize("b_layout", ["rows", "transposed"])
def test_packed_b_cache_is_packed_once_and_gives_the_same_product(m, n, k, shares, dtype,
                                                                 blocking, b_layout):
    from graphc.kernels.ir import packed_b_elements
    rng = np.random.default_rng([m, n, k])
    b = random(rng, (k, n), dtype) if b_layout == "rows" else random(rng, (n, k), dtype).T
    cache = np.zeros(packed_b_elements(k, n, np.dtype(dtype).itemsize) + 1, dtype)[1:]
    for step in range(3):  # each step a new A, B the same
        a = random(rng, (m, k), dtype)
        a[0, 0] = -0.0 if step else np.inf  # extreme values pass through the copy unchanged
        expected, c = np.full((m, n), np.nan, dtype), np.full((m, n), np.nan, dtype)
        call(a, b, expected, blocking=blocking)
        cached_call(a, b, c, cache, shares, blocking=blocking)
        np.testing.assert_array_equal(c, expected)  # the same sums in the same order
    # (N <= lanes under the default blocking: the narrow tiles, which take no cache)
    narrow = blocking is None and n <= jit.vector_bits() // (8 * np.dtype(dtype).itemsize)
    assert packs(cache) == (0 if narrow else 1)
    # a new B (another address, or the runtime marking the cache stale) is never read from
    # the old copy
    b2 = b.copy() + 1
    cached_call(a, b2, c, cache, shares, blocking=blocking)
    call(a, b2, expected, blocking=blocking)
    np.testing.assert_array_equal(c, expected)
    old = b.copy()
    b[...] += 2
    if not narrow and (m, n) in ((64, 1024), (64, 256), (13, 33), (300, 40)):
        # (shares that start at whole tiles of the copy) B changed in place without the cache
        # marked stale: the product is the old B's, so the copy is what the calls read
        cached_call(a, b, c, cache, shares, blocking=blocking)
        call(a, old, expected, blocking=blocking)
        np.testing.assert_array_equal(c, expected)
    cache[:16].view(np.int64)[0] = 0
    cached_call(a, b, c, cache, shares, accumulate=1, blocking=blocking)
    call(a, b, expected, accumulate=1, blocking=blocking)
    np.testing.assert_array_equal(c, expected)
    assert packs(cache) == (0 if narrow else 2)
