"""The W1-W8 benchmark scripts run (at --quick sizes) and print well-formed result lines.

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
    "reductions.py": {f"R{n}": 1 for n in range(1, 6)},
    "matmul_dtypes.py": {f"M{n}": 1 for n in range(1, 7)},
    "gemm_shapes.py": {"G1": 1, "G4": 1, "G7": 1, "G12": 1},
}
WITHOUT_NUMPY = {"W7", "W8"}


def run_script(script, *args, env):
    """The JSON lines `script --quick *args` prints."""
    proc = subprocess.run([sys.executable, os.path.join(BENCH, script), "--quick", *args],
                          capture_output=True, text=True, env=env, timeout=120)
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
