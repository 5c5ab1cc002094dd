"""ConvLSTM1D, ConvLSTM2D and ConvLSTM3D: Keras's LSTM whose products are convolutions (channels_last).
The input convolution of the gates has the layer's strides, padding and dilation; the
recurrent one has stride 1 and "same" padding. Weights: kernel (k..., channels, 4 filters),
recurrent_kernel (k..., filters, 4 filters), bias (4 filters,), gates i, f, c, o.

As for LSTM, the input convolution of every step is one convolution over batch * time before
the loop, and the loop carries h and c of shape (batch, spatial..., filters).
"""
import math

import graphc as gc
from graphc.errors import GraphcError

from .cells import LSTMCell
from .recurrent import _CellRNN


def _tuple(value, rank, what):
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,) * rank
    if len(values) != rank or not all(isinstance(v, int) and v > 0 for v in values):
        raise GraphcError(f"ConvLSTM{rank}D {what} must be a positive integer or {rank} of "
                          f"them, got {value!r}")
    return values


def conv_nd(x, kernel, strides, padding, dilations):
    """A 1-D to 3-D convolution of channels_last x (batch, spatial..., channels) by kernel
    (k..., channels, out); a 1-D one runs as a 2-D one of unit height."""
    if kernel.ndim == 5:
        return gc.nn.conv3d(x, kernel, strides=tuple(strides), padding=padding.upper(),
                            dilations=tuple(dilations))
    if kernel.ndim == 3:
        out = gc.nn.conv2d(gc.expand_dims(x, 1), gc.expand_dims(kernel, 0),
                           strides=(1,) + tuple(strides), padding=padding.upper(),
                           dilations=(1,) + tuple(dilations))
        return gc.squeeze(out, axis=1)
    return gc.nn.conv2d(x, kernel, strides=tuple(strides), padding=padding.upper(),
                        dilations=tuple(dilations))


SPATIAL_AXES = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}


class ConvLSTMCell(LSTMCell):
    """The step of ConvLSTM{rank}D: LSTMCell's gates with convolutions for products."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, **kwargs):
        if rank not in (1, 2, 3):
            raise GraphcError(f"ConvLSTM takes rank 1, 2 or 3, got rank {rank!r}")
        super().__init__(filters, **kwargs)
        self.rank, self.filters = rank, self.units
        self.kernel_size = _tuple(kernel_size, rank, "kernel_size")
        self.strides = _tuple(strides, rank, "strides")
        self.dilation_rate = _tuple(dilation_rate, rank, "dilation_rate")
        if str(padding).lower() not in ("valid", "same"):
            raise GraphcError(f"ConvLSTM{rank}D padding must be 'valid' or 'same', got "
                              f"{padding!r}")
        if data_format not in (None, "channels_last"):
            raise GraphcError(f"ConvLSTM{rank}D takes channels_last inputs, got "
                              f"data_format={data_format!r}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise GraphcError(f"ConvLSTM{rank}D: strides > 1 and dilation_rate > 1 do not "
                              f"go together, got strides={self.strides} and "
                              f"dilation_rate={self.dilation_rate}")
        self.padding, self.data_format = str(padding).lower(), "channels_last"
        self.spatial = None  # the output's spatial shape, known once built

    def _kernel_shapes(self, input_shape):
        spatial, channels = tuple(input_shape[1:-1]), input_shape[-1]
        if len(spatial) != self.rank or None in spatial or channels is None:
            raise GraphcError(f"ConvLSTM{self.rank}D '{self.name}' takes inputs of shape "
                              f"(batch, time, {SPATIAL_AXES[self.rank]}, channels) with known "
                              f"sizes but the batch and time, got steps of shape "
                              f"{tuple(input_shape)}")
        self.spatial = tuple(
            math.ceil(n / s) if self.padding == "same" else math.ceil((n - (k - 1) * d) / s)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate))
        if min(self.spatial) < 1:
            raise GraphcError(f"ConvLSTM{self.rank}D '{self.name}': a kernel of size "
                              f"{self.kernel_size} does not fit inputs of size {spatial}")
        width = 4 * self.filters
        return self.kernel_size + (channels, width), self.kernel_size + (self.filters, width)

    def _state_shape(self):
        return self.spatial + (self.filters,)

    def project(self, x):
        """The input convolution of any number of leading axes (time and batch before the
        loop, batch within a step)."""
        lead, step_shape = tuple(x.shape[:-self.rank - 1]), tuple(x.shape[-self.rank - 1:])
        flat = gc.reshape(x, (-1,) + step_shape) if len(lead) != 1 else x
        out = conv_nd(flat, self.kernel, self.strides, self.padding, self.dilation_rate)
        if self.bias is not None:
            out = out + self.bias
        if len(lead) == 1:
            return out
        like = gc.broadcast_to(gc.constant(0.0, dtype=out.dtype), lead + tuple(out.shape[1:]))
        return gc.reshape_like(out, like)

    def _recurrent(self, h, rk):
        return conv_nd(h, rk, (1,) * self.rank, "same", (1,) * self.rank)

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate}


class _ConvLSTM(_CellRNN):
    """RNN over a ConvLSTMCell of the class's rank."""
    cell_class, rank = ConvLSTMCell, None

    def __init__(self, filters, kernel_size, **kwargs):
        if "unroll" in kwargs:
            raise GraphcError(f"{type(self).__name__} takes no unroll (Keras's neither)")
        super().__init__(self.rank, filters, kernel_size=kernel_size, **kwargs)

    def get_config(self):
        config = super().get_config()
        for name in ("rank", "units", "unroll"):  # set by the class, not arguments
            config.pop(name)
        return config


class ConvLSTM1D(_ConvLSTM):
    """Inputs (batch, time, steps, channels)."""
    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """Inputs (batch, time, rows, cols, channels)."""
    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """Inputs (batch, time, depth, rows, cols, channels)."""
    rank = 3


LAYERS = (ConvLSTM1D, ConvLSTM2D, ConvLSTM3D)
