"""Keras 3's recurrent cells: SimpleRNNCell, LSTMCell, GRUCell and StackedRNNCells. A cell is
one step of a recurrence, `call(inputs, states, training=False) -> (output, new_states)`;
`RNN(cell)` (recurrent.py) loops it over time, and SimpleRNN, LSTM and GRU are RNN over these
cells.

The step is split in two so that RNN can hoist the input half out of its loop: `project(x)`
is x @ kernel (+ the input bias), which RNN computes for all steps at once, and
`step(projected, states, recurrent_kernel, constants, h_drop)` is the rest. `call` is the two
halves for a single step. Weights, names and order are Keras's: kernel (in, gates * units),
recurrent_kernel (units, gates * units), bias.
"""
import inspect
import numbers

import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ir.graph import Tensor

from .. import activations, backend, constraints, initializers, regularizers
from .base import Layer

# the constructor arguments every cell keeps as attributes of the same name (and saves)
_CELL_ARGS = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
              "bias_regularizer", "kernel_constraint", "recurrent_constraint",
              "bias_constraint", "dropout", "recurrent_dropout", "seed")
_SERIALIZERS = {"activation": activations.name_of, "initializer": initializers.serialize,
                "regularizer": regularizers.serialize, "constraint": constraints.serialize}


def build_cell(cell, graph, input_shape):
    """Build a cell (graphc's or a user's Layer) for step inputs of `input_shape` in `graph`,
    once: cells are built by the RNN or stack that holds them, not by a call of their own."""
    if isinstance(cell, Layer) and not cell.built:
        cell._graph = graph
        cell.build(tuple(input_shape))
        cell.built = True


def output_size_of(cell):
    """The width of a cell's output: its output_size, else its (first) state size."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
        size = size[0] if isinstance(size, (list, tuple)) else size
    return size


def zeros_state(batch, size, dtype):
    """A (batch, size) state of zeros (size: an int or a shape); batch may be a run-time
    dimension."""
    size = tuple(size) if isinstance(size, (list, tuple)) else (size,)
    return gc.broadcast_to(gc.constant(0.0, dtype=dtype), (batch,) + size)


class _Cell(Layer):
    """What graphc's cells share: the weights, dropout masks (drawn once per sequence, as
    Keras does), one step through project + step, and the configuration. Subclasses give
    `gates`, `state_size`, `step(...)` and may override the bias parts."""
    gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units < 1:
            raise GraphcError(f"{kind} units must be a positive integer, got {units!r}")
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
                raise GraphcError(f"{kind} {what} must be in [0, 1), got {rate!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = backend.next_seed() if seed is None else int(seed)
        self._masks = None  # (input mask, recurrent mask) while an RNN runs this cell

    @property
    def output_size(self):
        return self.units

    # -- weights -------------------------------------------------------------------------------
    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def _kernel_shapes(self, input_shape):
        """(kernel shape, recurrent kernel shape) for step inputs of input_shape."""
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' takes inputs of shape "
                              f"(batch, time, features) with known features, got steps of "
                              f"shape {tuple(input_shape)}")
        width = self.gates * self.units
        return (input_shape[-1], width), (self.units, width)

    def build(self, input_shape):
        kernel_shape, recurrent_shape = self._kernel_shapes(input_shape)
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", recurrent_shape,
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight("bias", self._bias_shape(), self._bias_initializer(),
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    # -- the step ------------------------------------------------------------------------------
    def _input_bias(self):
        """The part of the bias added to the input projection."""
        return self.bias

    def recurrent_constants(self):
        """Tensors the step uses besides the recurrent kernel (non-sequences of a loop)."""
        return []

    def project(self, x):
        """The input half of a step, x @ kernel (+ bias), for any leading axes."""
        proj = x @ self.kernel
        return proj if self.bias is None else proj + self._input_bias()

    def step(self, x_t, states, recurrent_kernel, constants, h_drop):
        """New states from the projected input x_t (batch, gates * units) of one step and the
        previous states; `h_drop` multiplies h where it enters the recurrent product."""
        raise NotImplementedError

    def dropout_masks(self, x_t, h, training):
        """(input mask or None, recurrent mask or None): inverted-dropout masks shaped like
        a step's input x_t and state h, the same at every step of a sequence (as in Keras)."""
        def draw(like, rate, offset):
            if not training or rate == 0:
                return None
            return gc.nn.dropout(gc.ones_like(like), rate, seed=self.seed + offset,
                                 training=True)
        return draw(x_t, self.dropout, 0), draw(h, self.recurrent_dropout, 1)

    def _state_shape(self):
        """The shape of each state without its batch axis."""
        return (self.units,)

    def get_initial_state(self, batch_size=None):
        count = len(self.state_size) if isinstance(self.state_size, list) else 1
        return [zeros_state(batch_size, self._state_shape(), self.dtype) for _ in range(count)]

    def call(self, inputs, states, training=False):
        listed = isinstance(states, (list, tuple))
        states = list(states) if listed else [states]
        x_drop, h_drop = self._masks or self.dropout_masks(inputs, states[0], training)
        x = inputs if x_drop is None else inputs * x_drop
        new = self.step(self.project(x), states, self.recurrent_kernel,
                        self.recurrent_constants(), h_drop)
        return new[0], (new if listed or len(new) > 1 else new[0])

    def __call__(self, inputs, states=None, training=None):
        """One step on graphc tensors, as Keras's cell(inputs, states): (output, new states)."""
        if not isinstance(inputs, Tensor):
            raise GraphcError(f"cell '{self.name}' takes graphc tensors, got "
                              f"{type(inputs).__name__}")
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        with inputs.graph.as_default():
            build_cell(self, inputs.graph, [d if isinstance(d, int) else None
                                            for d in inputs.shape])
            return self.call(inputs, states, training=bool(training))

    # -- configuration -------------------------------------------------------------------------
    def get_config(self):
        config = {**super().get_config()}
        for name in _CELL_ARGS:
            kind = name.rsplit("_", 1)[-1]
            value = getattr(self, name)
            config[name] = _SERIALIZERS[kind](value) if kind in _SERIALIZERS else value
        return config


