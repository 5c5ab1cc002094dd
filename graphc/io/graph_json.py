"""The graph format: a subgraph as a JSON-able dict, and back into a new Graph.

Layout (format "graphc-graph", version 1):

  {"format": "graphc-graph", "version": 1,
   "dims":    ["x.0", ...],            names of the symbolic dims, referenced by index
   "arrays":  [{"dtype": "<f4", "shape": [3, 4], "sha256": "..."}, ...],
   "nodes":   [{"op": "add", "name": "scope/add", "inputs": [[node, output], ...],
                "attrs": {name: tagged value}, "outputs": [{"dtype", "shape"}, ...],
                "source": "file.py:12"}, ...],
   "outputs": [[node, output], ...]}   the tensors the subgraph was saved for

Nodes are in topological order: an input refers to an earlier node by its index. Every attr
value carries an explicit tag, one key naming what it is:

  {"int": 3} {"float": 0.5} {"float": "nan"|"inf"|"-inf"} {"bool": true} {"none": null}
  {"str": "SAME"} {"tuple": [tagged, ...]} {"dtype": "float32"} {"dim": index into "dims"}
  {"array": index into "arrays"} {"uid": null}: a fresh identity for a stateful node
  {"body": {"name": "scan", "nodes": [...], "arguments": [node, ...], "results": [[node,
            output], ...]}}: a loop's or cond's body (graphc/ir/subgraph.py), a graph of its
            own: its nodes as above (indices local to the body, bodies nested in them), the
            indices of its argument nodes in order, and its result tensors; "dims" and
            "arrays" are the file's tables, shared by every body

An output shape lists ints and {"dim": index}. The arrays themselves (constants, variable
values) are stored by the caller; "sha256" is the FrozenArray digest of each (dtype, shape
and bytes), so any change to one is found. A variable is saved with the value it has in a
session, which becomes its initial value when loaded.

Loading builds the graph only through the op registry: each op is looked up by name, its
inference is run on the loaded input types and must give the stored output types. A loop's or
cond's bodies are checked against the node: as many arguments, of the types the node gives
them, as its inputs and counts say; argument nodes only in bodies and every one of them
listed; no placeholder, variable or stateful op inside a body. Nothing in a file is ever
imported, evaluated or unpickled.
"""
import math

from ..dump.text import nodes_for
from ..errors import CheckpointError, GraphcError
from ..ir import dtypes
from ..ir.dtypes import DType
from ..ir.graph import FrozenArray, Graph, new_uid, nodes_needed
from ..ir.subgraph import Body
from ..ir.types import Dim, TensorType
from ..ops.registry import get_spec

FORMAT = "graphc-graph"
VERSION = 1
MAX_BODY_DEPTH = 32  # bodies nested deeper than this in a file are refused


# ---- saving -----------------------------------------------------------------------------------
class _Encoder:
    def __init__(self, variable_value):
        self.dims = {}  # Dim -> index
        self.arrays = {}  # digest -> (index, FrozenArray)
        self.variable_value = variable_value

    def dim(self, d):
        return {"dim": self.dims.setdefault(d, len(self.dims))}

    def array(self, frozen):
        index, _ = self.arrays.setdefault(frozen.digest, (len(self.arrays), frozen))
        return {"array": index}

    def value(self, v, node, key):
        encode = _ENCODERS.get(type(v))
        if encode is None:
            raise CheckpointError(f"attr '{key}' is a {type(v).__name__} ({v!r}), which the "
                                  "graph format does not store", node)
        return encode(self, v, node, key)

    def shape(self, shape):
        return [d if isinstance(d, int) else self.dim(d) for d in shape]

    def nodes(self, nodes):
        """The records of `nodes` (topological order) and their indices by node id."""
        index_of = {node.id: i for i, node in enumerate(nodes)}
        return [self.node(node, index_of) for node in nodes], index_of

    def body(self, body, node, key):
        nodes = nodes_needed(list(body.results) + list(body.arguments))
        records, index_of = self.nodes(nodes)
        return {"body": {"name": body.name, "nodes": records,
                         "arguments": [index_of[a.node.id] for a in body.arguments],
                         "results": [[index_of[t.node.id], t.index] for t in body.results]}}

    def node(self, node, index_of):
        attrs = dict(node.attrs)
        if node.op == "variable":
            attrs["init"] = FrozenArray(self.variable_value(node.outputs[0]))
        fresh = node.spec.stateful or node.op == "argument"  # an identity, not a value
        return {"op": node.op, "name": node.name,
                "inputs": [[index_of[t.node.id], t.index] for t in node.inputs],
                "attrs": {k: ({"uid": None} if k == "uid" and fresh
                              else self.value(v, node, k)) for k, v in attrs.items()},
                "outputs": [{"dtype": t.dtype.name, "shape": self.shape(t.shape)}
                            for t in node.outputs],
                "source": node.source}


