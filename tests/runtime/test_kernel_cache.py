"""The on-disk kernel cache: round trips, damaged entries, LRU eviction, the environment,
unusable directories, and several processes writing the same keys at once.

Run as a script, this file is one of those processes (see `_worker`).
"""
import json
import os
import random
import subprocess
import sys
import time
import warnings

import pytest

import graphc as gc
from graphc.runtime import forked_compile, kernel_cache
from graphc.runtime.kernel_cache import GraphcWarning, KernelCache, cache_key, default_cache

HEADER = 48   # magic 4, format version 4, payload length 8, sha256 32


@pytest.fixture
def cache(tmp_path):
    return KernelCache(tmp_path / "cache")


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def blob(n, seed=None):
    return random.Random(seed).randbytes(n)


# ---- keys --------------------------------------------------------------------------------
def test_cache_key_is_sha256_hex_of_length_prefixed_parts():
    key = cache_key("kernel", b"\x00\x01", "cpu")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == cache_key("kernel", b"\x00\x01", "cpu")
    assert key != cache_key("kernel", b"\x00\x01", "gpu")
    assert cache_key("ab", "c") != cache_key("a", "bc")
    assert cache_key("a") != cache_key("a", "")
    assert cache_key("abc") == cache_key(b"abc")   # the same bytes are the same content


def test_cache_key_refuses_other_types():
    with pytest.raises(TypeError, match="int"):
        cache_key("kernel", 5)


def test_keys_must_be_hex(cache):
    for bad in ("../../etc/passwd", "ABCDEF", "a", 12):
        with pytest.raises(ValueError, match="hex"):
            cache.get(bad)
    with pytest.raises(TypeError, match="str"):
        cache.put(cache_key("k"), "not bytes")


# ---- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 1023, 1 << 20])
def test_round_trip(cache, n, no_warnings):
    key, data = cache_key("kernel", str(n)), blob(n)
    cache.put(key, data)
    assert cache.get(key) == data
    assert cache.path(key) == os.path.join(cache.directory, key[:2], key + ".bin")
    assert os.path.getsize(cache.path(key)) == HEADER + n
    assert cache.get_or_build(key, lambda: pytest.fail("a hit must not build")) == data
    cache.put(key, b"replaced")
    assert cache.get(key) == b"replaced"
    assert cache.size_bytes() == HEADER + len(b"replaced")


def test_missing_key_builds_once(cache, no_warnings):
    key, data, builds = cache_key("missing"), blob(4097), []
    assert cache.get(key) is None
    build = lambda: builds.append(1) or data  # noqa: E731
    assert cache.get_or_build(key, build) == data
    assert cache.get_or_build(key, build) == data
    assert len(builds) == 1


def test_clear_removes_entries_only(cache, no_warnings):
    keys = [cache_key(str(i)) for i in range(5)]
    for key in keys:
        cache.put(key, blob(100, key))
    notes = os.path.join(cache.directory, "notes.txt")
    open(notes, "w").close()
    cache.clear()
    assert cache.size_bytes() == 0
    assert all(cache.get(key) is None for key in keys)
    assert os.path.exists(notes)


# ---- damaged entries -----------------------------------------------------------------------
def _flip(data, at):
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


