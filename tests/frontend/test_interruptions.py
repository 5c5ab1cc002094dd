"""Training that is interrupted: killed, Ctrl-C'ed, resumed.

The kill test runs tests/frontend/interrupted_job.py in a subprocess, SIGKILLs it at random
moments (inside a save, and at random times while it trains), restarts it until it finishes,
and compares its weights and History with an uninterrupted run's, bit for bit, then checks that
no temp file is left. GRAPHC_KILL_RUNS sets how many runs (2 here; 25 or more to measure);
each run is killed 3 times (GRAPHC_KILLS_PER_RUN). GRAPHC_SIGINT_RUNS does the same for Ctrl-C.
"""
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.errors import CheckpointError
from graphc.io.atomic import TEMP_PREFIX

L = gk.layers
JOB = os.path.join(os.path.dirname(__file__), "interrupted_job.py")
KILL_RUNS = int(os.environ.get("GRAPHC_KILL_RUNS", "2"))
KILLS_PER_RUN = int(os.environ.get("GRAPHC_KILLS_PER_RUN", "3"))
SIGINT_RUNS = int(os.environ.get("GRAPHC_SIGINT_RUNS", "2"))
SEED = int(os.environ.get("GRAPHC_KILL_SEED", str(int(time.time()) % 10000)))


