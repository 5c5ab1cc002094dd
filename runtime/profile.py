"""Where a compiled CPU function's time goes: one row per kernel and per host step.

Profiling builds the function's kernels a second time as a program with one entry per kernel
(the code of segments [[kernel], ...]: each entry dispatches its kernel as the segment's entry
would, through the thread pool when it has enough work), and for the profiled calls only,
replaces each native step of the run's plan with the kernels' entries called one by one under
a timer; host steps (the numpy reference) are timed as they run. The calls are ordinary calls
otherwise: feeds are checked, updates applied. The normal run path holds no timer.

A native collective (an allreduce the compiler split into a start and a wait: compiler.
CollectiveStep) gives two rows, "allreduce start" and "allreduce wait", the time the program
spent inside MPI there; `communication` holds, per call, the medians of the time from each
start to its completion (as MPI_Test or MPI_Wait first saw it), and of the part of it that
overlapped other steps (distributed.stats()). `timeline` lists the last instrumented run's
rows in the order they ran, with their start and end (seconds from the run's start).

A loop's or cond's host row is followed by the rows of its compiled bodies' kernels and host
steps, nested under it (`within`: the index of the row they are part of; nested bodies nest
further), each summed over the steps of the call. For the profiled calls, a loop whose body
runs as one call of its driver (runtime/loops.py) runs step by step instead, so that each
kernel of the body can be timed on its own: its row then holds the stepping's Python work too.

A profile's top-level rows sum to the instrumented call's time: the last row, "python", is
what the call spent outside kernels and host steps (checking feeds, binding, handing over
outputs and new variable values). Each figure is a median over the runs; `step_seconds` is the median time of
uninstrumented calls interleaved with the profiled ones, to compare with.
"""
import functools
import statistics
import time
from dataclasses import dataclass

from graphc.compiler import CollectiveStep, NativeStep
from graphc.errors import GraphcError
from graphc.targets.cpu import CPU

from .cpu import CpuExecutable
from .llvm_objects import LoadedProgram


@dataclass
class Row:
    name: str  # the kernel's name, "host <op>" for a host step, "python" for the rest
    nodes: tuple  # names of the graph nodes it computes
    seconds: float  # median over the runs
    share: float  # of the sum of the top-level rows' medians
    within: int = None  # the index of the loop's or cond's row this body row is part of


@dataclass
class Profile:
    rows: list
    step_seconds: float  # median of uninstrumented calls
    runs: int
    # native collectives' medians per call: {"seconds" (start to completion),
    # "overlapped_seconds", "exposed_seconds" (inside MPI)}; None without any
    communication: dict = None
    timeline: list = None  # the last instrumented run: [(row name, start s, end s)]

    @property
    def total_seconds(self):
        return sum(r.seconds for r in self.rows if r.within is None)

    def depth(self, row):
        return 0 if row.within is None else 1 + self.depth(self.rows[row.within])

    def __str__(self):
        names = ["  " * self.depth(r) + r.name for r in self.rows]
        width = max([len(n) for n in names] + [6])
        lines = [f"{'kernel':<{width}}  {'ms':>8}  {'share':>6}  nodes"]
        for name, r in zip(names, self.rows):
            nodes = ", ".join(r.nodes)
            if len(nodes) > 60:
                nodes = nodes[:57] + "..."
            lines.append(f"{name:<{width}}  {r.seconds * 1e3:8.3f}  {r.share:6.1%}  {nodes}")
        lines.append(f"{'sum':<{width}}  {self.total_seconds * 1e3:8.3f}  (uninstrumented call: "
                     f"{self.step_seconds * 1e3:.3f} ms; medians of {self.runs} runs)")
        c = self.communication
        if c is not None:
            share = c["overlapped_seconds"] / c["seconds"] if c["seconds"] else 0.0
            lines.append(f"communication {c['seconds'] * 1e3:.3f} ms per call, of which "
                         f"{c['overlapped_seconds'] * 1e3:.3f} ms ({share:.0%}) overlapped "
                         f"other steps; {c['exposed_seconds'] * 1e3:.3f} ms inside MPI")
        return "\n".join(lines)


def profile(exe, call, runs=20):
    """Profile `call()` (which runs `exe` once): a first call, then `runs` uninstrumented and
    `runs` instrumented calls in turn. Returns a Profile."""
    if not isinstance(exe, CpuExecutable):
        raise GraphcError(f"profiling times native kernels: it needs device 'cpu', not "
                          f"{getattr(exe, 'device', 'reference')!r}")
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise GraphcError(f"runs must be a positive integer, got {runs!r}")
    _settle(exe)
    call()  # the plan for these feeds, and everything warm
    timer = Timer(exe, exe.last_plan)
    plain = []
    for _ in range(runs):  # interleaved: the load of a shared machine hits both alike
        start = time.perf_counter()
        call()
        plain.append(time.perf_counter() - start)
        with timer:
            start = time.perf_counter()
            call()
            timer.finish(time.perf_counter() - start)
    return timer.profile(statistics.median(plain), runs)


def _settle(exe):
    """`exe` and its compiled bodies on the code that stays (CpuExecutable.settle)."""
    exe.settle()
    for body in exe.bodies.values():
        _settle(body)


def _comm_stats():
    from graphc import distributed
    st = distributed.stats()
    return st["communication_seconds"], st["overlapped_seconds"], st["seconds"]


