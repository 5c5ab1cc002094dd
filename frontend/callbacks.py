"""Callbacks: objects whose Keras-named hooks fit and evaluate call.

Hooks: on_train_begin/end(logs), on_epoch_begin/end(epoch, logs),
on_train_batch_begin/end(batch, logs), on_test_begin/end(logs), on_test_batch_begin/end,
on_predict_begin/end(logs), on_predict_batch_begin/end.
A callback sees the model as self.model and may set model.stop_training.
When fit stops on an exception (Ctrl-C included), each callback's `on_fit_stopped(error)` runs
before the exception goes on: the progress bar ends its line, CSVLogger has its rows on disk.
"""
import csv
import io
import math
import os

import numpy as np

from graphc.errors import CheckpointError, GraphcError
from graphc.io.atomic import write_text

from .progress import Progbar, output_stream
from . import distribution

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
         "on_predict_batch_begin", "on_predict_batch_end")


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params


for _hook in HOOKS + ("on_fit_stopped",):
    setattr(Callback, _hook, lambda self, *args, **kwargs: None)


class CallbackList:
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks):
        self.callbacks = callbacks

    def __getattr__(self, hook):
        if hook not in HOOKS:
            raise AttributeError(hook)

        def call_all(*args):
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
        return call_all

    def fit_stopped(self, error):
        """Tell every callback that fit stops on `error`; a callback that fails meanwhile
        does not hide it."""
        for cb in self.callbacks:
            try:
                cb.on_fit_stopped(error)
            except Exception:  # noqa: BLE001 - the original error is the one to see
                pass


def configure(callbacks, model, verbose, epochs, steps, mode="train"):
    """The user's callbacks, then a fresh History (fit) and a progress logger (verbose > 0)."""
    user = list(callbacks or [])
    for cb in user:
        if not isinstance(cb, Callback):
            raise GraphcError(f"callbacks must be gk.callbacks.Callback objects, got {cb!r}")
    all_cbs = list(user)
    if mode == "train":
        model.history = History()
        all_cbs.append(model.history)
    if verbose:  # last, so it shows what other callbacks add to the logs
        all_cbs.append(ProgbarLogger(verbose))
    params = {"epochs": epochs, "steps": steps, "verbose": verbose}
    for cb in all_cbs:
        cb.set_model(model)
        cb.set_params(params)
    return CallbackList(all_cbs)


