"""The pass manager: runs the passes a level selects, times each, and keeps every stage."""
import os
import re
import time
from dataclasses import dataclass, field

from ..errors import GraphcError
from ..io.atomic import write_text
from .bodies import everywhere
from .database import DEFAULT_LEVEL, query
from .rebuild import reachable, rebuild


@dataclass
class Compilation:
    """What optimizing one set of outputs produced: the final graph and the way there."""

    graph: object
    outputs: list
    input_outputs: list
    stages: list = field(default_factory=list)  # (stage name, outputs) after each pass
    fuse: bool = True
    pass_seconds: dict = field(default_factory=dict)
    compile_seconds: float = 0.0
    dump_directory: str | None = None  # where GRAPHC_DUMP_DIR's files of this compilation go
    _partition: object = None

    @property
    def partition(self):
        """The fusion groups (None when fusion is off); computed when first asked for, since
        only code generation and dumps need them."""
        if self._partition is None and self.fuse and self.outputs:
            from .fusion import partition
            t0 = time.perf_counter()
            self._partition = partition(self.graph, self.outputs)
            seconds = time.perf_counter() - t0
            self.pass_seconds["fusion"] = seconds
            self.compile_seconds += seconds
        return self._partition

    def stats(self):
        groups = self.partition
        return {
            "nodes_before": len(reachable(self.input_outputs)),
            "nodes_after": len(reachable(self.outputs)),
            "kernels": len(groups.groups) if groups is not None else
            sum(1 for n in reachable(self.outputs) if n.spec.kind != "source"),
            "compile_seconds": self.compile_seconds,
            "pass_seconds": dict(self.pass_seconds),
        }


def optimize(outputs, optimize=DEFAULT_LEVEL, excluding=(), including=(), debug=False, name="function",
             dump_dir=None):
    """Run the selected passes over the subgraph behind `outputs` and inside every loop and
    cond body it holds (graphc/passes/bodies.py); returns a Compilation."""
    start = time.perf_counter()
    passes, fuse = query(optimize, excluding, including)
    dump_dir = dump_dir if dump_dir is not None else os.environ.get("GRAPHC_DUMP_DIR")
    result = Compilation(outputs[0].graph if outputs else None, list(outputs), list(outputs))
    result.stages.append(("input", list(outputs)))
    current = list(outputs)
    for p in passes:
        t0 = time.perf_counter()
        _, current = everywhere(p.run, current)  # in loop and cond bodies too
        result.pass_seconds[p.name] = time.perf_counter() - t0
        if debug:
            _type_check(current, p.name)
        result.stages.append((p.name, current))
    if passes and current and current[0].graph is outputs[0].graph:
        # no pass changed anything; the result still gets a graph of its own, one that what
        # the user adds to theirs later does not reach
        _, current = rebuild(current)
    result.outputs = current
    result.graph = current[0].graph if current else None
    result.fuse = fuse
    result.compile_seconds = time.perf_counter() - start
    if dump_dir:
        result.dump_directory = os.path.join(dump_dir, folder_name(name))
        write_stages(result, result.dump_directory)
    return result


def folder_name(name):
    """A function's name as one folder inside the dump directory (a name may be a file's path,
    as `python -m graphc dump FILE` names its function)."""
    return re.sub(r"[^\w.+-]", "_", name).lstrip(".") or "function"


def _type_check(outputs, after):
    try:
        rebuild(outputs, check_types=True)
    except GraphcError as err:
        raise GraphcError(f"after pass {after!r}: {err}") from None


def write_stages(result, directory):
    """One text dump per stage, numbered in order, plus the fusion groups."""
    from ..dump import dump_graph, dump_kernels
    for i, (stage, outs) in enumerate(result.stages):
        if outs:
            write_text(os.path.join(directory, f"{i:02d}-{stage}.txt"),
                       dump_graph(outs[0].graph, outs, format="text") + "\n")
    if result.partition is not None:
        write_text(os.path.join(directory, f"{len(result.stages):02d}-kernels.txt"),
                   dump_kernels(result.partition, format="text", title="kernels") + "\n")
