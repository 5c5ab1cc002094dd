"""The W1-W9 benchmark scripts run (at --quick sizes) and print well-formed result lines.

Only the shape of the output is checked here, never a speed: figures belong to `make bench`.
Each script runs in its own process, as `make bench` runs it, with the test run's cache dir.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

import graphc as gc
from graphc.runtime import cuda_driver
from tests.codegen.cuda.host_emulation import missing_toolchain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
RESULT_KEYS = {"id", "workload", "unit", "graphc", "numpy", "ratio", "target", "better", "met",
               "torch", "jax", "load_avg"}

# script -> {id: how many result lines}; W7 starts two more processes that compile cold and
# warm, the slowest part of this file (a few seconds)
SCRIPTS = {
    "w1_elementwise.py": {"W1": 1},
    "w2_softmax.py": {"W2": 1},
    "w3_matmul.py": {"W3": 1, "W3b": 1, "W3-gemm": 1, "W3b-gemm": 1},
    "w4_mlp.py": {"W4": 1},
    "w5_cnn.py": {"W5": 1, "W5-conv": 3},
    "w6_call_overhead.py": {"W6": 1},
    "w7_compile_cache.py": {"W7": 2},
    "w8_chain.py": {"W8": 2, "W8-optimize": 1},
    "w9_lstm.py": {"W9": 1},
    "w10_onnx_zoo.py": {"W10": 1},
    "w11_distributed.py": {"W11": 1},
    "reductions.py": {f"R{n}": 1 for n in range(1, 6)},
    "matmul_dtypes.py": {f"M{n}": 1 for n in range(1, 7)},
    "gemm_shapes.py": {"G1": 1, "G4": 1, "G7": 1, "G12": 1},
}
WITHOUT_NUMPY = {"W7", "W8", "W10", "W11"}
# device "cuda" beside PyTorch on the GPU: no numpy column; without a GPU, skip lines
GPU_SCRIPT = "gpu_workloads.py"
GPU_IDS = ["copy-cuda", "W1-cuda", "W2-cuda", "W3b-cuda-float32", "W3b-cuda-bfloat16",
           "W4-cuda", "W5-cuda"]


def run_script(script, *args, env):
    """The JSON lines `script --quick *args` prints."""
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick", *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def quiet_env():
    """This environment without a peer interpreter: peer columns stay null."""
    return {k: v for k, v in os.environ.items() if k != "GRAPHC_PEER_PYTHON"}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_prints_result_lines(script):
    lines = run_script(script, "--no-peers", env=quiet_env())
    errors = [line for line in lines if "error" in line]
    assert not errors, errors
    counts = {}
    for line in lines:
        counts[line["id"]] = counts.get(line["id"], 0) + 1
    assert counts == SCRIPTS[script]
    for line in lines:
        if line["id"] == "W8-optimize":  # the optimizer's details, not a figure
            assert line["kernel_groups"] == 1 and line["run_us"] > 0
            continue
        assert RESULT_KEYS <= set(line), line
        assert line["graphc"] > 0
        assert line["torch"] is None and line["jax"] is None
        assert line["target"] is None and line["met"] is None  # --quick: no target applies
        if line["id"] in WITHOUT_NUMPY:
            assert line["numpy"] is None and line["ratio"] is None
        else:
            assert line["numpy"] > 0
            assert math.isclose(line["ratio"], line["graphc"] / line["numpy"], rel_tol=2e-3)


def test_gpu_script_skips_without_a_gpu():
    """Here (no pycuda or no GPU): one line per workload saying why, exit status 0."""
    try:
        cuda_driver.gpu()
    except gc.DeviceError as error:
        reason = str(error)
    else:
        pytest.skip("pycuda and a GPU are here: the script measures instead of skipping")
    lines = run_script(GPU_SCRIPT, "--no-peers", env=quiet_env())
    assert [line["id"] for line in lines] == GPU_IDS
    for line in lines:
        assert set(line) == {"id", "workload", "skipped"} and line["skipped"] == reason


def test_gpu_script_runs_on_the_emulated_gpu():
    """With GRAPHC_BENCH_FAKE_GPU=1 every graphc path of the script runs on the host-emulated
    GPU (the CUDA C compiled for the host), its results checked against numpy's; the lines are
    well formed, judge nothing at --quick, and say that the GPU was a fake."""
    if missing_toolchain():
        pytest.skip(f"host emulation of CUDA C: {missing_toolchain()}")
    lines = run_script(GPU_SCRIPT, "--no-peers", env=dict(quiet_env(), GRAPHC_BENCH_FAKE_GPU="1"))
    errors = [line for line in lines if "error" in line]
    assert not errors, errors
    assert [line["id"] for line in lines] == GPU_IDS
    for line in lines:
        assert RESULT_KEYS <= set(line), line
        assert line["fake_gpu"] is True and line["graphc"] > 0
        assert line["numpy"] is None and line["ratio"] is None and "numpy_note" in line
        assert line["torch"] is None and line["jax"] is None and line["torch_note"] == "--no-peers"
        assert line["target"] is None and line["met"] is None
    for line in lines[1:5]:  # W1, W2, W3b: kernels alone beside whole calls
        assert line["graphc_call"] > 0 and line["host_steps"] == 0
    for line in lines[1:]:  # judged by the copy measured here, not by the missing PyTorch
        assert line["unchecked"] == ["torch"] and ("ratio_vs_copy" in line) == (
            "copy" in line["targets"])


def test_peer_interpreter_is_asked():
    """With $GRAPHC_PEER_PYTHON set, the peer part runs there (this interpreter has neither
    torch nor jax, so their columns stay null, but the versions field says who ran)."""
    env = dict(quiet_env(), GRAPHC_PEER_PYTHON=sys.executable)
    [line] = run_script("w6_call_overhead.py", env=env)
    assert "peer_versions" in line and "error" not in line


def _common():
    spec = importlib.util.spec_from_file_location("_common", os.path.join(BENCH, "_common.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_met_follows_the_direction_of_the_target():
    common = _common()
    assert common.result("X", "w", "GB/s", 21.0, 2.0, 20)["met"] is True
    assert common.result("X", "w", "GB/s", 19.0, 2.0, 20)["met"] is False
    assert common.result("X", "w", "us", 1.5, 1.0, 2, better="lower")["met"] is True
    assert common.result("X", "w", "us", 2.5, 1.0, 2, better="lower")["met"] is False
    line = common.result("X", "w", "us", 3.0, 1.5, 2, better="lower")
    assert line["ratio"] == 2.0 and line["numpy"] == 1.5


def test_a_failing_workload_becomes_an_error_line(capsys):
    def broken():
        raise ValueError("bad shape")
    _common().guarded("W0", "broken workload", broken)
    [line] = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert line["id"] == "W0" and line["error"] == "ValueError: bad shape"
    assert "test_benchmarks.py" in line["where"]
