"""Control flow: loops (scan, while_loop, map_fn, foldl) and conditionals (cond).

Two ops serve them all, each declared once:

- "loop": inputs [n_steps (int64 scalar), sequences..., initial carries..., non-sequences...,
  the cond body's captures...]; attrs `body` (a Body taking [the t-th slice of each sequence,
  the carries, the non-sequences] and giving [the new carries, then the other per-step
  values]), `cond` (None, or a Body taking [the carries, its captures] and giving a bool
  scalar, evaluated before each step: a while loop), `counts` (sequences, carries,
  non-sequences), `reverse` (iterate t = T-1 .. 0, slicing the sequences at t and storing the
  stacked outputs at t: the backward loop), `bounded` (whether n_steps limits the count; a
  negative n_steps is refused), `n_static` (the exact step count when known at build time),
  `dynamic` (the count depends on values: a tensor n_steps or a cond), `length` (the Dim of
  the stacked axis when it is not static) and `what` (the user's function, for messages).
  Outputs: the stacked per-step value of every body result (carries included: Theano's scan
  output of a fed-back output is the stack of its new values), the final carries, and the
  iteration count (int64).
- "cond": inputs [pred, the true branch's captures..., the false branch's...]; attrs the two
  Bodies; outputs the taken branch's results. Only the taken branch runs.

Both are "host" ops: their reference interprets the body with the ops' references
(`interpret`, the default body runner; a device may install another around its runs through
`using_body_runner`). Their gradients are loops and conds again: the backward of a loop is a
reverse loop whose body is gc.grad of the forward body, so gradients of gradients work.
"""
import contextlib
import threading

import numpy as np

from ..errors import DTypeError, GraphcError, IndexError_, ShapeError
from ..ir import dtypes
from ..ir.graph import Tensor, get_default_graph
from ..ir.source import source_of, user_source
from ..ir.subgraph import BodyBuilder, active_builder
from ..ir.types import Dim, TensorType, format_type
from .registry import NOT_DIFFERENTIABLE, PendingNode, apply, call_reference, register
from .sources import as_tensor, constant


def _runtime_only(*args, **attrs):
    raise RuntimeError("an argument of a body: given by the op that runs the body")


register("argument",
         infer=lambda *, uid, dtype, shape: TensorType(dtype, shape),
         ref=_runtime_only, grad=NOT_DIFFERENTIABLE, kind="source",
         doc="A value a loop or cond gives its body each time it runs it.")


# ---- running bodies -----------------------------------------------------------------------
def _concrete_types(node, arrays):
    types = [TensorType(t.dtype, a.shape) for t, a in zip(node.inputs, arrays)]
    try:
        out = node.spec.infer(*types, **node.attrs)
    except GraphcError as err:
        raise type(err)(f"at run time: {err.detail}", node) from None
    return (out,) if isinstance(out, TensorType) else tuple(out)


def interpret(body, args):
    """The body's results for argument arrays `args`: its nodes in topological order, each
    through its numpy reference (the default body runner)."""
    values = {(t.node.id, t.index): a for t, a in zip(body.arguments, args)}
    for node in body.nodes:
        if (node.id, 0) in values:
            continue
        inputs = [values[(t.node.id, t.index)] for t in node.inputs]
        types = _concrete_types(node, inputs)
        try:
            out = call_reference(node, inputs)
        except GraphcError:
            raise
        except (ValueError, IndexError, TypeError) as err:
            raise ShapeError(f"at run time: {err}", node) from None
        outs = out if isinstance(out, tuple) else (out,)
        for i, (o, t) in enumerate(zip(outs, types)):
            o = dtypes.to_storage(o, t.dtype)
            if t.is_static and o.shape != t.shape:
                o = o.reshape(t.shape)
            values[(node.id, i)] = o
    return [values[(t.node.id, t.index)] for t in body.results]


_runner = threading.local()


def current_body_runner():
    """What runs a body now: `interpret` unless a device installed its own."""
    return getattr(_runner, "fn", None) or interpret


@contextlib.contextmanager
def using_body_runner(fn):
    """Bodies run through fn(body, arrays) -> arrays inside (a device's compiled bodies)."""
    previous = getattr(_runner, "fn", None)
    _runner.fn = fn
    try:
        yield
    finally:
        _runner.fn = previous


