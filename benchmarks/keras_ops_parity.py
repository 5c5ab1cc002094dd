"""Parity of gk.ops with keras.ops, and of gk.activations, constraints, regularizers and the
deterministic initializers with Keras's: each case is one expression written once over a
module (Keras's on JAX in another interpreter, or graphc.frontend's over graphc placeholders
fed the same arrays) and compared output by output. NaN and infinities must sit at the same
places; the finite values must agree within the tolerance. One JSON line per case, then a
summary line.

Usage:
    GRAPHC_PEER_PYTHON=/work/peervenv/bin/python python benchmarks/keras_ops_parity.py \
        [--only SUBSTRING] [--tolerance 1e-5]
"""

import numpy as np

from _parity import peer_run, run, script_main


def inputs():
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2.5, 3.0, -1e-30, 7.25],
                       np.float32)
    withnan = rng.normal(size=(3, 5)).astype("float32")
    withnan[0, 1] = withnan[2, 4] = withnan[1, :].min() * 0 + np.nan
    return {"x": rng.normal(size=(3, 5)).astype("float32"),
            "y": rng.normal(size=(3, 5)).astype("float32"),
            "unit": rng.uniform(-0.98, 0.98, (3, 5)).astype("float32"),
            "wide": (rng.normal(size=(3, 5)) * 40).astype("float32"),
            "pos": rng.uniform(0.1, 3.0, (3, 5)).astype("float32"),
            "big": rng.uniform(1.05, 50.0, (3, 5)).astype("float32"),
            "v": rng.normal(size=(7,)).astype("float32"),
            "w": rng.normal(size=(7,)).astype("float32"),
            "v3": rng.normal(size=(4, 3)).astype("float32"),
            "w3": rng.normal(size=(4, 3)).astype("float32"),
            "sq": rng.normal(size=(4, 4)).astype("float32"),
            "cube": rng.normal(size=(2, 3, 4)).astype("float32"),
            "img": rng.normal(size=(2, 4, 6, 8)).astype("float32"),
            "ints": rng.integers(-9, 10, (3, 5)).astype("int32"),
            "labels": rng.integers(0, 5, (3,)).astype("int32"),
            "classes": rng.integers(0, 6, (3, 4)).astype("int32"),
            "flatidx": rng.integers(0, 60, (7,)).astype("int32"),
            "sorted": np.sort(rng.normal(size=(9,))).astype("float32"),
            "special": special, "nan": withnan,
            "q": rng.normal(size=(2, 5, 3, 4)).astype("float32"),
            "k": rng.normal(size=(2, 6, 3, 4)).astype("float32"),
            "val": rng.normal(size=(2, 6, 3, 4)).astype("float32"),
            "sig": rng.normal(size=(2, 20)).astype("float32"),
            **_derived(rng)}


