"""Generated CUDA C run on the host, to check what it computes without a GPU.

The translation unit the renderer makes is compiled by the host C++ compiler after a shim that
defines the CUDA built-ins the kernels use (thread and block indices, atomicCAS, the float/int
bit casts and truncating conversions; cuda_fp16.h's half conversions have host versions). A
launch runs its threads one after another, each through the whole kernel: that is what the GPU
computes for kernels whose threads do not cooperate, and exercises the grid-stride loops with
several blocks and threads. Device math (expf, ...) is the host's libm here, so results agree
with a GPU's to a few ulps, not bitwise.
"""
import contextlib
import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np

from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.render import render_kernel
from graphc.codegen.cuda.scalar import PRELUDE
from graphc.kernels.interpret import KernelIndexError

SHIM = r"""// host emulation of the CUDA built-ins graphc's kernels use
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <cuda_fp16.h>
using namespace std;
#undef __device__
#undef __forceinline__
#undef __global__
#define __device__
#define __forceinline__ inline
#define __global__

struct gc_index3 { unsigned int x, y, z; };
static gc_index3 threadIdx, blockIdx, blockDim, gridDim;
extern "C" void gc_emulate_thread(unsigned int block, unsigned int thread, unsigned int blocks,
                                  unsigned int threads) {
    blockIdx = {block, 0, 0};
    threadIdx = {thread, 0, 0};
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
}
static unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected,
                                    unsigned long long value) {
    unsigned long long old = *p;
    if (old == expected) *p = value;
    return old;
}
static unsigned int __float_as_uint(float x) { unsigned int u; memcpy(&u, &x, 4); return u; }
static float __uint_as_float(unsigned int u) { float x; memcpy(&x, &u, 4); return x; }
// cvt.rzi: truncate toward zero, saturate, NaN -> 0
template <typename I, typename F> static I gc_truncate(F x) {
    if (x != x) return 0;
    if (x >= (F)numeric_limits<I>::max()) return numeric_limits<I>::max();
    if (x <= (F)numeric_limits<I>::min()) return numeric_limits<I>::min();
    return (I)x;
}
static int __float2int_rz(float x) { return gc_truncate<int>(x); }
static long long __float2ll_rz(float x) { return gc_truncate<long long>(x); }
static int __double2int_rz(double x) { return gc_truncate<int>(x); }
static long long __double2ll_rz(double x) { return gc_truncate<long long>(x); }
"""
BLOCKS, THREADS = 2, 3  # the emulated grid: threads share iterations as on a GPU


def cuda_include():
    """The CUDA toolkit's include directory (for cuda_fp16.h), or None."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    for root in filter(None, roots):
        if os.path.exists(os.path.join(root, "include", "cuda_fp16.h")):
            return os.path.join(root, "include")
    return None


def missing_toolchain():
    """Why host emulation cannot run here, or None."""
    if shutil.which("g++") is None:
        return "no host C++ compiler (g++)"
    if nvcc.find() is None or cuda_include() is None:
        return "no CUDA toolkit (nvcc and cuda_fp16.h)"
    return None


def host_library(source):
    """A CUDA C translation unit (the renderer's, prelude included) compiled for the host and
    loaded; each kernel takes the CUDA kernel's arguments and runs one emulated thread."""
    source = source.replace("#include <cuda_fp16.h>\n", SHIM, 1)
    with tempfile.TemporaryDirectory(prefix="graphc-host-cuda-") as folder:
        src, lib = os.path.join(folder, "kernels.cpp"), os.path.join(folder, "kernels.so")
        with open(src, "w") as f:
            f.write(source)
        proc = subprocess.run(["g++", "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC",
                               "-shared", f"-I{cuda_include()}", src, "-o", lib],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return ctypes.CDLL(lib)


def emulated_launch(library, symbol):
    """launch(blocks, threads, buffers, dims, error, lo, hi) of a kernel in a host library:
    the BLOCKS x THREADS emulated threads run in turn, whatever grid was asked for (the
    kernels' grid-stride loops give every grid the same result)."""
    fn = getattr(library, symbol)
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_longlong] * 2
    fn.restype = None

    def launch(blocks, threads, *args):
        assert blocks > 0 and threads > 0
        for block in range(BLOCKS):
            for thread in range(THREADS):
                library.gc_emulate_thread(block, thread, BLOCKS, THREADS)
                fn(*args)
    return launch


class HostKernels:
    """Kernels compiled for the host: `run(kernel, buffers, dims)` as interpret.run_kernel."""

    def __init__(self, kernels):
        symbols = {id(k): f"{k.name}_h{n}" for n, k in enumerate(kernels)}
        source = "\n\n".join([PRELUDE] + [render_kernel(k, symbols[id(k)]) for k in kernels])
        library = host_library(source)
        self.launchers = {i: emulated_launch(library, name) for i, name in symbols.items()}
        self.kernels = kernels

    def run(self, kernel, buffers, dims):
        table = (ctypes.c_void_p * max(len(buffers), 1))(
            *[None if b is None else b.ctypes.data for b in buffers])
        dims_array = np.array(list(dims) or [0], np.int64)
        error = np.zeros(2, np.int64)
        shape = launch.launch(kernel)
        hi = launch.evaluate(shape.extent, dims)
        if launch.blocks(shape, hi):
            self.launchers[id(kernel)](1, 1, ctypes.addressof(table), dims_array.ctypes.data,
                                       error.ctypes.data, 0, hi)
        if error[0]:
            raise KernelIndexError(int(error[0]) - 1, int(error[1]))


def compile_for_host(kernels):
    return HostKernels(kernels)


class HostGpu:
    """A stand-in for runtime.cuda_driver.Gpu: its memory is host memory and its kernels the
    generated CUDA C compiled for the host, so the CUDA device's run path runs without a GPU."""

    arch = "host"

    def __init__(self):
        self.loads = 0

    @contextlib.contextmanager
    def current(self):
        yield self

    def allocate(self, nbytes, what):
        return Allocation(max(nbytes, 1))

    def upload(self, allocation, array):
        allocation.bytes[:array.nbytes] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)

    def download(self, array, allocation):
        array.reshape(-1).view(np.uint8)[:] = allocation.bytes[:array.nbytes]

    def load(self, source):
        self.loads += 1
        return HostModule(host_library(source))


class Allocation:
    def __init__(self, nbytes):
        self.bytes = np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.bytes.ctypes.data


class HostModule:
    def __init__(self, library):
        self.library = library

    def kernel(self, symbol):
        return emulated_launch(self.library, symbol)
