"""Recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper, with Keras 3's
arguments, weight shapes and weight order, so that `layer.set_weights(keras_layer.get_weights())`
reproduces Keras's outputs.

Inputs are batch-major (batch, time, features). The input projection of every step is one
matrix product over the whole sequence, time-major, before the loop; the loop itself is `gc.scan` over the
time-major projections (and the mask), carrying the states, so gradients flow through the
recurrence by gc.grad's rules for scan.

Masks (from Embedding(mask_zero=True), Masking, or an explicit `mask=` of shape
(batch, time)) follow Keras 3: at a masked step every state keeps its previous value and the
step's output is the previous output (zeros with `zero_output_for_mask=True`, which
Bidirectional sets when it returns sequences). With `return_sequences` the output carries the
mask on.
"""
import numbers

import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from .. import activations, backend, initializers, regularizers
from .base import Layer

_RNN_ARGS = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
             "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
             "bias_regularizer", "dropout", "recurrent_dropout", "return_sequences",
             "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
             "seed")


class _RNN(Layer):
    """The shared part: weights kernel (in, gates * units), recurrent_kernel
    (units, gates * units) and bias, the loop, masks, dropout, states and configuration.
    Subclasses give `gates`, `state_count`, `_bias_shape()` and `_step(...)`."""
    supports_masking = True
    gates = 1
    state_count = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units < 1:
            raise GraphcError(f"{kind} units must be a positive integer, got {units!r}")
        if stateful:
            raise GraphcError(f"{kind} '{self.name}': stateful=True is not supported yet "
                              "(states are not carried from one batch to the next)")
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
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), False, bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.seed = backend.next_seed() if seed is None else int(seed)

    # -- weights -------------------------------------------------------------------------------
    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise GraphcError(f"{type(self).__name__} '{self.name}' takes inputs of shape "
                              f"(batch, time, features) with known features, got "
                              f"{input_shape}")
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self._bias_shape(), self._bias_initializer(),
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    # -- the loop ------------------------------------------------------------------------------
    def _input_bias(self):
        """The part of the bias added to the input projection."""
        return self.bias

    def _recurrent_constants(self):
        """Tensors the step uses besides the recurrent kernel (non-sequences of the scan)."""
        return []

    def _step(self, x_t, states, recurrent_kernel, constants, h_drop):
        """New states from the input projection x_t (batch, gates * units) of one step and the
        previous states; `h_drop` multiplies h where it enters the recurrent product."""
        raise NotImplementedError

    def _dropout_mask(self, like, rate, offset):
        """One inverted-dropout mask of like's shape, the same at every step (as in Keras)."""
        return gc.nn.dropout(gc.ones_like(like), rate, seed=self.seed + offset, training=True)

    def call(self, inputs, mask=None, training=False, initial_state=None):
        if inputs.ndim != 3:
            raise GraphcError(f"{type(self).__name__} '{self.name}' takes inputs of shape "
                              f"(batch, time, features), got rank {inputs.ndim}")
        x = inputs
        if training and self.dropout > 0:
            x = x * gc.expand_dims(self._dropout_mask(x[:, 0, :], self.dropout, 0), 1)
        # time-major (time, batch, gates * units): x is transposed, not its projection, which
        # is gates * units wide (and so is the projection's gradient, in the loop's order)
        proj = gc.transpose(x, (1, 0, 2)) @ self.kernel
        if self.bias is not None:
            proj = proj + self._input_bias()
        seqs = [proj]
        if mask is not None:
            if isinstance(mask, (list, tuple)):
                mask = mask[0]
            if mask.dtype != gc.bool_:
                mask = gc.not_equal(mask, 0)
            seqs.append(gc.transpose(mask, (1, 0)))
        if self.go_backwards:
            seqs = [s[::-1] for s in seqs]

        if initial_state is None:
            zero = gc.broadcast_to(gc.constant(0.0, dtype=proj.dtype),
                                   (inputs.shape[0], self.units))
            states0 = [zero] * self.state_count
        else:
            states0 = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            if len(states0) != self.state_count:
                raise GraphcError(f"{type(self).__name__} '{self.name}' has "
                                  f"{self.state_count} states, got {len(states0)} initial "
                                  "states")
        constants = self._recurrent_constants()
        h_drop = None
        if training and self.recurrent_dropout > 0:
            h_drop = self._dropout_mask(states0[0], self.recurrent_dropout, 1)
        non_seqs = [self.recurrent_kernel] + constants + ([h_drop] if h_drop is not None else [])
        n_states, n_consts, masked = self.state_count, len(constants), mask is not None

        def step(*args):
            x_t = args[0]
            m_t = args[1] if masked else None
            rest = args[2 if masked else 1:]
            states, rk = list(rest[:n_states]), rest[n_states]
            consts = list(rest[n_states + 1:n_states + 1 + n_consts])
            drop = rest[n_states + 1 + n_consts] if h_drop is not None else None
            new = self._step(x_t, states, rk, consts, drop)
            if m_t is not None:
                keep = gc.expand_dims(m_t, -1)
                new = [gc.where(keep, n, s) for n, s in zip(new, states)]
            return new

        outputs, _ = gc.scan(step, sequences=seqs, outputs_info=states0,
                             non_sequences=non_seqs, name=self.name)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        hs = outputs[0]  # (time, batch, units), in the order the steps ran
        if masked and self.zero_output_for_mask:
            hs = gc.where(gc.expand_dims(seqs[1], -1), hs, gc.zeros_like(hs))
        final_states = [s[-1] for s in outputs]
        output = gc.transpose(hs, (1, 0, 2)) if self.return_sequences else hs[-1]
        if self.return_state:
            return [output] + final_states
        return output

    def compute_mask(self, inputs, mask):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        return [out] + [None] * self.state_count if self.return_state else out

    # -- configuration -------------------------------------------------------------------------
    def get_config(self):
        config = {**super().get_config()}
        for name in _RNN_ARGS:
            value = getattr(self, name)
            if name == "activation":
                value = activations.name_of(value)
            elif name.endswith("_initializer"):
                value = initializers.serialize(value)
            elif name.endswith("_regularizer"):
                value = regularizers.serialize(value)
            config[name] = value
        return config


