"""Few long rows split across blocks ("split_rows" launches): each block takes a share of a
row's reductions, the row's last block combines the shares' partial results in order. Run as
CUDA C on the host (host_emulation.py, up to 8 emulated blocks) against the reference on rows
of 1, 1023 and 2**17 + 3 elements, with NaN, infinities and ties; compiled to PTX for sm_80
and sm_90 without warnings."""
import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.render import PRELUDE, render_kernel
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain
from tests.kernels.helpers import Program, run_reference

needs_host = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")


def _program():
    with gc.Graph().as_default():
        x = gc.placeholder(gc.float32, (None, None), name="x")
        i = gc.placeholder(gc.int32, (None, None), name="i")
        outs = [gc.sum(x, axis=1), gc.max(x, axis=1), gc.argmax(x, axis=1),
                gc.argmin(x, axis=1), gc.mean(x * x, axis=1) + gc.min(x, axis=1),
                gc.sum(i, axis=1), gc.argmax(i, axis=1)]
        return Program(outs), (x, i)


def test_reductions_of_long_rows_split_and_softmax_rows_do_not():
    program, _ = _program()
    kinds = {launch.launch(k).kind for k in program.kernels}
    assert kinds == {"split_rows"}
    with gc.Graph().as_default():
        soft = Program([gc.nn.softmax(gc.placeholder(gc.float32, (None, None)))])
    assert {launch.launch(k).kind for k in soft.kernels} == {"rows"}
    k = program.kernels[0]
    shape = launch.launch(k)
    dims = [0] * 8
    for slot in range(len(dims)):  # every dim the same: rows of 2**20, 4 of them
        dims[slot] = 1 << 20
    # 4 rows of 2**20 elements: 64 blocks a row (256 in all); many rows: one block a row
    assert launch.blocks(shape, 4, dims) == 256
    assert launch.blocks(shape, 1000, dims) == 1000
    assert launch.blocks(shape, 4, [launch.SPLIT_FROM] * 8) == 4


def _feed(phs, rows, length, rng):
    x = np.round(rng.normal(size=(rows, length)) * 4).astype(np.float32)  # ties
    if length > 3:
        x[0, [length // 2, length - 1]] = np.nan
        if rows > 1:
            x[1, length - 2] = np.inf
            x[1, 1] = np.inf  # a tie of infinities: the first
        if rows > 2:
            x[2, :] = -np.inf
    i = rng.integers(-3, 4, (rows, length)).astype(np.int32)
    return {phs[0]: x, phs[1]: i}


@needs_host
@pytest.mark.parametrize("rows", [1, 3, 4])
@pytest.mark.parametrize("length", [1, 1023, 2 ** 17 + 3])
def test_split_rows_match_the_reference(rows, length):
    program, phs = _program()
    host = compile_for_host(program.kernels)
    feed = _feed(phs, rows, length, np.random.default_rng(length + rows))
    with np.errstate(all="ignore"):
        want = run_reference(program.fetches, feed)
    for n, (g, w) in enumerate(zip(program.execute(feed, host.run), want)):
        assert g.dtype == w.dtype and g.shape == w.shape
        if g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=f"output {n}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {n}")


@needs_host
def test_split_rows_give_the_same_bits_every_run():
    program, phs = _program()
    host = compile_for_host(program.kernels)
    feed = {phs[0]: np.random.default_rng(3).normal(size=(2, 2 ** 17 + 3)).astype(np.float32),
            phs[1]: np.ones((2, 2 ** 17 + 3), np.int32)}
    first = program.execute(feed, host.run)
    for a, b in zip(first, program.execute(feed, host.run)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_split_rows_compile_to_ptx_without_warnings(arch):
    kernels = _program()[0].kernels
    source = "\n\n".join([PRELUDE] + [render_kernel(k) for k in kernels])
    ptx = nvcc.compile_source(source, arch).decode()
    assert all(f".entry {k.name}(" in ptx for k in kernels)