# ---- the loop op ----------------------------------------------------------------------------
def _split(values, counts):
    n_seq, n_carry, n_nonseq = counts
    a, b, c = n_seq, n_seq + n_carry, n_seq + n_carry + n_nonseq
    return list(values[:a]), list(values[a:b]), list(values[b:c]), list(values[c:])


def _compatible(a, b):
    """Two types a carry may have at once: one dtype, one rank, equal known dims (symbolic
    dims are compared when they are known, at run time)."""
    return (a.dtype is b.dtype and a.rank == b.rank
            and all(x == y for x, y in zip(a.shape, b.shape)
                    if isinstance(x, int) and isinstance(y, int)))


def _step_types(seqs, carries, nonseqs):
    for i, s in enumerate(seqs):
        if s.rank == 0:
            raise ShapeError(f"sequence {i} is a scalar; a sequence is sliced along axis 0")
    return [TensorType(s.dtype, s.shape[1:]) for s in seqs] + list(carries) + list(nonseqs)


def _loop_infer(n_steps, *types, body, cond, counts, reverse, bounded, n_static, dynamic,
                length, what):
    if n_steps.shape != () or not n_steps.dtype.is_integer:
        raise DTypeError(f"{what}: n_steps must be an integer scalar, got {format_type(n_steps)}")
    seqs, carries, nonseqs, extras = _split(types, counts)
    results = body.infer(_step_types(seqs, carries, nonseqs))
    for j, (init, new) in enumerate(zip(carries, results)):
        if not _compatible(init, new):
            raise (ShapeError if init.dtype is new.dtype else DTypeError)(
                f"{what}: the loop changes the {_carry_name(what, j)} from "
                f"{format_type(init)} to {format_type(new)}; a value carried from one step to "
                "the next must keep its dtype and shape")
    if cond is not None:
        (c,) = cond.infer(list(carries) + list(extras))
        if c.shape != () or not c.dtype.is_bool:
            raise DTypeError(f"{what}: the condition must give a bool scalar, got "
                             f"{format_type(c)}")
    lens = [s.shape[0] for s in seqs]
    if n_static is not None:
        steps = n_static
        for i, n in enumerate(lens):
            if isinstance(n, int) and n < n_static:
                raise ShapeError(f"{what}: n_steps is {n_static} but sequence {i} has only "
                                 f"{n} elements")
    elif lens and not dynamic:
        if all(isinstance(n, int) for n in lens):
            steps = min(lens)
        elif all(n is lens[0] for n in lens):
            steps = lens[0]
        else:
            steps = length
    else:
        steps = length
    return ([TensorType(r.dtype, (steps,) + tuple(r.shape)) for r in results]
            + list(carries) + [TensorType(dtypes.int64, ())])


def _carry_name(what, j):
    return {"while_loop": f"loop var {j}", "foldl": "accumulator"}.get(
        what, f"fed-back output {j}")


def step_count(n_steps, seq_lengths, bounded, reverse, what):
    """A loop's number of steps (None: until its condition fails) from its n_steps value and
    its sequences' lengths; the errors of a bad count (also for devices running loops)."""
    n = int(n_steps)
    if bounded and n < 0:
        raise GraphcError(f"{what}: n_steps is {n}; it must be >= 0")
    total = None
    if seq_lengths:
        total = min(seq_lengths)
        if bounded:
            if n > total:
                raise IndexError_(f"{what}: n_steps is {n} but the sequences have only {total} "
                                  "elements")
            total = n
    elif bounded:
        total = n
    if reverse and total is None:
        raise GraphcError(f"{what}: a reverse loop needs a step count")
    return total


