"""W11: W4's train step (MLP 784-512-512-10, SGD, global batch 128) data parallel on MPI: one
process with every core's thread, then `mpiexec -n 2` with one thread per rank (each rank 64
examples, gradients averaged by gc.train.DistributedOptimizer), on the same machine. Reports
steps/s of both, the scaling efficiency (2 ranks' steps/s over one process's, on the same
cores), the measured compute and communication per step (time inside MPI; and for the
native allreduces, the time from each start to its completion and how much of it overlapped
the rest of the step), and from them the ring-allreduce cost
model's expected efficiency at 8 and 64 machines on 10 and 100 Gb/s links (a model, not a
measurement: see the README's "Training on several processes").

Prints one JSON line. Usage: python benchmarks/w11_distributed.py [--quick] [--no-peers]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import arguments, guarded, result  # noqa: E402
from w4_mlp import mlp_train_flops  # noqa: E402

SIZES = (784, 512, 512, 10)
BATCH = 128
LR = 0.01
LATENCY_S = 10e-6   # the model's per-message latency (α) on a cluster network


def worker(sizes, batch, repeats, number):
    """One process of the job (or the process alone): time the train step; rank 0 prints a
    JSON line {seconds per step, communication seconds and bytes per step}."""
    import graphc as gc
    from w4_mlp import initial_params, mlp_loss
    gc.distributed.init()
    rank, size = gc.distributed.rank(), gc.distributed.size()
    g, (x, y), loss, _ = mlp_loss(sizes, initial_params(sizes))
    with g.as_default():
        opt = gc.train.GradientDescentOptimizer(LR)
        train = (gc.train.DistributedOptimizer(opt) if size > 1 else opt).minimize(loss)
    sess = gc.Session(g, device="cpu")
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    ys = rng.integers(0, sizes[-1], batch).astype(np.int32)
    part = slice(rank * batch // size, (rank + 1) * batch // size)
    feed = {x: xs[part], y: ys[part]}

    def run():
        return sess.run([loss, train], feed)
    for _ in range(5):
        run()
    samples, comm, spans, overlapped = [], [], [], []
    for _ in range(repeats):
        gc.distributed.barrier()
        before = gc.distributed.stats()
        t0 = time.perf_counter()
        for _ in range(number):
            run()
        samples.append((time.perf_counter() - t0) / number)
        after = gc.distributed.stats()
        comm.append((after["seconds"] - before["seconds"]) / number)
        # native allreduces: start to completion, and the part of it spent in other steps
        spans.append((after.get("communication_seconds", 0.0)
                      - before.get("communication_seconds", 0.0)) / number)
        overlapped.append((after.get("overlapped_seconds", 0.0)
                           - before.get("overlapped_seconds", 0.0)) / number)
    stats = gc.distributed.stats()
    if rank == 0:
        print(json.dumps({"seconds": float(np.median(samples)), "comm_seconds":
                          float(np.median(comm)), "span_seconds": float(np.median(spans)),
                          "overlapped_seconds": float(np.median(overlapped)),
                          "bytes": stats["bytes"] / max(stats["calls"], 1),
                          "threads": int(os.environ.get("GRAPHC_NUM_THREADS", "0") or 0)}),
              flush=True)


def launch(ranks, threads, sizes, batch, repeats, number):
    env = dict(os.environ, GRAPHC_NUM_THREADS=str(threads))
    command = [sys.executable, os.path.abspath(__file__), "--worker",
               ",".join(map(str, sizes)), str(batch), str(repeats), str(number)]
    if ranks > 1:
        mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [mpiexec, "-launcher", "fork", "-n", str(ranks)] + command
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:5])}... failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ring_model(compute_s, grad_bytes, machines, gbit_s, latency_s=LATENCY_S):
    """Expected efficiency of one step: compute / (compute + ring allreduce), no overlap.
    A ring allreduce of S bytes on p machines sends 2 (p-1)/p S bytes per machine and takes
    2 (p-1) latency steps."""
    comm = 2 * (machines - 1) / machines * grad_bytes / (gbit_s * 1e9 / 8) \
        + 2 * (machines - 1) * latency_s
    return compute_s / (compute_s + comm), comm


def measure(sizes, batch, repeats, number):
    cores = len(os.sched_getaffinity(0))
    alone = launch(1, cores, sizes, batch, repeats, number)
    two = launch(2, 1, sizes, batch, repeats, number)
    one_sps, two_sps = 1 / alone["seconds"], 1 / two["seconds"]
    compute = alone["seconds"]  # one machine's step on the whole per-machine batch
    grad_bytes = sum(a * b + b for a, b in zip(sizes, sizes[1:])) * 4
    model = {}
    for machines in (8, 64):
        for gbit in (10, 100):
            eff, comm = ring_model(compute, grad_bytes, machines, gbit)
            model[f"{machines}x{gbit}Gb"] = {"efficiency": round(eff, 3),
                                             "allreduce_ms": round(comm * 1e3, 3)}
    record = result("W11", f"W4 train step data parallel, global batch {batch}: 2 MPI ranks x 1 "
                    f"thread vs 1 process x {cores} threads", "steps/s", two_sps, None, None,
                    flops_per_step=mlp_train_flops(sizes, batch))
    record.update({"one_process_steps_s": round(one_sps, 2), "two_ranks_steps_s":
                   round(two_sps, 2), "efficiency": round(two_sps / one_sps, 3),
                   "comm_ms_per_step": round(two["comm_seconds"] * 1e3, 3),
                   "allreduce_span_ms_per_step": round(two.get("span_seconds", 0) * 1e3, 3),
                   "overlapped_ms_per_step": round(two.get("overlapped_seconds", 0) * 1e3, 3),
                   "step_ms_one_process": round(alone["seconds"] * 1e3, 3),
                   "gradient_bytes": grad_bytes, "cores": cores,
                   "ring_model_weak_scaling": model})
    return [record]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sizes = tuple(int(s) for s in sys.argv[2].split(","))
        worker(sizes, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    args = arguments(__doc__)
    sizes, batch, repeats, number = (((64, 32, 32, 10), 16, 3, 5) if args.quick
                                     else (SIZES, BATCH, 15, 20))
    guarded("W11", "data-parallel W4 step", lambda: measure(sizes, batch, repeats, number))
