"""W3: relu(x @ W + b) at 1024^3 and W3b: x @ W at 2048^3, compiled by gc.function on device
"cpu", next to numpy (np.matmul, + b, np.maximum) on the same inputs (interleaved, medians).

Extra lines W3-gemm / W3b-gemm time graphc's generated GEMM kernel alone, called through ctypes
on every core (rows of C split into one band per thread, each thread one call: ctypes releases
the GIL) and on one core, next to np.matmul into a preallocated output; graphc_1thread_cpu
counts the one-core call's CPU time instead of the wall-clock time (see cpu_seconds).
W3 and W3b's target is 90% of the machine's measured FMA peak on all cores.
Prints one JSON line per figure; on a shared machine the load average says how busy it was.
Usage: python benchmarks/w3_matmul.py [--quick] [--no-peers] [--repeats R] [--threads T]
                                      [--dtype float32|float64]
"""
import os
import threading

import numpy as np

import graphc as gc
from _common import (arguments, check_close, cpu_seconds, guarded, interleaved, machine,
                     peer_details, peer_figures, result)
from _machine import limit_for
from graphc.codegen.llvm import gemm, jit, program

TARGET_FRACTION = 0.9  # of the machine's measured FMA peak, all cores (W3 and W3b alike)


def target(dtype):
    """GFLOP/s that W3 and W3b must reach: TARGET_FRACTION of the measured FMA peak in dtype
    (None outside a benchmark run, where nothing was measured)."""
    record = machine()
    bound = record and limit_for(record, "GFLOP/s", dtype)
    return round(TARGET_FRACTION * bound[0], 1) if bound else None


def workloads(size, bias_relu):
    """(graphc expression, numpy function) of x, W, b."""
    if bias_relu:
        return (lambda x, w, b: gc.relu(x @ w + b)), (lambda x, w, b: np.maximum(x @ w + b, 0))
    return (lambda x, w, b: x @ w), (lambda x, w, b: x @ w)


def measure(id, size, bias_relu, dtype, repeats, no_peers):
    expression, numpy_fn = workloads(size, bias_relu)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (size, size), name="x")
        w = gc.placeholder(dtype, (size, size), name="W")
        b = gc.placeholder(dtype, (size,), name="b")
        inputs = [x, w, b] if bias_relu else [x, w]
        f = gc.function(inputs, expression(x, w, b), session=gc.Session(g, device="cpu"))
    rng = np.random.default_rng(size)
    xb, wb = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    bb = rng.standard_normal(size).astype(dtype)
    fed = [xb, wb, bb][:len(inputs)]
    check_close(id, f(*fed), numpy_fn(xb, wb, bb), rtol=1e-3, atol=1e-3 * np.sqrt(size))
    seconds = interleaved({"graphc": lambda: f(*fed), "numpy": lambda: numpy_fn(xb, wb, bb)},
                          repeats)
    gflops = {who: 2.0 * size ** 3 / t / 1e9 for who, t in seconds.items()}
    peers = peer_figures(id, {"n": size}, repeats, no_peers or dtype != "float32")
    what = "relu(x @ W + b)" if bias_relu else "x @ W"
    return [result(id, f"{what}, {dtype} {size}^3", "GFLOP/s", gflops["graphc"],
                   gflops["numpy"], target(dtype),
                   peers=peers, size=size, dtype=dtype, repeats=repeats,
                   **peer_details(peers))]


# ---- the GEMM kernel alone ---------------------------------------------------------------------
def compiled_gemm(dtype):
    """The GEMM as programs link it (its own module, at the level programs compile it)."""
    module = program.gemm_module(dtype)
    library = jit.load_object(jit.compile_ir(str(module), **program.GEMM_PIPELINE))
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


def measure_gemm(id, fn, dtype, size, repeats, threads):
    rng = np.random.default_rng(size)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    c = np.empty((size, size), dtype)
    ref = np.empty((size, size), dtype)
    matmul_into(fn, a, b, c, threads)  # pages in c
    np.matmul(a, b, out=ref)
    err = float(np.abs(c - ref).max() / np.abs(ref).max())
    seconds = interleaved({"graphc": lambda: matmul_into(fn, a, b, c, threads),
                           "graphc_1thread": lambda: matmul_into(fn, a, b, c, 1),
                           "numpy": lambda: np.matmul(a, b, out=ref)}, repeats)
    seconds["graphc_1thread_cpu"] = cpu_seconds(lambda: matmul_into(fn, a, b, c, 1), repeats)
    gflops = {who: 2.0 * size ** 3 / t / 1e9 for who, t in seconds.items()}
    return [result(f"{id}-gemm", f"GEMM kernel alone, {dtype} {size}^3", "GFLOP/s",
                   gflops["graphc"], gflops["numpy"], None, size=size, dtype=dtype,
                   threads=threads, graphc_1thread=round(gflops["graphc_1thread"], 1),
                   graphc_1thread_cpu=round(gflops["graphc_1thread_cpu"], 1),
                   max_rel_diff_vs_numpy=float(f"{err:.2e}"), repeats=repeats)]


def options(parser):
    parser.add_argument("--repeats", type=int, default=None, help="default 7 (3 with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for the GEMM-kernel lines")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")


if __name__ == "__main__":
    args = arguments(__doc__, options)
    repeats = args.repeats or (3 if args.quick else 7)
    sizes = {"W3": 96, "W3b": 130} if args.quick else {"W3": 1024, "W3b": 2048}
    for id, size in sizes.items():
        guarded(id, "matmul", lambda: measure(id, size, id == "W3", args.dtype, repeats,
                                              args.no_peers))
    kernel = compiled_gemm(args.dtype)
    for id, size in sizes.items():
        guarded(f"{id}-gemm", "GEMM kernel", lambda: measure_gemm(id, kernel, args.dtype, size,
                                                                  repeats, args.threads))
