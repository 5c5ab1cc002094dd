"""gc.function: Theano's compiled callable over the session machinery."""
from graphc.errors import FeedError, GraphcError
from graphc.ir.graph import Tensor
from graphc.ops.state import Variable, assign
from graphc.passes import query

from .executable import Options
from .feeds import check_feed
from .fetches import flatten_fetches, rebuild_fetches
from .session import Session, get_default_session

STAGES = ("input", "optimized", "kernels")


class Function:
    """f(*inputs) -> outputs, applying `updates` after each call (Theano semantics).

    The graph is optimized and compiled once, when the function is made; `f.stats()` tells what
    that did and cost, `f.dump(stage)` shows the graph at each stage.
    """

    def __init__(self, inputs, outputs, updates=None, device=None, session=None, name=None,
                 optimize="O2", excluding=(), including=(), debug=False, check_numerics=None,
                 allow_tf32=None):
        self.inputs = list(inputs)
        self._arity = len(self.inputs)
        for t in self.inputs:
            if not isinstance(t, Tensor):
                raise GraphcError(f"gc.function inputs must be tensors, got {t!r}")
        flat, self._structure = flatten_fetches(outputs)
        tensors = flat + self.inputs
        if session is None:
            session = get_default_session(tensors[0].graph if tensors else None)
            if device is not None and device != session.device:
                session = Session(session.graph, device=device)
        self.session = session
        self.outputs = outputs
        self.name = name or "function"
        pairs = list(updates.items()) if isinstance(updates, dict) else list(updates or [])
        for var, _ in pairs:
            if not isinstance(var, Variable):
                raise GraphcError(f"updates must pair gc.Variables with new values, got {var!r}")
        self.update_ops = [assign(var, value) for var, value in pairs]
        query(optimize, excluding, including)
        if check_numerics is None:
            check_numerics = session.options.check_numerics
        if allow_tf32 is None:
            allow_tf32 = session.options.allow_tf32
        options = Options(optimize, excluding, including, debug, check_numerics, allow_tf32)
        self._exe = session.compile(flat, self.inputs, options, self.name,
                                    effects=self.update_ops)

    def __call__(self, *args, **kwargs):
        if not kwargs and len(args) == self._arity:  # the common case, kept short
            results = self.session.execute_again(self._exe, args)
            if results is None:
                arrays = [check_feed(t, v) for t, v in zip(self.inputs, args)]
                results = self.session.execute(self._exe, arrays)
            structure = self._structure
            return (results[structure] if type(structure) is int  # one tensor: no call
                    else rebuild_fetches(structure, results))
        by_name = {t.name: t for t in self.inputs}
        unknown = set(kwargs) - set(by_name)
        if unknown:
            raise FeedError(f"unknown input name(s) {sorted(unknown)}; inputs are "
                            f"{list(by_name)}")
        if len(args) + len(kwargs) != len(self.inputs):
            raise FeedError(f"function takes {len(self.inputs)} inputs "
                            f"({', '.join(t.name for t in self.inputs)}), got "
                            f"{len(args) + len(kwargs)}")
        values = dict(zip(self.inputs, args))
        values.update((by_name[k], v) for k, v in kwargs.items())
        arrays = [check_feed(t, values[t]) for t in self.inputs]
        results = self.session.execute(self._exe, arrays)
        return rebuild_fetches(self._structure, results)

    @property
    def graph(self):
        return self.session.graph

    def stats(self):
        """nodes_before, nodes_after, kernels, compile_seconds and pass_seconds (per pass)."""
        return self._exe.stats()

    def dump(self, stage="optimized", format="text"):
        """The function's graph at `stage` ("input", "optimized", "kernels") in `format`."""
        from graphc.dump import dump_graph, dump_kernels
        if stage not in STAGES:
            raise GraphcError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        comp = self._exe.compilation
        title = f"{self.name}: {stage}"
        if stage == "input":
            return dump_graph(self.graph, list(comp.input_outputs), format=format, title=title)
        if stage == "optimized":
            return dump_graph(comp.graph, list(comp.outputs), format=format,
                              partition=comp.partition, title=title)
        return dump_kernels(comp.partition, format=format, title=title,
                            bodies=_body_kernels(self._exe))

    def profile(self, *args, runs=20, show=True):
        """Call the function 2 * runs + 1 times on args (updates applied, as calls would),
        every other call with each kernel and host step timed: a runtime.profile.Profile
        (rows of name, nodes, median seconds, share), printed as a table unless show=False.
        Device "cpu" only."""
        from .profile import profile
        result = profile(self._exe, lambda: self(*args), runs)
        if show:
            print(result)
        return result

    def source(self, kind=None):
        """The generated code: "llvm" (LLVM IR as emitted, the default), "llvm-opt" (after
        LLVM's O3) or "asm" (host assembly) on device="cpu"; "cuda" (CUDA C, the default) or
        "ptx" on device="cuda"."""
        source = getattr(self._exe, "source", None)
        if source is None:
            raise GraphcError(f"no generated {kind or 'native'!r} code: this function runs on "
                              f"device {self.session.device!r}, which interprets the graph")
        return source() if kind is None else source(kind)


def function(inputs, outputs, updates=None, device=None, session=None, name=None, **options):
    """Compile `outputs` as a function of `inputs` (Theano style).

    Options: optimize="O0".."O3" (default "O2"), excluding=[...], including=[...] (pass names
    or tags), debug=True (type-check between passes), check_numerics=True, allow_tf32=True
    (float32 matrix products on device="cuda" may round their inputs to tf32 for the tensor
    cores; other devices accept it and compute in float32).
    """
    return Function(inputs, outputs, updates=updates, device=device, session=session, name=name,
                    **options)


def _body_kernels(exe):
    """The kernels (graphc.dump.kernels.BodyKernels) of the compiled bodies of `exe`'s loops
    and conds, and of theirs, deeper."""
    from graphc.dump.kernels import BodyKernels
    found = []
    for step in getattr(exe, "steps", ()):
        for body in getattr(step, "bodies", None) or {}:
            body_exe = exe.bodies.get(body)
            if body_exe is not None:
                found.append(BodyKernels(step.node, body, body_exe.compilation.partition,
                                         tuple(_body_kernels(body_exe))))
    return found
