"""Atomic file writes: a temp file in the same folder, fsync, rename, fsync of the folder.

A reader sees the old file or the new one, never a torn one, whatever happens to the writer:
the new content only gets the file's name by os.replace, once it is complete and on disk.

A writer that is killed (SIGKILL, a lost machine) cannot remove its temp file, so temp files
are named after their writer: `.tmp-<name>~<pid>-<start>-<random>@<host>`, where <start> is
when the process started (so a recycled pid is not taken for the dead writer). Every write
first removes the temp files that dead writers on this host left in its folder; a temp file
of another host (a shared file system) is removed once it is a day old.

Any OS failure (a full disk, a folder without write permission, a read-only file system, a
file-size limit) is a gc.CheckpointError (an OSError too) naming the path and the cause; the
temp file is removed and the previous file is left as it was.
"""
import os
import socket
import time
import uuid

from graphc.errors import CheckpointError

TEMP_PREFIX = ".tmp-"
FOREIGN_STALE_S = 24 * 3600      # a temp file of another host this old is a dead writer's

# a finished file gets the mode open() would give it (not a private temp file's 0600)
_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = socket.gethostname().replace("@", "_").replace("/", "_") or "localhost"


def _start_time(pid):
    """When process `pid` started (clock ticks since boot, from /proc), "0" where unknown,
    None where there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        return None if fields[0] in (b"Z", b"X") else fields[19].decode()   # a zombie is dead
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        return "0"


_identity = None   # (pid, this process's "<pid>-<start>")


def _me():
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:   # recomputed in a forked child
        _identity = (pid, f"{pid}-{_start_time(pid) or '0'}")
    return _identity[1]


def temp_name(path):
    """The name of a temp file for writing `path`: whose writer it is, and for what."""
    base = os.path.basename(path)[:80].replace("@", "_")
    return f"{TEMP_PREFIX}{base}~{_me()}-{uuid.uuid4().hex[:8]}@{_HOST}"


def writer_alive(name, now=None, mtime=None):
    """Whether the writer of temp file `name` may still be writing it (True for names this
    module did not make, and for other hosts' temp files younger than a day)."""
    try:
        rest, host = name.rsplit("@", 1)
        pid, start, _ = rest.rsplit("~", 1)[1].split("-")
        pid = int(pid)
    except ValueError:
        return True
    if host != _HOST:
        return mtime is None or (now or time.time()) - mtime < FOREIGN_STALE_S
    if pid == os.getpid():
        return f"{pid}-{start}" == _me()
    running = _start_time(pid)
    if running is None:
        return False
    if running != "0" and start != "0":
        return running == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # another user's live process
        return True
    return True


def remove_dead_temps(directory):
    """Remove the temp files that dead writers left in `directory`; returns their paths."""
    removed = []
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
            if not writer_alive(entry.name, now, mtime):
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:   # gone meanwhile, or not ours to remove
            pass
    return removed


def write_atomic(path, write):
    """Call write(file) on a temp file, then move it over `path` so readers never see half.

    Raises gc.CheckpointError (an OSError) naming `path` where the OS refuses the write."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        remove_dead_temps(directory)
        tmp = os.path.join(directory, temp_name(path))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(directory)
    except OSError as err:
        if isinstance(err, CheckpointError):
            raise
        raise write_error(path, err) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def write_error(path, err):
    """A CheckpointError saying that `path` could not be written, and why (an OSError)."""
    cause = err.strerror or str(err)
    hint = {28: " (the disk is full)", 27: " (the file-size limit, ulimit -f, was reached)",
            13: " (no write permission in the folder)",
            1: " (no write permission in the folder)",
            122: " (the disk quota is exceeded)"}
    return CheckpointError(f"cannot write {path}: {cause}{hint.get(err.errno, '')}; the "
                           "previous file, if any, is unchanged", errno=err.errno,
                           strerror=cause, filename=path)


def _fsync_directory(directory):
    """Make the rename itself durable (a power loss keeps the new name)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path, text):
    """Write `text` (UTF-8) to `path` atomically."""
    return write_atomic(path, lambda f: f.write(text.encode()))
