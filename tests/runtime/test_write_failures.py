"""Writers that cannot write, and writers that were killed.

Every atomic writer (sess.save, gc.save, model.save, save_weights, ModelCheckpoint, CSVLogger,
BackupAndRestore, the kernel cache) is run against a full disk, a file-size limit, a folder
without write permission and a read-only file system in a subprocess
(write_failures_job.py), and temp files that killed writers left are removed by the next write.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import graphc as gc
from graphc.errors import CheckpointError
from graphc.io import atomic

JOB = os.path.join(os.path.dirname(__file__), "write_failures_job.py")
WRITERS = {"sess.save", "gc.save", "model.save", "model.save_weights", "ModelCheckpoint",
           "CSVLogger", "BackupAndRestore", "kernel cache"}


def _can_run(argv):
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _mount_namespace():
    """The command prefix that runs a process in a private mount namespace where it may mount
    a tmpfs, or None where this machine allows none."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = tempfile.mkdtemp()
        try:
            if _can_run(prefix + ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]):
                return prefix
        finally:
            os.rmdir(probe)
    return None


@pytest.mark.parametrize("mode", ["efbig", "enospc", "erofs", "eacces"])
def test_every_writer_fails_clearly_and_leaves_the_previous_file(mode):
    prefix = []
    if mode in ("enospc", "erofs"):
        prefix = _mount_namespace()
        if prefix is None:
            pytest.skip("cannot mount a tmpfs here (not root, no user namespaces): the full "
                        "disk is tested through the file-size limit (efbig) instead")
    # not under pytest's tmp_path: as root the eacces job becomes nobody, who must reach it
    base = tempfile.mkdtemp(prefix="graphc-write-failures-")
    try:
        os.chmod(base, 0o755)
        folder, elsewhere = os.path.join(base, "target"), os.path.join(base, "elsewhere")
        os.mkdir(folder)
        os.mkdir(elsewhere)
        os.chmod(elsewhere, 0o777)
        env = dict(os.environ, GRAPHC_CACHE="0")
        proc = subprocess.run(prefix + [sys.executable, JOB, mode, folder, elsewhere],
                              capture_output=True, text=True, timeout=300, env=env)
        results = [json.loads(line) for line in proc.stdout.splitlines()
                   if line.startswith("{")]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert {r["writer"] for r in results} == WRITERS, proc.stdout
        failed = [r for r in results if not r["ok"]]
        assert not failed, json.dumps(failed, indent=1)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_write_error_is_a_checkpoint_error_and_an_oserror(tmp_path, graph):
    v = gc.Variable([1.0, 2.0], name="v")
    sess = gc.Session(device="reference")
    sess.save(tmp_path / "ok")
    target = tmp_path / "a_file" / "ckpt"   # its folder is a file
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(OSError) as info:
        sess.save(target)
    err = info.value
    assert isinstance(err, CheckpointError) and isinstance(err, gc.GraphcError)
    assert str(target) in str(err) and err.filename == str(target) and err.errno
    assert sess.get_value(v).tolist() == [1.0, 2.0]


# ---- temp files of dead writers ---------------------------------------------------------------
def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp_of(folder, pid, start, host=None, name="ckpt"):
    path = os.path.join(folder, f".tmp-{name}~{pid}-{start}-0123abcd@{host or atomic._HOST}")
    with open(path, "wb") as f:
        f.write(b"x" * 1000)
    return path


def test_a_write_removes_dead_writers_temp_files_and_keeps_live_ones(tmp_path):
    dead = _temp_of(tmp_path, _dead_pid(), "1")
    mine = os.path.join(tmp_path, atomic.temp_name(str(tmp_path / "other")))
    open(mine, "wb").close()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _temp_of(tmp_path, sleeper.pid, atomic._start_time(sleeper.pid))
        recycled = _temp_of(tmp_path, sleeper.pid, "12345", name="recycled")  # pid reused
        foreign_new = _temp_of(tmp_path, 1, "1", host="elsewhere-host")
        foreign_old = _temp_of(tmp_path, 1, "1", host="elsewhere-host", name="old")
        os.utime(foreign_old, (time.time() - 2 * 86400,) * 2)
        unknown = os.path.join(tmp_path, ".tmp-made-by-someone-else")
        open(unknown, "wb").close()
        atomic.write_text(tmp_path / "ckpt", "new")
        left = set(os.listdir(tmp_path))
        assert os.path.basename(dead) not in left
        assert os.path.basename(recycled) not in left
        assert os.path.basename(foreign_old) not in left
        for kept in (mine, live, foreign_new, unknown):
            assert os.path.basename(kept) in left
        assert (tmp_path / "ckpt").read_text() == "new"
    finally:
        sleeper.kill()
        sleeper.wait()
    atomic.write_text(tmp_path / "ckpt", "newer")   # the sleeper is dead now
    assert os.path.basename(live) not in os.listdir(tmp_path)


def test_a_writer_killed_at_any_point_leaves_old_or_new_and_nothing_after_next_save(tmp_path):
    """SIGKILL a process that saves a checkpoint in a loop, at random moments: the file is
    always the old or the new one, and the next save removes what the killed one left."""
    code = ("import sys, numpy as np, graphc as gc\n"
            "v = gc.Variable(np.zeros(1 << 18, 'float32'), name='v')\n"
            "s = gc.Session(device='reference')\n"
            "print('ready', flush=True)\n"
            "for i in range(1, 10**6):\n"
            "    s.set_value(v, np.full(1 << 18, i, 'float32'))\n"
            "    s.save(sys.argv[1])\n")
    path = str(tmp_path / "ckpt")
    rng = random.Random(18)
    with gc.Graph().as_default():
        v = gc.Variable(np.zeros(1 << 18, "float32"), name="v")
        sess = gc.Session(device="reference")
        for _ in range(3):
            proc = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE)
            proc.stdout.readline()
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            if os.path.exists(path):
                sess.restore(path)   # never torn: a complete checkpoint
                value = sess.get_value(v)
                assert (value == value[0]).all()
        sess.save(path)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")] == []

