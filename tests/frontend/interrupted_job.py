"""A training job for the interruption tests (tests/frontend/test_interruptions.py).

    python interrupted_job.py WORKDIR [--kill-in-write N] [--device cpu] [--ctrl-c]

Trains a small model with shuffling, Dropout, a noise layer drawing from gc.random and Adam,
under BackupAndRestore (every 2 batches), ModelCheckpoint and CSVLogger writing into WORKDIR,
and writes WORKDIR/result.npz (weights) and WORKDIR/result.json (History) when it is done.
It prints "training" once fit has begun. --kill-in-write N sends itself SIGKILL in its N-th
atomic write, after the temp file is written and before it is renamed (a kill during a save).
--ctrl-c trains for long with a progress bar, expecting a SIGINT: once fit has raised
KeyboardInterrupt it checks that the model holds the weights of the last completed step, that
the bar ended its line and the CSV log is whole, then saves, reloads and evaluates the model,
and prints one JSON line of what it found.
"""
import argparse
import csv
import io
import json
import os
import signal
import sys
import types

import numpy as np

import graphc as gc
import graphc.frontend as gk
from graphc.io import atomic

L = gk.layers


@gk.saving.register
class Noise(gk.layers.Layer):
    """Adds gc.random.normal noise while training: a random layer of the user's own."""

    def __init__(self, units, stddev=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.stddev = units, stddev
        self.seed = gk.backend.next_seed() if seed is None else seed

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return inputs + gc.random.normal((self.units,), stddev=self.stddev, seed=self.seed)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "stddev": self.stddev,
                "seed": self.seed}


class Started(gk.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("training", flush=True)


def kill_in_write(n):
    """SIGKILL this process in its n-th atomic write, between writing and renaming."""
    calls = [0]

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.replace(src, dst)
    atomic.os = types.SimpleNamespace(**{**vars(os), "replace": replace})


class Snapshots(gk.callbacks.Callback):
    """The weights after each completed step."""

    def __init__(self):
        super().__init__()
        self.last, self.steps = None, 0

    def on_train_batch_end(self, batch, logs=None):
        self.last, self.steps = self.model.get_weights(), self.steps + 1


class Terminal(io.StringIO):
    def isatty(self):
        return True


def ctrl_c(model, x, y, work):
    snapshots, bar = Snapshots(), Terminal()
    callbacks = [snapshots, gk.callbacks.CSVLogger(os.path.join(work, "log.csv")),
                 gk.callbacks.ModelCheckpoint(os.path.join(work, "model.gck")), Started(),
                 gk.callbacks.ProgbarLogger(1, stream=bar)]
    try:
        model.fit(x, y, batch_size=16, epochs=5000, validation_split=0.2, callbacks=callbacks,
                  verbose=0)
        found = {"interrupted": False}
    except KeyboardInterrupt:
        found = {"interrupted": True}
    weights = model.get_weights()
    found["steps"] = snapshots.steps
    found["at_last_step"] = snapshots.last is not None and all(
        np.array_equal(a, b) for a, b in zip(weights, snapshots.last))
    found["bar_ended_line"] = bar.getvalue().endswith("\n")
    rows = []   # none before the first epoch ends
    if os.path.exists(os.path.join(work, "log.csv")):
        with open(os.path.join(work, "log.csv"), newline="") as f:
            rows = list(csv.reader(f))
    found["csv_whole"] = all(len(r) == len(rows[0]) for r in rows) if rows else True
    found["csv_epochs"] = len(rows) - 1 if rows else 0
    model.save(os.path.join(work, "after.gck"))
    loaded = gk.load_model(os.path.join(work, "after.gck"))
    found["reloaded_same"] = all(np.array_equal(a, b)
                                 for a, b in zip(weights, loaded.get_weights()))
    loss, accuracy = model.evaluate(x, y, verbose=0)
    found["evaluate_finite"] = bool(np.isfinite(loss) and np.isfinite(accuracy))
    found["temp_files"] = [n for n in os.listdir(work) if n.startswith(atomic.TEMP_PREFIX)]
    print(json.dumps(found), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("--kill-in-write", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--ctrl-c", action="store_true")
    args = parser.parse_args()
    if args.kill_in_write:
        kill_in_write(args.kill_in_write)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 12)).astype("float32")
    y = (x[:, :4].sum(1) > x[:, 4:8].sum(1)).astype("int32") + (x[:, 8] > 0.5)
    gk.utils.set_random_seed(5)
    model = gk.Sequential([L.Input((12,)), L.Dense(32, activation="relu"), Noise(32),
                           L.Dropout(0.25), L.Dense(16, activation="tanh"), L.Dropout(0.1),
                           L.Dense(3, activation="softmax")])
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device=args.device)
    work = args.workdir
    if args.ctrl_c:
        return ctrl_c(model, x, y, work)
    callbacks = [gk.callbacks.BackupAndRestore(os.path.join(work, "backup"), save_freq=2),
                 gk.callbacks.ModelCheckpoint(os.path.join(work, "model-{epoch}.gck"),
                                              save_best_only=False),
                 gk.callbacks.CSVLogger(os.path.join(work, "log.csv"), append=True),
                 Started()]
    history = model.fit(x, y, batch_size=16, epochs=args.epochs, validation_split=0.2,
                        callbacks=callbacks, verbose=0)
    atomic.write_atomic(os.path.join(work, "result.npz"), lambda f: np.savez(
        f, **{f"w{i}": w for i, w in enumerate(model.get_weights())}))
    atomic.write_text(os.path.join(work, "result.json"),
                      json.dumps({"history": history.history, "epoch": history.epoch}))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
