"""Faulty jobs (run by test_mpi.py under mpiexec): `raise` (rank 1 raises after a collective),
`kill` (rank 1 kills itself with SIGKILL while the others wait in a collective), `mismatch`
(rank 1 builds a variable of another shape). None may hang."""
import os
import signal
import sys

import numpy as np

import graphc as gc

mode = sys.argv[1]
gc.distributed.init()
rank = gc.distributed.rank()
W = gc.Variable(np.zeros((3, 4 + (rank == 1 and mode == "mismatch")), "float32"), name="W")
x = gc.placeholder(gc.float32, (None, 3), name="x")
loss = gc.mean(gc.square(x @ W - 1.0))
train = gc.train.DistributedOptimizer(gc.train.GradientDescentOptimizer(0.1)).minimize(loss)
sess = gc.Session()
sess.run(gc.distributed.broadcast_variables(0))
print(f"rank {rank} synchronized", flush=True)
sess.run(train, {x: np.ones((2, 3), "float32")})
if rank == 1:
    if mode == "raise":
        raise RuntimeError("rank 1 fails on purpose")
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
sess.run(train, {x: np.ones((2, 3), "float32")})           # the others wait here
print(f"rank {rank} finished", flush=True)
