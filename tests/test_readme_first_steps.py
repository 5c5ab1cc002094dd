"""What a newcomer reads first in the README: how to reach the Python that `make` installed
graphc into, and install commands that work in a checkout."""
import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def section(text, title):
    """The README text under `## title`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_the_two_commands_say_how_to_reach_the_installed_python():
    commands = section(read("README.md"), "Two commands")
    assert "make demo" in commands and "make test" in commands
    assert "source .venv/bin/activate" in commands
    assert ".venv/bin/python" in commands
    # the failure a newcomer would otherwise meet, so that it can be searched for
    assert "No module named 'graphc.runtime'" in commands


def test_cuda_install_commands_name_the_checkouts_extra():
    extras = tomllib.loads(read("pyproject.toml"))["project"]["optional-dependencies"]
    assert "pycuda" in extras["cuda"]
    # graphc is not on PyPI: `pip install graphc[cuda]` would fetch another project or nothing
    for path in ("README.md", os.path.join("runtime", "cuda_driver.py")):
        text = read(path)
        assert "graphc[cuda]" not in text, path
        assert 'pip install -e ".[cuda]"' in text.replace('\\"', '"'), path
