"""Throughput of graphc's vectorized math functions: y = f(x) over float32[2**24], one thread,
next to numpy doing the same in the same run (output arrays reused by both).

GB/s counts 8 bytes per element (read x, write y); figures are medians of 5 interleaved runs.
Prints one JSON line per function. Usage: python benchmarks/mathlib_throughput.py [name ...]
"""
import ctypes
import json
import statistics
import sys
import time

import llvmlite.ir as ir
import numpy as np

from graphc.codegen.llvm import jit, mathlib


def _sigmoid(x, out):
    np.exp(-x, out=out)
    out += 1
    np.reciprocal(out, out=out)


def _softplus(x, out):
    np.logaddexp(np.float32(0), x, out=out)


# name -> (numpy on the same work or None, input range)
WORKLOADS = {
    "tanh": (lambda x, out: np.tanh(x, out=out), (-10, 10)),
    "exp": (lambda x, out: np.exp(x, out=out), (-80, 80)),
    "expm1": (lambda x, out: np.expm1(x, out=out), (-10, 10)),
    "log": (lambda x, out: np.log(x, out=out), (1e-3, 1e3)),
    "log1p": (lambda x, out: np.log1p(x, out=out), (0, 1e3)),
    "sigmoid": (_sigmoid, (-10, 10)),
    "softplus": (_softplus, (-10, 10)),
    "erf": (None, (-4, 4)),
    "sin": (lambda x, out: np.sin(x, out=out), (-100, 100)),
    "cos": (lambda x, out: np.cos(x, out=out), (-100, 100)),
}


def measure(names, n=1 << 24, repeats=5):
    module = ir.Module(name="mathlib_throughput")
    module.triple = jit.host()[0]
    for name in names:
        mathlib.define_map(module, f"map_{name}", name, ir.FloatType())
    library = jit.load_object(jit.compile_ir(str(module)))
    rng = np.random.default_rng(0)
    out = np.zeros(n, np.float32)  # touched once, so no run pays for page faults
    for name in names:
        numpy_fn, (lo, hi) = WORKLOADS[name]
        x = rng.uniform(lo, hi, n).astype(np.float32)
        kernel = library.function(f"map_{name}", None, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_int64)
        contenders = {"graphc": lambda: kernel(x.ctypes.data, out.ctypes.data, n)}
        if numpy_fn is not None:
            contenders["numpy"] = lambda: numpy_fn(x, out)
        times = {who: [] for who in contenders}
        for _ in range(repeats):
            for who, fn in contenders.items():
                t0 = time.perf_counter()
                fn()
                times[who].append(time.perf_counter() - t0)
        rate = {who: round(8 * n / statistics.median(ts) / 1e9, 2) for who, ts in times.items()}
        print(json.dumps({"id": "mathlib", "function": name, "dtype": "float32", "n": n,
                          "threads": 1, "graphc_GBps": rate["graphc"],
                          "numpy_GBps": rate.get("numpy")}), flush=True)


if __name__ == "__main__":
    measure(sys.argv[1:] or list(WORKLOADS))
