"""gc.train: TF1's optimizers.

    opt = gc.train.AdamOptimizer(0.001)
    train_op = opt.minimize(loss)            # one op: fetch it to apply one update
    sess.run(train_op, feed_dict={...})

Each update rule is written once below as a pure function of tensors: it takes a parameter,
its gradient, the parameter's slots (optimizer state such as momentum accumulators) and the
hyperparameters, and returns the new parameter followed by the new slots, in slot order. The
optimizer classes here, and the frontend's optimizers, build their updates from these
functions.

A rule computes every new value from the old ones in one expression: within one run every
variable read sees the value from the start of the run, and all assignments apply together when
the run ends (see graphc/ops/state.py).

Slots are non-trainable variables named "<variable>/<optimizer name>/<slot>", so
`sess.save` writes them and `sess.restore` brings them back.
"""
import numbers
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import autodiff
from .errors import DTypeError, GradientError, GraphcError, GraphMismatchError, ShapeError
from .ir import dtypes
from .ir.graph import Tensor
from .ir.types import format_shape
from .ops.elementwise import cast, sqrt, square
from .ops.state import Variable, assign, assign_add, group


# ---- update rules ---------------------------------------------------------------------------
def sgd_update(param, grad, *, learning_rate):
    """Gradient descent: param - learning_rate * grad. Returns (new param,)."""
    return (param - learning_rate * grad,)


def momentum_update(param, grad, accum, *, learning_rate, momentum, use_nesterov=False):
    """TF1's momentum: accum = momentum * accum + grad; param -= learning_rate * accum.

    With use_nesterov the step looks ahead: param -= learning_rate * (grad + momentum * accum),
    with the new accum. Returns (new param, new accum).
    """
    new_accum = momentum * accum + grad
    step = grad + momentum * new_accum if use_nesterov else new_accum
    return param - learning_rate * step, new_accum


def adam_update(param, grad, m, v, step, *, learning_rate, beta1, beta2, epsilon):
    """TF1's Adam (Kingma and Ba, section 2, with epsilon added after the square root).

    `step` counts the updates made so far (int64, starts at 0); this is update t = step + 1:
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        param -= learning_rate * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + epsilon)
    Returns (new param, new m, new v, new step).
    """
    new_step = step + 1
    t = cast(new_step, param.dtype)
    new_m = beta1 * m + (1 - beta1) * grad
    new_v = beta2 * v + (1 - beta2) * square(grad)
    lr_t = learning_rate * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return param - lr_t * new_m / (sqrt(new_v) + epsilon), new_m, new_v, new_step


def rmsprop_update(param, grad, rms, mom, mg=None, *, learning_rate, decay, momentum, epsilon):
    """TF1's RMSProp; centered when the mean-gradient slot `mg` is given.

        rms = decay * rms + (1 - decay) * grad**2
        mg = decay * mg + (1 - decay) * grad                       (centered only)
        mom = momentum * mom + learning_rate * grad / sqrt(rms - mg**2 + epsilon)
        param -= mom
    Returns (new param, new rms, new mom), then new mg when centered.
    """
    new_rms = decay * rms + (1 - decay) * square(grad)
    if mg is None:
        variance, new_mg = new_rms, ()
    else:
        mean = decay * mg + (1 - decay) * grad
        variance, new_mg = new_rms - square(mean), (mean,)
    new_mom = momentum * mom + learning_rate * grad / sqrt(variance + epsilon)
    return (param - new_mom, new_rms, new_mom) + new_mg


