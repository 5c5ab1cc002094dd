"""Generated CUDA C run on the host, to check what it computes without a GPU.

The translation unit the renderer makes is compiled by the host C++ compiler after a shim that
defines the CUDA built-ins the kernels use (thread and block indices, atomicCAS, the float/int
bit casts and truncating conversions; cuda_fp16.h's half conversions have host versions). A
launch runs its threads one after another, each through the whole kernel: that is what the GPU
computes for kernels whose threads do not cooperate, and exercises the grid-stride loops with
several blocks and threads. Device math (expf, ...) is the host's libm here, so results agree
with a GPU's to a few ulps, not bitwise.
"""
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


class HostKernels:
    """Kernels compiled for the host: `run(kernel, buffers, dims)` as interpret.run_kernel."""

    def __init__(self, kernels, folder):
        self.symbols = {}
        texts = []
        for n, k in enumerate(kernels):
            self.symbols[id(k)] = f"{k.name}_h{n}"
            texts.append(render_kernel(k, self.symbols[id(k)]))
        prelude = PRELUDE.replace("#include <cuda_fp16.h>\n", "")
        source = "\n\n".join([SHIM, prelude] + texts)
        src, lib = os.path.join(folder, "kernels.cpp"), os.path.join(folder, "kernels.so")
        with open(src, "w") as f:
            f.write(source)
        proc = subprocess.run(["g++", "-std=c++17", "-O1", "-ffp-contract=off", "-fPIC",
                               "-shared", f"-I{cuda_include()}", src, "-o", lib],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        self.library = ctypes.CDLL(lib)
        self.kernels = kernels

    def run(self, kernel, buffers, dims):
        fn = getattr(self.library, self.symbols[id(kernel)])
        table = (ctypes.c_void_p * max(len(buffers), 1))(
            *[None if b is None else b.ctypes.data for b in buffers])
        dims_array = np.array(list(dims) or [0], np.int64)
        error = np.zeros(2, np.int64)
        shape = launch.launch(kernel)
        hi = launch.evaluate(shape.extent, dims)
        args = [table, ctypes.c_void_p(dims_array.ctypes.data), ctypes.c_void_p(error.ctypes.data),
                ctypes.c_longlong(0), ctypes.c_longlong(hi)]
        if launch.blocks(shape, hi):
            for block in range(BLOCKS):
                for thread in range(THREADS):
                    self.library.gc_emulate_thread(block, thread, BLOCKS, THREADS)
                    fn(*args)
        if error[0]:
            raise KernelIndexError(int(error[0]) - 1, int(error[1]))


def compile_for_host(kernels):
    """HostKernels for these kernels (the library stays loaded; its files are removed)."""
    with tempfile.TemporaryDirectory(prefix="graphc-host-cuda-") as folder:
        return HostKernels(kernels, folder)
