"""Optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, Adagrad, with gradient
clipping and learning-rate schedules.

The update rules are graphc's (gc.train.sgd_update, momentum_update, adam_update,
rmsprop_update); Adagrad's, which graphc's TF1 optimizers lack, is the one written here. An
optimizer's state is graphc variables: the step counter `iterations`, the learning rate (a
variable, so callbacks change it without recompiling; a schedule instead computes it from
`iterations` inside the step) and per-weight slots, all saved with the model.
"""
import numbers

import numpy as np

import graphc as gc
from graphc.errors import GraphcError
from graphc.train import (Slot, adam_update, momentum_update, rmsprop_update, sgd_update)

from . import backend, schedules


def adagrad_update(param, grad, accum, *, learning_rate, epsilon):
    """accum += grad**2; param -= learning_rate * grad / sqrt(accum + epsilon)."""
    new_accum = accum + gc.square(grad)
    return param - learning_rate * grad / gc.sqrt(new_accum + epsilon), new_accum


class Optimizer:
    """Base: turns gradients into (variable, new value) pairs for the train step."""

    slots = ()  # Slot specs, in the order the rule takes them

    def __init__(self, learning_rate, name, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise GraphcError("set at most one of clipnorm, clipvalue and global_clipnorm")
        if not isinstance(learning_rate, (numbers.Real, schedules.LearningRateSchedule)):
            raise GraphcError(f"learning_rate must be a number or a schedule, got "
                              f"{learning_rate!r}")
        self._learning_rate = learning_rate
        self.name = name
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = None
        self._lr_var = None
        self._slot_vars = {}  # weight -> [slot variables]

    # -- state ----------------------------------------------------------------------------
    def build(self, var_list):
        """Make the counter, the learning-rate variable and the slots of `var_list` (once per
        weight) in the weights' graph."""
        if not var_list:
            return
        graph = var_list[0].graph
        with graph.as_default(), graph.root_scope():
            if self.iterations is None:
                self.iterations = gc.Variable(np.int64(0), name=f"{self.name}/iterations",
                                              trainable=False)
                if not self._is_scheduled():
                    self._lr_var = gc.Variable(np.float32(self._learning_rate),
                                               name=f"{self.name}/learning_rate",
                                               trainable=False)
            for var in var_list:
                if var not in self._slot_vars:
                    self._slot_vars[var] = [
                        gc.Variable(np.full(var.shape, s.fill, np.float32),
                                    name=f"{var.name}/{self.name}/{s.name}", trainable=False)
                        for s in self.slots]

    @property
    def variables(self):
        """The state to save: iterations, the learning rate, then each weight's slots."""
        if self.iterations is None:
            return []
        head = [self.iterations] + ([self._lr_var] if self._lr_var is not None else [])
        return head + [s for slots in self._slot_vars.values() for s in slots]

    def _is_scheduled(self):
        return isinstance(self._learning_rate, schedules.LearningRateSchedule)

    @property
    def learning_rate(self):
        """The current rate: the variable's value once built (a callback may have changed
        it), the schedule's value at the current step, or the number given."""
        if self._is_scheduled():
            step = 0 if self.iterations is None else self._session().get_value(self.iterations)
            return self._learning_rate(step)
        if self._lr_var is None:
            return float(self._learning_rate)
        return float(self._session().get_value(self._lr_var))

    @learning_rate.setter
    def learning_rate(self, value):
        if self._is_scheduled():
            raise GraphcError("this optimizer's learning rate follows a schedule and cannot "
                              "be set")
        self._learning_rate = float(value)
        if self._lr_var is not None:
            self._session().set_value(self._lr_var, np.float32(value))

    def _session(self):
        return backend.session(self.iterations.graph)

    # -- the update -------------------------------------------------------------------------
    def apply(self, grads, var_list):
        """(variable, new value) pairs: each weight and its slots one step on, and the
        counter incremented."""
        self.build(var_list)
        grads = self._clipped(grads)
        if self._is_scheduled():
            lr = self._learning_rate.tensor(gc.cast(self.iterations, gc.float32))
        else:
            lr = self._lr_var
        pairs = []
        for grad, var in zip(grads, var_list):
            slots = self._slot_vars[var]
            new = self.update_rule(var, grad, *slots, learning_rate=lr)
            pairs.extend(zip([var] + slots, new))
        pairs.append((self.iterations, self.iterations + 1))
        return pairs

    def update_rule(self, param, grad, *slots, learning_rate):
        raise NotImplementedError

    def _clipped(self, grads):
        if self.clipvalue is not None:
            return [gc.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            return [g * gc.minimum(1.0, self.clipnorm / gc.maximum(_norm(g), 1e-12))
                    for g in grads]
        if self.global_clipnorm is not None:
            total = gc.sqrt(sum(gc.sum(gc.square(g)) for g in grads))
            factor = gc.minimum(1.0, self.global_clipnorm / gc.maximum(total, 1e-12))
            return [g * factor for g in grads]
        return grads

    # -- configuration ----------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        return {"learning_rate": schedules.serialize(lr) if self._is_scheduled() else
                self.learning_rate, "name": self.name, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm,
                **self.hyper()}

    def hyper(self):
        return {}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["learning_rate"], dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)