def _loop_ref(n_steps, *arrays, body, cond, counts, reverse, bounded, n_static, dynamic,
              length, what):
    seqs, carries, nonseqs, extras = _split(arrays, counts)
    total = step_count(n_steps, [len(s) for s in seqs], bounded, reverse, what)
    run = current_body_runner()
    n_results = len(body.results)
    stacks = [[] for _ in range(n_results)]
    t = 0
    while total is None or t < total:
        if cond is not None and not bool(np.asarray(run(cond, carries + extras)[0])):
            break
        i = total - 1 - t if reverse else t
        results = run(body, [s[i] for s in seqs] + carries + nonseqs)
        carries = list(results[:len(carries)])
        for stack, r in zip(stacks, results):
            stack.append(r)
        t += 1
    if reverse:
        for stack in stacks:
            stack.reverse()
    out = []
    step_types = None
    for k, stack in enumerate(stacks):
        if stack:
            out.append(np.stack(stack))
        else:
            if step_types is None:
                step_types = body.infer(
                    [TensorType(a.dtype, arr.shape[1:]) for a, arr in
                     zip(body.arguments[:len(seqs)], seqs)]
                    + [TensorType(a.dtype, np.shape(arr)) for a, arr in
                       zip(body.arguments[len(seqs):], carries + nonseqs)])
            r = step_types[k]
            out.append(np.empty((0,) + tuple(d if isinstance(d, int) else 0 for d in r.shape),
                                r.dtype.np))
    return tuple(out) + tuple(carries) + (np.array(t, np.int64),)


def _loop_grad(node, *grads):
    with node.graph.as_default():
        return _build_loop_grad(node, grads)


register("loop", infer=_loop_infer, ref=_loop_ref, grad=_loop_grad, kind="host",
         value_shaped=True,
         doc="a loop over a body (scan, map_fn, foldl, while_loop): stacked per-step values, "
             "final carries, step count")


# ---- rows of a sequence gradient --------------------------------------------------------------
def _resize_rows_infer(x, like):
    if x.rank == 0 or like.rank == 0:
        raise ShapeError("resize_rows works on tensors of rank >= 1")
    return TensorType(x.dtype, (like.shape[0],) + tuple(x.shape[1:]))


def _resize_rows_ref(x, like):
    out = np.zeros((like.shape[0],) + x.shape[1:], x.dtype)
    n = min(len(x), len(like))
    out[:n] = x[:n]
    return out


register("resize_rows", infer=_resize_rows_infer, ref=_resize_rows_ref,
         grad=lambda node, g: [resize_rows(g, node.inputs[0]), None], kind="host",
         shape_only=(1,),
         doc="x cut or padded with zero rows (axis 0) to like's number of rows")


def resize_rows(x, like):
    if x.shape[:1] == like.shape[:1]:
        return x
    return apply("resize_rows", [x, like])


# ---- gradients of loops -----------------------------------------------------------------------
def _inline(body, args):
    """The body's results computed in the default graph from tensors `args`."""
    mapping = {(t.node.id, t.index): a for t, a in zip(body.arguments, args)}
    for node in body.nodes:
        if (node.id, 0) in mapping:
            continue
        inputs = [mapping[(t.node.id, t.index)] for t in node.inputs]
        with source_of(node.source):
            out = apply(node.op, inputs, **node.attrs)
        outs = out if isinstance(out, tuple) else (out,)
        for i, o in enumerate(outs):
            mapping[(node.id, i)] = o
    return [mapping[(t.node.id, t.index)] for t in body.results]


def _grads_in_body(ys, grad_ys, xs):
    """d(sum ys * grad_ys)/d(xs) inside a body being built: zeros where unconnected."""
    from ..autodiff import grad
    from .elementwise import zeros_like
    pairs = [(y, g) for y, g in zip(ys, grad_ys) if y.dtype.is_float and g is not None]
    if not pairs or not xs:
        return [zeros_like(x) for x in xs]
    return grad([y for y, _ in pairs], list(xs), [g for _, g in pairs], unconnected="zero")


