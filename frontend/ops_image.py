"""gk.ops.image: the image ops of keras.ops.image that are simple compositions, on
channels-last images (batch, height, width, channels) or one image (height, width,
channels): rgb_to_grayscale, rgb_to_hsv, hsv_to_rgb, gaussian_blur, affine_transform, crop_images,
pad_images, extract_patches, and resize (nearest and bilinear). The other resampling ones
(bicubic, perspective transforms, map_coordinates, ...) are not here yet."""
import numpy as np

import graphc as gc
from graphc.errors import GraphcError

from graphc.ops.resize import resize_axis

from . import ops as _o

__all__ = ["rgb_to_grayscale", "rgb_to_hsv", "hsv_to_rgb", "gaussian_blur", "affine_transform",
           "crop_images", "pad_images", "extract_patches", "resize"]


def _channels_last(data_format, who):
    if data_format not in (None, "channels_last"):
        raise GraphcError(f"gk.ops.image.{who} takes channels_last images")


def rgb_to_grayscale(images, data_format=None):
    """ITU-R 601 luma, 0.2989 R + 0.5870 G + 0.1140 B, as a single channel."""
    _channels_last(data_format, "rgb_to_grayscale")
    x = _o._t(images)
    if x.shape[-1] == 1:
        return x
    xf = x if x.dtype.is_float else gc.cast(x, gc.float32)
    weights = gc.cast(gc.constant(np.array([0.2989, 0.5870, 0.1140], np.float32)), xf.dtype)
    gray = gc.expand_dims(gc.sum(xf * weights, axis=-1), -1)
    return gray if x.dtype.is_float else gc.cast(gray, x.dtype)


def _float_planes(images, who):
    x = _o._t(images)
    if not x.dtype.is_float:
        raise GraphcError(f"gk.ops.image.{who}: images must be floats, got {x.dtype}")
    if x.ndim not in (3, 4):
        raise GraphcError(f"gk.ops.image.{who}: images must be of rank 3 or 4, got shape "
                          f"{tuple(x.shape)}")
    return x[..., 0], x[..., 1], x[..., 2]


def rgb_to_hsv(images, data_format=None):
    """Hue, saturation and value, each in [0, 1] for RGB in [0, 1] (Keras's formulas: hue
    0 where the pixel is grey, saturation 0 where it is black; any scale of RGB gives the
    same hue and saturation, and value in that scale)."""
    _channels_last(data_format, "rgb_to_hsv")
    x = _o._t(images)
    # values within float32's epsilon of 0 count as 0, as in Keras
    r, g, b = (gc.where(gc.abs(p) < float(np.finfo(np.float32).eps), 0.0, p)
               for p in _float_planes(x, "rgb_to_hsv"))
    value = gc.maximum(gc.maximum(r, g), b)
    spread = value - gc.minimum(gc.minimum(r, g), b)
    saturation = gc.where(value > 0.0, spread / gc.where(value > 0.0, value, 1.0), 0.0)
    norm = 1.0 / (6.0 * gc.where(spread > 0.0, spread, 1.0))
    hue = gc.where(value == g, norm * (b - r) + 2.0 / 6.0, norm * (r - g) + 4.0 / 6.0)
    hue = gc.where(value == r, norm * (g - b), hue)
    hue = gc.where(spread > 0.0, hue, 0.0) + gc.cast(hue < 0.0, x.dtype)
    return gc.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(images, data_format=None):
    """RGB of hue (taken modulo 1), saturation and value, the inverse of rgb_to_hsv."""
    _channels_last(data_format, "hsv_to_rgb")
    hue, saturation, value = _float_planes(images, "hsv_to_rgb")
    dh = gc.mod(hue, 1.0) * 6.0
    shares = (gc.abs(dh - 3.0) - 1.0, 2.0 - gc.abs(dh - 2.0), 2.0 - gc.abs(dh - 4.0))
    return gc.stack([value * (1.0 - saturation + saturation * gc.clip(d, 0.0, 1.0))
                     for d in shares], axis=-1)


