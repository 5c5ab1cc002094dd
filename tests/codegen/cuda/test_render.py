"""CUDA C rendering: every kernel of a broad set of graphs (tests/codegen/cuda/programs.py)
renders, and, where nvcc is on the PATH, the whole set compiles to PTX for sm_80 and sm_90 with
every warning an error. The code reads as its graph: one named function per kernel, a comment
with the nodes it fuses, values named after their ops."""
import re

import numpy as np
import pytest

from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.render import PRELUDE, render_kernel, render_program, symbol
from graphc.codegen.cuda.scalar import unsupported_ops
from graphc.errors import DeviceError
from graphc.ir import dtypes
from graphc.kernels import ir
from tests.codegen.cuda import programs

needs_nvcc = pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")


@pytest.fixture(scope="module")
def rendered():
    """[(name, kernel, source)] for every kernel of every case and the handmade ones."""
    out = []
    for case, program in programs.all_programs():
        assert not program.unsupported, (case.name, [g.describe() for g in program.unsupported])
        out += [(f"{k.name}_{case.name}", k, None) for k in program.kernels]
    out += [(k.name, k, None) for k in programs.handmade_kernels()]
    return [(name, k, render_kernel(k, name)) for name, k, _ in out]


def test_every_case_lowers_and_uses_the_ops_it_is_for(rendered):
    kernels = [k for _, k, _ in rendered]
    assert len(kernels) > 300
    assert not unsupported_ops(kernels)
    missing = programs.expected_ops() - programs.op_uses(kernels)
    assert not missing, f"cases lost the ops they are for: {sorted(missing)}"


@needs_nvcc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_every_kernel_compiles_to_ptx_without_warnings(rendered, arch):
    source = "\n\n".join([PRELUDE] + [text for _, _, text in rendered])
    ptx = nvcc.compile_source(source, arch).decode()
    entries = set(re.findall(r"\.entry\s+(\w+)\(", ptx))
    assert entries == {name for name, _, _ in rendered}
    assert f".target {arch}" in ptx


@needs_nvcc
def test_elementwise_kernels_move_16_bytes_per_access():
    """The vectors of flat kernels become 16-byte global loads and stores in nvcc's PTX
    (float32 by 4, float16 and bool by 8 and 16 as 32-bit words, float64 by 2), with the
    one-at-a-time loop beside them."""
    case = next(c for c in programs.CASES if c.name == "vector_tails")
    kernels = programs.program(case)[0].kernels
    ptx = nvcc.compile_source(render_program([kernels]), "sm_90").decode()
    bodies = dict(re.findall(r"\.entry\s+(\w+)\((.*?)\n}", ptx, re.S))
    vectors = {k.name: set(re.findall(r"(?:ld|st)\.global\.v\d\.\w+", bodies[k.name]))
               for k in kernels}
    assert all(vectors.values()), vectors
    assert set().union(*vectors.values()) >= {
        "ld.global.v4.f32", "st.global.v4.f32", "ld.global.v4.u32", "st.global.v4.u32",
        "ld.global.v2.f64"}, vectors
    assert "ld.global.f32" in ptx and "st.global.f32" in ptx  # the positions one at a time


@needs_nvcc
def test_a_compile_error_is_a_device_error_with_nvcc_s_message():
    with pytest.raises(DeviceError) as info:
        nvcc.compile_source('extern "C" __global__ void k() { int unused; }', "sm_80")
    assert "unused" in str(info.value) and "nvcc for sm_80 failed" in str(info.value)


def test_rendering_is_deterministic():
    case = next(c for c in programs.CASES if c.name == "mlp_train_step")
    first, second = (programs.program(case)[0] for _ in range(2))
    text = render_program([first.kernels], "t1")
    assert text == render_program([second.kernels], "t1")
    assert text.startswith(PRELUDE.rstrip())
    for k in first.kernels:
        assert text.count(f'extern "C" __global__ void {symbol(k, "t1")}(') == 1


def test_a_fused_kernel_names_its_nodes_and_values():
    case = next(c for c in programs.CASES if c.name == "broadcast_chain")
    program = programs.program(case)[0]
    (kernel,) = program.kernels
    text = render_kernel(kernel, "chain")
    comment = text.splitlines()[0]
    assert comment.startswith(f"// {kernel.name}: ")
    nodes = comment.split(": ", 1)[1].split(", ")
    assert nodes == list(kernel.nodes) and len(nodes) >= 5
    assert any(n.startswith("tanh") for n in nodes) and any(n.startswith("sigmoid") for n in nodes)
    for line in ("const float tanh", "= tanhf(load", "const float sigmoid", "= gc_sigmoid(",
                 'extern "C" __global__ void chain(',
                 "const gc_vec<float, 4> in6 = *(const gc_vec<float, 4>*)(buf0 + at4);",
                 "const long long i1 = position8 % 13LL;"):
        assert line in text, line
    assert text.count("{") == text.count("}")