def _build_loop_grad(node, grads):
    from .elementwise import add, zeros_like
    from .shape import concat, expand_dims, getitem
    attrs = node.attrs
    body, counts = attrs["body"], attrs["counts"]
    n_seq, n_carry, n_nonseq = counts
    seqs, inits, nonseqs, extras = _split(list(node.inputs[1:]), counts)
    n_res = len(body.results)
    stacked = node.outputs[:n_res]
    g_stacked, g_final = grads[:n_res], grads[n_res:n_res + n_carry]
    count = node.outputs[-1]
    float_res = [i for i in range(n_res) if body.results[i].dtype.is_float]
    float_carry = [j for j in range(n_carry) if inits[j].dtype.is_float]
    float_seq = [i for i in range(n_seq) if seqs[i].dtype.is_float]
    float_ns = [k for k in range(n_nonseq) if nonseqs[k].dtype.is_float]
    if not float_res or not (float_carry or float_seq or float_ns):
        return [None] * len(node.inputs)
    # the value of each carry before each step: the initial value, then the stack but its last
    # (a reverse loop, which stores step t's value at t: the stack but its first, then the
    # initial value)
    reverse = attrs["reverse"]
    before = [concat([getitem(stacked[j], slice(1, None)), expand_dims(inits[j], 0)], 0)
              if reverse else
              concat([expand_dims(inits[j], 0), getitem(stacked[j], slice(None, -1))], 0)
              for j in range(n_carry)]
    g_res = [g_stacked[i] if g_stacked[i] is not None else zeros_like(stacked[i])
             for i in float_res]
    b_seqs = list(seqs) + before + g_res
    b_inits = ([g_final[j] if g_final[j] is not None else zeros_like(inits[j])
                for j in float_carry] + [zeros_like(nonseqs[k]) for k in float_ns])
    with BodyBuilder(f"{body.name}_grad") as b:
        xs = [b.argument(TensorType(s.dtype, s.shape[1:]), f"x{i}") for i, s in enumerate(seqs)]
        hs = [b.argument(TensorType(h.dtype, h.shape[1:]), f"h{j}") for j, h in enumerate(before)]
        gys = [b.argument(TensorType(g.dtype, g.shape[1:]), f"g{i}") for i, g in zip(float_res,
                                                                                     g_res)]
        ghs = [b.argument(inits[j].type, f"gh{j}") for j in float_carry]
        accs = [b.argument(nonseqs[k].type, f"acc{k}") for k in float_ns]
        cs = [b.argument(c.type, f"c{k}") for k, c in enumerate(nonseqs)]
        results = _inline(body, xs + hs + cs)
        gh_of = dict(zip(float_carry, ghs))
        ys, grad_ys = [], []
        for i, gy in zip(float_res, gys):
            ys.append(results[i])
            grad_ys.append(add(gy, gh_of[i]) if i in gh_of else gy)
        wrt = ([hs[j] for j in float_carry] + [cs[k] for k in float_ns]
               + [xs[i] for i in float_seq])
        d = _grads_in_body(ys, grad_ys, wrt)
        d_h = d[:len(float_carry)]
        d_c = d[len(float_carry):len(float_carry) + len(float_ns)]
        d_x = d[len(float_carry) + len(float_ns):]
        new_accs = [add(acc, g) for acc, g in zip(accs, d_c)]
        back = b.finish(d_h + new_accs + d_x)
    # the backward runs as many steps as the forward did, its stacked axis the forward's
    steps = stacked[0].shape[0]
    out = _loop_node(count, b_seqs, b_inits, list(nonseqs) + b.captured, back, None,
                     reverse=not reverse, bounded=True, n_static=attrs["n_static"],
                     dynamic=attrs["dynamic"], length=steps if isinstance(steps, Dim) else None,
                     what=attrs["what"] + " gradient")
    nb = len(back.results)
    finals = out[nb:nb + len(b_inits)]
    stacked_dx = out[len(float_carry) + len(float_ns):nb]
    result = [None] * len(node.inputs)
    for i, g in zip(float_seq, stacked_dx):
        result[1 + i] = resize_rows(g, seqs[i])
    for j, g in zip(float_carry, finals[:len(float_carry)]):
        result[1 + n_seq + j] = g
    for k, g in zip(float_ns, finals[len(float_carry):]):
        result[1 + n_seq + n_carry + k] = g
    return result


def _loop_node(n_steps, seqs, inits, nonseqs, body, cond, reverse=False, bounded=False,
               n_static=None, dynamic=False, length=None, what="scan", cond_captures=()):
    return apply("loop", [n_steps] + list(seqs) + list(inits) + list(nonseqs)
                 + list(cond_captures),
                 body=body, cond=cond, counts=(len(seqs), len(inits), len(nonseqs)),
                 reverse=reverse, bounded=bounded, n_static=n_static, dynamic=dynamic,
                 length=length if length is not None else Dim(f"{what}.steps"), what=what)


