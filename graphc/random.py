"""gc.random: random draws, new each run, reproducible with a seed."""
from .ops.state import random_normal as normal, random_uniform as uniform  # noqa: F401

__all__ = ["normal", "uniform"]
