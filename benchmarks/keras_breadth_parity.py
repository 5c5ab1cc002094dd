"""Parity with Keras 3 of graphc.frontend's layers, optimizers, losses and metrics beyond the
first feed-forward set (keras_layer_parity.py covers the recurrent and attention layers).

Layers: each case's model is built with Keras (in another interpreter, on JAX) and with
graphc.frontend, Keras's weights (perturbed, so biases matter) are copied with set_weights, and
both predict on the same inputs. Training: the same small model, weights and data are trained
for a few steps with each optimizer, loss and metric (shuffle=False); the final weights and the
history's loss and metric values are compared. Outside a fit (_parity_metrics.py): metrics
updated over three batches with sample weights, their result after each compared; the loss
functions' per-example values and the loss classes' reductions with sample weights. One JSON
line per case (max abs difference), then a summary line. tests/frontend/test_parity_coverage.py
checks that every public layer, loss, metric and optimizer class is named by a case.

Usage:
    GRAPHC_PEER_PYTHON=/work/peervenv/bin/python python benchmarks/keras_breadth_parity.py \
        [--only SUBSTRING] [--tolerance 1e-5]
"""

import numpy as np

from _parity import outputs, peer_run, run, script_main
from _parity_metrics import (LOSS_CASES, METRIC_CASES, graphc_loss_values, graphc_results,
                             keras_loss_values, keras_results, metric_data)

B = 4


def _seq(*make_layers, shape, data=None):
    """A Sequential-like functional model: the layers applied in order to Input(shape)."""
    def case(lib):
        x = lib.Input(shape)
        layers = [make(lib) for make in make_layers]
        h = x
        for layer in layers:
            h = layer(h)
        return lib.Model(x, h), [l for l in layers if l.weights], [data or f"x{len(shape)}"]
    return case


def _training_call(make, shape, data=None, dtype="float32"):
    """A subclassed model calling a layer with training=True (a functional model would predict
    with training=False); the weights are those given, and predict keeps no state."""
    def case(lib):
        class TrainingCall(lib.Model):
            def __init__(self):
                super().__init__()
                self.inner = make(lib)

            def call(self, x):
                return self.inner(x, training=True)
        model = TrainingCall()
        model.predict(np.zeros((1,) + shape, dtype), verbose=0)  # builds it: weights exist
        return model, [model.inner], [data or f"x{len(shape)}"]
    return case


def _mix_up_residuals(ops, images, labels, out):
    """MixUp of images that are their one-hot labels spread over the pixels: mixed labels
    less the mixed images' pixel (zeros where the labels take the images' weights), and the
    labels' sums (ones)."""
    return [out["labels"] - out["images"][:, 0, 0, :], ops.sum(out["labels"], axis=-1)]


def _cut_mix_residuals(ops, images, labels, out):
    """CutMix of images filled with their class index: the partner's class read from the
    pasted cells; the mixed labels less own weight * own label + the rest * the partner's
    (zeros where the labels mix the image's partner), where cells were pasted; label sums."""
    own = images[:, :1, :1, :]
    diff = out["images"] - own
    moved = ops.sum(ops.cast(ops.not_equal(diff, 0.0), "float32"), axis=(1, 2, 3))
    partner = own[:, 0, 0, 0] + ops.sum(diff, axis=(1, 2, 3)) / ops.maximum(moved, 1.0)
    partner = ops.one_hot(ops.cast(ops.round(partner), "int32"), labels.shape[-1])
    weight = ops.sum(out["labels"] * labels, axis=-1, keepdims=True)
    residual = out["labels"] - (weight * labels + (1.0 - weight) * partner)
    pasted = ops.cast(moved > 0, "float32")[:, None]
    return [residual * pasted, ops.sum(out["labels"], axis=-1)]


def _mixing(kind, residuals, images, **kwargs):
    """MixUp/CutMix called with training=True on {"images", "labels"} in a subclassed model;
    its outputs are residuals(ops, images, labels, mixed dict), which hold for any draw."""
    def case(lib):
        class Mixing(lib.Model):
            def __init__(self):
                super().__init__()
                self.inner = getattr(lib.layers, kind)(**kwargs)

            def call(self, inputs):
                images, labels = inputs
                out = self.inner({"images": images, "labels": labels}, training=True)
                return residuals(lib.ops, images, labels, out)
        return Mixing(), [], [images, "mix_labels"]
    return case


def _merge(kind, **kwargs):
    def case(lib):
        a, b = lib.Input((6,)), lib.Input((6,))
        layer = getattr(lib.layers, kind)(**kwargs)
        return lib.Model([a, b], layer([a, b])), [], ["x1", "y1"]
    return case


def _dot3():
    def case(lib):
        a, b = lib.Input(SEQ), lib.Input(SEQ)
        return lib.Model([a, b], lib.layers.Dot(axes=(2, 2))([a, b])), [], ["x2", "y2"]
    return case


def _two(kind, call_kwargs=None, three=False, **kwargs):
    """An attention layer called on [query, value] (or [query, value, key])."""
    def case(lib):
        q, v = lib.Input(SEQ), lib.Input((5, 6))
        inputs = [q, v] + ([lib.Input((5, 6))] if three else [])
        layer = getattr(lib.layers, kind)(**kwargs)
        out = layer(inputs, **(call_kwargs or {}))
        return lib.Model(inputs, out), [layer], ["x2", "v2", "k2"][:len(inputs)]
    return case


def _ints(make, shape, data):
    """A layer on integer inputs; no weights to copy."""
    def case(lib):
        x = lib.Input(shape, dtype="int32")
        return lib.Model(x, make(lib)(x)), [], [data]
    return case


def _adapted():
    def case(lib):
        layer = lib.layers.Normalization(axis=-1)
        layer.adapt(inputs()["x2"] * 3.0 + 1.0)
        x = lib.Input(SEQ)
        return lib.Model(x, layer(x)), [], ["x2"]
    return case


def _lookup(**kwargs):
    def make(lib):
        layer = lib.layers.IntegerLookup(**kwargs)
        if "vocabulary" not in kwargs:
            layer.adapt(inputs()["tokens"][:2])
        return layer
    return make


def _discretized(data, **kwargs):
    """Discretization(num_bins=...) adapted on the batches data(inputs()) through adapt's
    steps, update_state per batch and finalize_state (Keras's adapt itself needs TensorFlow
    for its check of tf.data datasets)."""
    def make(lib):
        layer = lib.layers.Discretization(**kwargs)
        for batch in data(inputs()):
            layer.update_state(batch)
        layer.finalize_state()
        return layer
    return make


