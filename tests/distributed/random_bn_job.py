"""A data-parallel fit of a model with Dropout and BatchNormalization (run by test_mpi.py under
mpiexec): the ranks draw the global batch's dropout masks and normalize with the global batch's
statistics, so the fit equals one process fitting the global batches. Prints nothing; writes
result-RANK.json. `random_bn_job.py DIR single` is the single-process reference."""
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
x = rng.normal(size=(42, 6)).astype("float32")   # batches of 8, the last of 2 (4 ranks: 1,1,0,0)
y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 0.5)

gk.backend.set_random_seed(1 + 100 * rank)  # ranks start from other weights and dropout seeds
model = gk.Sequential([gk.layers.Input((6,)), gk.layers.Dense(16),
                       gk.layers.BatchNormalization(momentum=0.5),
                       gk.layers.Activation("relu"), gk.layers.Dropout(0.4),
                       gk.layers.Dense(8), gk.layers.Dropout(0.25), gk.layers.Dense(3)])
model.compile(optimizer=gk.optimizers.SGD(0.1),
              loss=gk.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
weights = model.get_weights()
result = {"rank": rank, "size": size, "history": hist.history,
          "weights": [w.tolist() for w in weights],
          "weights_hex": [np.ascontiguousarray(w).tobytes().hex() for w in weights]}
with open(os.path.join(out_dir, f"result-{rank}.json"), "w") as f:
    json.dump(result, f)
