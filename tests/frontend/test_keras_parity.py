"""graphc.frontend agrees with Keras 3 (benchmarks/keras_layer_parity.py,
keras_breadth_parity.py, keras_ops_parity.py and keras_text_parity.py): run where a Keras is at hand, in
GRAPHC_PEER_PYTHON (a separate venv with keras and jax) or in this interpreter; skipped
otherwise, since Keras is never a graphc dependency."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not os.environ.get("GRAPHC_PEER_PYTHON")
                    and importlib.util.find_spec("keras") is None,
                    reason="no Keras: set GRAPHC_PEER_PYTHON to a Python with keras and jax")
@pytest.mark.parametrize("script,cases", [
    ("keras_layer_parity.py", 60),  # recurrent layers, cells, RNN(cell), ConvLSTM, attention
    ("keras_breadth_parity.py", 311),  # the other layers, optimizers, losses and metrics
    ("keras_ops_parity.py", 192),  # gk.ops, gk.activations (and ctc) against Keras
    ("keras_text_parity.py", 28),  # Hashing, StringLookup, TextVectorization (host)
])
def test_frontend_matches_keras(script, cases):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script)],
                            capture_output=True, text=True, timeout=900)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in summary, summary
    assert summary["failed"] == [] and summary["cases"] >= cases, result.stdout[-3000:]
    assert summary["worst_max_abs_diff"] <= 1e-5
