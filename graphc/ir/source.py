"""Where in the user's code a node was created: the first stack frame outside graphc.

A location is 'file:line', the file relative to the current directory when it lies under it
(model.py:4, as `python model.py` names it) and absolute otherwise.
"""
import contextlib
import functools
import os
import sys
import threading

# Frames inside these directories belong to graphc itself; the user's line is the first outside.
_INTERNAL = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]


def add_internal_root(path):
    """Treat frames under `path` (runtime/, frontend/) as graphc's own, not the user's."""
    _INTERNAL.append(os.path.abspath(path))
    _user_file.cache_clear()


_override = threading.local()


@contextlib.contextmanager
def source_of(location):
    """Nodes built inside (by a rewrite, say) record `location`, the node they replace."""
    previous = getattr(_override, "location", None)
    _override.location = location
    try:
        yield
    finally:
        _override.location = previous


def user_source():
    """Return 'file:line' of the innermost caller that is not graphc code."""
    location = getattr(_override, "location", None)
    if location is not None:
        return location
    try:
        cwd = os.getcwd()
    except OSError:  # the current directory was removed
        cwd = None
    frame = sys._getframe(1)
    while frame is not None:
        shown = _user_file(frame.f_code.co_filename, cwd)
        if shown is not None:
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


@functools.lru_cache(maxsize=1024)  # every node asks, from a few files: paths cost microseconds
def _user_file(name, cwd):
    """How locations show code file `name` (relative names are to cwd), or None where the file
    is graphc's own."""
    path = os.path.normpath(os.path.join(cwd, name)) if cwd else os.path.abspath(name)
    if any(path.startswith(root + os.sep) for root in _INTERNAL):
        return None
    return _shown(name, path, cwd)


def _shown(name, path, cwd):
    """The code's file name `name` (absolute: `path`) as locations show it."""
    if name.startswith("<"):  # <string>, <stdin>: no file
        return name
    if cwd is None:
        return path
    return os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path