# ---- cond -------------------------------------------------------------------------------------
def _cond_infer(pred, *types, true_body, false_body, n_true):
    if pred.shape != () or not pred.dtype.is_bool:
        raise DTypeError(f"cond: pred must be a bool scalar, got {format_type(pred)}")
    tt = true_body.infer(types[:n_true])
    ft = false_body.infer(types[n_true:])
    if len(tt) != len(ft):
        raise ShapeError(f"cond: true_fn gives {len(tt)} values but false_fn gives {len(ft)}")
    out = []
    for i, (a, b) in enumerate(zip(tt, ft)):
        if a.dtype is not b.dtype:
            raise DTypeError(f"cond: value {i} is {format_type(a)} from true_fn but "
                             f"{format_type(b)} from false_fn; both branches must give the "
                             "same dtypes and shapes")
        if not _compatible(a, b):
            raise ShapeError(f"cond: value {i} is {format_type(a)} from true_fn but "
                             f"{format_type(b)} from false_fn; both branches must give the "
                             "same dtypes and shapes")
        out.append(TensorType(a.dtype, tuple(x if isinstance(x, int) or not isinstance(y, int)
                                             else y for x, y in zip(a.shape, b.shape))))
    return out


def _cond_ref(pred, *arrays, true_body, false_body, n_true):
    run = current_body_runner()
    if bool(pred):
        return tuple(run(true_body, list(arrays[:n_true])))
    return tuple(run(false_body, list(arrays[n_true:])))


def _cond_grad(node, *grads):
    with node.graph.as_default():
        return _build_cond_grad(node, grads)


def _build_cond_grad(node, grads):
    from .elementwise import zeros_like
    tb, fb, n_true = node.attrs["true_body"], node.attrs["false_body"], node.attrs["n_true"]
    caps = list(node.inputs[1:])
    float_caps = [i for i, c in enumerate(caps) if c.dtype.is_float]
    if not float_caps:
        return [None] * len(node.inputs)
    gs = [g if g is not None or not o.dtype.is_float else zeros_like(o)
          for g, o in zip(grads, node.outputs)]

    def branch(body, lo, hi):
        def fn():
            b = active_builder()
            args = [b.capture(c) for c in caps[lo:hi]]
            results = _inline(body, args)
            mine = [i for i in float_caps if lo <= i < hi]
            d = _grads_in_body(results, [None if g is None else b.capture(g) for g in gs],
                               [args[i - lo] for i in mine])
            by = dict(zip(mine, d))
            return [by[i] if i in by else zeros_like(b.capture(caps[i])) for i in float_caps]
        return fn
    out, _, _ = _cond_outputs(node.inputs[0], branch(tb, 0, n_true),
                              branch(fb, n_true, len(caps)))
    result = [None] * len(node.inputs)
    for i, g in zip(float_caps, out):
        result[1 + i] = g
    return result


register("cond", infer=_cond_infer, ref=_cond_ref, grad=_cond_grad, kind="host",
         doc="the results of true_body or false_body, whichever pred picks (only it runs)")


# ---- the public functions ---------------------------------------------------------------------
def _error(cls, message, op):
    """An error naming the user's line that called `op`."""
    return cls(message, PendingNode(get_default_graph(), op, None, user_source()))


def _tensors(values, what):
    if values is None:
        return []
    if isinstance(values, (list, tuple)):
        return [as_tensor(v) for v in values]
    return [as_tensor(values)]


def _results(out, what, op):
    """The tensors a user's fn returned (a tensor, a list/tuple; Theano's (outputs, updates))."""
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
        if out[1]:
            raise _error(GraphcError, f"{what}: updates returned by fn are not supported yet",
                         op)
        out = out[0]
    if isinstance(out, dict):
        if out:
            raise _error(GraphcError, f"{what}: updates returned by fn are not supported yet",
                         op)
        return [], True
    if isinstance(out, (list, tuple)):
        return [as_tensor(o) for o in out], True
    if out is None:
        raise _error(GraphcError, f"{what}: fn returned None; it must return a tensor or a "
                     "list of tensors", op)
    return [as_tensor(out)], False


