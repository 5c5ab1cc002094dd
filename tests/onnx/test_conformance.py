"""ONNX's own conformance suite: every node test case of onnx.backend.test.case.node through
graphc.onnx.backend on device "reference" (the ops' numpy references: compiling ~1,900 models
for cpu would take far longer than the rest of the suite), compared as onnx's runner compares.
The pass count may not drop below the recorded floor, and README's scoreboard must be the one
this code produces."""
import os

import pytest

pytest.importorskip("onnx")
from graphc.onnx import scoreboard  # noqa: E402

FLOOR = 1308  # passing cases recorded in README; raise it as coverage grows
README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "README.md")


@pytest.fixture(scope="module")
def results():
    return scoreboard.run_all(scoreboard.DEVICE)


def test_pass_count_does_not_drop(results):
    passed = sum(reason is None for _, _, reason in results)
    assert len(results) > 1500
    assert passed >= FLOOR, f"{passed} of {len(results)} ONNX node cases pass, floor {FLOOR}"


def test_readme_scoreboard_matches_the_code(results):
    import onnx
    with open(README) as f:
        doc = f.read()
    if f"(onnx {onnx.__version__})" not in doc:
        pytest.skip(f"README's scoreboard was recorded with another onnx than {onnx.__version__}")
    table = scoreboard.render(results)
    assert table in doc, ("README's ONNX scoreboard is out of date: run "
                          "`python -m graphc.onnx.scoreboard README.md`")
