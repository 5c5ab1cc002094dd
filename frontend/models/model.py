"""Model: a layer with training. Three ways to make one, as in Keras:

    gk.Model(inputs, outputs)              functional: the layer calls between gk.Input
                                           placeholders and the outputs, replayed on demand
    class Net(gk.Model): def call(...)      subclassed: built from the first data it sees
    gk.Sequential([...])                   a stack (see sequential.py)

Weights live in the session of the model's graph (frontend/backend.py). The model's inference
outputs are built once, with training=False; the train step replays the same layers with
training=True on the same input placeholders.
"""
import warnings
from dataclasses import dataclass, field

import numpy as np

import graphc as gc
from graphc.errors import CheckpointError, GraphcError
from graphc.ir.graph import Tensor
from graphc.runtime.devices import check_device
from graphc.runtime.kernel_cache import GraphcWarning

from .. import backend, callbacks as callbacks_mod, distribution, losses as losses_mod
from ..labels import CLASS_INDICES
from .. import optimizers as optimizers_mod
from ..layers.base import Layer, flatten, record_of
from . import data, interrupts, steps


@dataclass
class FitPosition:
    """Where a running fit stands after a step or an epoch: `batch` batches of `epoch` done
    (0 once an epoch is complete and `epoch` is the next one), the shuffler's state when that
    epoch began (it draws the epoch's order again on resuming) and the last batch's logs."""
    epoch: int
    batch: int
    shuffle_state: dict
    logs: dict = field(default_factory=dict)


