"""The compiled steps of a model: train, test and predict, each ONE gc.function.

train: forward (training=True), loss, gradients, optimizer update, batch-norm statistics and
metric updates, so a batch costs one call. Placeholders have a None batch dim, so a last batch
of another size runs the same executable.
"""
from dataclasses import dataclass

import graphc as gc
from graphc.errors import ShapeError
from graphc.ir.types import format_shape

from .. import distribution, losses as losses_mod, metrics as metrics_mod
from ..layers.base import flatten
from ..layers.core import Dense


@dataclass
class Step:
    function: object  # the gc.function
    names: list  # the log name of each output
    random_nodes: tuple = ()  # the random draws it makes (dropout, noise), in creation order
    window: bool = False  # data parallel: fed [global batch rows, this rank's offset] last


def random_nodes(tensors):
    """The random nodes `tensors` depend on, oldest first: a model's streams, by position."""
    seen, found, stack = set(), [], [t.node for t in tensors]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.spec.random:
            found.append(node)
        stack.extend(t.node for t in node.inputs)
    return tuple(sorted(found, key=lambda n: n.attrs["uid"]))


def _rows(t):
    """The number of rows (examples) of t, as a float tensor of the run-time batch size."""
    first = t if t.ndim == 1 else t[(slice(None),) + (0,) * (t.ndim - 1)]
    return gc.sum(gc.ones_like(gc.cast(first, gc.float32)))


def _targets(model, specs, weight_shapes):
    """One label placeholder per output, of the dtype and trailing shape of the data, and one
    for its sample weights (None where the data has none)."""
    names = model.output_names
    targets = [gc.placeholder(dtype, shape=(None,) + tuple(shape), name=f"{names[i]}_target")
               for i, (dtype, shape) in enumerate(specs)]
    weights = None if weight_shapes is None else [
        gc.placeholder(gc.float32, shape=(None,) + tuple(shape),
                       name=f"{names[i]}_sample_weight")
        for i, shape in enumerate(weight_shapes)]
    return targets, weights


def _losses_and_metrics(model, targets, outputs, sample_weights):
    """(total loss, [(updates, result, name)], batch size) for the compiled losses and
    metrics, as Keras computes them: each output's loss reduced by the loss (with the sample
    weights), the loss trackers' running means weighted by the batch size; the weighted
    metrics take the sample weights, the others not."""
    compiled = model.compiled
    multi = len(outputs) > 1
    tracked = []
    total = 0.0
    batch = _rows(outputs[0])
    for i, (y, out) in enumerate(zip(targets, outputs)):
        sample_weight = None if sample_weights is None else sample_weights[i]
        try:
            loss = losses_mod.as_loss(compiled.losses[i])(y, out, sample_weight=sample_weight)
            metrics = [(metric, metric.update(y, out, sample_weight=sample_weight if weighted
                                              else None))
                       for metric, weighted in compiled.metrics_for(i, y, out)]
        except ShapeError as err:
            raise ShapeError(err.detail + _flatten_hint(model, out), err.node) from None
        if loss.ndim:  # reduction=None: the mean, so that the step minimizes a scalar
            loss = gc.mean(loss)
        total = total + compiled.loss_weights[i] * loss
        if multi:
            tracked.append(compiled.loss_tracker(f"{model.output_names[i]}_loss")
                           .update_mean(loss, batch) + (f"{model.output_names[i]}_loss",))
        for metric, update in metrics:
            name = f"{model.output_names[i]}_{metric.name}" if multi else metric.name
            tracked.append(update + (name,))
    # the weights' penalties, and those that the call building `outputs` added (activity)
    for penalty in model.losses + model.call_losses:
        total = total + penalty
    head = compiled.loss_tracker("loss").update_mean(total, batch) + ("loss",)
    return total, [head] + tracked, batch


def _flatten_hint(model, predictions):
    """Why labels may not fit predictions of rank > 2: a Dense layer fed a tensor of rank > 2
    applies to its last axis only (as in Keras), where a Flatten before it was meant."""
    if predictions.ndim <= 2:
        return ""
    for layer in _all_layers(model):
        if isinstance(layer, Dense) and layer.input_shape and len(layer.input_shape) > 2:
            return (f"; Dense layer '{layer.name}' gets inputs of shape "
                    f"{format_shape(layer.input_shape)} and, as in Keras, applies to their last "
                    "axis only: if each example has one label, put a Flatten() layer before it")
    return ""


def _all_layers(model):
    for layer in model.layers:
        yield layer
        yield from _all_layers(layer) if hasattr(layer, "layers") else ()


