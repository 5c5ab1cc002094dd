"""What the W1-W8 benchmarks share: interleaved timing with medians, the JSON result line, the
peer figures (PyTorch, JAX) and the guard that turns a failure into an error line.

Every result is one JSON line: {"id", "workload", "unit", "graphc", "numpy", "ratio" (graphc /
numpy, in the unit), "target", "better" ("higher" or "lower"), "met", "torch", "jax",
"load_avg", "limit", "limit_of", "fraction_of_limit", ...details}: `limit` is the machine's
bound for the unit (benchmarks/_machine.py: the FP32 FMA peak for GFLOP/s, and for steps/s
where the script gives flops_per_step; the stream bandwidth for GB/s), null where none applies
(latencies, compile times). Peers are never graphc dependencies: their figures come from this
interpreter when it can import them, else from the one named by $GRAPHC_PEER_PYTHON (running
benchmarks/_peers.py), else they are null. Peers run after graphc and numpy, in their own
timing loop (medians too), so their columns are not interleaved with the other two.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# peer columns: PyTorch eager and JAX everywhere _peers.py has the workload; the others on W1-W4
PEERS = ("torch", "jax", "torch_compile", "tf1", "tf_xla", "pytensor")
_quick = False  # --quick: sizes too small for the targets to mean anything, so none is given
_scripted = False  # arguments() was called: result lines carry the machine's limits


def arguments(doc, extra=None):
    """The parsed command line: --quick (small sizes, few repeats: for tests) and --no-peers."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats (checks that the script works)")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    global _quick, _scripted
    _quick = args.quick
    _scripted = True
    return args


def machine():
    """The machine's measured peak and bandwidth (_machine.machine: once per process, a tiny
    measurement marked quick under --quick), or None outside a benchmark script."""
    if not _scripted:
        return None
    return _machine_module().machine(_quick)


def _machine_module():
    if HERE not in sys.path:  # _common loaded by path (tests): its sibling too
        sys.path.insert(0, HERE)
    import _machine
    return _machine


# BLAS libraries keep their idle threads spinning for a while after a call (OpenBLAS: 2^28
# cycles, about 70 ms), which takes a core from whatever is timed next; and threads that went
# to sleep meanwhile come back slowly (clocked down) on a virtual machine. So each contender's
# turn starts with this pause, then untimed calls for WARM_S: none pays for the one before it,
# and all are timed as in a running loop.
SETTLE_S = 0.1
WARM_S = 0.05


def interleaved(contenders, repeats, number=1, warmup=1):
    """{name: median seconds per call}. Each repeat times `number` back-to-back calls of every
    contender in turn, so that load from other work hits all of them alike."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            if not _quick:
                _settle_and_warm(fn)
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - t0) / number)
    return {name: statistics.median(s) for name, s in samples.items()}


def cpu_seconds(fn, repeats):
    """Median CPU time of this thread per call of fn (which runs on this thread): on a shared
    machine the time other processes take from the core is left out, their cache traffic not."""
    samples = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        samples.append(time.thread_time() - start)
    return statistics.median(samples)


def _settle_and_warm(fn):
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    fn()
    while time.perf_counter() - start < WARM_S:
        fn()


def result(id, workload, unit, graphc, numpy, target, better="higher", peers=None, **details):
    """The JSON record of one figure; `met` says whether graphc's figure reaches `target`."""
    target = None if _quick else target
    met = None
    if target is not None and graphc is not None:
        met = graphc >= target if better == "higher" else graphc <= target
    record = {"id": id, "workload": workload, "unit": unit, "graphc": _round(graphc),
              "numpy": _round(numpy),
              "ratio": _round(graphc / numpy) if graphc is not None and numpy else None,
              "target": target, "better": better, "met": met}
    record.update({name: _round((peers or {}).get(name)) for name in PEERS})
    record["load_avg"] = round(os.getloadavg()[0], 2)
    record.update(details)
    record.update(limits(record, unit, better))
    return record