def _scan_core(fn, seqs, inits_info, nonseqs, n_steps, what, name=None, call=None):
    """Build a scan loop; returns (user-ordered stacked outputs, finals, count, several,
    updates: the draw counter's advance where fn draws random numbers, else {})."""
    for i, s in enumerate(seqs):
        if s.rank == 0:
            raise _error(ShapeError, f"{what}: sequence {i} is a scalar; a sequence is sliced "
                         "along axis 0", what)
    inits = [i for i in inits_info if i is not None] if inits_info is not None else []
    n_static, bounded, dynamic = None, False, False
    if n_steps is None:
        if not seqs:
            raise _error(GraphcError, f"{what}: give sequences or n_steps", what)
        n_tensor = constant(-1, dtype=dtypes.int64)
    elif isinstance(n_steps, Tensor):
        if n_steps.shape != () or not n_steps.dtype.is_integer:
            raise _error(DTypeError, f"{what}: n_steps must be an int or an integer scalar "
                         f"tensor, got {format_type(n_steps.type)}", what)
        bounded = True
        if n_steps.node.op == "constant":
            n_static = int(n_steps.node.attrs["value"].array)
        else:
            dynamic = True
        from .elementwise import cast
        n_tensor = n_steps if n_steps.dtype is dtypes.int64 else cast(n_steps, dtypes.int64)
    else:
        try:
            n_static = int(n_steps)
        except (TypeError, ValueError):
            raise _error(GraphcError, f"{what}: n_steps must be an int or an integer scalar "
                         f"tensor, got {n_steps!r}", what) from None
        bounded = True
        n_tensor = constant(n_static, dtype=dtypes.int64)
    if n_static is not None and n_static < 0:
        raise _error(GraphcError, f"{what}: n_steps is {n_static}; it must be >= 0", what)
    # an outermost scan draws its fn's numbers before the loop where it can tell the number
    # of steps then; every other loop's body draws them itself (graphc.ops.body_draws)
    before = what == "scan" and active_builder() is None and (seqs or n_static is not None)
    with BodyBuilder(name or what, draws=before, runs="steps") as b:
        xs = [b.argument(TensorType(s.dtype, s.shape[1:]), f"x{i}") for i, s in enumerate(seqs)]
        hs = [b.argument(h.type, f"h{j}") for j, h in enumerate(inits)]
        cs = [b.argument(c.type, f"c{k}") for k, c in enumerate(nonseqs)]
        out, several = _results((call or fn)(*(xs + hs + cs)), what, what)
        if inits_info is not None and len(out) != len(inits_info):
            raise _error(GraphcError, f"{what}: fn returned {len(out)} output"
                         f"{'s' if len(out) != 1 else ''} but outputs_info has "
                         f"{len(inits_info)} entr{'ies' if len(inits_info) != 1 else 'y'}", what)
        fed = ([i for i, info in enumerate(inits_info) if info is not None]
               if inits_info is not None else [])
        order = fed + [i for i in range(len(out)) if i not in fed]
        results = [out[i] for i in order]
        body = b.finish(results[:len(fed)] + _next_index(b) + results[len(fed):],
                        sequences=len(xs), carries=len(fed))
    updates = {}
    draws = []
    if b.draws:
        counter, draws = _draws_before(b.draws, seqs, inits, list(nonseqs) + b.captured,
                                       n_static, what)
        updates = {counter: counter + 1}
    outs = _loop_node(n_tensor, seqs + draws, inits + _first_index(b),
                      list(nonseqs) + b.captured, body, None, bounded=bounded,
                      n_static=n_static, dynamic=dynamic, what=what)
    outs = _without_index(outs, b, len(fed), len(body.results))
    n_res = len(order)
    stacked = [None] * len(order)
    for position, i in enumerate(order):
        stacked[i] = outs[position]
    return stacked, list(outs[n_res:n_res + len(inits)]), outs[-1], several, updates


# ---- the step index of a loop whose body draws (graphc.ops.body_draws) ------------------------
def _next_index(b):
    """[the next step's index] where the body asked for its index, else []: the result the
    loop carries it by."""
    if b.index is None:
        return []
    from .elementwise import add
    return [add(b.index, constant(1, dtype=dtypes.int64))]


def _first_index(b):
    return [] if b.index is None else [constant(0, dtype=dtypes.int64)]