def _blur_axis(x, axis, size, sigma, reach=None):
    """x convolved along axis with the normalised Gaussian of size taps and deviation sigma
    (a number or a scalar tensor), zeros beyond the border, as a sum of shifted copies; taps
    further than reach (a scalar tensor) from the centre dropped, for kernels whose size is
    only known at run time."""
    offsets = np.arange(size, dtype=np.float32) - (size - 1) / 2
    taps = [gc.exp(-0.5 * gc.square(float(o) / sigma)) if isinstance(sigma, gc.Tensor)
            else float(np.exp(-0.5 * (o / sigma) ** 2)) for o in offsets]
    if reach is not None:
        taps = [gc.where(reach >= abs(float(o)), tap, 0.0) for o, tap in zip(offsets, taps)]
    total = sum(taps)
    before = (size - 1) // 2
    padded = gc.pad(x, [(0, 0)] * axis + [(before, size - 1 - before)]
                    + [(0, 0)] * (x.ndim - axis - 1))
    lead = (slice(None),) * axis
    # tap i reads the padded cells i .. i + length - 1 (end counted from the back: run-time sizes)
    return sum(padded[lead + (slice(i, i - size + 1 or None),)] * (tap / total)
               for i, tap in enumerate(taps))


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Each channel convolved with Keras's Gaussian kernel, zero-padded to the same size:
    kernel_size[0] taps of deviation sigma[0] across the width and kernel_size[1] of sigma[1]
    down the height (Keras's order); sigma may hold scalar tensors."""
    _channels_last(data_format, "gaussian_blur")
    x = _o._t(images)
    x = x if x.dtype.is_float else gc.cast(x, gc.float32)
    if x.ndim not in (3, 4):
        raise GraphcError(f"gk.ops.image.gaussian_blur: images must be of rank 3 or 4, got "
                          f"shape {tuple(x.shape)}")
    (size_w, size_h), (sigma_w, sigma_h) = tuple(kernel_size), tuple(sigma)
    return _blur_axis(_blur_axis(x, x.ndim - 3, int(size_h), sigma_h), x.ndim - 2, int(size_w),
                      sigma_w)


def _mirror(index, size):
    period = size - 1
    return gc.abs(gc.mod(index + period, 2.0 * period) - period) if period else index * 0.0


# where a neighbour index outside [0, size) reads from (scipy's / JAX's map_coordinates modes)
_FILL_MODES = {
    "constant": lambda i, n: gc.clip(i, 0.0, n - 1.0),  # read anywhere; replaced by fill_value
    "nearest": lambda i, n: gc.clip(i, 0.0, n - 1.0),
    "wrap": lambda i, n: gc.mod(i, float(n)),
    "mirror": _mirror,
    "reflect": lambda i, n: gc.floor((_mirror(2.0 * i + 1.0, 2 * n + 1) - 1.0) / 2.0),
}


def _taps(coordinate, interpolation):
    """(index, weight) pairs of a coordinate: its rounding (half away from zero), or the two
    cells around it with linear weights."""
    if interpolation == "nearest":
        return [(gc.sign(coordinate) * gc.floor(gc.abs(coordinate) + 0.5), 1.0)]
    low = gc.floor(coordinate)
    return [(low, 1.0 - (coordinate - low)), (low + 1.0, coordinate - low)]


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Each output pixel (x, y) read at the input point ((a0 x + a1 y + a2) / k, (b0 x + b1 y +
    b2) / k), k = c0 x + c1 y + 1, from transform [a0, a1, a2, b0, b1, b2, c0, c1] (one for
    all images or one per image; Keras on JAX takes k as 1), by nearest or bilinear
    interpolation of the neighbours; neighbours outside the image read per fill_mode
    (constant: fill_value, nearest, wrap, mirror, reflect)."""
    _channels_last(data_format, "affine_transform")
    if interpolation not in ("nearest", "bilinear") or fill_mode not in _FILL_MODES:
        raise GraphcError(f"gk.ops.image.affine_transform: interpolation must be nearest or "
                          f"bilinear and fill_mode one of {sorted(_FILL_MODES)}, got "
                          f"{interpolation!r}, {fill_mode!r}")
    x = _o._t(images)
    x = x if x.dtype.is_float else gc.cast(x, gc.float32)
    single = x.ndim == 3
    x = gc.expand_dims(x, 0) if single else x
    t = gc.cast(_o._t(transform), x.dtype)
    t = gc.expand_dims(t, 0) if t.ndim == 1 else t
    if x.ndim != 4 or t.ndim != 2 or t.shape[-1] != 8:
        raise GraphcError(f"gk.ops.image.affine_transform: images (batch, h, w, c) and "
                          f"transforms (8,) or (batch, 8), got {tuple(x.shape)} and "
                          f"{tuple(t.shape)}")
    h, w = _hw(x)
    ys = gc.constant(np.arange(h, dtype=np.float32).reshape(1, h, 1))
    xs = gc.constant(np.arange(w, dtype=np.float32).reshape(1, 1, w))
    a0, a1, a2, b0, b1, b2, c0, c1 = (gc.reshape(t[:, i], (-1, 1, 1)) for i in range(8))
    k = c0 * xs + c1 * ys + 1.0
    out = _sample(x, (a0 * xs + a1 * ys + a2) / k, (b0 * xs + b1 * ys + b2) / k, interpolation,
                 fill_mode, fill_value)
    return out[0] if single else out


def _sample(x, src_x, src_y, interpolation, fill_mode, fill_value):
    """Images x (batch, h, w, c) read at the points (src_x, src_y) (batch, h, w) by nearest
    or bilinear interpolation, neighbours outside the image read per fill_mode."""
    h, w = _hw(x)
    # each image's first row in the (batch * h * w, c) flattening
    first = gc.reshape(gc.cumsum(gc.ones_like(x[:, 0, 0, 0])) - 1.0, (-1, 1, 1)) * float(h * w)
    flat = gc.reshape(x, (-1, x.shape[-1]))
    fix = _FILL_MODES[fill_mode]
    out = 0.0
    for iy, wy in _taps(src_y, interpolation):
        for ix, wx in _taps(src_x, interpolation):
            row = first + fix(iy, h) * float(w) + fix(ix, w)
            value = gc.gather(flat, gc.cast(row, gc.int32), axis=0)
            if fill_mode == "constant":
                inside = gc.logical_and(gc.logical_and(iy >= 0.0, iy <= h - 1.0),
                                        gc.logical_and(ix >= 0.0, ix <= w - 1.0))
                value = gc.where(gc.expand_dims(inside, -1), value, float(fill_value))
            out = out + gc.expand_dims(wy * wx, -1) * value
    return out


def _square_to_quad(p):
    """The 3x3 homography (rows of (batch,) tensors) taking the unit square's corners (0, 0),
    (1, 0), (1, 1), (0, 1) to the quad p (four (x, y) pairs, in that order); Heckbert's closed
    form, which needs no linear solve."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    det = dx1 * dy2 - dx2 * dy1
    g, h = (sx * dy2 - dx2 * sy) / det, (dx1 * sy - sx * dy1) / det
    return [[x1 - x0 + g * x1, x3 - x0 + h * x3, x0],
            [y1 - y0 + g * y1, y3 - y0 + h * y3, y0],
            [g, h, g * 0.0 + 1.0]]


def _adjugate(m):
    """The adjugate of a 3x3 matrix: its inverse up to a scale, which a homography ignores."""
    def minor(r, c):
        (a, b), (d, e) = ([m[i][j] for j in range(3) if j != c] for i in range(3) if i != r)
        return a * e - b * d
    return [[minor(c, r) * (1.0 - 2.0 * ((r + c) % 2)) for c in range(3)] for r in range(3)]


def _product(a, b):
    return [[sum(a[r][k] * b[k][c] for k in range(3)) for c in range(3)] for r in range(3)]


def homography(start_points, end_points):
    """Keras's compute_homography_matrix: (batch, 8) output-to-input maps that take each image's
    end_points (corners top-left, top-right, bottom-left, bottom-right, as (x, y)) to its
    start_points, in affine_transform's [a0, a1, a2, b0, b1, b2, c0, c1] form."""
    quads = []
    for points in (start_points, end_points):
        q = gc.cast(_o._t(points), gc.float32)
        q = gc.expand_dims(q, 0) if q.ndim == 2 else q
        if q.ndim != 3 or tuple(q.shape[1:]) != (4, 2):
            raise GraphcError(f"gk.ops.image.perspective_transform: points must be (4, 2) or "
                              f"(batch, 4, 2), got {tuple(q.shape)}")
        # Keras lists the bottom corners left then right; the square's order goes round
        quads.append(_square_to_quad([(q[:, i, 0], q[:, i, 1]) for i in (0, 1, 3, 2)]))
    m = _product(quads[0], _adjugate(quads[1]))
    return gc.stack([m[r][c] / m[2][2] for r, c in ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                     (1, 2), (2, 0), (2, 1))], axis=-1)


