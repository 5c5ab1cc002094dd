"""Matrix products on the tensor cores (wmma), checked without a GPU: the kernels compile to
PTX for sm_80 and sm_90 with their wmma.mma instructions, and run on the host through
host_wmma.h (float32 sums of inputs as the units take them) against numpy: float16 and
bfloat16 products exactly rounded once, float32 under tf32 with its inputs rounded to 10 bits
of mantissa (to nearest, ties away from zero). Sizes are run-time dims, odd ones included, and
the operands are surrounded by NaN and C by a sentinel, so a read past a matrix that reaches a
result, or a write past C, fails."""
import re

import numpy as np
import pytest

from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.gemm import tensor_cores
from graphc.codegen.cuda.render import render_program
from graphc.ir import dtypes
from graphc.kernels import ir
from tests.codegen.cuda.host_emulation import compile_for_host, missing_toolchain

needs_host = pytest.mark.skipif(missing_toolchain() is not None,
                                reason=f"host emulation of CUDA C: {missing_toolchain()}")
SIZES = [(1, 1, 1), (7, 13, 5), (17, 33, 70), (64, 64, 32), (65, 130, 47), (1, 70, 200),
         (130, 1, 33), (5, 9, 0)]
LAYOUTS = [(False, False), (True, False), (False, True), (True, True)]  # A, B transposed
GUARD = 37  # elements of NaN (or of C's sentinel) on each side of every matrix
SENTINEL = -1234.0
STORAGE = {"float16": np.float16, "bfloat16": np.float32, "float32": np.float32}


def _gemm_kernel(name, dtype, a_transposed, b_transposed, accumulate=False, batched=False):
    """C (m x n) (+)= A (m x k) @ B (k x n) with run-time m, n, k (dims 0, 1, 2) and, when
    batched, a loop over dim 3 products; A and B stored transposed where asked."""
    m, n, k, count = (ir.Dim(i) for i in range(4))
    b = ir.Var("b0")
    at = (lambda size: ir.mul(b, size)) if batched else (lambda size: ir.const(0))
    one = ir.const(1)
    gemm = ir.Gemm(dtype, m, n, k,
                   ir.Operand(0, at(ir.mul(m, k)), *((one, m) if a_transposed else (k, one))),
                   ir.Operand(1, at(ir.mul(k, n)), *((one, k) if b_transposed else (n, one))),
                   ir.Operand(2, at(ir.mul(m, n)), n, one), accumulate)
    body = (ir.Loop(b, count, (gemm,)),) if batched else (gemm,)
    return ir.Kernel(name, body, {}, ("matmul",))


def _small_kernels():
    """Half-precision products off the tensor cores: 3 rows (dot products of run-time length
    shared by the grid's warps),
    and one product per iteration of a parallel loop over dim 3 (dot products in a thread),
    accumulating."""
    m, n, k, count = ir.Const(3, "int64"), ir.Dim(1), ir.Dim(2), ir.Dim(3)
    i, one = ir.Var("i0"), ir.const(1)
    few = [ir.Kernel(f"{dtype}_three_rows", (ir.Gemm(dtype, m, n, k, ir.Operand(
        0, ir.const(0), k, one), ir.Operand(1, ir.const(0), n, one), ir.Operand(
        2, ir.const(0), n, one)),), {}, ("matmul",)) for dtype in ("float16", "bfloat16")]
    at = (lambda size: ir.mul(i, size))
    per_row = [ir.Kernel(f"{dtype}_per_iteration", (ir.Loop(i, count, (ir.Gemm(
        dtype, m, n, k, ir.Operand(0, at(ir.mul(m, k)), k, one), ir.Operand(
            1, at(ir.mul(k, n)), n, one), ir.Operand(2, at(ir.mul(m, n)), n, one), True),),
        parallel=True),), {}, ("matmul",)) for dtype in ("float16", "bfloat16")]
    return few + per_row


SMALL = _small_kernels()
KERNELS = [(dtype, layout, _gemm_kernel(f"{dtype}_{int(layout[0])}{int(layout[1])}", dtype,
                                        *layout))
           for dtype in ("float16", "bfloat16", "float32") for layout in LAYOUTS]