_ENCODERS = {
    int: lambda enc, v, node, key: {"int": v},
    float: lambda enc, v, node, key: {"float": v if math.isfinite(v) else repr(v)},
    bool: lambda enc, v, node, key: {"bool": v},
    type(None): lambda enc, v, node, key: {"none": None},
    str: lambda enc, v, node, key: {"str": v},
    tuple: lambda enc, v, node, key: {"tuple": [enc.value(x, node, key) for x in v]},
    DType: lambda enc, v, node, key: {"dtype": v.name},
    Dim: lambda enc, v, node, key: enc.dim(v),
    FrozenArray: lambda enc, v, node, key: enc.array(v),
    Body: lambda enc, v, node, key: enc.body(v, node, key),
}


def encode(tensors, variable_value):
    """(doc, arrays): the subgraph behind `tensors` and the arrays its "arrays" table lists.

    `variable_value(variable)` gives the value each variable is saved with.
    """
    nodes = nodes_for(tensors[0].graph, tensors)
    enc = _Encoder(variable_value)
    encoded, index_of = enc.nodes(nodes)
    arrays = [frozen.array for _, frozen in enc.arrays.values()]
    return {"format": FORMAT, "version": VERSION,
            "dims": [d.name for d in enc.dims],
            "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape), "sha256": f.digest}
                       for a, (_, f) in zip(arrays, enc.arrays.values())],
            "nodes": encoded,
            "outputs": [[index_of[t.node.id], t.index] for t in tensors]}, arrays


