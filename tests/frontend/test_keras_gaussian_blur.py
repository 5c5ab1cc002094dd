"""gk.ops.image.gaussian_blur and RandomGaussianBlur against numpy: the zero-padded Gaussian
convolution, exact layer outputs for a fixed seed from graphc's own draws, and the identity at
inference; keras_breadth_parity.py compares the op with Keras 3."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk
from graphc.ops.state import random_uniform_like

from .test_keras_color_augmentations import _draws, _inference, _train_out

L = gk.layers
rng = np.random.default_rng(23)
IMAGES = rng.uniform(0, 255, (40, 7, 5, 2)).astype("float32")


def _kernel1d(size, sigma):
    taps = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    return taps / taps.sum()


def _np_blur(x, kernel_size, sigma):
    """Keras's kernel: kernel_size[0] / sigma[0] across the width, [1] down the height."""
    kernel = np.outer(_kernel1d(kernel_size[1], sigma[1]), _kernel1d(kernel_size[0], sigma[0]))
    kh, kw = kernel.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), ((kh - 1) // 2, kh // 2),
                                           ((kw - 1) // 2, kw // 2), (0, 0)))
    h, w = x.shape[1:3]
    return sum(padded[:, i:i + h, j:j + w] * kernel[i, j] for i in range(kh) for j in range(kw))


def test_gaussian_blur_op_matches_numpy_with_run_time_sizes():
    x = IMAGES[:3]
    inp = gc.placeholder(gc.float32, (None, None, None, 2))
    out = gc.function([inp], gk.ops.image.gaussian_blur(inp, (3, 5), (0.6, 1.7)))(x)
    np.testing.assert_allclose(out, _np_blur(x, (3, 5), (0.6, 1.7)), rtol=1e-5, atol=1e-4)
    one = gk.ops.convert_to_numpy(gk.ops.image.gaussian_blur(x[0], (1, 1), (1.0, 1.0)))
    np.testing.assert_allclose(one, x[0], rtol=1e-6)  # one tap: the image itself
    inf = x[:1].copy()
    inf[0, 3, 2, 0] = np.inf  # spreads over its 3x3 neighbourhood only
    blurred = gk.ops.convert_to_numpy(gk.ops.image.gaussian_blur(inf, (3, 3), (1.0, 1.0)))
    assert np.isinf(blurred[0, 2:5, 1:4, 0]).all() and np.isfinite(blurred).sum() == inf.size - 9


def test_random_gaussian_blur_matches_its_draws():
    layer = L.RandomGaussianBlur(factor=(0.3, 0.8), kernel_size=(5, 3), sigma=(0.4, 0.9),
                                 value_range=(10, 240), seed=7)
    out = _train_out(layer, IMAGES)
    inp = gc.placeholder(gc.float32, (None,) + IMAGES.shape[1:])
    scalar = inp[0, 0, 0, 0]
    sigma = gc.function([inp], [random_uniform_like(scalar, 0.4, 0.9, seed=7 + k)
                                for k in (2, 3)])(IMAGES)
    sigma = [float(s) + 1e-6 for s in sigma]
    apply = _draws(IMAGES, 8) < _draws(IMAGES, 7, 0.3, 0.8)
    want = np.clip(np.where(apply, _np_blur(IMAGES, (5, 3), sigma), IMAGES), 10, 240)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-3)
    assert 8 < apply.sum() < 32
    np.testing.assert_array_equal(_inference(layer, IMAGES), IMAGES)


def test_arguments_refused_as_keras_does():
    for make in (lambda: L.RandomGaussianBlur(kernel_size=4),
                 lambda: L.RandomGaussianBlur(kernel_size=(3, 2)),
                 lambda: L.RandomGaussianBlur(sigma=1.5), lambda: L.RandomGaussianBlur(2.0)):
        with pytest.raises(gc.GraphcError):
            make()
    config = L.RandomGaussianBlur(0.5, kernel_size=5).get_config()
    assert config["factor"] == [0.0, 0.5] and config["kernel_size"] == [5, 5]
    assert config["sigma"] == [0.0, 1.0]
