"""Graph dumps: text, DOT and JSON (HTML comes with the optimizer's dumps)."""
from .text import dump_graph, dump

__all__ = ["dump", "dump_graph"]