L = lambda name, **kw: (lambda lib: getattr(lib.layers, name)(**kw))  # noqa: E731
IMG, SEQ, VOL = (8, 8, 3), (7, 6), (4, 5, 6, 3)
LAYER_CASES = {
    "GaussianNoise (inference)": _seq(L("GaussianNoise", stddev=0.3), shape=SEQ),
    "GaussianDropout (inference)": _seq(L("GaussianDropout", rate=0.3), shape=SEQ),
    "AlphaDropout (inference)": _seq(L("AlphaDropout", rate=0.3), shape=SEQ),
    "SpatialDropout1D/2D/3D (inference)": _seq(L("SpatialDropout3D", rate=0.3),
                                               L("SpatialDropout3D", rate=0.5), shape=VOL),
    "GroupNormalization": _seq(L("GroupNormalization", groups=3), shape=SEQ),
    "GroupNormalization image -1": _seq(L("GroupNormalization", groups=-1, epsilon=1e-4),
                                        shape=IMG),
    "UnitNormalization": _seq(L("UnitNormalization"), L("UnitNormalization", axis=[1, 2]),
                              shape=SEQ),
    "RMSNormalization": _seq(L("RMSNormalization", epsilon=1e-4), shape=SEQ),
    "Normalization given": _seq(L("Normalization", mean=[0.5, 1.0, -1.0],
                                  variance=[2.0, 0.25, 1.0]), shape=IMG),
    "Normalization invert": _seq(L("Normalization", mean=0.5, variance=4.0, invert=True),
                                 shape=SEQ),
    "Normalization adapt": _adapted(),
    "Discretization": _seq(L("Discretization", bin_boundaries=[-1.0, 0.0, 0.5]), shape=SEQ),
    "Discretization one_hot": _seq(L("Discretization", bin_boundaries=[0.0, 1.0],
                                     output_mode="one_hot"), shape=(1,), data="x1col"),
    "Discretization adapt num_bins": _seq(_discretized(lambda d: [d["x2"]], num_bins=5),
                                          shape=SEQ),
    "Discretization adapt batches epsilon one_hot": _seq(_discretized(
        lambda d: [d["x2"][:1] * 2, d["y2"], d["x1"]], num_bins=4, epsilon=0.1,
        output_mode="one_hot"), shape=(1,), data="x1col"),
    "MixUp labels (training, residuals)": _mixing("MixUp", _mix_up_residuals,
                                                  "mix_images", alpha=0.5),
    "CutMix labels (training, residuals)": _mixing("CutMix", _cut_mix_residuals,
                                                   "cut_images"),
    "CategoryEncoding multi_hot": _ints(L("CategoryEncoding", num_tokens=7), (3,), "tokens"),
    "CategoryEncoding count": _ints(L("CategoryEncoding", num_tokens=7, output_mode="count"),
                                    (3,), "tokens"),
    "CategoryEncoding one_hot": _ints(L("CategoryEncoding", num_tokens=7,
                                        output_mode="one_hot"), (1,), "token"),
    "IntegerLookup vocabulary": _ints(_lookup(vocabulary=[4, 2, 6, 9]), (3,), "tokens"),
    "IntegerLookup mask oov 2": _ints(_lookup(vocabulary=[4, 2, 6], mask_token=0,
                                              num_oov_indices=2), (3,), "tokens"),
    "IntegerLookup adapt": _ints(_lookup(), (3,), "tokens"),
    "IntegerLookup invert": _ints(_lookup(vocabulary=[4, 2, 6, 9], invert=True), (3,),
                                  "indices"),
    "IntegerLookup multi_hot": _ints(_lookup(vocabulary=[4, 2, 6, 9], output_mode="multi_hot"),
                                     (3,), "tokens"),
    "CenterCrop": _seq(L("CenterCrop", height=5, width=6), shape=IMG),
    "CenterCrop smaller: cut to aspect, resized": _seq(L("CenterCrop", height=11, width=6),
                                                       L("CenterCrop", height=13, width=17),
                                                       shape=IMG),
    "CenterCrop smaller on 3x5": _seq(L("CenterCrop", height=4, width=4), shape=(3, 5, 2),
                                      data="x3x5"),
    "Resizing bilinear up/down": _seq(L("Resizing", height=11, width=5), shape=IMG),
    "Resizing nearest": _seq(L("Resizing", height=5, width=13, interpolation="nearest"),
                             shape=IMG),
    "Resizing crop to aspect ratio": _seq(L("Resizing", height=3, width=7,
                                            crop_to_aspect_ratio=True), shape=IMG),
    "Resizing pad to aspect ratio": _seq(L("Resizing", height=6, width=3,
                                           pad_to_aspect_ratio=True, fill_value=1.5),
                                         shape=IMG),
    "RandomFlip/Contrast/Brightness (inference)": _seq(
        L("RandomFlip"), L("RandomContrast", factor=0.3), L("RandomBrightness", factor=0.2),
        shape=IMG, data="pixels"),
    "Attention dot": _two("Attention"),
    "Attention scaled causal scores": _two("Attention", {"use_causal_mask": True,
                                                          "return_attention_scores": True},
                                           use_scale=True),
    "Attention concat key": _two("Attention", three=True, score_mode="concat", use_scale=True),
    "AdditiveAttention": _two("AdditiveAttention"),
    "AdditiveAttention no scale key": _two("AdditiveAttention", three=True, use_scale=False),
    "EinsumDense": _seq(L("EinsumDense", equation="abc,cd->abd", output_shape=(7, 4),
                          bias_axes="d", activation="relu"), shape=SEQ),
    "EinsumDense heads": _seq(L("EinsumDense", equation="abc,cde->abde",
                                output_shape=(None, 2, 3), bias_axes="de"), shape=SEQ),
    "EinsumDense no bias": _seq(L("EinsumDense", equation="ab,bc->ac", output_shape=5),
                                shape=(6,), data="x1"),
    "DepthwiseConv2D": _seq(L("DepthwiseConv2D", kernel_size=3), shape=IMG),
    "DepthwiseConv2D same strides 2 multiplier 2": _seq(
        L("DepthwiseConv2D", kernel_size=(3, 2), strides=2, padding="same",
          depth_multiplier=2, activation="relu"), shape=IMG),
    "DepthwiseConv2D dilation 2": _seq(L("DepthwiseConv2D", kernel_size=2, dilation_rate=2,
                                         use_bias=False), shape=IMG),
    "DepthwiseConv1D same": _seq(L("DepthwiseConv1D", kernel_size=3, padding="same",
                                   depth_multiplier=2), shape=SEQ),
    "SeparableConv2D": _seq(L("SeparableConv2D", filters=4, kernel_size=3, strides=(1, 2)),
                            shape=IMG),
    "SeparableConv1D same multiplier 2": _seq(L("SeparableConv1D", filters=5, kernel_size=2,
                                                padding="same", depth_multiplier=2),
                                              shape=SEQ),
    "ZeroPadding3D": _seq(L("ZeroPadding3D", padding=((1, 0), (0, 2), (1, 1))), shape=VOL),
    "Cropping3D": _seq(L("Cropping3D", cropping=((1, 0), (0, 2), (1, 1))), shape=VOL),
    "UpSampling3D": _seq(L("UpSampling3D", size=(2, 1, 3)), shape=VOL),
    "GlobalAveragePooling3D": _seq(L("GlobalAveragePooling3D"), shape=VOL),
    "GlobalMaxPooling3D keepdims": _seq(L("GlobalMaxPooling3D", keepdims=True), shape=VOL),
    "Conv1D valid": _seq(L("Conv1D", filters=4, kernel_size=3), shape=SEQ),
    "Conv1D same strides 2 relu": _seq(L("Conv1D", filters=4, kernel_size=3, strides=2,
                                         padding="same", activation="relu"), shape=SEQ),
    "Conv1D causal dilation 2": _seq(L("Conv1D", filters=3, kernel_size=2, padding="causal",
                                       dilation_rate=2), shape=SEQ),
    "Conv1D groups 3 same": _seq(L("Conv1D", filters=6, kernel_size=3, groups=3,
                                   padding="same"), shape=(7, 6)),
    "Conv2D groups 3 strides 2": _seq(L("Conv2D", filters=6, kernel_size=3, groups=3,
                                        strides=2), shape=IMG),
    "Conv1DTranspose valid strides 2": _seq(L("Conv1DTranspose", filters=4, kernel_size=3,
                                              strides=2), shape=SEQ),
    "Conv1DTranspose same strides 3 kernel 2": _seq(L("Conv1DTranspose", filters=2,
                                                      kernel_size=2, strides=3,
                                                      padding="same"), shape=SEQ),
    "Conv1DTranspose same kernel 4": _seq(L("Conv1DTranspose", filters=3, kernel_size=4,
                                            padding="same"), shape=SEQ),
    "Conv2DTranspose valid": _seq(L("Conv2DTranspose", filters=4, kernel_size=3), shape=IMG),
    "Conv2DTranspose same strides 2": _seq(L("Conv2DTranspose", filters=2, kernel_size=3,
                                             strides=2, padding="same"), shape=IMG),
    "Conv2DTranspose valid strides 2 kernel 2x3": _seq(L("Conv2DTranspose", filters=2,
                                                         kernel_size=(2, 3), strides=2),
                                                       shape=IMG),
    "Conv2DTranspose valid strides 3 kernel 2": _seq(L("Conv2DTranspose", filters=2,
                                                      kernel_size=2, strides=(3, 1)),
                                                    shape=IMG),
    "Conv2DTranspose same output_padding": _seq(L("Conv2DTranspose", filters=2, kernel_size=3,
                                                 strides=(2, 3), padding="same",
                                                 output_padding=(1, 2)), shape=IMG),
    "Conv2DTranspose valid dilated": _seq(L("Conv2DTranspose", filters=3, kernel_size=(2, 3),
                                            dilation_rate=(2, 1)), shape=IMG),
    "Conv1DTranspose valid output_padding": _seq(L("Conv1DTranspose", filters=2,
                                                   kernel_size=3, strides=2,
                                                   output_padding=1), shape=SEQ),
    "Conv1DTranspose same dilated": _seq(L("Conv1DTranspose", filters=2, kernel_size=3,
                                           padding="same", dilation_rate=2), shape=SEQ),
    "Conv3D valid": _seq(L("Conv3D", filters=4, kernel_size=(2, 3, 2)), shape=VOL),
    "Conv3D same strides relu": _seq(L("Conv3D", filters=2, kernel_size=3, strides=(2, 1, 3),
                                       padding="same", activation="relu"), shape=VOL),
    "Conv3D dilated groups": _seq(L("Conv3D", filters=6, kernel_size=2, groups=3,
                                    dilation_rate=(1, 2, 2)), shape=VOL),
    "Conv3DTranspose valid strides": _seq(L("Conv3DTranspose", filters=2, kernel_size=(2, 3, 2),
                                            strides=(2, 1, 3)), shape=VOL),
    "Conv3DTranspose same output_padding": _seq(L("Conv3DTranspose", filters=3, kernel_size=3,
                                                  strides=2, padding="same",
                                                  output_padding=(1, 0, 1)), shape=VOL),
    "Conv3DTranspose same dilated": _seq(L("Conv3DTranspose", filters=2, kernel_size=2,
                                           padding="same", dilation_rate=(2, 1, 2)), shape=VOL),
    "MaxPooling3D": _seq(L("MaxPooling3D"), shape=VOL),
    "MaxPooling3D same strides": _seq(L("MaxPooling3D", pool_size=(3, 2, 3), strides=(1, 2, 2),
                                        padding="same"), shape=VOL),
    "AveragePooling3D valid": _seq(L("AveragePooling3D", pool_size=(2, 3, 2), strides=1),
                                   shape=VOL),
    "AveragePooling3D same": _seq(L("AveragePooling3D", pool_size=3, strides=(2, 1, 2),
                                    padding="same"), shape=VOL),
    "AdaptiveAveragePooling1D": _seq(L("AdaptiveAveragePooling1D", output_size=3), shape=SEQ),
    "AdaptiveMaxPooling1D up": _seq(L("AdaptiveMaxPooling1D", output_size=9), shape=SEQ),
    "AdaptiveAveragePooling2D": _seq(L("AdaptiveAveragePooling2D", output_size=(3, 5)),
                                     shape=IMG),
    "AdaptiveMaxPooling2D up and down": _seq(L("AdaptiveMaxPooling2D", output_size=(11, 3)),
                                             shape=IMG),
    "AdaptiveAveragePooling3D": _seq(L("AdaptiveAveragePooling3D", output_size=(3, 2, 4)),
                                     shape=VOL),
    "AdaptiveMaxPooling3D": _seq(L("AdaptiveMaxPooling3D", output_size=2), shape=VOL),
    "SpectralNormalization Dense (inference)": _seq(
        lambda lib: lib.layers.SpectralNormalization(lib.layers.Dense(4)), shape=SEQ),
    "SpectralNormalization Dense (training)": _training_call(
        lambda lib: lib.layers.SpectralNormalization(lib.layers.Dense(4)), SEQ),
    "SpectralNormalization Conv2D 3 iterations (training)": _training_call(
        lambda lib: lib.layers.SpectralNormalization(lib.layers.Conv2D(3, 2),
                                                     power_iterations=3), IMG),
    # (outputs near 255 differ from Keras's by an ulp, 1.5e-5, above the tolerance: the cases
    # that compute on the 0-255 scale are also run on small values)
    "AutoContrast value_range (0, 1)": _seq(L("AutoContrast", value_range=(0, 1)), shape=IMG),
    "AutoContrast value_range (-1, 2)": _seq(L("AutoContrast", value_range=(-1, 2)),
                                             shape=IMG),
    "colour augmentations (inference)": _seq(
        L("RandomGrayscale", factor=0.7), L("RandomInvert"),
        L("Solarization", addition_factor=0.3, threshold_factor=0.5),
        L("RandomPosterization", factor=4), shape=IMG, data="pixels"),
    "RandomGrayscale factor 1 (training)": _training_call(
        L("RandomGrayscale", factor=1.0), IMG),
    "RandomInvert factor (1, 1) (training)": _training_call(
        L("RandomInvert", factor=(1, 1)), IMG, "pixels"),
    "Solarization factors 0 (training)": _training_call(L("Solarization"), IMG, "pixels"),
    "Solarization value_range (-1, 1) (training)": _training_call(
        L("Solarization", value_range=(-1, 1)), IMG),
    "RandomPosterization 3 bits (training)": _training_call(
        L("RandomPosterization", factor=(3, 3)), IMG, "pixels"),
    "RandomColorDegeneration RandomSharpness (inference)": _seq(
        L("RandomColorDegeneration", factor=0.5), L("RandomSharpness", factor=0.5), shape=IMG,
        data="pixels"),
    "RandomColorDegeneration factor (0.6, 0.6) (training)": _training_call(
        L("RandomColorDegeneration", factor=(0.6, 0.6), value_range=(-1, 1)), IMG),
    "RandomSharpness factor (0.2, 0.2) (training)": _training_call(
        L("RandomSharpness", factor=(0.2, 0.2), value_range=(-2, 2)), IMG),
    "RandomCrop (inference)": _seq(L("RandomCrop", height=5, width=6), shape=IMG),
    "RandomCrop of a smaller image (training)": _training_call(
        L("RandomCrop", height=11, width=9), IMG),
    "RandomCrop of an image as large (training)": _training_call(
        L("RandomCrop", height=8, width=5), IMG),
    "RandomSaturation factor (0, 0) (training, fixed draws)": _training_call(
        L("RandomSaturation", factor=(0.0, 0.0)), IMG, "pixels"),
    "RandomSaturation factor (0.7, 0.7) (training, fixed draws)": _training_call(
        L("RandomSaturation", factor=(0.7, 0.7)), IMG),
    "RandomHue factor (0, 0) value_range (-1, 1) (training, fixed draws)": _training_call(
        L("RandomHue", factor=(0.0, 0.0), value_range=(-1, 1)), IMG),
    "RandomGaussianBlur sigma (0.7, 0.7) kernel (3, 5) (training, fixed draws)":
        _training_call(L("RandomGaussianBlur", factor=(1.0, 1.0), kernel_size=(3, 5),
                         sigma=(0.7, 0.7), value_range=(-2, 2)), IMG),
    "RandomErasing of the whole image (training, fixed draws)": _training_call(
        L("RandomErasing", factor=(1.0, 1.0), scale=(1.0, 1.0), fill_value=300.0),
        IMG, "pixels"),
    "RandomErasing factor 0 (training, fixed draws)": _training_call(
        L("RandomErasing", factor=(0.0, 0.0)), IMG, "pixels"),
    "RandomColorJitter brightness saturation hue (training, fixed draws)": _training_call(
        L("RandomColorJitter", value_range=(0, 1), brightness_factor=(0.1, 0.1),
          saturation_factor=(0.6, 0.6), hue_factor=(0.0, 0.0)), IMG),
    "Equalization (training, fixed draws)": _training_call(L("Equalization"), IMG, "pixels"),
    "Equalization 16 bins value_range (-3, 3) (training, fixed draws)": _training_call(
        L("Equalization", bins=16, value_range=(-3, 3)), IMG),
    "RandomRotation 36 degrees reflect (training, fixed draws)": _training_call(
        L("RandomRotation", factor=(0.1, 0.1)), IMG),
    "RandomRotation -72 degrees constant nearest (training, fixed draws)": _training_call(
        L("RandomRotation", factor=(-0.2, -0.2), fill_mode="constant",
          interpolation="nearest", fill_value=0.5), IMG),
    "RandomRotation (inference)": _seq(L("RandomRotation", factor=0.3), shape=IMG),
    "RandomTranslation (0.25, -0.375) wrap (training, fixed draws)": _training_call(
        L("RandomTranslation", height_factor=(0.25, 0.25), width_factor=(-0.375, -0.375),
          fill_mode="wrap"), IMG),
    "RandomTranslation (-0.1, 0.3) reflect (training, fixed draws)": _training_call(
        L("RandomTranslation", height_factor=(-0.1, -0.1), width_factor=(0.3, 0.3)), IMG),
    "RandomZoom (0.3, -0.2) reflect (training, fixed draws)": _training_call(
        L("RandomZoom", height_factor=(0.3, 0.3), width_factor=(-0.2, -0.2)), IMG),
    "RandomZoom -0.4 constant nearest (training, fixed draws)": _training_call(
        L("RandomZoom", height_factor=(-0.4, -0.4), fill_mode="constant",
          interpolation="nearest", fill_value=1.5), IMG),
    "RandomTranslation RandomZoom RandomShear (inference)": _seq(
        L("RandomTranslation", height_factor=0.2, width_factor=0.2),
        L("RandomZoom", height_factor=0.2), L("RandomShear", x_factor=0.2, y_factor=0.2),
        shape=IMG),
    "RandomSaturation RandomHue RandomGaussianBlur RandomErasing MixUp CutMix "
    "RandomColorJitter (inference)": _seq(
        L("RandomSaturation", factor=0.5), L("RandomHue", factor=0.5), L("RandomGaussianBlur"),
        L("RandomErasing"), L("MixUp"), L("CutMix"), L("RandomColorJitter", hue_factor=0.3),
        shape=IMG, data="pixels"),
    "UpSampling2D": _seq(L("UpSampling2D", size=(2, 3)), shape=IMG),
    "UpSampling2D bilinear": _seq(L("UpSampling2D", size=(3, 2), interpolation="bilinear"),
                                  shape=IMG),
    "UpSampling1D": _seq(L("UpSampling1D", size=2), shape=SEQ),
    "GlobalMaxPooling2D": _seq(L("GlobalMaxPooling2D"), shape=IMG),
    "GlobalMaxPooling2D keepdims": _seq(L("GlobalMaxPooling2D", keepdims=True), shape=IMG),
    "GlobalAveragePooling1D": _seq(L("GlobalAveragePooling1D"), shape=SEQ),
    "GlobalMaxPooling1D": _seq(L("GlobalMaxPooling1D"), shape=SEQ),
    "MaxPooling1D": _seq(L("MaxPooling1D", pool_size=2), shape=SEQ),
    "AveragePooling1D same strides 1": _seq(L("AveragePooling1D", pool_size=3, strides=1,
                                              padding="same"), shape=SEQ),
    "LeakyReLU": _seq(L("LeakyReLU", negative_slope=0.2), shape=SEQ),
    "ReLU max_value threshold slope": _seq(L("ReLU", max_value=0.8, negative_slope=0.1,
                                             threshold=0.2), shape=SEQ),
    "ELU": _seq(L("ELU", alpha=0.7), shape=SEQ),
    "PReLU shared_axes": _seq(L("PReLU", shared_axes=[1]), shape=SEQ),
    "Softmax": _seq(L("Softmax"), shape=SEQ),
    "Rescaling": _seq(L("Rescaling", scale=1 / 255.0, offset=-0.5), shape=IMG, data="pixels"),
    "ZeroPadding2D": _seq(L("ZeroPadding2D", padding=((1, 2), (0, 3))), shape=IMG),
    "Cropping2D": _seq(L("Cropping2D", cropping=((1, 2), (2, 0))), shape=IMG),
    "ZeroPadding1D": _seq(L("ZeroPadding1D", padding=2), shape=SEQ),
    "Cropping1D": _seq(L("Cropping1D", cropping=(1, 2)), shape=SEQ),
    "TimeDistributed(Dense)": _seq(lambda lib: lib.layers.TimeDistributed(
        lib.layers.Dense(3)), shape=SEQ),
    "Permute": _seq(L("Permute", dims=(2, 1)), shape=SEQ),
    "RepeatVector": _seq(L("RepeatVector", n=3), shape=(6,)),
    "Lambda": _seq(lambda lib: lib.layers.Lambda(lambda z: z * 2.0 + 1.0), shape=SEQ),
    "Identity": _seq(L("Identity"), shape=SEQ),
    "Average": _merge("Average"),
    "Maximum": _merge("Maximum"),
    "Minimum": _merge("Minimum"),
    "Multiply": _merge("Multiply"),
    "Subtract": _merge("Subtract"),
    "Concatenate": _merge("Concatenate"),
    "Dot axes 1": _merge("Dot", axes=1),
    "Dot normalize": _merge("Dot", axes=1, normalize=True),
    "Dot 3-D axes 2": _dot3(),
}


