"""Reading ONNX protobufs safely: the model, its tensors, external data.

Nothing here runs code from a file: a model is parsed as a protobuf message and its tensors are
decoded by graphc, not by onnx's helpers (which follow external-data paths anywhere; onnx's
CVE-2024-27318 and CVE-2024-5187). External data is read only from regular files inside the
model's own folder; every declared size is checked against the bytes really there before
anything is allocated.
"""
import os

import numpy as np

from ..ir import dtypes
from .errors import OnnxFormatError, OnnxSecurityError, OnnxUnsupportedError

# ONNX TensorProto.DataType -> graphc dtype (the ones graphc has)
DTYPES = {1: dtypes.float32, 2: dtypes.uint8, 3: dtypes.int8, 4: dtypes.uint16, 5: dtypes.int16,
          6: dtypes.int32, 7: dtypes.int64, 9: dtypes.bool_, 10: dtypes.float16,
          11: dtypes.float64, 12: dtypes.uint32, 13: dtypes.uint64}
DTYPE_NAMES = {0: "undefined", 1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16",
               6: "int32", 7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "double",
               12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
               17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
               21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2",
               26: "int2", 27: "float6e2m3", 28: "float6e3m2"}
ONNX_OF = {v.name: k for k, v in DTYPES.items()}
MAX_ELEMENTS = 1 << 34  # a declared tensor larger than this is refused outright


def gc_dtype(code, what="tensor"):
    try:
        return DTYPES[code]
    except KeyError:
        name = DTYPE_NAMES.get(code, f"type {code}")
        raise OnnxUnsupportedError(f"{what} has ONNX dtype {name}, which graphc does not "
                                   f"have (it has {', '.join(DTYPE_NAMES[c] for c in DTYPES)})"
                                   ) from None


def parse_model(data):
    """A ModelProto from serialized bytes; anything else is an OnnxFormatError."""
    import onnx
    from google.protobuf.message import DecodeError
    model = onnx.ModelProto()
    try:
        model.ParseFromString(bytes(data))
    except (DecodeError, ValueError, RuntimeError) as err:
        raise OnnxFormatError(f"not a valid ONNX model (protobuf parse failed: {err})") from None
    if not model.HasField("graph"):
        raise OnnxFormatError("not a valid ONNX model: it has no graph")
    return model


def _count(dims, what):
    n = 1
    for d in dims:
        if d < 0:
            raise OnnxFormatError(f"{what} declares a negative dim {d} in {list(dims)}")
        n *= d
    if n > MAX_ELEMENTS:
        raise OnnxFormatError(f"{what} declares {n} elements (shape {list(dims)}), more than "
                              f"graphc accepts ({MAX_ELEMENTS})")
    return n


def _inside(base_dir, location, what):
    """The real path of external data file `location`, refused unless inside base_dir."""
    if base_dir is None:
        raise OnnxSecurityError(f"{what} keeps its data in external file {location!r}, but "
                                "the model was not loaded from a file, so there is no folder "
                                "to read it from")
    if not location or os.path.isabs(location) or location.startswith(("/", "\\")) or any(
            part == ".." for part in location.replace("\\", "/").split("/")) or ":" in location:
        raise OnnxSecurityError(f"{what}: external data location {location!r} is not a relative "
                                "path inside the model's folder (absolute paths, drive names "
                                "and '..' are refused)")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise OnnxSecurityError(f"{what}: external data location {location!r} leads out of "
                                f"the model's folder {root} (through a symbolic link)")
    if not os.path.isfile(path):
        raise OnnxFormatError(f"{what}: external data file {location!r} is missing or not a "
                              "regular file")
    return path


def _external_bytes(tensor, base_dir, nbytes, what):
    info = {e.key: e.value for e in tensor.external_data}
    path = _inside(base_dir, info.get("location", ""), what)
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", nbytes))
    except ValueError:
        raise OnnxFormatError(f"{what}: external data offset/length are not integers") from None
    size = os.path.getsize(path)
    if offset < 0 or length != nbytes or offset + length > size:
        raise OnnxFormatError(f"{what}: external data of {length} bytes at offset {offset} "
                              f"does not fit its file of {size} bytes or its declared "
                              f"{nbytes} bytes")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


# ONNX dtype -> the TensorProto field holding its values when they are not raw bytes
DATA_FIELDS = {1: "float_data", 11: "double_data", 7: "int64_data", 12: "uint64_data",
               13: "uint64_data"}


def to_array(tensor, base_dir=None, what=None):
    """The numpy value of a TensorProto (graphc's dtypes only), sizes checked first."""
    what = what or f"tensor {tensor.name!r}"
    dtype = gc_dtype(tensor.data_type, what)
    if tensor.HasField("segment"):
        raise OnnxUnsupportedError(f"{what} is segmented, which graphc does not import")
    count = _count(tensor.dims, what)
    np_dtype = np.dtype(dtype.np)
    nbytes = count * np_dtype.itemsize
    if tensor.data_location == 1:  # EXTERNAL
        raw = _external_bytes(tensor, base_dir, nbytes, what)
    elif tensor.HasField("raw_data"):
        raw = tensor.raw_data
    else:
        raw = None
    if raw is not None:
        if len(raw) != nbytes:
            raise OnnxFormatError(f"{what} declares shape {list(tensor.dims)} ({nbytes} bytes) "
                                  f"but holds {len(raw)} bytes")
        return np.frombuffer(raw, dtype=np_dtype.newbyteorder("<")).astype(np_dtype).reshape(
            tuple(tensor.dims))
    # float16 values live in int32_data as bit patterns, as do bools and the integers of 32 bits
    # and fewer but uint32
    data = getattr(tensor, DATA_FIELDS.get(tensor.data_type, "int32_data"))
    if len(data) != count:
        raise OnnxFormatError(f"{what} declares shape {list(tensor.dims)} ({count} elements) "
                              f"but holds {len(data)}")
    if tensor.data_type == 10:
        return np.asarray(data, np.uint16).view(np.float16).reshape(tuple(tensor.dims))
    return np.asarray(data).astype(np_dtype).reshape(tuple(tensor.dims))