def _without_index(outs, b, n_carry, n_res):
    """The loop's outputs without the index's stacked and final values."""
    if b.index is None:
        return list(outs)
    outs = list(outs)
    return outs[:n_carry] + outs[n_carry + 1:n_res] + outs[n_res:n_res + n_carry] \
        + outs[n_res + n_carry + 1:]


def _draws_before(requests, seqs, inits, nonseqs, n_static, what):
    """The draw counter (a new int64 variable, 0) and, for each random draw fn made, the draws
    of every step as one tensor (the draw's op with a leading axis of steps), which the loop
    slices as a sequence. Every axis of a draw is known now or is an axis of a tensor the loop
    is given, which gives its length at run time."""
    from .state import Variable
    carriers = ([(s, axis + 1) for s in seqs for axis in range(s.rank - 1)]
                + [(t, axis) for t in list(inits) + list(nonseqs) for axis in range(t.rank)])
    inputs = []  # the tensors whose axes give dims, after the counter

    def axis_of(t, axis):
        for i, known in enumerate(inputs):
            if known is t:
                return (i, axis)
        inputs.append(t)
        return (len(inputs) - 1, axis)

    def dim(d, where):
        if isinstance(d, int):
            return d
        for t, axis in carriers:
            if t.shape[axis] is d:
                return axis_of(t, axis)
        raise _error(ShapeError, f"{what}: a random draw of fn has a dim {d} ({where}) that no "
                     "tensor given to the loop has; draw a shape made of ints and of dims of "
                     "the sequences, initial values and non-sequences", what)
    steps = n_static if n_static is not None else axis_of(seqs[0], 0)
    counter = Variable(np.zeros((), np.int64), name=f"{what}_draws", trainable=False)
    draws = []
    for _, op, attrs, shape in requests:
        dims = (steps,) + tuple(dim(d, f"axis {i} of a step's draw")
                                for i, d in enumerate(shape))
        draws.append(apply(op, [counter] + inputs, **dict(attrs, dims=dims)))
    return counter, draws


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         go_backwards=False, name=None):
    """Theano's scan: (outputs, updates). fn gets the t-th slice of each sequence, the previous
    value of each output whose outputs_info entry is not None, then each non-sequence; its
    outputs are stacked on a new axis 0 (one output: a tensor; several: a list). `updates`
    is {} unless fn draws random numbers: then {draw counter: counter + 1}, which makes the
    next call draw new numbers when passed to gc.function's updates (see state.scan_stream).
    go_backwards: the sequences are read from the end (outputs in iteration order)."""
    seqs = _tensors(sequences, "sequences")
    nonseqs = _tensors(non_sequences, "non_sequences")
    if outputs_info is None:
        infos = None
    else:
        entries = list(outputs_info) if isinstance(outputs_info, (list, tuple)) else [outputs_info]
        infos = []
        for entry in entries:
            if isinstance(entry, dict):
                taps = entry.get("taps", [-1])
                if list(taps) != [-1]:
                    raise _error(GraphcError, "scan: only taps=[-1] is supported", "scan")
                entry = entry.get("initial")
            infos.append(None if entry is None else as_tensor(entry))
    if go_backwards:
        from .shape import getitem
        seqs = [getitem(s, slice(None, None, -1)) for s in seqs]
    stacked, _, _, _, updates = _scan_core(fn, seqs, infos, nonseqs, n_steps, "scan", name)
    return (stacked[0] if len(stacked) == 1 else stacked), updates


def map_fn(fn, elems, name=None):
    """TF's map_fn: fn applied to each element of elems (axis 0), the results stacked. A list
    or tuple of tensors gives fn a tuple of their elements."""
    multi = isinstance(elems, (list, tuple))
    seqs = _tensors(elems, "elems")
    call = (lambda *xs: fn(tuple(xs))) if multi else fn
    stacked, _, _, several, _ = _scan_core(fn, seqs, None, [], None, "map_fn", name, call)
    return stacked if several else stacked[0]


