"""Resampling along one axis (nearest or linear), as a composition of gathers and a blend:
the shared body of ONNX's Resize and Keras's ops.image.resize / Resizing."""
import numpy as np

from ..ir import dtypes
from .shape import gather
from .sources import constant

__all__ = ["resize_axis", "source_coords", "nearest_index"]


def source_coords(mode, out, size, scale):
    """Where each of `out` output samples sits in the input's `size` samples (ONNX's
    coordinate_transformation_mode names), or None for an unknown mode."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if mode == "align_corners":
        return np.zeros(out) if out == 1 else x * (size - 1) / (out - 1)
    if mode == "asymmetric":
        return x / scale
    if mode == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        center = size / 2
        return center * (1 - adjustment) + (x + 0.5) / scale - 0.5
    return None


def nearest_index(coords, rule):
    """The input sample each coordinate takes by ONNX's nearest_mode `rule`, or None."""
    frac = coords - np.floor(coords)
    if rule == "round_prefer_floor":
        return np.where(frac == 0.5, np.floor(coords), np.round(coords))
    if rule == "round_prefer_ceil":
        return np.where(frac == 0.5, np.ceil(coords), np.round(coords))
    if rule == "floor":
        return np.floor(coords)
    if rule == "ceil":
        return np.ceil(coords)
    return None


def resize_axis(x, axis, out, mode="linear", coordinates="half_pixel",
                nearest="round_prefer_floor", scale=None):
    """x resampled to `out` samples along `axis` (a static size); coordinates outside the
    input clamp to its edge samples. Raises ValueError for an unknown mode or rule."""
    size = x.shape[axis]
    scale = out / size if scale is None else scale
    coords = source_coords(coordinates, out, size, scale)
    if coords is None:
        raise ValueError(f"unknown coordinate transformation {coordinates!r}")
    if mode == "nearest":
        idx = nearest_index(coords, nearest)
        if idx is None:
            raise ValueError(f"unknown nearest rule {nearest!r}")
        idx = np.clip(idx, 0, size - 1).astype(np.int64)
        return gather(x, constant(idx, dtype=dtypes.int64), axis)
    if mode not in ("linear", "bilinear"):
        raise ValueError(f"unknown resize mode {mode!r}")
    c = np.clip(coords, 0, size - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    shape = [1] * x.rank
    shape[axis] = out
    w = constant((c - i0).astype(x.dtype.np).reshape(shape), dtype=x.dtype)
    y0 = gather(x, constant(i0, dtype=dtypes.int64), axis)
    y1 = gather(x, constant(i1, dtype=dtypes.int64), axis)
    return y0 + (y1 - y0) * w
