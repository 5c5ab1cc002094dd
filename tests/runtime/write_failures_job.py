"""Every writer of graphc against a folder it cannot write (tests/runtime/test_write_failures.py).

    python write_failures_job.py MODE FOLDER ELSEWHERE

MODE says how FOLDER becomes unwritable once each writer has written its file there once:
  efbig    a file-size limit (resource.setrlimit(RLIMIT_FSIZE)), SIGXFSZ ignored
  enospc   FOLDER is a small tmpfs (mounted here: run in a private mount namespace), filled up
  erofs    FOLDER is a tmpfs remounted read-only
  eacces   FOLDER loses its write permission; as root, this process becomes nobody first
Then each writer must fail with a CheckpointError (an OSError) naming the path and the cause,
leave the previous file as it was and no temp file behind, and the session or model must
still work and save to ELSEWHERE. Prints one JSON line per writer: {"writer", "ok", "detail"}.
"""
import contextlib
import errno
import json
import os
import resource
import signal
import subprocess
import sys
import traceback
import warnings

import numpy as np

import graphc as gc
import graphc.frontend as gk
from graphc.errors import CheckpointError
from graphc.runtime.kernel_cache import GraphcWarning, KernelCache

EXPECTED = {"efbig": {errno.EFBIG}, "enospc": {errno.ENOSPC}, "erofs": {errno.EROFS},
            "eacces": {errno.EACCES, errno.EPERM}}
X = np.random.default_rng(0).normal(size=(64, 32)).astype("float32")
Y = (X[:, 0] > 0).astype("int32")


def snapshot(folder):
    """{relative path: bytes} of every file under folder."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def main():
    mode, folder, elsewhere = sys.argv[1:4]
    if mode in ("enospc", "erofs"):
        size = "2m" if mode == "enospc" else "8m"
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                       check=True)
    # -- the TF1 side, a model and their files, written while the folder is writable -------
    g = gc.Graph()
    with g.as_default():
        W = gc.Variable(np.ones((128, 64), "float32"), name="W")
        x = gc.placeholder(gc.float32, shape=(None, 128), name="x")
        out = x @ W + gc.random.normal((64,), seed=3)
        sess = gc.Session(device="reference")
        sess.run(out, {x: np.ones((2, 128), "float32")})
    gk.utils.set_random_seed(1)
    model = gk.Sequential([gk.layers.Input((32,)), gk.layers.Dense(64, activation="relu"),
                           gk.layers.Dropout(0.2), gk.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  device="reference")

    def p(name):
        return os.path.join(folder, name)

    cbs = {"ModelCheckpoint": lambda d: gk.callbacks.ModelCheckpoint(os.path.join(d, "mc.gck")),
           "CSVLogger": lambda d: gk.callbacks.CSVLogger(os.path.join(d, "log.csv")),
           "BackupAndRestore": lambda d: gk.callbacks.BackupAndRestore(
               os.path.join(d, "backup"), save_freq=1, delete_checkpoint=False)}
    sess.save(p("ckpt"))
    gc.save(p("graph.gcg"), out, session=sess)
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[make(folder) for make in cbs.values()])
    model.save(p("model.gck"))
    model.save_weights(p("weights.gck"))
    cache = KernelCache(p("cache"))
    cache.put("ab" * 32, b"x" * 10000)
    gk.load_model(p("model.gck"))   # every lazy import done (nobody cannot read root's files)
    b"x".decode("cp437")
    before = snapshot(folder)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

    @contextlib.contextmanager
    def writable_elsewhere():
        """efbig limits every file: lifted while the test saves elsewhere."""
        if mode == "efbig":
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        try:
            yield
        finally:
            if mode == "efbig":
                resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))

    # -- now the folder cannot be written ----------------------------------------------------
    if mode == "efbig":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, hard))
    elif mode == "enospc":
        try:
            with open(p("filler"), "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass
        before = snapshot(folder)
    elif mode == "erofs":
        subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
    elif mode == "eacces":
        for root, dirs, _ in os.walk(folder):
            for d in [root] + [os.path.join(root, d) for d in dirs]:
                os.chmod(d, 0o555)
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setgroups([])
            os.setuid(65534)

    weights = model.get_weights()
    values = sess.get_value(W)

    def writers():
        yield "sess.save", p("ckpt"), lambda: sess.save(p("ckpt"))
        yield "gc.save", p("graph.gcg"), lambda: gc.save(p("graph.gcg"), out, session=sess)
        yield "model.save", p("model.gck"), lambda: model.save(p("model.gck"))
        yield "model.save_weights", p("weights.gck"), lambda: model.save_weights(p("weights.gck"))
        for name, make in cbs.items():
            yield name, folder, lambda make=make: model.fit(X, Y, epochs=2, verbose=0,
                                                            callbacks=[make(folder)])

    for name, path, write in writers():
        result = {"writer": name, "ok": False}
        try:
            try:
                write()
                result["detail"] = "no error"
            except CheckpointError as err:
                problems = []
                if not isinstance(err, OSError):
                    problems.append("not an OSError")
                if err.errno not in EXPECTED[mode]:
                    problems.append(f"errno {err.errno}")
                if path not in str(err) and not str(err).startswith(f"cannot write {folder}"):
                    problems.append("the path is not named")
                if snapshot(folder) != before:
                    problems.append("the folder changed (a previous file, or a temp file)")
                # still usable, and saves elsewhere
                stack = contextlib.ExitStack()
                stack.enter_context(writable_elsewhere())
                if name.startswith(("sess", "gc")):
                    if not np.array_equal(sess.get_value(W), values):
                        problems.append("the session's variables changed")
                    sess.run(out, {x: np.ones((2, 128), "float32")})
                    sess.save(os.path.join(elsewhere, "ckpt"))
                    gc.save(os.path.join(elsewhere, "graph.gcg"), out, session=sess)
                else:
                    if name in ("model.save", "model.save_weights") and not all(
                            np.array_equal(a, b) for a, b in zip(model.get_weights(), weights)):
                        problems.append("the model's weights changed")
                    model.evaluate(X, Y, verbose=0)
                    model.save(os.path.join(elsewhere, "model.gck"))
                    gk.load_model(os.path.join(elsewhere, "model.gck"))
                    weights = model.get_weights()
                stack.close()
                result.update(ok=not problems, detail="; ".join(problems) or str(err))
        except Exception:  # noqa: BLE001 - reported to the test
            result["detail"] = traceback.format_exc()
        print(json.dumps(result), flush=True)

    # the kernel cache never fails the program: one warning, the cache off, nothing left
    result = {"writer": "kernel cache", "ok": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache = KernelCache(p("cache"))
        cache.put("cd" * 32, b"y" * 10000)
    problems = []
    if not any(issubclass(w.category, GraphcWarning) for w in caught):
        problems.append("no warning")
    if cache.directory is not None:
        problems.append("the cache stayed on")
    if snapshot(folder) != before:
        problems.append("the folder changed")
    result.update(ok=not problems, detail="; ".join(problems) or str(caught[0].message))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
