"""The CUDA target: kernels become one CUDA C translation unit (graphc/codegen/cuda), which the
runtime compiles with nvcc for the GPU it finds.

Capabilities: matrix products of every float dtype are native (float16 and bfloat16 on the
tensor cores); no kernel stores over an input, since the generated code declares every buffer
pointer __restrict__; a scalar op without CUDA C in codegen/cuda/scalar.py leaves its group to
the numpy reference. Its own kernel passes: products read convolutions' patches where they
are copied from (codegen/cuda/implicit_operands.py), and perfect loop nests under a parallel
loop become one loop whose positions threads take (codegen/cuda/collapse_loops.py).
Assignments are steps: the runtime copies their values on the GPU.

The code (`CudaCode`) is the CUDA C, its symbols suffixed by the hash of the text, and how
each kernel is launched (codegen/cuda/launch.py), which the runtime reads for every run.
"""
import hashlib
from typing import NamedTuple

from ..codegen.cuda import launch, nvcc
from ..codegen.cuda.collapse_loops import collapse_loops
from ..codegen.cuda.implicit_operands import gather_copies
from ..codegen.cuda.render import render_program, symbol
from ..codegen.cuda.scalar import unsupported_ops
from ..kernels.lower import GEMM_DTYPES
from . import Target

TAG = "program_tag"  # replaced by the hash of the source in its symbols
PTX_ARCH = "sm_80"  # the architecture of source("ptx")


def compiler_found():
    """Whether nvcc, which compiles the CUDA C, is on the PATH."""
    return nvcc.find() is not None


class CudaTarget(Target):
    name = "cuda"
    gemm_dtypes = GEMM_DTYPES
    source_kinds = ("cuda", "ptx")
    dump_files = (("91-program.cu", "cuda", None), ("92-program.ptx", "ptx", compiler_found))

    def unsupported(self, kernels):
        return unsupported_ops(kernels)

    def program_passes(self, segments, slots):
        # products read their copied operands (convolutions' patches) in place
        unused = gather_copies(segments, slots)
        for kernels in segments:  # threads take single outputs of pools, not whole images
            kernels[:] = collapse_loops(kernels)
        return unused

    def generate(self, segments, allow_tf32=False, loop_body=False):
        return CudaCode(segments, allow_tf32)

    def _source(self, code, kind):
        """"cuda": the CUDA C; "ptx": nvcc's PTX of it for PTX_ARCH."""
        if kind == "ptx" and code.text:
            return binary(code.text, PTX_ARCH, "ptx").decode()
        return code.text


CUDA = CudaTarget()


class KernelLaunch(NamedTuple):
    """A kernel's symbol in the module and its launch.Launch (which stand-in GPUs read)."""
    symbol: str
    shape: launch.Launch

    def grid(self, dims):
        """(blocks, threads per block, the end of its range) for the run-time dims."""
        hi = launch.evaluate(self.shape.extent, dims)
        return launch.blocks(self.shape, hi, dims), self.shape.threads, hi


class CudaCode:
    """The CUDA C of a program (`text`), the launches of each segment's kernels in order, and
    the 8-byte words of the error report and work area its kernels share."""

    def __init__(self, segments, allow_tf32=False):
        text = render_program(segments, TAG, allow_tf32)
        self.tag = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.text = text.replace(TAG, self.tag)
        self.launches = [[KernelLaunch(symbol(k, self.tag), launch.launch(k)) for k in kernels]
                         for kernels in segments]
        self.work_words = launch.work_words([k for kernels in segments for k in kernels])


def binary(source, arch, output="cubin"):
    """nvcc's PTX (text, as bytes) or cubin of CUDA C for `arch` (e.g. "sm_80")."""
    return nvcc.compile_source(source, arch, output)


def compiler_version():
    """nvcc's version line (part of the key of cached compiled code)."""
    return nvcc.version()
