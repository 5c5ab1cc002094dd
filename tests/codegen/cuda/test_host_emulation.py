"""What the generated CUDA C computes, checked on the host (host_emulation.py): every case's
kernels, run with several emulated blocks and threads on fresh random inputs, must give the
reference device's values; the handmade kernels must give the kernel IR interpreter's. Bad
gather indices and labels must come back as the error the interpreter reports."""
import os

import numpy as np
import pytest
from hypothesis import given, settings

import graphc as gc
from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.render import PRELUDE, render_kernel
from graphc.kernels import interpret, ir
from graphc.kernels.interpret import KernelIndexError
from graphc.ops.registry import apply
from tests.codegen.cuda import programs
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain
from tests.kernels.helpers import Program, run_reference
from tests.passes.random_graphs import assert_same_values, random_graphs

pytestmark = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")
TOLERANCE = {"float16": 3e-3, "bfloat16": 2e-2}  # relative and absolute, by the cases' dtypes


@pytest.fixture(scope="module")
def compiled():
    """{case name: (case, program, placeholders)} and the host build of all their kernels."""
    cases = {}
    for case in programs.CASES:
        program, phs = programs.program(case)
        cases[case.name] = (case, program, phs)
    kernels = [k for _, program, _ in cases.values() for k in program.kernels]
    return cases, compile_for_host(kernels + programs.handmade_kernels())


def _tolerance(case):
    dtypes = {d for d, _ in case.inputs}
    return max([TOLERANCE.get(d, 1e-5) for d in dtypes] + [
        TOLERANCE["float16"] if "float16" in case.name else 0])


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # the reference's, for empty_shapes
@pytest.mark.parametrize("name", [c.name for c in programs.CASES])
@pytest.mark.parametrize("batch", [7, 1])
def test_cases_match_the_reference(compiled, name, batch):
    cases, host = compiled
    case, program, phs = cases[name]
    feed = programs.feed(case, phs, np.random.default_rng(batch), batch)
    got = program.execute(feed, host.run)
    want = run_reference(program.fetches, feed)
    tol = _tolerance(case)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, (i, g.dtype, w.dtype)
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")


def _misaligned(run_kernel, offset):
    """run_kernel on copies of the buffers that start `offset` bytes (times the element size)
    past a 16-byte boundary: elementwise kernels must then take positions one at a time."""
    def run(kernel, buffers, dims):
        moved = []
        for b in buffers:
            raw = np.empty(b.nbytes + 32, np.uint8)
            skip = (-raw.ctypes.data) % 16 + offset * b.itemsize
            moved.append(raw[skip:skip + b.nbytes].view(b.dtype))
            moved[-1][...] = b
        run_kernel(kernel, moved, dims)
        for b, m in zip(buffers, moved):
            b[...] = m
    return run


@pytest.mark.parametrize("batch", [1, 3, 4, 7, 1023, 4099])
@pytest.mark.parametrize("offset", [0, 1])
def test_vectors_and_their_tails(compiled, batch, offset):
    """Elementwise kernels take whole vectors where the buffers are aligned, then the rest
    one position at a time; or every position one at a time where one is not aligned."""
    cases, host = compiled
    case, program, phs = cases["vector_tails"]
    assert {launch.launch(k).kind for k in program.kernels} == {"flat"}
    assert {launch.launch(k).vector for k in program.kernels} >= {2, 4, 8, 16}
    feed = programs.feed(case, phs, np.random.default_rng(batch), batch)
    got = program.execute(feed, _misaligned(host.run, offset))
    for i, (g, w) in enumerate(zip(got, run_reference(program.fetches, feed))):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=3e-3, atol=3e-3, err_msg=f"output {i}")


@pytest.mark.parametrize("name", ["broadcast_chain", "gather_one_hot", "cast_from_float64",
                                  "binary_float16", "where_int32", "strided_slices"])
def test_elementwise_cases_on_misaligned_buffers(compiled, name):
    cases, host = compiled
    case, program, phs = cases[name]
    feed = programs.feed(case, phs, np.random.default_rng(11), 9)
    got = program.execute(feed, _misaligned(host.run, 1))
    want = program.execute(feed, host.run)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
    for i, (g, w) in enumerate(zip(got, run_reference(program.fetches, feed))):
        np.testing.assert_allclose(g, w, rtol=_tolerance(case), atol=_tolerance(case),
                                   err_msg=f"output {i}")