def _derived(rng):
    """Arrays that the cases would otherwise make with numpy methods, which graphc tensors
    do not have."""
    v3, w3 = (rng.normal(size=(4, 3)).astype("float32") for _ in range(2))
    img = rng.normal(size=(2, 4, 6, 8)).astype("float32")
    return {"x_t4": rng.normal(size=(4, 3)).astype("float32"), "v3t": v3.T.copy(),
            "w3t": w3.T.copy(),
            "img_cf": img.transpose(0, 3, 1, 2).copy(),
            "mean8": rng.normal(size=(8,)).astype("float32"),
            "var8": rng.uniform(0.5, 2.0, (8,)).astype("float32"),
            "off8": rng.normal(size=(8,)).astype("float32"),
            "scale8": rng.normal(size=(8,)).astype("float32"),
            "bias": rng.normal(size=(2, 3, 5, 6)).astype("float32"),
            "mask": np.arange(6)[None, None, None, :] < 4,
            "upd": np.full((1, 2, 2), 5.0, np.float32),
            "dw": rng.normal(size=(3, 2, 8, 2)).astype("float32"),
            "seg": np.array([0, 2, 2], np.int32), "seg3": np.array([2, 0], np.int32),
            "seg7": np.array([0, 0, 1, 4, 4, 4, 1], np.int32),
            "img3": rng.uniform(0, 1, (2, 4, 5, 3)).astype("float32"),
            "dw1": rng.normal(size=(3, 4, 1)).astype("float32"),
            "pw": rng.normal(size=(1, 1, 16, 5)).astype("float32"),
            "ct": rng.normal(size=(3, 2, 5, 8)).astype("float32"),
            "ct1": rng.normal(size=(2, 3, 4)).astype("float32"),
            "vol": rng.normal(size=(2, 4, 5, 3, 2)).astype("float32"),
            "k3": rng.normal(size=(2, 3, 2, 2, 3)).astype("float32"),
            "ct3": rng.normal(size=(2, 2, 3, 3, 2)).astype("float32"),
            "absv": np.abs(rng.normal(size=(7,))).astype("float32"),
            # CTC: labels padded with 0 (a repeat, a full row), lengths of labels and steps
            "ctc_logits": (rng.normal(size=(4, 9, 5)) * 2).astype("float32"),
            "ctc_labels": np.array([[1, 2, 2, 0], [3, 0, 0, 0], [4, 4, 4, 1], [1, 2, 3, 4]],
                                   np.int32),
            "ctc_tl": np.array([3, 1, 4, 2], np.int32), "ctc_ol": np.array([9, 5, 9, 3], np.int32),
            # equal logits: which class and which path wins a tie
            "ctc_ties": np.round(rng.normal(size=(4, 9, 5))).astype("float32")}


def _fns(*names, arg="x"):
    """{name: ops.name(d[arg])} for unary ops."""
    return {f"{n}({arg})": (lambda n: lambda o, d: [getattr(o, n)(d[arg])])(n) for n in names}


# one per image: a rotation by 0.4 rad about (1, 2) with a shift, and a zoom out past the
# border (Keras on JAX ignores c0 and c1, so they are 0)
_AFFINE = np.array([[0.921, -0.389, 0.9, 0.389, 0.921, -0.6, 0, 0],
                    [1.7, 0.0, -2.3, 0.0, 1.45, -1.1, 0, 0]], np.float32)
# corners of a (4, 5) image (top-left, top-right, bottom-left, bottom-right) and two warps
_CORNERS = np.array([[0, 0], [4, 0], [0, 3], [4, 3]], np.float32)
_WARPED = np.array([[[0.3, -0.2], [4.6, 0.4], [-0.5, 2.7], [3.8, 3.9]],
                    [[-0.8, 0.5], [3.7, -0.3], [0.2, 3.4], [4.9, 2.6]]], np.float32)