def _norm(g):
    return gc.sqrt(gc.sum(gc.square(g)))


class SGD(Optimizer):
    """Plain descent; with momentum, TF's heavy-ball rule (Nesterov's look-ahead with
    nesterov=True)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.slots = (Slot("momentum"),) if self.momentum else ()

    def update_rule(self, param, grad, *slots, learning_rate):
        if not self.momentum:
            return sgd_update(param, grad, learning_rate=learning_rate)
        return momentum_update(param, grad, *slots, learning_rate=learning_rate,
                               momentum=self.momentum, use_nesterov=self.nesterov)

    def hyper(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with bias correction; the step count is the optimizer's `iterations`."""
    slots = (Slot("m"), Slot("v"))

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name="Adam",
                 **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update_rule(self, param, grad, m, v, learning_rate):
        new = adam_update(param, grad, m, v, self.iterations, learning_rate=learning_rate,
                          beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        return new[:3]  # the shared counter is incremented once, by apply

    def hyper(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: the weight shrinks by learning_rate * weight_decay *
    weight before Adam's step."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, name="AdamW", **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.weight_decay = float(weight_decay)

    def update_rule(self, param, grad, m, v, learning_rate):
        decayed = param - learning_rate * self.weight_decay * param
        return super().update_rule(decayed, grad, m, v, learning_rate=learning_rate)

    def hyper(self):
        return {**super().hyper(), "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """rms = rho * rms + (1 - rho) * grad**2; step = lr * grad / sqrt(rms + epsilon), with
    momentum on the step and the gradient's mean subtracted when centered."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name="RMSprop", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)
        self.slots = (Slot("rms"), Slot("momentum")) + ((Slot("mg"),) if centered else ())

    def update_rule(self, param, grad, *slots, learning_rate):
        return rmsprop_update(param, grad, *slots, learning_rate=learning_rate, decay=self.rho,
                              momentum=self.momentum, epsilon=self.epsilon)

    def hyper(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 name="Adagrad", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)
        self.slots = (Slot("accumulator", fill=self.initial_accumulator_value),)

    def update_rule(self, param, grad, accum, learning_rate):
        return adagrad_update(param, grad, accum, learning_rate=learning_rate,
                              epsilon=self.epsilon)

    def hyper(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


OPTIMIZERS = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad)}


def get(identifier):
    """An optimizer from a name ("sgd", "adam", "adamw", "rmsprop", "adagrad") or an
    instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    cls = OPTIMIZERS.get(str(identifier).lower())
    if cls is None:
        raise GraphcError(f"unknown optimizer {identifier!r}; expected one of "
                          f"{', '.join(OPTIMIZERS)} or an Optimizer")
    return cls()


def serialize(opt):
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config):
    cls = OPTIMIZERS.get(config["class_name"].lower())
    if cls is None:
        raise GraphcError(f"unknown optimizer {config['class_name']!r} in a saved model")
    return cls.from_config(config["config"])
