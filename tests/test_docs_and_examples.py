"""The README's code and the examples run as written."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_text():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def readme_python_blocks():
    return re.findall(r"```python\n(.*?)```", readme_text(), flags=re.S)


def test_readme_table_of_levels_is_generated_from_the_pass_database():
    from graphc.passes import table
    assert table.generated_block() in readme_text(), (
        "the README's table of optimization levels differs from the pass database; run: "
        "python -m graphc.passes.table README.md")


def test_readme_python_blocks_run_in_order(tmp_path):
    script = "\n".join(readme_python_blocks())
    assert "gc.Session" in script and "gc.function" in script
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("script,args,expect", [
    ("digits_cnn.py", ["--epochs", "1"], "held-out accuracy"),
    ("digits_mlp.py", ["--epochs", "2"], "the checkpoint reloaded"),
    ("custom_training_loop.py", ["--epochs", "1"], "held-out accuracy"),
    ("tf1_style.py", ["--steps", "30"], "training accuracy"),
    ("theano_style.py", ["--steps", "60"], "(true 3)"),
    ("theano_scan.py", ["--tiny"], "all three match numpy"),
    ("inspect_graph.py", ["--hidden", "7"], "fusion groups: 22"),
])
def test_examples_run(script, args, expect):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script)] + args,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expect in result.stdout


def test_theano_example_recovers_the_line():
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import theano_style
        w, b = theano_style.main(steps=60)
    finally:
        sys.path.pop(0)
    assert abs(w - 3) < 0.05 and abs(b + 2) < 0.05


def test_the_inspection_example_writes_its_page_beside_the_demos_other_dumps(tmp_path,
                                                                            monkeypatch, capsys):
    """`make demo` runs the examples from the checkout: the kernel-coloured page goes to
    build/demo_dumps/ there, where digits_cnn.py writes its dumps, not to a temp folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(os.path.join(ROOT, "examples"))
    import digits_cnn
    import inspect_graph
    stats = inspect_graph.main(hidden=7)
    page = tmp_path / "build" / "demo_dumps" / "mlp_step.html"
    assert os.path.dirname(page) == os.path.abspath(digits_cnn.main.__defaults__[2])
    assert f"optimized graph as HTML: {page}" in capsys.readouterr().out
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "mlp_step" in text
    # the nodes carry their kernel, which colours them
    assert len(set(re.findall(r'"kernel":(\d+)', text))) == stats["kernels"]