# ---- optimizers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """One piece of per-variable optimizer state: filled with `fill` in the variable's shape
    and dtype, or an int64 scalar when it is a counter."""
    name: str
    fill: float = 0.0
    counter: bool = False


class Optimizer:
    """Base of TF1's optimizers: compute_gradients, apply_gradients and minimize.

    A subclass gives its update rule (a function above), its slots in the order the rule takes
    them, and its hyperparameters: Python numbers or scalar float tensors (a placeholder or a
    variable, for schedules), passed to the rule by keyword.
    """

    def __init__(self, name, rule, slots=(), **hyper):
        self.name = name
        self._rule = rule
        self._slots = tuple(slots)
        self._hyper = {key: _check_hyper(key, value) for key, value in hyper.items()}
        self._slot_vars = {}  # (variable node, slot name) -> slot Variable

    def minimize(self, loss, var_list=None, name=None, *, global_step=None):
        """One op that updates `var_list` (default: the trainable float variables `loss`
        depends on) one step down the gradient of the scalar `loss`; with `global_step`, that
        variable is incremented by the same op."""
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name,
                                    global_step=global_step)

    def compute_gradients(self, loss, var_list=None):
        """[(gradient, variable)] for each variable, in order; the gradient is None for a
        variable that `loss` does not depend on (apply_gradients skips those)."""
        if not isinstance(loss, Tensor):
            raise GraphcError(f"minimize needs a scalar loss tensor, got {loss!r}")
        depends_on = _dependencies(loss)
        if var_list is None:
            var_list = [v for v in loss.graph.variables
                        if v.trainable and v.dtype.is_float and v.node.id in depends_on]
            if not var_list:
                raise GradientError(f"loss '{loss.name}' depends on no trainable float "
                                    "variable; pass var_list", loss.node)
        var_list = list(var_list)
        for var in var_list:
            _check_variable(var, loss.graph)
        connected = [v for v in var_list if v.node.id in depends_on]
        # A variable reached only through non-differentiable ops (argmax, stop_gradient)
        # truly has a zero gradient.
        grads = autodiff.grad(loss, connected, unconnected="zero") if connected else []
        by_var = dict(zip(connected, grads))
        return [(by_var.get(v), v) for v in var_list]

    def apply_gradients(self, grads_and_vars, name=None, *, global_step=None):
        """One op applying the update rule to each (gradient, variable) pair whose gradient is
        not None; fetching it yields None."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise GradientError("no gradients to apply: the loss depends on none of the "
                                "variables")
        assigns = []
        seen = set()
        for grad, var in pairs:
            if not isinstance(grad, Tensor):
                raise GraphcError(f"the gradient for '{getattr(var, 'name', var)}' must be a "
                                  f"tensor, got {grad!r}")
            _check_variable(var, grad.graph)
            if var.node in seen:
                raise GraphcError(f"variable '{var.name}' appears twice in grads_and_vars",
                                  var.node)
            seen.add(var.node)
            if grad.shape != var.shape:
                raise ShapeError(f"gradient '{grad.name}' has shape {format_shape(grad.shape)}; "
                                 f"expected the shape of variable '{var.name}', "
                                 f"{format_shape(var.shape)}", grad.node)
            slots = [self.get_slot(var, s.name, create=True) for s in self._slots]
            new_values = self._rule(var, grad, *slots, **self._hyper_for(var))
            assigns.extend(assign(old, new) for old, new in zip([var] + slots, new_values))
        if global_step is not None:
            assigns.append(assign_add(global_step, 1))
        return group(*assigns, name=name or self.name)

    def get_slot_names(self):
        return [s.name for s in self._slots]

    def get_slot(self, var, slot_name, create=False):
        """The slot variable `slot_name` of `var` (None if not made yet, unless create)."""
        key = (var.node, slot_name)
        if key not in self._slot_vars and create:
            slot = next(s for s in self._slots if s.name == slot_name)
            self._slot_vars[key] = self._make_slot(var, slot)
        return self._slot_vars.get(key)

    def _make_slot(self, var, slot):
        name = f"{var.name}/{self.name}/{slot.name}"
        if slot.counter:
            value, dtype = np.zeros((), np.int64), dtypes.int64
        else:
            value, dtype = np.full(var.shape, slot.fill), var.dtype
        # a slot's name starts from its variable's full name, whatever scope minimize runs in
        with var.graph.as_default(), var.graph.root_scope():
            return Variable(value, name=name, dtype=dtype, trainable=False)

    def _hyper_for(self, var):
        """Hyperparameters in `var`'s dtype: tensors cast, numbers left as weak scalars."""
        return {key: cast(value, var.dtype) if isinstance(value, Tensor) else value
                for key, value in self._hyper.items()}

    def __repr__(self):
        hyper = ", ".join(f"{k}={v.name if isinstance(v, Tensor) else v}"
                          for k, v in self._hyper.items())
        return f"<{type(self).__name__} '{self.name}' {hyper}>"


class GradientDescentOptimizer(Optimizer):
    """param -= learning_rate * grad."""

    def __init__(self, learning_rate, name="GradientDescent"):
        super().__init__(name, sgd_update, learning_rate=learning_rate)


class MomentumOptimizer(Optimizer):
    """Momentum (heavy ball, or Nesterov's look-ahead with use_nesterov=True); slot
    "momentum"."""

    def __init__(self, learning_rate, momentum, use_nesterov=False, name="Momentum"):
        super().__init__(name, partial(momentum_update, use_nesterov=bool(use_nesterov)),
                         [Slot("momentum")], learning_rate=learning_rate, momentum=momentum)