def test_special_values_follow_numpy(compiled):
    """NaN, infinities, -0.0 and out-of-range casts through the float32 and int32 cases."""
    cases, host = compiled
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 3e9, -3e9, 2.5, -2.5, 1e-40],
                       np.float32)
    for name in ("unary_float32", "binary_float32", "cast_from_float32"):
        case, program, phs = cases[name]
        x = np.resize(special, (7, case.inputs[0][1][1]))
        feed = {phs[0]: x} if len(phs) == 1 else {phs[0]: x, phs[1]: special[3:10].copy()}
        got = program.execute(feed, host.run)
        want = run_reference(program.fetches, feed)
        for i, (g, w) in enumerate(zip(got, want)):
            if g.dtype.kind == "i":  # numpy leaves out-of-range and NaN casts unspecified
                ok = np.isfinite(x) & (np.abs(x) < 2.0 ** 31)
                np.testing.assert_array_equal(g[ok], w[ok], err_msg=f"{name} output {i}")
            else:
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-30,
                                           err_msg=f"{name} output {i}")


def test_rows_shared_by_a_block_with_special_values(compiled):
    """NaN and infinities in long rows (a block per row): argmax/argmin take the first NaN,
    max and softmax propagate it; ties go to the first position."""
    cases, host = compiled
    case, program, phs = cases["long_rows"]
    x = np.round(programs.sample("float32", (5, 300), np.random.default_rng(4)))
    x[0, [7, 250]] = np.nan
    x[1, [3, 299]] = np.inf
    x[2, :] = -np.inf
    x[3, 100:] = np.nan
    ints = np.zeros((5, 100), np.int32)
    ints[1, 50:] = 3
    feed = {phs[0]: x, phs[1]: ints}
    with np.errstate(all="ignore"):
        want = run_reference(program.fetches, feed)
    for i, (g, w) in enumerate(zip(program.execute(feed, host.run), want)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"output {i}")


def test_wide_rows_through_shared_memory_with_special_values(compiled):
    """Rows too long for a warp: a block per row, the row copied into shared memory once and
    read from there by the max, the sum and the output (argmax and the sum, stores of
    reductions alone, may split rows across blocks); NaN and infinities come through."""
    cases, host = compiled
    case, program, phs = cases["wide_rows"]
    kinds = {k.name: launch.launch(k).kind for k in program.kernels}
    assert set(kinds.values()) == {"rows", "split_rows"}, kinds
    texts = [render_kernel(k) for k in program.kernels]
    assert sum("__shared__ float row" in t for t in texts) >= 2
    rng = np.random.default_rng(8)
    x = programs.sample("float32", (4, 1500), rng)
    x[0, [5, 1400]] = np.nan
    x[1, 700] = np.inf
    x[2, :] = -np.inf
    h = programs.sample("float16", (4, 1100), rng)
    h[3, 1000] = np.inf
    feed = {phs[0]: x, phs[1]: h}
    with np.errstate(all="ignore"):
        want = run_reference(program.fetches, feed)
    for i, (g, w) in enumerate(zip(program.execute(feed, host.run), want)):
        np.testing.assert_allclose(g, w, rtol=3e-3, atol=1e-6, err_msg=f"output {i}")


def test_short_rows_go_to_warps():
    """Rows whose work is known to be at most WARP_ROWS long take a warp each (shuffles, no
    shared memory); rows of run-time length a block, or several where they hold stores of
    reductions only ("split_rows")."""
    kinds = {}
    for name in ("long_rows", "long_gathered_rows", "reductions_float32"):
        case = next(c for c in programs.CASES if c.name == name)
        kinds[name] = {launch.launch(k).kind for k in programs.program(case)[0].kernels}
    assert kinds["long_rows"] == {"warp_rows", "rows"}  # rows of 300 and 100; the batch axis
    assert "warp_rows" in kinds["long_gathered_rows"]
    assert {"split_rows", "block"} <= kinds["reductions_float32"]
    rows = launch.Launch("warp_rows", ir.const(1))
    assert launch.blocks(rows, 8) == 1 and launch.blocks(rows, 9) == 2


