"""LLVM types of graphc's dtypes, constants, and intrinsic declarations."""
import numpy as np
from llvmlite import ir as ll

I1, I8, I16, I32, I64 = (ll.IntType(1), ll.IntType(8), ll.IntType(16), ll.IntType(32),
                         ll.IntType(64))
F16, F32, F64 = ll.HalfType(), ll.FloatType(), ll.DoubleType()
VOID, PTR = ll.VoidType(), ll.IntType(8).as_pointer()

# dtype name -> (register type, storage type); bfloat16 is stored and computed as float32.
# LLVM's integers have no sign: the instructions that differ by it (division, comparisons,
# widening, conversions) pick theirs by the dtype's (UNSIGNED).
TYPES = {"bool": (I1, I8), "int8": (I8, I8), "uint8": (I8, I8), "int16": (I16, I16),
         "uint16": (I16, I16), "int32": (I32, I32), "uint32": (I32, I32), "int64": (I64, I64),
         "uint64": (I64, I64), "float16": (F16, F16), "bfloat16": (F32, F32),
         "float32": (F32, F32), "float64": (F64, F64)}
FLOATS = ("float16", "bfloat16", "float32", "float64")
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")
SUFFIX = {F16: "f16", F32: "f32", F64: "f64", I8: "i8", I16: "i16", I32: "i32", I64: "i64"}


def constant(value, dtype):
    ty = TYPES[dtype][0]
    if dtype == "bool":
        return I1(int(bool(value)))
    if dtype in FLOATS:
        # rounded to the register type as numpy casts (70000 is inf in float16), which
        # llvmlite refuses to do for a value out of the type's range
        with np.errstate(over="ignore"):
            return ll.Constant(ty, float(np.asarray(value, _NUMPY[ty])))
    bits = ty.width  # an unsigned value above the signed range, as its two's complement bits
    return ll.Constant(ty, (int(value) + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1)))


_NUMPY = {F16: np.float16, F32: np.float32, F64: np.float64}


def intrinsic(module, name, ty, nargs=1, result=None):
    """The declaration of an overloaded LLVM intrinsic such as llvm.maximum for type ty."""
    full = (f"{name}.{mangled(ty)}" if result is None
            else f"{name}.{mangled(result)}.{mangled(ty)}")
    if full in module.globals:
        return module.globals[full]
    return ll.Function(module, ll.FunctionType(result or ty, [ty] * nargs), full)


def mangled(ty):
    """ty as LLVM spells it in an overloaded intrinsic's name: f32, i64, v16f32."""
    if isinstance(ty, ll.VectorType):
        return f"v{ty.count}{SUFFIX[ty.element]}"
    return SUFFIX[ty]


def shaped(ty, like):
    """Scalar type ty, or a vector of ty with as many lanes as `like` where that is a vector."""
    return ll.VectorType(ty, like.type.count) if isinstance(like.type, ll.VectorType) else ty