def foldl(fn, elems, initializer=None, name=None):
    """TF's foldl: acc = fn(acc, x) over the elements of elems (axis 0); the final acc.
    Without an initializer, the first element is the initial acc."""
    (elems,) = _tensors(elems, "elems")
    if elems.rank == 0:
        raise _error(ShapeError, "foldl: elems is a scalar; it is sliced along axis 0", "foldl")
    if initializer is None:
        from .shape import getitem
        init, elems = getitem(elems, 0), getitem(elems, slice(1, None))
    else:
        init = as_tensor(initializer)
    _, finals, _, _, _ = _scan_core(fn, [elems], [init], [], None, "foldl", name,
                                 lambda x, acc: fn(acc, x))
    return finals[0]


def while_loop(cond, body, loop_vars, maximum_iterations=None, name=None):
    """TF1's while_loop: loop_vars = body(*loop_vars) while cond(*loop_vars); a list in gives
    a list out, a tuple a tuple, a single tensor a single tensor."""
    single = not isinstance(loop_vars, (list, tuple))
    kind = tuple if isinstance(loop_vars, tuple) else list
    inits = _tensors(loop_vars, "loop_vars")
    with BodyBuilder((name or "while") + "_cond", runs="steps") as cb:
        args = [cb.argument(v.type, f"v{j}") for j, v in enumerate(inits)]
        c = cond(*args)
        c = as_tensor(c)
        if c.shape != () or not c.dtype.is_bool:
            raise _error(DTypeError, f"while_loop: cond must return a bool scalar, got "
                         f"{format_type(c.type)}", "while_loop")
    with BodyBuilder(name or "while", runs="steps") as bb:
        args = [bb.argument(v.type, f"v{j}") for j, v in enumerate(inits)]
        out, _ = _results(body(*args), "while_loop", "while_loop")
        if len(out) != len(inits):
            raise _error(GraphcError, f"while_loop: body returned {len(out)} values for "
                         f"{len(inits)} loop vars", "while_loop")
        for j, (v, o) in enumerate(zip(inits, out)):
            if v.dtype is not o.dtype or not _compatible(v.type, o.type):
                raise _error(ShapeError if v.dtype is o.dtype else DTypeError,
                             f"while_loop: the body changes loop var {j} from "
                             f"{format_type(v.type)} to {format_type(o.type)}; a loop var "
                             "must keep its dtype and shape", "while_loop")
        if cb.index is not None:  # the condition draws: it gets the index as the body does
            bb.step_index()
        loop_body = bb.finish(out + _next_index(bb), carries=len(inits))
    if bb.index is not None:
        cb.step_index()
    cond_body = cb.finish([c], carries=len(inits))
    if maximum_iterations is None:
        n, bounded = constant(-1, dtype=dtypes.int64), False
    else:
        n, bounded = maximum_iterations, True
        if isinstance(n, Tensor):
            from .elementwise import cast
            n = n if n.dtype is dtypes.int64 else cast(n, dtypes.int64)
        else:
            n = constant(int(n), dtype=dtypes.int64)
    outs = _loop_node(n, [], inits + _first_index(bb), bb.captured, loop_body, cond_body,
                      bounded=bounded, dynamic=True, what="while_loop",
                      cond_captures=cb.captured)
    n_res = len(loop_body.results)
    finals = list(outs[n_res:n_res + len(inits)])
    if single:
        return finals[0]
    return kind(finals)


def _cond_outputs(pred, true_fn, false_fn, name=None):
    """The cond node's outputs (a list), whether true_fn gave several values, and whether it
    gave a tuple."""
    with BodyBuilder("cond_true", runs="once") as tb:
        t_raw = true_fn()
        t_out, several = _results(t_raw, "cond", "cond")
        true_body = tb.finish(t_out)
    with BodyBuilder("cond_false", runs="once") as fb:
        f_out, _ = _results(false_fn(), "cond", "cond")
        false_body = fb.finish(f_out)
    pred = as_tensor(pred)
    outs = apply("cond", [pred] + tb.captured + fb.captured, name=name, true_body=true_body,
                 false_body=false_body, n_true=len(tb.captured))
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    return outs, several, isinstance(t_raw, tuple)


def cond(pred, true_fn, false_fn, name=None):
    """TF1's cond: true_fn() if pred else false_fn(); only the taken branch runs. Both must
    give the same number of values of the same dtypes and shapes."""
    outs, several, as_tuple = _cond_outputs(pred, true_fn, false_fn, name)
    if not several:
        return outs[0]
    return tuple(outs) if as_tuple else outs
