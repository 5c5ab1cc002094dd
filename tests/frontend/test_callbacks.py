"""Callbacks: history, early stopping, checkpoints, learning-rate control, CSV, NaN, custom
hooks, and the progress output."""
import csv
import io
import re

import numpy as np
import pytest

import graphc.frontend as gk
from graphc.errors import GraphcError
from graphc.frontend import progress

L = gk.layers
rng = np.random.default_rng(7)
X = rng.normal(size=(32, 4)).astype("float32")
Y = (X @ rng.normal(size=(4, 1))).astype("float32")


def regression(lr=0.05):
    model = gk.Sequential([L.Input((4,)), L.Dense(1)])
    model.compile(optimizer=gk.optimizers.SGD(lr), loss="mse", metrics=["mae"])
    return model


class Scripted(gk.callbacks.Callback):
    """Overwrites the logged val_loss with a script, to drive the monitors."""

    def __init__(self, values):
        super().__init__()
        self.values = values
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.weights.append(self.model.get_weights())


def test_history_records_every_epoch():
    model = regression()
    history = model.fit(X, Y, epochs=3, validation_split=0.25, verbose=0)
    assert history is model.history and history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert history.history["loss"][2] < history.history["loss"][0]


def test_early_stopping_stops_and_restores_the_best():
    model = regression()
    script = Scripted([5.0, 3.0, 4.0, 4.5, 1.0])
    stop = gk.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    history = model.fit(X, Y, epochs=5, verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2] and stop.stopped_epoch == 2 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_even_without_stopping():
    model = regression()
    script = Scripted([5.0, 1.0, 4.0, 4.5])
    stop = gk.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    history = model.fit(X, Y, epochs=4, verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch is None
    for a, b in zip(model.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_best_only_with_formatted_names(tmp_path):
    model = regression()
    script = Scripted([3.0, 2.0, 2.5, 1.0])
    ckpt = gk.callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}-{val_loss:.1f}.keras"),
                                        save_best_only=True)
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[script, ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ep01-3.0.keras", "ep02-2.0.keras", "ep04-1.0.keras"]
    loaded = gk.load_model(tmp_path / "ep02-2.0.keras")
    for a, b in zip(loaded.get_weights(), script.weights[1]):
        np.testing.assert_array_equal(a, b)
    assert loaded.epochs_trained == 2


def test_learning_rate_scheduler_and_reduce_on_plateau():
    model = regression(lr=0.1)
    seen = []

    class Rate(gk.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    sched = gk.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[sched, Rate()])
    assert seen == pytest.approx([0.1, 0.05, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])

    model = regression(lr=0.1)
    seen.clear()
    plateau = gk.callbacks.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.03)
    model.fit(X, Y, epochs=6, verbose=0,
              callbacks=[Scripted([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), plateau, Rate()])
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.03, 0.03])


def test_lr_change_takes_effect_without_recompiling():
    model = regression(lr=0.1)
    model.fit(X, Y, epochs=1, verbose=0)
    fn = model.train_function
    model.optimizer.learning_rate = 0.0
    before = model.get_weights()
    model.fit(X, Y, epochs=1, verbose=0)
    assert model.train_function is fn
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_csv_logger(tmp_path):
    model = regression()
    model.fit(X, Y, epochs=2, verbose=0, validation_data=(X[:8], Y[:8]),
              callbacks=[gk.callbacks.CSVLogger(tmp_path / "log.csv")])
    rows = list(csv.reader(open(tmp_path / "log.csv")))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    assert float(rows[2][1]) == pytest.approx(model.history.history["loss"][1])


def test_terminate_on_nan_and_custom_hook_order():
    model = gk.Sequential([L.Input((4,)), L.Dense(1)])
    model.compile(optimizer=gk.optimizers.SGD(1e6), loss="mse")
    calls = []

    class Hooks(gk.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_train_batch_end(self, batch, logs=None):
            calls.append(f"batch {batch}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    history = model.fit(X * 1e3, Y * 1e3, batch_size=4, epochs=5, verbose=0,
                        callbacks=[Hooks(), gk.callbacks.TerminateOnNaN()])
    assert calls[:2] == ["train_begin", "epoch_begin 0"] and calls[-1] == "train_end"
    assert not np.isfinite(history.history["loss"][-1]) and len(history.epoch) == 1
    assert len([c for c in calls if c.startswith("batch")]) < 8


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_and_one_line_in_logs():
    model = regression()
    tty = FakeTTY()
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0,
              callbacks=[gk.callbacks.ProgbarLogger(1, stream=tty)])
    out = tty.getvalue()
    assert out.count("Epoch ") == 2 and "8/8 [====================]" in out
    assert "\r" in out and ("ms/step" in out or "us/step" in out)
    assert "- loss: " in out and "- mae: " in out

    log = io.StringIO()
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0,
              callbacks=[gk.callbacks.ProgbarLogger(1, stream=log)])
    lines = log.getvalue().splitlines()
    assert len(lines) == 4 and lines[1].startswith("8/8 ") and "\r" not in log.getvalue()


