"""Recurrent layers: `RNN(cell)`, which loops a cell over time, SimpleRNN, LSTM and GRU (RNN
over graphc's cells, with Keras 3's arguments, weight shapes and weight order, so that
`layer.set_weights(keras_layer.get_weights())` reproduces Keras's outputs) and the
Bidirectional wrapper.

Inputs are batch-major (batch, time, features...). The loop is `gc.scan` over the time-major
sequence (and the mask), carrying the states, so gradients flow through the recurrence by
gc.grad's rules for scan; `unroll=True` writes the steps out instead (a known number of
steps). With graphc's own cells, the input projection of every step is one matrix product
over the whole sequence, time-major, before the loop; any other cell (Keras's protocol:
`call(inputs, states) -> (output, new_states)` and `state_size`) is called once per step.

Masks (from Embedding(mask_zero=True), Masking, or an explicit `mask=` of shape
(batch, time)) follow Keras 3: at a masked step every state keeps its previous value and the
step's output is the previous first state (zeros with `zero_output_for_mask=True`, which
Bidirectional sets when it returns sequences). With `return_sequences` the output carries the
mask on.

With stateful=True the states start from variables (one per state, the batch size fixed by
the input) and the call asks, through add_update, that the final states be written back, so
every step that runs the layer (train, test, predict) hands them on to the next batch.
"""
import numpy as np

import graphc as gc
from graphc.errors import ArgumentError, GraphcError

from .. import backend
from .base import Layer, snake_case, unique_name
from .cells import (_CELL_ARGS, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells, _Cell,
                    build_cell, calls_with_training, check_cell, initial_state_of,
                    output_size_of, zeros_state)

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask")
# what SimpleRNN, LSTM and GRU read from their cell, as Keras's layers do
_FROM_CELL = frozenset(_CELL_ARGS + ("recurrent_activation", "unit_forget_bias", "reset_after",
                                     "kernel", "recurrent_kernel", "bias", "filters",
                                     "kernel_size", "strides", "padding", "data_format",
                                     "dilation_rate"))


def _flatten(structure):
    """The tensors of a nested list of states, in order (Keras's tree.flatten)."""
    if isinstance(structure, (list, tuple)):
        return [t for item in structure for t in _flatten(item)]
    return [structure]


def _pack_like(structure, flat):
    """`flat` (tensors) in the nesting of `structure`."""
    items = iter(flat)

    def pack(s):
        return [pack(i) for i in s] if isinstance(s, (list, tuple)) else next(items)
    return pack(structure)