# ---- loading ----------------------------------------------------------------------------------
def _expect(value, kind, what):
    """`value` if it is of JSON type `kind` (bool is not an int here), else CheckpointError."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        article = "an" if names[0] in "aeiou" else "a"
        raise CheckpointError(f"{what} should be {article} {names}, got "
                              f"{type(value).__name__} {_short(value)}")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _index(value, size, what):
    index = _expect(value, int, what)
    if not 0 <= index < size:
        raise CheckpointError(f"{what} is {index}, outside 0..{size - 1}" if size
                              else f"{what} is {index}, but there is nothing to refer to")
    return index


def _float(dec, v):
    if isinstance(v, str):
        if v not in ("nan", "inf", "-inf"):
            raise CheckpointError(f"float value {v!r} should be a number, 'nan', 'inf' or "
                                  "'-inf'")
        return float(v)
    return float(_expect(v, (int, float), "a float value"))


class _Decoder:
    def __init__(self, doc, read_array):
        self.dim_names = [_expect(n, str, "a dim name")
                          for n in _expect(doc.get("dims", []), list, "'dims'")]
        self.dims = {}  # index -> Dim, bound when first seen
        self.array_entries = _expect(doc.get("arrays", []), list, "'arrays'")
        self.read_array = read_array
        self.arrays = {}
        self.graph = Graph()
        self.nodes = []
        self.where = ""  # "body 'scan' of node 4: " while decoding that body
        self.depth = 0

    # attr values, one decoder per tag
    def value(self, tagged):
        _expect(tagged, dict, "an attr value")
        if len(tagged) != 1:
            raise CheckpointError(f"an attr value should have one tag, got {_short(tagged)}")
        (tag, v), = tagged.items()
        decode = _DECODERS.get(tag)
        if decode is None:
            raise CheckpointError(f"unknown attr tag {tag!r}; known tags are "
                                  f"{', '.join(_DECODERS)}")
        return decode(self, v)

    def dim(self, v):
        index = _index(v, len(self.dim_names), "a dim index")
        if index not in self.dims:
            self.dims[index] = Dim(self.dim_names[index])
        return self.dims[index]

    def array(self, v):
        index = _index(v, len(self.array_entries), "an array index")
        if index not in self.arrays:
            self.arrays[index] = self._load_array(index)
        return self.arrays[index]

    def _load_array(self, index):
        entry = _expect(self.array_entries[index], dict, f"array entry {index}")
        arr = self.read_array(index)
        if arr.dtype.kind not in "biuf":
            raise CheckpointError(f"array {index} holds {arr.dtype} data; only numbers and "
                                  "booleans are stored")
        frozen = FrozenArray(arr)
        if (entry.get("dtype") != arr.dtype.str or entry.get("shape") != list(arr.shape)
                or entry.get("sha256") != frozen.digest):
            raise CheckpointError(f"array {index} is corrupt: its dtype, shape or sha256 does "
                                  "not match the graph's table")
        return frozen

    def body(self, raw):
        """A Body: a graph of its own, decoded with the file's dims and arrays tables."""
        _expect(raw, dict, f"{self.where}a body")
        name = _expect(raw.get("name"), str, f"{self.where}a body's 'name'")
        if self.depth >= MAX_BODY_DEPTH:
            raise CheckpointError(f"{self.where}bodies are nested more than {MAX_BODY_DEPTH} "
                                  "deep")
        saved = self.graph, self.nodes, self.where
        self.graph, self.nodes = Graph(), []
        self.where = f"{saved[2]}body {name!r}: "
        self.depth += 1
        try:
            for index, node in enumerate(_expect(raw.get("nodes"), list,
                                                 f"{self.where}'nodes'")):
                self.node(index, node)
            args = []
            for k, ref in enumerate(_expect(raw.get("arguments"), list,
                                            f"{self.where}'arguments'")):
                node = self.nodes[_index(ref, len(self.nodes), f"{self.where}argument {k}")]
                if node.op != "argument" or any(a.node is node for a in args):
                    raise CheckpointError(f"{self.where}argument {k} is node {ref} "
                                          f"({node.op}), not an argument node of its own")
                args.append(node.outputs[0])
            if sum(n.op == "argument" for n in self.nodes) != len(args):
                raise CheckpointError(f"{self.where}an argument node is not in 'arguments'")
            results = [self.input(ref, f"{self.where}result {k}")
                       for k, ref in enumerate(_expect(raw.get("results"), list,
                                                       f"{self.where}'results'"))]
            return Body(self.graph, args, results, name)
        finally:
            self.graph, self.nodes, self.where = saved
            self.depth -= 1

    # nodes
    def node(self, index, raw):
        what = f"{self.where}node {index}"
        _expect(raw, dict, what)
        op = _expect(raw.get("op"), str, f"{what}: 'op'")
        name = _expect(raw.get("name"), str, f"{what}: 'name'")
        what = f"{self.where}node {index} ('{name}', op {op!r})"
        try:
            spec = get_spec(op)
        except GraphcError:
            raise CheckpointError(f"{what}: unknown op {op!r}") from None
        if self.depth and (spec.stateful or op in ("placeholder", "variable")):
            raise CheckpointError(f"{what}: a {op} cannot be inside a loop or cond body")
        if not self.depth and op == "argument":
            raise CheckpointError(f"{what}: an argument belongs to a loop or cond body, not "
                                  "to the graph")
        inputs = [self.input(ref, f"{what}: input {k}")
                  for k, ref in enumerate(_expect(raw.get("inputs"), list, f"{what}: 'inputs'"))]
        attrs = {_expect(k, str, f"{what}: an attr name"): self.value(v)
                 for k, v in _expect(raw.get("attrs"), dict, f"{what}: 'attrs'").items()}
        source = raw.get("source")
        if source is not None:
            _expect(source, str, f"{what}: 'source'")
        if any(isinstance(v, Body) for v in attrs.values()) or op in _BODY_CHECKS:
            check = _BODY_CHECKS.get(op)
            if check is None:
                raise CheckpointError(f"{what}: a {op} node has no bodies")
            check(inputs, attrs, what)
        out_types = self.check_types(spec, inputs, attrs, raw.get("outputs"), what)
        node = self.graph.add_node(spec, inputs, attrs, out_types, name, source)
        if node.op == "variable":
            _check_variable(node, what)
            self.graph.variables.append(node.outputs[0])
        self.nodes.append(node)

    def input(self, ref, what):
        _expect(ref, list, what)
        if len(ref) != 2:
            raise CheckpointError(f"{what} should be [node index, output index], got "
                                  f"{_short(ref)}")
        node = self.nodes[_index(ref[0], len(self.nodes), f"{what}: the node index (inputs "
                                                          "refer to earlier nodes only)")]
        return node.outputs[_index(ref[1], len(node.outputs), f"{what}: the output index")]

    def check_types(self, spec, inputs, attrs, stored, what):
        """The op's inferred output types, which must be the stored ones."""
        try:
            out = spec.infer(*[t.type for t in inputs], **attrs)
            inferred = (out,) if isinstance(out, TensorType) else tuple(out)
        except GraphcError as err:
            raise CheckpointError(f"{what}: the op refuses its stored inputs and attrs: "
                                  f"{err.detail}") from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
            # a tampered attr of the wrong kind fails inside the op's inference
            raise CheckpointError(f"{what}: the stored inputs or attrs do not fit the op: "
                                  f"{err}") from None
        stored = _expect(stored, list, f"{what}: 'outputs'")
        if len(stored) != len(inferred):
            raise CheckpointError(f"{what}: {len(stored)} stored outputs, but the op gives "
                                  f"{len(inferred)}")
        for k, (raw, got) in enumerate(zip(stored, inferred)):
            self.match_type(raw, got, f"{what}: output {k}")
        return inferred

    def match_type(self, raw, got, what):
        _expect(raw, dict, what)
        shape = _expect(raw.get("shape"), list, f"{what}: 'shape'")
        if raw.get("dtype") != got.dtype.name or len(shape) != len(got.shape):
            raise CheckpointError(f"{what}: stored type {raw.get('dtype')}{shape} but the op "
                                  f"infers {got}")
        for stored, dim in zip(shape, got.shape):
            if not self.same_dim(stored, dim):
                raise CheckpointError(f"{what}: stored shape {shape} but the op infers "
                                      f"{list(got.shape)}")

    def same_dim(self, stored, dim):
        if not isinstance(stored, dict):
            return _expect(stored, int, "a dim") == dim
        index = _index(stored.get("dim"), len(self.dim_names), "a dim index")
        if index not in self.dims and isinstance(dim, Dim) \
                and all(d is not dim for d in self.dims.values()):
            # a symbol the op's inference has just made: it is the saved one, name included
            dim.name = self.dim_names[index]
            self.dims[index] = dim
        return self.dims.get(index) is dim


