"""BatchNormalization (batch statistics while training, moving ones at inference) and
LayerNormalization."""
import graphc as gc

from .. import distribution
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
    """Normalizes each example over the last axis, then scales and shifts per feature."""
    supports_masking = True

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.center, self.scale = float(epsilon), center, scale

    def build(self, input_shape):
        size = input_shape[-1]
        self.gamma = self.add_weight("gamma", (size,), "ones") if self.scale else None
        self.beta = self.add_weight("beta", (size,), "zeros") if self.center else None

    def call(self, inputs):
        mean = gc.mean(inputs, axis=-1, keepdims=True)
        centered = inputs - mean
        variance = gc.mean(gc.square(centered), axis=-1, keepdims=True)
        out = centered * gc.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            out = out * self.gamma
        if self.beta is not None:
            out = out + self.beta
        return out

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale}