def limits(record, unit, better="higher"):
    """{"limit", "limit_of", "fraction_of_limit"} of a result line (nulls where the unit has no
    limit or no machine was measured), with "graphc_gflops" for steps/s lines that give
    flops_per_step, "graphc_1thread_fraction_of_limit" beside a graphc_1thread figure, and the
    best peer's figure and fraction."""
    out = {"limit": None, "limit_of": None, "fraction_of_limit": None}
    if record.get("device") not in (None, "cpu"):
        out["limit_of"] = "none measured: the machine's limits are the CPU's"
        return out
    record_machine = machine()
    if record_machine is None:
        return out
    _machine = _machine_module()
    flops = record.get("flops_per_step")
    bound = _machine.limit_for(record_machine, unit, record.get("dtype"), record.get("threads")
                               if record.get("threads") == 1 else None, flops)
    if bound is None:
        return out
    value, what, factor = bound
    limit_unit = "GFLOP/s" if unit == "steps/s" else unit
    what += f", {limit_unit}" + (" (quick measurement: not a real limit)"
                                 if record_machine.get("quick") else "")
    out.update(limit=value, limit_of=what)

    def fraction(figure, limit=value):
        return None if figure is None or not limit else round(figure * factor / limit, 3)
    out["fraction_of_limit"] = fraction(record.get("graphc"))
    if unit == "steps/s" and record.get("graphc") is not None:
        out["graphc_gflops"] = _round(record["graphc"] * factor)
    if record.get("graphc_1thread") is not None and unit == "GFLOP/s":
        one = _machine.limit_for(record_machine, unit, record.get("dtype"), 1)
        out["graphc_1thread_fraction_of_limit"] = fraction(record["graphc_1thread"], one[0])
    peers = {name: record.get(name) for name in PEERS + ("keras_jax", "tf")  # W9's too
             if isinstance(record.get(name), (int, float))}
    if peers:
        pick = max if better == "higher" else min
        best = pick(peers, key=peers.get)
        out.update(best_peer=best, best_peer_fraction_of_limit=fraction(peers[best]))
    return out


def _round(x):
    return None if x is None else float(f"{x:.4g}")


def emit(record):
    print(json.dumps(record), flush=True)


def guarded(id, workload, measure):
    """Emit measure()'s records; a failure becomes {"id", "workload", "error", "where"}, so
    that one broken workload does not hide the others' figures."""
    try:
        records = measure()
    except Exception as err:  # noqa: BLE001 - every failure is reported, none hidden
        emit({"id": id, "workload": workload, "error": f"{type(err).__name__}: {err}"[:2000],
              "where": _where(err)})
        return
    for record in records:
        emit(record)


def _where(err):
    """file:line of the innermost frame in graphc's code (else the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if f"{os.sep}graphc{os.sep}" in f.filename
            or f"{os.sep}runtime{os.sep}" in f.filename] or frames
    frame = ours[-1]
    path = os.path.relpath(frame.filename, os.path.dirname(HERE))
    return f"{path}:{frame.lineno} in {frame.name}"


def check_close(name, got, expected, rtol, atol):
    """Raise if graphc's result is not numpy's: a wrong answer fast is not a figure."""
    if not np.allclose(got, expected, rtol=rtol, atol=atol):
        diff = float(np.max(np.abs(np.asarray(got, np.float64) - expected)))
        raise AssertionError(f"{name}: graphc and numpy differ by up to {diff:.3g}")


def keras_peer(script, args):
    """The last JSON line that `script --peer *args` prints when run by a Python with Keras on
    JAX ($GRAPHC_PEER_PYTHON, else this one if it has Keras), or {"error": why}."""
    peer = os.environ.get("GRAPHC_PEER_PYTHON")
    if peer is None:
        try:
            import keras  # noqa: F401
        except ImportError:
            return {"error": "keras is not installed; set GRAPHC_PEER_PYTHON to a Python "
                             "with keras and jax"}
        peer = sys.executable
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    proc = subprocess.run([peer, os.path.abspath(script), "--peer", *args],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": f"the Keras run failed: {proc.stderr.strip()[-2000:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_figures(workload, sizes, repeats, skip=False):
    """{"torch": figure or None, "jax": ..., "peer_versions": ...} for `workload` (a key of
    _peers.WORKLOADS) at `sizes`, measured here if this interpreter has a peer, else under
    $GRAPHC_PEER_PYTHON; {} when there is none."""
    if skip:
        return {}
    import _peers
    if any(_peers.available(name) for name in _peers.MAKERS):
        return _peers.measure(workload, sizes, repeats)
    python = os.environ.get("GRAPHC_PEER_PYTHON")
    if not python:
        return {}
    command = [python, os.path.join(HERE, "_peers.py"), workload, json.dumps(sizes), str(repeats)]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"peer_error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_details(figures):
    """The fields of a result line that say which peers ran, or why none did."""
    return {k: v for k, v in figures.items() if k not in PEERS}

