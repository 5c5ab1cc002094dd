"""ONNX export: a graphc graph (fetches, their placeholders, the session's variable values) as
an onnx.ModelProto, opsets 13 to 21.

The one table of exporters, EXPORTERS, is keyed by graphc op and kept here beside the import
converters (converters.py, keyed by ONNX op type): `@exporter("op")` declares how one graphc
node becomes ONNX nodes. An exporter gets the Export being built, the graphc node and the ONNX
names of its inputs, and returns the ONNX names of the node's outputs. NHWC convolutions and
pools go through transposes around ONNX's NCHW Conv and pools; ops ONNX lacks become a few ONNX
ops. An op with no exporter is an OnnxExportError (a GraphcError) naming the node and op.
"""
import numpy as np

from ..ir.graph import Tensor, nodes_needed
from .errors import OnnxError, OnnxExportError
from .proto import ONNX_OF

MIN_OPSET, MAX_OPSET = 13, 21
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min

# graphc dtype name -> ONNX TensorProto.DataType: the importer's, and bfloat16
ONNX_DTYPES = {**ONNX_OF, "bfloat16": 16}

EXPORTERS = {}


def exporter(*ops):
    def deco(fn):
        for op in ops:
            assert op not in EXPORTERS, op
            EXPORTERS[op] = fn
        return fn
    return deco


def default_opset():
    """The newest opset in 13..21 that the installed onnx knows."""
    import onnx
    return min(MAX_OPSET, onnx.defs.onnx_opset_version())


def onnx_dtype(dtype, node=None):
    try:
        return ONNX_DTYPES[dtype.name]
    except KeyError:
        raise OnnxExportError(f"dtype {dtype.name} has no ONNX type", node) from None


def _value_info(name, t):
    from onnx import helper
    dims = [d if isinstance(d, int) else d.name for d in t.shape]
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype), dims)


class Export:
    """The ONNX graph being built: nodes, initializers and the name of each graphc tensor."""

    def __init__(self, opset):
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.names = {}  # (graphc node id, output index) -> ONNX value name
        self.taken = set()
        self._consts = {}  # (dtype, shape, bytes) -> name, for small helper constants
        self.node = None  # the graphc node being exported (for names and errors)
        self.used = None  # keys of the tensors something reads (None: assume all)

    def child(self):
        """An Export for a body (a subgraph): its own nodes and names, the names, helper
        constants and initializers (outer-scope values to the body) of this one."""
        sub = Export.__new__(Export)
        sub.__dict__.update(self.__dict__)
        sub.nodes, sub.names, sub.node, sub.used = [], {}, None, None
        return sub

    # -- names ---------------------------------------------------------------------------------
    def fresh(self, base):
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def unsupported(self, why):
        return OnnxExportError(f"cannot export to ONNX opset {self.opset}: {why}", self.node)

    # -- values --------------------------------------------------------------------------------
    def initializer(self, array, name):
        from onnx import numpy_helper
        name = self.fresh(name)
        array = np.asarray(array)
        if array.dtype == np.dtype("O"):
            raise self.unsupported(f"value {name!r} is not a numeric array")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def const(self, value, dtype=np.int64):
        """A small constant (shapes, axes, scalars), shared by equal values."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            base = self.node.name if self.node is not None else "const"
            self._consts[key] = self.initializer(array, f"{base}/const")
        return self._consts[key]

    def const_like(self, value, t):
        """A scalar constant of tensor t's dtype."""
        return self.const(value, t.dtype.np)

    def op(self, op_type, inputs, outputs=1, **attrs):
        """Append an ONNX node; returns its output name (or names, for outputs > 1 or a list of
        names)."""
        from onnx import helper
        base = self.node.name if self.node is not None else op_type
        if isinstance(outputs, int):
            names = [self.fresh(f"{base}/{op_type}") for _ in range(outputs)]
        else:
            names = list(outputs)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(f"{base}/{op_type}:node"), **attrs))
        return names[0] if isinstance(outputs, int) and outputs == 1 else names

    def shape_of(self, name, axis=None):
        """The run-time shape of a value (1-D int64), or its size along `axis` (shape [1])."""
        shape = self.op("Shape", [name])
        return shape if axis is None else self.op("Gather", [shape, self.const([axis])], axis=0)

    def axes_input(self, axes):
        return self.const(list(axes))


# ---- the exporters ------------------------------------------------------------------------------
def _simple(onnx_op, **fixed):
    def export(ex, node, ins):
        return [ex.op(onnx_op, ins, **fixed)]
    return export


