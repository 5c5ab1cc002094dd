"""Generated CUDA C run on the host, to check what it computes without a GPU.

The translation unit the renderer makes is compiled by the host C++ compiler after a shim that
defines the CUDA built-ins the kernels use (thread and block indices, atomics, the float/int
bit casts and truncating conversions; cuda_fp16.h's half conversions have host versions), and
host_wmma.h the tensor cores' fragments in place of <mma.h>. A
launch runs its threads one after another, each through the whole kernel: that is what the GPU
computes for kernels whose threads do not cooperate, and exercises the grid-stride loops with
several blocks and threads. Device math (expf, ...) is the host's libm here, so results agree
with a GPU's to a few ulps, not bitwise. Misaligned accesses abort (g++'s alignment sanitizer),
so a vector load or store that a GPU would fault on fails the tests here too.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile

import numpy as np

from graphc.codegen.cuda import launch, nvcc
from graphc.codegen.cuda.render import PRELUDE, render_kernel
from graphc.kernels.interpret import KernelIndexError

SHIM = r"""// host emulation of the CUDA built-ins graphc's kernels use
#include <atomic>
#include <barrier>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>
#include <cuda_fp16.h>
using namespace std;
#undef __device__
#undef __forceinline__
#undef __global__
#undef __shared__
#define __device__
#define __forceinline__ inline
#define __global__
#define __shared__ static  // blocks run one after another: a block's threads share it