def _sequential(*make_layers, data):
    """A Sequential model of the layers, the first an InputLayer."""
    def case(lib):
        layers = [make(lib) for make in make_layers]
        return lib.Sequential(layers), [l for l in layers if l.weights], [data]
    return case


# core, normalization and pooling layers (their only other Keras comparison,
# keras_compare.py, compares accuracies), and the random augmentations where their draw is
# fixed: AugMix and RandAugment at inference pass the image through (their training draws
# have no setting that fixes them but num_ops 0); RandomElasticTransform and
# RandomPerspective with scale 0 (or factor 0) draw no displacement, so both libraries must
# resample the image onto itself
LAYER_CASES.update({
    "InputLayer Activation Reshape (Sequential)": _sequential(
        L("InputLayer", shape=SEQ), L("Activation", activation="tanh"),
        L("Reshape", target_shape=(3, 14)), L("Activation", activation="softplus"),
        L("Reshape", target_shape=(-1, 6)), data="x2"),
    "Add": _merge("Add"),
    "AveragePooling2D valid": _seq(L("AveragePooling2D", pool_size=(3, 2), strides=(2, 1)),
                                   shape=IMG),
    "AveragePooling2D same strides 2": _seq(L("AveragePooling2D", pool_size=3, strides=2,
                                              padding="same"), shape=IMG),
    "MaxPooling2D Flatten": _seq(L("MaxPooling2D"), L("Flatten"), shape=IMG),
    "MaxPooling2D same strides 1": _seq(L("MaxPooling2D", pool_size=(3, 2), strides=1,
                                          padding="same"), shape=IMG),
    "GlobalAveragePooling2D": _seq(L("GlobalAveragePooling2D"), shape=IMG),
    "GlobalAveragePooling2D keepdims": _seq(L("GlobalAveragePooling2D", keepdims=True),
                                            shape=IMG),
    "BatchNormalization (inference)": _seq(L("BatchNormalization"), shape=IMG),
    "BatchNormalization axis 1 no center epsilon (inference)": _seq(
        L("BatchNormalization", axis=1, center=False, epsilon=0.01), shape=SEQ),
    "LayerNormalization": _seq(L("LayerNormalization"), shape=SEQ),
    "LayerNormalization axes 1 2 no scale": _seq(
        L("LayerNormalization", axis=[1, 2], scale=False, epsilon=1e-5), shape=IMG),
    "LayerNormalization axis 1 no center": _seq(L("LayerNormalization", axis=1, center=False),
                                                shape=SEQ),
    "Dropout SpatialDropout2D ActivityRegularization (inference)": _seq(
        L("Dropout", rate=0.5), L("SpatialDropout2D", rate=0.4),
        L("ActivityRegularization", l1=0.1, l2=0.2), shape=IMG),
    "AugMix RandAugment (inference)": _seq(L("AugMix"), L("RandAugment"), shape=IMG,
                                           data="pixels"),
    "RandAugment num_ops 0 (training, fixed draws)": _training_call(
        L("RandAugment", num_ops=0), IMG, "pixels"),
    "RandomElasticTransform RandomPerspective (inference)": _seq(
        L("RandomElasticTransform"), L("RandomPerspective"), shape=IMG, data="pixels"),
    "RandomElasticTransform scale 0 (training, fixed draws)": _training_call(
        L("RandomElasticTransform", factor=1.0, scale=0.0), IMG, "pixels"),
    "RandomElasticTransform factor 0 (training, fixed draws)": _training_call(
        L("RandomElasticTransform", factor=0.0, scale=0.5), IMG, "pixels"),
    "RandomPerspective scale 0 (training, fixed draws)": _training_call(
        L("RandomPerspective", factor=1.0, scale=0.0), IMG),
    "RandomPerspective factor 0 nearest (training, fixed draws)": _training_call(
        L("RandomPerspective", factor=0.0, scale=0.7, interpolation="nearest"), IMG),
})