def build_train(model, specs, session, weight_shapes=None):
    graph = model.graph
    with graph.as_default(), graph.root_scope():
        targets, sample_weights = _targets(model, specs, weight_shapes)
        # data parallel: random draws are the global batch's, batch norm syncs (window: the
        # [rows, offset] placeholders fed each step)
        with distribution.train_step_scope(model.inputs) as window:
            outputs = flatten(model(model.model_inputs_structure(), training=True))
        state_updates = list(model.updates)
        total, tracked, batch = _losses_and_metrics(model, targets, outputs, sample_weights)
        weights = model.trainable_weights
        scaled = model.compiled.optimizer.scale_loss(total)  # LossScaleOptimizer's
        if distribution.active() and weights:
            grads = _global_batch_gradients(scaled, weights, batch)
        else:
            grads = gc.grad(scaled, weights, unconnected="zero") if weights else []
        opt_updates = model.compiled.optimizer.apply(grads, weights) if weights else []
        constrained = model.weight_constraints  # projected after the update, as Keras does
        opt_updates = [(var, constrained[var](new) if var in constrained else new)
                       for var, new in opt_updates]
    updates = state_updates + opt_updates + [u for upd, _, _ in tracked for u in upd]
    results = [r for _, r, _ in tracked]
    fn = gc.function(model.inputs + targets + list(sample_weights or ()) + window, results,
                     updates=updates, session=session, name=f"{model.name}_train_step")
    return Step(fn, [n for _, _, n in tracked],
                random_nodes(results + [value for _, value in updates
                                         if hasattr(value, "node")]), bool(window))


def _global_batch_gradients(loss, weights, batch):
    """Data parallel: the gradients of the loss over the global batch, from each rank's loss
    over its shard weighted by the shard's share of the examples (an empty shard's zero),
    differentiated, then summed over the ranks in fused buckets. The loss is weighted before
    differentiating so that gradients crossing ranks inside the step (through the allreduces
    of sync batch norm, whose gradient is the allreduce of the upstream ones) carry each
    rank's weight too."""
    total, = distribution.sum_over_ranks([batch])
    share = gc.stop_gradient(batch / gc.maximum(total, 1.0))
    grads = gc.grad(loss * share, weights, unconnected="zero")
    weighted = [gc.where(batch > 0, g, 0.0) for g in grads]
    return gc.distributed.grouped_allreduce(weighted, op="sum")


def build_test(model, specs, session, weight_shapes=None):
    graph = model.graph
    with graph.as_default(), graph.root_scope():
        targets, sample_weights = _targets(model, specs, weight_shapes)
        outputs = flatten(model(model.model_inputs_structure(), training=False))
        _, tracked, _ = _losses_and_metrics(model, targets, outputs, sample_weights)
    # at inference only stateful recurrent layers update (their states, for the next batch)
    fn = gc.function(model.inputs + targets + list(sample_weights or ()),
                     [r for _, r, _ in tracked],
                     updates=list(model.updates) + [u for upd, _, _ in tracked for u in upd],
                     session=session, name=f"{model.name}_test_step")
    return Step(fn, [n for _, _, n in tracked])


def _carries_state(layer):
    """Whether a layer or any layer inside it is stateful (carries states across batches)."""
    return getattr(layer, "stateful", False) or any(map(_carries_state, layer.sublayers))


def build_predict(model, session):
    outputs, updates = list(model.outputs), []
    if _carries_state(model):
        # the model called anew, so that its states' updates come with the outputs
        with model.graph.as_default(), model.graph.root_scope():
            outputs = flatten(model(model.model_inputs_structure(), training=False))
        updates = list(model.updates)
    fn = gc.function(model.inputs, outputs, updates=updates, session=session,
                     name=f"{model.name}_predict_step")
    return Step(fn, list(model.output_names))


class Compiled:
    """What compile() fixed: optimizer, one loss per output, metrics (weighted or not),
    device."""

    def __init__(self, optimizer, losses, loss_weights, metrics, device, weighted_metrics=()):
        self.optimizer = optimizer
        self.losses = losses
        self.loss_weights = loss_weights
        self.metric_ids = metrics  # per output: a list of names or Metric objects
        self.weighted_metric_ids = weighted_metrics  # the same, for weighted_metrics
        self.device = device
        self._metrics = {}  # output index -> [(Metric, weighted)]
        self._trackers = {}

    def metrics_for(self, i, y, out):
        """(metric, weighted) of output i, resolved once ("accuracy" by the shapes); a
        weighted metric whose name an unweighted one has logs as "weighted_<name>"."""
        if i not in self._metrics:
            plain = self._resolve(self.metric_ids[i], i, y, out)
            weighted = self._resolve(self.weighted_metric_ids[i], i, y, out)
            taken = {metric.name for metric in plain}
            for metric in weighted:
                if metric.name in taken:
                    metric.name = f"weighted_{metric.name}"
            self._metrics[i] = [(m, False) for m in plain] + [(m, True) for m in weighted]
        return self._metrics[i]

    def _resolve(self, ids, i, y, out):
        metrics = [metrics_mod.get(m, y, out, self.losses[i]) for m in ids]
        seen = {}
        for metric in metrics:  # two of one name log apart: "f1_score", "f1_score_1"
            n = seen.get(metric.name, 0)
            seen[metric.name] = n + 1
            if n:
                metric.name = f"{metric.name}_{n}"
        return metrics

    def loss_tracker(self, name):
        if name not in self._trackers:
            self._trackers[name] = metrics_mod.Mean(name=name)
        return self._trackers[name]

    def all_metrics(self):
        return list(self._trackers.values()) + [m for ms in self._metrics.values()
                                                for m, _ in ms]
