"""Stateful ops: variables, assignments, group, and random draws.

A variable's value lives in a session, not in the graph. Within one run every read of a
variable sees its value from the start of the run, and assignments take effect together when
the run has succeeded (Theano's update semantics), so a failed run changes nothing.
"""
import numpy as np

from ..errors import DTypeError, GraphcError, ShapeError
from ..ir import dtypes
from ..ir.graph import FrozenArray, Tensor, get_default_graph, new_uid
from ..ir.types import TensorType, broadcast_shapes, format_shape
from .registry import NOT_DIFFERENTIABLE, apply, register
from .sources import _runtime_only, as_tensor


class Variable(Tensor):
    """A tensor whose value persists in a session between runs (the output of a variable op).

    gc.Variable(initial_value, name=None, dtype=None, trainable=True): the initial value is an
    array, list or scalar, or a Tensor (such as a random draw) evaluated on first use.
    """

    __slots__ = ()

    def __new__(cls, initial_value, name=None, dtype=None, trainable=True):
        return make_variable(initial_value, name=name, dtype=dtype, trainable=trainable)

    def __init__(self, *args, **kwargs):
        pass  # built by make_variable

    @property
    def initial_value(self):
        """The initial value: an ndarray, or a Tensor evaluated when the session first needs it."""
        init = self.node.attrs["init"]
        if init is None:
            return self.graph.initializers[self.node.attrs["uid"]]
        return init.array

    @property
    def trainable(self):
        return self.node.attrs["trainable"]

    def assign(self, value):
        return assign(self, value)

    def assign_add(self, value):
        return assign_add(self, value)

    def assign_sub(self, value):
        return assign_sub(self, value)

    def __repr__(self):
        return f"<Variable '{self.name}' {self.type}>"


register("variable",
         infer=lambda *, uid, dtype, shape, init, trainable: TensorType(dtype, shape),
         ref=_runtime_only, grad=NOT_DIFFERENTIABLE, kind="source", stateful=True,
         tensor_class=Variable, doc="read a session-held variable")


def make_variable(initial_value, name=None, dtype=None, trainable=True):
    """gc.Variable(initial_value): an ndarray/list/scalar, or a Tensor (e.g. a random draw)."""
    graph = initial_value.graph if isinstance(initial_value, Tensor) else get_default_graph()
    if isinstance(initial_value, Tensor):
        if dtype is not None and dtypes.as_dtype(dtype) is not initial_value.dtype:
            from .elementwise import cast
            initial_value = cast(initial_value, dtype)
        if not initial_value.type.is_static:
            raise ShapeError(f"a variable's initial value needs a static shape, got "
                             f"{format_shape(initial_value.shape)}", initial_value.node)
        uid = new_uid()
        graph.initializers[uid] = initial_value
        var = apply("variable", [], name=name or "Variable", uid=uid,
                    dtype=initial_value.dtype, shape=initial_value.shape, init=None,
                    trainable=bool(trainable))
    else:
        dt = dtypes.default_dtype(initial_value) if dtype is None else dtypes.as_dtype(dtype)
        dtypes.check_fits(initial_value, dt)
        arr = dtypes.to_storage(np.array(initial_value), dt)
        var = apply("variable", [], name=name or "Variable", uid=new_uid(), dtype=dt,
                    shape=arr.shape, init=FrozenArray(arr), trainable=bool(trainable))
    graph.variables.append(var)
    return var


def _assign_infer(var, value, *, uid):
    if value.dtype is not var.dtype:
        raise DTypeError(f"assigning {value.dtype.name} to a {var.dtype.name} variable")
    if broadcast_shapes(var.shape, value.shape, what="assign") != var.shape:
        raise ShapeError(f"assigning a value of shape {format_shape(value.shape)} to a variable "
                         f"of shape {format_shape(var.shape)}")
    return TensorType(var.dtype, var.shape)