@pytest.mark.parametrize("batch", [1, 7])
def test_full_reductions_shared_by_the_grid(compiled, batch):
    """Reductions to a scalar: each block reduces its share, the last block to finish combines
    the blocks' results (two blocks here; NaN and ties between the blocks' shares)."""
    cases, host = compiled
    case, program, phs = cases["full_reductions"]
    grid = [launch.launch(k) for k in program.kernels if launch.launch(k).kind == "grid"]
    assert len(grid) >= 4
    feed = programs.feed(case, phs, np.random.default_rng(batch), batch)
    dims, _ = program.dims(program.sources(feed))
    blocks = [launch.blocks(g, launch.evaluate(g.extent, dims)) for g in grid]
    assert min(blocks) >= (2 if batch == 7 else 1) and max(blocks) >= 2, blocks  # 2 emulated
    x = feed[phs[0]]
    x[-1, 299] = x.max() + 1.0  # the argmax in the last block's share...
    x[0, 5] = x[-1, 299]  # ... tied with one in the first's
    got = program.execute(feed, host.run)
    for i, (g, w) in enumerate(zip(got, run_reference(program.fetches, feed))):
        np.testing.assert_allclose(g, w, rtol=1e-5, err_msg=f"output {i}")
    x[0, 7] = np.nan
    got = program.execute(feed, host.run)
    assert np.isnan(got[1]) and got[3] == 7


@pytest.mark.filterwarnings("ignore:Mean of empty slice", "ignore:invalid value")
def test_reductions_of_empty_tensors_store_their_identities(compiled):
    """A kernel whose blocks share reductions to scalars stores its results when every
    reduction is empty: a sum's 0, a mean's NaN (0 / 0), as numpy."""
    cases, host = compiled
    case, program, phs = cases["means"]
    feed = {phs[0]: np.zeros((0, 33), np.float32)}
    for g, w in zip(program.execute(feed, host.run), run_reference(program.fetches, feed)):
        np.testing.assert_array_equal(g, w)


def test_integer_arithmetic_wraps_and_divides_as_numpy(compiled):
    cases, host = compiled
    for dtype in ("int32", "int64"):
        info = np.iinfo(dtype)
        a = np.array([info.min, info.max, -7, 7, -7, 7, 0, info.min], dtype)
        b = np.array([-1, 2, 2, -2, 0, 3, -5, info.max], dtype)
        for name in (f"binary_{dtype}", f"unary_{dtype}"):
            case, program, phs = cases[name]
            x = np.tile(a[:7], (3, 1))
            feed = {phs[0]: x} if len(phs) == 1 else {phs[0]: x, phs[1]: b[:7].copy()}
            with np.errstate(all="ignore"):
                want = run_reference(program.fetches, feed)
            for i, (g, w) in enumerate(zip(program.execute(feed, host.run), want)):
                np.testing.assert_array_equal(g, w, err_msg=f"{name} output {i}")


@pytest.mark.parametrize("name,at,bad", [
    ("gather_one_hot", 1, 7), ("gather_one_hot", 1, -1), ("sparse_cross_entropy", 1, 13),
    ("long_gathered_rows", 1, 50), ("long_gathered_rows", 3, -2),  # blocks share these rows
    ("scatter_adds", 0, 6), ("scatter_adds", 0, -1)])
def test_bad_indices_report_the_error_and_value(compiled, name, at, bad):
    cases, host = compiled
    case, program, phs = cases[name]
    feed = programs.feed(case, phs, np.random.default_rng(3))
    feed[phs[at]][2] = bad
    with pytest.raises(KernelIndexError) as err:
        program.execute(feed, host.run)
    node, message = program.slots.errors[err.value.what]
    assert err.value.value == bad and node.op in ("gather", "gather_grad",
                                                  "sparse_softmax_cross_entropy")
    with pytest.raises(KernelIndexError) as oracle:
        program.execute(feed)
    assert (oracle.value.what, oracle.value.value) == (err.value.what, bad)
    with pytest.raises(gc.GraphcError):
        run_reference(program.fetches, feed)