def _start(work, *args):
    return subprocess.Popen([sys.executable, JOB, str(work), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _result(work):
    with np.load(os.path.join(work, "result.npz")) as f:
        weights = [f[f"w{i}"] for i in range(len(f.files))]
    with open(os.path.join(work, "result.json")) as f:
        return weights, json.load(f)


def _temp_files(work):
    return [os.path.join(root, n) for root, _, files in os.walk(work) for n in files
            if n.startswith(TEMP_PREFIX)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    work = tmp_path_factory.mktemp("uninterrupted")
    rc, out, err = _finish(_start(work))
    assert rc == 0, err[-3000:]
    return _result(work)


def test_a_killed_fit_resumes_exactly_and_leaves_nothing_behind(uninterrupted, tmp_path):
    rng = random.Random(SEED)
    survived = left_bytes = 0
    for run in range(KILL_RUNS):
        work = tmp_path / f"run{run}"
        work.mkdir()
        kills = 0
        while True:
            if kills == 0:   # inside a save: after the temp file is written, before the rename
                proc = _start(work, "--kill-in-write", rng.randint(1, 40))
            else:
                proc = _start(work)
                if kills < KILLS_PER_RUN:   # at a random moment of training
                    proc.stdout.readline()
                    time.sleep(rng.uniform(0.0, 0.25))   # training takes about 0.3 s
                    proc.send_signal(signal.SIGKILL)
            rc, out, err = _finish(proc)
            if rc == 0:
                break
            assert rc == -signal.SIGKILL, f"seed {SEED}, run {run}: rc {rc}\n{err[-3000:]}"
            kills += 1
            assert kills < KILLS_PER_RUN + 3, f"seed {SEED}: the job does not finish"
        survived += kills
        weights, history = _result(work)
        ref_weights, ref_history = uninterrupted
        assert history == ref_history, f"seed {SEED}, run {run}"
        assert all(np.array_equal(a, b) for a, b in zip(weights, ref_weights)), \
            f"seed {SEED}, run {run}: the weights differ from the uninterrupted run's"
        left = _temp_files(work)
        left_bytes += sum(os.path.getsize(p) for p in left)
        assert left == [], f"seed {SEED}, run {run}"
        assert not os.path.exists(work / "backup")   # delete_checkpoint=True
        for name in os.listdir(work):   # never a torn file
            if name.endswith(".gck"):
                with zipfile.ZipFile(work / name) as z:
                    assert z.testzip() is None
        with open(work / "log.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows and all(len(r) == len(rows[0]) for r in rows)
    print(f"\nkill test (GRAPHC_KILL_SEED={SEED}): {KILL_RUNS} runs, {survived} kills survived, "
          f"{left_bytes} bytes of temp files left behind")
    assert survived >= KILL_RUNS   # at least the kill inside a save, in every run


def test_ctrl_c_leaves_the_model_at_its_last_step_and_usable(tmp_path):
    rng = random.Random(SEED + 1)
    for run in range(SIGINT_RUNS):
        work = tmp_path / f"run{run}"
        work.mkdir()
        proc = _start(work, "--ctrl-c")
        proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGINT)
        rc, out, err = _finish(proc)
        assert rc == 0, err[-3000:]
        found = json.loads(out.strip().splitlines()[-1])
        assert found.pop("interrupted"), found
        assert found.pop("temp_files") == []
        steps, epochs = found.pop("steps"), found.pop("csv_epochs")
        assert all(found.values()), (f"seed {SEED + 1}, after {steps} steps, {epochs} epochs",
                                     found)


# ---- in one process -----------------------------------------------------------------------
X = np.random.default_rng(0).normal(size=(70, 6)).astype("float32")
Y = (X.sum(1) > 0).astype("int32")


def _model():
    gk.utils.set_random_seed(7)
    model = gk.Sequential([L.Input((6,)), L.Dense(16, activation="relu"), L.Dropout(0.3),
                           L.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device="reference")
    return model


class _Fail(gk.callbacks.Callback):
    def __init__(self, after):
        super().__init__()
        self.after, self.steps = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.after:
            raise RuntimeError("the machine went away")


def _fit(model, callbacks, epochs=4):
    return model.fit(X, Y, batch_size=16, epochs=epochs, validation_split=0.2, verbose=0,
                     callbacks=callbacks)


@pytest.mark.parametrize("save_freq", ["epoch", 3])
@pytest.mark.parametrize("fail_after", [2, 4, 8, 15])
def test_backup_and_restore_resumes_where_the_backup_stands(tmp_path, save_freq, fail_after):
    with gc.Graph().as_default():
        model = _model()
        history = _fit(model, [])
        expected = model.get_weights(), history.history, history.epoch
    with gc.Graph().as_default():
        model = _model()
        with pytest.raises(RuntimeError):
            _fit(model, [gk.callbacks.BackupAndRestore(tmp_path, save_freq), _Fail(fail_after)])
    with gc.Graph().as_default():   # a new process would build the model again
        model = _model()
        history = _fit(model, [gk.callbacks.BackupAndRestore(tmp_path, save_freq)])
        assert history.history == expected[1] and history.epoch == expected[2]
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected[0]))
    assert not os.path.exists(tmp_path)   # delete_checkpoint: the backup and its folder


def test_backup_arguments_and_a_backup_of_another_model(tmp_path):
    with pytest.raises(gc.GraphcError, match="save_freq"):
        gk.callbacks.BackupAndRestore(tmp_path, save_freq=0)
    with pytest.raises(gc.GraphcError, match="save_freq"):
        gk.callbacks.BackupAndRestore(tmp_path, save_freq="batch")
    model = _model()
    with pytest.raises(RuntimeError):
        _fit(model, [gk.callbacks.BackupAndRestore(tmp_path, 1), _Fail(2)])
    other = gk.Sequential([L.Input((6,)), L.Dense(3), L.Dense(2, activation="softmax")])
    other.compile(optimizer="adam", loss="sparse_categorical_crossentropy", device="reference")
    before = other.get_weights()
    with pytest.raises(CheckpointError, match="latest.backup: the backup.s value of .* has shape"):
        _fit(other, [gk.callbacks.BackupAndRestore(tmp_path, 1)])
    assert all(np.array_equal(a, b) for a, b in zip(other.get_weights(), before))


def test_a_loaded_model_trains_on_exactly_as_the_saved_one_would_have(tmp_path):
    """Dropout masks and shuffling continue: 2 + 2 epochs around save/load are 4 epochs."""
    with gc.Graph().as_default():
        model = _model()
        expected = _fit(model, []).history, model.get_weights()
    with gc.Graph().as_default():
        model = _model()
        _fit(model, [], epochs=2)
        model.save(tmp_path / "m.gck")
    with gc.Graph().as_default():
        loaded = gk.load_model(tmp_path / "m.gck")
        history = loaded.fit(X, Y, batch_size=16, epochs=4, initial_epoch=2,
                             validation_split=0.2, verbose=0)
    assert history.history["loss"] == expected[0]["loss"][2:]
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), expected[1]))


def test_a_session_checkpoint_keeps_the_random_streams(tmp_path, graph):
    noise = gc.random.normal((5,))   # unseeded: only the checkpoint can reproduce it
    drop = gc.nn.dropout(gc.ones_like(gc.constant(np.ones(8, "float32"))), 0.5, seed=3,
                         training=True)
    sess = gc.Session(device="reference")
    sess.run([noise, drop])
    sess.save(tmp_path / "ckpt")
    after = sess.run([noise, drop])
    other = gc.Session(device="reference")
    other.restore(tmp_path / "ckpt")
    again = other.run([noise, drop])
    assert all(np.array_equal(a, b) for a, b in zip(after, again))
    assert set(other.random_state()) == set(sess.random_state())


def test_a_stopped_fit_ends_the_progress_line(capsys):
    class Terminal:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True

    term = Terminal()
    model = _model()
    with pytest.raises(RuntimeError):
        model.fit(X, Y, batch_size=4, epochs=1, verbose=0,
                  callbacks=[_Fail(6), gk.callbacks.ProgbarLogger(1, stream=term)])
    assert term.text.endswith("\n") and "\r" in term.text
