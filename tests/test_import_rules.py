"""The direction of imports (DESIGN.md, section 1), read from every module's import statements:
the core (graphc/, but for the re-exports of graphc/__init__.py) never imports the runtime or
the frontend; the runtime never imports the frontend, and reaches the kernel IR and the code
generators only through graphc.compiler and graphc.targets; the two code generators, and the
two targets, never import each other."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {"graphc": "graphc", "graphc.runtime": "runtime", "graphc.frontend": "frontend"}
# (the modules a rule covers, the modules they never import)
RULES = [
    ("graphc", ("graphc.runtime", "graphc.frontend")),
    ("graphc.runtime", ("graphc.frontend", "graphc.kernels", "graphc.codegen")),
    ("graphc.codegen.llvm", ("graphc.codegen.cuda",)),
    ("graphc.codegen.cuda", ("graphc.codegen.llvm",)),
    ("graphc.targets.cpu", ("graphc.targets.cuda", "graphc.codegen.cuda")),
    ("graphc.targets.cuda", ("graphc.targets.cpu", "graphc.codegen.llvm")),
]
EXEMPT = {"graphc",  # graphc/__init__.py re-exports the runtime's Session and function
          # the ONNX entry points compile what the core importer builds (gc.onnx.load, the
          # onnx Backend, the conformance scoreboard); graphc.onnx's importer modules are core
          "graphc.onnx", "graphc.onnx.backend", "graphc.onnx.scoreboard"}


def modules():
    """{module name: path} of every module of the three packages."""
    found = {}
    for package, folder in PACKAGES.items():
        for directory, dirs, files in os.walk(os.path.join(ROOT, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            parts = os.path.relpath(directory, os.path.join(ROOT, folder)).split(os.sep)
            prefix = ".".join([package] + [p for p in parts if p != "."])
            for name in files:
                if name.endswith(".py"):
                    module = prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"
                    found[module] = os.path.join(directory, name)
    return found


def imported(module, path):
    """The names a module imports, absolute (`from .x import y` in graphc.kernels gives
    graphc.kernels.x and graphc.kernels.x.y: y may be a module)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def covered(module, scope):
    """Whether a rule for `scope` covers `module`: the core is graphc's own folder only."""
    if scope == "graphc":
        return within(module, "graphc") and not any(
            within(module, p) for p in PACKAGES if p != "graphc") and module not in EXEMPT
    return within(module, scope)


def broken_rules(found):
    """(module, what it must not import, the names it imports of that) for each module and
    package of RULES that it imports against them."""
    out = []
    for module, path in sorted(found.items()):
        names = set(imported(module, path))
        for scope, never in RULES:
            if covered(module, scope):
                for banned in never:
                    wrong = sorted(n for n in names if within(n, banned))
                    if wrong:
                        out.append((module, banned, wrong))
    return out


def test_every_module_keeps_the_import_rules():
    found = modules()
    assert {"graphc.compiler", "graphc.targets.cpu", "graphc.runtime.native",
            "graphc.codegen.llvm.emit", "graphc.codegen.cuda.render"} <= set(found)
    assert broken_rules(found) == []


@pytest.mark.parametrize("module,source,banned", [
    ("graphc.passes.fusion", "from ..runtime import session", "graphc.runtime"),
    ("graphc.runtime.cpu", "from graphc.kernels.lower import Slots", "graphc.kernels"),
    ("graphc.runtime.cpu", "import graphc.codegen.llvm.jit", "graphc.codegen"),
    ("graphc.runtime.session", "from ..frontend import models", "graphc.frontend"),
    ("graphc.codegen.cuda.render", "from ..llvm import scalar", "graphc.codegen.llvm"),
    ("graphc.codegen.llvm.emit", "from graphc.codegen.cuda.render import symbol",
     "graphc.codegen.cuda"),
    ("graphc.targets.cuda", "from . import cpu", "graphc.targets.cpu"),
])
def test_an_import_against_the_rules_is_found(tmp_path, module, source, banned):
    """The checker itself: each kind of broken rule, in a module of its own."""
    path = tmp_path / "module.py"
    path.write_text(f"def f():\n    {source}\n")
    assert [b for _, b, _ in broken_rules({module: str(path)})] == [banned]


def test_graphc_init_may_reexport_the_runtime(tmp_path):
    path = tmp_path / "__init__.py"
    path.write_text("from .runtime import Session\n")
    assert broken_rules({"graphc": str(path)}) == []
