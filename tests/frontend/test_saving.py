"""model.save / load_model round trips, resuming training exactly; weights files; file
safety; custom layers through gk.saving.register."""
import io
import zipfile

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(6)
X = rng.normal(size=(40, 6, 6, 1)).astype("float32")
Y = rng.integers(0, 3, 40).astype("int32")


def cnn():
    model = gk.Sequential([L.Input((6, 6, 1)), L.Conv2D(4, 3, padding="same",
                                                        activation="relu"),
                           L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(),
                           L.Dense(3, activation="softmax")])
    model.compile(optimizer=gk.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_save_load_resumes_training_to_identical_weights(tmp_path):
    model = cnn()
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    path = model.save(tmp_path / "m.gck")
    model.fit(X, Y, batch_size=8, epochs=3, initial_epoch=2, verbose=0)
    expected = model.get_weights()

    with gc.Graph().as_default():
        loaded = gk.load_model(path)
        assert loaded.epochs_trained == 2
        assert loaded.optimizer.learning_rate == pytest.approx(0.01)
        loaded.fit(X, Y, batch_size=8, epochs=3, initial_epoch=loaded.epochs_trained, verbose=0)
        got = loaded.get_weights()
    assert len(got) == len(expected) == 8
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_functional_and_subclassed_round_trips(tmp_path):
    a, b = gk.Input((3,)), gk.Input((2,))
    h = L.Concatenate()([L.Dense(4, activation="gelu")(a), b])
    model = gk.Model([a, b], [L.Dense(1)(h), L.LayerNormalization()(h)])
    xa, xb = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    expect = model.predict([xa, xb])
    model.save(tmp_path / "f")
    loaded = gk.models.load_model(tmp_path / "f")
    for got, want in zip(loaded.predict([xa, xb]), expect):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert loaded.compiled is None

    @gk.saving.register
    class Scaled(gk.Model):
        def __init__(self, units, name=None):
            super().__init__(name=name)
            self.units = units
            self.dense = L.Dense(units)

        def call(self, x):
            return 2.0 * self.dense(x)

        def get_config(self):
            return {"units": self.units, "name": self.name}

    sub = Scaled(3)
    expect = sub.predict(xa)
    sub.save(tmp_path / "s")
    again = gk.load_model(tmp_path / "s")
    assert type(again) is Scaled and again.units == 3
    np.testing.assert_allclose(again.predict(xa), expect, rtol=1e-6)


def test_unregistered_custom_layer_says_how_to_register(tmp_path):
    class Doubler(L.Layer):
        def call(self, x):
            return 2.0 * x

    x = gk.Input((2,))
    model = gk.Model(x, Doubler()(x))
    with pytest.raises(gc.GraphcError, match="gk.saving.register"):
        model.save(tmp_path / "d")
    gk.saving.register(Doubler)
    model.save(tmp_path / "d")
    gk.saving._registered.pop("Doubler")
    with pytest.raises(gc.CheckpointError, match="unknown layer class 'Doubler'.*register"):
        gk.load_model(tmp_path / "d")


def test_weights_files_round_trip_and_check_shapes(tmp_path):
    model = cnn()
    other = cnn()
    model.save_weights(tmp_path / "w.bin")
    other.load_weights(tmp_path / "w.bin")
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    small = gk.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3), L.BatchNormalization(),
                           L.MaxPooling2D(), L.Flatten(), L.Dense(3)])
    with pytest.raises(gc.CheckpointError, match="has shape"):
        small.load_weights(tmp_path / "w.bin")


@pytest.mark.parametrize("member", ["/etc/passwd", "../escape.json", "a/../../b",
                                    "extra.txt"])
def test_unsafe_or_unexpected_members_are_refused(tmp_path, member):
    model = cnn()
    path = model.save(tmp_path / "m.gck")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(member, b"x")
    with pytest.raises(gc.CheckpointError, match="absolute path|unexpected member"):
        gk.load_model(path)


def test_corrupt_and_foreign_files_are_checkpoint_errors(tmp_path):
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(gc.CheckpointError, match="not a readable"):
        gk.load_model(tmp_path / "junk")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model.json", b'{"format": "something else"}')
        z.writestr("weights.npz", b"")
    (tmp_path / "foreign").write_bytes(buf.getvalue())
    with pytest.raises(gc.CheckpointError, match="not a graphc.frontend.model"):
        gk.load_model(tmp_path / "foreign")