_DECODERS = {
    "int": lambda dec, v: _expect(v, int, "an int value"),
    "float": _float,
    "bool": lambda dec, v: _expect(v, bool, "a bool value"),
    "none": lambda dec, v: None,
    "str": lambda dec, v: _expect(v, str, "a str value"),
    "tuple": lambda dec, v: tuple(dec.value(x) for x in _expect(v, list, "a tuple value")),
    "dtype": lambda dec, v: _dtype(v),
    "dim": _Decoder.dim,
    "array": _Decoder.array,
    "uid": lambda dec, v: new_uid(),
    "body": lambda dec, v: dec.body(v),
}


def _dtype(name):
    dtype = dtypes.BY_NAME.get(_expect(name, str, "a dtype"))
    if dtype is None:
        raise CheckpointError(f"unknown dtype {name!r}; expected one of "
                              f"{', '.join(d.name for d in dtypes.ALL)}")
    return dtype


def _attr(attrs, key, kinds, what):
    """attrs[key], which must be an instance of `kinds`."""
    if key not in attrs:
        raise CheckpointError(f"{what}: attr {key!r} is missing")
    value = attrs[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in (
            kinds if isinstance(kinds, tuple) else (kinds,))):
        raise CheckpointError(f"{what}: attr {key!r} is {_short(value)}, not of the kind a "
                              "loop or cond stores there")
    return value


