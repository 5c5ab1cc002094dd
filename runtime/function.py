"""gc.function: Theano's compiled callable over the session machinery."""
from graphc.errors import FeedError, GraphcError
from graphc.ir.graph import Tensor
from graphc.ops.state import Variable, assign

from .fetches import flatten_fetches
from .session import Session, get_default_session


class Function:
    """f(*inputs) -> outputs, applying `updates` after each call (Theano semantics)."""

    def __init__(self, inputs, outputs, updates=None, device=None, session=None, name=None):
        self.inputs = list(inputs)
        for t in self.inputs:
            if not isinstance(t, Tensor):
                raise GraphcError(f"gc.function inputs must be tensors, got {t!r}")
        flat, _ = flatten_fetches(outputs)
        graph = (flat or self.inputs or [None])[0].graph if (flat or self.inputs) else None
        if session is None:
            session = get_default_session(graph)
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
        self._fetches = [outputs, self.update_ops]

    def __call__(self, *args, **kwargs):
        if kwargs:
            by_name = {t.name: t for t in self.inputs}
            extra = set(kwargs) - set(by_name)
            if extra:
                raise FeedError(f"unknown input name(s) {sorted(extra)}; inputs are "
                                f"{list(by_name)}")
        if len(args) + len(kwargs) != len(self.inputs):
            raise FeedError(f"function takes {len(self.inputs)} inputs "
                            f"({', '.join(t.name for t in self.inputs)}), got "
                            f"{len(args) + len(kwargs)}")
        feed = dict(zip(self.inputs, args))
        for name, value in kwargs.items():
            feed[next(t for t in self.inputs if t.name == name)] = value
        out, _ = self.session.run(self._fetches, feed)
        return out

    @property
    def graph(self):
        return self.session.graph

    def dump(self, stage="input", format="text"):
        """The function's graph at `stage` as text, dot, json or html."""
        from graphc.dump import dump_graph
        if stage != "input":
            raise GraphcError(f"stage {stage!r} is not available yet: the optimizer and kernel "
                              "stages come with the pass pipeline; use stage='input'")
        flat, _ = flatten_fetches(self._fetches)
        return dump_graph(self.graph, flat, format=format)

    def source(self, kind="llvm"):
        raise GraphcError(f"no generated {kind!r} code: this function runs on device "
                          f"{self.session.device!r}, which interprets the graph")


def function(inputs, outputs, updates=None, device=None, session=None, name=None):
    """Compile `outputs` as a function of `inputs` (Theano style)."""
    return Function(inputs, outputs, updates=updates, device=device, session=session, name=name)