CASES = {
    **_fns("arctan", "arcsinh", "cbrt", "deg2rad", "rad2deg", "fabs", "trunc", "signbit",
           "erfc", "sinc", "isneginf", "isposinf", "isreal", "real", "imag", "conj",
           "conjugate", "copy", "nan_to_num", "sort", "argsort", "flip", "fliplr", "flipud",
           "rot90", "median", "ptp", "cumprod", "diff", "celu", "hard_shrink", "hard_tanh",
           "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
           "tanh_shrink", "diagonal", "trace", "average", "corrcoef", "unstack", "array",
           "empty_like", "angle"),
    **_fns("arctan", "arcsinh", "cbrt", "trunc", "signbit", "isneginf", "isposinf",
           "nan_to_num", "sinc", "fabs", "angle", "erfc", arg="special"),
    **_fns("arctan", "arcsinh", "sinc", "sort", "cumprod", arg="wide"),
    **_fns("arcsin", "arccos", "arctanh", "erfinv", arg="unit"),
    "erfinv specials": lambda o, d: [o.erfinv(o.array([-1.0, 1.0, 0.0, -0.0, 0.999, -0.9999,
                                                       1e-4, 2.0, -1.5]))],
    **_fns("arccosh", arg="big"),
    **_fns("nansum", "nanmean", "nanmax", "nanmin", "nanprod", "nanvar", "nanstd",
           "nancumsum", "nancumprod", "nanargmax", "nanargmin", arg="nan"),
    **_fns("diag", "diagflat", "sort", "argsort", "trapezoid", "vander", arg="v"),
    **_fns("diag", "diagflat", "trace", "diagonal", arg="sq"),
    **_fns("trunc", "signbit", "cumprod", "flip", "diff", "nan_to_num", arg="ints"),
    "arctan2(x, y)": lambda o, d: [o.arctan2(d["x"], d["y"])],
    "arctan2 specials": lambda o, d: [o.arctan2(d["special"][:, None], d["special"][None, :])],
    "hypot": lambda o, d: [o.hypot(d["x"], d["y"]), o.hypot(d["special"], d["special"][::-1])],
    "logaddexp": lambda o, d: [o.logaddexp(d["wide"], d["x"]),
                               o.logaddexp(d["special"], d["special"][::-1])],
    "logaddexp2": lambda o, d: [o.logaddexp2(d["wide"], d["x"])],
    "fmod floats": lambda o, d: [o.fmod(d["wide"], d["pos"])],
    "fmod ints": lambda o, d: [o.fmod(d["ints"], o.array([[3, -4, 5, -2, 7]], "int32"))],
    "bitwise": lambda o, d: [o.bitwise_and(d["ints"], 6), o.bitwise_or(d["ints"], d["ints"][::-1]),
                             o.bitwise_xor(d["ints"], -3), o.bitwise_invert(d["ints"]),
                             o.bitwise_not(d["ints"]), o.bitwise_left_shift(d["ints"], 2),
                             o.bitwise_right_shift(d["ints"], 1)],
    "shifts": lambda o, d: [o.left_shift(d["ints"], o.array([0, 1, 5, 31, 32], "int32")),
                            o.right_shift(d["ints"], o.array([0, 1, 3, 31, 40], "int32"))],
    "fmax fmin": lambda o, d: [o.fmax(d["special"], d["special"][::-1]),
                               o.fmin(d["special"], d["special"][::-1])],
    "heaviside": lambda o, d: [o.heaviside(d["special"], 0.5)],
    "ldexp": lambda o, d: [o.ldexp(d["x"], d["ints"])],
    "nan_to_num values": lambda o, d: [o.nan_to_num(d["special"], nan=1.0, posinf=2.0,
                                                    neginf=-3.0)],
    "saturate_cast": lambda o, d: [o.saturate_cast(d["wide"] * 1e9, "int32"),
                                   o.saturate_cast(d["special"][:4] * 1e3, "int32")],
    "identity empty tri": lambda o, d: [o.identity(4), o.empty((2, 3)), o.tri(3, 5, 1),
                                        o.tri(4, k=-1)],
    "full_like": lambda o, d: [o.full_like(d["x"], 2.5), o.full_like(d["ints"], 7)],
    "logspace geomspace": lambda o, d: [o.logspace(0.0, 2.0, 7), o.logspace(1.0, 3.0, 4, False,
                                                                            base=2),
                                        o.geomspace(1.0, 1000.0, 5)],
    "windows": lambda o, d: [o.bartlett(9), o.blackman(8), o.hamming(7), o.hanning(6),
                             o.kaiser(9, 3.0)],
    "meshgrid xy ij": lambda o, d: list(o.meshgrid(d["v"][:3], d["w"][:4])) +
    list(o.meshgrid(d["v"][:3], d["w"][:4], indexing="ij")),
    "diag k": lambda o, d: [o.diag(d["v"], 2), o.diag(d["v"], -1), o.diag(d["sq"], 1),
                            o.diag(d["sq"], -2), o.diagflat(d["x"], 1)],
    "diagonal axes offset": lambda o, d: [o.diagonal(d["cube"], 1, 1, 2),
                                          o.diagonal(d["cube"], -1, 0, 2),
                                          o.trace(d["cube"], 0, 2, 1)],
    "flip axes": lambda o, d: [o.flip(d["cube"], (0, 2)), o.flip(d["cube"], -1)],
    "rot90 k axes": lambda o, d: [o.rot90(d["cube"], k, axes) for k, axes in
                                  [(1, (1, 2)), (2, (0, 1)), (3, (2, 0)), (-1, (0, 1))]],
    "roll": lambda o, d: [o.roll(d["x"], 2), o.roll(d["x"], -1, 1), o.roll(d["cube"], (1, 3),
                                                                           (0, 2))],
    "append": lambda o, d: [o.append(d["x"], d["y"]), o.append(d["x"], d["y"], axis=0),
                            o.append(d["x"], d["y"], axis=1)],
    "stacks": lambda o, d: [o.hstack([d["v"], d["w"]]), o.vstack([d["v"], d["w"]]),
                            o.dstack([d["x"], d["y"]]), o.hstack([d["cube"], d["cube"]])],
    "splits": lambda o, d: list(o.array_split(d["v"], 3)) + list(o.array_split(d["x"], 4, 1))
    + list(o.hsplit(d["cube"], 3)) + list(o.vsplit(d["sq"], 2)) + list(o.dsplit(d["cube"], 2)),
    "unstack axis": lambda o, d: list(o.unstack(d["cube"], axis=2)),
    "average weights": lambda o, d: [o.average(d["x"], axis=1, weights=d["pos"][0]),
                                     o.average(d["x"], weights=d["pos"]),
                                     o.average(d["x"], axis=0)],
    "ptp axis": lambda o, d: [o.ptp(d["cube"], axis=1), o.ptp(d["cube"], axis=(0, 2),
                                                               keepdims=True)],
    "diff n axis": lambda o, d: [o.diff(d["cube"], 2, 1), o.diff(d["x"], 1, 0)],
    "cross": lambda o, d: [o.cross(d["v3"], d["w3"]), o.cross(d["v3"][:, :2], d["w3"]),
                           o.cross(d["v3"][:, :2], d["w3"][:, :2]),
                           o.cross(d["v3t"], d["w3t"], axis=0)],
    "inner vdot tensordot": lambda o, d: [o.inner(d["x"], d["y"]), o.vdot(d["x"], d["y"]),
                                          o.tensordot(d["cube"], d["x_t4"], 1),
                                          o.tensordot(d["cube"], d["cube"], ([0, 2], [0, 2])),
                                          o.inner(d["v"], d["w"])],
    "kron": lambda o, d: [o.kron(d["v3"], d["sq"][:2, :3]), o.kron(d["v"], d["w"][:3])],
    "digitize searchsorted": lambda o, d: [o.digitize(d["x"], d["sorted"]),
                                           o.searchsorted(d["sorted"], d["v"]),
                                           o.searchsorted(d["sorted"], d["sorted"][2:6],
                                                          side="right"),
                                           o.searchsorted(d["sorted"], d["sorted"][2:6])],
    "sort argsort axis": lambda o, d: [o.sort(d["cube"], axis=0), o.argsort(d["cube"], axis=1),
                                       o.sort(d["ints"]), o.argsort(d["wide"], -1)],
    "quantile": lambda o, d: [o.quantile(d["x"], 0.3), o.quantile(d["cube"], [0.1, 0.5, 0.9],
                                                                   axis=1),
                              o.quantile(d["cube"], 0.25, axis=(0, 2), keepdims=True)]
    + [o.quantile(d["x"], 0.37, axis=1, method=m) for m in ("lower", "higher", "nearest",
                                                             "midpoint")],
    "percentile median": lambda o, d: [o.percentile(d["x"], 40.0, axis=0),
                                       o.percentile(d["v"], [10, 90]),
                                       o.median(d["cube"], axis=2, keepdims=True),
                                       o.median(d["v"])],
    "cumprod axis": lambda o, d: [o.cumprod(d["cube"], axis=1), o.cumprod(d["x"], axis=0)],
    "nan reductions axis": lambda o, d: [o.nansum(d["nan"], axis=1),
                                         o.nanmean(d["nan"], axis=0, keepdims=True),
                                         o.nanmax(d["nan"], axis=1), o.nanmin(d["nan"], 0),
                                         o.nanvar(d["nan"], axis=1), o.nanstd(d["nan"], 0),
                                         o.nanargmax(d["nan"], axis=1),
                                         o.nancumsum(d["nan"], axis=1),
                                         o.nancumprod(d["nan"], axis=0)],
    "isclose allclose": lambda o, d: [o.isclose(d["x"], d["x"] + 1e-6),
                                      o.isclose(d["special"], d["special"]),
                                      o.isclose(d["special"], d["special"], equal_nan=True),
                                      o.isclose(d["x"], d["y"], atol=1.0),
                                      o.allclose(d["x"], d["x"] * 1.000001),
                                      o.allclose(d["x"], d["y"])],
    "isin": lambda o, d: [o.isin(d["ints"], o.array([1, -3, 5, 9], "int32")),
                          o.isin(d["ints"], o.array([1, -3, 5, 9], "int32"), invert=True)],
    "vander": lambda o, d: [o.vander(d["v"], 4), o.vander(d["v"][:4], increasing=True),
                            o.vander(d["ints"][0], 3)],
    "trapezoid": lambda o, d: [o.trapezoid(d["x"]), o.trapezoid(d["x"], dx=0.5, axis=0),
                               o.trapezoid(d["x"], x=d["sorted"][:5]),
                               o.trapezoid(d["v"], x=d["sorted"][:7])],
    "unravel_index": lambda o, d: list(o.unravel_index(d["flatidx"], (3, 4, 5))),
    "select": lambda o, d: [o.select([d["x"] > 1.0, d["x"] < -0.5], [d["x"], d["y"]], 9.0),
                            o.select([d["x"] > 0], [d["y"]])],
    "slice slice_update get_item": lambda o, d: [
        o.slice(d["cube"], (1, 0, 2), (1, 2, 2)),
        o.slice_update(d["cube"], (0, 1, 1), d["upd"]),
        o.get_item(d["cube"], 1), o.get_item(d["x"], (slice(None), slice(1, None, 2)))],
    "outer ops on ints": lambda o, d: [o.cbrt(d["ints"]), o.deg2rad(d["ints"]),
                                       o.hypot(d["ints"], d["ints"])],
    # nn
    "celu alpha": lambda o, d: [o.celu(d["wide"] / 10, alpha=0.5)],
    "glu axis": lambda o, d: [o.glu(d["cube"], axis=2), o.glu(d["img"], axis=1)],
    "shrinks threshold": lambda o, d: [o.hard_shrink(d["x"], 1.0), o.soft_shrink(d["x"], 0.2),
                                       o.threshold(d["x"], 0.3, -7.0),
                                       o.squareplus(d["x"], 2.0)],
    "sparsemax axis": lambda o, d: [o.sparsemax(d["wide"] / 20, axis=0),
                                    o.sparsemax(d["cube"], axis=1)],
    "psnr": lambda o, d: [o.psnr(d["pos"], d["pos"] * 1.1, 3.0)],
    "multi_hot": lambda o, d: [o.multi_hot(d["classes"], 7),
                               o.multi_hot(d["labels"][None], 5)],
    "in_top_k": lambda o, d: [o.in_top_k(d["labels"], d["x"], 1),
                              o.in_top_k(d["labels"], d["x"], 3)],
    "depth_to_space space_to_depth": lambda o, d: [
        o.depth_to_space(d["img"], 2), o.space_to_depth(d["img"], 2),
        o.depth_to_space(d["img_cf"], 2, data_format="channels_first"),
        o.space_to_depth(d["img_cf"], 2, data_format="channels_first")],
    "batch_normalization": lambda o, d: [
        o.batch_normalization(d["img"], d["mean8"], d["var8"], -1, offset=d["off8"],
                              scale=d["scale8"], epsilon=1e-2),
        o.batch_normalization(d["x"], d["x"][0], d["pos"][0], 1)],
    "layer_normalization": lambda o, d: [
        o.layer_normalization(d["x"], gamma=d["y"][0], beta=d["y"][1]),
        o.layer_normalization(d["cube"], axis=-1, epsilon=1e-5)],
    "rms_normalization": lambda o, d: [o.rms_normalization(d["x"], scale=d["y"][0]),
                                       o.rms_normalization(d["cube"], epsilon=1e-3)],
    "dot_product_attention": lambda o, d: [
        o.dot_product_attention(d["q"], d["k"], d["val"]),
        o.dot_product_attention(d["q"][:, :5], d["k"][:, :5], d["val"][:, :5], is_causal=True),
        o.dot_product_attention(d["q"], d["k"], d["val"], scale=0.3,
                                bias=d["bias"], mask=d["mask"])],
    "depthwise_conv separable_conv": lambda o, d: [
        o.depthwise_conv(d["img"], d["dw"]), o.depthwise_conv(d["img"], d["dw"], 2, "same"),
        o.depthwise_conv(d["img"], d["dw"][:2], (1, 2), dilation_rate=(2, 1)),
        o.depthwise_conv(d["cube"], d["dw1"], padding="same"),
        o.separable_conv(d["img"], d["dw"], d["pw"], padding="same")],
    "conv_transpose": lambda o, d: [o.conv_transpose(d["img"], d["ct"], 2),
                                    o.conv_transpose(d["img"], d["ct"], 2, "same"),
                                    o.conv_transpose(d["cube"], d["ct1"], 3)],
    "conv_transpose output_padding dilation 3-D": lambda o, d: [
        o.conv_transpose(d["img"], d["ct"], (2, 3), "same", output_padding=(1, 2)),
        o.conv_transpose(d["img"], d["ct"], 1, "valid", dilation_rate=(2, 1)),
        o.conv_transpose(d["cube"], d["ct1"], 2, "valid", output_padding=1),
        o.conv_transpose(d["vol"], d["ct3"], (2, 1, 2)),
        o.conv_transpose(d["vol"], d["ct3"], 2, "same", output_padding=(1, 0, 1))],
    "adaptive_average_pool adaptive_max_pool": lambda o, d: [
        o.adaptive_average_pool(d["img"], (3, 4)), o.adaptive_max_pool(d["img"], (5, 4)),
        o.adaptive_average_pool(d["vol"], (3, 2, 2)), o.adaptive_max_pool(d["vol"], 2),
        o.adaptive_average_pool(d["cube"], 2), o.adaptive_max_pool(d["cube"], 5)],
    "conv pools 1-D and 3-D": lambda o, d: [
        o.conv(d["vol"], d["k3"]), o.conv(d["vol"], d["k3"], (2, 1, 1), "same"),
        o.conv(d["vol"], d["k3"][:1], 1, "valid", dilation_rate=(1, 2, 1)),
        o.max_pool(d["vol"], 2, 2), o.max_pool(d["vol"], (3, 2, 2), (1, 2, 1), "same"),
        o.average_pool(d["vol"], (2, 3, 2), 1), o.average_pool(d["vol"], 3, 2, "same"),
        o.max_pool(d["cube"], 2, 2), o.average_pool(d["cube"], 3, 1, "same")],
    "segment_max min prod": lambda o, d: [
        o.segment_max(d["x"], d["seg"], 4), o.segment_min(d["cube"], d["seg3"], 3),
        o.segment_prod(d["v"], d["seg7"], 5)],
    "image crop pad grayscale patches": lambda o, d: [
        o.image.rgb_to_grayscale(d["img3"]),
        o.image.crop_images(d["img"], 1, 2, None, None, 2, 3),
        o.image.crop_images(d["img"], None, 1, 1, 2, target_height=2),
        o.image.pad_images(d["img"], 1, 0, None, None, 7, 8),
        o.image.pad_images(d["img3"][0], 0, 2, 1, 1),
        o.image.extract_patches(d["img"], 2), o.image.extract_patches(d["img"], (2, 3), (1, 2)),
        o.image.extract_patches(d["img"], 3, 2, padding="same")],
    "image resize": lambda o, d: [
        o.image.resize(d["img"], (9, 3)), o.image.resize(d["img"], (2, 11), "nearest"),
        o.image.resize(d["img3"][0], (7, 7)),
        o.image.resize(d["img"], (4, 4), crop_to_aspect_ratio=True)],
    "image hsv gaussian_blur": lambda o, d: [
        o.image.rgb_to_hsv(d["img3"]), o.image.rgb_to_hsv(d["img3"][0] * 255.0),
        o.image.hsv_to_rgb(d["img3"]), o.image.hsv_to_rgb(d["img3"] * 3.0 - 1.0),
        # data_format named: Keras 3.15 on JAX reads None as channels_first in gaussian_blur
        o.image.gaussian_blur(d["img"], (3, 5), (0.8, 1.7), data_format="channels_last"),
        o.image.gaussian_blur(d["img3"][0], (5, 1), (2.0, 0.5), data_format="channels_last")],
    "image affine_transform": lambda o, d: [
        o.image.affine_transform(d["img3"], _AFFINE, interpolation, fill_mode, 0.25)
        for interpolation in ("bilinear", "nearest")
        for fill_mode in ("constant", "nearest", "wrap", "mirror", "reflect")]
    + [o.image.affine_transform(d["img3"][0], _AFFINE[1], "bilinear")],
    "image perspective_transform": lambda o, d: [
        o.image.perspective_transform(d["img3"], np.stack([_CORNERS] * 2), _WARPED,
                                      interpolation, 0.25)
        for interpolation in ("bilinear", "nearest")]
    + [o.image.perspective_transform(d["img3"][0], _CORNERS, _WARPED[1])],
    "extract_sequences": lambda o, d: [o.extract_sequences(d["sig"], 5, 3),
                                       o.extract_sequences(d["sig"], 4, 4)],
    "fori_loop while_loop": lambda o, d: [
        o.fori_loop(0, 4, lambda i, v: v * 2.0 + o.cast(i, "float32"), o.array(d["x"])),
        o.while_loop(lambda a, b: o.sum(a) < 50.0, lambda a, b: (a * 1.5 + 1.0, b + 1),
                     (o.array(d["absv"]), o.array(np.int32(0))))[0]],
    "ctc_loss": lambda o, d: [
        o.ctc_loss(d["ctc_labels"], d["ctc_logits"], d["ctc_tl"], d["ctc_ol"]),
        o.ctc_loss(d["ctc_labels"], d["ctc_logits"], d["ctc_tl"], d["ctc_ol"], mask_index=4)],
    "ctc_decode greedy": lambda o, d: [
        *o.ctc_decode(d["ctc_logits"], d["ctc_ol"]),
        *o.ctc_decode(d["ctc_logits"], d["ctc_ol"], merge_repeated=False, mask_index=4),
        *o.ctc_decode(d["ctc_ties"], d["ctc_ol"], mask_index=None)],
    "ctc_decode beam_search": lambda o, d: [
        *o.ctc_decode(d["ctc_logits"], d["ctc_ol"], strategy="beam_search", beam_width=4,
                      top_paths=3),
        *o.ctc_decode(d["ctc_logits"], d["ctc_ol"], strategy="beam_search", mask_index=2),
        *o.ctc_decode(d["ctc_ties"], d["ctc_ol"], strategy="beam_search", beam_width=3,
                      top_paths=2, mask_index=None)],
    "map vectorized_map switch": lambda o, d: [
        o.map(lambda r: o.sum(r * r), o.array(d["x"])),
        o.vectorized_map(lambda r: r[::-1] * 2.0, o.array(d["x"])),
        o.switch(1, [lambda a: a + 1.0, lambda a: a * 3.0, lambda a: -a], o.array(d["x"])),
        o.switch(7, [lambda a: a + 1.0, lambda a: -a], o.array(d["x"]))],
}
# the other modules of functions and small objects, case name "<module>.<what>"
MODULE_CASES = {
    **{f"activations.{n}": (lambda n: lambda a, d: [getattr(a, n)(d["wide"] / 10.0)])(n)
       for n in ("celu", "hard_shrink", "hard_tanh", "mish", "soft_shrink", "sparse_plus",
                 "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink", "log_softmax")},
    "activations.glu": lambda a, d: [a.glu(d["cube"])],
    "activations.threshold": lambda a, d: [a.threshold(d["x"], threshold=0.1,
                                                       default_value=-1.0)],
    "constraints.MaxNorm": lambda c, d: [c.MaxNorm(1.5)(d["wide"] / 20.0),
                                         c.MaxNorm(2.0, axis=1)(d["x"]),
                                         c.max_norm(1.0, axis=[0, 1])(d["cube"])],
    "constraints.MinMaxNorm": lambda c, d: [c.MinMaxNorm(0.5, 1.2, 0.7)(d["x"]),
                                            c.min_max_norm(1.0, 2.0, axis=1)(d["x"])],
    "constraints.NonNeg UnitNorm": lambda c, d: [c.NonNeg()(d["x"]), c.UnitNorm()(d["x"]),
                                                 c.unit_norm(axis=-1)(d["cube"]),
                                                 c.get("non_neg")(d["y"])],
    "regularizers.L1L2 Orthogonal": lambda r, d: [
        r.L1L2(0.01, 0.02)(d["x"]), r.l2(0.3)(d["x"]), r.l1(0.2)(d["cube"]),
        r.OrthogonalRegularizer(0.1)(d["x"]),
        r.orthogonal_regularizer(0.5, mode="columns")(d["x"]),
        r.get({"class_name": "L1L2", "config": {"l1": 0.5, "l2": 0.0}})(d["y"])],
    "losses.ctc CTC": lambda loss, d: [
        loss.ctc(d["ctc_labels"], d["ctc_logits"]),
        loss.CTC(reduction=None)(d["ctc_labels"], d["ctc_logits"]),  # per sequence
        loss.CTC()(d["ctc_labels"], d["ctc_logits"]),  # their mean
        loss.CTC(reduction="sum")(d["ctc_labels"], d["ctc_logits"])],
    "initializers.deterministic": lambda i, d: [
        i.Identity(2.0)((3, 5)), i.identity()((4, 4)), i.Constant(0.3)((2, 3)),
        i.constant(-1.0)((4,)), i.Zeros()((2, 2)), i.ones()((3,)),
        i.IdentityInitializer(0.5)((5, 2))],
}