class ProgbarLogger(Callback):
    """The progress bar (verbose=1) or one line per epoch (verbose=2, or not a terminal)."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream or output_stream()
        self.bar, self.seen = None, 0

    def _start(self):
        live = self.verbose == 1 and self.stream.isatty()
        self.bar, self.seen = Progbar(self.params["steps"], self.stream, live=live), 0

    def _step(self, batch, logs):
        self.seen = batch + 1
        self.bar.update(self.seen, logs or {})

    def on_epoch_begin(self, epoch, logs=None):
        self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
        self._start()

    def on_train_batch_end(self, batch, logs=None):
        self._step(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(self.seen, logs or {}, final=True)

    def on_train_begin(self, logs=None):
        self.in_fit = True  # fit's validation shows on the epoch's line, not a bar of its own

    def on_train_end(self, logs=None):
        self.in_fit = False

    def on_test_begin(self, logs=None):
        if not getattr(self, "in_fit", False):
            self._start()

    def on_test_batch_end(self, batch, logs=None):
        if not getattr(self, "in_fit", False):
            self._step(batch, logs)

    def on_test_end(self, logs=None):
        if not getattr(self, "in_fit", False):
            self.bar.update(self.seen, logs or {}, final=True)

    def on_fit_stopped(self, error):
        if self.bar is not None:
            self.bar.end_line()

    # predict shows its batches as evaluate does
    on_predict_begin = on_test_begin
    on_predict_batch_end = on_test_batch_end
    on_predict_end = on_test_end


class History(Callback):
    """history.history: {"loss": [per epoch], "accuracy": [...], "val_loss": [...], ...};
    history.epoch: the epoch numbers."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """Watches one logged value; mode "min", "max" or "auto" (max for accuracies)."""

    def __init__(self, monitor, mode, min_delta=0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise GraphcError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        if mode == "auto":
            mode = "max" if "acc" in monitor or monitor.endswith("auc") else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.best = None

    def improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise GraphcError(f"{type(self).__name__} monitors {self.monitor!r}, which is not "
                              f"logged; logged values are {sorted(logs or {})}")
        return value


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved for `patience` epochs. With
    restore_best_weights, the best epoch's weights come back at the end of training, also
    when training ran all its epochs without stopping early."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.stopped_epoch = None
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch = 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = self.current(logs)
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch to `filepath`, which may hold
    format fields: "ckpt-{epoch:02d}-{val_loss:.3f}.gck". Files are written atomically.
    With save_best_only, only when `monitor` improved."""

    def __init__(self, filepath, monitor="val_loss", save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self._monitor = _Monitor(monitor, mode)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._monitor.current(logs)
            if not self._monitor.improved(value):
                return
            self._monitor.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to schedule(epoch, current_rate)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        rate = float(self.schedule(epoch, self.model.optimizer.learning_rate))
        self.model.optimizer.learning_rate = rate
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience`
    epochs, then wait `cooldown` epochs; never below min_lr."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, verbose=0):
        super().__init__(monitor, mode, min_delta)
        if factor >= 1.0:
            raise GraphcError(f"ReduceLROnPlateau factor must be < 1, got {factor}")
        self.factor, self.patience, self.cooldown = factor, patience, cooldown
        self.min_lr, self.verbose = min_lr, verbose

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooling = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        value = self.current(logs)
        if self.cooling > 0:
            self.cooling -= 1
            self.wait = 0
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.cooling == 0:
            old = self.model.optimizer.learning_rate
            new = max(old * self.factor, self.min_lr)
            if new < old:
                self.model.optimizer.learning_rate = new
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{new}")
            self.cooling, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One CSV row per epoch: epoch, then the logged values in sorted order. The file is
    rewritten atomically at each epoch's end (a kill leaves the previous epoch's file, never a
    torn row); append=True keeps what the file held when training began."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys = None

    def on_train_begin(self, logs=None):
        self.text = ""
        if self.append and os.path.exists(self.filename):
            try:
                with open(self.filename, newline="") as f:
                    self.text = f.read()
            except OSError as err:
                raise CheckpointError(f"cannot read {self.filename} to append to it: "
                                      f"{err.strerror or err}", errno=err.errno,
                                      strerror=err.strerror, filename=self.filename) from None
            if self.text and not self.text.endswith("\n"):
                self.text += "\n"   # a row a killed writer of another kind left unfinished
        self.keys = None
        self.write_header = not self.text

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        rows = io.StringIO(newline="")
        writer = csv.writer(rows, delimiter=self.separator)
        if self.keys is None:
            self.keys = sorted(logs)
            if self.write_header:
                writer.writerow(["epoch"] + self.keys)
        writer.writerow([epoch] + [logs.get(k, "") for k in self.keys])
        text = self.text + rows.getvalue()
        distribution.chief_only(lambda: write_text(self.filename, text))  # rank 0 writes
        self.text = text   # only once written: a failed write is retried whole


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class BackupAndRestore(Callback):
    """Back training up to `backup_dir`, and resume from the backup when fit starts again
    after the process died (a kill, a preemption, Ctrl-C), as Keras 3's callback does.

    save_freq="epoch" backs up at each epoch's end; an integer N every N batches (counted
    across epochs). A backup holds the weights, the optimizer's state, the metrics' running
    totals, the epoch and batch reached, the History so far and every random stream (fit's
    shuffling, dropout masks, noise layers and gc.random draws in the model), so a fit that
    resumes from it finishes with the same weights, History and metrics as one that was never
    interrupted (bitwise on the same machine and thread count). The backup file is written
    atomically: a kill at any moment leaves the previous backup or the new one. With
    delete_checkpoint=True (the default) the backup is removed when fit ends normally (also
    when a callback stopped it early), not when it ends on an exception, so the next fit of the
    same run resumes. The other callbacks' own state (EarlyStopping's patience count,
    ReduceLROnPlateau's) is not backed up and starts again.
    """

    FILENAME = "latest.backup"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise GraphcError("BackupAndRestore needs a backup_dir")
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, (int, np.integer))
                                     or save_freq < 1):
            raise GraphcError(f"BackupAndRestore save_freq must be 'epoch' or a positive "
                              f"number of batches, got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, self.FILENAME)
        self._steps_done = 0

    def on_train_begin(self, logs=None):
        from . import saving
        self._steps_done = 0
        if not os.path.exists(self.path):
            return
        from .models.model import FitPosition
        state = saving.read_backup(self.model, self.path)
        self._steps_done = state["steps_done"]
        history = self.model.history
        if history is not None:
            history.history = {k: list(v) for k, v in state["history"][0].items()}
            history.epoch = list(state["history"][1])
        self.model._resume_at = FitPosition(state["epoch"], state["batch"], None, state["logs"])

    def _history(self, epoch=None, logs=None):
        """The History so far as JSON, with `epoch`'s logs added (History's on_epoch_end runs
        after the user's callbacks)."""
        history = self.model.history
        table = {k: list(v) for k, v in (history.history if history else {}).items()}
        epochs = list(history.epoch if history else [])
        if epoch is not None:
            epochs.append(epoch)
            for key, value in (logs or {}).items():
                table.setdefault(key, []).append(np.asarray(value, float).tolist())
        return {"history": table, "epoch": epochs}

    def _backup(self, history):
        from . import saving
        position = self.model._fit_position
        if position is not None:
            saving.write_backup(self.model, self.path, position, history, self._steps_done)

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done += 1
        if self.save_freq != "epoch" and self._steps_done % self.save_freq == 0:
            self._backup(self._history())

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._backup(self._history(epoch, logs))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:  # rank 0 removes it, the other ranks wait
            distribution.chief_only(self._delete)

    def _delete(self):
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.backup_dir)   # only if nothing else is in it
        except OSError:
            pass


class LambdaCallback(Callback):
    """A callback made of functions: on_epoch_begin/end(epoch, logs),
    on_train_batch_begin/end(batch, logs) (on_batch_begin/end are the same two),
    on_train_begin/end(logs), and any other hook name given as a keyword."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for old, new in (("on_batch_begin", "on_train_batch_begin"),
                         ("on_batch_end", "on_train_batch_end")):
            if old in kwargs:
                hooks[new] = kwargs.pop(old)
        for name in kwargs:
            if name not in HOOKS:
                raise GraphcError(f"LambdaCallback: unknown hook {name!r}")
        hooks.update(kwargs)
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


class SwapEMAWeights(Callback):
    """Evaluates and predicts with the optimizer's moving averages of the weights (an
    optimizer built with use_ema=True; a LossScaleOptimizer's inner one): they are swapped
    into the model for evaluate, predict and fit's validation and swapped back after. With
    swap_on_epoch=True they are also in the model between epochs (for callbacks such as
    ModelCheckpoint), and after the last epoch they stay: the averages become the weights."""

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = bool(swap_on_epoch)
        self._swapped = False

    def _optimizer(self):
        opt = getattr(self.model, "optimizer", None)
        opt = getattr(opt, "inner_optimizer", opt)
        if opt is None or not getattr(opt, "use_ema", False):
            raise GraphcError("SwapEMAWeights needs a model compiled with an optimizer "
                              "built with use_ema=True")
        return opt

    def _swap(self):
        opt, session = self._optimizer(), self.model.session
        for var, average in opt.averages.items():
            value = session.get_value(var)
            session.set_value(var, session.get_value(average))
            session.set_value(average, value)
        self._swapped = not self._swapped

    def _finalize(self):
        opt, session = self._optimizer(), self.model.session
        for var, average in opt.averages.items():
            session.set_value(average, session.get_value(var))

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._swapped:
            self._swap()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._swapped:
            self._swap()
            if epoch == self.params.get("epochs", 0) - 1:
                self._finalize()

    def on_test_begin(self, logs=None):
        if not self._swapped:
            self._swap()

    def on_test_end(self, logs=None):
        if self._swapped:
            self._swap()

    on_predict_begin, on_predict_end = on_test_begin, on_test_end


from . import tensorboard as _tensorboard  # noqa: E402  (it builds on Callback above)
TensorBoard = _tensorboard.TensorBoard
