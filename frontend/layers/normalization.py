"""BatchNormalization (batch statistics while training, moving ones at inference),
LayerNormalization, GroupNormalization, UnitNormalization and RMSNormalization."""
import graphc as gc
from graphc.errors import GraphcError, ShapeError

from .. import constraints, distribution, initializers, regularizers
from .base import Layer


class BatchNormalization(Layer):
    """Normalizes over every axis but `axis` (default the last, the channels).

    Training: each batch is normalized by its own mean and variance, and the moving statistics
    become momentum * moving + (1 - momentum) * batch. Inference, and a layer whose trainable
    is False: the moving statistics are used, as in Keras. In fit under gk.distribution's
    DataParallel, the batch is the global batch: its mean and variance are reduced over every
    rank (sync batch norm), so training matches one process fitting the global batch.
    """
    supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale

    def build(self, input_shape):
        size = input_shape[self.axis]
        self._reduce = tuple(i for i in range(len(input_shape))
                             if i != self.axis % len(input_shape))
        self.gamma = self.add_weight("gamma", (size,), "ones") if self.scale else None
        self.beta = self.add_weight("beta", (size,), "zeros") if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (size,), "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (size,), "ones",
                                               trainable=False)

    def _along_axis(self, v, rank):
        """A per-channel vector shaped to broadcast against inputs of `rank`."""
        shape = [1] * rank
        shape[self.axis % rank] = v.shape[0]
        return gc.reshape(v, tuple(shape))

    def call(self, inputs, training=False):
        rank = inputs.ndim
        if training and self.trainable and distribution.in_train_step():
            # data parallel: the global batch's statistics (sync batch norm)
            mean, variance = distribution.global_moments(inputs, self._reduce)
        elif training and self.trainable:
            mean = gc.mean(inputs, axis=self._reduce)
            variance = gc.mean(gc.square(inputs - self._along_axis(mean, rank)),
                               axis=self._reduce)
        if training and self.trainable:
            m = self.momentum
            self.add_update(self.moving_mean, self.moving_mean * m + mean * (1 - m))
            self.add_update(self.moving_variance, self.moving_variance * m + variance * (1 - m))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = gc.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            scale = scale * self.gamma
        out = (inputs - self._along_axis(mean, rank)) * self._along_axis(scale, rank)
        if self.beta is not None:
            out = out + self._along_axis(self.beta, rank)
        return out

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


class LayerNormalization(Layer):
    """Normalizes each example over `axis` (an int or a list of axes, default the last),
    then scales and shifts by weights of those axes' sizes."""
    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
            raise ShapeError(f"LayerNormalization '{self.name}': axis must be an int or a list "
                             f"of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self.epsilon, self.center, self.scale = float(epsilon), center, scale

    def build(self, input_shape):
        rank = len(input_shape)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not all(0 < a % rank and -rank <= a < rank for a in axes):
            raise ShapeError(f"LayerNormalization '{self.name}': axis {self.axis!r} does not "
                             f"name non-batch axes of inputs of shape {tuple(input_shape)}")
        self._axes = tuple(sorted(a % rank for a in axes))
        # the weights broadcast against the inputs: sizes on the normalized axes, 1 elsewhere
        self._broadcast = tuple(input_shape[i] if i in self._axes else 1 for i in range(rank))
        shape = tuple(input_shape[a] for a in self._axes)
        self.gamma = self.add_weight("gamma", shape, "ones") if self.scale else None
        self.beta = self.add_weight("beta", shape, "zeros") if self.center else None

    def call(self, inputs):
        mean = gc.mean(inputs, axis=self._axes, keepdims=True)
        centered = inputs - mean
        variance = gc.mean(gc.square(centered), axis=self._axes, keepdims=True)
        out = centered * gc.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            out = out * gc.reshape(self.gamma, self._broadcast)
        if self.beta is not None:
            out = out + gc.reshape(self.beta, self._broadcast)
        return out

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


class GroupNormalization(Layer):
    """Normalizes each example over groups of channels (axis -1, split into `groups`) and
    all other non-batch axes, then scales and shifts per channel. groups=-1: one channel per
    group (instance normalization); groups=1: layer normalization over all axes."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise GraphcError("GroupNormalization takes axis=-1 (channels last) for now")
        self.groups, self.axis, self.epsilon = int(groups), axis, float(epsilon)
        self.center, self.scale = center, scale
        self.initializers = {"beta": beta_initializer, "gamma": gamma_initializer}
        self.regularizers = {"beta": beta_regularizer, "gamma": gamma_regularizer}
        self.constraints = {"beta": beta_constraint, "gamma": gamma_constraint}

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise GraphcError(f"GroupNormalization '{self.name}' needs known channels, got "
                              f"{input_shape}")
        groups = dim if self.groups == -1 else self.groups
        if groups > dim or dim % groups:
            raise GraphcError(f"GroupNormalization '{self.name}': {dim} channels do not split "
                              f"into {groups} groups")
        self._groups = groups
        self.gamma, self.beta = (
            self.add_weight(name, (dim,), self.initializers[name],
                            regularizer=self.regularizers[name],
                            constraint=self.constraints[name]) if wanted else None
            for name, wanted in (("gamma", self.scale), ("beta", self.center)))

    def call(self, inputs):
        dims = tuple(inputs.shape)
        channels = dims[-1]
        grouped = gc.reshape(inputs, (-1,) + dims[1:-1] + (self._groups,
                                                           channels // self._groups))
        axes = tuple(range(1, grouped.ndim - 2)) + (grouped.ndim - 1,)
        mean = gc.mean(grouped, axis=axes, keepdims=True)
        variance = gc.mean(gc.square(grouped - mean), axis=axes, keepdims=True)
        out = gc.reshape((grouped - mean) * gc.rsqrt(variance + self.epsilon),
                         (-1,) + dims[1:])
        if self.gamma is not None:
            out = out * self.gamma
        return out + self.beta if self.beta is not None else out

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **{f"{k}_initializer": initializers.serialize(initializers.get(v))
                   for k, v in self.initializers.items()},
                **{f"{k}_regularizer": regularizers.serialize(regularizers.get(v))
                   for k, v in self.regularizers.items()},
                **{f"{k}_constraint": constraints.serialize(constraints.get(v))
                   for k, v in self.constraints.items()}}


class UnitNormalization(Layer):
    """Each example divided by its L2 norm over `axis` (an int or a list)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis

    def call(self, inputs):
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        return inputs * gc.minimum(gc.rsqrt(gc.sum(gc.square(inputs), axis=axis,
                                                   keepdims=True)), 1e12)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """inputs / sqrt(mean(inputs^2 over axis) + epsilon), times a learned scale (ones)."""

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, float(epsilon)

    def build(self, input_shape):
        axes = sorted(self.axis) if isinstance(self.axis, (list, tuple)) else [self.axis]
        self._axes = tuple(a % len(input_shape) for a in axes)
        self.scale = self.add_weight("scale", tuple(input_shape[a] for a in self._axes),
                                     "ones")

    def call(self, inputs):
        shape = [inputs.shape[i] if i in self._axes else 1 for i in range(inputs.ndim)]
        out = inputs * gc.rsqrt(gc.mean(gc.square(inputs), axis=self._axes, keepdims=True)
                                + self.epsilon)
        return out * gc.reshape(self.scale, tuple(shape))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