# training: (optimizer class, its kwargs, loss, metrics, target kind[, fit's extra arguments
# as a function of lib])
TRAIN_CASES = {
    "Adadelta": ("Adadelta", {"learning_rate": 1.0}, "categorical_crossentropy", [], "onehot"),
    "Adamax": ("Adamax", {"learning_rate": 0.01}, "categorical_crossentropy", [], "onehot"),
    "Nadam": ("Nadam", {"learning_rate": 0.01}, "categorical_crossentropy", [], "onehot"),
    "Lion": ("Lion", {"learning_rate": 0.001}, "categorical_crossentropy", [], "onehot"),
    "Adafactor": ("Adafactor", {"learning_rate": 0.01}, "categorical_crossentropy", [],
                  "onehot"),
    "Ftrl": ("Ftrl", {"learning_rate": 0.1, "l1_regularization_strength": 0.01,
                      "l2_regularization_strength": 0.01, "beta": 0.1},
             "categorical_crossentropy", [], "onehot"),
    "Lamb": ("Lamb", {"learning_rate": 0.01}, "categorical_crossentropy", [], "onehot"),
    "Lamb weight_decay": ("Lamb", {"learning_rate": 0.02, "beta_1": 0.8, "weight_decay": 0.05},
                          "mean_squared_error", [], "regression"),
    "Adamax weight_decay": ("Adamax", {"learning_rate": 0.01, "weight_decay": 0.1},
                            "mean_squared_error", [],
                            "onehot"),
    "ScheduleFreeAdamW": ("ScheduleFreeAdamW", {"learning_rate": 0.01},
                          "categorical_crossentropy", [], "onehot"),
    "ScheduleFreeAdamW warmup weight_decay": (
        "ScheduleFreeAdamW", {"learning_rate": 0.02, "beta_1": 0.8, "warmup_steps": 4,
                              "weight_decay": 0.05}, "mean_squared_error", [], "regression"),
    "Muon": ("Muon", {"learning_rate": 0.01}, "categorical_crossentropy", [], "onehot"),
    "Muon no nesterov, adam_lr_ratio, decays": (
        "Muon", {"learning_rate": 0.02, "nesterov": False, "adam_lr_ratio": 0.5,
                 "weight_decay": 0.1, "adam_weight_decay": 0.2, "ns_steps": 3,
                 "momentum": 0.8}, "mean_squared_error", [], "regression"),
    "LossScaleOptimizer(Adam) growth": (
        "LossScaleOptimizer", {"inner_optimizer": ("Adam", {"learning_rate": 0.01}),
                               "initial_scale": 1024.0, "dynamic_growth_steps": 2},
        "categorical_crossentropy", [], "onehot"),
    "LossScaleOptimizer(SGD) overflow": (
        "LossScaleOptimizer", {"inner_optimizer": ("SGD", {"learning_rate": 0.1}),
                               "initial_scale": 2.0 ** 127},
        "mean_squared_error", [], "regression"),
    "Adam use_ema overwrite, SwapEMAWeights on validation": (
        "Adam", {"learning_rate": 0.05, "use_ema": True, "ema_momentum": 0.7,
                 "ema_overwrite_frequency": 4}, "categorical_crossentropy", [], "onehot",
        lambda lib: {"callbacks": [lib.callbacks.SwapEMAWeights()], "validation_split": 0.25}),
    "SGD use_ema, SwapEMAWeights swap_on_epoch": (
        "SGD", {"learning_rate": 0.1, "momentum": 0.5, "use_ema": True},
        "mean_squared_error", [], "regression",
        lambda lib: {"callbacks": [lib.callbacks.SwapEMAWeights(swap_on_epoch=True)],
                     "validation_split": 0.25}),
    "losses circle": ("SGD", {"learning_rate": 0.01}, "circle", [], "sparse"),
    "losses Circle gamma margin, diagonal kept": (
        "SGD", {"learning_rate": 0.05},
        ("Circle", {"gamma": 10.0, "margin": 0.2, "remove_diagonal": False}), [], "sparse"),
    "losses hinge + metrics": ("SGD", {"learning_rate": 0.1}, "hinge",
                               ["Precision", "Recall", "AUC", "TruePositives"], "binary"),
    "losses squared_hinge": ("SGD", {"learning_rate": 0.1}, "squared_hinge", [], "binary"),
    "losses categorical_hinge": ("SGD", {"learning_rate": 0.1}, "categorical_hinge",
                                 ["TopKCategoricalAccuracy"], "onehot"),
    "losses kl_divergence": ("SGD", {"learning_rate": 0.1}, "kl_divergence", [], "onehot"),
    "losses log_cosh + R2Score": ("SGD", {"learning_rate": 0.1}, "log_cosh",
                                  ["R2Score", "MeanSquaredError", "MeanAbsoluteError",
                                   "RootMeanSquaredError"], "regression"),
    "losses mape": ("SGD", {"learning_rate": 0.01}, "mean_absolute_percentage_error",
                    ["MeanAbsolutePercentageError"], "positive"),
    "losses msle": ("SGD", {"learning_rate": 0.1}, "mean_squared_logarithmic_error",
                    ["MeanSquaredLogarithmicError"], "positive"),
    "losses poisson": ("SGD", {"learning_rate": 0.1}, "poisson", ["Poisson"], "positive"),
    "losses cosine_similarity": ("SGD", {"learning_rate": 0.1}, "cosine_similarity",
                                 ["CosineSimilarity"], "regression"),
    "losses binary_focal_crossentropy + F1/FBeta/BinaryIoU": (
        "SGD", {"learning_rate": 0.1}, "binary_focal_crossentropy",
        [("F1Score", {"threshold": 0.5}), ("FBetaScore", {"beta": 2.0, "average": "macro",
                                                          "threshold": 0.4}),
         ("BinaryIoU", {"threshold": 0.5})], "binary"),
    "losses BinaryFocalCrossentropy balanced logits": (
        "SGD", {"learning_rate": 0.1},
        ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3,
                                     "gamma": 1.5, "label_smoothing": 0.1}), [], "binary"),
    "losses categorical_focal_crossentropy + F1 + one-hot IoU": (
        "SGD", {"learning_rate": 0.1}, "categorical_focal_crossentropy",
        ["F1Score", ("F1Score", {"average": "weighted"}), ("FBetaScore", {"average": "micro"}),
         ("OneHotIoU", {"num_classes": 3, "target_class_ids": [0, 2]}),
         ("OneHotMeanIoU", {"num_classes": 3})], "onehot"),
    "losses CategoricalFocalCrossentropy smoothing": (
        "SGD", {"learning_rate": 0.1},
        ("CategoricalFocalCrossentropy", {"alpha": 0.4, "gamma": 1.0,
                                          "label_smoothing": 0.1}), [], "onehot"),
    "losses dice": ("SGD", {"learning_rate": 0.1}, "dice", [], "binary"),
    "losses Dice axis": ("SGD", {"learning_rate": 0.1}, ("Dice", {"axis": -1}), [], "onehot"),
    "losses tversky + correlations": ("SGD", {"learning_rate": 0.1}, "tversky",
                                      ["PearsonCorrelation", "ConcordanceCorrelation"],
                                      "positive"),
    "losses Tversky alpha beta axis": ("SGD", {"learning_rate": 0.1},
                                       ("Tversky", {"alpha": 0.7, "beta": 0.3, "axis": -1}),
                                       [], "onehot"),
    "losses generalized cross entropy + IoU": (
        "SGD", {"learning_rate": 0.5}, ("CategoricalGeneralizedCrossEntropy", {"q": 0.7}),
        [("MeanIoU", {"num_classes": 3, "sparse_y_pred": False}),
         ("IoU", {"num_classes": 3, "target_class_ids": [1], "sparse_y_pred": False})],
        "sparse"),
    "metrics at-constraint": ("SGD", {"learning_rate": 0.1}, "binary_crossentropy",
                              [("SensitivityAtSpecificity", {"specificity": 0.5}),
                               ("SpecificityAtSensitivity", {"sensitivity": 0.7,
                                                             "num_thresholds": 20}),
                               ("PrecisionAtRecall", {"recall": 0.6}),
                               ("RecallAtPrecision", {"precision": 0.8,
                                                      "num_thresholds": 50})], "binary"),
    "metrics AUC PR, crossentropies": ("SGD", {"learning_rate": 0.1}, "binary_crossentropy",
                                       [("AUC", {"curve": "PR"}), "BinaryCrossentropy",
                                        ("Precision", {"thresholds": 0.3})], "binary"),
}
# optimizers, the loss classes (with from_logits and label_smoothing on linear outputs, the
# "logits" target kinds) and the metric classes over the batches of two epochs; a case with a
# layer in TRAIN_HIDDEN fits it before the Dense layer and compares its weights too
_wrapped = ("MeanMetricWrapper", {"fn": lambda lib: lib.losses.huber, "name": "wrapped_huber"})
TRAIN_CASES.update({
    "Adagrad": ("Adagrad", {"learning_rate": 0.1}, "categorical_crossentropy", [], "onehot"),
    "AdamW": ("AdamW", {"learning_rate": 0.02, "weight_decay": 0.1},
              "categorical_crossentropy", [], "onehot"),
    "RMSprop momentum": ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5},
                         "mean_squared_error", [], "regression"),
    "RMSprop centered rho 0.8": ("RMSprop", {"learning_rate": 0.01, "rho": 0.8,
                                             "centered": True}, "categorical_crossentropy",
                                 [], "onehot"),
    "BatchNormalization moving statistics after fit": (
        "SGD", {"learning_rate": 0.1}, "categorical_crossentropy", [], "onehot"),
    "ActivityRegularization penalty in the fit loss": (
        "SGD", {"learning_rate": 0.1}, "mean_squared_error", [], "regression"),
    "losses CategoricalCrossentropy from_logits label_smoothing": (
        "SGD", {"learning_rate": 0.1},
        ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}),
        ["CategoricalAccuracy", ("CategoricalCrossentropy", {"from_logits": True})], "logits"),
    "losses CategoricalCrossentropy label_smoothing on probabilities": (
        "SGD", {"learning_rate": 0.1}, ("CategoricalCrossentropy", {"label_smoothing": 0.1}),
        ["CategoricalCrossentropy", "KLDivergence", "CategoricalHinge"], "onehot"),
    "losses SparseCategoricalCrossentropy from_logits + sparse metrics": (
        "SGD", {"learning_rate": 0.1}, ("SparseCategoricalCrossentropy", {"from_logits": True}),
        ["SparseCategoricalAccuracy", ("SparseTopKCategoricalAccuracy", {"k": 2}),
         ("SparseCategoricalCrossentropy", {"from_logits": True})], "sparse logits"),
    "losses SparseCategoricalCrossentropy on probabilities": (
        "SGD", {"learning_rate": 0.1}, ("SparseCategoricalCrossentropy", {}),
        ["SparseCategoricalCrossentropy", ("SparseTopKCategoricalAccuracy", {"k": 1})],
        "sparse"),
    "losses Huber delta 0.5 + LogCoshError, MeanMetricWrapper": (
        "SGD", {"learning_rate": 0.1}, ("Huber", {"delta": 0.5}), ["LogCoshError", _wrapped],
        "regression"),
    "losses huber": ("SGD", {"learning_rate": 0.1}, "huber", [], "regression"),
    "losses Huber reduction sum": ("SGD", {"learning_rate": 0.02},
                                   ("Huber", {"delta": 0.5, "reduction": "sum"}), [],
                                   "regression"),
    "losses Hinge + hinge metrics, confusion counts at thresholds": (
        "SGD", {"learning_rate": 0.1}, ("Hinge", {}),
        ["Hinge", "SquaredHinge", ("BinaryAccuracy", {"threshold": 0.3}),
         ("FalseNegatives", {"thresholds": [0.3, 0.6]}), "FalsePositives",
         ("TrueNegatives", {"thresholds": 0.7})], "binary"),
    "losses SquaredHinge": ("SGD", {"learning_rate": 0.1}, ("SquaredHinge", {}),
                            ["BinaryAccuracy"], "binary"),
    "losses CategoricalHinge": ("SGD", {"learning_rate": 0.1}, ("CategoricalHinge", {}), [],
                                "onehot"),
    "losses KLDivergence": ("SGD", {"learning_rate": 0.1}, ("KLDivergence", {}), [], "onehot"),
    "losses LogCosh": ("SGD", {"learning_rate": 0.1}, ("LogCosh", {}), [], "regression"),
})