register("assign", infer=_assign_infer,
         ref=lambda var, value, *, uid: np.array(np.broadcast_to(value, var.shape)),
         grad=NOT_DIFFERENTIABLE,
         kind="stateful", stateful=True,
         doc="set a variable at the end of the run; yields the new value")


def _check_variable(var, what):
    if not isinstance(var, Variable):
        raise GraphcError(f"{what} needs a gc.Variable, got {var!r}")


def assign(var, value, name=None):
    """var := value when the run finishes; returns the new value."""
    _check_variable(var, "assign")
    from .elementwise import cast
    value = as_tensor(value, dtype=var.dtype, graph=var.graph)
    if value.dtype is not var.dtype and np.can_cast(value.dtype.np, var.dtype.np, "same_kind"):
        value = cast(value, var.dtype)
    return apply("assign", [var, value], name=name, uid=new_uid())


def assign_add(var, value, name=None):
    _check_variable(var, "assign_add")
    return assign(var, var + value, name=name)


def assign_sub(var, value, name=None):
    _check_variable(var, "assign_sub")
    return assign(var, var - value, name=name)


register("group", infer=lambda *inputs, uid: TensorType(dtypes.bool_, ()),
         ref=lambda *arrays, uid: np.asarray(True), grad=NOT_DIFFERENTIABLE, kind="stateful",
         stateful=True, fetch_none=True,
         doc="run all inputs; fetching it yields None")


def group(*tensors, name=None):
    """One op that runs every given op (assignments, other groups); fetching it gives None."""
    flat = []
    for t in tensors:
        flat.extend(t if isinstance(t, (list, tuple)) else [t])
    if not flat:
        raise GraphcError("group() needs at least one op")
    return apply("group", flat, name=name, uid=new_uid())


def global_variables_initializer():
    """TF1 compatibility: variables initialize on first use, so this only forces that."""
    graph = get_default_graph()
    return apply("group", list(graph.variables) or [as_tensor(True)], name="init",
                 uid=new_uid())


# ---- random -------------------------------------------------------------------------------
def _random_infer(*like, uid, shape, dtype, seed, params, window=False, dims=None):
    if not dtype.is_float:
        raise DTypeError(f"random draws need a floating dtype, got {dtype.name}")
    if dims is not None:  # inputs (counter, the tensors giving dims): see scan_draws_shape
        if not like or like[0].rank or not like[0].dtype.is_integer:
            raise DTypeError("a scan's draw takes an integer scalar counter first")
        return TensorType(dtype, scan_draws_shape(dims, [t.shape for t in like[1:]]))
    if window:  # inputs (like, rows, offset): see global_batch
        if len(like) != 3 or not like[0].rank:
            raise ShapeError("a global-batch draw takes (like, rows, offset), like of rank >= 1")
        for t, what in zip(like[1:], ("rows", "offset")):
            if t.rank or not t.dtype.is_integer:
                raise DTypeError(f"a global-batch draw's {what} must be an integer scalar, got "
                                 f"{format_shape(t.shape)} {t.dtype.name}")
    return TensorType(dtype, like[0].shape if like else shape)


for _kind in ("random_normal", "random_uniform"):
    register(_kind, infer=_random_infer, ref=_runtime_only, grad=NOT_DIFFERENTIABLE,
             kind="stateful", stateful=True, random=True,
             doc="a fresh draw each run from the session's generator for this node (with "
                 "window=True, inputs (like, rows, offset): rows [offset, offset + len(like)) of "
                 "a draw shaped (rows,) + like.shape[1:], see global_batch; with dims, inputs "
                 "(counter, tensors giving dims): the draws of a scan's fn, see scan_stream)")


def scan_draws_shape(dims, shapes):
    """The shape of a scan's draws: `dims` holds, per axis, an int or (i, axis): that axis of
    shapes[i] (the shapes of the tensors that give the draw's dims at run time)."""
    return tuple(d if isinstance(d, int) else shapes[d[0]][d[1]] for d in dims)


