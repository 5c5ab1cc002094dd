"""Every kernel the test suite built compiles for the GPU (see tests/cuda_coverage.py).

These tests run after all the others: the graphs every test compiled for the CPU were built for
CUDA too, and here their kernels' CUDA C (each distinct one once) goes through nvcc for sm_80
and sm_90 with every warning an error. Run alone, they have nothing to check and say so.
"""
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from graphc.codegen.cuda import nvcc
from graphc.codegen.cuda.render import PRELUDE
from tests import cuda_coverage

pytestmark = pytest.mark.after_suite
ARCHS = ("sm_80", "sm_90")
CHUNK = 400  # kernels per nvcc run: a failure names a few hundred kernels, not thousands


def _recorded():
    if not cuda_coverage.kernels and not cuda_coverage.failures:
        pytest.skip("no test before this one compiled a graph: run it with the suite")
    return list(cuda_coverage.kernels.items())


def test_every_graph_the_suite_compiled_for_the_cpu_builds_for_cuda():
    _recorded()
    assert not cuda_coverage.failures, "\n".join(f"{test}: {error}" for test, error
                                                 in cuda_coverage.failures[:20])


def _unit(arch, start, chunk):
    """(arch, source, [(first line, test) per kernel]) of one nvcc run over a chunk."""
    parts, lines, line = [PRELUDE], [], PRELUDE.count("\n") + 3
    for i, (text, test) in enumerate(chunk):
        parts.append(text.replace(f" {cuda_coverage.NAME}(", f" k{start + i}(", 1))
        lines.append((line, test))
        line += text.count("\n") + 2
    return arch, "\n\n".join(parts), lines


def _compile(unit):
    """None, or what went wrong, with the tests whose kernels nvcc complained of."""
    arch, source, lines = unit
    try:
        ptx = nvcc.compile_source(source, arch).decode()
    except Exception as error:  # noqa: BLE001 -- reported with the tests that built it
        where = {int(n) for n in re.findall(r"kernels\.cu\((\d+)\)", str(error))}
        tests = sorted({next(t for first, t in reversed(lines) if first <= n) for n in where})
        return f"{arch}: kernels of {tests}:\n{error}"
    entries = len(re.findall(r"\.entry\s+k\d+\(", ptx))
    return None if entries == len(lines) else f"{arch}: {entries} of {len(lines)} entries"


@pytest.mark.skipif(nvcc.find() is None, reason="nvcc is not on the PATH")
def test_every_kernel_the_suite_built_compiles_to_ptx_without_warnings():
    recorded = _recorded()
    units = [_unit(arch, start, recorded[start:start + CHUNK])
             for start in range(0, len(recorded), CHUNK) for arch in ARCHS]
    with ThreadPoolExecutor(2) as pool:  # nvcc runs on one core
        problems = [p for p in pool.map(_compile, units) if p]
    assert not problems, "\n\n".join(p[:4000] for p in problems)  # every chunk's, shortened
