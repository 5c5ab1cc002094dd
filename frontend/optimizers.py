"""Optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam,
Lion, Adafactor, Ftrl (Keras 3's update rules), with gradient
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
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None):
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise GraphcError("set at most one of clipnorm, clipvalue and global_clipnorm")
        if use_ema and not 0 <= ema_momentum <= 1:
            raise GraphcError(f"ema_momentum must be in [0, 1], got {ema_momentum!r}")
        if use_ema and ema_overwrite_frequency is not None and (
                not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
            raise GraphcError(f"ema_overwrite_frequency must be an integer >= 1 or None, got "
                              f"{ema_overwrite_frequency!r}")
        self.use_ema, self.ema_momentum = bool(use_ema), float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.averages = {}  # weight -> its moving average, with use_ema
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
                        gc.Variable(np.full(self.slot_shape(s, var), s.fill, np.float32),
                                    name=f"{var.name}/{self.name}/{s.name}", trainable=False)
                        for s in self.slots]
                if self.use_ema and var not in self.averages:
                    self.averages[var] = gc.Variable(
                        np.zeros(tuple(var.shape), np.float32),
                        name=f"{var.name}/{self.name}/average", trainable=False)

    def slot_shape(self, slot, var):
        """The shape of `var`'s `slot` (the weight's own, but for Adafactor's factors)."""
        return tuple(var.shape)

    @property
    def variables(self):
        """The state to save: iterations, the learning rate, then each weight's slots."""
        if self.iterations is None:
            return []
        head = [self.iterations] + ([self._lr_var] if self._lr_var is not None else [])
        return head + [s for slots in self._slot_vars.values() for s in slots] + \
            self._extra_variables() + list(self.averages.values())

    def _extra_variables(self):
        return []

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
            new = list(self.update_rule(var, grad, *slots, learning_rate=lr))
            if self.use_ema:
                new[0], average = self._averaged(var, new[0])
                pairs.append((self.averages[var], average))
            pairs.extend(zip([var] + slots, new))
        pairs.append((self.iterations, self.iterations + 1))
        return pairs

    def finalize_variable_values(self, session):
        """At the end of fit, as Keras: with use_ema the weights become their averages."""
        for var, average in self.averages.items():
            session.set_value(var, session.get_value(average))

    def _averaged(self, var, weight):
        """use_ema, in Keras's order: (the weight, the new average). The average follows the
        updated weight (it is the weight after the first step), and every
        ema_overwrite_frequency steps the weight becomes the average."""
        momentum = gc.where(gc.not_equal(self.iterations, 0), self.ema_momentum, 0.0)
        average = momentum * self.averages[var] + (1.0 - momentum) * weight
        if self.ema_overwrite_frequency:
            due = gc.equal((self.iterations + 1) % self.ema_overwrite_frequency, 0)
            weight = gc.where(due, average, weight)
        return weight, average

    def update_rule(self, param, grad, *slots, learning_rate):
        raise NotImplementedError

    def scale_loss(self, loss):
        """The loss the train step differentiates (LossScaleOptimizer scales it)."""
        return loss

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
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, **self.hyper()}

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


