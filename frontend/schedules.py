"""Learning-rate schedules: the rate as a function of the optimizer's step count.

Each formula is written once over an array namespace `xp`: graphc builds it into the train step
(the rate follows the step counter without a Python call per batch), and numpy evaluates it
when you call the schedule with a step number.
"""
import math

import numpy as np

import graphc as gc
from graphc.errors import GraphcError


class LearningRateSchedule:
    def __call__(self, step):
        """The rate at `step` (a number)."""
        return float(self.rate(np.float64(step), np))

    def tensor(self, step):
        """The rate at `step` (a float32 graphc tensor)."""
        return self.rate(step, gc)


class ExponentialDecay(LearningRateSchedule):
    """initial * decay_rate ** (step / decay_steps), the exponent floored when staircase."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        if decay_steps <= 0:
            raise GraphcError(f"decay_steps must be positive, got {decay_steps!r}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.decay_rate = float(decay_steps), float(decay_rate)
        self.staircase = staircase

    def rate(self, step, xp):
        p = step / self.decay_steps
        if self.staircase:
            p = xp.floor(p)
        return self.initial_learning_rate * xp.exp(p * math.log(self.decay_rate))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class CosineDecay(LearningRateSchedule):
    """Cosine from initial to initial * alpha over decay_steps, then flat."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        if decay_steps <= 0:
            raise GraphcError(f"decay_steps must be positive, got {decay_steps!r}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps, self.alpha = float(decay_steps), float(alpha)

    def rate(self, step, xp):
        done = xp.minimum(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + xp.cos(math.pi * done))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[i] while step <= boundaries[i] (and before the next), values[-1] after the last."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise GraphcError(f"PiecewiseConstantDecay needs one more value than boundaries, "
                              f"got {len(boundaries)} boundaries and {len(values)} values")
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def rate(self, step, xp):
        out = self.values[-1]
        for boundary, value in reversed(list(zip(self.boundaries, self.values))):
            out = xp.where(step <= boundary, value, out)
        return out

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, CosineDecay, PiecewiseConstantDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    return SCHEDULES[config["class_name"]](**config["config"])
