"""RandomGaussianBlur, as Keras 3.15 has it: while training each image is blurred with
probability drawn per image in factor's range, by one Gaussian kernel for the whole batch
whose deviations are drawn in sigma's range, and every image is clipped to value_range; the
identity at inference. The random draws are graphc's own, from Keras's distributions."""
import graphc as gc
from graphc.errors import GraphcError
from graphc.ops.state import random_uniform_like

from .. import ops_image
from .color import _unit_factor
from .preprocessing import _Augmentation


def _kernel_size(kernel_size):
    sizes = tuple(kernel_size) if isinstance(kernel_size, (tuple, list)) else (kernel_size,) * 2
    if len(sizes) != 2 or not all(isinstance(k, int) and k >= 1 and k % 2 for k in sizes):
        raise GraphcError(f"RandomGaussianBlur: kernel_size must be an odd positive int or a "
                          f"pair of them, got {kernel_size!r}")
    return sizes


class RandomGaussianBlur(_Augmentation):
    """(batch, h, w, c) images: where a uniform draw falls below another drawn in factor's
    range (f: [0, f]), the image blurred by ops.image.gaussian_blur with kernel_size and
    deviations (s_w, s_h) drawn once for the batch in sigma's range (+1e-6, as Keras adds)."""

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                 data_format=None, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.factor = _unit_factor(factor, "RandomGaussianBlur")
        self.kernel_size = _kernel_size(kernel_size)
        self.sigma = _unit_factor(sigma, "RandomGaussianBlur (sigma)")
        self.value_range = tuple(value_range)
        ops_image._channels_last(data_format, "RandomGaussianBlur")

    def transform(self, x):
        chance = self._per_image(x, 0, *self.factor)
        scalar = x[(0,) * x.ndim]  # the deviations are scalars of x's dtype
        sigma = [random_uniform_like(scalar, *self.sigma, seed=self.seed + offset) + 1e-6
                 for offset in (2, 3)]
        blurred = ops_image.gaussian_blur(x, self.kernel_size, sigma)
        return gc.clip(gc.where(self._per_image(x, 1) < chance, blurred, x), *self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor),
                "kernel_size": list(self.kernel_size), "sigma": list(self.sigma),
                "value_range": list(self.value_range)}


LAYERS = (RandomGaussianBlur,)