class SimpleRNNCell(_Cell):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    @property
    def state_size(self):
        return self.units

    def step(self, x_t, states, rk, consts, drop):
        h = states[0] if drop is None else states[0] * drop
        return [self.activation(x_t + h @ rk)]


class _GatedCell(_Cell):
    """A cell with a recurrent_activation (LSTM's and GRU's gates)."""

    def __init__(self, units, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.name_of(self.recurrent_activation)}


class LSTMCell(_GatedCell):
    """Keras's LSTM step: gates i, f, c, o side by side in kernel (in, 4u), recurrent_kernel
    (u, 4u) and bias (4u,); recurrent_activation (sigmoid) on i, f, o; states [h, c]."""
    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        u, init = self.units, self.bias_initializer

        class _ForgetOnes(initializers.Initializer):
            def __call__(self, shape, dtype="float32"):
                return np.concatenate([init((u,), dtype), np.ones((u,), dtype),
                                       init((2 * u,), dtype)]).astype(dtype)
        return _ForgetOnes()

    def _recurrent(self, h, rk):
        """The recurrent half of the gates' pre-activations."""
        return h @ rk

    def step(self, x_t, states, rk, consts, drop):
        h, c = states
        z = x_t + self._recurrent(h if drop is None else h * drop, rk)
        zi, zf, zc, zo = gc.split(z, 4, axis=-1)
        ra = self.recurrent_activation
        c = ra(zf) * c + ra(zi) * self.activation(zc)
        return [ra(zo) * self.activation(c), c]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_GatedCell):
    """Keras's GRU step: gates z, r, h side by side in kernel (in, 3u) and recurrent_kernel
    (u, 3u). reset_after=True (Keras 3's default): bias (2, 3u), an input and a recurrent
    bias, and the reset gate multiplies the recurrent product; reset_after=False: bias (3u,)
    and the reset gate multiplies h before its product."""
    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    @property
    def state_size(self):
        return self.units

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        return self.bias[0] if self.reset_after else self.bias

    def recurrent_constants(self):
        return [self.bias[1]] if self.reset_after and self.bias is not None else []

    def step(self, x_t, states, rk, consts, drop):
        h = states[0]
        hd = h if drop is None else h * drop
        u, ra = self.units, self.recurrent_activation
        xz, xr, xh = gc.split(x_t, 3, axis=-1)
        if self.reset_after:
            inner = hd @ rk
            if consts:
                inner = inner + consts[0]
            rz, rr, rh = gc.split(inner, 3, axis=-1)
            z, r = ra(xz + rz), ra(xr + rr)
            hh = self.activation(xh + r * rh)
        else:
            rz, rr = gc.split(hd @ rk[:, :2 * u], 2, axis=-1)
            z, r = ra(xz + rz), ra(xr + rr)
            hh = self.activation(xh + (r * hd) @ rk[:, 2 * u:])
        return [z * h + (1 - z) * hh]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