class _Keras3Optimizer(Optimizer):
    """The Keras 3 optimizers that take weight_decay: with it set, each weight shrinks by
    learning_rate * weight_decay * weight before the update, as Keras 3's base optimizer does."""

    def __init__(self, learning_rate, name, weight_decay=None, **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.weight_decay = None if weight_decay is None else float(weight_decay)

    def update_rule(self, param, grad, *slots, learning_rate):
        if self.weight_decay:
            param = param - param * self.weight_decay * learning_rate
        return self.rule(param, grad, *slots, learning_rate=learning_rate)

    def _step(self):
        """The step number of this update, 1 for the first (Keras's iterations + 1)."""
        return gc.cast(self.iterations + 1, gc.float32)

    def hyper(self):
        return {"weight_decay": self.weight_decay}


class Adadelta(_Keras3Optimizer):
    """accumulated_grad = rho * ag + (1 - rho) * g**2; delta = -sqrt(ad + eps) * g /
    sqrt(ag + eps); ad = rho * ad + (1 - rho) * delta**2; param += lr * delta."""
    slots = (Slot("accumulated_grad"), Slot("accumulated_delta_var"))

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name="adadelta", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def rule(self, param, grad, acc_grad, acc_delta, learning_rate):
        rho, eps = self.rho, self.epsilon
        acc_grad = rho * acc_grad + (1 - rho) * gc.square(grad)
        delta = -(gc.sqrt(acc_delta + eps) * grad / gc.sqrt(acc_grad + eps))
        acc_delta = rho * acc_delta + (1 - rho) * gc.square(delta)
        return param + learning_rate * delta, acc_grad, acc_delta

    def hyper(self):
        return {**super().hyper(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(_Keras3Optimizer):
    """Adam with the infinity norm: m += (g - m)(1 - beta_1); u = max(beta_2 u, |g|);
    param -= lr m / ((1 - beta_1**t)(u + epsilon))."""
    slots = (Slot("momentum"), Slot("norm"))

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="adamax", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def rule(self, param, grad, m, u, learning_rate):
        beta_1_power = gc.pow(gc.constant(self.beta_1, dtype=gc.float32), self._step())
        m = m + (grad - m) * (1 - self.beta_1)
        u = gc.maximum(self.beta_2 * u, gc.abs(grad))
        return param - learning_rate * m / ((1 - beta_1_power) * (u + self.epsilon)), m, u

    def hyper(self):
        return {**super().hyper(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(_Keras3Optimizer):
    """Adam with Nesterov momentum and Keras's momentum schedule
    u_t = beta_1 (1 - 0.5 * 0.96**t), whose running product is one more variable."""
    slots = (Slot("momentum"), Slot("velocity"))

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="nadam", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self._u_product = None

    def build(self, var_list):
        super().build(var_list)
        if var_list and self._u_product is None:
            graph = var_list[0].graph
            with graph.as_default(), graph.root_scope():
                self._u_product = gc.Variable(np.float32(1.0), name=f"{self.name}/u_product",
                                              trainable=False)

    def _extra_variables(self):
        return [self._u_product] if self._u_product is not None else []

    def apply(self, grads, var_list):
        self.build(var_list)
        step = self._step()
        self._u_product_t = self._u_product * self.beta_1 * (
            1.0 - 0.5 * gc.pow(gc.constant(0.96, dtype=gc.float32), step))
        pairs = super().apply(grads, var_list)
        return pairs + [(self._u_product, self._u_product_t)]

    def rule(self, param, grad, m, v, learning_rate):
        b1, b2 = self.beta_1, self.beta_2
        step = self._step()
        decay = gc.constant(0.96, dtype=gc.float32)
        u_t = b1 * (1.0 - 0.5 * gc.pow(decay, step))
        u_t_1 = b1 * (1.0 - 0.5 * gc.pow(decay, step + 1.0))
        u_product_t = self._u_product_t
        u_product_t_1 = u_product_t * u_t_1
        beta_2_power = gc.pow(gc.constant(b2, dtype=gc.float32), step)
        m = m + (grad - m) * (1 - b1)
        v = v + (gc.square(grad) - v) * (1 - b2)
        m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * grad / (1 - u_product_t)
        v_hat = v / (1 - beta_2_power)
        return param - m_hat * learning_rate / (gc.sqrt(v_hat) + self.epsilon), m, v

    def hyper(self):
        return {**super().hyper(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Lion(_Keras3Optimizer):
    """param -= lr * sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g."""
    slots = (Slot("momentum"),)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, name="lion", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise GraphcError(f"Lion's beta_1 must be in (0, 1], got {beta_1}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def rule(self, param, grad, m, learning_rate):
        step = gc.sign(m * self.beta_1 + grad * (1.0 - self.beta_1))
        return param - learning_rate * step, m * self.beta_2 + grad * (1.0 - self.beta_2)

    def hyper(self):
        return {**super().hyper(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Adafactor(_Keras3Optimizer):
    """Keras 3's Adafactor: factored second moments (row and column means of g**2 + eps_1)
    for weights of rank >= 2, a full one for vectors; the step is clipped by its RMS and
    scaled by max(epsilon_2, RMS(param)) * min(lr, 1/sqrt(t))."""
    slots = (Slot("r"), Slot("c"), Slot("velocity"))

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, name="adafactor", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_2_decay, self.epsilon_1 = float(beta_2_decay), float(epsilon_1)
        self.epsilon_2, self.clip_threshold = float(epsilon_2), float(clip_threshold)
        self.relative_step = bool(relative_step)

    def slot_shape(self, slot, var):
        shape = tuple(var.shape)
        if slot.name == "velocity":
            return shape
        if len(shape) < 2:
            return ()
        return shape[:-1] if slot.name == "r" else shape[:-2] + shape[-1:]

    @staticmethod
    def _rms(x):
        return gc.sqrt(gc.mean(gc.square(x)))

    def rule(self, param, grad, r, c, v, learning_rate):
        step = self._step()
        lr = learning_rate
        if not self._is_scheduled() and self.relative_step:
            lr = gc.minimum(lr, 1.0 / gc.sqrt(step))
        rho_t = gc.minimum(lr, 1.0 / gc.sqrt(step))
        alpha_t = gc.maximum(self.epsilon_2, self._rms(param)) * rho_t
        grad_sq = gc.square(grad) + self.epsilon_1
        beta_2_t = 1.0 - gc.pow(step, gc.constant(self.beta_2_decay, dtype=gc.float32))
        if param.ndim >= 2:
            r = beta_2_t * r + (1.0 - beta_2_t) * gc.mean(grad_sq, axis=-1)
            c = beta_2_t * c + (1.0 - beta_2_t) * gc.mean(grad_sq, axis=-2)
            v = gc.expand_dims(r / gc.mean(r, axis=-1, keepdims=True), -1) * \
                gc.expand_dims(c, -2)
        else:
            v = beta_2_t * v + (1.0 - beta_2_t) * grad_sq
        u_t = grad / gc.sqrt(v)
        u_t_hat = u_t / gc.maximum(1.0, self._rms(u_t) / self.clip_threshold)
        return param - alpha_t * u_t_hat, r, c, v

    def hyper(self):
        return {**super().hyper(), "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1, "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold, "relative_step": self.relative_step}


class Ftrl(_Keras3Optimizer):
    """Follow The Regularized Leader (Keras 3's rule, with L1, L2, shrinkage and beta)."""
    slots = (Slot("accumulator"), Slot("linear"))

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, name="ftrl", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        if initial_accumulator_value < 0 or learning_rate_power > 0:
            raise GraphcError("Ftrl needs initial_accumulator_value >= 0 and "
                              "learning_rate_power <= 0")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)
        self.slots = (Slot("accumulator", fill=self.initial_accumulator_value), Slot("linear"))

    def rule(self, param, grad, accum, linear, learning_rate):
        lr, p = learning_rate, -self.learning_rate_power
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        grad_to_use = grad + 2 * self.l2_shrinkage_regularization_strength * param
        new_accum = accum + gc.square(grad)
        linear = linear + grad_to_use - (gc.pow(new_accum, p) - gc.pow(accum, p)) / lr * param
        quadratic = gc.pow(new_accum, p) / lr + 2 * l2
        l1 = self.l1_regularization_strength
        new_param = (gc.clip(linear, -l1, l1) - linear) / quadratic
        return new_param, new_accum, linear

    def hyper(self):
        return {**super().hyper(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength, "beta": self.beta}


class Lamb(_Keras3Optimizer):
    """Adam's bias-corrected step scaled per weight by the trust ratio ||w|| / ||step|| (1
    where either norm is 0): m += (g - m)(1 - beta_1); v += (g**2 - v)(1 - beta_2);
    step = m_hat / (sqrt(v_hat) + epsilon); param -= ratio * lr * step."""
    slots = (Slot("momentum"), Slot("velocity"))

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="lamb", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def rule(self, param, grad, m, v, learning_rate):
        t = self._step()
        beta_1_power = gc.pow(gc.constant(self.beta_1, dtype=gc.float32), t)
        beta_2_power = gc.pow(gc.constant(self.beta_2, dtype=gc.float32), t)
        m = m + (grad - m) * (1 - self.beta_1)
        v = v + (gc.square(grad) - v) * (1 - self.beta_2)
        step = (m / (1.0 - beta_1_power)) / (gc.sqrt(v / (1.0 - beta_2_power)) + self.epsilon)
        w_norm, s_norm = gc.sqrt(gc.sum(gc.square(param))), gc.sqrt(gc.sum(gc.square(step)))
        both = gc.logical_and(w_norm > 0, s_norm > 0)
        ratio = gc.where(both, w_norm / gc.where(both, s_norm, gc.ones_like(s_norm)),
                         gc.ones_like(w_norm))
        return param - ratio * learning_rate * step, m, v

    def hyper(self):
        return {**super().hyper(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class ScheduleFreeAdamW(_Keras3Optimizer):
    """Schedule-free AdamW (Defazio et al.), as Keras 3 computes it: the weight is
    y = (1 - beta_1) z + beta_1 x, where z takes Adam-scaled gradient steps (its slot
    `momentum`, starting at the weight) and x is the running average of the z's;
    `warmup_steps` ramp the rate up linearly."""
    slots = (Slot("momentum"), Slot("velocity"))

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 warmup_steps=0, name="schedule_free_adamw", **kwargs):
        super().__init__(learning_rate, name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.warmup_steps = int(warmup_steps)

    def update_rule(self, param, grad, z, v, learning_rate):
        # z starts as a copy of the weight, before any weight decay of the first step
        z = gc.where(self.iterations == 0, param, z)
        return super().update_rule(param, grad, z, v, learning_rate=learning_rate)

    def rule(self, param, grad, z, v, learning_rate):
        t, b1, b2 = self._step(), self.beta_1, self.beta_2
        lr = learning_rate
        if self.warmup_steps > 0:
            lr = lr * gc.minimum(t / float(self.warmup_steps), 1.0)
        v = v + (gc.square(grad) - v) * (1 - b2)
        bias_correction_2 = 1 - gc.pow(gc.constant(b2, dtype=gc.float32), t)
        new_z = z - lr * grad / (gc.sqrt(v / bias_correction_2) + self.epsilon)
        weight = 1.0 / t
        x = (param - (1 - b1) * z) / b1
        x = (1 - weight) * x + weight * new_z
        return (1 - b1) * new_z + b1 * x, new_z, v

    def hyper(self):
        return {**super().hyper(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "warmup_steps": self.warmup_steps}


class Muon(_Keras3Optimizer):
    """Keras 3's Muon: a 2-D weight steps along the orthogonalized momentum (Nesterov's by
    default; the quintic Newton-Schulz iteration, `ns_steps` times, of the momentum scaled
    to unit Frobenius norm), scaled by sqrt(max(rows, cols)) * rms_rate; other weights,
    embeddings (a name holding "embedding", with exclude_embeddings) and names matching an
    `exclude_layers` pattern take AdamW's step at learning_rate * adam_lr_ratio. Weight
    decay is `weight_decay` for the first, `adam_weight_decay` for the others."""
    slots = (Slot("momentum"), Slot("velocity"))

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999,
                 adam_weight_decay=0.004, epsilon=1e-7, weight_decay=0.004, name="muon",
                 exclude_layers=None, exclude_embeddings=True, muon_a=3.4445, muon_b=-4.7750,
                 muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True,
                 rms_rate=0.2, **kwargs):
        super().__init__(learning_rate, name, weight_decay=weight_decay, **kwargs)
        self.adam_beta_1, self.adam_beta_2 = float(adam_beta_1), float(adam_beta_2)
        self.adam_weight_decay = None if adam_weight_decay is None else float(adam_weight_decay)
        self.epsilon, self.adam_lr_ratio = float(epsilon), float(adam_lr_ratio)
        self.exclude_layers = list(exclude_layers or [])
        self.exclude_embeddings = bool(exclude_embeddings)
        self.muon_a, self.muon_b, self.muon_c = float(muon_a), float(muon_b), float(muon_c)
        self.momentum, self.ns_steps, self.nesterov = float(momentum), int(ns_steps), \
            bool(nesterov)
        self.rms_rate = None if rms_rate is None else float(rms_rate)

    def _uses_adamw(self, var):
        import re
        return (len(var.shape) != 2
                or (self.exclude_embeddings and "embedding" in var.name.lower())
                or any(re.search(pattern, var.name) for pattern in self.exclude_layers))

    def slot_shape(self, slot, var):
        if slot.name == "velocity" and not self._uses_adamw(var):
            return ()  # Muon's weights keep no second moment
        return tuple(var.shape)

    def update_rule(self, param, grad, m, v, learning_rate):
        adam = self._uses_adamw(param)
        decay = self.adam_weight_decay if adam else self.weight_decay
        if decay:
            param = param - param * decay * learning_rate
        if adam:
            return self._adamw(param, grad, m, v, learning_rate * self.adam_lr_ratio)
        m = grad + m * self.momentum
        step = self._orthogonalized(grad + self.momentum * m if self.nesterov else m)
        step = learning_rate * step
        if self.rms_rate is not None:
            step = step * (float(max(param.shape)) ** 0.5 * self.rms_rate)
        return param - step, m, v

    def _adamw(self, param, grad, m, v, lr):
        t = self._step()
        b1_power = gc.pow(gc.constant(self.adam_beta_1, dtype=gc.float32), t)
        b2_power = gc.pow(gc.constant(self.adam_beta_2, dtype=gc.float32), t)
        alpha = lr * gc.sqrt(1 - b2_power) / (1 - b1_power)
        m = m + (grad - m) * (1 - self.adam_beta_1)
        v = v + (gc.square(grad) - v) * (1 - self.adam_beta_2)
        return param - m * alpha / (gc.sqrt(v) + self.epsilon), m, v

    def _orthogonalized(self, x):
        """Keras's zeropower_via_newtonschulz5 of a matrix."""
        tall = x.shape[0] > x.shape[1]
        if tall:
            x = gc.transpose(x)
        x = x / (_norm(x) + 1e-7)
        for _ in range(self.ns_steps):
            gram = x @ gc.transpose(x)
            x = self.muon_a * x + (self.muon_b * gram + self.muon_c * gram @ gram) @ x
        return gc.transpose(x) if tall else x

    def hyper(self):
        return {**super().hyper(), "adam_beta_1": self.adam_beta_1,
                "adam_beta_2": self.adam_beta_2, "adam_weight_decay": self.adam_weight_decay,
                "epsilon": self.epsilon, "exclude_layers": self.exclude_layers,
                "exclude_embeddings": self.exclude_embeddings, "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum,
                "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "rms_rate": self.rms_rate}


class LossScaleOptimizer(Optimizer):
    """Keras 3's dynamic loss scaling around `inner_optimizer`: the train step
    differentiates loss * scale (scale_loss); the gradients are divided by the scale; where
    they are all finite the inner optimizer steps and, after `dynamic_growth_steps` such
    steps in a row, the scale doubles; otherwise nothing changes but the scale, which
    halves. Its variables: step_counter, dynamic_scale, then the inner optimizer's."""

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name="loss_scale_optimizer", **kwargs):
        if not kwargs.pop("dynamic", True):
            raise GraphcError("LossScaleOptimizer no longer supports dynamic=False (as in "
                              "Keras 3)")
        if kwargs:
            raise GraphcError(f"LossScaleOptimizer does not support arguments "
                              f"{', '.join(sorted(kwargs))}; set them on the inner optimizer")
        super().__init__(0.0, name)
        self.inner_optimizer = get(inner_optimizer)
        self.initial_scale, self.dynamic_growth_steps = float(initial_scale), \
            int(dynamic_growth_steps)
        self.step_counter = self.dynamic_scale = None

    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        if var_list:
            self._make_state(var_list[0].graph)
        self.iterations = self.inner_optimizer.iterations

    def _make_state(self, graph):
        """step_counter and dynamic_scale, once, in the weights' graph (scale_loss may come
        first)."""
        if self.step_counter is not None:
            return
        with graph.as_default(), graph.root_scope():
            self.step_counter = gc.Variable(np.int64(0), name=f"{self.name}/step_counter",
                                            trainable=False)
            self.dynamic_scale = gc.Variable(np.float32(self.initial_scale),
                                             name=f"{self.name}/dynamic_scale",
                                             trainable=False)

    @property
    def variables(self):
        own = [self.step_counter, self.dynamic_scale] if self.step_counter is not None else []
        return own + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    def finalize_variable_values(self, session):
        self.inner_optimizer.finalize_variable_values(session)

    def scale_loss(self, loss):
        self._make_state(loss.graph)
        return loss * self.dynamic_scale

    def apply(self, grads, var_list):
        self.build(var_list)
        unscaled = [g / self.dynamic_scale for g in grads]
        bad = sum(gc.sum(gc.cast(gc.logical_not(gc.isfinite(g)), gc.float32))
                  for g in unscaled)
        finite = gc.equal(bad, 0.0)
        pairs = [(var, gc.where(finite, new, var))
                 for var, new in self.inner_optimizer.apply(unscaled, var_list)]
        grow = gc.logical_and(finite, gc.equal(self.step_counter,
                                               self.dynamic_growth_steps - 1))
        counter = gc.where(gc.logical_and(finite, gc.logical_not(grow)),
                           self.step_counter + 1, gc.zeros_like(self.step_counter))
        scale = gc.where(grow, self.dynamic_scale * 2.0,
                         gc.where(finite, self.dynamic_scale, self.dynamic_scale * 0.5))
        return pairs + [(self.step_counter, counter), (self.dynamic_scale, scale)]

    def get_config(self):
        return {"inner_optimizer": serialize(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(deserialize(config.pop("inner_optimizer")), **config)


OPTIMIZERS = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta,
                                                     Adamax, Nadam, Lion, Adafactor, Ftrl, Lamb,
                                                     ScheduleFreeAdamW, Muon,
                                                     LossScaleOptimizer)}


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
