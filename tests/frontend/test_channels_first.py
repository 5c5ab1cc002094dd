"""data_format="channels_first" in the spatial layers and gk.ops: each against its
channels-last twin on transposed data (exact), at a run-time batch size, and through
get_config/from_config; gk.backend.image_data_format() is the default."""
import numpy as np
import pytest

import graphc as gc
import frontend as gk

L = gk.layers

# (layer class, constructor arguments, channels-first input shape without the batch)
CASES = [
    (L.Conv1D, dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (4, 9)),
    (L.Conv2D, dict(filters=4, kernel_size=(2, 3), strides=2, groups=2), (4, 7, 9)),
    (L.Conv3D, dict(filters=2, kernel_size=2, padding="same"), (3, 4, 5, 3)),
    (L.Conv1DTranspose, dict(filters=2, kernel_size=3, strides=2), (3, 5)),
    (L.Conv2DTranspose, dict(filters=2, kernel_size=3, strides=2, padding="same"), (3, 5, 4)),
    (L.Conv3DTranspose, dict(filters=2, kernel_size=2, strides=2), (3, 2, 3, 2)),
    (L.DepthwiseConv1D, dict(kernel_size=3, depth_multiplier=2), (3, 8)),
    (L.DepthwiseConv2D, dict(kernel_size=3, padding="same"), (3, 5, 7)),
    (L.SeparableConv1D, dict(filters=4, kernel_size=2), (3, 7)),
    (L.SeparableConv2D, dict(filters=4, kernel_size=3, strides=2), (3, 7, 6)),
    (L.MaxPooling1D, dict(pool_size=2, padding="same"), (3, 7)),
    (L.AveragePooling1D, dict(pool_size=3, strides=2), (3, 9)),
    (L.MaxPooling2D, dict(pool_size=2), (3, 7, 5)),
    (L.AveragePooling2D, dict(pool_size=(2, 3), padding="same"), (3, 7, 5)),
    (L.MaxPooling3D, dict(pool_size=2), (2, 4, 5, 3)),
    (L.AveragePooling3D, dict(pool_size=2, padding="same"), (2, 3, 5, 3)),
    (L.GlobalAveragePooling1D, dict(), (3, 7)),
    (L.GlobalMaxPooling1D, dict(keepdims=True), (3, 7)),
    (L.GlobalAveragePooling2D, dict(keepdims=True), (3, 5, 4)),
    (L.GlobalMaxPooling2D, dict(), (3, 5, 4)),
    (L.GlobalAveragePooling3D, dict(), (2, 3, 4, 5)),
    (L.GlobalMaxPooling3D, dict(keepdims=True), (2, 3, 4, 5)),
    (L.UpSampling2D, dict(size=(2, 3)), (3, 4, 5)),
    (L.UpSampling2D, dict(size=2, interpolation="bilinear"), (3, 4, 5)),
    (L.UpSampling3D, dict(size=(1, 2, 3)), (2, 3, 2, 2)),
    (L.ZeroPadding1D, dict(padding=(1, 2)), (3, 5)),
    (L.ZeroPadding2D, dict(padding=((1, 0), (2, 3))), (3, 4, 5)),
    (L.ZeroPadding3D, dict(padding=1), (2, 3, 2, 2)),
    (L.Cropping2D, dict(cropping=((1, 0), (2, 1))), (3, 4, 5)),
    (L.Cropping3D, dict(cropping=((1, 0), (0, 1), (1, 1))), (2, 3, 4, 5)),
    (L.AdaptiveAveragePooling2D, dict(output_size=(2, 3)), (3, 5, 7)),
    (L.AdaptiveMaxPooling1D, dict(output_size=3), (3, 8)),
    (L.AdaptiveMaxPooling3D, dict(output_size=(1, 2, 2)), (2, 3, 4, 5)),
]


def _model(layer, shape):
    inp = gk.Input(shape)
    return gk.Model(inp, layer(inp))


def _last(a):
    return np.moveaxis(a, 1, -1)