class Timer:
    """While entered: the plan's native steps run kernel by kernel, timed, and host steps are
    timed, the compiled bodies' steps too; `finish(seconds)` closes one run."""

    def __init__(self, exe, plan):
        self.exe, self.plan = exe, plan
        self.rows = []  # (name, nodes, within)
        self.programs = []  # kept: their entries live as long as they do
        self.entries = {}  # native step -> [(row, entry)]
        self.host_rows = {}  # id(group) -> row
        self.collective_rows = {}  # CollectiveStep -> row
        self.bodies = []  # the executables of compiled bodies, nested ones included
        self._add(exe, None)
        self.python = self._row("python", ())
        self.top = [i for i, (_, _, within) in enumerate(self.rows) if within is None]
        self.times = [[] for _ in self.rows]
        self.current = [0.0] * len(self.rows)
        self.events = []  # (row, start, end) of the run under way
        self.collective = bool(self.collective_rows)
        self.comm = []  # per run: (communication, overlapped, inside MPI) seconds

    def _add(self, exe, within):
        """Rows and per-kernel entries for `exe`'s steps, its bodies' after their host row."""
        native = [s for s in exe.steps if isinstance(s, NativeStep)]
        program = LoadedProgram(CPU.generate([[k] for s in native for k in s.kernels])) \
            if native else None
        self.programs.append(program)
        entry = 0
        for step in exe.steps:
            if isinstance(step, CollectiveStep):
                self.collective_rows[step] = self._row(
                    f"{step.group.root.op} {step.phase}", tuple(n.name for n in step.group.nodes),
                    within)
            elif isinstance(step, NativeStep):
                self.entries[step] = [(self._row(k.name, k.nodes, within),
                                       program.entry(entry + i))
                                      for i, k in enumerate(step.kernels)]
                entry += len(step.kernels)
            else:
                group = step.group
                row = self.host_rows[id(group)] = self._row(
                    f"host {group.root.op}", tuple(n.name for n in group.nodes), within)
                for body in step.bodies or ():
                    if exe.bodies[body] not in self.bodies:  # a body shared: rows once
                        self.bodies.append(exe.bodies[body])
                        self._add(exe.bodies[body], row)

    def _row(self, name, nodes, within=None):
        self.rows.append((name, tuple(nodes), within))
        return len(self.rows) - 1

    def __enter__(self):
        plan, ctx, pool = self.plan, self.plan.ctx_address, self.plan.pool
        self.saved_calls, self.saved_direct = plan.calls, plan.direct
        plan.direct = None  # run_again's shortest way skips plan.calls: it would time nothing
        plan.calls = [(step, None if call is None else
                       self._timed(self.collective_rows[step], call)
                       if step in self.collective_rows else
                       self._native(self.entries[step], ctx, pool))
                      for step, call in plan.calls]
        self.exe._host = functools.partial(self._host, self.exe)
        self.drivers = [body.driver for body in self.bodies]
        for body in self.bodies:  # stepped, each step through its timed steps
            body.driver = None
            body._steps = functools.partial(self._body_steps, body)
            body._host = functools.partial(self._host, body)
        self.current[:] = [0.0] * len(self.rows)
        self.events = []
        self.began = time.perf_counter()
        self.comm_before = _comm_stats() if self.collective else None
        return self

    def __exit__(self, *exc):
        self.plan.calls, self.plan.direct = self.saved_calls, self.saved_direct
        del self.exe._host  # the class's method again
        for body, driver in zip(self.bodies, self.drivers):
            body.driver = driver
            del body._steps, body._host

    def _native(self, entries, ctx, pool):
        return functools.partial(self._run_entries, entries, ctx, pool)

    def _run_entries(self, entries, ctx, pool):
        current, clock = self.current, time.perf_counter
        for row, entry in entries:
            start = clock()
            failed = entry(ctx, pool)
            end = clock()
            current[row] += end - start
            self.events.append((row, start, end))
            if failed:
                return failed
        return 0

    def _body_steps(self, exe, plan, read_variable, rng_for, updates):
        """A compiled body's CpuExecutable._steps, its kernels run one by one, timed."""
        for step, call in plan.calls:
            if call is None:
                exe._host(step.group, plan, read_variable, rng_for, updates)
            elif (self._run_entries(self.entries[step], plan.ctx_address, plan.pool)
                  if step in self.entries else call()):
                exe._diagnose(step, plan)

    def _timed(self, row, inner):
        current, clock = self.current, time.perf_counter

        def call():
            start = clock()
            failed = inner()
            end = clock()
            current[row] += end - start
            self.events.append((row, start, end))
            return failed
        return call

    def _host(self, exe, group, *args, **kwargs):
        start = time.perf_counter()
        try:
            return type(exe)._host(exe, group, *args, **kwargs)
        finally:
            end = time.perf_counter()
            row = self.host_rows[id(group)]
            self.current[row] += end - start
            self.events.append((row, start, end))

    def finish(self, seconds):
        current = self.current
        current[self.python] = 0.0
        current[self.python] = seconds - sum(current[i] for i in self.top)
        for times, t in zip(self.times, current):
            times.append(t)
        if self.collective:
            after = _comm_stats()
            self.comm.append([a - b for a, b in zip(after, self.comm_before)])

    def profile(self, step_seconds, runs):
        medians = [statistics.median(t) for t in self.times]
        total = sum(medians[i] for i in self.top) or 1.0
        rows = [Row(name, nodes, m, m / total, within)
                for (name, nodes, within), m in zip(self.rows, medians)]
        communication = None
        if self.comm:
            communication = {key: statistics.median(c[i] for c in self.comm) for i, key in
                             enumerate(("seconds", "overlapped_seconds", "exposed_seconds"))}
        timeline = [(self.rows[row][0], start - self.began, end - self.began)
                    for row, start, end in self.events]
        return Profile(rows, step_seconds, runs, communication, timeline)
