"""A data-parallel Keras-style job (run by test_mpi.py under mpiexec): fit with uneven batches
and callbacks, evaluate and predict under DataParallel; prints one JSON line per rank with what
the test compares. `keras_job.py DIR single` is the same run in one process without
DataParallel (the reference: the single-process fit on the global batches)."""
import json
import os
import sys

import numpy as np

import graphc as gc
import graphc.frontend as gk

out_dir = sys.argv[1]
if sys.argv[2:] != ["single"]:
    gk.distribution.set_distribution(gk.distribution.DataParallel())
rank, size = gc.distributed.rank(), gc.distributed.size()

rng = np.random.default_rng(0)
x = rng.normal(size=(45, 6)).astype("float32")          # batches of 8: the last has 5 examples
y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 0.5)


def make(seed):
    gk.backend.set_random_seed(seed + 100 * rank)        # ranks start from different weights
    m = gk.Sequential([gk.layers.Input((6,)), gk.layers.Dense(16, activation="relu"),
                       gk.layers.Dense(3)])
    m.compile(optimizer=gk.optimizers.Adam(0.01),
              loss=gk.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    return m


model = make(1)
cbs = [gk.callbacks.CSVLogger(os.path.join(out_dir, "log.csv")),
       gk.callbacks.ModelCheckpoint(os.path.join(out_dir, "ckpt-{epoch}.gck"), monitor="loss"),
       gk.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)]
hist = model.fit(x, y, batch_size=8, epochs=3, verbose=2, callbacks=cbs)
ev = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
pred = model.predict(x[:11], batch_size=3, verbose=0)
weights = [w.tolist() for w in model.get_weights()]
loaded = gk.models.load_model(os.path.join(out_dir, "ckpt-" + str(len(hist.epoch)) + ".gck"))  # any rank loads it
result = {"rank": rank, "size": size, "history": hist.history, "evaluate": ev,
          "pred": pred.tolist(), "weights": weights, "epochs": len(hist.epoch),
          "loaded_same": all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(),
                                                                   model.get_weights()))}

with open(os.path.join(out_dir, f"result-{rank}.json"), "w") as f:   # each rank its own
    json.dump(result, f)