def _check_arguments(body, types, what, key):
    """The body takes exactly arguments of `types`, in order."""
    got = [a.type for a in body.arguments]
    if len(got) != len(types):
        raise CheckpointError(f"{what}: its {key} takes {len(got)} arguments, but the node "
                              f"gives it {len(types)}")
    for k, (a, t) in enumerate(zip(got, types)):
        if a != t:
            raise CheckpointError(f"{what}: argument {k} of its {key} is {a}, but the node "
                                  f"gives it {t}")


def _check_loop(inputs, attrs, what):
    body = _attr(attrs, "body", Body, what)
    cond = _attr(attrs, "cond", (Body, type(None)), what)
    counts = _attr(attrs, "counts", tuple, what)
    if len(counts) != 3 or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                   for c in counts):
        raise CheckpointError(f"{what}: attr 'counts' should be three counts, got "
                              f"{_short(counts)}")
    for key in ("reverse", "bounded", "dynamic"):
        _attr(attrs, key, bool, what)
    _attr(attrs, "n_static", (int, type(None)), what)
    _attr(attrs, "length", Dim, what)
    _attr(attrs, "what", str, what)
    n_seq, n_carry, n_nonseq = counts
    if not inputs or 1 + sum(counts) > len(inputs):
        raise CheckpointError(f"{what}: {len(inputs)} inputs, fewer than n_steps and the "
                              f"{sum(counts)} its counts say")
    seqs = inputs[1:1 + n_seq]
    if any(s.rank == 0 for s in seqs):
        raise CheckpointError(f"{what}: a sequence is a scalar")
    rest = [t.type for t in inputs[1 + n_seq:]]
    _check_arguments(body, [TensorType(s.dtype, s.shape[1:]) for s in seqs]
                     + rest[:n_carry + n_nonseq], what, "body")
    if len(body.results) < n_carry:
        raise CheckpointError(f"{what}: its body gives {len(body.results)} results for "
                              f"{n_carry} carries")
    extras = rest[n_carry + n_nonseq:]
    if cond is None:
        if extras:
            raise CheckpointError(f"{what}: {len(extras)} inputs more than its counts say")
    else:
        _check_arguments(cond, rest[:n_carry] + extras, what, "cond")
        if len(cond.results) != 1:
            raise CheckpointError(f"{what}: its cond gives {len(cond.results)} results, not 1")


def _check_cond(inputs, attrs, what):
    true_body = _attr(attrs, "true_body", Body, what)
    false_body = _attr(attrs, "false_body", Body, what)
    n_true = _attr(attrs, "n_true", int, what)
    if not inputs or not 0 <= n_true <= len(inputs) - 1:
        raise CheckpointError(f"{what}: n_true is {n_true} for {len(inputs)} inputs")
    types = [t.type for t in inputs[1:]]
    _check_arguments(true_body, types[:n_true], what, "true_body")
    _check_arguments(false_body, types[n_true:], what, "false_body")
    if len(true_body.results) != len(false_body.results):
        raise CheckpointError(f"{what}: its branches give {len(true_body.results)} and "
                              f"{len(false_body.results)} results")


# the ops whose attrs hold bodies, and how a loaded node of each is checked against them
_BODY_CHECKS = {"loop": _check_loop, "cond": _check_cond}


def _check_variable(node, what):
    init = node.attrs.get("init")
    var = node.outputs[0]
    if (not isinstance(init, FrozenArray) or init.array.shape != var.shape
            or init.array.dtype != var.dtype.np):
        raise CheckpointError(f"{what}: the saved value does not fit the variable's type "
                              f"{var.type}")


def decode(doc, read_array):
    """(graph, output tensors) rebuilt from `doc`; `read_array(i)` gives the i-th array.

    Raises CheckpointError for anything that is not a well-formed graph of known ops.
    """
    _expect(doc, dict, "the graph")
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CheckpointError(f"not a graph of format {FORMAT!r} version {VERSION} (format "
                              f"{_short(doc.get('format'))}, version {_short(doc.get('version'))})")
    dec = _Decoder(doc, read_array)
    for index, raw in enumerate(_expect(doc.get("nodes"), list, "'nodes'")):
        dec.node(index, raw)
    outputs = [dec.input(ref, f"output {k}")
               for k, ref in enumerate(_expect(doc.get("outputs"), list, "'outputs'"))]
    return dec.graph, outputs
