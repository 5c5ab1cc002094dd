"""Data-parallel training on real MPI jobs: the venv's mpiexec (MPICH, from the `mpi` extra)
runs the job scripts beside this file on 2 and 4 ranks over loopback (4 ranks on a 2-core
machine oversubscribe it), each under a hard timeout so that nothing can hang the suite."""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
TIMEOUT = 120  # seconds for a whole job; the fault cases must end within 60

try:
    import mpi4py  # noqa: F401
    HAVE_MPI = os.path.exists(MPIEXEC)
except ImportError:
    HAVE_MPI = False
pytestmark = pytest.mark.skipif(not HAVE_MPI, reason="no mpi4py and mpiexec in this Python's "
                                "environment: pip install 'graphc[mpi]' (make test does)")


def job_env():
    env = dict(os.environ)
    env["GRAPHC_NUM_THREADS"] = "1"   # one thread per rank: ranks share the machine's cores
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(HERE)),
                                                      env.get("PYTHONPATH")]))
    return env


def run_job(script, ranks, *args, timeout=TIMEOUT):
    """Run tests/distributed/SCRIPT on `ranks` ranks (None: a plain process, no launcher);
    returns the CompletedProcess, with its wall time as .seconds."""
    command = [sys.executable, os.path.join(HERE, script), *map(str, args)]
    if ranks is not None:
        command = [MPIEXEC, "-launcher", "fork", "-n", str(ranks)] + command
    start = time.monotonic()
    done = subprocess.run(command, env=job_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    done.seconds = time.monotonic() - start
    return done


def results(folder, ranks):
    found = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(folder, "result-*.json")))]
    assert [r["rank"] for r in found] == list(range(ranks))
    return found


def check_ok(done):
    assert done.returncode == 0, f"job failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("ranks", [2, 4])
def test_collectives_gradients_and_tf1_training(ranks, tmp_path):
    check_ok(run_job("tf1_job.py", ranks, tmp_path))
    found = results(str(tmp_path), ranks)
    for r in found:
        assert r["size"] == ranks
        assert r["collectives"] == dict.fromkeys(r["collectives"], True), r["collectives"]
        # DistributedOptimizer on shards == one process on the global batch, to float32 order
        assert r["max_diff_single"] < 1e-5
        # bitwise the same weights on every rank
        assert r["weights_hex"] == found[0]["weights_hex"]
        # f.profile() shows the native allreduce's start and wait as rows of their own
        assert "allreduce start" in r["profile_rows"] and "allreduce wait" in r["profile_rows"]
        assert r["stats"]["calls"] > 0 and r["stats"]["seconds"] > 0


@pytest.fixture(scope="module")
def single_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("single")
    check_ok(run_job("keras_job.py", None, folder, "single"))
    return results(str(folder), 1)[0]


