"""W8: a chain x = x*1.0001 + 0.001 repeated n times: graph build, O2 optimization and fusion
time, and one run of the compiled chain next to numpy doing the same work eagerly.

Prints one JSON line per chain length. Usage: python benchmarks/w8_chain.py [n ...]
"""
import json
import statistics
import sys
import time

import numpy as np

import graphc as gc
from graphc.passes import optimize


def numpy_chain(x, n):
    for _ in range(n):
        x = x * np.float32(1.0001) + np.float32(0.001)
    return x


def median_seconds(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(n, device="reference"):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (1,), name="x")
        t0 = time.perf_counter()
        y = x
        for _ in range(n):
            y = y * 1.0001 + 0.001
        build = time.perf_counter() - t0
        compiled = optimize([y], "O2")
        groups = len(compiled.partition.groups)
        f = gc.function([x], y, session=gc.Session(g, device=device))
    xb = np.ones(1, np.float32)
    repeats = 5 if n <= 10_000 else 1
    run = median_seconds(lambda: f(xb), repeats)
    ref = median_seconds(lambda: numpy_chain(xb, n), repeats)
    return {"id": "W8", "n": n, "device": device, "build_s": round(build, 3),
            "optimize_s": round(compiled.compile_seconds, 3),
            "pass_s": {k: round(v, 3) for k, v in compiled.pass_seconds.items()},
            "kernel_groups": groups, "run_us": round(run * 1e6, 1),
            "numpy_eager_us": round(ref * 1e6, 1), "run_vs_numpy": round(run / ref, 2)}


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
    for n in sizes:
        print(json.dumps(measure(n)), flush=True)
