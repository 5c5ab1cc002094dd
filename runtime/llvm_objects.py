"""Native code of the CPU target (graphc/targets/cpu.py), through the disk cache: programs, and
the code they link (the GEMM of each dtype, the thread pool).

A program is keyed on the fingerprints of its kernels (CpuCode.fingerprints) and on what else
decides its code: LLVM and the host CPU (`cpu.machine()`) and the sources of the kernel IR, the
LLVM code generator and the targets (`graphc_identity`). A warm process therefore loads a
program without generating its LLVM IR.
A shared module is compiled apart, once, under a key of its own, and loaded once per process,
where every program that calls it links to it: compiling the GEMM costs more than most programs,
and one copy means one packing buffer per thread, whatever the number of programs. Programs
call the pool's `graphc_parallel_for` the same way. While a program compiles, the shared modules
it needs and nobody has built yet compile beside it, each in a forked child (forked_compile).
"""
import atexit
import ctypes
import functools
import threading

from graphc.targets import cpu

from . import forked_compile
from .kernel_cache import cache_key, default_cache, graphc_identity


SOURCES = ("codegen/llvm", "kernels", "targets")  # what the code depends on, of graphc's own


def object_key(*content):
    """The cache key of the object code built from `content` (text that decides the module)."""
    return cache_key(*content, cpu.machine(), graphc_identity(SOURCES))


def shared_key(shared):
    """The cache key of linked code (a cpu.Linked)."""
    return object_key("shared", shared.name)


_objects = {}     # shared key -> object bytes, or the ForkedCompile that makes them
_libraries = {}   # shared key -> the loaded library, kept for the life of the process
_shared_lock = threading.RLock()
# program key -> the ForkedCompile of the chosen code of a program running on the quick tier,
# or that code once received, until the program swaps it in
_chosen = {}


def start_compiling(shared):
    """Starts compiling `shared` in a child if neither this process nor the disk cache has it."""
    key = shared_key(shared)
    with _shared_lock:
        if key not in _objects:
            code = default_cache().get(key)
            _objects[key] = code if code is not None else forked_compile.ForkedCompile(
                shared.make_text, **shared.pipeline)


def _received(key):
    """_objects[key], the object code once its child has it (then in the disk cache too)."""
    found = _objects.get(key)
    if isinstance(found, forked_compile.ForkedCompile):
        found = _objects[key] = found.result()
        default_cache().put(key, found)
    return found


def ready(shared):
    """Whether link(shared) takes no waiting for a child."""
    with _shared_lock:
        found = _objects.get(shared_key(shared))
        return not isinstance(found, forked_compile.ForkedCompile) or found.ready()


def shared_object(shared):
    """The object code of `shared`, read, received from its child or compiled once per process."""
    key = shared_key(shared)
    with _shared_lock:
        found = _received(key)
        if found is None:
            found = default_cache().get_or_build(
                key, lambda: cpu.compile_object(shared.make_text(), shared.pipeline))
        _objects[key] = found
        return found


def build_shared():
    """Every shared module (cpu.shared_codes) in the disk cache, compiled where it is not, in
    children side by side: the names of those it put there."""
    missing = [shared for shared in cpu.shared_codes()
               if default_cache().get(shared_key(shared)) is None]
    if forked_compile.worthwhile():
        for shared in missing:
            start_compiling(shared)
    for shared in missing:  # this process may hold it already, from another cache
        default_cache().put(shared_key(shared), shared_object(shared))
    return [shared.name for shared in missing]


def link(shared):
    """`shared` loaded into the process once, its symbols resolving in objects loaded later."""
    key = shared_key(shared)
    with _shared_lock:
        if key not in _libraries:
            library = cpu.load_object(shared_object(shared))
            for symbol in shared.symbols:
                cpu.publish(library, symbol)
            _libraries[key] = library
        return _libraries[key]


QUICK = ".quick"  # the suffix of a quick copy's symbols: it and the chosen code load side by side


def quick_calls(text, shared):
    """LLVM IR `text` calling the quick copy of `shared` (link_quick) instead."""
    for symbol in shared.symbols:
        text = text.replace(f'@"{symbol}"', f'@"{symbol}{QUICK}"')
    return text


def link_quick(shared):
    """A copy of `shared` compiled with cpu.QUICK_PIPELINE, for the quick code of programs that
    would otherwise wait for its chosen code: loaded once per process, never cached."""
    key = shared_key(shared) + QUICK
    with _shared_lock:
        if key not in _libraries:
            text = quick_calls(shared.make_text(), shared)
            library = cpu.load_object(cpu.compile_object(text, cpu.QUICK_PIPELINE))
            for symbol in shared.symbols:
                cpu.publish(library, symbol + QUICK)
            _libraries[key] = library
        return _libraries[key]


class Bound(ctypes.Structure):
    """What a program's runner reads: the ctx and pool it runs on; what it writes: failed."""
    _fields_ = cpu.BOUND_FIELDS


