"""The on-disk cache of compiled code (object files, cubins, PTX): one file per content key.

An entry is `<dir>/<key[:2]>/<key>.bin`: a header (magic, format version, payload length,
sha256 of the payload), then the payload. Entries are written through `write_atomic` (a temp
file in the same directory, fsync, os.replace), so a reader sees the old entry, the new one or
none, and several processes may write one key at once. Entries are fsync'ed: a put follows
a compile, which costs far more. Readers check every entry anyway, so a torn or corrupt one
(a crash, a full disk, a bad sector) is dropped with a warning and rebuilt, never loaded.

The cache is bounded: a hit refreshes the entry's mtime, and a put that takes the total over
`max_bytes` evicts the least recently used entries. Any OS failure (an unwritable directory, a
full disk) turns the cache off with one warning; it never fails the user's program.
"""
import functools
import hashlib
import os
import re
import struct
import time
import warnings

from graphc.io.atomic import TEMP_PREFIX as _TEMP_PREFIX, write_atomic, writer_alive

_MAGIC = b"GCKC"
_FORMAT = 1
_HEADER = struct.Struct("<4sIQ32s")   # magic, format version, payload length, sha256(payload)
_KEY = re.compile(r"[0-9a-f]{2,128}")
_STALE_TEMP_S = 24 * 3600             # a temp file this old was left by a killed writer (a
                                      # dead writer's on this host goes at once)
_RESCAN_EVERY = 64                    # puts between scans, to count other processes' entries
_LOW_WATER = 0.9                      # evict below the bound: a full cache is not rescanned per put
DEFAULT_MAX_BYTES = 1 << 30
_ENV = ("GRAPHC_CACHE", "GRAPHC_CACHE_DIR", "GRAPHC_CACHE_MAX_BYTES")


class GraphcWarning(UserWarning):
    """Something graphc worked around (a corrupt or unusable cache) that a user may want to know."""


def cache_key(*parts):
    """sha256 hex of `parts` (str or bytes), each length-prefixed so ("ab", "c") != ("a", "bc")."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif not isinstance(part, (bytes, bytearray, memoryview)):
            raise TypeError(f"cache key parts are str or bytes, got {type(part).__name__}")
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


@functools.cache
def graphc_identity(sources=("codegen", "kernels")):
    """graphc's version and a digest of the sources (folders of the graphc package) that
    compiled code depends on: changed code, new keys."""
    import graphc   # at call time: graphc imports this package while it starts
    root = os.path.dirname(os.path.abspath(graphc.__file__))
    return f"graphc-{graphc.__version__}-{_tree_digest(root, sources)[:16]}"


def _tree_digest(root, subdirs):
    """cache_key of every file's path and content under root/subdir, in a fixed order."""
    parts = []
    for sub in subdirs:
        for folder, dirs, files in os.walk(os.path.join(root, sub)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if not f.startswith(".")):
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    parts += [os.path.relpath(path, root), f.read()]
    return cache_key(*parts)


