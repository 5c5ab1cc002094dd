"""Native code from the LLVM code generator, through the disk cache: programs, and the modules
they link (the GEMM of each dtype, the thread pool).

A program is keyed on the fingerprint of its kernels (graphc.kernels.fingerprint) and on what
else decides its code: LLVM and the host CPU (`jit.identity()`) and the sources of the kernel IR
and the LLVM code generator (`graphc_identity`). A warm process therefore loads a program
without generating its LLVM IR.
A shared module is compiled apart, once, under a key of its own, and loaded once per process,
where every program that calls it links to it: compiling the GEMM costs more than most programs,
and one copy means one packing buffer per thread, whatever the number of programs. Programs
call the pool's `graphc_parallel_for` the same way. While a program compiles, the shared modules
it needs and nobody has built yet compile beside it, each in a forked child (forked_compile).
"""
import ctypes
import functools
import threading
from typing import Callable, NamedTuple

from graphc.codegen.llvm import jit
from graphc.codegen.llvm.gemm import gemm_name
from graphc.codegen.llvm.parallel import pool_module
from graphc.codegen.llvm.program import (GEMM_PIPELINE, PROGRAM_PIPELINE, build_module,
                                         entry_symbol, gemm_dtypes, gemm_module)
from graphc.kernels.fingerprint import fingerprint

from . import forked_compile
from .kernel_cache import cache_key, default_cache, graphc_identity


SOURCES = ("codegen/llvm", "kernels")  # what the code depends on, of graphc's own sources


def object_key(*content):
    """The cache key of the object code built from `content` (text that decides the module)."""
    return cache_key(*content, jit.identity(), graphc_identity(SOURCES))


class Shared(NamedTuple):
    """A module that programs link: `make_module()` builds it, `symbols` are what they call."""
    name: str
    make_module: Callable
    symbols: tuple
    pipeline: dict   # jit.compile_ir's options

    @property
    def key(self):
        return object_key("shared", self.name)

    def make_ir(self):
        return str(self.make_module())


def gemm_shared(dtype):
    return Shared(f"gemm {dtype}", lambda: gemm_module(dtype), (gemm_name(dtype),), GEMM_PIPELINE)


POOL = Shared("thread pool", lambda: pool_module(jit.host()[0]), ("graphc_parallel_for",), {})

_objects = {}     # shared key -> object bytes, or the ForkedCompile that makes them
_libraries = {}   # shared key -> the loaded library, kept for the life of the process
_shared_lock = threading.RLock()


def start_compiling(shared):
    """Starts compiling `shared` in a child if neither this process nor the disk cache has it."""
    key = shared.key
    with _shared_lock:
        if key not in _objects:
            code = default_cache().get(key)
            _objects[key] = code if code is not None else forked_compile.ForkedCompile(
                shared.make_ir, **shared.pipeline)


def shared_object(shared):
    """The object code of `shared`, read, received from its child or compiled once per process."""
    key = shared.key
    with _shared_lock:
        found = _objects.get(key)
        if isinstance(found, forked_compile.ForkedCompile):
            found = found.result()
            default_cache().put(key, found)
        elif found is None:
            found = default_cache().get_or_build(
                key, lambda: jit.compile_ir(shared.make_ir(), **shared.pipeline))
        _objects[key] = found
        return found


def link(shared):
    """`shared` loaded into the process once, its symbols resolving in objects loaded later."""
    key = shared.key
    with _shared_lock:
        if key not in _libraries:
            library = jit.load_object(shared_object(shared))
            for symbol in shared.symbols:
                jit.publish(library, symbol)
            _libraries[key] = library
        return _libraries[key]


class Program:
    """Segments of kernels as native code: `entry(n)` is segment n's `i64 (ctx*, pool*)`."""

    def __init__(self, segments):
        self.segments = segments
        key = object_key("program", *(fingerprint(kernels) for kernels in segments))
        self.tag = key[:16]  # in the symbols: two programs never clash in one process
        linked = [gemm_shared(dtype) for dtype in gemm_dtypes(segments)] + [POOL]
        cache = default_cache()
        code = cache.get(key)
        if code is None:
            if forked_compile.worthwhile():
                for shared in linked:
                    start_compiling(shared)
            code = jit.compile_ir(self.text, **PROGRAM_PIPELINE)
            cache.put(key, code)
        for shared in linked:
            link(shared)
        self.library = jit.load_object(code)

    @functools.cached_property
    def text(self):
        """The program's LLVM IR (generated when asked for: a cache hit does without)."""
        return str(build_module(self.segments, self.tag))

    def entry(self, number):
        return self.library.function(entry_symbol(self.tag, number), ctypes.c_int64,
                                     ctypes.c_void_p, ctypes.c_void_p)
