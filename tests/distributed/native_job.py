"""Native allreduces (run by test_mpi.py under mpiexec): MPI is called on the plan's own
buffers (the addresses handed to MPI_Iallreduce are the plan's, the mpi4py path is never
taken), results are bitwise the same on every rank and from run to run, and a bucket's
allreduce starts before the backward pass ends (the profile's timeline). Each rank writes
result-RANK.json."""
import hashlib
import json
import os
import sys

import numpy as np

import graphc as gc
from graphc.compiler import CollectiveStep

out_dir = sys.argv[1]
gc.distributed.init()
rank, size = gc.distributed.rank(), gc.distributed.size()
comm = gc.distributed.communicator()
result = {"rank": rank, "size": size}


def no_host_path(*args, **kwargs):
    raise AssertionError("the mpi4py (host step) allreduce ran")


comm.allreduce = no_host_path  # every allreduce below must run natively
seen = []  # (send, recv) addresses handed to MPI
start = comm.start_allreduce


def spy(uid, op, out, send, recv, static=False):
    seen.append((send, recv))
    return start(uid, op, out, send, recv, static)


comm.start_allreduce = spy

# ---- no copies: MPI reads and writes the plan's buffers --------------------------------------
x = gc.placeholder(gc.float32, (1000,), name="x")
f = gc.function([x], gc.distributed.allreduce(x * 2.0, op="sum") + 1.0)
got = f(np.full(1000, rank + 1, np.float32))
exe, plan = f._exe, f._exe.last_plan
steps = [s for s in exe.steps if isinstance(s, CollectiveStep)]
node = steps[0].group.nodes[0]
source, target = exe.slots.buffer(node.inputs[0]), exe.slots.buffer(node.outputs[0])
result["phases"] = [s.phase for s in steps]
result["addresses_are_the_plans"] = seen[-1] == (plan.arrays[source].ctypes.data,
                                                 plan.arrays[target].ctypes.data)
result["value_ok"] = bool(np.all(got == 2.0 * size * (size + 1) / 2 + 1.0))

# ---- determinism: bitwise the same on every rank, and from run to run ------------------------
digests = []
for n in (7, 5000, 300001):
    v = gc.placeholder(gc.float32, (n,), name=f"v{n}")
    g = gc.function([v], [gc.distributed.allreduce(v, op="sum"),
                          gc.distributed.allreduce(v, op="mean")])
    mine = np.random.default_rng(1000 + rank).standard_normal(n).astype(np.float32) * 1e3
    a = g(mine)
    b = g(mine)
    digests.append(hashlib.sha256(b"".join(t.tobytes() for t in a)).hexdigest())
    result.setdefault("repeatable", []).append(all(np.array_equal(p, q) for p, q in zip(a, b)))
    every = sum(np.random.default_rng(1000 + r).standard_normal(n).astype(np.float64) * 1e3
                for r in range(size))
    result.setdefault("close", []).append(bool(np.allclose(a[0], every, rtol=1e-5, atol=1e-2)))
result["digests"] = digests

# ---- overlap: a bucket's allreduce starts while the backward pass still runs -----------------
graph = gc.Graph()
with graph.as_default():
    xp = gc.placeholder(gc.float32, (None, 64), name="x")
    yp = gc.placeholder(gc.int32, (None,), name="y")
    rng = np.random.default_rng(5)
    h, weights = xp, []
    for i, (m, n) in enumerate([(64, 256), (256, 256), (256, 10)]):
        weights.append(gc.Variable((rng.standard_normal((m, n)) * 0.1).astype("float32")))
        h = h @ weights[-1]
        h = gc.relu(h) if i < 2 else h
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(h, yp))
    opt = gc.train.DistributedOptimizer(gc.train.GradientDescentOptimizer(0.1),
                                        first_bucket_bytes=16 << 10)
    train = opt.minimize(loss)
sess = gc.Session(graph=graph)
step = gc.function([xp, yp], [loss, train], session=sess)
xs = np.random.default_rng(rank).standard_normal((32, 64)).astype("float32")
ys = (np.arange(32) % 10).astype("int32")
prof = step.profile(xs, ys, runs=3, show=False)
names = [name for name, _, _ in prof.timeline]
first_start = names.index("allreduce start")
last_start = len(names) - 1 - names[::-1].index("allreduce start")
# kernels (the rest of the backward pass) run between the first bucket's start and the last's
result["kernels_between_starts"] = [n for n in names[first_start + 1:last_start]
                                    if not n.startswith("allreduce")]
result["first_wait_after_last_start"] = names.index("allreduce wait") > last_start
result["communication"] = prof.communication
result["profile_text"] = str(prof)
result["weights"] = hashlib.sha256(b"".join(sess.get_value(w).tobytes()
                                            for w in weights)).hexdigest()
result["stats"] = gc.distributed.stats()
with open(os.path.join(out_dir, f"result-{rank}.json"), "w") as f:
    json.dump(result, f)
