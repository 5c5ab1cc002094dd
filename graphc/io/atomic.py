"""Atomic file writes: a temp file in the same directory, fsync, rename."""
import os
import tempfile

# mkstemp makes its file private (0600); a finished file gets the mode open() would give it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path, write):
    """Call write(file) on a temp file, then move it over `path` so readers never see half."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    return write_atomic(path, lambda f: f.write(text.encode()))
