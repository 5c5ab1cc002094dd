"""The CPU target: kernels become one LLVM module (graphc/codegen/llvm), compiled for the host.

Capabilities: the GEMM computes float32 and float64 products (float16 and bfloat16 ones run in
float32); a kernel may store over an input it reads only where it stores (the kernels' alias
scopes tell LLVM so, codegen/llvm/aliasing.py); a scalar op without instructions in
codegen/llvm/scalar.py leaves its group to the numpy reference. Its own kernel pass splits
large full reductions among the threads (codegen/llvm/split_reductions.py). Assignments run no
step: the runtime hands an assignment's value's buffer to the variable.

The code (`CpuCode`) is the program's segments of kernels and their fingerprints; the LLVM IR is
generated when first asked for, so a program found in the disk cache never generates it. Below
`CpuCode` is what the runtime needs to compile, load and link such code and to lay out the
thread pool that programs call (runtime/llvm_objects.py, runtime/threads.py).
"""
import ctypes
import functools
import hashlib
from typing import Callable, NamedTuple

from ..codegen.llvm import gemm, jit, parallel
from ..codegen.llvm import loop_driver
from ..codegen.llvm.program import (GEMM_PIPELINE, build_module, driver_symbol,
                                    entry_symbol, gemm_dtypes, gemm_module)
from ..codegen.llvm.runner import bound_symbol, runner_symbol
from ..codegen.llvm.scalar import unsupported_ops
from ..codegen.llvm.split_reductions import split_reductions
from ..kernels.fingerprint import fingerprint
from . import Target


class CpuTarget(Target):
    name = "cpu"
    gemm_dtypes = gemm.DTYPES
    resolves_assignments = True
    writes_in_place = True
    native_collectives = True
    keeps_packed_b = True
    fuses_gemm_epilogue = True
    source_kinds = ("llvm", "llvm-opt", "asm")
    dump_files = (("91-program.ll", "llvm", None), ("92-program-opt.ll", "llvm-opt", None),
                  ("93-program.s", "asm", None))

    def unsupported(self, kernels):
        return unsupported_ops(kernels)

    def group_passes(self, kernels, slots):
        return split_reductions(kernels, slots)

    def generate(self, segments, allow_tf32=False, loop_body=False):
        return CpuCode(segments, loop_body)

    def _source(self, code, kind):
        """"llvm": the IR as generated; "llvm-opt": after LLVM's pipeline; "asm": assembly."""
        if kind == "llvm":
            return code.text
        return {"llvm-opt": jit.optimize_ir, "asm": jit.assembly}[kind](code.text,
                                                                       **code.pipeline)


CPU = CpuTarget()


class CpuCode:
    """A CPU program: segment n is entered through `i64 entry_symbol(n)(ctx*, pool*)`, all of
    them through `void runner_symbol()` on the ctx and pool that the struct at `bound_symbol`
    holds (BOUND_FIELDS; codegen/llvm/runner.py); a loop body's (`loop_driver`) also has `i64 driver_symbol(ctx*, pool*, i64* desc)`, which
    runs every step of the loop (codegen/llvm/loop_driver.py says what desc holds)."""
    def __init__(self, segments, loop_driver=False):
        self.segments = segments
        self.loop_driver = loop_driver
        self.fingerprints = tuple(fingerprint(kernels) for kernels in segments) + (
            ("loop driver",) if loop_driver else ())
        # in the symbols: two programs never clash in one process
        self.tag = hashlib.sha256("\n".join(self.fingerprints).encode()).hexdigest()[:16]
        # the GEMMs it calls, each compiled apart and linked (gemm_code)
        self.gemm_dtypes = gemm_dtypes(segments)

    @functools.cached_property
    def _built(self):
        module, pipeline = build_module(self.segments, self.tag, self.loop_driver)
        return str(module), pipeline

    @property
    def text(self):
        """The program's LLVM IR."""
        return self._built[0]

    @property
    def pipeline(self):
        """compile_object's options for the program (build_module chooses them)."""
        return self._built[1]

    def entry_symbol(self, number):
        return entry_symbol(self.tag, number)

    @property
    def driver_symbol(self):
        return driver_symbol(self.tag) if self.loop_driver else None

    @property
    def runner_symbol(self):
        return runner_symbol(self.tag)

    @property
    def bound_symbol(self):
        return bound_symbol(self.tag)


# ---- compiling, loading and linking CPU code ------------------------------------------------
ENTRY_TYPES = (ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)  # a segment's entry, ctypes
DRIVER_TYPES = ENTRY_TYPES + (ctypes.c_void_p,)  # a loop body's driver (ctx, pool, desc)
DRIVER_RECORD = loop_driver.RECORD  # words of desc per binding
# the runner's bound struct (codegen/llvm/runner.py's BOUND) as ctypes fields
BOUND_FIELDS = [("ctx", ctypes.c_void_p), ("pool", ctypes.c_void_p), ("failed", ctypes.c_int64)]


class Linked(NamedTuple):
    """Code that programs link, compiled once apart: `make_text()` is its LLVM IR, `symbols`
    what programs call of it."""
    name: str
    make_text: Callable
    symbols: tuple
    pipeline: dict   # compile_object's options


def gemm_code(dtype):
    return Linked(f"gemm {dtype}", lambda: str(gemm_module(dtype)),
                  (gemm.gemm_name(dtype), gemm.gemm_name(dtype, full=True)), GEMM_PIPELINE)


POOL_CODE = Linked("thread pool", lambda: str(parallel.pool_module(jit.host()[0])),
                   ("graphc_parallel_for",), {})


def shared_codes():
    """Every Linked that programs may call: graph-independent code, the same for all of them."""
    return tuple(gemm_code(dtype) for dtype in gemm.DTYPES) + (POOL_CODE,)


# How a program is compiled for its first runs while its own pipeline compiles apart
# (runtime/llvm_objects.py): no IR passes and the fast code generator, about a tenth of the
# time (W4's train step: 0.02 s of CPU instead of 0.27 s) for code that runs slower.
QUICK_PIPELINE = {"level": 0, "unroll": False, "codegen": 0}


def quick_tier_pays(pipeline):
    """Whether a program compiled with `pipeline` should start on QUICK_PIPELINE's code: not
    where it has the fast code generator already, whose time the IR passes barely change
    (W8's 10,000-op chain: 1.16 s of CPU at O3, 1.16 s without passes)."""
    return pipeline.get("codegen", 3) > 0


def compile_object(text, pipeline):
    """Host object code (bytes) of LLVM IR text."""
    return jit.compile_ir(text, **pipeline)


def load_object(*objects):
    """Object code loaded and linked together: a library whose `function(symbol, restype,
    *argtypes)` is a ctypes function."""
    return jit.load_object(*objects)


def publish(library, symbol):
    """`symbol` of a loaded library resolves in objects loaded later that declare it."""
    jit.publish(library, symbol)


def machine():
    """What compiled code depends on besides its IR: LLVM, the host's triple, CPU, features."""
    return jit.identity()


# The thread pool's memory as the pool's code reads it: a block of pool_bytes(nthreads) bytes,
# POOL_LINE-aligned and zeroed, whose fields (pool_field) its owner sets.
POOL_LINE = parallel.LINE
POOL_SPIN_CYCLES = parallel.SPIN_CYCLES
pool_bytes = parallel.pool_bytes


def pool_field(name):
    """(byte offset, bits) of a field of the pool's memory."""
    offset, typ = parallel.FIELDS[name]
    return offset, typ.width