_UNARY = {"neg": "Neg", "abs": "Abs", "sign": "Sign", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid",
          "softplus": "Softplus", "relu": "Relu", "erf": "Erf", "floor": "Floor",
          "logical_not": "Not", "stop_gradient": "Identity"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "pow": "Pow", "maximum": "Max",
           "minimum": "Min", "equal": "Equal", "less": "Less", "less_equal": "LessOrEqual",
           "greater": "Greater", "greater_equal": "GreaterOrEqual", "logical_and": "And",
           "logical_or": "Or", "logical_xor": "Xor", "matmul": "MatMul"}
for _op, _onnx in {**_UNARY, **_BINARY}.items():
    exporter(_op)(_simple(_onnx))


@exporter("square")
def _square(ex, node, ins):
    return [ex.op("Mul", [ins[0], ins[0]])]


@exporter("rsqrt")
def _rsqrt(ex, node, ins):
    return [ex.op("Reciprocal", [ex.op("Sqrt", ins)])]


@exporter("log1p")
def _log1p(ex, node, ins):
    return [ex.op("Log", [ex.op("Add", [ins[0], ex.const_like(1, node.inputs[0])])])]


@exporter("expm1")
def _expm1(ex, node, ins):
    return [ex.op("Sub", [ex.op("Exp", ins), ex.const_like(1, node.inputs[0])])]


def _fill(ex, like_name, value, dtype):
    from onnx import numpy_helper
    return ex.op("ConstantOfShape", [ex.shape_of(like_name)],
                 value=numpy_helper.from_array(np.asarray([value], dtype.np)))


@exporter("isnan")
def _isnan(ex, node, ins):
    if not node.inputs[0].dtype.is_float:
        return [_fill(ex, ins[0], False, node.outputs[0].dtype)]
    return [ex.op("IsNaN", ins)]


@exporter("isfinite")
def _isfinite(ex, node, ins):
    if not node.inputs[0].dtype.is_float:
        return [_fill(ex, ins[0], True, node.outputs[0].dtype)]
    return [ex.op("Not", [ex.op("Or", [ex.op("IsNaN", ins), ex.op("IsInf", ins)])])]


@exporter("not_equal")
def _not_equal(ex, node, ins):
    return [ex.op("Not", [ex.op("Equal", ins)])]


@exporter("div")
def _div(ex, node, ins):
    if not node.inputs[0].dtype.is_float:  # true division: integers divide as floats
        to = onnx_dtype(node.outputs[0].dtype)
        ins = [ex.op("Cast", [i], to=to) for i in ins]
    return [ex.op("Div", ins)]


def _sign_differs(ex, r, b, node):
    """r != 0 and sign(r) != sign(b): where a truncated quotient must step down by one."""
    zero = ex.const_like(0, node.inputs[0])
    nonzero = ex.op("Not", [ex.op("Equal", [r, zero])])
    differs = ex.op("Xor", [ex.op("Less", [r, zero]), ex.op("Less", [b, zero])])
    return ex.op("And", [nonzero, differs])


@exporter("mod")
def _mod(ex, node, ins):
    a, b = ins
    if not node.inputs[0].dtype.is_float:
        return [ex.op("Mod", [a, b], fmod=0)]  # the divisor's sign, as numpy
    r = ex.op("Mod", [a, b], fmod=1)  # the dividend's sign: move it to the divisor's
    fix = ex.op("Where", [_sign_differs(ex, r, b, node), b, ex.const_like(0, node.inputs[0])])
    return [ex.op("Add", [r, fix])]


@exporter("floordiv")
def _floordiv(ex, node, ins):
    a, b = ins
    if node.inputs[0].dtype.is_float:
        return [ex.op("Floor", [ex.op("Div", [a, b])])]
    q = ex.op("Div", [a, b])  # truncates toward zero
    step = ex.op("Cast", [_sign_differs(ex, ex.op("Mod", [a, b], fmod=1), b, node)],
                 to=onnx_dtype(node.inputs[0].dtype))
    return [ex.op("Sub", [q, step])]


@exporter("where")
def _where(ex, node, ins):
    return [ex.op("Where", ins)]


@exporter("cast")
def _cast(ex, node, ins):
    return [ex.op("Cast", ins, to=onnx_dtype(node.attrs["dtype"], node))]


@exporter("fill_like")
def _fill_like(ex, node, ins):
    return [_fill(ex, ins[0], node.attrs["value"], node.attrs["dtype"])]