BATCHED = {dtype: _gemm_kernel(f"{dtype}_batched_accumulating", dtype, False, True, True,
                               True) for dtype in ("float16", "bfloat16", "float32")}
ALL = [k for _, _, k in KERNELS] + list(BATCHED.values()) + SMALL


def _round(x, dtype):
    """float32 values rounded to dtype (its storage array)."""
    if dtype == "bfloat16":
        return dtypes.round_bfloat16(np.asarray(x, np.float32))
    return np.asarray(x, np.float32).astype(STORAGE[dtype])


def tf32(x):
    """The nearest tf32 (10 bits of mantissa), ties away from zero, as cvt.rna.tf32.f32."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    rounded = np.where(np.isfinite(x), (bits + np.uint32(0x1000)) & np.uint32(0xffffe000), bits)
    return rounded.astype(np.uint32).view(np.float32)


def _guarded(values, fill):
    """A flat buffer holding `values` with GUARD elements of `fill` on each side, and the view
    of the values in it."""
    flat = np.ravel(values)
    out = np.full(flat.size + 2 * GUARD, fill, flat.dtype)
    out[GUARD:GUARD + flat.size] = flat
    return out, out[GUARD:GUARD + flat.size]


def _run(host, kernel, dtype, a, b, c, dims):
    """Run the kernel on guarded copies of a, b (NaN around) and c (SENTINEL around); the new
    C, after checking the guards."""
    (a_buffer, _), (b_buffer, _) = (_guarded(x, np.nan) for x in (a, b))
    c_buffer, c_view = _guarded(c, SENTINEL)
    host.run(kernel, [a_buffer[GUARD:], b_buffer[GUARD:], c_buffer[GUARD:]], dims)
    assert (c_buffer[:GUARD] == SENTINEL).all() and (c_buffer[GUARD + c.size:] == SENTINEL).all()
    return c_view.reshape(c.shape)


def _inputs(dtype, shapes, rng, layout=(False, False)):
    """Random operands of dtype: (values as float32, the stored arrays, transposed where
    the layout says)."""
    values = [_round(rng.normal(0, 1, s), dtype).astype(np.float32) for s in shapes]
    layout = tuple(layout) + (False,) * (len(shapes) - len(layout))
    stored = [np.ascontiguousarray(np.swapaxes(v, -1, -2) if t else v).astype(STORAGE[dtype])
              for v, t in zip(values, layout)]
    return values, stored


def _tolerance(dtype, k):
    """A float32 sum in another order differs by a few float32 ulps of the terms' size; a
    result then rounded to a narrower dtype by an ulp of it."""
    ulp = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23}[dtype]
    return dict(rtol=ulp, atol=ulp + 2e-6 * k)


def _check(got, want, dtype, k, message=""):
    """got is want to the tolerance, and holds values of dtype (bfloat16 in float32 arrays)."""
    assert got.dtype == STORAGE[dtype]
    if dtype == "bfloat16":
        np.testing.assert_array_equal(got, _round(got, dtype), err_msg="not rounded")
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                               err_msg=message, **_tolerance(dtype, k))


@pytest.fixture(scope="module")
def host():
    if missing_toolchain():
        pytest.skip(f"host emulation of CUDA C: {missing_toolchain()}")
    return {tf: compile_for_host(ALL, tf32=tf) for tf in (False, True)}


def test_tensor_cores_take_half_precisions_and_float32_only_under_tf32():
    assert tensor_cores("float16").k == tensor_cores("bfloat16").k == 16
    assert tensor_cores("float32") is None and tensor_cores("float32", tf32=True).k == 8
    assert tensor_cores("float64", tf32=True) is None
    assert {launch.launch(k).kind for k in ALL if k not in SMALL} == {"tiles"}
    assert [launch.launch(k).kind for k in SMALL] == ["warp_dots", "warp_dots", "loop", "loop"]


def test_the_source_shows_the_chosen_kernel():
    kernel = KERNELS[0][2]
    half = render_program([[kernel]])
    assert "wmma m16n16k16, float16 inputs" in half and "wmma::mma_sync" in half
    plain = render_program([[BATCHED["float32"]]])
    assert "wmma::fragment" not in plain and "each thread computing 4 x 4" in plain
    tf = render_program([[BATCHED["float32"]]], tf32=True)
    assert "wmma::precision::tf32" in tf and "wmma::__float_to_tf32(" in tf


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_the_kernels_compile_to_wmma_instructions(arch):
    ptx = nvcc.compile_source(render_program([ALL], tf32=True), arch).decode()
    found = set(re.findall(r"wmma\.mma\.sync\.aligned\.row\.row\.([\w.]+)", ptx))
    # float16 inputs are wmma's default: the instruction names the accumulators' types only
    assert found == {"m16n16k16.f32.f32", "m16n16k16.f32.bf16.bf16.f32",
                     "m16n16k8.f32.tf32.tf32.f32"}


@needs_host
@pytest.mark.parametrize("dtype,layout,kernel", KERNELS, ids=[k.name for _, _, k in KERNELS])
def test_products_match_numpy(host, dtype, layout, kernel):
    """float32 on the tensor cores under tf32, on the CUDA cores (two stages) without."""
    rng = np.random.default_rng(len(kernel.name))
    for tf in (True, False) if dtype == "float32" else (False,):
        for m, n, k in SIZES:
            (a, b), stored = _inputs(dtype, [(m, k), (k, n)], rng, layout)
            got = _run(host[tf], kernel, dtype, *stored, np.zeros((m, n), STORAGE[dtype]),
                       [m, n, k, 1])
            want = _round(tf32(a) @ tf32(b) if tf else a @ b, dtype)
            _check(got, want, dtype, k, f"{m} x {n} x {k}, tf32 {tf}")


@needs_host
@pytest.mark.parametrize("dtype", sorted(BATCHED))
def test_batched_products_add_to_c_rounding_once(host, dtype):
    rng = np.random.default_rng(7)
    count, m, n, k = 3, 70, 19, 41
    (a, bt, c), (a_s, b_s, c_s) = _inputs(dtype, [(count, m, k), (count, n, k), (count, m, n)],
                                          rng)
    tf = dtype == "float32"
    got = _run(host[tf], BATCHED[dtype], dtype, a_s, b_s, c_s, [m, n, k, count])
    product = tf32(a) @ np.swapaxes(tf32(bt), 1, 2) if tf else a @ np.swapaxes(bt, 1, 2)
    _check(got, _round(c + product, dtype), dtype, k)


@needs_host
def test_tf32_rounds_inputs_to_nearest_not_down(host):
    """1 + 3/4 of tf32's last place rounds up to 1 + 2^-10; the units alone would read 1."""
    kernel = next(k for dtype, layout, k in KERNELS if dtype == "float32" and not any(layout))
    k = 40
    a = np.full((3, k), 1 + 2.0 ** -11 + 2.0 ** -12, np.float32)
    b = np.ones((k, 5), np.float32)
    got = _run(host[True], kernel, "float32", a, b, np.zeros((3, 5), np.float32), [3, 5, k, 1])
    np.testing.assert_array_equal(got, np.full((3, 5), k * (1 + 2.0 ** -10), np.float32))
    assert tf32(np.float32(1 + 2.0 ** -11)) == 1 + 2.0 ** -10  # the tie goes away from zero
    assert tf32(np.float32(-1 - 2.0 ** -11)) == -1 - 2.0 ** -10


@needs_host
@pytest.mark.parametrize("kernel", SMALL, ids=[k.name for k in SMALL])
def test_half_precision_dot_products_round_once(host, kernel):
    dtype = kernel.name.split("_")[0]
    rng = np.random.default_rng(3)
    count = 4 if "iteration" in kernel.name else 1
    for n, k in ((1, 1), (5, 33), (17, 0)):
        (a, b, c), stored = _inputs(dtype, [(count, 3, k), (count, k, n), (count, 3, n)], rng)
        got = _run(host[False], kernel, dtype, *stored, [3, n, k, count])
        want = _round((c if count > 1 else 0) + a @ b, dtype)
        _check(got, want, dtype, k, f"{n} x {k}")