def check_cell(cell, what="cell"):
    """A GraphcError unless `cell` follows Keras's cell protocol (call and state_size)."""
    for attribute in ("call", "state_size"):
        if not hasattr(cell, attribute):
            raise GraphcError(f"the RNN {what} must have a `{attribute}` (Keras's cell "
                              f"protocol: call(inputs, states) and state_size), got {cell!r}")
    size = cell.state_size
    sizes = size if isinstance(size, (list, tuple)) else [size]
    if not sizes or not all(isinstance(s, (numbers.Integral, list, tuple)) for s in sizes):
        raise GraphcError(f"the state_size of {cell!r} must be an integer or a list of them, "
                          f"got {size!r}")


def initial_state_of(cell, batch, dtype):
    """The zero states a cell starts from, as Keras nests them: the cell's get_initial_state,
    else one (batch, size) zeros per entry of its state_size."""
    make = getattr(cell, "get_initial_state", None)
    if make is not None:
        states = make(batch_size=batch)
        return list(states) if isinstance(states, (list, tuple)) else [states]
    size = cell.state_size
    return [zeros_state(batch, s, dtype) if isinstance(s, numbers.Integral)
            else [zeros_state(batch, d, dtype) for d in s]
            for s in (size if isinstance(size, (list, tuple)) else [size])]


def calls_with_training(cell):
    """Whether a cell's call takes `training` (a user's may not)."""
    return "training" in inspect.signature(cell.call).parameters


class StackedRNNCells(Layer):
    """Cells run one after another within each step: each cell's output is the next one's
    input; the states are each cell's states, in order; the output is the last cell's."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            check_cell(cell, "cells of StackedRNNCells")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        return output_size_of(self.cells[-1])

    def build(self, input_shape):
        for cell in self.cells:
            build_cell(cell, self._graph, input_shape)
            input_shape = (input_shape[0], output_size_of(cell))

    def get_initial_state(self, batch_size=None):
        return [initial_state_of(c, batch_size, self.dtype) for c in self.cells]

    def call(self, inputs, states, training=False):
        new_states = []
        for cell, state in zip(self.cells, states):
            listed = isinstance(state, (list, tuple))
            kwargs = {"training": training} if calls_with_training(cell) else {}
            inputs, state = cell.call(inputs, list(state) if listed else [state], **kwargs)
            if isinstance(state, (list, tuple)) and len(state) == 1 and not listed:
                state = state[0]
            new_states.append(state)
        return inputs, new_states

    def get_config(self):
        from ..saving import layer_config
        return {**super().get_config(), "cells": [layer_config(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        from ..saving import layer_from_config
        return cls([layer_from_config(c) for c in config["cells"]],
                   **{k: v for k, v in config.items() if k != "cells"})
