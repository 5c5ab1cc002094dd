"""GRAPHC_DUMP_DIR: the kernel IR and the generated code land beside the graphs of each stage."""
import os
import re

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.cuda import nvcc
from graphc.codegen.llvm import jit
from graphc.codegen.llvm.program import entry_symbol

rng = np.random.default_rng(11)
CPU_FILES = ["90-kernel-ir.txt", "91-program.ll", "92-program-opt.ll", "93-program.s"]


def _build(device, name):
    """A function of several kernels (a product, a row softmax, a full sum) and its inputs."""
    x = gc.placeholder(gc.float32, (None, 7), name="x")
    w = gc.placeholder(gc.float32, (7, 5), name="w")
    y = gc.nn.softmax(gc.relu(gc.matmul(x, w)) + 1.0)
    f = gc.function([x, w], [y, gc.sum(x * x)], name=name, device=device)
    return f, rng.normal(size=(3, 7)).astype(np.float32), rng.normal(size=(7, 5)).astype(np.float32)


def _want(xb, wb):
    z = np.maximum(xb @ wb, 0) + 1.0
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), (xb * xb).sum()


def _kernels(f):
    return [k for step in f._exe.steps for k in getattr(step, "kernels", ())]


def _code_files(directory):
    return sorted(n for n in os.listdir(directory) if n.startswith("9"))


def test_cpu_writes_kernel_ir_llvm_ir_and_assembly(graph, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path))
    f, xb, wb = _build("cpu", "dumped")
    directory = tmp_path / "dumped"
    names = sorted(os.listdir(directory))
    assert _code_files(directory) == CPU_FILES
    assert names[0] == "00-input.txt" and names[-len(CPU_FILES) - 1].endswith("-kernels.txt")
    text = {n: (directory / n).read_text() for n in CPU_FILES}
    kernels = _kernels(f)
    assert len(kernels) >= 3
    tag = f._exe.program.code.tag
    for k in kernels:
        assert f"kernel {k.name}" in text["90-kernel-ir.txt"]
        assert f'@"{k.name}_{tag}"' in text["91-program.ll"]
    # a kernel the thread pool calls keeps its symbol (others may be inlined into the entry)
    pooled = [k for k in kernels if k.parallel_loop is not None]
    assert pooled
    for k in pooled:
        assert re.search(rf"^{k.name}_{tag}:", text["93-program.s"], re.M)
    entry = entry_symbol(tag, 0)
    assert re.search(rf"^\s*\.globl\s+{entry}$", text["93-program.s"], re.M)
    assert re.search(rf"^{entry}:", text["93-program.s"], re.M)
    assert text["91-program.ll"] == f.source("llvm")
    assert text["92-program-opt.ll"] == f.source("llvm-opt") != text["91-program.ll"]
    assert "gemm float32" in text["90-kernel-ir.txt"] and "# b0: float32[x.0, 7] x" in \
        text["90-kernel-ir.txt"]
    got, total = f(xb, wb)
    want, want_total = _want(xb, wb)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total, want_total, rtol=1e-5)


def test_a_program_from_the_disk_cache_is_dumped_too(graph, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    first, _, _ = _build("cpu", "first")  # compiles, and stores the object
    monkeypatch.setattr(jit, "compile_ir", lambda *a, **k: pytest.fail("compiled again"))
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path / "dumps"))
    again, xb, wb = _build("cpu", "again")
    directory = tmp_path / "dumps" / "again"
    assert _code_files(directory) == CPU_FILES
    assert (directory / "91-program.ll").read_text() == first.source("llvm")
    assert entry_symbol(again._exe.program.code.tag, 0) in (directory / "93-program.s").read_text()
    np.testing.assert_allclose(again(xb, wb)[0], _want(xb, wb)[0], rtol=1e-5, atol=1e-6)


def test_nothing_is_written_without_the_variable(graph, monkeypatch, tmp_path):
    monkeypatch.delenv("GRAPHC_DUMP_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jit, "assembly", lambda *a, **k: pytest.fail("assembly generated"))
    f, xb, wb = _build("cpu", "quiet")
    assert os.listdir(tmp_path) == []
    np.testing.assert_allclose(f(xb, wb)[1], _want(xb, wb)[1], rtol=1e-5)


def test_host_steps_are_listed_in_order_and_need_no_program(graph, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path))
    x = gc.placeholder(gc.float32, (4,), name="x")
    gc.function([x], gc.exp(gc.random.normal((4,), seed=1) + x) * 2.0, name="mixed")
    lines = (tmp_path / "mixed" / "90-kernel-ir.txt").read_text().splitlines()
    host = [n for n, line in enumerate(lines) if line.startswith("## on the host")]
    native = lines.index("## native segment 0")
    assert len(host) == 1 and "random_normal" in lines[host[0]] and host[0] < native
    assert lines[native + 2].startswith("kernel k") and "exp(" in lines[native + 4]
    assert _code_files(tmp_path / "mixed") == CPU_FILES
    gc.function([], gc.random.normal((4,), seed=1), name="drawn")
    assert _code_files(tmp_path / "drawn") == ["90-kernel-ir.txt"]  # no native code


def test_cuda_writes_the_cuda_c_and_its_ptx(graph, monkeypatch, tmp_path):
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path))
    f, _, _ = _build("cuda", "gpu")  # building renders the C; no GPU needed
    directory = tmp_path / "gpu"
    with_ptx = nvcc.find() is not None
    assert _code_files(directory) == ["90-kernel-ir.txt", "91-program.cu"] + \
        (["92-program.ptx"] if with_ptx else [])
    source = (directory / "91-program.cu").read_text()
    assert source == f.source("cuda")
    for k in _kernels(f):
        assert f"kernel {k.name}" in (directory / "90-kernel-ir.txt").read_text()
        assert re.search(rf'extern "C" __global__ void {k.name}_{f._exe.program.code.tag}\(', source)
        if with_ptx:
            assert re.search(rf"\.entry {k.name}_{f._exe.program.code.tag}\(",
                             (directory / "92-program.ptx").read_text())


@pytest.mark.parametrize("name, folder", [("/elsewhere/model.gcg", "_elsewhere_model.gcg"),
                                          ("../up", "_up"), ("..", "function"),
                                          ("mlp step", "mlp_step")])
def test_a_function_name_is_one_folder_inside_the_dump_directory(graph, monkeypatch, tmp_path,
                                                                 name, folder):
    monkeypatch.setenv("GRAPHC_DUMP_DIR", str(tmp_path / "dumps"))
    x = gc.placeholder(gc.float32, (3,), name="x")
    gc.function([x], x + 1.0, name=name)
    assert os.listdir(tmp_path) == ["dumps"]
    assert os.listdir(tmp_path / "dumps") == [folder]
    assert _code_files(tmp_path / "dumps" / folder) == CPU_FILES
