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
import ctypes
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


def start_compiling(shared):
    """Starts compiling `shared` in a child if neither this process nor the disk cache has it."""
    key = shared_key(shared)
    with _shared_lock:
        if key not in _objects:
            code = default_cache().get(key)
            _objects[key] = code if code is not None else forked_compile.ForkedCompile(
                shared.make_text, **shared.pipeline)


def shared_object(shared):
    """The object code of `shared`, read, received from its child or compiled once per process."""
    key = shared_key(shared)
    with _shared_lock:
        found = _objects.get(key)
        if isinstance(found, forked_compile.ForkedCompile):
            found = found.result()
            default_cache().put(key, found)
        elif found is None:
            found = default_cache().get_or_build(
                key, lambda: cpu.compile_object(shared.make_text(), shared.pipeline))
        _objects[key] = found
        return found


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


class Bound(ctypes.Structure):
    """What a program's runner reads: the ctx and pool it runs on; what it writes: failed."""
    _fields_ = cpu.BOUND_FIELDS


class LoadedProgram:
    """A CPU program's code (a cpu.CpuCode) loaded: `entry(n)` is segment n's `i64 (ctx*,
    pool*)`; `run()` runs every segment on the ctx and pool in `bound` (a Bound)."""

    def __init__(self, code):
        self.code = code
        key = object_key("program", *code.fingerprints)
        linked = [cpu.gemm_code(dtype) for dtype in code.gemm_dtypes] + [cpu.POOL_CODE]
        cache = default_cache()
        objects = cache.get(key)
        if objects is None:
            if forked_compile.worthwhile():
                for shared in linked:
                    start_compiling(shared)
            objects = cpu.compile_object(code.text, code.pipeline)
            cache.put(key, objects)
        for shared in linked:
            link(shared)
        self.library = cpu.load_object(objects)
        self.run = self.library.function(code.runner_symbol, None)
        self.bound = Bound.from_address(self.library.address(code.bound_symbol))
        self.bound_plan = None  # the memory plan whose ctx and pool `bound` holds

    def entry(self, number):
        return self.library.function(self.code.entry_symbol(number), *cpu.ENTRY_TYPES)

    def loop_driver(self):
        """A loop body's driver (cpu.CpuCode.driver_symbol), or None."""
        symbol = self.code.driver_symbol
        return None if symbol is None else self.library.function(symbol, *cpu.DRIVER_TYPES)
