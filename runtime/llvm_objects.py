"""Native code from the LLVM code generator, through the disk cache: programs, the GEMM they
call, the thread pool.

A program is keyed on the fingerprint of its kernels (graphc.kernels.fingerprint) and on what
else decides its code: LLVM and the host CPU (`jit.identity()`) and the sources of the kernel IR
and the LLVM code generator (`graphc_identity`). A warm process therefore loads a program
without generating its LLVM IR.
The GEMM of each dtype is compiled apart, once, under a key of its own, and loaded once per
process, where every program that calls it links to it: compiling it costs more than most
programs, and one copy means one packing buffer per thread, whatever the number of programs. Objects that programs share
are kept in memory once read or built, so a process reads (or compiles) each of them once.
"""
import ctypes
import functools
import threading

from graphc.codegen.llvm import jit
from graphc.codegen.llvm.gemm import gemm_name
from graphc.codegen.llvm.parallel import pool_module
from graphc.codegen.llvm.program import (GEMM_PIPELINE, PROGRAM_PIPELINE, build_module,
                                         entry_symbol, gemm_dtypes, gemm_module)
from graphc.kernels.fingerprint import fingerprint

from .kernel_cache import cache_key, default_cache, graphc_identity


SOURCES = ("codegen/llvm", "kernels")  # what the code depends on, of graphc's own sources


def object_key(*content):
    """The cache key of the object code built from `content` (text that decides the module)."""
    return cache_key(*content, jit.identity(), graphc_identity(SOURCES))


def compiled(key, make_ir, **pipeline):
    """Object code (bytes) under `key`: from the disk cache, else compiled from make_ir()
    (`pipeline`: jit.compile_ir's options)."""
    return default_cache().get_or_build(key, lambda: jit.compile_ir(make_ir(), **pipeline))


_shared = {}  # object key -> bytes, for the objects that many programs link
_shared_lock = threading.Lock()


def shared_object(name, make_module, **pipeline):
    """The object code of a module programs share (make_module() builds it; `name` says
    which one it is), read or compiled once per process."""
    key = object_key("shared", name)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = compiled(key, lambda: str(make_module()), **pipeline)
        return _shared[key]


def gemm_object(dtype):
    return shared_object(f"gemm {dtype}", lambda: gemm_module(dtype), **GEMM_PIPELINE)


_gemm_libraries = {}  # dtype -> the loaded GEMM, kept for the life of the process
_gemm_lock = threading.Lock()


def link_gemm(dtype):
    """Loads the GEMM of `dtype` into the process once, for programs loaded later to call."""
    with _gemm_lock:
        if dtype not in _gemm_libraries:
            library = jit.load_object(gemm_object(dtype))
            jit.publish(library, gemm_name(dtype))
            _gemm_libraries[dtype] = library


def pool_object():
    return shared_object("thread pool", lambda: pool_module(jit.host()[0]))


class Program:
    """Segments of kernels as native code: `entry(n)` is segment n's `i64 (ctx*, pool*)`."""

    def __init__(self, segments):
        self.segments = segments
        key = object_key("program", *(fingerprint(kernels) for kernels in segments))
        self.tag = key[:16]  # in the symbols: two programs never clash in one process
        code = compiled(key, lambda: self.text, **PROGRAM_PIPELINE)
        for dtype in gemm_dtypes(segments):
            link_gemm(dtype)
        self.library = jit.load_object(code)

    @functools.cached_property
    def text(self):
        """The program's LLVM IR (generated when asked for: a cache hit does without)."""
        return str(build_module(self.segments, self.tag))

    def entry(self, number):
        return self.library.function(entry_symbol(self.tag, number), ctypes.c_int64,
                                     ctypes.c_void_p, ctypes.c_void_p)
