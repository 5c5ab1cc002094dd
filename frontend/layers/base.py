"""Layer: weights, building on first call, the training flag, and the record of calls that a
functional model replays.

Calling a layer on graphc tensors builds its ops at once (weights are made on the first call,
in the inputs' graph). `training` flows from an outer call to inner ones, as in Keras: a model
called with training=True runs its dropout and batch-norm layers in training mode. Layers that
keep state (batch norm's moving statistics) report (variable, new value) pairs with
`add_update`; the outermost call collects them in `layer.updates`, and the model's train step
applies them.
"""
import contextlib
import itertools
import inspect
import re
import threading
from dataclasses import dataclass, field

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir.graph import Tensor

from .. import activations, backend, constraints, data_format, initializers, regularizers

_names = {}
_local = threading.local()


def unique_name(base):
    """Keras-style layer names: dense, dense_1, dense_2, ..."""
    count = _names.get(base, 0)
    _names[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class _Context:
    training: bool
    updates: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # add_loss's penalties of this call


def _context():
    return getattr(_local, "context", None)


@contextlib.contextmanager
def _calling(training, updates, losses):
    saved = _context()
    _local.context = _Context(training, updates, losses)
    try:
        yield _local.context
    finally:
        _local.context = saved


@dataclass
class CallRecord:
    """One layer call in a functional graph: the layer, its inputs as given (a tensor or a
    list of them), keyword arguments, its outputs, and its place in call order."""
    layer: "Layer"
    inputs: object
    kwargs: dict
    outputs: object
    seq: int = field(default_factory=lambda: next(_call_count))


_call_count = itertools.count()


def _history(graph):
    """{output tensor: the CallRecord that made it} of one graph. It is kept on the graph so
    that it lives exactly as long as the tensors it names."""
    return graph.__dict__.setdefault("frontend_layer_calls", {})


def record_of(tensor):
    return _history(tensor.graph).get(tensor)


def _mask_table(graph):
    """{tensor: its Keras mask} of one graph: the boolean (batch, time) tensor that
    Embedding(mask_zero=True) or Masking attached to a layer output, and that layers which
    support masking pass on (Keras keeps it on the tensor as `_keras_mask`)."""
    return graph.__dict__.setdefault("frontend_masks", {})


def mask_of(tensor):
    """The mask attached to a layer output, or None."""
    return _mask_table(tensor.graph).get(tensor) if isinstance(tensor, Tensor) else None


def set_mask(tensor, mask):
    if mask is None:
        _mask_table(tensor.graph).pop(tensor, None)
    else:
        _mask_table(tensor.graph)[tensor] = mask


def flatten(structure):
    """The tensors in a tensor, or a list/tuple of them (one level, as Keras layers take)."""
    if isinstance(structure, (list, tuple)):
        return list(structure)
    return [structure]


def static_shape(t):
    """A tensor's shape with symbolic dims as None."""
    return tuple(d if isinstance(d, int) else None for d in t.shape)


class InputSpec:
    """What a layer accepts (Keras's input_spec): dtype, ndim (or min_ndim / max_ndim), a
    shape (None for any size), and sizes of given axes ({axis: size}). A layer whose
    `input_spec` is set checks its inputs against it when called."""

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype, self.name, self.optional = dtype, name, optional
        self.shape = None if shape is None else tuple(shape)
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = dict(axes or {})
        self.allow_last_axis_squeeze = allow_last_axis_squeeze

    def check(self, layer, t):
        """A ShapeError (or DTypeError) naming the layer where tensor t does not fit."""
        from graphc.errors import DTypeError, ShapeError
        shape = static_shape(t)
        problems = []
        if self.ndim is not None and len(shape) != self.ndim:
            problems.append(f"rank {self.ndim}")
        if self.min_ndim is not None and len(shape) < self.min_ndim:
            problems.append(f"rank >= {self.min_ndim}")
        if self.max_ndim is not None and len(shape) > self.max_ndim:
            problems.append(f"rank <= {self.max_ndim}")
        if self.shape is not None and len(shape) == len(self.shape):
            if any(want is not None and have is not None and want != have
                   for want, have in zip(self.shape, shape)):
                problems.append(f"shape {self.shape}")
        for axis, size in self.axes.items():
            if -len(shape) <= axis < len(shape) and shape[axis] not in (None, size):
                problems.append(f"size {size} on axis {axis}")
        if problems:
            raise ShapeError(f"layer '{layer.name}' expects inputs of {', '.join(problems)}; "
                             f"got shape {shape}", t.node)
        if self.dtype is not None and t.dtype.name != str(self.dtype):
            raise DTypeError(f"layer '{layer.name}' expects {self.dtype} inputs, got "
                             f"{t.dtype.name}", t.node)

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes}