class RNN(Layer):
    """Keras's RNN layer: loops `cell` (a cell, or a list of cells stacked with
    StackedRNNCells) over the time axis of (batch, time, ...) inputs. Returns the last
    output, or all of them with return_sequences; with return_state, [output, *states]
    (the states flattened in order)."""
    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        check_cell(cell)
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = (bool(go_backwards), bool(stateful),
                                                         bool(unroll))
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None  # stateful: the variables the states live in between calls

    @property
    def state_size(self):
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def state_count(self):
        """How many state tensors the layer carries (and returns with return_state)."""
        return len(_flatten(self.state_size))

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise GraphcError(f"{type(self).__name__} '{self.name}' takes inputs of shape "
                              f"(batch, time, features), got {input_shape}")
        build_cell(self.cell, self._graph, (input_shape[0],) + tuple(input_shape[2:]))
        if self.stateful:
            self._make_state_variables(input_shape[0])

    def _make_state_variables(self, batch):
        """stateful: one variable per state, (batch, ...) zeros, outside the layer's weights
        (as Keras keeps them: get_weights and saved models leave them out)."""
        if batch is None:
            raise ArgumentError(f"{type(self).__name__} '{self.name}' is stateful and needs a "
                                "fixed batch size: give its input one, gk.Input(shape, "
                                "batch_size=n) or batch_shape=(n, ...)")
        with self._graph.as_default(), self._graph.root_scope():
            self._state_structure = self.get_initial_state(batch)
            self.states = [gc.Variable(np.zeros(tuple(t.shape), t.dtype.np),
                                       name=f"{self.name}/rnn_state_{i}", trainable=False)
                           for i, t in enumerate(_flatten(self._state_structure))]

    def reset_state(self):
        """stateful: set the states back to zeros."""
        if self.states is not None:
            sess = backend.session(self._graph)
            for var in self.states:
                sess.set_value(var, np.zeros(tuple(var.shape), var.dtype.np))

    reset_states = reset_state  # Keras's other spelling

    def get_initial_state(self, batch_size):
        return initial_state_of(self.cell, batch_size, self.dtype)

    # -- the loop ------------------------------------------------------------------------------
    def call(self, sequences, initial_state=None, mask=None, training=False):
        if sequences.ndim < 3:
            raise GraphcError(f"{type(self).__name__} '{self.name}' takes inputs of shape "
                              f"(batch, time, features), got rank {sequences.ndim}")
        batch, steps = sequences.shape[0], sequences.shape[1]
        if self.unroll and not isinstance(steps, int):
            raise GraphcError(f"{type(self).__name__} '{self.name}': unroll=True needs a "
                              "time axis of known length; give Input a shape with it")
        if self.stateful and batch != self.states[0].shape[0]:
            raise ArgumentError(f"{type(self).__name__} '{self.name}' is stateful for batches "
                                f"of {self.states[0].shape[0]}, got inputs of shape "
                                f"{tuple(sequences.shape)}")
        if initial_state is None:
            structure = _pack_like(self._state_structure, self.states) if self.stateful \
                else self.get_initial_state(batch)
        else:
            structure = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            if len(_flatten(structure)) != self.state_count:
                raise GraphcError(f"{type(self).__name__} '{self.name}' has "
                                  f"{self.state_count} states, got "
                                  f"{len(_flatten(structure))} initial states")
        states0 = _flatten(structure)
        time_major = (1, 0) + tuple(range(2, sequences.ndim))
        if mask is not None:
            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            if mask.dtype != gc.bool_:
                mask = gc.not_equal(mask, 0)
            mask = gc.transpose(mask, (1, 0))
        if isinstance(self.cell, _Cell):
            step, seqs, non_seqs = self._projected_loop(sequences, time_major, states0,
                                                        training)
        else:
            step, seqs, non_seqs = self._cell_loop(sequences, time_major, structure, batch,
                                                   training)
        n_inputs = len(seqs)  # the projection (graphc's cells) or x (any other cell)
        seqs = seqs + ([mask] if mask is not None else [])
        if self.go_backwards:
            seqs = [s[::-1] for s in seqs]
        body = _masked(step, n_inputs, structure, mask is not None)
        outputs = self._run(body, seqs, states0, non_seqs, steps,
                            extra=0 if isinstance(self.cell, _Cell) else 1)
        self._clear_masks(self.cell)
        # outputs: the first states (graphc's cells: their output) or the outputs, then the
        # states; each (time, batch, ...) in the order the steps ran
        ys = outputs[0]
        if mask is not None and self.zero_output_for_mask:
            ys = gc.where(_expand_to(seqs[-1], ys.ndim), ys, gc.zeros_like(ys))
        final_states = [s[-1] for s in outputs[len(outputs) - len(states0):]]
        if self.stateful:  # the next call (the next batch) starts from these
            for var, state in zip(self.states, final_states):
                self.add_update(var, state)
        output = gc.transpose(ys, (1, 0) + tuple(range(2, ys.ndim))) \
            if self.return_sequences else ys[-1]
        return [output] + final_states if self.return_state else output

    def _projected_loop(self, x, time_major, states0, training):
        """(step, sequences, non-sequences) of graphc's cells: the input projection of all
        steps is one product before the loop; the step returns the new states (the first
        is the output)."""
        cell = self.cell
        x_drop, h_drop = cell.dropout_masks(x[:, 0], states0[0], training)
        if x_drop is not None:
            x = x * gc.expand_dims(x_drop, 1)
        # time-major: x is transposed, not its projection, which is gates * units wide (and
        # so is the projection's gradient, in the loop's order)
        proj = cell.project(gc.transpose(x, time_major))
        constants = cell.recurrent_constants()
        non_seqs = [cell.recurrent_kernel] + constants + ([h_drop] if h_drop is not None else [])
        n_consts = len(constants)

        def step(inputs, states, rest):
            consts = rest[1:1 + n_consts]
            drop = rest[1 + n_consts] if h_drop is not None else None
            return None, cell.step(inputs[0], states, rest[0], consts, drop)
        return step, [proj], non_seqs

    def _cell_loop(self, x, time_major, structure, batch, training):
        """(step, sequences, non-sequences) of any cell: it is called on each step's input;
        the step returns (output, new states)."""
        self._set_masks(self.cell, x[:, 0], structure, batch, training)
        kwargs = {"training": training} if calls_with_training(self.cell) else {}

        def step(inputs, states, rest):
            output, new = self.cell.call(inputs[0], _pack_like(structure, states), **kwargs)
            new = _flatten(list(new) if isinstance(new, (list, tuple)) else [new])
            return output, new
        return step, [gc.transpose(x, time_major)], []

    def _set_masks(self, cell, x_t, structure, batch, training):
        """Draw the dropout masks of graphc's cells once, before the loop (Keras's
        _maybe_config_dropout_masks): inside the loop they are the same at every step."""
        if isinstance(cell, _Cell):
            cell._masks = cell.dropout_masks(x_t, _flatten(structure)[0], training)
        elif isinstance(cell, StackedRNNCells):
            for sub, states in zip(cell.cells, structure):
                self._set_masks(sub, x_t, states, batch, training)
                x_t = zeros_state(batch, output_size_of(sub), x_t.dtype)

    def _clear_masks(self, cell):
        if isinstance(cell, _Cell):
            cell._masks = None
        for sub in getattr(cell, "cells", []):
            self._clear_masks(sub)

    def _run(self, step, seqs, states0, non_seqs, steps, extra):
        """The loop: `step(slices, states, non_seqs)` gives `extra` outputs that are not
        fed back, then the new states; each stacked over the steps. Through gc.scan, or
        written out when unroll is set."""
        n_seqs, n_states = len(seqs), len(states0)
        if not self.unroll:
            def body(*args):
                return step(list(args[:n_seqs]), list(args[n_seqs:n_seqs + n_states]),
                            list(args[n_seqs + n_states:]))
            outputs, _ = gc.scan(body, sequences=seqs, outputs_info=[None] * extra + states0,
                                 non_sequences=non_seqs, name=self.name)
            return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        states, per_step = states0, []
        for t in range(steps):
            out = step([s[t] for s in seqs], states, non_seqs)
            states = out[len(out) - n_states:]
            per_step.append(out)
        return [gc.stack(list(column), axis=0) for column in zip(*per_step)]

    def compute_mask(self, inputs, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        return [out] + [None] * self.state_count if self.return_state else out

    # -- configuration -------------------------------------------------------------------------
    def get_config(self):
        from ..saving import layer_config
        return {**super().get_config(), **{name: getattr(self, name) for name in _RNN_ARGS},
                "cell": layer_config(self.cell)}

    @classmethod
    def from_config(cls, config):
        from ..saving import layer_from_config
        config = dict(config)
        return cls(layer_from_config(config.pop("cell")), **config)


def _expand_to(mask, ndim):
    """A mask with trailing axes of size 1 up to rank ndim, to select whole rows."""
    while mask.ndim < ndim:
        mask = gc.expand_dims(mask, -1)
    return mask


def _masked(step, n_inputs, structure, masked):
    """The loop body around `step(inputs, states, non_seqs) -> (output or None, new states)`:
    at a masked step the states keep their values and the output is the previous first
    state (Keras's: the last cell's first state where the states are nested per cell). It
    returns the new states, preceded by the output where the step has one of its own."""
    states_of_last = isinstance(structure[0], (list, tuple))
    reference = len(_flatten(structure[:-1])) if states_of_last else 0

    def body(slices, states, non_seqs):
        inputs = slices[:n_inputs] if masked else slices
        output, new = step(inputs, states, non_seqs)
        if masked:
            m = slices[n_inputs]
            new = [gc.where(_expand_to(m, n.ndim), n, s) for n, s in zip(new, states)]
            if output is not None:
                output = gc.where(_expand_to(m, output.ndim), output, states[reference])
        return ([output] if output is not None else []) + list(new)
    return body


class _CellRNN(RNN):
    """An RNN over a graphc cell made from the layer's own arguments (Keras's SimpleRNN,
    LSTM, GRU): the cell takes the layer's name, so its weights are `<layer>/kernel`, ...,
    and the cell's arguments read as the layer's attributes (layer.units, layer.kernel)."""
    cell_class = None

    def __init__(self, *cell_args, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False,
                 name=None, trainable=True, dtype="float32", input_shape=None, **cell_kwargs):
        name = name or unique_name(snake_case(type(self).__name__))
        cell = self.cell_class(*cell_args, name=name, trainable=trainable, dtype=dtype,
                               **cell_kwargs)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, name=name,
                         trainable=trainable, dtype=dtype, input_shape=input_shape)

    def __getattr__(self, name):
        # only called for names the layer lacks: the cell's arguments and weights
        cell = self.__dict__.get("cell")
        if cell is None or name not in _FROM_CELL:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(cell, name)

    def get_config(self):
        cell = {k: v for k, v in self.cell.get_config().items()
                if k not in ("name", "trainable")}
        return {**Layer.get_config(self), **{name: getattr(self, name) for name in _RNN_ARGS},
                **cell}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SimpleRNN(_CellRNN):
    """RNN(SimpleRNNCell): h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + b)."""
    cell_class = SimpleRNNCell


