"""C types of graphc's dtypes in generated CUDA code, and literals.

Values live in registers in their compute type and in memory in their storage type: bool is
stored as a byte, float16 as __half but computed as float (holding values a half represents
exactly), bfloat16 stored and computed as float (rounded by the round_bfloat16 op).
"""
import math

import numpy as np

from ...ir import dtypes

REGISTER = {"bool": "bool", "int8": "signed char", "uint8": "unsigned char", "int16": "short",
            "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
            "int64": "long long", "uint64": "unsigned long long", "float16": "float",
            "bfloat16": "float", "float32": "float", "float64": "double"}
STORAGE = {**REGISTER, "bool": "unsigned char", "float16": "__half"}
STORAGE_BYTES = {name: dtypes.BY_NAME[name].np.itemsize for name in REGISTER}
FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = tuple(d.name for d in dtypes.INTEGERS)
INT_MIN = {"int32": "(-2147483647 - 1)", "int64": "(-9223372036854775807LL - 1)"}
# integer literals of a type wider than int say so by a suffix; narrower ones by a cast, so
# that a template deduces their type (int arithmetic would promote them)
INT_SUFFIX = {"int64": "LL", "uint64": "ULL", "uint32": "u"}
NARROW = ("int8", "uint8", "int16", "uint16")


def is_float(dtype):
    return dtype in FLOATS


def math_suffix(dtype):
    """The suffix of the C math functions for a float dtype's register type: expf vs exp."""
    return "" if REGISTER[dtype] == "double" else "f"


def literal(value, dtype):
    """A C literal of `value` as a register value of `dtype` (rounded as the dtype stores it)."""
    if dtype == "bool":
        return "true" if value else "false"
    if dtype in INTS:
        np_type = dtypes.BY_NAME[dtype].np
        v = int(np.asarray(value).astype(np_type))
        if dtype in INT_MIN and v == np.iinfo(np_type).min:  # its digits overflow: as a sum
            return INT_MIN[dtype]
        text = f"{v}{INT_SUFFIX.get(dtype, '')}"
        if dtype in NARROW:
            return f"(({REGISTER[dtype]}){text})"
        return f"({text})" if v < 0 else text
    v = float(value)
    with np.errstate(over="ignore"):  # a constant beyond the type's range is its infinity
        if dtype == "float16":
            v = float(np.float16(v))
        elif dtype == "bfloat16":
            v = float(dtypes.round_bfloat16(np.float32(v)))
        elif dtype == "float32":
            v = float(np.float32(v))
    suffix = "" if REGISTER[dtype] == "double" else "f"
    if math.isnan(v) or math.isinf(v):
        text = "NAN" if math.isnan(v) else "INFINITY" if v > 0 else "-INFINITY"
        return f"({text})" if suffix else f"((double){text})"
    text = repr(v) if suffix == "" else str(np.float32(v))  # shortest digits that round-trip
    if "e" not in text and "." not in text:
        text += ".0"
    return f"({text}{suffix})" if text.startswith("-") else f"{text}{suffix}"


def to_storage(value, dtype):
    if dtype == "bool":
        return f"(unsigned char){value}"
    return f"__float2half_rn({value})" if dtype == "float16" else value


def from_storage(element, dtype):
    if dtype == "bool":
        return f"{element} != 0"
    return f"__half2float({element})" if dtype == "float16" else element
