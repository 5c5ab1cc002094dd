"""RandomCrop, as Keras 3.15 has it: in training a (height, width) window at one random offset
for the whole batch, or, where the input is not larger than the window along both axes, the
(height, width) cells from the corner of the central window of the target's aspect ratio
(fewer where the image ends) resized (bilinear) to (height, width); at inference the input as
it is."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import backend, ops_image
from .base import Layer


class RandomCrop(Layer):
    """(batch, h, w, c) -> (batch, height, width, c) in training; the identity at inference."""

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if not all(isinstance(n, int) and n >= 1 for n in (height, width)):
            raise GraphcError(f"RandomCrop: height and width must be positive ints, got "
                              f"{height!r}, {width!r}")
        self.height, self.width = height, width
        self.seed = backend.next_seed() if seed is None else seed
        ops_image._channels_last(data_format, "RandomCrop")

    def call(self, inputs, training=False):
        x = inputs if inputs.dtype.is_float else gc.cast(inputs, gc.float32)
        if not training:
            return x
        h, w = x.shape[-3:-1]
        if not (isinstance(h, int) and isinstance(w, int)):
            raise GraphcError(f"RandomCrop '{self.name}' needs a known height and width, got "
                              f"shape {tuple(x.shape)}")
        if h > self.height and w > self.width:
            return self._random_window(x, h, w)
        # Keras's fallback: the offset of the central window of the target's aspect ratio,
        # from which (height, width) cells are sliced (fewer at the border), then resized
        crop_h = max(min(h, int(float(w * self.height) / self.width)), 1)
        crop_w = max(min(w, int(float(h * self.width) / self.height)), 1)
        top, left = int(float(h - crop_h) / 2), int(float(w - crop_w) / 2)
        window = x[..., top:top + self.height, left:left + self.width, :]
        if tuple(window.shape[-3:-1]) == (self.height, self.width):
            return window
        return ops_image.resize(window, (self.height, self.width))

    def _random_window(self, x, h, w):
        """The window at offsets drawn uniformly among the h - height + 1 rows and
        w - width + 1 columns (one draw each for the batch), gathered."""
        scalar = x[(0,) * x.ndim]  # the draws are scalars of x's dtype
        out = x
        for axis, size, n, offset in ((x.ndim - 3, h, self.height, 0),
                                      (x.ndim - 2, w, self.width, 1)):
            start = gc.cast(random_uniform_like(scalar, 0.0, float(size - n + 1),
                                                seed=self.seed + offset), gc.int32)
            out = gc.gather(out, start + gc.constant(np.arange(n, dtype=np.int32)), axis=axis)
        return out

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "seed": self.seed}


LAYERS = (RandomCrop,)
