"""Where in the user's code a node was created: the first stack frame outside graphc."""
import os
import sys

# Frames inside these directories belong to graphc itself; the user's line is the first outside.
_INTERNAL = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]


def add_internal_root(path):
    """Treat frames under `path` (runtime/, frontend/) as graphc's own, not the user's."""
    _INTERNAL.append(os.path.abspath(path))


def user_source():
    """Return 'file:line' of the innermost caller that is not graphc code."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not any(filename.startswith(root + os.sep) for root in _INTERNAL):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"
