"""Faulty jobs (run by test_mpi.py under mpiexec): `raise` (rank 1 raises after a collective),
`kill` (rank 1 kills itself with SIGKILL while the others wait in a collective), `mismatch`
(rank 1 builds a variable of another shape), `resize` (the graphs agree, but at the third call
rank 1 feeds a shape-dependent allreduce another batch size than rank 0). None may hang.

`raise-ckpt DIR` and `kill-ckpt DIR`: rank 0 writes a checkpoint (sess.save, 4 MB) after every
step, and rank 1 fails at step 3 while rank 0 is writing; `keras-kill DIR`: a data-parallel fit
with ModelCheckpoint every epoch, rank 1 killed at the end of epoch 3, before the checkpoint
callback (so rank 0 is writing it). The test then loads what is left in DIR."""
import os
import signal
import sys

import numpy as np

import graphc as gc

mode = sys.argv[1]
folder = sys.argv[2] if len(sys.argv) > 2 else None
gc.distributed.init()
rank = gc.distributed.rank()


def fail():
    if mode.startswith("raise"):
        raise RuntimeError("rank 1 fails on purpose")
    os.kill(os.getpid(), signal.SIGKILL)


if mode == "keras-kill":
    import graphc.frontend as gk

    class Die(gk.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if rank == 1 and epoch == 2:
                fail()

    gk.distribution.set_distribution(gk.distribution.DataParallel())
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 32)).astype("float32")
    ys = (xs[:, 0] > 0).astype("int32")
    model = gk.Sequential([gk.layers.Input((32,)), gk.layers.Dense(512, activation="relu"),
                           gk.layers.Dense(512, activation="relu"), gk.layers.Dense(2)])
    model.compile(optimizer="adam",
                  loss=gk.losses.SparseCategoricalCrossentropy(from_logits=True))
    ckpt = gk.callbacks.ModelCheckpoint(os.path.join(folder, "ckpt-{epoch}.gck"), monitor="loss")
    model.fit(xs, ys, batch_size=32, epochs=4, verbose=0, callbacks=[Die(), ckpt])
    print(f"rank {rank} finished", flush=True)
    sys.exit(0)

W = gc.Variable(np.zeros((3, 4 + (rank == 1 and mode == "mismatch")), "float32"), name="W")
x = gc.placeholder(gc.float32, (None, 3), name="x")
loss = gc.mean(gc.square(x @ W - 1.0))
train = gc.train.DistributedOptimizer(gc.train.GradientDescentOptimizer(0.1)).minimize(loss)
if mode.endswith("ckpt"):   # a checkpoint large enough that writing it takes a while
    big = gc.Variable(np.arange(1 << 20, dtype="float32"), name="big")
    bump = gc.assign_add(big, gc.ones_like(big))
sess = gc.Session()
sess.run(gc.distributed.broadcast_variables(0))
print(f"rank {rank} synchronized", flush=True)
if mode == "resize":   # a collective whose size depends on the feed (the batch axis)
    total = gc.distributed.allreduce(gc.square(x), op="sum")
    f = gc.function([x], total, session=sess)
    for call in range(4):
        rows = 5 if rank == 1 and call >= 2 else 4
        f(np.ones((rows, 3), "float32"))
        print(f"rank {rank} call {call} done", flush=True)
elif mode.endswith("ckpt"):
    for step in range(6):
        sess.run([train, bump], {x: np.ones((2, 3), "float32")})
        if rank == 0:
            sess.save(os.path.join(folder, f"ckpt-{step}.gck"))
        elif step == 3:
            fail()
else:
    sess.run(train, {x: np.ones((2, 3), "float32")})
    if rank == 1 and mode in ("raise", "kill"):
        fail()
    sess.run(train, {x: np.ones((2, 3), "float32")})           # the others wait here
print(f"rank {rank} finished", flush=True)