def _numpy(out):
    return [np.asarray(o) for o in out]


def peer_main(in_path, out_path, only):
    import keras
    tensors = {}

    def run_one(i, name, data, arrays):
        if name not in MODULE_CASES:
            return _numpy(CASES[name](keras.ops, data))
        # weights reach constraints and regularizers as backend tensors, not numpy
        if not tensors:
            tensors.update({k: keras.ops.convert_to_tensor(v) for k, v in data.items()})
        return _numpy(MODULE_CASES[name](getattr(keras, name.split(".")[0]), tensors))
    peer_run(in_path, out_path, only, list(CASES) + list(MODULE_CASES), run_one)


def _graphc_run(fn, lib, data):
    """fn over placeholders fed `data` (so kernels run, not constant folding)."""
    import graphc as gc
    feeds, fed = {}, {}
    for k, a in data.items():
        p = gc.placeholder(gc.as_dtype(a.dtype.name), shape=a.shape, name=k)
        feeds[k], fed[p] = p, a
    outs = [o if isinstance(o, (gc.Tensor, list, tuple)) else gc.constant(np.asarray(o))
            for o in fn(lib, feeds)]  # initializers give numpy arrays
    return _numpy(gc.Session().run(outs, feed_dict=fed))


def main(only, tolerance):
    data = inputs()

    def run_case(peer, theirs, i, name):
        import graphc.frontend as gk
        if name in MODULE_CASES:
            return _graphc_run(MODULE_CASES[name], getattr(gk, name.split(".")[0]), data)
        return _graphc_run(CASES[name], gk.ops, data)
    return run("keras_ops_parity", __file__, data, only, tolerance, run_case)


if __name__ == "__main__":
    script_main(__doc__, peer_main, main)
