"""Equalization, as Keras 3.15 has it: while training, each channel's histogram equalised over
the whole batch (one histogram per channel of all the batch's images, Keras's rule) on the
0-255 scale; the identity at inference.

The histogram is a sum of one-hot rows, so it takes batch * height * width * channels * bins
values of memory."""
import graphc as gc
from graphc.errors import GraphcError

from .. import ops as _o
from .. import ops_image
from .color import _from_255, _to_255, _value_range
from .preprocessing import _Augmentation


def _bin(scaled, bins):
    """Keras's bin index: truncated towards zero, then clipped into [0, bins - 1]."""
    return gc.clip(gc.cast(scaled, gc.int32), 0, bins - 1)


class Equalization(_Augmentation):
    """Each value v (on the 0-255 scale) replaced by the rounded 255 (cdf(v) - cdf_min) /
    (n - cdf_min) of its channel's histogram of `bins` bins (a channel of one non-empty bin
    kept as it is)."""

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(None, **kwargs)
        if not (isinstance(bins, int) and bins >= 1):
            raise GraphcError(f"Equalization: bins must be a positive int, got {bins!r}")
        self.bins = bins
        self.value_range = _value_range(value_range, "Equalization")
        ops_image._channels_last(data_format, "Equalization")

    def transform(self, x):
        bins = self.bins
        y = _to_255(x, self.value_range)
        hist = gc.sum(gc.one_hot(_bin(y * (bins - 1) / 255.0, bins), bins, dtype=gc.float32),
                      axis=(0, 1, 2))  # (channels, bins)
        cdf = gc.cumsum(hist, axis=-1)
        cdf_min = gc.min(gc.where(cdf > 0.0, cdf, float("inf")), axis=-1, keepdims=True)
        spread = cdf[:, -1:] - cdf_min
        lut = gc.clip(_o.round((cdf - cdf_min) * 255.0 / gc.where(spread == 0.0, 1.0, spread)),
                      0.0, 255.0)  # (channels, bins)
        index = _bin(y / 255.0 * (bins - 1), bins)  # (batch, h, w, channels)
        equalized = gc.stack([gc.gather(lut[c], index[..., c]) for c in range(x.shape[-1])],
                             axis=-1)
        several = gc.sum(gc.cast(hist > 0.0, gc.int32), axis=-1) > 1  # (channels,)
        return _from_255(gc.where(several, equalized, y), self.value_range)

    def get_config(self):
        config = {**super().get_config(), "value_range": list(self.value_range),
                  "bins": self.bins}
        del config["seed"]  # nothing is drawn
        return config


LAYERS = (Equalization,)