def _weights_of(n, seed):
    """Sample weights of n examples, a zero among them."""
    w = np.random.default_rng(seed).uniform(0, 2, n).astype("float32")
    w[n // 3] = 0.0
    return w


def _weighted_batches(lib, x, y):
    """A PyDataset of lib's giving (x, y, sample_weight) batches of 7, the last of 3."""
    w = _weights_of(len(x), 7)

    class Batches(lib.utils.PyDataset):
        def __init__(self):
            super().__init__()

        def __len__(self):
            return -(-len(x) // 7)

        def __getitem__(self, i):
            part = slice(7 * i, 7 * i + 7)
            return x[part], y[part], w[part]
    return Batches()


# sample and class weights in fit and evaluate: loss and weighted metrics weighted, plain
# metrics not, uneven last batches (the epoch's loss is the batches' mean by batch size)
TRAIN_CASES.update({
    "fit sample_weight, weighted_metrics, batches of 7 and 3, evaluate weighted": (
        "SGD", {"learning_rate": 0.1}, "mean_squared_error", ["MeanAbsoluteError"],
        "regression", lambda lib: {"batch_size": 7, "sample_weight": _weights_of(24, 1),
                                   "weighted_metrics": ["MeanAbsoluteError",
                                                        "MeanSquaredError"]}),
    "fit sample_weight validation_split (weights split too)": (
        "Adam", {"learning_rate": 0.05}, ("Huber", {"delta": 0.5}), [], "regression",
        lambda lib: {"batch_size": 5, "validation_split": 0.25,
                     "sample_weight": _weights_of(24, 2), "weighted_metrics": ["LogCoshError"]}),
    "fit class_weight sparse labels, validation_data unweighted": (
        "SGD", {"learning_rate": 0.2}, "sparse_categorical_crossentropy",
        ["SparseCategoricalAccuracy"], "sparse",
        lambda lib: {"batch_size": 7, "class_weight": {0: 0.5, 1: 2.0},
                     "weighted_metrics": ["SparseCategoricalAccuracy"],
                     "validation_data": (_train_data()["x"][:9], _train_data()["sparse"][:9])}),
    "fit class_weight one-hot labels": (
        "SGD", {"learning_rate": 0.2}, ("CategoricalCrossentropy", {"label_smoothing": 0.1}),
        [], "onehot", lambda lib: {"batch_size": 10, "class_weight": {2: 3.0, 0: 0.25},
                                   "weighted_metrics": ["CategoricalAccuracy"]}),
    "fit PyDataset of (x, y, sample_weight) batches": (
        "SGD", {"learning_rate": 0.1}, ("BinaryCrossentropy", {}), ["BinaryAccuracy"], "binary",
        lambda lib: {"dataset": _weighted_batches, "batch_size": None,
                     "weighted_metrics": ["BinaryAccuracy"]}),
    "fit loss reduction sum with sample_weight": (
        "SGD", {"learning_rate": 0.02}, ("MeanAbsoluteError", {"reduction": "sum"}), [],
        "regression", lambda lib: {"batch_size": 7, "sample_weight": _weights_of(24, 3)}),
    "fit sample_weight, weighted R2Score RootMeanSquaredError": (
        "SGD", {"learning_rate": 0.1}, "mean_squared_error", ["R2Score"], "regression",
        lambda lib: {"batch_size": 7, "sample_weight": _weights_of(24, 5),
                     "weighted_metrics": ["R2Score", "RootMeanSquaredError"]}),
    "fit sample_weight, weighted F1Score OneHotMeanIoU (float32)": (
        "SGD", {"learning_rate": 0.2}, "categorical_crossentropy", [], "onehot",
        lambda lib: {"batch_size": 7, "sample_weight": _weights_of(24, 6),
                     "weighted_metrics": [("F1Score", {"average": "macro"}),
                                          ("OneHotMeanIoU", {"num_classes": 3,
                                                             "dtype": "float32"})]}),
    "fit SparseCategoricalCrossentropy ignore_class 1 + its metric, sample_weight": (
        "SGD", {"learning_rate": 0.2}, ("SparseCategoricalCrossentropy", {"ignore_class": 1}),
        [("SparseCategoricalCrossentropy", {"ignore_class": 1})], "sparse",
        lambda lib: {"batch_size": 7, "sample_weight": _weights_of(24, 8),
                     "weighted_metrics": [("SparseCategoricalCrossentropy",
                                           {"ignore_class": 1})]}),
    "fit two outputs, sample_weight per output (list), weighted metrics per output": (
        "SGD", {"learning_rate": 0.1}, {"reg": "mean_squared_error",
                                         "cls": ("BinaryCrossentropy", {})},
        {"reg": ["MeanAbsoluteError"], "cls": ["BinaryAccuracy"]}, "two outputs",
        lambda lib: {"batch_size": 7, "sample_weight": [_weights_of(24, 9), _weights_of(24, 10)],
                     "weighted_metrics": {"reg": ["MeanAbsoluteError"],
                                          "cls": [("AUC", {})]}}),
    "fit validation_data with sample weights": (
        "SGD", {"learning_rate": 0.1}, "mean_squared_error", [], "regression",
        lambda lib: {"batch_size": 7, "weighted_metrics": ["MeanSquaredError"],
                     "validation_data": (_train_data()["x"][:9], _train_data()["regression"][:9],
                                         _weights_of(9, 4))}),
})
TRAIN_HIDDEN = {"BatchNormalization moving statistics after fit":
                L("BatchNormalization", momentum=0.6, epsilon=0.01),
                "ActivityRegularization penalty in the fit loss":
                L("ActivityRegularization", l1=0.05, l2=0.1)}
STEPS, TB = 3, 8  # batches of TB examples


# a model of two outputs: (name, units, activation) of each output's Dense layer
TWO_OUTPUTS = (("reg", 3, None), ("cls", 1, "sigmoid"))


def _train_model(lib, kind, hidden=None):
    """The model and the layers whose weights are compared (Dense last)."""
    x = lib.Input((5,))
    if kind == "two outputs":
        layers = [lib.layers.Dense(n, activation=act, name=name) for name, n, act in TWO_OUTPUTS]
        return lib.Model(x, [layer(x) for layer in layers]), layers
    act = {"onehot": "softmax", "sparse": "softmax", "binary": "sigmoid",
           "positive": "softplus"}.get(kind)
    layers = ([hidden(lib)] if hidden else []) + \
        [lib.layers.Dense(3 if kind != "binary" else 1, activation=act)]
    h = x
    for layer in layers:
        h = layer(h)
    return lib.Model(x, h), layers


def _train_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(STEPS * TB, 5)).astype("float32")
    cls = rng.integers(0, 3, STEPS * TB)
    onehot, sparse = np.eye(3, dtype="float32")[cls], cls.astype("int32")
    data = {"x": x, "onehot": onehot, "sparse": sparse, "logits": onehot,
            "sparse logits": sparse,
            "binary": (x[:, :1] + 0.3 * rng.normal(size=(STEPS * TB, 1)) > 0).astype("float32"),
            "regression": rng.normal(size=(STEPS * TB, 3)).astype("float32"),
            "positive": rng.uniform(0.5, 2.0, (STEPS * TB, 3)).astype("float32"),
            "w0": rng.normal(0, 0.5, (5, 3)).astype("float32"),
            "b0": rng.normal(0, 0.1, (3,)).astype("float32")}
    data["two outputs"] = [data["regression"], data["binary"]]
    return data


def _train(lib, name, data):
    opt_name, opt_kwargs, loss, metrics, kind, *extra = TRAIN_CASES[name]
    model, layers = _train_model(lib, kind, TRAIN_HIDDEN.get(name))
    dense = layers if kind == "two outputs" else layers[-1:]
    for layer in dense:
        n = layer.units
        layer.set_weights([data["w0"][:, :n], data["b0"][:n]])
    loss = _per_output(lib, loss, _loss)
    fit_kwargs = {"batch_size": TB, "epochs": 2, "shuffle": False, "verbose": 0,
                  **(extra[0](lib) if extra else {})}
    weighted = _per_output(lib, fit_kwargs.pop("weighted_metrics", []), _metric_objects)
    model.compile(optimizer=_optimizer(lib, opt_name, opt_kwargs), loss=loss,
                  metrics=_per_output(lib, metrics, _metric_objects),
                  weighted_metrics=weighted or None)
    if "dataset" in fit_kwargs:  # batches made by a PyDataset of lib's
        hist = model.fit(fit_kwargs.pop("dataset")(lib, data["x"], data[kind]), **fit_kwargs)
    else:
        hist = model.fit(data["x"], data[kind], **fit_kwargs)
    # Keras numbers a second metric of one class in a process ("auc_1"): compare by class
    keys = sorted(hist.history, key=_plain)
    values = [np.asarray(hist.history[k], np.float32) for k in keys]
    if "sample_weight" in fit_kwargs:  # evaluate weighs as fit does
        logs = model.evaluate(data["x"], data[kind], batch_size=5, verbose=0, return_dict=True,
                              sample_weight=fit_kwargs["sample_weight"])
        values += [np.float32(logs[k]) for k in sorted(logs, key=_plain)]
    weights = [w for layer in layers for w in layer.get_weights()]
    return [np.asarray(w) for w in weights] + values, [_plain(k) for k in keys]


def _loss(lib, loss):
    """lib's loss function of a name, or its class made with (name, kwargs)."""
    return getattr(lib.losses, loss) if isinstance(loss, str) else \
        getattr(lib.losses, loss[0])(**loss[1])


def _per_output(lib, spec, make):
    """make(lib, spec), or a dict of them by output name."""
    return {k: make(lib, v) for k, v in spec.items()} if isinstance(spec, dict) else \
        make(lib, spec)


def _metric_objects(lib, metrics):
    """lib's metric objects of names or (name, kwargs) (a callable value made of lib)."""
    return [getattr(lib.metrics, m)() if isinstance(m, str) else getattr(lib.metrics, m[0])(
        **{k: v(lib) if callable(v) else v for k, v in m[1].items()}) for m in metrics]


def _optimizer(lib, name, kwargs):
    """lib's optimizer `name`; an inner_optimizer given as (name, kwargs) is made too."""
    kwargs = {k: _optimizer(lib, *v) if k == "inner_optimizer" else v for k, v in kwargs.items()}
    return getattr(lib.optimizers, name)(**kwargs)


def _plain(key):
    head, _, tail = key.rpartition("_")
    return head if head and tail.isdigit() else key


def inputs():
    rng = np.random.default_rng(0)
    mix_labels = np.eye(5, dtype="float32")[np.random.default_rng(2).integers(0, 5, 16)]
    return {"pixels": rng.uniform(0, 255, (B,) + IMG).astype("float32"),
            "x3": rng.normal(size=(B,) + IMG).astype("float32"),
            "x3x5": rng.normal(size=(B, 3, 5, 2)).astype("float32"),
            "mix_labels": mix_labels,
            "mix_images": np.broadcast_to(mix_labels[:, None, None], (16, 3, 2, 5)).copy(),
            "cut_images": np.broadcast_to(np.argmax(mix_labels, -1)[:, None, None, None],
                                          (16, 9, 7, 1)).astype("float32"),
            "x2": rng.normal(size=(B,) + SEQ).astype("float32"),
            "y2": rng.normal(size=(B,) + SEQ).astype("float32"),
            "x1": rng.normal(size=(B, 6)).astype("float32"),
            "y1": rng.normal(size=(B, 6)).astype("float32"),
            "x1col": rng.normal(size=(B, 1)).astype("float32"),
            "x4": rng.normal(size=(B,) + VOL).astype("float32"),
            "v2": rng.normal(size=(B, 5, 6)).astype("float32"),
            "k2": rng.normal(size=(B, 5, 6)).astype("float32"),
            "tokens": rng.integers(0, 7, (B, 3)).astype("int32"),
            "token": rng.integers(0, 7, (B, 1)).astype("int32"),
            "indices": rng.integers(0, 5, (B, 3)).astype("int32")}


# data_format="channels_first": the shared inputs read as (batch, channels, spatial...)
CF = {"data_format": "channels_first"}
LAYER_CASES.update({
    "channels_first Conv1D MaxPooling1D GlobalAveragePooling1D": _seq(
        L("Conv1D", filters=4, kernel_size=3, padding="causal", **CF),
        L("MaxPooling1D", **CF), L("GlobalAveragePooling1D", keepdims=True, **CF),
        shape=SEQ),
    "channels_first Conv1DTranspose DepthwiseConv1D SeparableConv1D": _seq(
        L("Conv1DTranspose", filters=3, kernel_size=3, strides=2, **CF),
        L("DepthwiseConv1D", kernel_size=2, depth_multiplier=2, **CF),
        L("SeparableConv1D", filters=4, kernel_size=3, padding="same", **CF),
        L("ZeroPadding1D", padding=(1, 2), **CF), L("AveragePooling1D", pool_size=3, **CF),
        L("GlobalMaxPooling1D", **CF), shape=SEQ),
    "channels_first Conv2D AveragePooling2D UpSampling2D ZeroPadding2D Cropping2D": _seq(
        L("Conv2D", filters=4, kernel_size=(3, 2), padding="same", **CF),
        L("AveragePooling2D", pool_size=(2, 1), **CF), L("UpSampling2D", size=(1, 2), **CF),
        L("ZeroPadding2D", padding=((1, 0), (0, 2)), **CF),
        L("Cropping2D", cropping=((0, 1), (2, 1)), **CF), L("GlobalMaxPooling2D", **CF),
        shape=IMG),
    "channels_first Conv2DTranspose DepthwiseConv2D SeparableConv2D MaxPooling2D": _seq(
        L("Conv2DTranspose", filters=3, kernel_size=2, strides=2, **CF),
        L("DepthwiseConv2D", kernel_size=3, padding="same", **CF),
        L("SeparableConv2D", filters=4, kernel_size=2, **CF),
        L("MaxPooling2D", pool_size=2, padding="same", **CF),
        L("GlobalAveragePooling2D", keepdims=True, **CF), shape=IMG),
    "channels_first Conv3D MaxPooling3D UpSampling3D ZeroPadding3D Cropping3D": _seq(
        L("Conv3D", filters=2, kernel_size=2, padding="same", **CF),
        L("MaxPooling3D", pool_size=(2, 2, 1), **CF), L("UpSampling3D", size=(1, 2, 2), **CF),
        L("ZeroPadding3D", padding=1, **CF), L("Cropping3D", cropping=((1, 0), (0, 1), (1, 1)),
                                                **CF),
        L("GlobalAveragePooling3D", **CF), shape=VOL),
    "channels_first Conv3DTranspose AveragePooling3D GlobalMaxPooling3D": _seq(
        L("Conv3DTranspose", filters=2, kernel_size=2, strides=(1, 2, 1), **CF),
        L("AveragePooling3D", pool_size=2, padding="same", **CF),
        L("GlobalMaxPooling3D", keepdims=True, **CF), shape=VOL),
})


# every case, by a name of its own (tests/frontend/test_parity_coverage.py checks)
CASE_NAMES = list(LAYER_CASES) + list(TRAIN_CASES) + list(METRIC_CASES) + list(LOSS_CASES)


def peer_main(in_path, out_path, only):
    import keras
    keras.utils.set_random_seed(0)
    keys = {}
    rng = np.random.default_rng(1)

    def run_one(i, name, data, arrays):
        if name in TRAIN_CASES:
            outs, keys[name] = _train(keras, name, _train_data())
            return outs
        if name in METRIC_CASES:
            return keras_results(keras, name, metric_data())
        if name in LOSS_CASES:
            return keras_loss_values(keras, name)
        model, layers, names = LAYER_CASES[name](keras)
        for li, layer in enumerate(layers):
            ws = [np.asarray(w) + rng.normal(0, 0.2, w.shape).astype("float32")
                  for w in layer.get_weights()]
            layer.set_weights(ws)
            for wi, w in enumerate(ws):
                arrays[f"c{i}_l{li}_w{wi}"] = w
        return outputs(model, [data[n] for n in names])
    peer_run(in_path, out_path, only, CASE_NAMES, run_one, history_keys=keys)


def main(only, tolerance):
    data = inputs()

    def run_case(peer, theirs, i, name):
        import graphc.frontend as gk
        if name in TRAIN_CASES:
            ours, keys = _train(gk, name, _train_data())
            if keys != peer["history_keys"][name]:
                raise AssertionError(f"history keys {keys} != Keras's "
                                     f"{peer['history_keys'][name]}")
            return ours
        if name in METRIC_CASES:
            return graphc_results(gk, name, metric_data())
        if name in LOSS_CASES:
            return graphc_loss_values(gk, name)
        model, layers, names = LAYER_CASES[name](gk)
        for li, layer in enumerate(layers):
            layer.set_weights([theirs[f"c{i}_l{li}_w{wi}"] for wi in range(len(layer.weights))])
        return outputs(model, [data[n] for n in names])
    return run("keras_breadth_parity", __file__, data, only, tolerance, run_case)


if __name__ == "__main__":
    script_main(__doc__, peer_main, main)