@exporter("one_hot")
def _one_hot(ex, node, ins):
    a = node.attrs
    indices = node.inputs[0]
    positions = np.arange(a["depth"]).reshape((a["depth"],) + (1,) * (indices.rank - a["axis"]))
    hit = ex.op("Equal", [ex.op("Unsqueeze", [ins[0], ex.axes_input([a["axis"]])]),
                          ex.const(positions, indices.dtype.np)])
    dt = a["dtype"].np
    return [ex.op("Where", [hit, ex.const(a["on"], dt), ex.const(a["off"], dt)])]


# ---- reductions ---------------------------------------------------------------------------------
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin",
           "prod": "ReduceProd"}


def _reduce(ex, onnx_op, x, axes, keepdims):
    if ex.opset >= 18 or onnx_op == "ReduceSum":  # axes became an input (ReduceSum at 13)
        return ex.op(onnx_op, [x, ex.axes_input(axes)], keepdims=int(keepdims))
    return ex.op(onnx_op, [x], axes=list(axes), keepdims=int(keepdims))


def _reduction(onnx_op):
    def export(ex, node, ins):
        axes = tuple(node.attrs["axes"])
        if not axes:
            return [ex.op("Identity", ins)]
        return [_reduce(ex, onnx_op, ins[0], axes, node.attrs["keepdims"])]
    return export


for _op, _onnx in _REDUCE.items():
    exporter(_op)(_reduction(_onnx))


@exporter("argmax", "argmin")
def _arg(ex, node, ins):
    return [ex.op("ArgMax" if node.op == "argmax" else "ArgMin", ins, axis=node.attrs["axis"],
                  keepdims=0, select_last_index=0)]