class LSTM(_CellRNN):
    """RNN(LSTMCell): gates i, f, c, o; states [h, c]."""
    cell_class = LSTMCell


class GRU(_CellRNN):
    """RNN(GRUCell): gates z, r, h; reset_after=True (Keras 3's default) or False."""
    cell_class = GRUCell


class Bidirectional(Layer):
    """Runs `layer` forwards and a copy of it backwards (go_backwards flipped) and merges the
    two: merge_mode "concat" (default), "sum", "mul", "ave", or None (a list of both).

    Weights: the forward layer's, then the backward layer's (Keras's order). The backward
    output of a sequence is flipped back into time order before merging; with
    return_sequences both layers output zeros at masked steps, as in Keras. With return_state
    the outputs are [merged, forward states..., backward states...]."""
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise GraphcError(f"Bidirectional wraps an RNN layer (RNN, SimpleRNN, LSTM, GRU), "
                              f"got {layer!r}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise GraphcError(f"Bidirectional merge_mode must be one of 'concat', 'sum', "
                              f"'mul', 'ave' or None, got {merge_mode!r}")
        super().__init__(**kwargs)
        config = layer.get_config()
        base = config["name"][len("forward_"):] if config["name"].startswith("forward_") \
            else config["name"]
        self.forward_layer = type(layer).from_config({**config, "name": f"forward_{base}"})
        self._own_backward = backward_layer is not None
        if backward_layer is None:
            self.backward_layer = type(layer).from_config(
                {**config, "name": f"backward_{base}", "go_backwards": not layer.go_backwards})
        else:
            if backward_layer.go_backwards == layer.go_backwards:
                raise GraphcError("Bidirectional's forward and backward layers need different "
                                  "go_backwards values")
            self.backward_layer = backward_layer
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful

    def reset_state(self):
        """stateful: both directions' states back to zeros."""
        if not self.stateful:
            raise GraphcError(f"Bidirectional '{self.name}' is not stateful")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def call(self, inputs, mask=None, training=False, initial_state=None):
        fwd_state = bwd_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fwd_state, bwd_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(inputs, training=training, mask=mask, initial_state=fwd_state)
        y_rev = self.backward_layer(inputs, training=training, mask=mask,
                                    initial_state=bwd_state)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            out = gc.concat([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "ave":
            out = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = [y, y_rev]
        if self.return_state:
            return (out if isinstance(out, list) else [out]) + states
        return out

    def compute_mask(self, inputs, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            n = self.forward_layer.state_count
            return outs + [None] * (2 * n)
        return outs if self.merge_mode is None else out

    def get_config(self):
        from ..saving import layer_config
        config = {**super().get_config(), "layer": layer_config(self.forward_layer),
                  "merge_mode": self.merge_mode}
        if self._own_backward:
            config["backward_layer"] = layer_config(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config):
        from ..saving import layer_from_config
        config = dict(config)
        config["layer"] = layer_from_config(config["layer"])
        if "backward_layer" in config:
            config["backward_layer"] = layer_from_config(config["backward_layer"])
        return cls(**config)