DAMAGE = {
    "bad magic": lambda d: b"XXXX" + d[4:],
    "empty file": lambda d: b"",
    "truncated header": lambda d: d[:HEADER - 1],
    "truncated payload": lambda d: d[:-1],
    "extra bytes": lambda d: d + b"\x00",
    "flipped payload byte": lambda d: _flip(d, HEADER + 2000),
    "flipped digest byte": lambda d: _flip(d, 20),
    "wrong length field": lambda d: _flip(d, 8),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_entry_is_removed_with_a_warning_and_rebuilt(cache, damage):
    key, data = cache_key("damaged", damage), blob(4097, damage)
    cache.put(key, data)
    path = cache.path(key)
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGE[damage](good))
    with pytest.warns(GraphcWarning, match="corrupt kernel cache entry"):
        assert cache.get(key) is None
    assert not os.path.exists(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.get_or_build(key, lambda: data) == data
        assert cache.get(key) == data
    with open(path, "rb") as f:
        assert f.read() == good


def test_other_format_version_is_a_quiet_miss(cache, no_warnings):
    key = cache_key("old format")
    cache.put(key, b"payload")
    path = cache.path(key)
    with open(path, "r+b") as f:
        f.seek(4)
        f.write((99).to_bytes(4, "little"))
    assert cache.get(key) is None
    assert os.path.exists(path)   # left for the graphc that wrote it; the next put replaces it
    cache.put(key, b"payload")
    assert cache.get(key) == b"payload"


# ---- size bound ----------------------------------------------------------------------------
def _set_mtime(path, seconds):
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


def test_eviction_removes_least_recently_used(tmp_path, no_warnings):
    entry = HEADER + 1000
    cache = KernelCache(tmp_path, max_bytes=5 * entry)
    keys = {name: cache_key(name) for name in "abcdef"}
    for i, name in enumerate("abcde"):
        cache.put(keys[name], blob(1000, name))
        _set_mtime(cache.path(keys[name]), 1000 * (i + 1))   # a oldest ... e newest
    assert cache.size_bytes() == 5 * entry

    assert cache.get(keys["a"]) == blob(1000, "a")            # a hit: a is now the newest
    assert os.stat(cache.path(keys["a"])).st_mtime > 5000
    cache.put(keys["f"], blob(1000, "f"))                     # 6 entries: evict down to 90%

    kept = {name for name, key in keys.items() if os.path.exists(cache.path(key))}
    assert kept == set("adef")
    assert cache.size_bytes() == 4 * entry
    for name in kept:
        assert cache.get(keys[name]) == blob(1000, name)


def test_an_entry_over_the_bound_is_not_kept(tmp_path, no_warnings):
    cache = KernelCache(tmp_path, max_bytes=1000)
    key = cache_key("huge")
    assert cache.get_or_build(key, lambda: blob(5000, 1)) == blob(5000, 1)
    assert cache.get(key) is None and cache.size_bytes() == 0


def test_stale_temp_files_are_removed(cache, no_warnings):
    cache.put(cache_key("x"), b"x")
    shard = os.path.dirname(cache.path(cache_key("x")))
    old, new = os.path.join(shard, ".tmp-old"), os.path.join(shard, ".tmp-new")
    for path in (old, new):
        with open(path, "wb") as f:
            f.write(b"half an entry")
    _set_mtime(old, int(time.time()) - 2 * 24 * 3600)
    assert cache.size_bytes() == HEADER + 1
    assert not os.path.exists(old)
    assert os.path.exists(new)   # may be a write in progress


# ---- the environment -----------------------------------------------------------------------
def test_the_test_run_does_not_cache_in_home(monkeypatch):
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    assert os.environ.get("GRAPHC_CACHE_DIR")
    assert default_cache().directory == os.path.abspath(os.environ["GRAPHC_CACHE_DIR"])


def test_default_cache_follows_the_environment(tmp_path, monkeypatch, no_warnings):
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    key = cache_key("env")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "one"))
    default_cache().put(key, b"in one")
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "two"))
    assert default_cache().directory == str(tmp_path / "two")
    assert default_cache().get(key) is None
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "one"))
    assert default_cache().get(key) == b"in one"

    monkeypatch.setenv("GRAPHC_CACHE_MAX_BYTES", "12345")
    assert default_cache().max_bytes == 12345
    monkeypatch.delenv("GRAPHC_CACHE_MAX_BYTES")
    assert default_cache().max_bytes == kernel_cache.DEFAULT_MAX_BYTES

    monkeypatch.delenv("GRAPHC_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache().directory == str(tmp_path / "home" / ".cache" / "graphc")


def test_a_bad_size_bound_warns_and_uses_the_default(monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_MAX_BYTES", "1GB")
    with pytest.warns(GraphcWarning, match="GRAPHC_CACHE_MAX_BYTES='1GB'"):
        assert KernelCache().max_bytes == kernel_cache.DEFAULT_MAX_BYTES


@pytest.mark.parametrize("env", [{"GRAPHC_CACHE_DIR": ""},
                                 {"GRAPHC_CACHE": "0", "GRAPHC_CACHE_DIR": "{tmp}"}])
def test_disabled_cache_stores_nothing(tmp_path, monkeypatch, env, no_warnings):
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path / "cache"))
    cache, key, builds = default_cache(), cache_key("off"), []
    assert cache.directory is None and cache.path(key) is None
    cache.put(key, b"data")
    assert cache.get(key) is None
    for _ in range(2):
        assert cache.get_or_build(key, lambda: builds.append(1) or b"data") == b"data"
    assert len(builds) == 2
    assert cache.size_bytes() == 0
    assert not os.path.exists(tmp_path / "cache")