class SimpleRNN(_RNN):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    def _step(self, x_t, states, rk, consts, drop):
        h = states[0] if drop is None else states[0] * drop
        return [self.activation(x_t + h @ rk)]


class LSTM(_RNN):
    """Keras's LSTM: gates i, f, c, o side by side in kernel (in, 4u), recurrent_kernel
    (u, 4u) and bias (4u,); recurrent_activation (sigmoid) on i, f, o; states [h, c]."""
    gates, state_count = 4, 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        u, init = self.units, self.bias_initializer

        class _ForgetOnes(initializers.Initializer):
            def __call__(self, shape, dtype="float32"):
                return np.concatenate([init((u,), dtype), np.ones((u,), dtype),
                                       init((2 * u,), dtype)]).astype(dtype)
        return _ForgetOnes()

    def _step(self, x_t, states, rk, consts, drop):
        h, c = states
        z = x_t + (h if drop is None else h * drop) @ rk
        zi, zf, zc, zo = gc.split(z, 4, axis=-1)
        ra = self.recurrent_activation
        c = ra(zf) * c + ra(zi) * self.activation(zc)
        return [ra(zo) * self.activation(c), c]

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.name_of(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Keras's GRU: gates z, r, h side by side in kernel (in, 3u) and recurrent_kernel (u, 3u).
    reset_after=True (Keras 3's default): bias (2, 3u), an input and a recurrent bias, and the
    reset gate multiplies the recurrent product; reset_after=False: bias (3u,) and the reset
    gate multiplies h before its product."""
    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self):
        return self.bias[0] if self.reset_after else self.bias

    def _recurrent_constants(self):
        return [self.bias[1]] if self.reset_after and self.bias is not None else []

    def _step(self, x_t, states, rk, consts, drop):
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
        return {**super().get_config(),
                "recurrent_activation": activations.name_of(self.recurrent_activation),
                "reset_after": self.reset_after}


class Bidirectional(Layer):
    """Runs `layer` forwards and a copy of it backwards (go_backwards flipped) and merges the
    two: merge_mode "concat" (default), "sum", "mul", "ave", or None (a list of both).

    Weights: the forward layer's, then the backward layer's (Keras's order). The backward
    output of a sequence is flipped back into time order before merging; with
    return_sequences both layers output zeros at masked steps, as in Keras. With return_state
    the outputs are [merged, forward states..., backward states...]."""
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, _RNN):
            raise GraphcError(f"Bidirectional wraps SimpleRNN, LSTM or GRU, got {layer!r}")
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
