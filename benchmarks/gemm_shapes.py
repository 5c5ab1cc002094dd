"""The generated GEMM alone at the shapes and layouts of W5's, W4's and W9's train steps (forward
products, input gradients with B transposed, filter/weight gradients with A transposed), on one
thread and on every core (through a native thread pool, as programs call it: one share of the
rows per thread), next to np.matmul into a preallocated output.

Prints one JSON line per shape (GFLOP/s; medians of interleaved runs; the load average says
how busy the machine was); `graphc_1thread_cpu` is one thread's GFLOP/s over its CPU time,
which other processes on a shared machine do not inflate.
Usage: python benchmarks/gemm_shapes.py [--quick] [--repeats R] [--threads T]
                                        [--dtype float32|float64] [--only G14 G15 ...]
"""
import ctypes
import os

import numpy as np
from llvmlite import ir

from _common import arguments, check_close, cpu_seconds, guarded, interleaved, result
from graphc.codegen.llvm import gemm, jit, program
from graphc.runtime.threads import ThreadPool

# id: (m, n, k, A transposed, B transposed, what it is)
SHAPES = {
    "G1": (43264, 32, 9, False, False, "W5 conv1 forward"),
    "G2": (7744, 64, 288, False, False, "W5 conv2 forward"),
    "G3": (7744, 288, 64, False, True, "W5 conv2 input gradient"),
    "G4": (9, 32, 43264, True, False, "W5 conv1 filter gradient"),
    "G5": (288, 64, 7744, True, False, "W5 conv2 filter gradient"),
    "G6": (64, 10, 1600, False, False, "W5 dense forward"),
    "G7": (64, 1600, 10, False, True, "W5 dense input gradient"),
    "G8": (1600, 10, 64, True, False, "W5 dense weight gradient"),
    "G9": (128, 512, 784, False, False, "W4 layer 1 forward"),
    "G10": (128, 512, 512, False, False, "W4 layer 2 forward"),
    "G11": (128, 512, 512, False, True, "W4 layer 2 input gradient"),
    "G12": (784, 512, 128, True, False, "W4 layer 1 weight gradient"),
    "G13": (512, 512, 128, True, False, "W4 layer 2 weight gradient"),
    "G14": (6400, 1024, 128, False, False, "W9 input projection"),
    "G15": (64, 1024, 256, False, False, "W9 recurrent product, one step"),
    "G16": (64, 256, 1024, False, True, "W9 gradient through h, one step"),
    "G17": (256, 1024, 6400, True, False, "W9 recurrent kernel gradient"),
    "G18": (128, 1024, 6400, True, False, "W9 kernel gradient"),
}
QUICK = {"G1": (97, 32, 9), "G4": (9, 32, 1000), "G7": (16, 100, 10), "G12": (40, 33, 31)}


def operands(m, n, k, a_t, b_t, dtype):
    """A (m x k) and B (k x n), each row-major or a transposed view of a row-major array."""
    rng = np.random.default_rng([m, n, k])
    a = rng.standard_normal((k, m) if a_t else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if b_t else (k, n)).astype(dtype)
    return (a.T if a_t else a), (b.T if b_t else b)


class PooledGemm:
    """The GEMM of `dtype` as a program calls it: `job(args, lo, hi)` passes this call's share
    [lo, hi) of the rows to the GEMM, and a native thread pool runs the shares."""

    def __init__(self, dtype, threads):
        module = program.gemm_module(dtype)
        fn = gemm.declare_gemm(module, dtype)
        i64 = ir.IntType(64)
        job = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(), i64, i64]),
                          "gemm_job")
        args, lo, hi = job.args
        b = ir.IRBuilder(job.append_basic_block("entry"))
        values = []  # the GEMM's arguments but the row range, from an array of i64
        for i, typ in enumerate(fn.function_type.args[:12]):
            value = b.load(b.gep(args, [ir.Constant(i64, i)], source_etype=i64), typ=i64,
                           name=f"arg{i}")
            values.append(b.inttoptr(value, typ) if isinstance(typ, ir.PointerType) else
                          b.trunc(value, typ) if typ != i64 else value)
        b.call(fn, values + [lo, hi])
        b.ret_void()
        self.library = jit.load_object(jit.compile_ir(str(module), **program.GEMM_PIPELINE))
        self.job = self.library.address("gemm_job")
        self.pool = ThreadPool(threads)

    def __call__(self, a, b, c):
        """c = a @ b (numpy arrays of any strides, c's rows contiguous)."""
        size = a.itemsize
        self.args = (ctypes.c_int64 * 12)(
            a.shape[0], b.shape[1], a.shape[1], a.ctypes.data, a.strides[0] // size,
            a.strides[1] // size, b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
            c.ctypes.data, c.strides[0] // size, 0)
        self.pool.parallel_for(self.job, ctypes.addressof(self.args), a.shape[0])


def measure(id, calls, shape, dtype, repeats):
    m, n, k, a_t, b_t, what = shape
    a, b = operands(m, n, k, a_t, b_t, dtype)
    c, ref = np.empty((m, n), dtype), np.empty((m, n), dtype)
    threads = calls["graphc"].pool.nthreads
    calls["graphc"](a, b, c)
    np.matmul(a, b, out=ref)
    check_close(id, c, ref, rtol=1e-3, atol=1e-3 * np.sqrt(k))
    seconds = interleaved({"graphc": lambda: calls["graphc"](a, b, c),
                           "graphc_1thread": lambda: calls["graphc_1thread"](a, b, c),
                           "numpy": lambda: np.matmul(a, b, out=ref)}, repeats,
                          number=max(1, int(2e7 // (m * n * k))))
    seconds["graphc_1thread_cpu"] = cpu_seconds(lambda: calls["graphc_1thread"](a, b, c), repeats)
    gflops = {who: 2.0 * m * n * k / t / 1e9 for who, t in seconds.items()}
    layout = ("A^T" if a_t else "A") + " @ " + ("B^T" if b_t else "B")
    return [result(id, f"{what}: {layout}, {dtype} {m}x{n}x{k}", "GFLOP/s", gflops["graphc"],
                   gflops["numpy"], None, m=m, n=n, k=k, dtype=dtype, threads=threads,
                   graphc_1thread=round(gflops["graphc_1thread"], 1),
                   graphc_1thread_cpu=round(gflops["graphc_1thread_cpu"], 1), repeats=repeats)]


def options(parser):
    parser.add_argument("--repeats", type=int, default=None, help="default 9 (3 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--only", nargs="+", default=None, help="the shapes to run (ids)")


if __name__ == "__main__":
    args = arguments(__doc__, options)
    repeats = args.repeats or (3 if args.quick else 9)
    calls = {"graphc": PooledGemm(args.dtype, args.threads),
             "graphc_1thread": PooledGemm(args.dtype, 1)}
    for id, shape in SHAPES.items():
        if args.only and id not in args.only:
            continue
        if args.quick:
            if id not in QUICK:
                continue
            shape = QUICK[id] + shape[3:]
        guarded(id, "GEMM kernel", lambda: measure(id, calls, shape, args.dtype, repeats))
