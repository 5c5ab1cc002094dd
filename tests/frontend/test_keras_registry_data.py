"""The custom-object registry (register_keras_serializable, custom_object_scope, load_model's
custom_objects), clone_model / model_from_json, PyDataset in fit, and the array utilities."""
import logging

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(0)


class Scale(gk.layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _model():
    inputs = gk.Input((3,))
    h = gk.layers.Dense(4, activation="relu")(inputs)
    return gk.Model(inputs, gk.layers.Dense(2)(Scale(3.0)(h)))


def test_load_model_finds_classes_in_custom_objects_and_the_registry(tmp_path):
    model = _model()
    gk.saving.register(Scale)  # for saving; loading must not rely on it below
    path = tmp_path / "m.gck"
    model.compile(optimizer="sgd", loss="mse")
    model.save(path)
    gk.saving._registered.pop("Scale")
    with pytest.raises(gc.CheckpointError, match="unknown layer class 'Scale'"):
        gk.models.load_model(path)
    x = rng.normal(size=(5, 3)).astype("float32")
    loaded = gk.models.load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    with gk.utils.custom_object_scope({"Scale": Scale}):
        assert gk.saving.get_registered_object("Scale") is Scale
    assert gk.saving.get_registered_object("Scale") is None


def test_register_keras_serializable_round_trips_objects():
    @gk.saving.register_keras_serializable(package="Test")
    def twice(x):
        return x * 2

    @gk.saving.register_keras_serializable(package="Test", name="Half")
    class HalfConstraint(gk.constraints.Constraint):
        def __init__(self, by=0.5):
            self.by = by

        def __call__(self, w):
            return w * self.by

        def get_config(self):
            return {"by": self.by}

    assert gk.saving.get_registered_name(twice) == "Test>twice"
    assert gk.utils.get_custom_objects()["Test>Half"] is HalfConstraint
    config = gk.saving.serialize_keras_object(HalfConstraint(0.25))
    assert config == {"class_name": "HalfConstraint", "config": {"by": 0.25},
                      "registered_name": "Test>Half"}
    again = gk.saving.deserialize_keras_object(config)
    assert isinstance(again, HalfConstraint) and again.by == 0.25
    assert gk.saving.deserialize_keras_object(gk.saving.serialize_keras_object(twice)) is twice
    with pytest.raises(gc.GraphcError, match="already registered"):
        gk.saving.register_keras_serializable(package="Test", name="twice")(len)
    with pytest.raises(gc.GraphcError, match="unknown object"):
        gk.saving.deserialize_keras_object("Test>missing")
    dense = gk.saving.deserialize_keras_object({"class_name": "Dense",
                                                "config": {"units": 3}})
    assert isinstance(dense, gk.layers.Dense) and dense.units == 3


def test_clone_model_and_model_from_json_have_fresh_weights():
    gk.saving.register(Scale)
    try:
        model = _model()
        x = rng.normal(size=(4, 3)).astype("float32")
        for clone in (gk.models.clone_model(model),
                      gk.models.model_from_json(model.to_json())):
            assert [w.shape for w in clone.get_weights()] == \
                [w.shape for w in model.get_weights()]
            assert not np.allclose(clone.get_weights()[0], model.get_weights()[0])
            clone.set_weights(model.get_weights())
            np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                                       rtol=1e-6)
        seq = gk.Sequential([gk.Input((3,)), gk.layers.Dense(2), gk.layers.Dense(1)])
        swapped = gk.models.clone_model(
            seq, clone_function=lambda l: gk.layers.Dense(l.units, use_bias=False))
        assert [w.shape for w in swapped.get_weights()] == [(3, 2), (2, 1)]
    finally:
        gk.saving._registered.pop("Scale", None)


