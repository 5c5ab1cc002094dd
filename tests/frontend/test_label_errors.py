"""Labels that do not fit the model: what fit, evaluate and the losses say, and that labels
which fit the Keras way (a trailing axis of 1 more or fewer) give the numpy values."""
import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

L = gk.layers
rng = np.random.default_rng(12)
X = rng.normal(size=(40, 4, 4, 1)).astype("float32")
Y = rng.integers(0, 5, 40).astype("int32")
ONE_HOT = np.eye(5, dtype="float32")[Y]


def classifier(loss, flatten=True, metrics=()):
    model = gk.Sequential([L.Input((4, 4, 1))] + [L.Flatten()] * flatten
                          + [L.Dense(8, activation="relu"), L.Dense(5, activation="softmax")])
    model.compile(optimizer=gk.optimizers.SGD(0.1), loss=loss, metrics=list(metrics))
    return model


def refused(model, error, *words, x=X, y=Y, **fit_args):
    """model.fit raises `error` whose message holds `words`, before changing any weight."""
    before = model.get_weights() if model.inputs is not None else None
    with pytest.raises(error) as info:
        model.fit(x, y, **{"epochs": 1, "batch_size": 8, "verbose": 0, **fit_args})
    for word in words:
        assert word in str(info.value), str(info.value)
    if before is not None:
        for a, b in zip(before, model.get_weights()):
            np.testing.assert_array_equal(a, b)
    return info.value


@pytest.mark.parametrize("loss, labels, given, suggested", [
    ("sparse_categorical_crossentropy", ONE_HOT, "got labels of shape (None, 5)",
     "look like one-hot rows: use 'categorical_crossentropy'"),
    ("categorical_crossentropy", Y, "got labels of shape (None,)",
     "look like class indices: use 'sparse_categorical_crossentropy'"),
    ("categorical_crossentropy", Y[:, None], "got labels of shape (None, 1)",
     "look like class indices: use 'sparse_categorical_crossentropy'"),
])
def test_a_loss_fed_the_other_kind_of_labels_names_the_loss_that_takes_them(
        loss, labels, given, suggested):
    error = refused(classifier(loss), gc.ShapeError, loss, given, suggested, y=labels)
    assert isinstance(error, ValueError)
    classifier(TWIN[loss]).fit(X, labels, epochs=1, verbose=0)  # the suggestion works


TWIN = {"sparse_categorical_crossentropy": "categorical_crossentropy",
        "categorical_crossentropy": "sparse_categorical_crossentropy"}


def test_a_metric_fed_the_other_kind_of_labels_names_the_metric_that_takes_them():
    model = classifier("categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    refused(model, gc.ShapeError, "sparse_categorical_accuracy takes class indices",
            "use 'categorical_accuracy'", y=ONE_HOT)


@pytest.mark.parametrize("loss, labels", [("sparse_categorical_crossentropy", Y),
                                          ("categorical_crossentropy", ONE_HOT)])
def test_dense_on_images_without_flatten_suggests_flatten(loss, labels):
    model = classifier(loss, flatten=False)
    # as in Keras, Dense applies to the last axis, so the model itself is valid
    assert model.output_shape == (None, 4, 4, 5)
    refused(model, gc.ShapeError, "predictions of shape (None, 4, 4, 5)",
            "Dense layer '", "gets inputs of shape (None, 4, 4, 1)", "Flatten()", y=labels)


def test_labels_that_broadcast_are_refused_not_averaged_over_the_wrong_pairs():
    model = classifier("categorical_crossentropy", flatten=False)
    # batches of 4 one-hot rows (4, 5) broadcast against predictions (4, 4, 4, 5)
    refused(model, gc.ShapeError, "(None, 4, 4, 5)", y=ONE_HOT, batch_size=4)


@pytest.mark.parametrize("x, y, words", [
    (X, Y[:30], ["x has 40 samples, y has 30 samples"]),
    (X[:25], Y, ["x has 25 samples, y has 40 samples"]),
    ([X, X[:39]], Y, ["x[0] has 40 samples, x[1] has 39 samples, y has 40 samples"]),
])
def test_x_and_y_of_different_lengths_say_which_is_which(x, y, words):
    a, b = L.Input((4, 4, 1)), L.Input((4, 4, 1))
    both = L.Dense(5, activation="softmax")(L.Flatten()(L.Add()([a, b])))
    model = gk.Model([a, b], both) if isinstance(x, list) else classifier(
        "sparse_categorical_crossentropy")
    if isinstance(x, list):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    error = refused(model, gc.ShapeError, *words, x=x, y=y)
    assert isinstance(error, ValueError)
    with pytest.raises(gc.ShapeError, match=words[0].replace("[", r"\[").replace("]", r"\]")):
        model.evaluate(x, y, verbose=0)


def test_validation_data_of_different_lengths_is_named():
    refused(classifier("sparse_categorical_crossentropy"), gc.ShapeError,
            "validation x has 10 samples, validation y has 9 samples",
            validation_data=(X[:10], Y[:9]))


def test_a_label_out_of_range_is_reported_at_its_index_in_the_users_array():
    bad = Y.copy()
    bad[37] = 7  # 5 classes
    model = classifier("sparse_categorical_crossentropy")
    error = refused(model, gc.IndexError_, "y[37] is 7", "[0, 5)", "1 bad labels", y=bad,
                    shuffle=True, validation_split=0.25)  # 37 lies in the validation part
    assert isinstance(error, IndexError)
    bad[3] = -1
    refused(model, gc.IndexError_, "y[3] is -1", "2 bad labels", y=bad)
    refused(model, gc.IndexError_, "validation y[1] is 9", validation_data=(X[:4], np.array([0, 9, 1, 2])))
    with pytest.raises(gc.IndexError_, match=r"y\[3\] is -1"):
        model.evaluate(X, bad, verbose=0)
    with pytest.raises(gc.IndexError_, match=r"y\[0\] is 5"):
        model.train_on_batch(X[:2], np.array([5, 0]))


def test_labels_with_a_trailing_axis_of_one_fewer_fit_as_in_keras():
    """(n,) labels for (n, 1) predictions: the loss and metrics pair them row by row (they
    were broadcast to (n, n) and averaged over every pair)."""
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = gk.Sequential([L.Input((3,)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", "mse"])
    loss, accuracy, mse = model.evaluate(x, y, batch_size=40, verbose=0)
    p = model.predict(x)[:, 0].astype("float64")
    np.testing.assert_allclose(loss, -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)),
                               rtol=1e-5)
    np.testing.assert_allclose(accuracy, np.mean((p > 0.5) == y), rtol=1e-6)
    np.testing.assert_allclose(mse, np.mean((p - y) ** 2), rtol=1e-5)
    labels = gc.placeholder(gc.float32, (None,))
    predictions = gc.placeholder(gc.float32, (None, 1))
    per_example = gk.losses.MeanSquaredError(reduction=None)(labels, predictions)
    got = gc.Session().run(per_example, {labels: y.astype("float32"), predictions: p[:, None]})
    np.testing.assert_allclose(got, (p - y) ** 2, rtol=1e-6)