class Model(Layer):
    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.inputs = None  # input placeholders, once built
        self.outputs = None  # inference outputs (training=False)
        self.compiled = None
        self.stop_training = False
        self.epochs_trained = 0
        self.history = None
        self._steps = {}
        # the compiled steps fit, evaluate and predict last used (gc.functions: .dump(), .stats())
        self.train_function = self.test_function = self.predict_function = None
        self._shuffle_rng = np.random.default_rng(backend.next_seed())
        self._train_step = None  # the train Step fit last used (its random nodes' streams)
        self._pending_streams = None  # train-step stream states loaded before the step existed
        self._resume_at = None  # where the next fit starts (set by BackupAndRestore)
        self._fit_position = None  # where the running fit stands (FitPosition)
        self._records = None  # functional: the layer calls from inputs to outputs
        if inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    # -- functional structure ---------------------------------------------------------------
    def _init_functional(self, inputs, outputs):
        ins, outs = flatten(inputs), flatten(outputs)
        if not ins or not outs or not all(isinstance(t, Tensor) for t in ins + outs):
            raise GraphcError("Model(inputs, outputs) takes tensors: gk.Input(...) "
                              "placeholders and the layer outputs computed from them")
        for t in ins:
            if t.op != "placeholder":
                raise GraphcError(f"model input '{t.name}' must be a gk.Input placeholder, got "
                                  f"a {t.op} op's output")
        self._multi_input = isinstance(inputs, (list, tuple))
        self._multi_output = isinstance(outputs, (list, tuple))
        self._records = _calls_between(ins, outs)
        self._layers = []
        for rec in self._records:
            if rec.layer not in self._layers:
                self._layers.append(rec.layer)
        self._set_io(ins, outs)

    def _set_io(self, inputs, outputs):
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._graph = self.inputs[0].graph
        self.built = True
        self.output_shape = _shapes_of(outputs, self._multi_output)

    @property
    def output_names(self):
        names = []
        for i, t in enumerate(self.outputs):
            rec = record_of(t)
            names.append(rec.layer.name if rec is not None and rec.layer is not self
                         else f"output_{i}")
        return names if len(set(names)) == len(names) else [f"output_{i}" for i in
                                                            range(len(names))]

    @property
    def layers(self):
        return list(self._layers) if self._records is not None else self.sublayers

    @property
    def graph(self):
        return self._graph

    def call(self, inputs, training=None):
        if self._records is None:
            raise GraphcError(f"model '{self.name}' has no structure: give Model(inputs, "
                              "outputs), or subclass Model and define call()")
        values = dict(zip(self.inputs, flatten(inputs)))
        if len(values) != len(self.inputs):
            raise GraphcError(f"model '{self.name}' takes {len(self.inputs)} inputs, got "
                              f"{len(flatten(inputs))}")
        for rec in self._records:
            args = [values[t] for t in flatten(rec.inputs)]
            outs = rec.layer(args if isinstance(rec.inputs, (list, tuple)) else args[0],
                             training=training, **rec.kwargs)
            values.update(zip(flatten(rec.outputs), flatten(outs)))
        result = [values[t] for t in self.outputs]
        return result if self._multi_output else result[0]

    @property
    def shows_inputs(self):
        """Whether summary() lists input rows: for functional and built Sequential models."""
        return self._records is not None

    def model_inputs_structure(self):
        return list(self.inputs) if self._multi_input else self.inputs[0]

    # -- building from data (subclassed and input-less Sequential models) ------------------------
    def build_from_arrays(self, xs):
        """Make input placeholders shaped like `xs` (None batch) and the inference outputs."""
        self.build_from_specs([(data.feed_dtype(a), a.shape[1:]) for a in xs])

    def build_from_specs(self, specs):
        """Build from (dtype, shape without the batch) per input."""
        if self.inputs is not None:
            return
        graph = self._graph if self._graph is not None else gc.get_default_graph()
        with graph.as_default():
            inputs = [gc.placeholder(dtype, shape=(None,) + tuple(shape), name="input")
                      for dtype, shape in specs]
            self._multi_input = len(inputs) > 1
            outputs = self(self._structure(inputs), training=False)
        self._multi_output = isinstance(outputs, (list, tuple))
        self._set_io(inputs, flatten(outputs))

    def _structure(self, inputs):
        return inputs if self._multi_input else inputs[0]

    def _require_built(self, what):
        if self.inputs is None:
            raise GraphcError(f"model '{self.name}' is not built yet: {what} needs its input "
                              "shape; give an Input, or call fit/predict with data first")

    # -- compile ------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, device=None):
        """Fix the optimizer, the loss (one, or one per output as a list or a dict by output
        name), metrics and weighted_metrics (a list for every output, or a dict by output
        name; as in Keras, only the weighted ones take fit's and evaluate's sample weights)
        and the device (None: graphc's default). Steps are compiled on first use."""
        if loss is None:
            raise GraphcError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        for each in (loss.values() if isinstance(loss, dict) else flatten(loss)):
            losses_mod.get(each)  # an unknown name fails here, not at the first fit
        check_device(device)  # an unknown or unbuilt device fails here, not at the first fit
        self.compiled = steps.Compiled(optimizers_mod.get(optimizer), loss, loss_weights,
                                       metrics or [], device, weighted_metrics or [])
        self._steps = {}
        if self.inputs is not None:
            self._resolve_compiled()

    def _resolve_compiled(self):
        """Per-output losses, weights and metric lists, once the outputs are known."""
        c = self.compiled
        if isinstance(c.losses, list) and c.losses and isinstance(c.losses[0],
                                                                   losses_mod.Loss):
            return  # resolved already
        names = self.output_names
        c.losses = [losses_mod.get(x) for x in _per_output(c.losses, names, "loss")]
        weights = c.loss_weights if c.loss_weights is not None else 1.0
        c.loss_weights = [float(w) for w in _per_output(weights, names, "loss_weights")]
        c.metric_ids = _metrics_per_output(c.metric_ids, names)
        c.weighted_metric_ids = _metrics_per_output(c.weighted_metric_ids, names)

    @property
    def optimizer(self):
        return self.compiled.optimizer if self.compiled else None

    @property
    def session(self):
        """The session that holds this model's weights."""
        self._require_built("its session")
        return backend.session(self._graph, self.compiled.device if self.compiled else None)

    def _step(self, kind, ys=None, weights=None):
        if kind != "predict" and self.compiled is None:
            raise GraphcError(f"model '{self.name}' must be compiled before {kind}: call "
                              "model.compile(optimizer, loss, metrics)")
        sess = self.session
        specs = tuple((data.label_dtype(y), y.shape[1:]) for y in ys or ())
        weight_shape = None if weights is None else tuple(w.shape[1:] for w in weights)
        key = (kind, specs, weight_shape, tuple(self.trainable_weights), id(sess),
               distribution.active())
        if key not in self._steps:
            if kind != "predict":
                self._resolve_compiled()
                if len(specs) != len(self.outputs):
                    raise GraphcError(f"model '{self.name}' has {len(self.outputs)} outputs, "
                                      f"got {len(specs)} target arrays")
            build = {"train": steps.build_train, "test": steps.build_test}
            self._steps[key] = (build[kind](self, specs, sess, weight_shape) if kind in build
                                else steps.build_predict(self, sess))
        setattr(self, f"{kind}_function", self._steps[key].function)
        if kind == "train":
            self._train_step = self._steps[key]
            if self._pending_streams is not None:
                self._apply_streams(self._pending_streams)
        return self._steps[key]

    def _start_data_parallel(self):
        """Every rank starts from rank 0's variables (weights, optimizer slots, metric totals)
        and shuffles and draws (dropout, noise) as rank 0 does."""
        graph, sess = self.graph, self.session
        variables = tuple(graph.variables)
        if getattr(self, "_broadcast", (None,))[0] != variables:
            self._broadcast = (variables, gc.distributed.broadcast_variables(0, graph=graph))
        sess.run(self._broadcast[1])
        state = distribution.bcast_object(self._shuffle_rng.bit_generator.state)
        self._shuffle_rng.bit_generator.state = state
        nodes = self._train_step.random_nodes if self._train_step is not None else ()
        if nodes:  # rank 0's generators (made now if they have not drawn yet), on every rank
            if distribution.rank() == 0:
                for node in nodes:
                    sess._rng(node.attrs["uid"], node.attrs["seed"])
            streams = distribution.bcast_object([sess.rng_state(node) for node in nodes])
            for node, stream in zip(nodes, streams):
                sess.set_rng_state(node, stream)

    # -- random streams ---------------------------------------------------------------------------
    def _random_state(self, shuffle_state=None):
        """Every random stream training draws from: fit's shuffler and the train step's random
        nodes (dropout, noise, gc.random draws), by their position in the step; JSON-able."""
        if self._train_step is not None:
            sess = self.session
            streams = [sess.rng_state(n) for n in self._train_step.random_nodes]
        else:
            streams = list(self._pending_streams or [])
        return {"shuffle": shuffle_state or self._shuffle_rng.bit_generator.state,
                "train_step": streams}

    def _set_random_state(self, state):
        """Continue the streams _random_state gave (a CheckpointError for a bad state); the
        train step's apply when it is built, if it is not yet."""
        from graphc.runtime.session import generator_from_state
        if not isinstance(state, dict) or not isinstance(state.get("train_step", []), list):
            raise CheckpointError("the random streams are not {'shuffle': ..., 'train_step': "
                                  "[...]}")
        streams = [None if s is None else generator_from_state(s).bit_generator.state
                   for s in state.get("train_step", [])]
        if state.get("shuffle") is not None:
            self._shuffle_rng = generator_from_state(state["shuffle"])
        self._pending_streams = streams
        if self._train_step is not None:
            self._apply_streams(streams)

    def _apply_streams(self, streams):
        nodes = self._train_step.random_nodes
        if len(streams) != len(nodes):
            warnings.warn(f"model '{self.name}': {len(streams)} saved random streams for the "
                          f"{len(nodes)} random draws of its train step; dropout masks and "
                          "noise will not continue the saved run's", GraphcWarning,
                          stacklevel=3)
        sess = self.session
        for node, state in zip(nodes, streams):
            if state is not None:
                sess.set_rng_state(node, state)
        self._pending_streams = None

    def _feeds(self, xs, ys=(), weights=None):
        """Arrays cast to their placeholders' dtypes, inputs, targets, then sample weights."""
        if len(xs) != len(self.inputs):
            raise GraphcError(f"model '{self.name}' takes {len(self.inputs)} inputs, got "
                              f"{len(xs)} arrays")
        feeds = [np.asarray(a, dtype=t.dtype.name if t.dtype.name != "bfloat16" else None)
                 for a, t in zip(xs, self.inputs)]
        return (feeds + [np.asarray(y, dtype=data.label_dtype(y)) for y in ys]
                + list(weights or ()))

    def _check_labels(self, ys, what):
        """Labels for losses that take class indices are in range, checked on the arrays as
        given, so that an error names the label's index in them (not in a shuffled batch)."""
        for i, (y, loss, out) in enumerate(zip(ys, self.compiled.losses, self.outputs)):
            classes = out.shape[-1]
            if getattr(loss, "label_kind", None) == CLASS_INDICES and isinstance(classes, int):
                data.check_class_indices(y, classes, what if len(ys) == 1 else f"{what}[{i}]",
                                         loss.name, getattr(loss, "ignore_class", None))

    def _reset_metrics(self):
        sess = self.session
        for metric in self.compiled.all_metrics():
            metric.reset(sess)

    # -- batches -------------------------------------------------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimizer step on one batch; returns the logs (loss and metrics) of that batch
        alone."""
        xs, ys = data.as_arrays(x, "x"), data.as_arrays(y, "y")
        data.num_examples(xs, ys)
        self.build_from_arrays(xs)
        ws = data.sample_weights(sample_weight, ys, self.output_names, class_weight)
        step = self._step("train", ys, ws)
        self._check_labels(ys, "y")
        self._reset_metrics()
        # data parallel: x is this rank's part of the batch, the ranks' parts in rank order
        window = distribution.local_window(len(xs[0])) if step.window else []
        outs = step.function(*self._feeds(xs, ys, ws), *window)
        return dict(zip(step.names, map(data.log_value, outs)))

    def test_on_batch(self, x, y, sample_weight=None):
        xs, ys = data.as_arrays(x, "x"), data.as_arrays(y, "y")
        data.num_examples(xs, ys)
        self.build_from_arrays(xs)
        ws = data.sample_weights(sample_weight, ys, self.output_names)
        step = self._step("test", ys, ws)
        self._check_labels(ys, "y")
        self._reset_metrics()
        outs = step.function(*self._feeds(xs, ys, ws))
        return dict(zip(step.names, map(data.log_value, outs)))

    def predict_on_batch(self, x):
        xs = data.as_arrays(x, "x")
        self.build_from_arrays(xs)
        outs = self._step("predict").function(*self._feeds(xs))
        return outs if self._multi_output else outs[0]

    # -- fit, evaluate, predict --------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0):
        """Train for epochs initial_epoch .. epochs-1; returns the History.

        validation_split takes the LAST fraction of x and y (and sample_weight) before any
        shuffling as validation data, as Keras does; validation_data=(x_val, y_val) or
        (x_val, y_val, val_sample_weight) gives it directly. sample_weight (one per example)
        or class_weight ({class: weight}) weight the loss and the weighted metrics. Each
        batch is one call of the compiled train step.
        """
        dataset = x if isinstance(x, data.PyDataset) else None
        if dataset is not None:  # its first batch builds the model and the step
            if y is not None or sample_weight is not None or validation_split or \
                    distribution.active():
                raise GraphcError("fit(PyDataset): y, sample_weight, validation_split and data "
                                  "parallelism do not apply; the dataset's batches hold the "
                                  "targets (and sample weights)")
            x, y, sample_weight = data.dataset_batch(dataset, 0)
        xs, ys = data.as_arrays(x, "x"), data.as_arrays(y, "y")
        if ys is None:
            raise GraphcError("fit needs targets y")
        data.num_examples(xs, ys)
        self.build_from_arrays(xs)
        names = self.output_names
        ws = data.sample_weights(sample_weight, ys, names)
        step = self._step("train", ys, data.sample_weights(ws, ys, names, class_weight))
        if distribution.active():
            self._start_data_parallel()
        self._check_labels(ys, "y")  # before the split, so that indices are the user's
        val = None
        if validation_data is not None:
            val_x, val_y, val_w = (tuple(validation_data) + (None,))[:3]
            val = (data.as_arrays(val_x, "validation x"), data.as_arrays(val_y, "validation y"))
            data.num_examples(*val, names=("validation x", "validation y"))
            val += (data.sample_weights(val_w, val[1], names),)
            self._check_labels(val[1], "validation y")
        elif validation_split:
            (xs, ys, ws), val = data.split_last([xs, ys, ws], validation_split)
        n = data.num_examples(xs, ys)
        ws = data.sample_weights(ws, ys, names, class_weight)  # the training part's alone
        batch_size = 32 if batch_size is None else batch_size
        steps_per_epoch = len(dataset) if dataset is not None else -(-n // batch_size)
        cbs = callbacks_mod.configure(callbacks, self, verbose=_verbosity(verbose),
                                      epochs=epochs, steps=steps_per_epoch)
        self.stop_training = False
        self._resume_at = self._fit_position = None
        cbs.on_train_begin()
        logs, first_epoch, first_batch = {}, initial_epoch, 0
        if self._resume_at is not None:  # a callback (BackupAndRestore) restored a backup
            at, self._resume_at = self._resume_at, None
            first_epoch, first_batch, logs = at.epoch, at.batch, dict(at.logs)
        # Ctrl-C lands between steps: the model is left at the last completed one
        with interrupts.deferred() as interrupt:
            try:
                for epoch in range(first_epoch, epochs):
                    resumed = epoch == first_epoch and first_batch > 0
                    cbs.on_epoch_begin(epoch)
                    if not resumed:  # a resumed epoch's metric totals came with the backup
                        self._reset_metrics()
                    shuffle_state = self._shuffle_rng.bit_generator.state
                    order = self._shuffle_rng.permutation(n) if shuffle and dataset is None \
                        else None
                    for i, args in enumerate(self._train_batches(
                            step, (xs, ys, ws), batch_size, order, dataset, class_weight)):
                        if resumed and i < first_batch:
                            continue
                        cbs.on_train_batch_begin(i)
                        outs = step.function(*args())
                        logs = dict(zip(step.names, map(data.log_value, outs)))
                        self._fit_position = FitPosition(epoch, i + 1, shuffle_state, logs)
                        cbs.on_train_batch_end(i, logs)
                        interrupt.check()
                        if self.stop_training:
                            break
                    if dataset is not None:
                        dataset.on_epoch_end()
                    epoch_logs = dict(logs)
                    if val is not None:  # evaluate's begin and end hooks, as in Keras
                        cbs.on_test_begin()
                        val_logs = self._evaluate_arrays(*val, batch_size,
                                                         interrupt=interrupt)
                        cbs.on_test_end(val_logs)
                        epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                    self.epochs_trained = epoch + 1
                    self._fit_position = FitPosition(epoch + 1, 0,
                                                     self._shuffle_rng.bit_generator.state)
                    cbs.on_epoch_end(epoch, epoch_logs)
                    interrupt.check()
                    if self.stop_training:
                        break
            except BaseException as error:  # Ctrl-C or a failure: bars end, files flush
                cbs.fit_stopped(error)
                raise
            finally:
                self._fit_position = None
        self.optimizer.finalize_variable_values(self.session)  # use_ema: the averages
        cbs.on_train_end(logs)
        return self.history

    def _train_batches(self, step, arrays, batch_size, order, dataset, class_weight):
        """For each batch of an epoch, a function giving the train step's arguments (read
        only when the batch is run, so that a resumed epoch skips the batches it did)."""
        if dataset is not None:
            for i in range(len(dataset)):
                yield lambda i=i: self._dataset_feeds(dataset, i, arrays[2] is not None,
                                                      class_weight)
            return
        n = len(arrays[0][0])
        for idx in data.batch_slices(n, batch_size, order):
            part = distribution.shard(idx, n)  # this rank's (all, alone)
            window = distribution.window(idx, n) if step.window else []
            yield lambda part=part, window=window: self._feeds(
                *_rows_of(arrays, part)) + list(window)

    def _dataset_feeds(self, dataset, i, weighted, class_weight):
        xs, ys, ws = data.dataset_batch(dataset, i)
        ws = data.sample_weights(ws, ys, self.output_names, class_weight)
        if (ws is not None) != weighted:  # the step was built from batch 0's
            raise GraphcError(f"{type(dataset).__name__}[{i}] has "
                              f"{'sample weights' if ws is not None else 'none'} where batch "
                              "0 has " + ("none" if ws is not None else "sample weights")
                              + ": give them in every batch or in none")
        return self._feeds(xs, ys, ws)

    def _evaluate_arrays(self, xs, ys, ws, batch_size, cbs=None, interrupt=None):
        step = self._step("test", ys, ws)
        self._reset_metrics()
        n = data.num_examples(xs, ys)
        logs = {}
        for i, idx in enumerate(data.batch_slices(n, batch_size)):
            if cbs:
                cbs.on_test_batch_begin(i)
            part = distribution.shard(idx, n)  # this rank's (all, alone)
            outs = step.function(*self._feeds(*_rows_of((xs, ys, ws), part)))
            logs = dict(zip(step.names, map(data.log_value, outs)))
            if cbs:
                cbs.on_test_batch_end(i, logs)
            if interrupt is not None:
                interrupt.check()
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", callbacks=None,
                 sample_weight=None, return_dict=False):
        """Loss and metrics over all of x, y (inference mode), the loss and the weighted
        metrics weighted by sample_weight: a list [loss, metrics...], or a dict with
        return_dict=True."""
        xs, ys = data.as_arrays(x, "x"), data.as_arrays(y, "y")
        n = data.num_examples(xs, ys)
        batch_size = 32 if batch_size is None else batch_size
        self.build_from_arrays(xs)
        ws = data.sample_weights(sample_weight, ys, self.output_names)
        self._step("test", ys, ws)
        self._check_labels(ys, "y")
        cbs = callbacks_mod.configure(callbacks, self, verbose=_verbosity(verbose), epochs=1,
                                      steps=-(-n // batch_size), mode="test")
        cbs.on_test_begin()
        logs = self._evaluate_arrays(xs, ys, ws, batch_size, cbs)
        cbs.on_test_end(logs)
        return logs if return_dict else (list(logs.values()) if len(logs) > 1
                                         else next(iter(logs.values())))

    def predict(self, x, batch_size=None, verbose="auto", callbacks=None):
        """The model's outputs (inference mode) for all of x, batch by batch."""
        xs = data.as_arrays(x, "x")
        n = data.num_examples(xs)
        batch_size = 32 if batch_size is None else batch_size
        self.build_from_arrays(xs)
        step = self._step("predict")
        cbs = callbacks_mod.configure(callbacks, self, verbose=_verbosity(verbose), epochs=1,
                                      steps=-(-n // batch_size), mode="predict")
        cbs.on_predict_begin()
        chunks = []
        for i, idx in enumerate(data.batch_slices(n, batch_size)):
            cbs.on_predict_batch_begin(i)
            part = distribution.shard(idx, n)  # data parallel: every rank gets every shard
            chunks.extend(distribution.allgather_object(
                step.function(*self._feeds([a[part] for a in xs]))))
            cbs.on_predict_batch_end(i)
        cbs.on_predict_end()
        outs = [np.concatenate([c[i] for c in chunks]) for i in range(len(self.outputs))]
        return outs if self._multi_output else outs[0]

    # -- inspection and saving ------------------------------------------------------------------
    def summary(self, print_fn=print):
        from .summary import summary_text
        print_fn(summary_text(self))

    def save(self, path):
        """One file with the architecture, weights, optimizer state and epoch count (see
        gk.saving)."""
        from .. import saving
        return saving.save_model(self, path)

    def to_json(self, **kwargs):
        """The architecture (no weights) as JSON text, for gk.models.model_from_json."""
        import json
        from .. import saving
        self._require_built("to_json")
        return json.dumps(saving.model_config(self), **kwargs)

    def export(self, filepath, format="onnx", verbose=None, opset=None):
        """Write the inference graph (dropout off, batch norm on its moving statistics) as an
        ONNX model with the weights' current values; the batch axis stays dynamic. Returns the
        onnx.ModelProto. Only format="onnx" exists (Keras 3's spelling)."""
        if format != "onnx":
            raise GraphcError(f"model.export: format {format!r} is not supported; graphc "
                              "exports format=\"onnx\"")
        self._require_built("export")
        from graphc import onnx as gonnx
        model = gonnx.export(filepath, self.outputs, inputs=self.inputs, session=self.session,
                             opset=opset, output_names=self.output_names,
                             graph_name=self.name)
        if verbose:
            print(f"Saved the ONNX model of '{self.name}' at {filepath}")
        return model

    def save_weights(self, path):
        from .. import saving
        return saving.save_weights(self, path)

    def load_weights(self, path):
        from .. import saving
        saving.load_weights(self, path)


def _verbosity(verbose):
    if not distribution.is_chief():  # data parallel: rank 0 alone prints
        return 0
    return 1 if verbose == "auto" else int(verbose)


def _rows_of(arrays, part):
    """(xs, ys, weights) at rows `part` (weights None where there are none)."""
    xs, ys, ws = arrays
    return [a[part] for a in xs], [a[part] for a in ys], \
        None if ws is None else [w[part] for w in ws]


def _shapes_of(outputs, multi):
    shapes = [tuple(d if isinstance(d, int) else None for d in t.shape) for t in outputs]
    return shapes if multi else shapes[0]


def _calls_between(inputs, outputs):
    """The layer calls that compute `outputs` from `inputs`, inputs before users."""
    order, seen, starts = [], set(), set(inputs)
    stack = [(t, False) for t in reversed(outputs)]
    while stack:
        t, expanded = stack.pop()
        if t in starts:
            continue
        rec = record_of(t)
        if rec is None:
            raise GraphcError(f"tensor '{t.name}' is not computed from the model's inputs by "
                              "layers: every step between gk.Input and the outputs must be a "
                              "layer call (wrap other ops in a custom Layer)")
        if id(rec) in seen:
            continue
        if expanded:
            seen.add(id(rec))
            order.append(rec)
            continue
        stack.append((t, True))
        stack.extend((i, False) for i in reversed(flatten(rec.inputs)))
    return sorted(order, key=lambda rec: rec.seq)


def _per_output(value, names, what):
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise GraphcError(f"{what} dict lacks outputs {missing}; outputs are {names}")
        return [value[n] for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise GraphcError(f"{what} has {len(value)} entries for {len(names)} outputs")
        return list(value)
    return [value] * len(names)


def _metrics_per_output(metrics, names):
    if isinstance(metrics, dict):
        return [list(flatten(metrics.get(n, []))) for n in names]
    return [list(metrics) for _ in names]
