"""The user's line that nodes, dumps and errors show: its file relative to the current directory
when the file lies under it (model.py:4, as the README shows), absolute otherwise."""
import os

import pytest

import graphc as gc

MODEL = """\
import graphc as gc
x = gc.placeholder(gc.float32, (None, 3), name="x")
y = x * 2.0
z = x + gc.placeholder(gc.float32, (4,), name="w")
"""


def run_model(path):
    """Run MODEL as the file `path` (its frames carry that name); returns (y, the error)."""
    scope = {}
    with pytest.raises(gc.ShapeError) as info:
        exec(compile(MODEL, str(path), "exec"), scope)
    return scope["y"], info.value


@pytest.mark.parametrize("cwd, shown", [
    ("project", "model.py"),
    (".", os.path.join("project", "model.py")),
    ("elsewhere", None),  # not under the current directory: absolute
])
def test_a_source_line_is_relative_to_the_current_directory_when_under_it(
        cwd, shown, tmp_path, monkeypatch, graph):
    for name in ("project", "elsewhere"):
        (tmp_path / name).mkdir()
    path = tmp_path / "project" / "model.py"
    monkeypatch.chdir(tmp_path / cwd)
    y, error = run_model(path)
    shown = shown or str(path)
    assert y.node.source == f"{shown}:3"
    assert f"# {shown}:3" in gc.dump(y)
    assert f"(created at {shown}:4)" in str(error)