class Layer:
    """Base of all layers. Subclasses set weights up in `build(input_shape)` with
    `add_weight`, and compute in `call(inputs[, training][, mask])`.

    Masks follow Keras: a layer whose `call` takes `mask` receives the mask attached to its
    input (None if there is none), and a layer with `supports_masking` attaches
    `compute_mask(inputs, mask)` (by default the input's mask) to its output; other layers
    drop it."""

    supports_masking = False
    transposes_channels_first = False  # see Spatial

    def __init__(self, name=None, trainable=True, dtype="float32", input_shape=None):
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = trainable
        self.dtype = dtype
        self.built = False
        self.updates = []
        self.call_losses = []  # the add_loss penalties of the last outermost call
        self._own_weights = []
        self._regularized = []  # (weight, regularizer)
        self._constrained = {}  # weight -> constraint, applied after each optimizer update
        self._graph = None
        self.input_shape_hint = None if input_shape is None else tuple(input_shape)
        self.input_shape = self.output_shape = None  # of the last call, None for unknown dims
        self.input_spec = None  # an InputSpec (or a list of them, one per input) to check

    # -- weights ----------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="glorot_uniform", trainable=True,
                   regularizer=None, dtype=None, constraint=None):
        value = initializers.get(initializer)(shape, dtype or self.dtype)
        with self._graph.root_scope():
            var = gc.Variable(value, name=f"{self.name}/{name}", trainable=trainable)
        self._own_weights.append((var, trainable))
        reg = regularizers.get(regularizer)
        if reg is not None:
            self._regularized.append((var, reg))
        constraint = constraints.get(constraint)
        if constraint is not None:
            self._constrained[var] = constraint
        return var

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    @property
    def sublayers(self):
        """Layers held in attributes (directly or in lists), in assignment order."""
        found = []
        for value in vars(self).values():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Layer) and item is not self and item not in found:
                    found.append(item)
        return found

    def _all_weights(self):
        """(variable, trainable) of this layer and its sublayers, each variable once."""
        out, seen = [], set()
        for var, trainable in self._own_weights:
            out.append((var, trainable and self.trainable))
            seen.add(var)
        for layer in self.sublayers:
            for var, trainable in layer._all_weights():
                if var not in seen:
                    seen.add(var)
                    out.append((var, trainable and self.trainable))
        return out

    @property
    def weights(self):
        return [v for v, _ in self._all_weights()]

    @property
    def trainable_weights(self):
        return [v for v, t in self._all_weights() if t]

    @property
    def non_trainable_weights(self):
        return [v for v, t in self._all_weights() if not t]

    @property
    def weight_constraints(self):
        """{weight: constraint} of this layer's and its sublayers' weights."""
        found = dict(self._constrained)
        for layer in self.sublayers:
            found.update(layer.weight_constraints)
        return found

    @property
    def losses(self):
        """The regularization penalties of this layer's and its sublayers' weights."""
        penalties = [reg(var) for var, reg in self._regularized]
        for layer in self.sublayers:
            penalties.extend(layer.losses)
        return penalties

    def count_params(self):
        total = 0
        for var in self.weights:
            n = 1
            for d in var.shape:
                n *= d
            total += n
        return total

    def _session(self):
        if self._graph is None:
            raise GraphcError(f"layer '{self.name}' has no weights yet: call it on an input "
                              "(or build its model) first")
        return backend.session(self._graph)

    def get_weights(self):
        """The weights' values as numpy arrays, in `weights` order."""
        sess = self._session() if self.weights else None
        return [sess.get_value(v) for v in self.weights]

    def set_weights(self, arrays):
        weights = self.weights
        if len(arrays) != len(weights):
            raise GraphcError(f"layer '{self.name}' has {len(weights)} weights, got "
                              f"{len(arrays)} arrays")
        for var, value in zip(weights, arrays):
            if tuple(var.shape) != tuple(value.shape):
                raise GraphcError(f"weight '{var.name}' has shape {tuple(var.shape)}, got an "
                                  f"array of shape {tuple(value.shape)}")
        sess = self._session() if weights else None
        for var, value in zip(weights, arrays):
            sess.set_value(var, value)

    # -- calling ----------------------------------------------------------------------------
    def build(self, input_shape):
        """Make the weights for inputs of `input_shape` (None for unknown dims)."""

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs)")

    def add_update(self, variable, value):
        """Ask the train step to assign `value` to `variable` (batch norm's statistics)."""
        ctx = _context()
        if ctx is not None:
            ctx.updates.append((variable, value))

    def add_loss(self, value):
        """Add a penalty tensor to the training loss of the call being built (activity
        regularization)."""
        ctx = _context()
        if ctx is not None:
            ctx.losses.append(value)

    def __call__(self, inputs, training=None, **kwargs):
        tensors = flatten(inputs)
        for t in tensors:
            if not isinstance(t, Tensor):
                raise GraphcError(f"layer '{self.name}' takes graphc tensors (gk.Input(...) or "
                                  f"a placeholder), got {type(t).__name__}; use "
                                  "model.predict for numpy arrays")
        graph = tensors[0].graph
        if self.input_spec is not None:
            specs = self.input_spec if isinstance(self.input_spec, (list, tuple)) else \
                [self.input_spec] * len(tensors)
            for spec, t in zip(specs, tensors):
                spec.check(self, t)
        outer = _context()
        if training is None:
            training = outer.training if outer is not None else False
        updates = outer.updates if outer is not None else []
        losses = outer.losses if outer is not None else []
        with graph.as_default(), _calling(bool(training), updates, losses):
            if not self.built:
                self._graph = graph
                shapes = [static_shape(t) for t in tensors]
                if self._channels_first():
                    shapes = [data_format.last_shape(s) for s in shapes]
                with graph.name_scope(self.name):
                    self.build(shapes if isinstance(inputs, (list, tuple)) else shapes[0])
                self.built = True
            elif self._graph is not graph and self.weights:
                raise GraphcError(f"layer '{self.name}' was built in another graph; layers "
                                  "and their inputs must share one graph")
            if _accepts_training(type(self)):
                kwargs["training"] = bool(training)
            masks = [mask_of(t) for t in tensors]
            previous_mask = masks if isinstance(inputs, (list, tuple)) else masks[0]
            if all(m is None for m in masks):
                previous_mask = None
            implicit_mask = "mask" not in kwargs and _accepts_mask(type(self))
            if implicit_mask:
                kwargs["mask"] = previous_mask
            with graph.name_scope(self.name):
                if self._channels_first():
                    outputs = data_format.to_first(self.call(data_format.to_last(inputs),
                                                             **kwargs))
                else:
                    outputs = self.call(inputs, **kwargs)
                output_mask = (self.compute_mask(inputs, previous_mask)
                               if self.supports_masking else None)
        if outer is None:
            self.updates, self.call_losses = updates, losses
        kwargs.pop("training", None)
        if implicit_mask:
            kwargs.pop("mask")
        history = _history(graph)
        outputs = _distinct(outputs, tensors, history)
        out_masks = (list(output_mask) if isinstance(output_mask, (list, tuple))
                     else [output_mask] * len(flatten(outputs)))
        for t, m in zip(flatten(outputs), out_masks):
            set_mask(t, m)
        record = CallRecord(self, inputs, kwargs, outputs)
        for t in flatten(outputs):
            history[t] = record
        self.input_shape, self.output_shape = _static_shapes(inputs), _static_shapes(outputs)
        return outputs

    def _channels_first(self):
        return self.transposes_channels_first and self.data_format == "channels_first"

    def compute_mask(self, inputs, mask):
        """The mask of the output(s), given the input's; used where `supports_masking`."""
        return mask

    # -- configuration ------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments that rebuild this layer (JSON values)."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"