def _handmade_buffers(rng, n):
    """Buffers for programs.handmade_kernels() with run-time dim 0 = n."""
    square = n * n
    specs = {0: ("bool", square), 1: ("bool", n), 2: ("bool", n), 3: ("bool", n),
             4: ("bool", n), 5: ("int64", n), 6: ("int64", n), 7: ("int32", n),
             8: ("int32", n), 9: ("int32", n), 10: ("int64", n), 11: ("int64", n),
             12: ("int32", n), 13: ("float32", n), 14: ("float32", n),
             15: ("float32", square), 16: ("float32", square), 17: ("float64", n * square),
             18: ("float64", n * square)}
    out = []
    for slot in range(len(specs)):
        dtype, size = specs[slot]
        out.append(programs.sample(dtype, (size,), rng))
    out[0][:n] = False  # a row of False and a row of True: ties for argmax/argmin
    out[0][n:2 * n] = True
    out[7][:] = rng.integers(-3, 4, n)
    out[8][:] = rng.integers(-3, 9, n)  # negative exponents too
    out[12][:] = rng.integers(0, n, n)
    return out


@pytest.mark.parametrize("n", [1, 6])
def test_handmade_kernels_match_the_interpreter(compiled, n):
    _, host = compiled
    for kernel in programs.handmade_kernels():
        want = _handmade_buffers(np.random.default_rng(n), n)
        got = [b.copy() for b in want]
        with np.errstate(all="ignore"):
            interpret.run_kernel(kernel, want, [n])
        host.run(next(k for k in host.kernels if k.name == kernel.name), got, [n])
        for slot, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=1e-6, err_msg=f"{kernel.name} slot {slot}")


def test_a_failed_check_statement_reports_its_value(compiled):
    _, host = compiled
    kernel = next(k for k in host.kernels if k.name == "check")
    buffers = _handmade_buffers(np.random.default_rng(0), 6)
    buffers[12][4] = 9
    with pytest.raises(KernelIndexError) as err:
        host.run(kernel, buffers, [6])
    assert (err.value.what, err.value.value) == (0, 9)


@settings(max_examples=int(os.environ.get("GRAPHC_HYPOTHESIS_EXAMPLES", 60)) // 6,
          deadline=None)
@given(random_graphs())
def test_random_graphs(case):
    """Random graphs over the whole op set (the optimizer tests' generator), their kernels
    compiled for the host (one compile per graph: fewer examples than the interpreter's)."""
    program = Program(case.outputs)
    host = compile_for_host(program.kernels) if program.kernels else None
    got = program.execute(case.feed, host.run if host else None)
    assert_same_values(run_reference(case.outputs, case.feed), got, case.outputs,
                       "\n".join(case.lines))


INTEGER_SCATTER_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                          "uint64", "bool"]


def test_scatter_adds_of_every_integer_dtype_wrap_and_bools_stay_bools():
    """Accumulating stores of many threads into one element (a gather's gradient) at each
    integer width (8 and 16 bits go through the word that holds them, so the neighbours in a
    word are updated at once) and of bools (an or, not an add), against the reference; the
    CUDA C also compiles to PTX without warnings."""
    rng = np.random.default_rng(5)
    feed, outs = {}, []
    with gc.Graph().as_default():
        for dtype in INTEGER_SCATTER_DTYPES:
            d = np.dtype(dtype)
            g = gc.placeholder(gc.bool_ if d.kind == "b" else getattr(gc, dtype), (257,),
                               name=f"g_{dtype}")
            i = gc.placeholder(gc.int32, (257,), name=f"i_{dtype}")
            like = gc.placeholder(g.dtype, (6,), name=f"like_{dtype}")
            if d.kind == "b":
                feed[g], feed[like] = rng.random(257) < 0.5, np.zeros(6, bool)
            else:
                info = np.iinfo(d)
                feed[g] = rng.integers(info.min, info.max, 257, dtype=d, endpoint=True)
                feed[like] = np.zeros(6, d)
            feed[i] = rng.integers(0, 6, 257).astype(np.int32)
            outs.append(apply("gather_grad", [g, i, like], axis=0))
        program = Program(outs)
    assert len(program.kernels) >= len(outs) and not program.unsupported
    source = "\n\n".join([PRELUDE] + [render_kernel(k) for k in program.kernels])
    assert source.count("gc_accumulate(&") == len(outs)
    if nvcc.find() is not None:
        nvcc.compile_source(source, "sm_80")
    got = program.execute(feed, compile_for_host(program.kernels).run)
    for g, w, dtype in zip(got, run_reference(program.fetches, feed), INTEGER_SCATTER_DTYPES):
        assert g.dtype == w.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w, err_msg=dtype)
