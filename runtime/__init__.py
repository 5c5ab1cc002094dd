"""graphc.runtime: sessions, compiled functions, devices, checkpoints and graph files."""
from .function import Function, function
from .session import Session, get_default_session

__all__ = ["Function", "Session", "function", "get_default_session"]