class LoadedProgram:
    """A CPU program's code (a cpu.CpuCode) loaded: `entry(n)` is segment n's `i64 (ctx*,
    pool*)`; `run()` runs every segment on the ctx and pool in `bound` (a Bound).

    A program the disk cache lacks starts on quickly compiled code (cpu.QUICK_PIPELINE),
    calling quick copies of the GEMMs still compiling (link_quick), while its chosen pipeline
    compiles in a forked child: `upgrade()` swaps that code in once the child and the GEMMs'
    have theirs, and the disk cache only ever holds chosen code. A loop body (one with a
    driver) is compiled as chosen from the start, its driver running without a call that could
    swap it, and so is a program whose quick code would cost as much (cpu.quick_tier_pays).
    """

    def __init__(self, code):
        self.code = code
        self._key = object_key("program", *code.fingerprints)
        self.quick = False  # whether the quick tier's code runs, the chosen one compiling
        self._gemms = [cpu.gemm_code(dtype) for dtype in code.gemm_dtypes]
        self._quick_gemms = []  # those whose quick copy the quick code calls
        objects = default_cache().get(self._key) or _chosen_code(self._key, wait=True)
        if objects is None:
            objects = self._compile()
        for shared in self._gemms + [cpu.POOL_CODE]:
            if shared not in self._quick_gemms:
                link(shared)
        self._load(objects)

    def _compile(self):
        """The object code of a program the cache lacks: the quick tier's where a child can
        compile the chosen one meanwhile, else the chosen one."""
        text = self.code.text  # built before forking: the child has it
        if forked_compile.worthwhile():
            for shared in self._gemms + [cpu.POOL_CODE]:
                start_compiling(shared)
            if self.code.driver_symbol is None and cpu.quick_tier_pays(self.code.pipeline):
                child = forked_compile.ForkedCompile(lambda: text, **self.code.pipeline)
                if child.forked:
                    # a GEMM still compiling would keep the quick code waiting: it calls a
                    # quick copy instead (0.2 s of CPU for float32's instead of 0.65-0.95 s)
                    self._quick_gemms = [g for g in self._gemms if not ready(g)]
                    quick_text = text
                    for gemm in self._quick_gemms:
                        link_quick(gemm)
                        quick_text = quick_calls(quick_text, gemm)
                    try:
                        objects = cpu.compile_object(quick_text, cpu.QUICK_PIPELINE)
                    except BaseException:
                        child.discard()
                        raise
                    with _shared_lock:
                        _chosen[self._key] = child
                    self.quick = True
                    return objects
        objects = cpu.compile_object(text, self.code.pipeline)
        default_cache().put(self._key, objects)
        return objects

    def _load(self, objects):
        self.library = cpu.load_object(objects)
        self.run = self.library.function(self.code.runner_symbol, None)
        self.bound = Bound.from_address(self.library.address(self.code.bound_symbol))
        self.bound_plan = None  # the memory plan whose ctx and pool `bound` holds

    def upgrade(self, wait=False):
        """Loads the chosen code in place of the quick tier's once its child has it (or, with
        `wait`, once waited for): True when it did. Entries and `run` taken before are then
        stale."""
        if not (self.quick and (wait or all(ready(gemm) for gemm in self._quick_gemms))):
            return False
        objects = _chosen_code(self._key, wait=wait)
        if not objects:
            return False
        with _shared_lock:  # in the disk cache now: later programs find it there
            _chosen.pop(self._key, None)
        for gemm in self._quick_gemms:
            link(gemm)
        self.quick, self._quick_gemms = False, []
        self._load(objects)
        return True

    def entry(self, number):
        return self.library.function(self.code.entry_symbol(number), *cpu.ENTRY_TYPES)

    def loop_driver(self):
        """A loop body's driver (cpu.CpuCode.driver_symbol), or None."""
        symbol = self.code.driver_symbol
        return None if symbol is None else self.library.function(symbol, *cpu.DRIVER_TYPES)


def _chosen_code(key, wait):
    """The chosen code of the program `key` that started on the quick tier, once its child has
    it or `wait`ed for (then in the disk cache too), else None."""
    with _shared_lock:
        found = _chosen.get(key)
        if isinstance(found, forked_compile.ForkedCompile):
            if not (wait or found.ready()):
                return None
            found = _chosen[key] = found.result()
            default_cache().put(key, found)
        return found


@atexit.register
def _finish():
    """A process that ends on quick code still waits for the chosen code (programs' and shared
    modules'), for the disk cache (and leaves no child behind)."""
    with _shared_lock:  # a process forked meanwhile has the records but not the children
        waits = [functools.partial(_received, key) for key, found in _objects.items()
                 if isinstance(found, forked_compile.ForkedCompile) and found.forked]
        waits += [functools.partial(_chosen_code, key, wait=True) for key, found in
                  _chosen.items() if isinstance(found, forked_compile.ForkedCompile)
                  and found.forked]
    for wait in waits:
        try:
            wait()
        except Exception:  # the code ran: only its cache entry is lost
            pass
