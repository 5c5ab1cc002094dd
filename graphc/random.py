"""gc.random: random draws, new each run, reproducible with a seed; global_batch makes the
draws shaped like a batch those of the global batch (data parallel)."""
from .ops.state import global_batch  # noqa: F401
from .ops.state import random_normal as normal, random_uniform as uniform  # noqa: F401

__all__ = ["normal", "uniform", "global_batch"]
