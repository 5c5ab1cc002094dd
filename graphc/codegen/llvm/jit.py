"""Everything that touches llvmlite's binding layer: target, parse, verify, optimize, emit, load.

The rest of the LLVM code generator builds `llvmlite.ir` modules and hands them here as text.
`compile_ir` turns IR into an object file (bytes) for the host CPU at O3; `load_object` maps
such bytes into the process, linked with any others given, and returns a `Library` whose
symbols are looked up by name; `publish` lets later objects link to a loaded library's symbol
(programs and the one GEMM of the process). Object bytes are what the disk
cache stores, so a warm process only loads, never compiles.
"""
import ctypes
import functools
import os
import threading

import llvmlite
import llvmlite.binding as llvm

from ...errors import GraphcError

_lock = threading.Lock()  # llvmlite's binding layer is not thread safe
# A child forked while another thread is inside LLVM would start with LLVM's state half updated
# and could not compile (runtime/forked_compile.py compiles in children): a fork waits for it.
os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release,
                    after_in_child=_lock.release)


@functools.lru_cache(maxsize=None)
def _init():
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return True


@functools.lru_cache(maxsize=None)
def host():
    """(triple, cpu name, feature string) of this machine."""
    _init()
    return (llvm.get_process_triple(), llvm.get_host_cpu_name(),
            llvm.get_host_cpu_features().flatten())


def host_features():
    """The set of enabled CPU feature names ("avx512f", "fma", ...)."""
    return {f[1:] for f in host()[2].split(",") if f.startswith("+")}


def vector_bits():
    """The widest SIMD register: 512 with AVX-512, 256 with AVX, else 128."""
    features = host_features()
    return 512 if "avx512f" in features else 256 if "avx" in features else 128


def identity():
    """What compiled code depends on besides its IR: llvmlite, LLVM, the target and CPU."""
    triple, cpu, features = host()
    return f"llvmlite {llvmlite.__version__} llvm {llvm.llvm_version_info} {triple} {cpu} {features}"


def _new_target_machine(codegen=3):
    triple, cpu, features = host()
    target = llvm.Target.from_triple(triple)
    return target.create_target_machine(cpu=cpu, features=features, opt=codegen, reloc="pic",
                                        codemodel="default", jit=True)


@functools.lru_cache(maxsize=None)
def target_machine(codegen=3):
    """The host's target machine; `codegen`: its code generator's optimization level."""
    return _new_target_machine(codegen)


def _optimized(ir_text, level, unroll):
    try:
        mod = llvm.parse_assembly(str(ir_text))
        mod.verify()
    except RuntimeError as err:
        raise GraphcError(f"generated LLVM IR does not verify: {err}") from None
    tm = target_machine()
    options = llvm.create_pipeline_tuning_options(speed_level=level)
    options.loop_vectorization = level >= 2
    options.slp_vectorization = level >= 2
    options.loop_unrolling = unroll
    builder = llvm.create_pass_builder(tm, options)
    builder.getModulePassManager().run(mod, builder)
    return mod


def optimize_ir(ir_text, level=3, unroll=True, codegen=3):
    """The IR after LLVM's pipeline (as compile_ir runs it), as text."""
    with _lock:
        _init()
        return str(_optimized(ir_text, level, unroll))


def compile_ir(ir_text, level=3, unroll=True, codegen=3):
    """Host object code (bytes) for an IR module, optimized at O3 (`level` 1 or 2: O1, O2;
    `unroll=False` leaves loops as written, for code vectorized by hand; `codegen=0`: LLVM's
    fast instruction selection and register allocation, several times faster on long
    straight-line vector code, which gains nothing from the slower ones)."""
    with _lock:
        _init()
        return target_machine(codegen).emit_object(_optimized(ir_text, level, unroll))


def assembly(ir_text, level=3, unroll=True, codegen=3):
    """The host assembly of an IR module, optimized and generated as compile_ir does."""
    with _lock:
        _init()
        return target_machine(codegen).emit_assembly(_optimized(ir_text, level, unroll))


class Library:
    """Object code loaded into this process; `address(name)` finds a function by symbol.
    Several object files are linked together: each one's undefined symbols may be the others'."""

    def __init__(self, *objects):
        with _lock:
            _init()
            # an empty module hosts the engine; the object files carry the code. The engine
            # owns (and frees) its target machine, so it gets one of its own, not the shared one.
            self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _new_target_machine())
            for object_bytes in objects:
                self._engine.add_object_file(llvm.ObjectFileRef.from_data(object_bytes))
            self._engine.finalize_object()

    def address(self, name):
        with _lock:
            addr = self._engine.get_function_address(name)
        if not addr:
            raise GraphcError(f"compiled code has no symbol {name!r}")
        return addr

    def function(self, name, restype, *argtypes):
        """The symbol as a ctypes function (calls release the GIL)."""
        return ctypes.CFUNCTYPE(restype, *argtypes)(self.address(name))


def load_object(*objects):
    """The object files (bytes) loaded and linked together, as one Library."""
    return Library(*objects)


def publish(library, name):
    """Symbol `name` of `library` resolves in objects loaded from now on that declare it and
    define none, so that many libraries share one copy of it (`library` must outlive them)."""
    address = library.address(name)
    with _lock:
        llvm.add_symbol(name, address)