class KernelCache:
    """Compiled code on disk by key. `directory=None` takes it from the environment;
    `self.directory` is None while the cache is off (disabled, or given up after an OS error)."""

    def __init__(self, directory=None, max_bytes=None):
        directory = _env_directory() if directory is None else directory
        self.directory = os.path.abspath(os.path.expanduser(directory)) if directory else None
        self.max_bytes = _env_max_bytes() if max_bytes is None else int(max_bytes)
        self._estimate = None   # bytes on disk at the last scan plus our puts since (None: no scan)
        self._puts = 0

    def path(self, key):
        """Where the entry for `key` lives; None while the cache is off."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"a cache key is a lowercase hex string, got {key!r}")
        return self.directory and os.path.join(self.directory, key[:2], key + ".bin")

    def get(self, key):
        """The payload stored under `key`, or None (missing, corrupt, or cache off)."""
        path = self.path(key)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:   # one open: evicting the name meanwhile leaves our file
                header, payload = f.read(_HEADER.size), f.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            return self._give_up(error)
        if len(header) == _HEADER.size:
            magic, version, length, digest = _HEADER.unpack(header)
            if magic == _MAGIC and version != _FORMAT:
                return None   # another graphc's format: a miss; the next put replaces it
            if (magic == _MAGIC and length == len(payload)
                    and hashlib.sha256(payload).digest() == digest):
                _quietly(os.utime, path)  # a hit makes the entry recently used
                return payload
        _quietly(os.unlink, path)
        warnings.warn(f"graphc removed a corrupt kernel cache entry {path}; it will be rebuilt",
                      GraphcWarning, stacklevel=2)
        return None

    def put(self, key, data):
        """Store `data` (bytes) under `key`, then evict if the cache grew over its bound."""
        path = self.path(key)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a cache entry is bytes, got {type(data).__name__}")
        if path is None:
            return
        header = _HEADER.pack(_MAGIC, _FORMAT, len(data), hashlib.sha256(data).digest())
        try:
            write_atomic(path, lambda f: f.writelines((header, data)))
            self._puts += 1
            if self._estimate is not None:
                self._estimate += len(header) + len(data)
            over = self._estimate is None or self._estimate > self.max_bytes
            if over or self._puts % _RESCAN_EVERY == 0:
                self._estimate = self._evict()
        except OSError as error:
            self._give_up(error)

    def get_or_build(self, key, build):
        """The payload under `key`; on a miss, build() makes it and it is stored."""
        data = self.get(key)
        if data is None:
            data = build()
            self.put(key, data)
        return data

    def clear(self):
        """Remove every entry."""
        for _, path, _ in self._entries():
            _quietly(os.unlink, path)
        self._estimate = 0

    def size_bytes(self):
        """Total size of the entries on disk (headers included)."""
        return sum(size for _, _, size in self._entries())

    def _evict(self):
        """Remove the least recently used entries until the total is under the low-water mark."""
        entries = sorted(self._entries())
        total = sum(size for _, _, size in entries)
        if total > self.max_bytes:
            for _, path, size in entries:
                if total <= self.max_bytes * _LOW_WATER:
                    break
                _quietly(os.unlink, path)   # another process may have evicted it already
                total -= size
        return total

    def _entries(self):
        """(mtime_ns, path, size) of every entry; removes temp files that killed writers left."""
        if self.directory is None or not os.path.isdir(self.directory):
            return []
        found, now = [], time.time()
        try:
            shards = [s.path for s in os.scandir(self.directory)
                      if len(s.name) == 2 and _KEY.fullmatch(s.name) and s.is_dir()]
            for entry in (e for shard in shards for e in os.scandir(shard)):
                stat = _quietly(entry.stat)   # None where another process removed it meanwhile
                if stat and entry.name.endswith(".bin"):
                    found.append((stat.st_mtime_ns, entry.path, stat.st_size))
                elif stat and entry.name.startswith(_TEMP_PREFIX):
                    if (now - stat.st_mtime > _STALE_TEMP_S
                            or not writer_alive(entry.name, now, stat.st_mtime)):
                        _quietly(os.unlink, entry.path)
        except OSError as error:
            self._give_up(error)
        return found

    def _give_up(self, error):
        warnings.warn(f"graphc's kernel cache at {self.directory} is not usable ({error}); "
                      f"compiled code will not be cached", GraphcWarning, stacklevel=3)
        self.directory = None


def _quietly(call, *args):
    """call(*args), or None where the file is gone: entries vanish under concurrent eviction."""
    try:
        return call(*args)
    except FileNotFoundError:
        return None


def _env_directory():
    """The directory the environment names, or None where it turns the cache off."""
    if os.environ.get("GRAPHC_CACHE", "").strip().lower() in ("0", "false", "off", "no"):
        return None
    return os.environ.get("GRAPHC_CACHE_DIR", "~/.cache/graphc") or None


def _env_max_bytes():
    text = os.environ.get("GRAPHC_CACHE_MAX_BYTES", "")
    try:
        return int(text) if text.strip() else DEFAULT_MAX_BYTES
    except ValueError:
        warnings.warn(f"GRAPHC_CACHE_MAX_BYTES={text!r} is not a whole number of bytes; "
                      f"using {DEFAULT_MAX_BYTES}", GraphcWarning, stacklevel=3)
        return DEFAULT_MAX_BYTES


_default = None   # (environment it was made for, cache)


def default_cache():
    """The process's cache as the environment configures it, remade when those variables change."""
    global _default
    env = tuple(os.environ.get(name) for name in _ENV)
    if _default is None or _default[0] != env:
        _default = (env, KernelCache())
    return _default[1]