def test_semantics_visible_in_the_code():
    by_case = {c.name: programs.program(c)[0] for c in programs.CASES
               if c.name in ("sparse_cross_entropy", "reductions_float16", "unary_float16",
                             "softmax")}
    xent = "\n".join(render_kernel(k) for k in by_case["sparse_cross_entropy"].kernels)
    # a bad label is reported (first report wins) and stops the thread
    assert re.search(r"if \(gc_out_of_range\(cast\d+, \d+LL\)\) "
                     r"\{ gc_report\(error, 0LL, cast\d+\); return; \}", xent)
    assert "double sum" in xent  # float32 sums accumulate in double
    half = "\n".join(render_kernel(k) for k in by_case["reductions_float16"].kernels)
    assert "__half2float(__double2half(sum" in half and "const __half* __restrict__" in half
    unary = "\n".join(render_kernel(k) for k in by_case["unary_float16"].kernels)
    assert "= gc_half(expf(" in unary  # computed in float, rounded to half after every op
    softmax = render_kernel(by_case["softmax"].kernels[0])
    # the row's max and sum come before the loop over the row, once per row
    loop = softmax.index("for (long long i1 = 0;")
    assert re.search(r"float max\d+ = \(-INFINITY\);", softmax[:loop])
    assert re.search(r"const float sum\d+ = \(float\)sum\d+_acc;", softmax[:loop])


@pytest.mark.parametrize("value,dtype,text", [
    (1.5, "float32", "1.5f"), (-0.0, "float32", "(-0.0f)"), (0.1, "float64", "0.1"),
    (float("inf"), "float32", "(INFINITY)"), (float("-inf"), "float64", "((double)-INFINITY)"),
    (float("nan"), "float16", "(NAN)"), (1 / 3, "float16", "0.33325195f"),
    (1 / 3, "bfloat16", "0.33398438f"), (-(1 << 31), "int32", "(-2147483647 - 1)"),
    (-(1 << 63), "int64", "(-9223372036854775807LL - 1)"), (-3, "int64", "(-3LL)"),
    (7, "int32", "7"), (True, "bool", "true")])
def test_literals_hold_the_dtype_s_value(value, dtype, text):
    from graphc.codegen.cuda.types import literal
    assert literal(value, dtype) == text
    if text.endswith("f)") or text.endswith("f"):  # the float the C compiler reads is the value
        stored = {"float16": np.float16, "bfloat16": dtypes.round_bfloat16}.get(
            dtype, np.float32)(np.float32(value))
        assert np.float32(text.strip("()f")) == stored


def test_launch_ranges():
    kernels = {k.name: k for k in programs.handmade_kernels()}
    dims = [6]
    assert launch.launch(kernels["check"]).kind == "loop"
    assert launch.evaluate(launch.launch(kernels["check"]).extent, dims) == 6
    tiles = launch.launch(kernels["gemm_accumulate"])  # blocks take 64 x 64 tiles
    assert tiles.kind == "tiles" and launch.evaluate(tiles.extent, dims) == 1
    assert launch.evaluate(tiles.extent, [130]) == 9 and launch.blocks(tiles, 9) == 9
    assert launch.launch(kernels["gemm_per_row"]).kind == "loop"
    single = ir.Kernel("single", (ir.Store(0, ir.const(0), ir.const(1.0, "float32")),), {})
    assert launch.launch(single).kind == "single"
    assert "if (blockIdx.x != 0 || threadIdx.x != 0) return;" in render_kernel(single)
    case = next(c for c in programs.CASES if c.name == "matmul")  # 5 columns: not tiled
    small = launch.launch(programs.program(case)[0].kernels[0])
    assert small.kind == "gemm" and launch.blocks(small, 0) == 0
    assert launch.blocks(small, 1) == 1 and launch.blocks(small, 257) == 2
    assert launch.blocks(small, 1 << 40) == launch.MAX_BLOCKS
    index = ir.op("floordiv", ir.op("mod", ir.Dim(0), ir.const(4)), ir.const(-1))
    assert launch.evaluate(index, dims) == np.floor_divide(6 % 4, -1)


def test_loop_variables_never_clash_with_generated_names():
    i = ir.Var("buf0")
    kernel = ir.Kernel("clash", (ir.Loop(i, ir.const(3), (ir.Store(0, i, i),), True),), {})
    with pytest.raises(ir.Unsupported):
        render_kernel(kernel)
    j, k = ir.Var("load0"), ir.Var("k")
    position = ir.add(ir.mul(j, ir.const(5)), k)
    kernel = ir.Kernel("renamed", (ir.Loop(j, ir.const(3), (ir.Loop(k, ir.const(5), (
        ir.Store(0, position, ir.Load(1, j, "float32")),)),), True),), {})
    text = render_kernel(kernel)
    assert re.search(r"const long long load0 = position\d+ / 5LL;", text)
    assert "const float load0" not in text
    assert re.search(r"const float load\d+ = buf1\[load0\];", text)