struct gc_index3 { unsigned int x, y, z; };
static thread_local gc_index3 threadIdx;
static gc_index3 blockIdx, blockDim, gridDim;
static barrier<>* gc_barrier;
static void __syncthreads() { gc_barrier->arrive_and_wait(); }
static void __threadfence() { atomic_thread_fence(memory_order_seq_cst); }
static unsigned int atomicAdd(unsigned int* p, unsigned int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
// warps of 32 threads exchange values through gc_shuffled, meeting at their warp's barrier
static vector<unique_ptr<barrier<>>> gc_warp_barriers;
static unsigned long long gc_shuffled[1024];
template <typename T> static T __shfl_xor_sync(unsigned int, T v, int mask) {
    static_assert(sizeof(T) <= sizeof(gc_shuffled[0]));
    barrier<>& warp = *gc_warp_barriers[threadIdx.x / 32];
    memcpy(&gc_shuffled[threadIdx.x], &v, sizeof(T));
    warp.arrive_and_wait();
    memcpy(&v, &gc_shuffled[threadIdx.x ^ mask], sizeof(T));
    warp.arrive_and_wait();
    return v;
}
#define __builtin_assume(condition) ((void)0)
static bool __isGlobal(const void*) { return true; }
typedef void (*gc_kernel)(void* const*, const long long*, long long*, long long, long long);
// A launch: blocks one after another, the threads of a block at once on OS threads, so that
// __syncthreads is a barrier (and each warp has one for its shuffles); a thread that has
// returned no longer holds the others up.
extern "C" void gc_emulate_launch(gc_kernel kernel, unsigned int blocks, unsigned int threads,
                                  void* const* buffers, const long long* dims, long long* error,
                                  long long lo, long long hi) {
    gridDim = {blocks, 1, 1};
    blockDim = {threads, 1, 1};
    for (unsigned int block = 0; block < blocks; ++block) {
        blockIdx = {block, 0, 0};
        barrier<> sync(threads);
        gc_barrier = &sync;
        gc_warp_barriers.clear();
        for (unsigned int first = 0; first < threads; first += 32)
            gc_warp_barriers.emplace_back(new barrier<>(min(threads - first, 32u)));
        vector<thread> running;
        for (unsigned int t = 0; t < threads; ++t)
            running.emplace_back([&, t] {
                threadIdx = {t, 0, 0};
                kernel(buffers, dims, error, lo, hi);
                sync.arrive_and_drop();
                gc_warp_barriers[t / 32]->arrive_and_drop();
            });
        for (thread& th : running) th.join();
    }
}
static unsigned long long atomicCAS(unsigned long long* p, unsigned long long expected,
                                    unsigned long long value) {
    __atomic_compare_exchange_n(p, &expected, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;  // the old value, whether or not it was swapped
}
static unsigned int atomicCAS(unsigned int* p, unsigned int expected, unsigned int value) {
    __atomic_compare_exchange_n(p, &expected, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return expected;
}
static int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
// float adds: swap in old + v over the value's bits until no other thread came between
static float gc_sum(float a, float b) { return a + b; }
static double gc_sum(double a, double b) { return a + b; }
static __half gc_sum(__half a, __half b) {
    return __float2half_rn(__half2float(a) + __half2float(b));
}
template <typename T, typename Bits> static T gc_atomic_float_add(T* p, T v) {
    Bits* word = (Bits*)p;
    Bits seen = __atomic_load_n(word, __ATOMIC_SEQ_CST), sum_bits;
    T old;
    do {
        memcpy(&old, &seen, sizeof(T));
        T sum = gc_sum(old, v);
        memcpy(&sum_bits, &sum, sizeof(T));
    } while (!__atomic_compare_exchange_n(word, &seen, sum_bits, false, __ATOMIC_SEQ_CST,
                                          __ATOMIC_SEQ_CST));
    return old;
}
static float atomicAdd(float* p, float v) { return gc_atomic_float_add<float, unsigned>(p, v); }
static double atomicAdd(double* p, double v) {
    return gc_atomic_float_add<double, unsigned long long>(p, v);
}
static __half atomicAdd(__half* p, __half v) {
    return gc_atomic_float_add<__half, unsigned short>(p, v);
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
static unsigned int __float2uint_rz(float x) { return gc_truncate<unsigned int>(x); }
static unsigned long long __float2ull_rz(float x) { return gc_truncate<unsigned long long>(x); }
static unsigned int __double2uint_rz(double x) { return gc_truncate<unsigned int>(x); }
static unsigned long long __double2ull_rz(double x) {
    return gc_truncate<unsigned long long>(x);
}
"""
with open(os.path.join(os.path.dirname(__file__), "host_wmma.h")) as _header:
    WMMA = _header.read()
# the emulated grid by kind of launch: at most 2 blocks; kernels whose threads only share
# iterations run 3 threads, those whose warps or blocks share reductions two warps (their code
# reads blockDim), tiled matrix products the block size their code is written for
BLOCKS = 2
SPLIT_BLOCKS = 8  # "split_rows": enough for a few rows to be split
THREADS = {"flat": 3, "loop": 3, "gemm": 3, "single": 3,
           **dict.fromkeys(("rows", "block", "warp_rows", "warp_dots", "grid", "split_rows"), 64)}


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
    source = source.replace("#include <mma.h>\n", WMMA, 1)
    with tempfile.TemporaryDirectory(prefix="graphc-host-cuda-") as folder:
        src, lib = os.path.join(folder, "kernels.cpp"), os.path.join(folder, "kernels.so")
        with open(src, "w") as f:
            f.write(source)
        proc = subprocess.run(["g++", "-std=c++20", "-O1", "-ffp-contract=off", "-fPIC",
                               "-fsanitize=alignment", "-fno-sanitize-recover=alignment",
                               "-shared", "-pthread", f"-I{cuda_include()}", src, "-o", lib],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return ctypes.CDLL(lib)


def emulated_launch(library, symbol, shape):
    """launch(blocks, threads, buffers, dims, error, lo, hi) of a kernel in a host library
    with the Launch `shape`: the emulated grid (THREADS) in place of the one asked for, which
    gives the same result: the kernels' loops stride by the grid they find."""
    fn = getattr(library, symbol)
    threads = THREADS.get(shape.kind, shape.threads)
    run = library.gc_emulate_launch
    run.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 2 + [ctypes.c_void_p] * 3 + [
        ctypes.c_longlong] * 2
    run.restype = None

    def launch(blocks, _threads, *args):
        assert blocks > 0
        most = SPLIT_BLOCKS if shape.kind == "split_rows" else BLOCKS
        run(ctypes.cast(fn, ctypes.c_void_p), min(blocks, most), threads, *args)
    return launch


class HostKernels:
    """Kernels compiled for the host: `run(kernel, buffers, dims)` as interpret.run_kernel."""

    def __init__(self, kernels, tf32=False):
        symbols = {id(k): f"{k.name}_h{n}" for n, k in enumerate(kernels)}
        source = "\n\n".join([PRELUDE] + [render_kernel(k, symbols[id(k)], tf32)
                                           for k in kernels])
        library = host_library(source)
        self.launchers = {id(k): emulated_launch(library, symbols[id(k)], launch.launch(k))
                          for k in kernels}
        self.kernels = kernels
        self.work_words = launch.work_words(kernels)

    def run(self, kernel, buffers, dims):
        table = (ctypes.c_void_p * max(len(buffers), 1))(
            *[None if b is None else b.ctypes.data for b in buffers])
        dims_array = np.array(list(dims) or [0], np.int64)
        error = np.zeros(self.work_words, np.int64)
        shape = launch.launch(kernel)
        hi = launch.evaluate(shape.extent, dims)
        blocks = launch.blocks(shape, hi, dims_array)
        if blocks:
            self.launchers[id(kernel)](blocks, shape.threads, ctypes.addressof(table),
                                       dims_array.ctypes.data, error.ctypes.data, 0, hi)
        if error[0]:
            raise KernelIndexError(int(error[0]) - 1, int(error[1]))


def compile_for_host(kernels, tf32=False):
    return HostKernels(kernels, tf32)