def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Keras's perspective_transform: each image warped so that its start_points land on its
    end_points (both (4, 2) or (batch, 4, 2)), read by affine_transform with fill_mode
    constant."""
    return affine_transform(images, homography(start_points, end_points), interpolation,
                            "constant", fill_value, data_format)


def _sides(before, after, target, size, what):
    """(before, after) from two of before, after and the target size (Keras's rule)."""
    if [before, after, target].count(None) != 1:
        raise GraphcError(f"give exactly two of the {what}s before and after and the target "
                          f"size, got {before}, {after}, {target}")
    if before is None:
        before = target - after - size if what == "padding" else size - after - target
    if after is None:
        after = target - before - size if what == "padding" else size - before - target
    if min(before, after) < 0:
        raise GraphcError(f"the {what} does not fit images of size {size}")
    return int(before), int(after)


def _hw(x):
    h, w = x.shape[-3], x.shape[-2]
    if not (isinstance(h, int) and isinstance(w, int)):
        raise GraphcError("gk.ops.image needs images of known height and width")
    return h, w


def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    """Zeros around the images, to target_height x target_width or by the given sides."""
    _channels_last(data_format, "pad_images")
    x = _o._t(images)
    h, w = _hw(x)
    rows = _sides(top_padding, bottom_padding, target_height, h, "padding")
    cols = _sides(left_padding, right_padding, target_width, w, "padding")
    return gc.pad(x, [(0, 0)] * (x.ndim - 3) + [rows, cols, (0, 0)])


def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    """The target_height x target_width window (or what the given sides leave)."""
    _channels_last(data_format, "crop_images")
    x = _o._t(images)
    h, w = _hw(x)
    top, bottom = _sides(top_cropping, bottom_cropping, target_height, h, "cropping")
    left, right = _sides(left_cropping, right_cropping, target_width, w, "cropping")
    return x[..., top:h - bottom, left:w - right, :]


def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Each size[0] x size[1] patch flattened into the channel axis (row, column, channel
    order, as Keras), by a convolution with an identity kernel."""
    _channels_last(data_format, "extract_patches")
    x = _o._t(images)
    ph, pw = (size, size) if isinstance(size, int) else tuple(size)
    strides = (ph, pw) if strides is None else strides
    c = x.shape[-1]
    kernel = np.eye(ph * pw * c, dtype=np.float32).reshape(ph, pw, c, ph * pw * c)
    single = x.ndim == 3
    xb = gc.expand_dims(x, 0) if single else x
    out = _o.conv(xb, gc.cast(gc.constant(kernel), xb.dtype), strides, padding,
                  dilation_rate=dilation_rate)
    return gc.squeeze(out, axis=0) if single else out


def _aspect_window(h, w, th, tw, pad):
    """Keras's (rows, cols) of the window with the target's aspect ratio: the largest inside
    the image (crop) or the smallest around it (pad)."""
    rows, cols = int(float(w * th) / tw), int(float(h * tw) / th)
    if pad:
        return max(h, rows), max(w, cols)
    return max(min(h, rows), 1), max(min(w, cols), 1)


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Images resampled to size = (height, width) as Keras 3 (JAX) does: half-pixel centers,
    "bilinear" blends the two nearest rows/columns (edges clamp), "nearest" takes row
    floor((i + 0.5) * in / out). crop_to_aspect_ratio first takes the central window of the
    target's aspect ratio; pad_to_aspect_ratio first pads with fill_value to it. antialias
    is refused when it would matter (bilinear downsampling)."""
    _channels_last(data_format, "resize")
    if interpolation not in ("bilinear", "nearest"):
        raise GraphcError(f"gk.ops.image.resize supports interpolation 'bilinear' and "
                          f"'nearest', got {interpolation!r}")
    if fill_mode != "constant":
        raise GraphcError(f"gk.ops.image.resize: only fill_mode='constant', got {fill_mode!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise GraphcError("only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True")
    th, tw = (int(s) for s in size)
    x = _o._t(images)
    if x.ndim not in (3, 4):
        raise GraphcError(f"gk.ops.image.resize takes rank 3 or 4 images, got shape {x.shape}")
    h, w = _hw(x)
    if antialias and interpolation == "bilinear" and (th < h or tw < w):
        raise GraphcError("gk.ops.image.resize: antialias=True when downsampling is not "
                          "supported")
    if crop_to_aspect_ratio or pad_to_aspect_ratio:
        rows, cols = _aspect_window(h, w, th, tw, pad_to_aspect_ratio)
        top, left = abs(h - rows) // 2, abs(w - cols) // 2
        if crop_to_aspect_ratio:
            x = x[..., top:top + rows, left:left + cols, :]
        elif top or left:
            # Keras pads one pair of sides only, the taller or the wider
            pads = [(0, 0)] * (x.ndim - 3) + [(top, top), (0, 0) if top else (left, left),
                                              (0, 0)]
            x = gc.pad(x, pads, constant_values=fill_value)
    if not x.dtype.is_float and interpolation != "nearest":
        x = gc.cast(x, gc.float32)
    mode, coords = ("nearest", "tf_half_pixel_for_nn") if interpolation == "nearest" else \
        ("linear", "half_pixel")
    for axis, out in ((x.ndim - 3, th), (x.ndim - 2, tw)):
        if x.shape[axis] != out:
            x = resize_axis(x, axis, out, mode, coords, nearest="floor")
    return x