class Batches(gk.utils.PyDataset):
    def __init__(self, x, y, size):
        super().__init__()
        self.x, self.y, self.size, self.epochs_ended = x, y, size, 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        part = slice(i * self.size, (i + 1) * self.size)
        return self.x[part], self.y[part]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_fit_reads_a_pydataset_batch_by_batch_like_arrays():
    x = rng.normal(size=(11, 3)).astype("float32")
    y = rng.normal(size=(11, 2)).astype("float32")
    histories, weights = [], []
    for source in ("arrays", "dataset"):
        with gc.Graph().as_default():
            gk.utils.set_random_seed(5)
            model = _model_plain()
            model.compile(optimizer=gk.optimizers.SGD(0.1), loss="mse")
            if source == "arrays":
                h = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
            else:
                ds = Batches(x, y, 4)
                h = model.fit(ds, epochs=3, verbose=0)
                assert ds.epochs_ended == 3
            histories.append(h.history["loss"])
            weights.append(model.get_weights())
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-6)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(gc.GraphcError, match="PyDataset"):
        _model_plain().fit(Batches(x, y, 4), y, verbose=0)


def _model_plain():
    inputs = gk.Input((3,))
    return gk.Model(inputs, gk.layers.Dense(2)(inputs))


def test_timeseries_windows_match_a_loop():
    data = np.arange(50).reshape(25, 2)
    targets = np.arange(25) * 10
    ds = gk.utils.timeseries_dataset_from_array(data, targets, sequence_length=4,
                                                sequence_stride=3, sampling_rate=2,
                                                batch_size=2, start_index=1)
    windows = [(w, t) for x, y in ds for w, t in zip(x, y)]
    starts = list(range(1, 25 - 6, 3))
    assert len(windows) == len(starts) and len(ds) == -(-len(starts) // 2)
    for (w, t), s in zip(windows, starts):
        np.testing.assert_array_equal(w, data[s:s + 7:2])
        assert t == targets[s]
    shuffled = gk.utils.timeseries_dataset_from_array(data, None, 4, shuffle=True, seed=1,
                                                      batch_size=None)
    x, none = shuffled[0]
    assert none is None and x.shape == (22, 4, 2)
    assert sorted(x[:, 0, 0].tolist()) == list(range(0, 44, 2))


def test_split_normalize_pack_config_and_source_inputs():
    x, y = np.arange(10), np.arange(10) * 2
    (lx, ly), (rx, ry) = gk.utils.split_dataset((x, y), left_size=0.3)
    assert lx.tolist() == [0, 1, 2] and ry.tolist() == [6, 8, 10, 12, 14, 16, 18]
    left, right = gk.utils.split_dataset(x, right_size=4, shuffle=True, seed=0)
    assert len(left) == 6 and sorted(np.concatenate([left, right]).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        gk.utils.split_dataset(x, left_size=8, right_size=5)
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(gk.utils.normalize(a), [[0.6, 0.8], [0.0, 0.0]])
    assert gk.utils.unpack_x_y_sample_weight((1, 2)) == (1, 2, None)
    assert gk.utils.pack_x_y_sample_weight(1, 2, 3) == (1, 2, 3)
    cfg = gk.utils.Config(lr=0.1)
    cfg.epochs = 3
    assert cfg["epochs"] == 3 and cfg.lr == 0.1
    cfg.freeze()
    with pytest.raises(ValueError):
        cfg.lr = 1.0
    a_in, b_in = gk.Input((2,)), gk.Input((2,))
    out = gk.layers.Add()([gk.layers.Dense(2)(a_in), b_in])
    assert gk.utils.get_source_inputs(out) == [a_in, b_in]


def test_disabled_interactive_logging_goes_to_the_logger(caplog, capsys):
    model = _model_plain()
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    gk.utils.disable_interactive_logging()
    try:
        assert not gk.utils.is_interactive_logging_enabled()
        with caplog.at_level(logging.INFO, logger="graphc.frontend"):
            model.fit(x, y, epochs=1, verbose=2)
    finally:
        gk.utils.enable_interactive_logging()
    assert "Epoch 1/1" in caplog.text and "Epoch" not in capsys.readouterr().out