# ---- unusable directories ------------------------------------------------------------------
def _check_degrades_to_no_cache(cache):
    key = cache_key("unusable")
    with pytest.warns(GraphcWarning, match="not usable") as record:
        cache.put(key, b"data")
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the warning came once
        cache.put(key, b"data")
        assert cache.get(key) is None
        assert cache.get_or_build(key, lambda: b"built") == b"built"
        assert cache.size_bytes() == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_degrades_to_no_cache(tmp_path):
    os.chmod(tmp_path, 0o500)
    try:
        _check_degrades_to_no_cache(KernelCache(tmp_path / "cache"))
    finally:
        os.chmod(tmp_path, 0o700)


def test_directory_under_a_file_degrades_to_no_cache(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    _check_degrades_to_no_cache(KernelCache(tmp_path / "file" / "cache"))


# ---- identity ------------------------------------------------------------------------------
def test_graphc_identity_names_the_version_and_is_computed_once():
    identity = kernel_cache.graphc_identity()
    assert identity.startswith(f"graphc-{gc.__version__}-")
    assert kernel_cache.graphc_identity() is identity


def test_source_digest_changes_with_the_code_generator(tmp_path):
    (tmp_path / "codegen" / "__pycache__").mkdir(parents=True)
    (tmp_path / "codegen" / "emit.py").write_text("x = 1\n")
    digest = lambda: kernel_cache._tree_digest(str(tmp_path), ("codegen",))  # noqa: E731
    first = digest()
    (tmp_path / "codegen" / "__pycache__" / "emit.pyc").write_bytes(b"\x00")
    assert digest() == first
    (tmp_path / "codegen" / "emit.py").write_text("x = 2\n")
    second = digest()
    assert second != first
    (tmp_path / "codegen" / "more.py").write_text("")
    assert digest() != second


# ---- several processes at once -------------------------------------------------------------
PROCESSES, ROUNDS, KEYS, SIZE = 4, 20, 3, 1 << 19


def payload(key, writer, round_):
    """A payload that says who wrote it; its length and bytes differ per writer and round, so
    a mix of two writers' files can never pass for one."""
    prefix = f"{key}:{writer}:{round_}:".encode()
    return prefix + random.Random(prefix).randbytes(SIZE + 1000 * writer + round_)


def check_payload(key, data):
    found_key, writer, round_, _ = data.split(b":", 3)
    assert found_key.decode() == key
    assert data == payload(key, int(writer), int(round_)), "a torn or mixed entry"


def _worker(directory, go, writer, max_bytes):
    """One process of the concurrency test: every round, read, write and get_or_build every key."""
    warnings.simplefilter("error", GraphcWarning)   # a corrupt entry seen is a failure
    cache, writer = KernelCache(directory, max_bytes=int(max_bytes)), int(writer)
    keys = [cache_key("kernel", str(i)) for i in range(KEYS)]
    open(f"{go}.ready{writer}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    hits = 0
    for round_ in range(ROUNDS):
        for key in keys:
            seen = cache.get(key)
            if seen is not None:
                check_payload(key, seen)
                hits += 1
            cache.put(key, payload(key, writer, round_))
            check_payload(key, cache.get_or_build(key, lambda: payload(key, writer, round_)))
    assert cache.directory is not None, "the cache gave up"
    print(f"hits={hits}")


@pytest.mark.parametrize("max_bytes", [1 << 30, int(2.5 * SIZE)], ids=["no eviction", "eviction"])
def test_processes_writing_the_same_keys_at_once(tmp_path, max_bytes):
    directory, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, __file__, str(directory), str(go), str(w),
                               str(max_bytes)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for w in range(PROCESSES)]
    deadline = time.monotonic() + 120
    while not all(os.path.exists(f"{go}.ready{w}") for w in range(PROCESSES)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    go.touch()   # all start together
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err
        assert err == ""
        if max_bytes == 1 << 30:
            assert int(out.split("hits=")[1]) >= KEYS * (ROUNDS - 1)

    cache = KernelCache(directory, max_bytes=max_bytes)
    files = [os.path.join(shard, name) for shard in os.listdir(directory)
             for name in os.listdir(directory / shard)]
    assert not [f for f in files if not f.endswith(".bin")], "temp files left behind"
    keys = [cache_key("kernel", str(i)) for i in range(KEYS)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = {key: cache.get(key) for key in keys}
    for key, data in found.items():
        if data is not None:
            check_payload(key, data)
    if max_bytes == 1 << 30:
        assert None not in found.values() and len(files) == KEYS
    else:
        assert cache.size_bytes() <= max_bytes


# ---- compiled programs and the GEMM they share, across processes ---------------------------
PROGRAM = """
import json, sys
import numpy as np
import graphc as gc
from graphc.codegen.llvm import jit
from graphc.runtime import llvm_objects
from graphc.targets import cpu

modules = []
compile_ir, build_module = jit.compile_ir, cpu.build_module
epilogue, seed, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def counted_compile(*args, **kw):   # one line per compile, in this process or a forked child
    with open(log, "a") as f:
        f.write("compile\\n")
    return compile_ir(*args, **kw)

jit.compile_ir = counted_compile
cpu.build_module = lambda *args: modules.append(1) or build_module(*args)
ops = {"scale": (lambda y: y * 2.0, lambda y: y * np.float32(2)),
       "shift": (lambda y: y + 2.0, lambda y: y + np.float32(2))}[epilogue]
g = gc.Graph()
with g.as_default():
    a = gc.placeholder(gc.float32, (None, 23), name="a")
    b = gc.placeholder(gc.float32, (23, 9), name="b")
    f = gc.function([a, b], ops[0](gc.relu(a @ b)), session=gc.Session(g, device="cpu"))
rng = np.random.default_rng(seed)
x, w = rng.standard_normal((31, 23), np.float32), rng.standard_normal((23, 9), np.float32)
error = np.abs(f(x, w) - ops[1](np.maximum(x @ w, 0))).max()
with open(log) as f:
    compiles = len(f.readlines())
print(json.dumps({"compiles": compiles, "modules": len(modules), "error": float(error),
                  "gemm_key": llvm_objects.object_key("shared", "gemm float32")}))
"""


def run_program(directory, epilogue, seed):
    """(compile_ir calls, stderr, the GEMM's key) of a new process that runs relu(a @ b) * 2
    ("scale") or + 2 ("shift") and checks it on fresh inputs."""
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(directory)}
    env.pop("GRAPHC_CACHE", None)
    log = directory.parent / f"compiles-{epilogue}-{seed}.log"
    log.write_text("")
    proc = subprocess.run([sys.executable, "-c", PROGRAM, epilogue, str(seed), str(log)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["error"] < 1e-4
    assert out["modules"] <= out["compiles"]   # a program found in the cache builds no IR
    return out["compiles"], proc.stderr, out["gemm_key"]


class SourcesChanged(Exception):
    """graphc's code generator was edited while the processes ran: their keys differ."""


def test_programs_share_the_gemm_across_processes_and_rebuild_a_corrupt_one(tmp_path):
    for attempt in range(3):   # a tree being edited meanwhile gives new keys: start again
        try:
            return check_sharing_and_rebuilding(tmp_path / f"cache{attempt}")
        except SourcesChanged:
            continue
    pytest.fail("the sources kept changing while the test ran")


def check_sharing_and_rebuilding(directory):
    keys = set()

    def run(epilogue, seed):
        compiles, stderr, gemm_key = run_program(directory, epilogue, seed)
        keys.add(gemm_key)
        if len(keys) > 1:
            raise SourcesChanged
        return compiles, stderr

    # the program and the GEMM (each twice where the program starts on a quick tier, which
    # calls a quick copy of the GEMM: runtime/llvm_objects.py) and the thread pool; the second
    # run finding all in the cache shows the process that ended on the quick tier stored the
    # chosen code first
    tiers = 2 if forked_compile.worthwhile() else 1
    assert run("scale", seed=1)[0] == 2 * tiers + 1
    (gemm_key,) = keys
    gemm_entry = KernelCache(directory).path(gemm_key)
    assert os.path.exists(gemm_entry)
    assert run("scale", seed=2) == (0, "")         # all three from the cache
    assert run("shift", seed=3) == (tiers, "")     # a new program, the same GEMM
    assert cache_files(directory) == 4

    with open(gemm_entry, "r+b") as f:             # one flipped byte in the middle
        f.seek(os.path.getsize(gemm_entry) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    compiles, stderr = run("shift", seed=4)
    assert compiles == 1 and "corrupt kernel cache entry" in stderr
    assert run("scale", seed=5) == (0, "")         # rebuilt, whole again


def test_prebuilding_compiles_every_shared_module_once(tmp_path, monkeypatch):
    from graphc.runtime import llvm_objects
    from graphc.targets import cpu
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    names = [shared.name for shared in cpu.shared_codes()]
    assert {"gemm float32", "gemm float64", "thread pool"} <= set(names)
    assert sorted(llvm_objects.build_shared()) == sorted(names)
    for shared in cpu.shared_codes():
        assert default_cache().get(llvm_objects.shared_key(shared)) is not None
    assert llvm_objects.build_shared() == []   # all found in the cache


def cache_files(directory):
    return sum(len(files) for _, _, files in os.walk(directory))


if __name__ == "__main__":
    _worker(*sys.argv[1:])
