"""Session: runs fetches of one graph on a device and keeps its variables' values."""
import contextlib
import gc as cycle_collector  # not graphc: Python's garbage collector
import threading
import weakref

import numpy as np

from graphc.errors import CheckpointError, FeedError, GraphcError, GraphMismatchError
from graphc.ir import dtypes
from graphc.ir.graph import Tensor, get_default_graph
from graphc.ops.state import Variable
from graphc.passes import query

from . import checkpoint
from .devices import check_device, executable_class
from .executable import DeviceValue, Options
from .feeds import check_feed
from .fetches import flatten_fetches, rebuild_fetches


class Session:
    """Runs parts of a graph: `sess.run(fetches, feed_dict)`.

    Variables are initialized from their initial values the first time a run needs them and
    keep their values in the session. Random draws use one numpy Generator per random node,
    seeded from the node's seed (or the session's), so a seeded graph reproduces in a new session.
    """

    def __init__(self, graph=None, device=None, check_numerics=False, seed=None, optimize="O2",
                 excluding=(), including=(), debug=False, allow_tf32=False):
        self.graph = graph if graph is not None else get_default_graph()
        self.device = check_device(device)
        self.options = Options(optimize, excluding, including, debug, check_numerics,
                               allow_tf32)
        query(optimize, excluding, including)  # an unknown level or pass fails here, not later
        self.seed = seed
        self._values = {}  # variable uid -> ndarray, or a DeviceValue a device holds
        self._rngs = {}  # random node uid -> numpy Generator
        self._executables = {}
        self._closed = False
        self._lock = threading.RLock()
        # bound once, not on every call of execute_again, which hands them to each run
        self._value_of, self._rng_for = self._values.get, self._rng

    # -- running ---------------------------------------------------------------------------
    def run(self, fetches, feed_dict=None):
        """Evaluate `fetches` (a tensor, or a list/tuple/dict nesting of them)."""
        self._check_open()
        flat, rebuild = flatten_fetches(fetches)
        for t in flat:
            self._check_graph(t)
        feed_items = list((feed_dict or {}).items())
        feed_tensors = []
        feed_arrays = []
        for key, value in feed_items:
            tensor = self._tensor_named(key) if isinstance(key, str) else key
            if not isinstance(tensor, Tensor):
                raise GraphcError(f"feed_dict keys must be tensors or tensor names, got {key!r}")
            self._check_graph(tensor)
            feed_tensors.append(tensor)
            feed_arrays.append(check_feed(tensor, value))
        exe = self._executable(flat, feed_tensors)
        return rebuild_fetches(rebuild, self.execute(exe, feed_arrays))

    def _tensor_named(self, name):
        try:
            return self.graph.tensor(name)
        except (KeyError, ValueError, IndexError):
            raise FeedError(f"feed_dict names {name!r}, but the graph has no tensor of that "
                            "name") from None

    def _executable(self, fetches, feeds):
        key = (tuple(id(t) for t in fetches), tuple(id(t) for t in feeds))
        exe = self._executables.get(key)
        if exe is None:
            exe = self.compile(fetches, feeds)
            self._executables[key] = exe
        return exe

    def compile(self, fetches, feeds, options=None, name="session", effects=()):
        """An Executable for these fetches and fed tensors, run later by `execute`; the
        tensors in `effects` (assignments) are computed too and fetched as None."""
        self._check_open()
        cls = executable_class(self.device, feeds)
        with _collector_paused():
            return cls(fetches, feeds, options or self.options, name, effects)

    def execute(self, exe, feed_arrays):
        """Run a compiled executable on checked feed arrays; groups fetch as None."""
        with self._lock:
            for uid in exe.variable_uids:
                if uid not in self._values:  # only a first use looks the variable up
                    self._ensure_initialized(self._variable(uid))
            read = self._values.__getitem__ if exe.reads_device_values else self._host_value
            outs, updates = exe.run(feed_arrays, read, self._rng)
            self._values.update(updates)  # only once the whole run has succeeded
        own = np.asarray if exe.outputs_owned else np.array
        return [None if none else own(o) for none, o in zip(exe.fetch_none, outs)]

    def execute_again(self, exe, args):
        """execute() through the executable's shortcut for unchecked arguments that fit its
        last run exactly (see run_again); None where they do not, and nothing has run."""
        lock = self._lock
        lock.acquire()  # not `with`: its two method lookups cost a tenth of a small call
        try:
            done = exe.run_again(args, self._value_of, self._rng_for)
            if done is None:
                return None
            outs, updates = done
            if updates:
                self._values.update(updates)
            return outs
        finally:
            lock.release()

    def _variable(self, uid):
        for var in self.graph.variables:
            if var.node.attrs["uid"] == uid:
                return var
        raise GraphcError(f"no variable with uid {uid} in this session's graph")

    def _rng(self, uid, seed):
        rng = self._rngs.get(uid)
        if rng is None:
            if seed is None and self.seed is not None:
                seed = (self.seed, uid)
            rng = np.random.default_rng(seed)
            self._rngs[uid] = rng
        return rng

    def _ensure_initialized(self, var):
        uid = var.node.attrs["uid"]
        if uid in self._values:
            return
        init = var.initial_value
        if isinstance(init, Tensor):
            value = self.execute(self._executable([init], []), [])[0]
        else:
            value = np.array(init)
        self._values[uid] = value

    # -- variables -------------------------------------------------------------------------
    def get_value(self, var):
        """The variable's current value (a copy)."""
        self._check_variable(var)
        self._ensure_initialized(var)
        return np.array(self._host_value(var.node.attrs["uid"]))

    def _host_value(self, uid):
        """A variable's value as a host array, copied from a device that holds it if need be."""
        value = self._values[uid]
        return value.host() if isinstance(value, DeviceValue) else value

    def set_value(self, var, value):
        """Overwrite the variable's value; shape must match, same-kind dtypes are cast."""
        self._check_variable(var)
        self._values[var.node.attrs["uid"]] = np.array(check_feed(var, value))

    def variables(self):
        return list(self.graph.variables)

    def _check_variable(self, var):
        if not isinstance(var, Variable):
            raise GraphcError(f"expected a gc.Variable, got {var!r}")
        self._check_graph(var)

    def _check_graph(self, t):
        if not isinstance(t, Tensor):
            raise GraphcError(f"cannot fetch {t!r}: expected a tensor")
        if t.graph is not self.graph:
            raise GraphMismatchError(f"tensor '{t.name}' belongs to another graph than this "
                                     "session's", t.node)

    # -- random streams --------------------------------------------------------------------
    def rng_state(self, node):
        """The state of random node `node`'s generator (a JSON-able dict), None before its
        first draw."""
        rng = self._rngs.get(_random_node(node).attrs["uid"])
        return None if rng is None else rng.bit_generator.state

    def set_rng_state(self, node, state):
        """Make random node `node` draw next what a generator in `state` draws."""
        node = _random_node(node)
        uid = node.attrs["uid"]
        rng = self._rngs.get(uid)
        if rng is not None and type(rng.bit_generator).__name__ == state.get("bit_generator"):
            rng.bit_generator.state = state   # in place: a run holding the generator sees it
        else:
            self._rngs[uid] = generator_from_state(state)

    def random_state(self):
        """{random node name: generator state} of every random node that has drawn."""
        return {n.name: self.rng_state(n) for n in self.graph.nodes
                if n.spec.random and n.attrs["uid"] in self._rngs}

    def set_random_state(self, states):
        """Set the generators of the graph's random nodes named in `states` (random_state's
        table); names of nodes this graph does not have are ignored."""
        nodes = {n.name: n for n in self.graph.nodes if n.spec.random}
        news = {name: generator_from_state(state) for name, state in states.items()
                if name in nodes}   # every state checked before any generator changes
        for name, rng in news.items():
            self.set_rng_state(nodes[name], rng.bit_generator.state)

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, path):
        """Write every variable's value and the random streams' states to `path`
        (atomically); returns the path. A failed write (full disk, no permission) is a
        CheckpointError and changes nothing."""
        values = {v.name: self.get_value(v) for v in self.graph.variables}
        return checkpoint.write(path, values, self.random_state())

    def restore(self, path):
        """Read variable values and random streams from `path`; on any mismatch nothing
        changes."""
        expected = {v.name: (v.dtype, v.shape) for v in self.graph.variables}
        values, streams = checkpoint.read_all(path, expected)
        try:
            nodes = {n.name for n in self.graph.nodes if n.spec.random}
            for name, state in streams.items():
                if name in nodes:
                    generator_from_state(state)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err.detail}") from None
        for v in self.graph.variables:
            self._values[v.node.attrs["uid"]] = dtypes.to_storage(values[v.name], v.dtype)
        self.set_random_state(streams)

    # -- lifetime --------------------------------------------------------------------------
    def close(self):
        self._closed = True
        self._executables.clear()

    def _check_open(self):
        if self._closed:
            raise GraphcError("this session is closed")

    def __enter__(self):
        self._default_ctx = self.as_default()
        self._default_ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._default_ctx.__exit__(*exc)
        self.close()

    @contextlib.contextmanager
    def as_default(self):
        _stack().append(self)
        try:
            yield self
        finally:
            _stack().pop()

    def __repr__(self):
        return f"<Session device={self.device!r} graph={self.graph!r}>"


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def generator_from_state(state):
    """A numpy Generator whose bit generator is in `state` (a bit_generator.state dict);
    CheckpointError for anything else."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise CheckpointError(f"not a random generator state (bit generator {name!r}; "
                              f"expected one of {', '.join(_BIT_GENERATORS)})")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise CheckpointError(f"a bad {name} generator state ({err})") from None
    return np.random.Generator(bit_generator)


def _random_node(node):
    node = node.node if isinstance(node, Tensor) else node
    if not getattr(node, "spec", None) or not node.spec.random:
        raise GraphcError(f"expected a random draw (gc.random.normal/uniform, dropout), got "
                          f"{node!r}")
    return node


_local = threading.local()
_process_defaults = weakref.WeakKeyDictionary()  # graph -> its process-wide default session


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def get_default_session(graph=None):
    """The innermost `with sess:` session, else the process's default session for `graph`."""
    graph = graph if graph is not None else get_default_graph()
    for sess in reversed(_stack()):
        if sess.graph is graph:
            return sess
    sess = _process_defaults.get(graph)
    if sess is None or sess._closed:
        sess = Session(graph)
        _process_defaults[graph] = sess
    return sess


@contextlib.contextmanager
def _collector_paused():
    """Python's cycle collector off while compiling: every pass copies the graph, and the
    collector would rescan the growing heap over and over (compiling a 10,000-op chain took
    1.8x as long). What compiling leaves behind is collected once it is back on."""
    was_on = cycle_collector.isenabled()
    cycle_collector.disable()
    try:
        yield
    finally:
        if was_on:
            cycle_collector.enable()
