"""W8: a chain x = x*1.0001 + 0.001 repeated n times on float32[1000].

Two lines per chain length:
- W8: gc.function on device "cpu": compile seconds (gc.function creation: optimizing, fusion,
  code generation, loading; with an empty kernel cache, so that the code is really compiled)
  and microseconds per call (median of blocks of calls). numpy has no compiled counterpart,
  so its column is null;
- W8-optimize: graph build, O2 optimization and fusion time (per pass), and one run on device
  "reference", next to numpy doing the same work eagerly.

Usage: python benchmarks/w8_chain.py [n ...] [--quick]   (default n: 1000 10000 100000)
"""
import contextlib
import os
import tempfile
import time

import numpy as np

import graphc as gc
from _common import arguments, check_close, guarded, interleaved, result
from graphc.passes import optimize

SIZE = 1000  # elements of x
# the specification's (s, us): at least 6x faster than torch.compile; the arithmetic takes ~0.1 ms
TARGETS = {10_000: {"compile": 1.5, "run": 170}}


def chain(n):
    """(graph, x, y, seconds to build it)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (SIZE,), name="x")
        t0 = time.perf_counter()
        y = x
        for _ in range(n):
            y = y * 1.0001 + 0.001
        return g, x, y, time.perf_counter() - t0


def numpy_chain(x, n):
    for _ in range(n):
        x = x * np.float32(1.0001) + np.float32(0.001)
    return x


@contextlib.contextmanager
def empty_cache():
    """$GRAPHC_CACHE_DIR set to a new, empty directory for the duration."""
    saved = os.environ.get("GRAPHC_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="graphc-w8-") as cache_dir:
        os.environ["GRAPHC_CACHE_DIR"] = cache_dir
        try:
            yield
        finally:
            if saved is None:
                del os.environ["GRAPHC_CACHE_DIR"]
            else:
                os.environ["GRAPHC_CACHE_DIR"] = saved


def measure_cpu(n, repeats):
    g, x, y, _ = chain(n)
    with empty_cache():
        t0 = time.perf_counter()
        f = gc.function([x], y, session=gc.Session(g, device="cpu"))
        compile_s = time.perf_counter() - t0
    xb = np.linspace(-1, 1, SIZE, dtype=np.float32)
    check_close(f"W8 n={n}", f(xb), numpy_chain(xb, n), rtol=1e-4, atol=0)
    run_us = interleaved({"graphc": lambda: f(xb)}, repeats, number=100)["graphc"] * 1e6
    targets = TARGETS.get(n, {})
    kernels = f.stats()["kernels"]
    what = f"chain of {n} x*1.0001+0.001 on float32[{SIZE}]"
    return [result("W8", f"{what}: compile", "s", compile_s, None, targets.get("compile"),
                   better="lower", n=n, kernels=kernels),
            result("W8", f"{what}: run", "us", run_us, None, targets.get("run"), better="lower",
                   n=n, kernels=kernels, calls_per_sample=100, repeats=repeats)]


def measure_optimizer(n):
    g, x, y, build = chain(n)
    with g.as_default():
        compiled = optimize([y], "O2")
        groups = len(compiled.partition.groups)
        f = gc.function([x], y, session=gc.Session(g, device="reference"))
    xb = np.linspace(-1, 1, SIZE, dtype=np.float32)
    repeats = 5 if n <= 10_000 else 1
    times = interleaved({"graphc": lambda: f(xb), "numpy": lambda: numpy_chain(xb, n)},
                        repeats, warmup=0)
    run, ref = times["graphc"], times["numpy"]
    return [{"id": "W8-optimize", "n": n, "device": "reference", "build_s": round(build, 3),
             "optimize_s": round(compiled.compile_seconds, 3),
             "pass_s": {k: round(v, 3) for k, v in compiled.pass_seconds.items()},
             "kernel_groups": groups, "run_us": round(run * 1e6, 1),
             "numpy_eager_us": round(ref * 1e6, 1), "run_vs_numpy": round(run / ref, 2)}]


def options(parser):
    parser.add_argument("sizes", nargs="*", type=int, help="chain lengths")


if __name__ == "__main__":
    args = arguments(__doc__, options)
    sizes = args.sizes or ([50] if args.quick else [1_000, 10_000, 100_000])
    repeats = 3 if args.quick else 15
    for n in sizes:
        guarded("W8", f"chain of {n}", lambda: measure_cpu(n, repeats))
        guarded("W8-optimize", f"chain of {n}", lambda: measure_optimizer(n))