@pytest.mark.parametrize("ranks", [2, 4])
def test_keras_fit_evaluate_predict_data_parallel(ranks, tmp_path, single_fit):
    done = run_job("keras_job.py", ranks, tmp_path)
    check_ok(done)
    found = results(str(tmp_path), ranks)
    first = found[0]
    for r in found:
        assert r["size"] == ranks
        # identical on every rank: weights bitwise, History and evaluate() exactly
        for a, b in zip(r["weights"], first["weights"]):
            assert np.array_equal(np.array(a), np.array(b))
        assert r["history"] == first["history"] and r["evaluate"] == first["evaluate"]
        assert r["epochs"] == 2  # EarlyStopping decided alike on every rank
        assert r["loaded_same"]  # the checkpoint rank 0 wrote loads on every rank
        np.testing.assert_allclose(r["pred"], single_fit["pred"], rtol=1e-5, atol=1e-5)
    # equal, to float32 reordering, to one process fitting the same global batches
    for a, b in zip(first["weights"], single_fit["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in single_fit["history"].items():
        np.testing.assert_allclose(first["history"][key], values, rtol=1e-5)
    for key, value in single_fit["evaluate"].items():
        assert abs(first["evaluate"][key] - value) < 1e-5
    # rank 0 alone printed progress and wrote the files
    assert done.stdout.count("Epoch 1/3") == 1 and done.stdout.count("Epoch 2/3") == 1
    rows = open(tmp_path / "log.csv").read().splitlines()
    assert rows[0].startswith("epoch,") and len(rows) == 3
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["ckpt-1.gck", "ckpt-2.gck", "log.csv"] + [f"result-{i}.json" for i in range(ranks)])


@pytest.fixture(scope="module")
def single_random_bn_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("single_random_bn")
    check_ok(run_job("random_bn_job.py", None, folder, "single"))
    return results(str(folder), 1)[0]


@pytest.mark.parametrize("ranks", [2, 4])
def test_dropout_and_batch_norm_fit_equals_the_single_process_fit(ranks, tmp_path,
                                                                  single_random_bn_fit):
    """Dropout draws the global batch's masks and BatchNormalization uses the global batch's
    statistics (sync batch norm), so a data-parallel fit (shuffled, the last batch of 2: on 4
    ranks two shards are empty) is the single-process fit to float32 order; ranks bitwise
    equal (they start from different weights and dropout seeds: rank 0's are broadcast)."""
    check_ok(run_job("random_bn_job.py", ranks, tmp_path))
    found = results(str(tmp_path), ranks)
    first, single = found[0], single_random_bn_fit
    for r in found:
        assert r["size"] == ranks
        assert r["weights_hex"] == first["weights_hex"] and r["history"] == first["history"]
    for a, b in zip(first["weights"], single["weights"]):   # moving statistics included
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for key, values in single["history"].items():
        np.testing.assert_allclose(first["history"][key], values, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode, expected", [
    ("raise", "RuntimeError: rank 1 fails on purpose"),
    ("kill", "signal 9"),
    ("mismatch", "the ranks run different collectives here"),
    ("resize", "the ranks run different collectives here"),
])
def test_a_failing_rank_ends_the_job(mode, expected):
    done = run_job("fault_job.py", 2, mode, timeout=60)
    assert done.returncode != 0
    assert done.seconds < 60
    assert expected in done.stdout + done.stderr, done.stdout + done.stderr
    assert "finished" not in done.stdout
    if mode == "mismatch":
        assert "GraphcError" in done.stderr and "float32[3, 5]" in done.stderr
    if mode == "resize":  # the first two calls agreed; the third's sizes differ: an error
        assert "rank 1 call 1 done" in done.stdout and "call 2 done" not in done.stdout
        assert "GraphcError" in done.stderr and "float32[5, 3]" in done.stderr


def _left_in(folder):
    """The checkpoints in `folder` by number, after checking that any temp file left there is
    a dead writer's, which the next atomic write in the folder removes."""
    from graphc.io import atomic
    temps = [n for n in os.listdir(folder) if n.startswith(atomic.TEMP_PREFIX)]
    assert not any(atomic.writer_alive(n) for n in temps), temps
    atomic.write_text(os.path.join(folder, "next.txt"), "a later write")
    names = sorted(os.listdir(folder))
    assert not [n for n in names if n.startswith(atomic.TEMP_PREFIX)], names
    return sorted((int(n[5:-4]), os.path.join(folder, n)) for n in names if n.endswith(".gck"))


@pytest.mark.parametrize("mode", ["raise-ckpt", "kill-ckpt"])
def test_a_failing_rank_leaves_the_last_checkpoint_whole(mode, tmp_path):
    """Rank 0 saves after every step (sess.save) and rank 1 fails while it writes: the job
    ends, every checkpoint left loads whole, and the last is of the last step saved."""
    import graphc as gc
    done = run_job("fault_job.py", 2, mode, tmp_path, timeout=60)
    assert done.returncode != 0 and done.seconds < 60, done.stdout + done.stderr
    assert "finished" not in done.stdout
    saved = _left_in(str(tmp_path))
    assert [step for step, _ in saved] == list(range(len(saved))) and len(saved) >= 3
    g = gc.Graph()
    with g.as_default():
        gc.Variable(np.zeros((3, 4), "float32"), name="W")
        big = gc.Variable(np.zeros(1 << 20, "float32"), name="big")
    sess = gc.Session(graph=g)
    for step, path in saved:
        sess.restore(path)  # the digests of every value checked
        np.testing.assert_array_equal(sess.get_value(big),
                                      np.arange(1 << 20, dtype="float32") + step + 1)