class AdamOptimizer(Optimizer):
    """Adam with bias correction; slots "m", "v" and the update counter "step"."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, name="Adam"):
        super().__init__(name, adam_update, [Slot("m"), Slot("v"), Slot("step", counter=True)],
                         learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon)


class RMSPropOptimizer(Optimizer):
    """RMSProp as TF1 has it: slots "rms" (starting at 1, as in TF1), "momentum", and "mg"
    when centered (the gradient's variance, not its raw second moment, scales the step)."""

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False,
                 name="RMSProp"):
        slots = [Slot("rms", fill=1.0), Slot("momentum")] + ([Slot("mg")] if centered else [])
        super().__init__(name, rmsprop_update, slots, learning_rate=learning_rate, decay=decay,
                         momentum=momentum, epsilon=epsilon)


# ---- checks ---------------------------------------------------------------------------------
def _check_hyper(key, value):
    if isinstance(value, Tensor):
        if value.shape != ():
            raise ShapeError(f"hyperparameter {key} must be a scalar tensor, got shape "
                             f"{format_shape(value.shape)}", value.node)
        if not value.dtype.is_float:
            raise DTypeError(f"hyperparameter {key} must be a float tensor, got "
                             f"{value.dtype.name}", value.node)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GraphcError(f"hyperparameter {key} must be a number or a scalar tensor, got "
                          f"{value!r}")
    return float(value)


def _check_variable(var, graph):
    if not isinstance(var, Variable):
        raise GraphcError(f"optimizers update gc.Variables, got {var!r}")
    if var.graph is not graph:
        raise GraphMismatchError(f"variable '{var.name}' belongs to another graph than the "
                                 "loss", var.node)


def _dependencies(tensor):
    """Ids of the nodes `tensor` is computed from, itself included."""
    seen = {tensor.node.id}
    stack = [tensor.node]
    while stack:
        for t in stack.pop().inputs:
            if t.node.id not in seen:
                seen.add(t.node.id)
                stack.append(t.node)
    return seen


# ---- data parallel ----------------------------------------------------------------------------
class DistributedOptimizer:
    """An optimizer whose gradients are averaged over every rank of the MPI job before its
    update rule applies them (Horovod's DistributedOptimizer): each rank computes gradients on
    its own shard of the batch, the gradients are fused into buckets and allreduced
    (gc.distributed.grouped_allreduce), and every rank applies the same update.

        opt = gc.train.DistributedOptimizer(gc.train.AdamOptimizer(1e-3))
        train_op = opt.minimize(loss)
        sess.run(gc.distributed.broadcast_variables(root=0))   # start from rank 0's weights

    op="sum" sums instead of averaging. Buckets (PyTorch DDP's sizes by default) take the
    gradients in reverse order of the variables, the order the backward pass computes them
    in: the first bucket (up to `first_bucket_bytes`, 1 MiB) holds the last layers', and its
    allreduce overlaps the rest of the backward pass. Everything else (slots, names) is the
    wrapped optimizer's."""

    def __init__(self, optimizer, op="mean", bucket_bytes=None, first_bucket_bytes=None):
        from . import distributed
        if not isinstance(optimizer, Optimizer):
            raise GraphcError(f"DistributedOptimizer wraps a gc.train optimizer, got "
                              f"{optimizer!r}")
        if op not in ("mean", "sum"):
            raise GraphcError(f"DistributedOptimizer op must be 'mean' or 'sum', got {op!r}")
        self.optimizer = optimizer
        self.op = op
        self.bucket_bytes = (distributed.DEFAULT_BUCKET_BYTES if bucket_bytes is None
                             else int(bucket_bytes))
        self.first_bucket_bytes = (min(distributed.FIRST_BUCKET_BYTES, self.bucket_bytes)
                                   if first_bucket_bytes is None else int(first_bucket_bytes))

    def compute_gradients(self, loss, var_list=None):
        """[(gradient averaged over the ranks, variable)], as Optimizer.compute_gradients."""
        from . import distributed
        pairs = self.optimizer.compute_gradients(loss, var_list)
        present = [i for i, (g, _) in enumerate(pairs) if g is not None][::-1]
        reduced = distributed.grouped_allreduce([pairs[i][0] for i in present], self.op,
                                                self.bucket_bytes, self.first_bucket_bytes)
        pairs = list(pairs)
        for i, g in zip(present, reduced):
            pairs[i] = (g, pairs[i][1])
        return pairs

    def apply_gradients(self, grads_and_vars, name=None, *, global_step=None):
        return self.optimizer.apply_gradients(grads_and_vars, name=name,
                                              global_step=global_step)

    def minimize(self, loss, var_list=None, name=None, *, global_step=None):
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name,
                                    global_step=global_step)

    def __getattr__(self, name):
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __repr__(self):
        return f"<DistributedOptimizer of {self.optimizer!r}>"
