"""W7: how long W4's train step takes to compile: cold (an empty disk cache), warm (the cache
the cold run filled) and cold with the code every program links already built (a cache that
`python -m graphc.runtime.prebuild` filled, as an install step would), each in a new process,
as a user starting a script sees it.

Each process times building the graph (with its gradients), gc.function (optimizing, code
generation, loading: the figure) and the first call. Rounds of (cold, warm) on a fresh
$GRAPHC_CACHE_DIR, then cold_prebuilt on another, after one unmeasured process that leaves
Python's bytecode behind, as an installed graphc has it; figures are medians over rounds.
Prints one JSON line per kind.
Usage: python benchmarks/w7_compile_cache.py [--quick]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _common import arguments, guarded, result

# the specification's: TF1's start-up; warm 50 ms
TARGET_MS = {"cold": 160, "warm": 50, "cold_prebuilt": 160}
WORKLOAD = {"cold": "W4 train step: cold compile (empty disk cache, new process)",
            "warm": "W4 train step: warm compile (disk cache, new process)",
            "cold_prebuilt": "W4 train step: cold compile, shared GEMM and thread pool prebuilt "
                             "(python -m graphc.runtime.prebuild; the program's own code not "
                             "cached, new process)"}


def children_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(quick):
    """Runs in the new process: prints {"build_ms", "compile_ms", "compile_cpu_ms",
    "children_cpu_ms", "first_call_ms"} (compile_cpu_ms: the CPU time of compiling, which other
    work on a busy machine inflates less than the wall time; children_cpu_ms: that of the
    processes it forked to compile shared modules meanwhile)."""
    import w4_mlp
    sizes, batch_size = ((64, 32, 32, 10), 16) if quick else (w4_mlp.SIZES, w4_mlp.BATCH)
    params = w4_mlp.initial_params(sizes)
    x, y = w4_mlp.batch((batch_size, sizes[0]), sizes[-1])
    t0 = time.perf_counter()
    pieces = w4_mlp.mlp_graph(sizes, params, w4_mlp.LR)
    t1, c1, k1 = time.perf_counter(), time.process_time(), children_cpu_s()
    f = w4_mlp.compile_step(*pieces)
    t2, c2, k2 = time.perf_counter(), time.process_time(), children_cpu_s()
    f(x, y)
    t3 = time.perf_counter()
    print(json.dumps({"build_ms": (t1 - t0) * 1e3, "compile_ms": (t2 - t1) * 1e3,
                      "compile_cpu_ms": (c2 - c1) * 1e3, "children_cpu_ms": (k2 - k1) * 1e3,
                      "first_call_ms": (t3 - t2) * 1e3}))


def child_env(cache_dir):
    # a user's Python keeps bytecode: without it, importing graphc's CPU backend inside the
    # first gc.function would cost more than compiling
    unset = ("GRAPHC_CACHE", "PYTHONDONTWRITEBYTECODE")
    return {**{k: v for k, v in os.environ.items() if k not in unset},
            "GRAPHC_CACHE_DIR": cache_dir}


def prebuild(cache_dir):
    """The shared code every program links compiled into `cache_dir`, as an install step would."""
    subprocess.run([sys.executable, "-m", "graphc.runtime.prebuild"], check=True,
                   capture_output=True, env=child_env(cache_dir))


def run_child(cache_dir, quick):
    """The child's figures, and total_cpu_ms: the CPU time of the whole process, start to
    exit, with the children it forked to compile (some finish after its first call)."""
    command = [sys.executable, os.path.abspath(__file__), "--child"] + (["--quick"] * quick)
    before = children_cpu_s()
    proc = subprocess.run(command, capture_output=True, text=True, env=child_env(cache_dir))
    if proc.returncode != 0:
        raise RuntimeError(f"the compiling process failed: {proc.stderr.strip()[-1500:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]),
            "total_cpu_ms": (children_cpu_s() - before) * 1e3}


def cache_files(directory):
    return sum(len(files) for _, _, files in os.walk(directory))


def measure(rounds, quick):
    runs = {kind: [] for kind in TARGET_MS}
    entries = {kind: [] for kind in TARGET_MS}
    with tempfile.TemporaryDirectory(prefix="graphc-w7-") as cache_dir:
        run_child(cache_dir, quick)  # unmeasured: writes the bytecode
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="graphc-w7-") as cache_dir:
            for kind in ("cold", "warm"):
                runs[kind].append(run_child(cache_dir, quick))
                entries[kind].append(cache_files(cache_dir))
        with tempfile.TemporaryDirectory(prefix="graphc-w7-") as cache_dir:
            prebuild(cache_dir)
            runs["cold_prebuilt"].append(run_child(cache_dir, quick))
            entries["cold_prebuilt"].append(cache_files(cache_dir))
    records = []
    for kind, samples in runs.items():
        median = {k: round(statistics.median(s[k] for s in samples), 1) for k in samples[0]}
        records.append(result("W7", WORKLOAD[kind], "ms", median["compile_ms"], None,
                              TARGET_MS[kind], better="lower", build_ms=median["build_ms"],
                              compile_cpu_ms=median["compile_cpu_ms"],
                              children_cpu_ms=median["children_cpu_ms"],
                              first_call_ms=median["first_call_ms"],
                              total_cpu_ms=median["total_cpu_ms"], rounds=rounds,
                              cache_files_after=max(entries[kind])))
    return records


def options(parser):
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


if __name__ == "__main__":
    args = arguments(__doc__, options)
    if args.child:
        child(args.quick)
    else:
        guarded("W7", "compile cache", lambda: measure(1 if args.quick else 5, args.quick))
