"""A TF1-style job (run by test_mpi.py under mpiexec): the collectives and their gradients,
then DistributedOptimizer training from broadcast variables against the single-process run on
the global batch, computed in the same process. Each rank writes result-RANK.json."""
import json
import os
import sys

import numpy as np

import graphc as gc

out_dir = sys.argv[1]
gc.distributed.init()
gc.distributed.init()  # idempotent
rank, size = gc.distributed.rank(), gc.distributed.size()
result = {"rank": rank, "size": size}
ranks = np.arange(size, dtype=np.float64)

# ---- collectives and their gradients -----------------------------------------------------------
x = gc.placeholder(gc.float64, (5,), name="x")
mine = np.linspace(-1, 1, 5) * (rank + 1) + rank            # each rank's own x
every = [np.linspace(-1, 1, 5) * (r + 1) + r for r in range(size)]
s = gc.distributed.allreduce(x * x, op="sum")
m = gc.distributed.allreduce(x, op="mean")
b = gc.distributed.broadcast(x, root=size - 1)
big = gc.distributed.allreduce(gc.broadcast_to(gc.reshape(x, (5, 1)), (5, 20001)), op="sum")
i = gc.distributed.allreduce(gc.cast(x, gc.int64), op="sum")
loss = gc.sum(s * s) + gc.sum(m * 3.0) + gc.sum(b * b)
g, = gc.grad(loss, [x])
with gc.Session() as sess:
    got = sess.run([s, m, b, big, i, g], {x: mine})
want_s = sum(e * e for e in every)
want_g = 4 * mine * size * want_s + 3.0 + (  # the mean of the ranks' upstream 3s
    2 * size * every[-1] if rank == size - 1 else 0)  # d/dx: allreduce of the upstream grads
checks = {
    "sum": np.allclose(got[0], want_s), "mean": np.allclose(got[1], np.mean(every, axis=0)),
    "broadcast": np.array_equal(got[2], every[-1]),
    "big": np.allclose(got[3], np.sum(every, axis=0)[:, None] * np.ones((1, 20001))),
    "int": np.array_equal(got[4], np.sum([e.astype(np.int64) for e in every], axis=0)),
    "grad": np.allclose(got[5], want_g)}
result["collectives"] = checks

# ---- TF1 training: DistributedOptimizer on shards == one process on the global batch -----------
rng = np.random.default_rng(7)
X = rng.normal(size=(16 * size, 10)).astype("float32")
Y = rng.integers(0, 4, size=16 * size).astype("int32")


def model(init_rng, distributed):
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder(gc.float32, (None, 10), name="x")
        yp = gc.placeholder(gc.int32, (None,), name="y")
        W = gc.Variable(init_rng.normal(size=(10, 4)).astype("float32"), name="W")
        bias = gc.Variable(np.zeros(4, "float32"), name="b")
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.tanh(xp @ W) * 2.0 + bias, yp))
        opt = gc.train.AdamOptimizer(0.05)
        if distributed:
            opt = gc.train.DistributedOptimizer(opt)
        train = opt.minimize(loss)
        sync = gc.distributed.broadcast_variables(0) if distributed else None
    return g, xp, yp, W, bias, loss, train, sync


g1, xp, yp, W, bias, loss, train, sync = model(np.random.default_rng(100 + rank), True)
sess = gc.Session(graph=g1)
sess.run(sync)                                              # rank 0's weights and slots
shard = slice(16 * rank, 16 * (rank + 1))
for step in range(5):
    batch = np.roll(np.arange(len(X)), 3 * step)            # every rank the same global batch
    sess.run(train, {xp: X[batch][shard], yp: Y[batch][shard]})
weights = [sess.get_value(W), sess.get_value(bias)]
with g1.as_default():                                       # communication in f.profile()
    reduced = gc.distributed.grouped_allreduce(gc.grad(loss, [W, bias]))
prof = gc.function([xp, yp], reduced, session=sess).profile(X[:4], Y[:4], runs=2, show=False)
result["profile_rows"] = [r.name for r in prof.rows]

g0, xp0, yp0, W0, b0, _, train0, _ = model(np.random.default_rng(100), False)
sess0 = gc.Session(graph=g0)
for step in range(5):
    batch = np.roll(np.arange(len(X)), 3 * step)
    sess0.run(train0, {xp0: X[batch], yp0: Y[batch]})
single = [sess0.get_value(W0), sess0.get_value(b0)]
result["max_diff_single"] = max(float(np.abs(a - c).max()) for a, c in zip(weights, single))
result["weights_hex"] = [w.tobytes().hex() for w in weights]
result["stats"] = gc.distributed.stats()
with open(os.path.join(out_dir, f"result-{rank}.json"), "w") as f:
    json.dump(result, f)
