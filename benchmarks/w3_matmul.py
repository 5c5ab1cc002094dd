"""W3: matmul at 1024^3 and 2048^3 through graphc's generated GEMM, on every core (rows of C
split into one band per thread, each thread one call: ctypes releases the GIL) and on one
core, next to numpy's matmul on the same inputs in the same run (medians, interleaved).

Prints one JSON line per size, with the load average before it: on a shared machine other
work takes cores away, and the figures with them.
Usage: python benchmarks/w3_matmul.py [size ...] [--repeats R] [--threads T] [--dtype D]
"""
import argparse
import json
import os
import statistics
import threading
import time

import numpy as np
from llvmlite import ir

from graphc.codegen.llvm import gemm, jit


def compiled_gemm(dtype):
    module = ir.Module(name="w3_matmul")
    module.triple = jit.host()[0]
    gemm.define_gemm(module, dtype)
    library = jit.load_object(jit.compile_ir(str(module)))
    fn = library.function(gemm.gemm_name(dtype), None, *gemm.gemm_argtypes())
    fn.library = library  # the code lives as long as the function
    return fn


def matmul_into(fn, a, b, c, threads):
    """c = a @ b, rows of c split evenly over `threads` calls running at once."""
    m, k = a.shape
    n = b.shape[1]
    size = a.itemsize
    args = (m, n, k, a.ctypes.data, a.strides[0] // size, a.strides[1] // size,
            b.ctypes.data, b.strides[0] // size, b.strides[1] // size,
            c.ctypes.data, c.strides[0] // size, 0)
    bounds = [m * t // threads for t in range(threads + 1)]
    if threads == 1:
        fn(*args, 0, m)
        return
    workers = [threading.Thread(target=fn, args=args + (lo, hi))
               for lo, hi in zip(bounds, bounds[1:])]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def measure(fn, dtype, size, repeats, threads):
    rng = np.random.default_rng(size)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty((size, size), dtype)
    ref = np.empty((size, size), dtype)
    load = os.getloadavg()[0]
    matmul_into(fn, a, b, c, threads)  # warm up (and page in c)
    np.matmul(a, b, out=ref)
    err = float(np.abs(c - ref).max() / np.abs(ref).max())
    many, one, numpy_t = [], [], []
    for _ in range(repeats):  # interleaved, so that noise hits all three alike
        many += seconds(lambda: matmul_into(fn, a, b, c, threads), 1)
        one += seconds(lambda: matmul_into(fn, a, b, c, 1), 1)
        numpy_t += seconds(lambda: np.matmul(a, b, out=ref), 1)
    flop = 2.0 * size ** 3
    gflops = {name: flop / statistics.median(t) / 1e9
              for name, t in (("graphc", many), ("graphc_1thread", one), ("numpy", numpy_t))}
    return {"id": "W3b" if size >= 2048 else "W3", "op": f"matmul {dtype}", "size": size,
            "threads": threads, "graphc_gflops": round(gflops["graphc"], 1),
            "graphc_1thread_gflops": round(gflops["graphc_1thread"], 1),
            "numpy_gflops": round(gflops["numpy"], 1),
            "graphc_vs_numpy": round(gflops["graphc"] / gflops["numpy"], 2),
            "max_rel_diff_vs_numpy": float(f"{err:.2e}"), "repeats": repeats,
            "load_avg_before": round(load, 2)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    options = parser.parse_args()
    fn = compiled_gemm(options.dtype)
    for size in options.sizes:
        print(json.dumps(measure(fn, options.dtype, size, options.repeats, options.threads)),
              flush=True)