def scan_stream(rng, counter):
    """The generator of a scan's draws for the value `counter` of its draw counter: the
    node's stream jumped counter + 1 times (2**127 draws each), which leaves the node's own
    generator as it was. The same counter gives the same numbers, so a scan's draws are new
    only when the update scan returns advances the counter (Theano's semantics), and the
    gradient's loop sees the numbers the forward loop drew."""
    return np.random.Generator(rng.bit_generator.jumped(int(counter) + 1))


def draw(rng, kind, shape, params):
    """The numbers a random node yields, from its numpy Generator (numpy fills them in C
    order, so rows [a, b) of a draw of shape (n, ...) do not depend on n >= b)."""
    if kind == "random_normal":
        mean, stddev = params
        return rng.normal(mean, stddev, size=shape)
    low, high = params
    return rng.uniform(low, high, size=shape)


def _random(kind, shape, params, dtype, seed, name, like=None):
    inputs = [like] if like is not None else []
    window = _window_for(like)
    if window is not None:
        inputs += list(window)
    if like is None:
        shape = tuple(shape)
        if any(not isinstance(d, (int, np.integer)) for d in shape):
            raise ShapeError(f"random shape must be ints, got {format_shape(shape)}; use a "
                             "tensor's shape through dropout or random_like")
    return apply(kind, inputs, name=name, uid=new_uid(), shape=tuple(shape or ()),
                 dtype=dtypes.as_dtype(dtype), seed=seed, params=tuple(map(float, params)),
                 **({"window": True} if window is not None else {}))


def random_normal(shape, mean=0.0, stddev=1.0, dtype="float32", seed=None, name=None):
    """Normal draws of a static shape; new numbers each run, reproducible with `seed`."""
    return _random("random_normal", shape, (mean, stddev), dtype, seed, name)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype="float32", seed=None, name=None):
    """Uniform draws in [minval, maxval); new numbers each run, reproducible with `seed`."""
    return _random("random_uniform", shape, (minval, maxval), dtype, seed, name)


def random_uniform_like(x, minval=0.0, maxval=1.0, seed=None, name=None):
    """Uniform draws with x's (possibly symbolic) shape and dtype."""
    return _random("random_uniform", None, (minval, maxval), x.dtype, seed, name, like=x)




# ---- draws of the global batch (data parallel) --------------------------------------------
_windows = []  # the global_batch contexts open now, innermost last


class global_batch:
    """Inside `with gc.random.global_batch(rows, offset, batch):` every random draw shaped like
    a tensor whose first axis is the batch axis of `batch` (a tensor or a list of them, e.g.
    the input placeholders) draws the numbers of the GLOBAL batch and keeps this process's rows:
    it draws a (rows,) + like.shape[1:] array, as one process holding all `rows` examples would,
    and yields its rows [offset, offset + like.shape[0]). `rows` and `offset` are integer scalar
    tensors (placeholders fed each step). With the same generator state on every rank, the
    ranks' shards of a batch thus get, together, exactly the single-process draw: dropout
    masks, noise. Draws of other shapes are unchanged (the same numbers on every rank where
    their generators agree). `rows` must be at least offset + like.shape[0] (checked each run).
    """

    def __init__(self, rows, offset, batch):
        self.rows = as_tensor(rows)
        self.offset = as_tensor(offset)
        batch = batch if isinstance(batch, (list, tuple)) else [batch]
        self.dims = [t.shape[0] for t in batch if t.ndim]

    def __enter__(self):
        _windows.append(self)
        return self

    def __exit__(self, *exc):
        _windows.remove(self)


def _window_for(like):
    """(rows, offset) of the innermost global_batch context whose batch axis leads `like`."""
    if like is None or not like.ndim:
        return None
    for w in reversed(_windows):
        if any(like.shape[0] is d for d in w.dims) and w.rows.graph is like.graph:
            return w.rows, w.offset
    return None