@exporter("reduced_size")
def _reduced_size(ex, node, ins):
    x, out = node.inputs[0], node.outputs[0]
    axes = tuple(node.attrs["axes"])
    dims = [x.shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return [ex.const(float(np.prod(dims)), out.dtype.np)]
    sizes = ex.op("Gather", [ex.shape_of(ins[0]), ex.const(list(axes))], axis=0)
    return [ex.op("Cast", [_reduce(ex, "ReduceProd", sizes, (0,), False)],
                  to=onnx_dtype(out.dtype))]


@exporter("softmax")
def _softmax(ex, node, ins):
    return [ex.op("Softmax", ins, axis=node.attrs["axis"])]


@exporter("log_softmax")
def _log_softmax(ex, node, ins):
    return [ex.op("LogSoftmax", ins, axis=node.attrs["axis"])]


@exporter("sparse_softmax_cross_entropy")
def _sparse_xent(ex, node, ins):
    logits, labels = ins
    logp = ex.op("LogSoftmax", [logits], axis=-1)
    index = ex.op("Unsqueeze", [ex.op("Cast", [labels], to=7), ex.axes_input([-1])])
    picked = ex.op("GatherElements", [logp, index], axis=-1)
    return [ex.op("Neg", [ex.op("Squeeze", [picked, ex.axes_input([-1])])])]


@exporter("sum_to_like")
def _sum_to_like(ex, node, ins):
    from ..ops.broadcast import _summed_axes
    g, like = ins
    axes = _summed_axes(node)
    summed = _reduce(ex, "ReduceSum", g, axes, True) if axes else g
    return [ex.op("Reshape", [summed, ex.shape_of(like)])]


# ---- shapes and movement ------------------------------------------------------------------------
@exporter("reshape")
def _reshape(ex, node, ins):
    shape = [d if isinstance(d, int) else -1 for d in node.attrs["shape"]]
    if 0 in shape:
        if ex.opset < 14:
            raise ex.unsupported("a reshape to a shape with a zero dim needs opset 14")
        return [ex.op("Reshape", [ins[0], ex.const(shape)], allowzero=1)]
    return [ex.op("Reshape", [ins[0], ex.const(shape)])]


@exporter("reshape_like")
def _reshape_like(ex, node, ins):
    return [ex.op("Reshape", [ins[0], ex.shape_of(ins[1])],
                  allowzero=1 if ex.opset >= 14 else None)]


@exporter("transpose")
def _transpose(ex, node, ins):
    return [ex.op("Transpose", ins, perm=list(node.attrs["perm"]))]


@exporter("expand_dims")
def _expand_dims(ex, node, ins):
    return [ex.op("Unsqueeze", [ins[0], ex.axes_input([node.attrs["axis"]])])]


@exporter("squeeze")
def _squeeze(ex, node, ins):
    return [ex.op("Squeeze", [ins[0], ex.axes_input(node.attrs["axes"])])]


@exporter("broadcast_like")
def _broadcast_like(ex, node, ins):
    return [ex.op("Expand", [ins[0], ex.shape_of(ins[1])])]


@exporter("broadcast_to")
def _broadcast_to(ex, node, ins):
    dims = node.attrs["dims"]
    if all(isinstance(d, int) for d in dims):
        return [ex.op("Expand", [ins[0], ex.const(list(dims))])]
    parts = [ex.const([d]) if isinstance(d, int) else ex.shape_of(ins[d[0]], d[1])
             for d in dims]
    return [ex.op("Expand", [ins[0], ex.op("Concat", parts, axis=0)])]


@exporter("concat")
def _concat(ex, node, ins):
    return [ex.op("Concat", ins, axis=node.attrs["axis"])]


@exporter("split")
def _split(ex, node, ins):
    axis, sizes = node.attrs["axis"], node.attrs["sizes"]
    x = node.inputs[0]
    if sizes is None:  # as long as the other inputs along axis
        sizes = [o.shape[axis] for o in node.inputs[1:]]
        parts = [ex.const([s]) if isinstance(s, int) else ex.shape_of(ins[k + 1], axis)
                 for k, s in enumerate(sizes)]
        split = ex.op("Concat", parts, axis=0) if len(parts) > 1 else parts[0]
    elif -1 not in sizes or isinstance(x.shape[axis], int):
        split = ex.const([t.shape[axis] for t in node.outputs])
    else:  # the -1 piece is the rest of a run-time size
        rest = ex.op("Sub", [ex.shape_of(ins[0], axis),
                             ex.const([sum(s for s in sizes if s != -1)])])
        parts = [rest if s == -1 else ex.const([s]) for s in sizes]
        split = ex.op("Concat", parts, axis=0)
    return ex.op("Split", [ins[0], split], outputs=len(node.outputs), axis=axis)


@exporter("strided_slice")
def _strided_slice(ex, node, ins):
    starts, ends, axes, steps = [], [], [], []
    for axis, entry in enumerate(node.attrs["index"]):
        if entry is None:
            continue
        if isinstance(entry, int):
            start, stop, step = entry, (entry + 1 if entry != -1 else INT64_MAX), 1
        else:
            start, stop, step = entry
            if start is None:
                start = 0 if step > 0 else INT64_MAX
            if stop is None:
                stop = INT64_MAX if step > 0 else INT64_MIN
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    if not axes:
        return [ex.op("Identity", ins)]
    return [ex.op("Slice", [ins[0], ex.const(starts), ex.const(ends), ex.const(axes),
                            ex.const(steps)])]


@exporter("pad")
def _pad(ex, node, ins):
    paddings = node.attrs["paddings"]
    pads = [p[0] for p in paddings] + [p[1] for p in paddings]
    value = ex.const(node.attrs["value"], node.inputs[0].dtype.np)
    return [ex.op("Pad", [ins[0], ex.const(pads), value], mode="constant")]


@exporter("gather")
def _gather(ex, node, ins):
    return [ex.op("Gather", ins, axis=node.attrs["axis"])]


@exporter("gather_elements")
def _gather_elements(ex, node, ins):
    return [ex.op("GatherElements", ins, axis=node.attrs["axis"])]


def _reduction_attr(ex, reduction):
    if reduction == "none":
        return None
    need = 16 if reduction in ("add", "mul") else 18
    if ex.opset < need:
        raise ex.unsupported(f"a scatter with reduction {reduction!r} needs opset {need}")
    return reduction


@exporter("scatter_elements")
def _scatter_elements(ex, node, ins):
    return [ex.op("ScatterElements", ins, axis=node.attrs["axis"],
                  reduction=_reduction_attr(ex, node.attrs["reduction"]))]


@exporter("scatter_nd")
def _scatter_nd(ex, node, ins):
    x, indices, updates = ins
    if node.inputs[1].dtype.name != "int64":
        indices = ex.op("Cast", [indices], to=7)
    return [ex.op("ScatterND", [x, indices, updates],
                  reduction=_reduction_attr(ex, node.attrs["reduction"]))]


@exporter("cumsum")
def _cumsum(ex, node, ins):
    a = node.attrs
    return [ex.op("CumSum", [ins[0], ex.const(a["axis"])], exclusive=int(a["exclusive"]),
                  reverse=int(a["reverse"]))]


@exporter("top_k")
def _top_k(ex, node, ins):
    a = node.attrs
    return ex.op("TopK", [ins[0], ex.const([a["k"]])], outputs=2, axis=a["axis"],
                 largest=int(a["largest"]), sorted=int(a["sorted"]))


@exporter("einsum")
def _einsum(ex, node, ins):
    return [ex.op("Einsum", ins, equation=node.attrs["equation"])]


# ---- convolutions and pools: NHWC around ONNX's NCHW --------------------------------------------
TO_NCHW, TO_NHWC, HWIO_TO_OIHW = [0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 0, 1]


def _window_attrs(node, x, kernel, strides, dilations):
    """ONNX pads (explicit where the spatial dims are known, else auto_pad) for TF padding."""
    from ..ops.nn import _axis_geometry
    if node.attrs["padding"] == "VALID":
        return {"pads": [0, 0, 0, 0]}
    sizes = x.shape[1:3]
    if not all(isinstance(s, int) for s in sizes):
        return {"auto_pad": "SAME_UPPER"}  # TF's SAME: the odd cell after
    pads = [_axis_geometry(s, k, st, d, "SAME")[1]
            for s, k, st, d in zip(sizes, kernel, strides, dilations)]
    return {"pads": [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]}


@exporter("conv2d")
def _conv2d(ex, node, ins):
    x, filters = node.inputs
    a = node.attrs
    kernel = list(filters.shape[:2])
    if not all(isinstance(k, int) for k in kernel):
        raise ex.unsupported("a convolution needs filters of known height and width")
    w = ex.op("Transpose", [ins[1]], perm=HWIO_TO_OIHW)
    y = ex.op("Conv", [ex.op("Transpose", [ins[0]], perm=TO_NCHW), w], kernel_shape=kernel,
              strides=list(a["strides"]), dilations=list(a["dilations"]),
              **_window_attrs(node, x, kernel, a["strides"], a["dilations"]))
    return [ex.op("Transpose", [y], perm=TO_NHWC)]


def _pool(onnx_op, **extra):
    def export(ex, node, ins):
        a = node.attrs
        kernel, strides = list(a["ksize"]), list(a["strides"])
        y = ex.op(onnx_op, [ex.op("Transpose", ins, perm=TO_NCHW)], kernel_shape=kernel,
                  strides=strides, **_window_attrs(node, node.inputs[0], kernel, strides, (1, 1)),
                  **extra)
        return [ex.op("Transpose", [y], perm=TO_NHWC)]
    return export


exporter("max_pool2d")(_pool("MaxPool"))
exporter("avg_pool2d")(_pool("AveragePool", count_include_pad=0))


# ---- the ops that cannot be exported, with the reason -------------------------------------------
REFUSED = {
    "random_normal": "a random draw has no deterministic ONNX form (export an inference "
                     "graph: training=False)",
    "random_uniform": "a random draw has no deterministic ONNX form (export an inference "
                      "graph: training=False)",
    "assign": "assignments change session state; export the values, not the updates",
    "group": "gc.group runs its inputs for their effects; fetch values instead",
    "allreduce": "MPI collectives have no ONNX form",
    "broadcast": "MPI collectives have no ONNX form",
}


# ---- the whole graph ----------------------------------------------------------------------------
def _check_opset(opset):
    import onnx
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return min(MAX_OPSET, newest)
    if not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxError(f"export supports opsets {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    if opset > newest:
        raise OnnxError(f"opset {opset} is newer than the installed onnx "
                        f"{onnx.__version__} knows ({newest})")
    return int(opset)


def _tensors(values, what):
    if values is None:
        return None
    single = isinstance(values, Tensor)
    values = [values] if single else list(values)
    for v in values:
        if not isinstance(v, Tensor):
            raise OnnxError(f"export: {what} must be graphc tensors, got {type(v).__name__}")
    return values


def build_model(fetches, inputs=None, session=None, opset=None, graph_name="graphc",
                input_names=None, output_names=None):
    """An onnx.ModelProto computing `fetches` from `inputs` (None: every placeholder the
    fetches need, in creation order); variables take `session`'s values (gc.onnx.export
    passes the graph's default session where none is given)."""
    from onnx import helper
    opset = _check_opset(opset)
    fetches = _tensors(fetches, "fetches")
    if not fetches:
        raise OnnxError("export needs at least one tensor to fetch")
    graph = fetches[0].graph
    given = _tensors(inputs, "inputs")
    needed = nodes_needed(fetches) if given is None else _nodes_between(given, fetches)
    if given is None:
        given = [n.outputs[0] for n in needed if n.op == "placeholder"]
    if session is None:
        raise OnnxError("export needs the session that holds the variables' values")
    if session.graph is not graph:
        raise OnnxError("export: the session holds another graph than the fetches'")

    ex = Export(opset)
    graph_inputs = []
    for k, t in enumerate(given):
        name = ex.fresh(input_names[k] if input_names else t.name)
        ex.names[_key(t)] = name
        graph_inputs.append(_value_info(name, t))
    ex.used = {_key(t) for n in needed for t in n.inputs} | {_key(t) for t in fetches}
    export_nodes(ex, needed, session)

    graph_outputs, produced = [], {o for n in ex.nodes for o in n.output}
    for k, t in enumerate(fetches):
        wanted = output_names[k] if output_names else t.name
        name = ex.names[_key(t)]
        if name not in produced or name in {o.name for o in graph_outputs} or name != wanted:
            name = ex.op("Identity", [name], outputs=[ex.fresh(wanted)])[0]
        graph_outputs.append(_value_info(name, t))
    read = _names_read(ex.nodes) | {o.name for o in graph_outputs}
    initializers = [i for i in ex.initializers if i.name in read]  # e.g. a scan's unused count
    onnx_graph = helper.make_graph(ex.nodes, graph_name, graph_inputs, graph_outputs,
                                   initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="graphc",
                              ir_version=helper.find_min_ir_version_for(opsets))
    return model


def _names_read(nodes):
    """The value names ONNX nodes read, their subgraphs' nodes included."""
    read = set()
    for n in nodes:
        read.update(n.input)
        for a in n.attribute:
            if a.HasField("g"):
                read |= _names_read(a.g.node) | {o.name for o in a.g.output}
    return read


def export_nodes(ex, nodes, session=None):
    """Each of `nodes` (in order) as ONNX nodes of `ex`; tensors already named are inputs."""
    for node in nodes:
        if all(_key(t) in ex.names for t in node.outputs):
            continue  # a graph input (or a body's argument)
        ex.node = node
        if node.op in ("placeholder", "argument"):
            raise OnnxExportError("this placeholder is needed by the fetches but is not one of "
                                  "the inputs", node)
        if node.op == "variable":
            if session is None:
                raise OnnxExportError("a variable inside a loop or cond body", node)
            ex.names[_key(node.outputs[0])] = ex.initializer(
                session.get_value(node.outputs[0]).astype(node.outputs[0].dtype.np), node.name)
            continue
        if node.op == "constant":
            value = node.attrs["value"].array
            ex.names[_key(node.outputs[0])] = ex.initializer(value, node.name)
            continue
        export = EXPORTERS.get(node.op)
        if export is None:
            why = REFUSED.get(node.op, "the op has no ONNX exporter")
            raise OnnxExportError(f"cannot export op {node.op!r} to ONNX: {why}", node)
        for t in node.outputs:
            onnx_dtype(t.dtype, node)
        outs = export(ex, node, [ex.names[_key(t)] for t in node.inputs])
        for t, name in zip(node.outputs, outs):
            ex.names[_key(t)] = name
    ex.node = None


def _key(t):
    """A tensor's identity: frontend layers may hand out several Tensor objects for one node
    output."""
    return t.node.id, t.index


def _nodes_between(inputs, fetches):
    """The nodes the fetches need, stopping at the given inputs (their nodes included)."""
    stop = {id(t.node) for t in inputs}
    graph = fetches[0].graph
    seen, stack = set(), [t.node for t in fetches]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        if id(node) not in stop:
            stack.extend(t.node for t in node.inputs)
    return [graph.nodes[i] for i in sorted(seen)]


def export(path, fetches, inputs=None, session=None, opset=None, input_names=None,
           output_names=None, graph_name="graphc"):
    """Write the ONNX model of `fetches` (see build_model) to `path` atomically; returns the
    ModelProto. Graph inputs and outputs are named after the tensors unless input_names or
    output_names say otherwise."""
    from ..io.atomic import write_atomic
    model = build_model(fetches, inputs, session, opset, graph_name, input_names, output_names)
    data = model.SerializeToString()
    write_atomic(path, lambda f: f.write(data))
    return model


from . import export_control  # noqa: E402,F401,I001  (loop -> Scan/Loop, cond -> If)

__all__ = ["export", "build_model", "EXPORTERS", "REFUSED"]