def test_a_killed_rank_leaves_the_last_model_checkpoint_whole(tmp_path):
    """A data-parallel fit with ModelCheckpoint; rank 1 is killed at the end of epoch 3,
    while rank 0 writes that epoch's file: the job ends, and the files left load."""
    import graphc.frontend as gk
    done = run_job("fault_job.py", 2, "keras-kill", tmp_path, timeout=60)
    assert done.returncode != 0 and done.seconds < 60, done.stdout + done.stderr
    assert "finished" not in done.stdout
    saved = _left_in(str(tmp_path))
    assert [epoch for epoch, _ in saved][:2] == [1, 2], saved
    for _, path in saved:
        model = gk.models.load_model(path)
        assert all(np.isfinite(w).all() for w in model.get_weights())
        assert model.predict(np.ones((2, 32), "float32"), verbose=0).shape == (2, 2)


def test_native_allreduce_in_place_deterministic_and_overlapped(tmp_path):
    """3 ranks (not a power of two): the allreduce is MPI called on the plan's buffers,
    bitwise the same on every rank and from run to run, and a bucket's allreduce starts
    before the backward pass has finished."""
    check_ok(run_job("native_job.py", 3, tmp_path, timeout=90))
    found = results(str(tmp_path), 3)
    for r in found:
        assert r["phases"] == ["start", "wait"]
        assert r["addresses_are_the_plans"] and r["value_ok"]
        assert all(r["repeatable"]) and all(r["close"])
        assert r["digests"] == found[0]["digests"]
        assert r["weights"] == found[0]["weights"]
        assert r["kernels_between_starts"], r["profile_text"]
        assert r["first_wait_after_last_start"], r["profile_text"]
        c = r["communication"]
        assert c["seconds"] > 0 and 0 < c["overlapped_seconds"] <= c["seconds"] + 1e-6
        assert r["stats"]["native_calls"] > 0 and r["stats"]["calls"] == r["stats"]["native_calls"]
        assert "overlapped" in r["profile_text"]


def test_device_cuda_collectives_and_training_on_the_host_emulation(tmp_path):
    """device="cuda" in a job of 2 ranks, on the host emulation of tests/codegen/cuda (no GPU
    needed): allreduce, broadcast and DistributedOptimizer steps give device cpu's results,
    and the same weights on both ranks."""
    from tests.codegen.cuda.host_emulation import missing_toolchain
    if missing_toolchain():
        pytest.skip(f"host emulation of CUDA C: {missing_toolchain()}")
    check_ok(run_job("cuda_job.py", 2, tmp_path, "host", timeout=120))
    found = results(str(tmp_path), 2)
    every = [(np.linspace(-1, 1, 6) * (r + 1) + r).astype("float32") for r in range(2)]
    for r in found:
        assert r["gpu"] == "EmulatedGpu"
        s, m, b, big = (np.array(v) for v in r["cuda"][:4])
        np.testing.assert_allclose(s, every[0] ** 2 + every[1] ** 2, rtol=1e-6)
        np.testing.assert_allclose(m, (every[0] + every[1]) / 2, rtol=1e-6)
        np.testing.assert_array_equal(b, every[1] + 1)
        np.testing.assert_allclose(big, np.broadcast_to((every[0] + every[1])[:, None],
                                                        (6, 5000)), rtol=1e-6)
        for got, want in zip(r["cuda"][:4], r["cpu"][:4]):   # the collectives: exactly
            np.testing.assert_array_equal(got, want)
        for got, want in zip(r["cuda"][4:], r["cpu"][4:]):   # the weights: to float32 order
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert r["cuda"] == found[0]["cuda"]                 # the same on every rank
