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
               "torch", "jax", "load_avg", "limit", "limit_of", "fraction_of_limit"}
MACHINE_KEYS = {"cpu_model", "cores", "vector_bits", "fma_peak_gflops", "fma_peak_1thread_gflops",
                "stream_copy_gbps", "stream_triad_gbps", "stream_copy_1thread_gbps",
                "stream_triad_1thread_gbps", "load_avg", "quick"}

# script -> {id: how many result lines}; W7 starts two more processes that compile cold and
# warm, the slowest part of this file (a few seconds)
SCRIPTS = {
    "w1_elementwise.py": {"W1": 1},
    "w2_softmax.py": {"W2": 1},
    "w3_matmul.py": {"W3": 1, "W3b": 1, "W3-gemm": 1, "W3b-gemm": 1},
    "w4_mlp.py": {"W4": 1},
    "w5_cnn.py": {"W5": 1, "W5-conv": 4},
    "w6_call_overhead.py": {"W6": 1},
    "w7_compile_cache.py": {"W7": 3},
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
        check_limit(line)


def check_limit(line):
    """GFLOP/s and GB/s lines (and steps/s lines with a FLOP count) carry the machine's limit,
    from the quick measurement and saying so, and the figure's fraction of it; others none."""
    per_second = line["unit"] in ("GFLOP/s", "GB/s") or (
        line["unit"] == "steps/s" and line.get("flops_per_step"))
    if not per_second or line.get("dtype") not in (None, "float32", "float64"):
        assert line["limit"] is None and line["fraction_of_limit"] is None, line
        return
    assert line["limit"] > 0 and "quick measurement" in line["limit_of"], line
    kind = "FMA peak" if line["unit"] != "GB/s" else "stream bandwidth"
    assert kind in line["limit_of"], line
    figure = line["graphc"] * (line.get("flops_per_step", 1e9) / 1e9 if line["unit"] == "steps/s"
                               else 1)
    assert math.isclose(line["fraction_of_limit"], figure / line["limit"], rel_tol=0.01,
                        abs_tol=2e-3), line


def test_machine_script_measures_the_machine_quickly():
    """benchmarks/machine.py --quick: one line with the CPU, its FMA peak (all cores and one)
    and stream bandwidths, marked quick, in well under a second of measuring."""
    [line] = run_script("machine.py", env=quiet_env())
    assert line["id"] == "machine" and MACHINE_KEYS <= set(line), line
    assert line["quick"] is True and line["seconds"] < 5
    assert line["cores"] >= 1 and line["vector_bits"] in (128, 256, 512)
    for key in MACHINE_KEYS - {"cpu_model", "cores", "vector_bits", "load_avg", "quick"}:
        assert line[key] > 0, key


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


FAKE_MACHINE = {"cores": 2, "vector_bits": 256, "fma_peak_gflops": 200.0,
                "fma_peak_1thread_gflops": 100.0, "stream_copy_gbps": 30.0,
                "stream_triad_gbps": 40.0, "stream_copy_1thread_gbps": 20.0,
                "stream_triad_1thread_gbps": 25.0, "quick": False}


def test_fraction_of_limit_follows_the_unit(monkeypatch):
    """GFLOP/s against the FMA peak (FP64: half of it; one thread: one core's), GB/s against the
    best stream figure, steps/s through flops_per_step, latencies without a limit; the best peer
    and its fraction too."""
    common = _common()
    monkeypatch.setattr(common, "machine", lambda: FAKE_MACHINE)
    line = common.result("X", "w", "GFLOP/s", 150.0, 100.0, None, peers={"torch": 180.0})
    assert line["limit"] == 200.0 and line["fraction_of_limit"] == 0.75
    assert "FMA peak" in line["limit_of"] and "quick" not in line["limit_of"]
    assert line["best_peer"] == "torch" and line["best_peer_fraction_of_limit"] == 0.9
    line = common.result("X", "w", "GFLOP/s", 1.0, 1.0, None, peers={"jax": 2.0}, tf=3.0)
    assert line["best_peer"] == "tf"  # W9's extra columns count too
    line = common.result("X", "w", "GFLOP/s", 50.0, 1.0, None, dtype="float64",
                         graphc_1thread=25.0)
    assert line["fraction_of_limit"] == 0.5 and line["graphc_1thread_fraction_of_limit"] == 0.5
    assert common.result("X", "w", "GFLOP/s", 50.0, 1.0, None, threads=1)["limit"] == 100.0
    line = common.result("X", "w", "GB/s", 20.0, 1.0, None)
    assert line["limit"] == 40.0 and line["fraction_of_limit"] == 0.5
    line = common.result("X", "w", "steps/s", 100.0, 1.0, None, flops_per_step=1e9)
    assert line["fraction_of_limit"] == 0.5 and line["graphc_gflops"] == 100.0
    line = common.result("X", "w", "us", 2.0, 1.0, None, better="lower", peers={"jax": 3.0})
    assert line["limit"] is None and line["fraction_of_limit"] is None
    assert common.result("X", "w", "steps/s", 10.0, 1.0, None)["limit"] is None
    assert common.result("X", "w", "GB/s", 10.0, 1.0, None, device="cuda")["limit"] is None


def test_a_failing_workload_becomes_an_error_line(capsys):
    def broken():
        raise ValueError("bad shape")
    _common().guarded("W0", "broken workload", broken)
    [line] = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    assert line["id"] == "W0" and line["error"] == "ValueError: bad shape"
    assert "test_benchmarks.py" in line["where"]
