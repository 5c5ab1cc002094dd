"""gk.ops.image.affine_transform against a per-pixel numpy loop of the same rule (the source
point of each output pixel, its nearest or bilinear neighbours, each fill mode), projective
terms, one transform for the batch, run-time batch sizes; keras_ops_parity.py compares it
with Keras 3."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(53)
IMAGES = rng.normal(size=(3, 5, 7, 2)).astype("float32")
# (no source point exactly half-way between cells: float32 and float64 could round apart)
TRANSFORMS = np.array([[0.8, -0.5, 1.2, 0.45, 0.9, -0.8, 0.0, 0.0],
                       [1.9, 0.3, -3.13, -0.2, 1.6, -1.37, 0.0, 0.0],
                       [1.0, 0.1, 0.3, 0.05, 1.1, 0.2, 0.03, -0.04]], np.float32)


def _source(index, n, mode):
    """Where an integer neighbour index reads, or None for constant's outside."""
    if 0 <= index < n:
        return index
    if mode == "constant":
        return None
    if mode == "nearest":
        return min(max(index, 0), n - 1)
    if mode == "wrap":
        return index % n
    if mode == "mirror":
        period = 2 * (n - 1)
        index %= period
        return index if index < n else period - index
    period = 2 * n  # reflect: the edge cell repeated
    index %= period
    return index if index < n else period - 1 - index


def _np_affine(x, t, interpolation, mode, fill):
    b, h, w, c = x.shape
    src = np.zeros((2, b, h, w), np.float64)
    for n in range(b):
        a0, a1, a2, b0, b1, b2, c0, c1 = t[n].astype(np.float64)
        for y in range(h):
            for xx in range(w):
                k = c0 * xx + c1 * y + 1
                src[:, n, y, xx] = (a0 * xx + a1 * y + a2) / k, (b0 * xx + b1 * y + b2) / k
    return _np_sample(x, src[0], src[1], interpolation, mode, fill)


def _np_sample(x, src_x, src_y, interpolation, mode, fill):
    """Images x read at the points (src_x, src_y) (batch, h, w), one pixel at a time."""
    b, h, w, c = x.shape
    out = np.zeros(x.shape, np.float64)
    for n in range(b):
        for y in range(h):
            for xx in range(w):
                sx, sy = src_x[n, y, xx], src_y[n, y, xx]
                if interpolation == "nearest":
                    taps_y = [(int(np.sign(sy) * np.floor(abs(sy) + 0.5)), 1.0)]
                    taps_x = [(int(np.sign(sx) * np.floor(abs(sx) + 0.5)), 1.0)]
                else:
                    fy, fx = np.floor(sy), np.floor(sx)
                    taps_y = [(int(fy), 1 - (sy - fy)), (int(fy) + 1, sy - fy)]
                    taps_x = [(int(fx), 1 - (sx - fx)), (int(fx) + 1, sx - fx)]
                for iy, wy in taps_y:
                    for ix, wx in taps_x:
                        ry, rx = _source(iy, h, mode), _source(ix, w, mode)
                        v = fill if ry is None or rx is None else x[n, ry, rx]
                        out[n, y, xx] += wy * wx * v
    return out


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_numpy_for_every_fill_mode(interpolation):
    inp = gc.placeholder(gc.float32, (None, 5, 7, 2))
    for mode in ("constant", "nearest", "wrap", "mirror", "reflect"):
        op = gk.ops.image.affine_transform(inp, TRANSFORMS, interpolation, mode, -0.75)
        np.testing.assert_allclose(gc.function([inp], op)(IMAGES),
                                   _np_affine(IMAGES, TRANSFORMS, interpolation, mode, -0.75),
                                   rtol=1e-4, atol=1e-5, err_msg=mode)


def test_one_transform_for_the_batch_and_the_identity():
    inp = gc.placeholder(gc.float32, (None, 5, 7, 2))
    one = gc.function([inp], gk.ops.image.affine_transform(inp, TRANSFORMS[1]))(IMAGES)
    np.testing.assert_allclose(
        one, _np_affine(IMAGES, np.repeat(TRANSFORMS[1:2], 3, 0), "bilinear", "constant", 0),
        rtol=1e-4, atol=1e-5)
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)
    np.testing.assert_array_equal(gk.ops.convert_to_numpy(
        gk.ops.image.affine_transform(IMAGES[0], identity, "nearest")), IMAGES[0])
    for bad in (dict(interpolation="bicubic"), dict(fill_mode="edge")):
        with pytest.raises(gc.GraphcError):
            gk.ops.image.affine_transform(IMAGES, identity, **bad)
    with pytest.raises(gc.GraphcError):
        gk.ops.image.affine_transform(IMAGES, identity[:6])
