"""Device "cuda" under the whole test suite, with or without a GPU.

Every graph a test compiles for device "cpu" is compiled for device "cuda" as well (lowered and
rendered to CUDA C: no GPU needed), and each distinct kernel's CUDA C is kept with the first
test that made it. tests/codegen/cuda/test_suite_kernels.py runs after every other test and
compiles them all with nvcc for sm_80 and sm_90, every warning an error; it fails too on any
graph that compiled for the CPU but not for CUDA.

Where CUDA code can run, `tests.helpers.run` also runs every op test on device "cuda" against
the reference: on a real GPU (pycuda and an NVIDIA GPU found), or, with GRAPHC_TEST_CUDA=host,
on the host emulation of tests/codegen/cuda (the CUDA C compiled by g++; slow: about a second
per graph).
"""
import os

from graphc.codegen.cuda.render import render_kernel
from graphc.compiler import NativeStep
from graphc.errors import DeviceError
from graphc.runtime import cuda_driver
from graphc.runtime.cpu import CpuExecutable
from graphc.runtime.cuda import CudaExecutable

NAME = "gc_kernel"  # every kernel rendered under this name, so that twins have one text
kernels = {}  # CUDA C of a kernel -> the test that first built it
failures = []  # (test, error) of graphs that compiled for the CPU but not for CUDA
graphs = 0  # graphs built for CUDA beside the CPU
runs_on = None  # where device "cuda" runs the op tests: "gpu", "host" or None (set by conftest)


def where_cuda_runs():
    """"gpu", "host" (GRAPHC_TEST_CUDA=host) or None; installs the host emulation's GPU."""
    if os.environ.get("GRAPHC_TEST_CUDA") == "host":
        from tests.codegen.cuda.fake_driver import emulated_gpu
        cuda_driver._gpu = emulated_gpu(capacity=8 << 30)
        return "host"
    try:
        cuda_driver.gpu()
    except DeviceError:  # no pycuda, no driver or no GPU: the reason shows in the cuda tests
        return None  # (any other failure of the start-up stops the run: it is a bug)
    return "gpu"


def _current_test():
    return os.environ.get("PYTEST_CURRENT_TEST", "(outside a test)").rsplit(" ", 1)[0]


def _also_for_cuda(fetches, feeds, options, name, effects):
    """The CUDA executable of a graph just compiled for the CPU; its kernels recorded."""
    dump_dir = os.environ.pop("GRAPHC_DUMP_DIR", None)  # the test's dumps are the CPU's
    try:
        exe = CudaExecutable(fetches, feeds, options, name, effects)
    except Exception as error:  # noqa: BLE001 -- every failure is reported, by test
        failures.append((_current_test(), f"{type(error).__name__}: {error}"))
        return
    finally:
        if dump_dir is not None:
            os.environ["GRAPHC_DUMP_DIR"] = dump_dir
    global graphs
    graphs += 1
    test = _current_test()
    for kernel in program_kernels(exe.program):
        kernels.setdefault(render_kernel(kernel, NAME, options.allow_tf32), test)


def program_kernels(program):
    """Every kernel of a Program: its native steps', then its loops' and conds' compiled
    bodies' (nested ones too)."""
    for step in program.steps:
        if isinstance(step, NativeStep):
            yield from step.kernels
        elif getattr(step, "bodies", None):
            for body_program in step.bodies.values():
                yield from program_kernels(body_program)


def record_cuda_builds():
    """From now on, every CPU executable built is built for CUDA too (see the docstring)."""
    build_for_cpu = CpuExecutable.__init__

    def build(self, fetches, feeds, options, name="session", effects=()):
        build_for_cpu(self, fetches, feeds, options, name, effects)
        if type(self) is CpuExecutable:
            _also_for_cuda(fetches, feeds, options, name, effects)

    CpuExecutable.__init__ = build
