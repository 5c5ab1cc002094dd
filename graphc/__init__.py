"""graphc: a graph-compiling deep-learning framework.

Build a symbolic graph with the functions here, differentiate it with `grad`, and run it in a
`Session` or as a Theano-style `function`.
"""
import os as _os

from .errors import (CheckpointError, DeviceError, DTypeError, FeedError, FileNotFoundError_,
                     GradientError, GraphcError, GraphMismatchError, IndexError_, NumericsError,
                     ResourceError, ShapeError)
from .ir.dtypes import (bfloat16, bool_, float16, float32, float64, int8, int16, int32, int64,
                        uint8, uint16, uint32, uint64, DType, as_dtype)
from .ir.graph import Graph, Tensor, get_default_graph, name_scope, reset_default_graph
from .ir.source import add_internal_root as _add_internal_root
from .ir.types import Dim, TensorType
from . import ops as _ops
from .ops.elementwise import *  # noqa: F401,F403  (the table-built elementwise ops)

from .ops.linalg import matmul
from .ops.reductions import argmax, argmin, logsumexp, max, mean, min, prod, sum
from .ops.shape import (expand_dims, matrix_transpose, reshape, reshape_like, squeeze,
                        stop_gradient, transpose)
from .ops.shape import broadcast_to, concat, gather, one_hot, pad, split, stack
from .ops.sources import constant, placeholder
from .ops.state import (Variable, assign, assign_add, assign_sub, global_variables_initializer,
                        group)
from .ops.control_flow import cond, foldl, map_fn, scan, while_loop
from .ops.indexing import (cumsum, einsum, gather_elements, scatter_elements, scatter_nd,
                           top_k)
from .autodiff import grad
from .dump import dump
from . import distributed, nn, random, train

# runtime/ and frontend/ install as graphc.runtime and graphc.frontend; frames there are
# graphc's own, not the user's, when a node records where it was created.
_pkg = _os.path.dirname(_os.path.abspath(__file__))
_add_internal_root(_os.path.join(_os.path.dirname(_pkg), "runtime"))
_add_internal_root(_os.path.join(_os.path.dirname(_pkg), "frontend"))

from .runtime import Session, function, get_default_session  # noqa: E402
from .runtime.graph_files import load, save  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # gc.onnx imports the onnx package, an optional dependency: only when first used
    if name == "onnx":
        import importlib
        return importlib.import_module("graphc.onnx")
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")
