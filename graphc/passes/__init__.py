"""The optimizer: pass database, rewrite engine, pass manager and fusion."""
from .database import LEVELS, PASSES, query
from .manager import Compilation, optimize

__all__ = ["Compilation", "LEVELS", "PASSES", "optimize", "query"]
