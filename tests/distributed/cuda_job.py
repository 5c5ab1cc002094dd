"""Device cuda in an MPI job (run by test_mpi.py under mpiexec), on the host emulation of
tests/codegen/cuda where there is no GPU (the generated CUDA C compiled for the host, behind a
fake pycuda): allreduce (sum, mean, a large one), broadcast, and DistributedOptimizer training
steps from broadcast variables, on device cuda and on device cpu in the same process. Each
rank writes result-RANK.json with both devices' values."""
import json
import os
import sys

import numpy as np

import graphc as gc
from graphc.runtime import cuda_driver

out_dir, where = sys.argv[1], sys.argv[2]
if where == "host":
    from tests.codegen.cuda.fake_driver import emulated_gpu
    cuda_driver._gpu = emulated_gpu()
gc.distributed.init()
rank, size = gc.distributed.rank(), gc.distributed.size()
result = {"rank": rank, "size": size, "gpu": type(cuda_driver.gpu()).__name__}

mine = (np.linspace(-1, 1, 6) * (rank + 1) + rank).astype("float32")


def run(device):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (6,), name="x")
        s = gc.distributed.allreduce(x * x, op="sum")
        m = gc.distributed.allreduce(x, op="mean")
        b = gc.distributed.broadcast(x + 1.0, root=size - 1)
        big = gc.distributed.allreduce(gc.broadcast_to(gc.reshape(x, (6, 1)), (6, 5000)), "sum")
        rng = np.random.default_rng(100 + rank)          # ranks start from different weights
        X = gc.placeholder(gc.float32, (None, 5), name="X")
        Y = gc.placeholder(gc.int32, (None,), name="Y")
        W = gc.Variable(rng.normal(size=(5, 3)).astype("float32"), name="W")
        bias = gc.Variable(np.zeros(3, "float32"), name="b")
        loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(gc.tanh(X @ W) + bias, Y))
        train = gc.train.DistributedOptimizer(gc.train.AdamOptimizer(0.05)).minimize(loss)
        sync = gc.distributed.broadcast_variables(0)
    sess = gc.Session(graph=g, device=device)
    values = sess.run([s, m, b, big], {x: mine})
    sess.run(sync)
    data = np.random.default_rng(7)
    xs = data.normal(size=(8 * size, 5)).astype("float32")
    ys = data.integers(0, 3, size=8 * size).astype("int32")
    for step in range(3):
        sess.run(train, {X: xs[8 * rank:8 * (rank + 1)], Y: ys[8 * rank:8 * (rank + 1)]})
    values += [sess.get_value(W), sess.get_value(bias)]
    return [v.tolist() for v in values]


result["cuda"] = run("cuda")
result["cpu"] = run("cpu")
with open(os.path.join(out_dir, f"result-{rank}.json"), "w") as f:
    json.dump(result, f)