def test_the_bar_draws_its_unfilled_track_so_its_width_is_steady(monkeypatch):
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)  # draw every step
    tty = FakeTTY()
    bar = progress.Progbar(40, tty)
    for step in range(1, 41):
        bar.update(step, {"loss": 1.0 / step}, final=step == 40)
    frames = tty.getvalue().split("\r")[1:]
    assert len(frames) == 40
    for step, frame in enumerate(frames, 1):
        drawn = re.match(r" *(\d+)/40 \[(=*)(>?)(\.*)\] ", frame)
        assert drawn, frame
        assert int(drawn[1]) == step
        filled, arrow, track = map(len, drawn.groups()[1:])
        assert filled + arrow + track == progress.BAR  # the same width at every step
        assert filled + arrow == progress.BAR * step // 40
        assert arrow == (0 < filled + arrow < progress.BAR)
    assert frames[-1].startswith("40/40 [" + "=" * progress.BAR + "]")


def test_predict_shows_progress_with_verbose_and_calls_the_predict_hooks(capsys):
    model = regression()
    quiet = model.predict(X, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""
    w, b = model.get_weights()
    np.testing.assert_allclose(quiet, X @ w + b, rtol=1e-5, atol=1e-6)

    batches = []

    class Hooks(gk.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            batches.append(batch)

    tty = FakeTTY()
    shown = model.predict(X, batch_size=8, verbose=0,
                          callbacks=[Hooks(), gk.callbacks.ProgbarLogger(1, stream=tty)])
    np.testing.assert_array_equal(shown, quiet)
    assert batches == [0, 1, 2, 3]
    assert "\r" in tty.getvalue() and "4/4 [====================]" in tty.getvalue()

    model.predict(X, batch_size=8, verbose=1)  # stdout is not a terminal here: one line
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4 ") and "/step" in lines[0]
    model.evaluate(X, Y, batch_size=8, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("4/4 ") and "- loss: " in lines[0]


def test_swap_ema_weights_evaluates_with_the_averages_and_swaps_back():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(24, 3)).astype("float32"), rng.normal(size=(24, 2)).astype("float32")
    model = gk.Sequential([gk.layers.Input((3,)), gk.layers.Dense(2)])
    opt = gk.optimizers.SGD(0.2, use_ema=True, ema_momentum=0.5)
    model.compile(optimizer=opt, loss="mse")
    swap = gk.callbacks.SwapEMAWeights()
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                        validation_data=(x[:8], y[:8]), callbacks=[swap])
    weights = model.get_weights()
    averages = [model.session.get_value(opt.averages[v]) for v in model.trainable_weights]
    for w, a in zip(weights, averages):  # fit ends on the averages, as Keras's does
        np.testing.assert_array_equal(w, a)
    # change the weights: evaluate and predict under SwapEMAWeights see the averages
    model.set_weights([w + 1.0 for w in weights])
    kernel, bias = averages
    want = float(np.mean((x[:8] @ kernel + bias - y[:8]) ** 2))
    assert abs(model.evaluate(x[:8], y[:8], verbose=0, callbacks=[swap]) - want) < 1e-5
    np.testing.assert_allclose(model.predict(x[:8], verbose=0, callbacks=[swap]),
                               x[:8] @ kernel + bias, rtol=1e-5, atol=1e-6)
    for got, w in zip(model.get_weights(), weights):  # and the weights come back
        np.testing.assert_array_equal(got, w + 1.0)
    assert len(history.history["val_loss"]) == 2
    plain = gk.Sequential([gk.layers.Input((3,)), gk.layers.Dense(2)])
    plain.compile(optimizer="sgd", loss="mse")
    with pytest.raises(GraphcError, match="use_ema"):
        plain.evaluate(x, y, verbose=0, callbacks=[gk.callbacks.SwapEMAWeights()])