class Spatial(Layer):
    """A layer computing channels-last that takes Keras's data_format (None reads
    gk.backend.image_data_format()); channels_first runs through transposes."""
    transposes_channels_first = True

    def _data_format(self, value):
        self.data_format = data_format.resolve(value, f"{type(self).__name__} '{self.name}'")

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def _static_shapes(structure):
    """static_shape of a tensor, or of each in a list or tuple."""
    if isinstance(structure, (list, tuple)):
        return [static_shape(t) for t in structure]
    return static_shape(structure)


def _distinct(outputs, inputs, history):
    """Outputs as tensor objects no other call produced. A layer may return its input
    (Dropout at inference) or a node that graph deduplication shares with another call; an
    alias (a new Tensor object for the same node output) keeps each call's outputs apart, so a
    functional model replays every layer."""
    def fresh(t):
        if any(t is i for i in inputs) or t in history:  # `in` a list would call ==
            return Tensor(t.node, t.index, t.type)
        return t
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(fresh(t) for t in outputs)
    return fresh(outputs)


_training_arg = {}
_mask_arg = {}


def _accepts_training(cls):
    if cls not in _training_arg:
        _training_arg[cls] = "training" in inspect.signature(cls.call).parameters
    return _training_arg[cls]


def _accepts_mask(cls):
    if cls not in _mask_arg:
        _mask_arg[cls] = "mask" in inspect.signature(cls.call).parameters
    return _mask_arg[cls]


def set_weight_options(layer, activation, use_bias, kernel_initializer, bias_initializer,
                       kernel_regularizer, bias_regularizer, kernel_constraint=None,
                       bias_constraint=None):
    """The options every layer with a kernel and a bias (Dense, Conv2D) takes, by name."""
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)
    layer.activation = activations.get(activation)
    layer.use_bias = use_bias
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)


def weight_options_config(layer):
    """Those options as they are saved in a model file."""
    return {"activation": activations.name_of(layer.activation), "use_bias": layer.use_bias,
            "kernel_initializer": initializers.serialize(layer.kernel_initializer),
            "bias_initializer": initializers.serialize(layer.bias_initializer),
            "kernel_regularizer": regularizers.serialize(layer.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(layer.bias_regularizer),
            "kernel_constraint": constraints.serialize(layer.kernel_constraint),
            "bias_constraint": constraints.serialize(layer.bias_constraint)}