@pytest.mark.parametrize("cls,kwargs,shape", CASES, ids=[c[0].__name__ for c in CASES])
def test_channels_first_matches_channels_last_twin(cls, kwargs, shape):
    rng = np.random.default_rng(len(shape) * 7 + len(kwargs))
    first = _model(cls(data_format="channels_first", **kwargs), shape)
    last = _model(cls(data_format="channels_last", **kwargs), shape[1:] + shape[:1])
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in last.get_weights()]
    assert [w.shape for w in first.get_weights()] == [w.shape for w in weights]
    first.set_weights(weights)
    last.set_weights(weights)
    for batch in (3, 1):  # the batch size is known only at run time
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        want = last.predict(_last(x), verbose=0)
        got = first.predict(x, verbose=0)
        np.testing.assert_array_equal(got, want if want.ndim == 2 else np.moveaxis(want, -1, 1))
    clone = cls.from_config(first.layers[-1].get_config())
    assert clone.data_format == "channels_first"
    again = _model(clone, shape)
    again.set_weights(weights)
    np.testing.assert_array_equal(again.predict(x, verbose=0), got)


def test_image_data_format_is_the_default_and_bad_formats_are_refused():
    gk.backend.set_image_data_format("channels_first")
    try:
        layer = L.Conv2D(2, 3)
        assert layer.data_format == "channels_first"
        out = _model(layer, (3, 6, 5)).predict(np.ones((2, 3, 6, 5), np.float32), verbose=0)
        assert out.shape == (2, 2, 4, 3)
    finally:
        gk.backend.set_image_data_format("channels_last")
    assert L.MaxPooling2D().data_format == "channels_last"
    with pytest.raises(ValueError, match="data_format"):
        L.Conv2D(2, 3, data_format="NCHW")
    with pytest.raises(ValueError, match="data_format"):
        gk.ops.max_pool(gc.constant(np.ones((1, 2, 4, 4), np.float32)), 2, data_format="nchw")


OPS = [
    (lambda x, k, f: gk.ops.conv(x, k, 2, "same", data_format=f), (2, 3, 7, 6), (3, 3, 3, 4)),
    (lambda x, k, f: gk.ops.conv(x, k, 1, "valid", data_format=f, dilation_rate=2),
     (2, 3, 9), (2, 3, 2)),
    (lambda x, k, f: gk.ops.max_pool(x, 2, data_format=f), (2, 3, 5, 4, 4), None),
    (lambda x, k, f: gk.ops.average_pool(x, 3, 2, "same", data_format=f), (2, 3, 7), None),
    (lambda x, k, f: gk.ops.depthwise_conv(x, k, 1, "same", data_format=f), (2, 3, 5, 6),
     (3, 3, 3, 2)),
    (lambda x, k, f: gk.ops.separable_conv(x, k[0], k[1], data_format=f), (2, 3, 6, 5),
     None),
    (lambda x, k, f: gk.ops.conv_transpose(x, k, 2, data_format=f), (2, 3, 4, 5),
     (2, 2, 4, 3)),
]


@pytest.mark.parametrize("index", range(len(OPS)))
def test_ops_take_channels_first(index):
    fn, shape, kshape = OPS[index]
    rng = np.random.default_rng(index)
    x = rng.standard_normal(shape).astype(np.float32)
    if index == 5:
        k = (gc.constant(rng.standard_normal((2, 2, 3, 2)).astype(np.float32)),
             gc.constant(rng.standard_normal((1, 1, 6, 4)).astype(np.float32)))
    else:
        k = None if kshape is None else gc.constant(rng.standard_normal(kshape).astype(
            np.float32))
    got = gk.ops.convert_to_numpy(fn(gc.constant(x), k, "channels_first"))
    want = gk.ops.convert_to_numpy(fn(gc.constant(_last(x)), k, "channels_last"))
    np.testing.assert_array_equal(got, np.moveaxis(want, -1, 1))


def test_transposes_between_two_channels_first_convs_cancel():
    inp = gk.Input((3, 9, 8))
    h = L.Conv2D(4, 3, padding="same", data_format="channels_first", activation="relu")(inp)
    out = L.Conv2D(5, 3, data_format="channels_first")(h)
    dump = gc.function([inp], out).dump(stage="optimized")
    # one transpose in (fused into the first convolution) and one out, none in between
    assert dump.count("transpose[") == 2, dump


def test_image_preprocessing_layers_refuse_channels_first():
    # they would otherwise crop or resample the wrong axes
    for make in (lambda: L.CenterCrop(2, 2, data_format="channels_first"),
                 lambda: _model(L.Resizing(2, 2, data_format="channels_first"), (3, 4, 4))):
        with pytest.raises(gc.GraphcError, match="channels_last"):
            make()
