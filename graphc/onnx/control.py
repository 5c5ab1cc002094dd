"""ONNX control flow and recurrent ops onto graphc's loops and conds (converters, registered in
converters.CONVERTERS like the rest).

- `If` -> a graphc "cond" node (gc.cond): each branch's GraphProto is converted inside a body
  being built; the outer values a branch uses become captures. A condition known at load time
  takes its branch inline.
- `Loop` -> a graphc "loop" node (gc.while_loop's form): the carries are the iteration number,
  the condition and the loop-carried values; the trip count M bounds the steps, the condition
  (when given) is a cond body evaluated before each step; the body's scan outputs are the
  loop's stacked per-step values.
- `Scan` (opset 9+) -> a "loop" node over sequences (gc.scan's form), with scan_input_axes /
  scan_input_directions moved to axis 0 / reversed before and scan_output_axes /
  scan_output_directions applied after.
- `LSTM`, `GRU`, `RNN` -> gc.scan with ONNX's equations (gates i, o, f, c for LSTM; z, r, h for
  GRU, linear_before_reset both ways), directions forward, reverse and bidirectional,
  sequence_lens (steps past a row's length keep its state and output zeros), initial_h /
  initial_c, peepholes, clip, activations (ONNX's defaults) and layout.
"""
import numpy as np

from ..ir import dtypes
from ..ir.subgraph import BodyBuilder
from ..ir.types import TensorType
from ..ops import elementwise as E
from ..ops import indexing as I
from ..ops import reductions as R
from ..ops import shape as S
from ..ops.control_flow import _loop_node, _scan_core
from ..ops.linalg import matmul
from ..ops.registry import apply
from ..ops.sources import constant
from .converters import converter


def _scalar(t):
    return t if t.shape == () else S.reshape(t, ())


def _graph_attr(node, name):
    from onnx import GraphProto
    g = node.attr(name)
    if g is not None and not isinstance(g, GraphProto):
        raise node.unsupported(f"attribute {name!r} must be a graph")
    return g


# ---- If --------------------------------------------------------------------------------------
@converter("If", attrs=("then_branch", "else_branch"))
def _if(node):
    then_g, else_g = _graph_attr(node, "then_branch"), _graph_attr(node, "else_branch")
    if then_g is None or else_g is None:
        raise node.unsupported("If needs both then_branch and else_branch")
    pred = _scalar(node.inputs[0])
    if pred.dtype is not dtypes.bool_:
        pred = E.cast(pred, dtypes.bool_)
    known = node.static(0)
    if known is not None:  # the branch is known at load time: take it inline
        taken = "then_branch" if bool(np.asarray(known).reshape(())) else "else_branch"
        g = then_g if taken == "then_branch" else else_g
        return node.importer.subgraph(g, [], f"body {taken!r}")
    with BodyBuilder("If_then") as tb:
        true_body = tb.finish(node.importer.subgraph(then_g, [], "body 'then_branch'"))
    with BodyBuilder("If_else") as fb:
        false_body = fb.finish(node.importer.subgraph(else_g, [], "body 'else_branch'"))
    if len(true_body.results) != len(false_body.results):
        raise node.unsupported(f"then_branch gives {len(true_body.results)} values but "
                               f"else_branch {len(false_body.results)}")
    outs = apply("cond", [pred] + tb.captured + fb.captured, true_body=true_body,
                 false_body=false_body, n_true=len(tb.captured))
    return list(outs) if isinstance(outs, tuple) else [outs]


# ---- Loop ------------------------------------------------------------------------------------
@converter("Loop", attrs=("body",))
def _loop(node):
    body_g = _graph_attr(node, "body")
    if body_g is None:
        raise node.unsupported("Loop needs its body")
    m, c0 = node.input(0), node.input(1)
    vs = [t for t in node.inputs[2:]]
    if any(v is None for v in vs):
        raise node.unsupported("a loop-carried input is omitted")
    if m is None and c0 is None:
        raise node.unsupported("a Loop with neither a trip count nor a condition never ends")
    n_v = len(vs)
    if len(body_g.output) < 1 + n_v:
        raise node.unsupported(f"the body gives {len(body_g.output)} outputs; it must give "
                               f"the condition and the {n_v} loop-carried values")
    iter0 = constant(np.int64(0), dtype=dtypes.int64)
    cond0 = constant(True, dtype=dtypes.bool_) if c0 is None else _scalar(c0)
    if cond0.dtype is not dtypes.bool_:
        cond0 = E.cast(cond0, dtypes.bool_)
    carries = [iter0, cond0] + vs
    with BodyBuilder("Loop_body") as bb:
        args = [bb.argument(t.type, f"v{j}") for j, t in enumerate(carries)]
        outs = node.importer.subgraph(body_g, args, "body 'body'")
        cond_out = _scalar(outs[0])
        if cond_out.dtype is not dtypes.bool_:
            cond_out = E.cast(cond_out, dtypes.bool_)
        new = ([E.add(args[0], constant(np.int64(1), dtype=dtypes.int64)), cond_out]
               + [o if o.dtype is v.dtype else E.cast(o, v.dtype)
                  for o, v in zip(outs[1:1 + n_v], vs)] + list(outs[1 + n_v:]))
        body = bb.finish(new)
    cond_body, cond_caps = None, []
    if c0 is not None:
        with BodyBuilder("Loop_cond") as cb:
            cargs = [cb.argument(t.type, f"v{j}") for j, t in enumerate(carries)]
            cond_body = cb.finish([cargs[1]])
    n_static, dynamic = None, c0 is not None
    if m is None:
        n = constant(np.int64(-1), dtype=dtypes.int64)
    else:
        n = _scalar(m)
        n = n if n.dtype is dtypes.int64 else E.cast(n, dtypes.int64)
        known = node.static(0)
        if known is not None and c0 is None:
            n_static = int(np.asarray(known).reshape(()))
            n = constant(np.int64(n_static), dtype=dtypes.int64)
        elif known is None:
            dynamic = True
        if n_static is not None and n_static < 0:
            raise node.unsupported(f"trip count {n_static} is negative")
    out = _loop_node(n, [], carries, bb.captured, body, cond_body, bounded=m is not None,
                     n_static=n_static, dynamic=dynamic, what="Loop", cond_captures=cond_caps)
    n_res = len(body.results)
    finals = list(out[n_res + 2:n_res + len(carries)])
    scans = list(out[len(carries):n_res])
    return finals + scans


# ---- Scan ------------------------------------------------------------------------------------
def _move_axis(x, src, dst):
    if src == dst:
        return x
    perm = list(range(x.rank))
    perm.insert(dst, perm.pop(src))
    return S.transpose(x, perm)


def _reverse0(x):
    return S.getitem(x, slice(None, None, -1))


@converter("Scan", attrs=("body", "num_scan_inputs", "scan_input_axes", "scan_input_directions",
                          "scan_output_axes", "scan_output_directions", "directions"))
def _scan(node):
    if node.opset < 9:
        raise node.unsupported("Scan before opset 9 (batch axis, sequence_lens) is not "
                               "supported")
    body_g = _graph_attr(node, "body")
    n_in = node.attr("num_scan_inputs")
    if body_g is None or n_in is None:
        raise node.unsupported("Scan needs body and num_scan_inputs")
    if not 0 < n_in <= len(node.inputs):
        raise node.unsupported(f"num_scan_inputs {n_in} does not fit {len(node.inputs)} inputs")
    if any(t is None for t in node.inputs):
        raise node.unsupported("an input is omitted")
    states, xs = node.inputs[:-n_in], node.inputs[len(node.inputs) - n_in:]
    n_state = len(states)
    in_axes = node.attr("scan_input_axes", [0] * n_in)
    in_dirs = node.attr("scan_input_directions", [0] * n_in)
    if len(in_axes) != n_in or len(in_dirs) != n_in:
        raise node.unsupported("scan_input_axes/directions must have one entry per scan input")
    seqs = []
    for x, ax, d in zip(xs, in_axes, in_dirs):
        if not -x.rank <= ax < x.rank:
            raise node.unsupported(f"scan input axis {ax} is out of range for rank {x.rank}")
        s = _move_axis(x, ax % x.rank, 0)
        seqs.append(_reverse0(s) if d else s)
    with BodyBuilder("Scan_body") as bb:
        xargs = [bb.argument(TensorType(s.dtype, s.shape[1:]), f"x{i}") for i, s in enumerate(seqs)]
        hargs = [bb.argument(h.type, f"h{j}") for j, h in enumerate(states)]
        outs = node.importer.subgraph(body_g, hargs + xargs, "body 'body'")
        if len(outs) < n_state:
            raise node.unsupported(f"the body gives {len(outs)} outputs for {n_state} states")
        body = bb.finish(outs)
    out = _loop_node(constant(np.int64(-1), dtype=dtypes.int64), seqs, states, bb.captured,
                     body, None, what="Scan")
    n_res, n_scan = len(body.results), len(body.results) - n_state
    out_axes = node.attr("scan_output_axes", [0] * n_scan)
    out_dirs = node.attr("scan_output_directions", [0] * n_scan)
    if len(out_axes) != n_scan or len(out_dirs) != n_scan:
        raise node.unsupported("scan_output_axes/directions must have one entry per scan "
                               "output")
    scans = []
    for y, ax, d in zip(out[n_state:n_res], out_axes, out_dirs):
        y = _reverse0(y) if d else y
        if not -y.rank <= ax < y.rank:
            raise node.unsupported(f"scan output axis {ax} is out of range for rank {y.rank}")
        scans.append(_move_axis(y, 0, ax % y.rank))
    return list(out[n_res:n_res + n_state]) + scans


# ---- LSTM, GRU, RNN --------------------------------------------------------------------------
def _activation(name, alphas, betas):
    """fn(x) of an ONNX recurrent activation, consuming alpha/beta where it takes them."""
    key = name.lower()

    def take(lst, default):
        return lst.pop(0) if lst else default

    if key == "relu":
        return E.relu
    if key == "tanh":
        return E.tanh
    if key == "sigmoid":
        return E.sigmoid
    if key == "softsign":
        return lambda x: x / (E.abs(x) + 1)
    if key == "softplus":
        return E.softplus
    if key == "affine":
        a, b = take(alphas, 1.0), take(betas, 0.0)
        return lambda x: x * a + b
    if key == "leakyrelu":
        a = take(alphas, 0.01)
        return lambda x: E.where(x >= 0, x, x * a)
    if key == "thresholdedrelu":
        a = take(alphas, 1.0)
        return lambda x: E.where(x > a, x, x * 0)
    if key == "scaledtanh":
        a, b = take(alphas, 1.0), take(betas, 1.0)
        return lambda x: E.tanh(x * b) * a
    if key == "hardsigmoid":
        a, b = take(alphas, 0.2), take(betas, 0.5)
        return lambda x: E.clip(x * a + b, 0.0, 1.0)
    if key == "elu":
        a = take(alphas, 1.0)
        return lambda x: E.where(x > 0, x, (E.exp(x) - 1) * a)
    return None


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def _reverse_by_length(x, idx):
    """x[T, B, ...] with each row b's first lens[b] steps reversed (idx: [T, B] int64)."""
    full = E.add(S.reshape(idx, tuple(idx.shape) + (1,) * (x.rank - 2)),
                 E.fill_like(x, 0, dtypes.int64))
    return I.gather_elements(x, full, axis=0)


def _recurrent(node, kind):
    x, w, r = node.input(0), node.input(1), node.input(2)
    b, lens, h0 = node.input(3), node.input(4), node.input(5)
    c0 = node.input(6) if kind == "LSTM" else None
    p = node.input(7) if kind == "LSTM" else None
    direction = node.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise node.unsupported(f"direction {direction!r} is not supported")
    n_dir = 2 if direction == "bidirectional" else 1
    layout = node.attr("layout", 0)
    if layout not in (0, 1):
        raise node.unsupported(f"layout {layout} is not supported")
    if kind == "LSTM" and node.attr("input_forget", 0):
        raise node.unsupported("input_forget=1 is not supported")
    if x.rank != 3 or w.rank != 3 or r.rank != 3:
        raise node.unsupported("X, W and R must be 3-D")
    gates = _GATES[kind]
    hidden = node.attr("hidden_size")
    if hidden is None:
        if not isinstance(r.shape[2], int):
            raise node.unsupported("hidden_size is not given and R's shape is not static")
        hidden = r.shape[2]
    names = node.attr("activations")
    per_dir = len(_DEFAULT_ACTS[kind])
    if names is None:
        names = _DEFAULT_ACTS[kind] * n_dir
    if len(names) != per_dir * n_dir:
        raise node.unsupported(f"activations has {len(names)} entries; {kind} with "
                               f"{n_dir} direction(s) takes {per_dir * n_dir}")
    alphas, betas = list(node.attr("activation_alpha", [])), list(node.attr("activation_beta",
                                                                          []))
    acts = []
    for a in names:
        fn = _activation(a, alphas, betas)
        if fn is None:
            raise node.unsupported(f"activation {a!r} is not supported")
        acts.append(fn)
    clip = node.attr("clip")
    lbr = node.attr("linear_before_reset", 0) if kind == "GRU" else 0
    if layout == 1:  # [batch, seq, ...] -> [seq, batch, ...]
        x = S.transpose(x, (1, 0, 2))
        h0 = S.transpose(h0, (1, 0, 2)) if h0 is not None else None
        c0 = S.transpose(c0, (1, 0, 2)) if c0 is not None else None
    H = hidden
    # per-step masks and the per-row reversal where sequence_lens is given
    mask = idx = None
    if lens is not None:
        t1 = I.cumsum(E.fill_like(S.getitem(x, (slice(None), slice(None), 0)), 1,
                                  dtypes.int64), axis=0)  # t + 1, [T, B]
        lens64 = E.cast(lens, dtypes.int64)
        valid = E.less_equal(t1, lens64)
        mask = S.expand_dims(E.cast(valid, x.dtype), -1)  # [T, B, 1]
        t = E.sub(t1, constant(np.int64(1), dtype=dtypes.int64))
        idx = E.where(valid, E.sub(E.sub(lens64, constant(np.int64(1), dtype=dtypes.int64)), t),
                      t)
    ys, hs, cs = [], [], []
    for d in range(n_dir):
        reverse = direction == "reverse" or d == 1
        wd, rd = S.getitem(w, d), S.getitem(r, d)  # [G*H, I], [G*H, H]
        xw = matmul(x, S.transpose(wd, (1, 0)))  # [T, B, G*H]
        rb_h = None
        if b is not None:
            bd = S.getitem(b, d)
            wb, rb = S.getitem(bd, slice(0, gates * H)), S.getitem(bd, slice(gates * H, None))
            if kind == "GRU":
                # z and r take both biases before the step; h's recurrent bias stays inside
                xw = xw + S.concat([S.getitem(wb, slice(0, 2 * H)) + S.getitem(rb, slice(0, 2 * H)),
                                    S.getitem(wb, slice(2 * H, None))], 0)
                rb_h = S.getitem(rb, slice(2 * H, None))
            else:
                xw = xw + (wb + rb)
        seq = xw
        if reverse:
            seq = _reverse_by_length(xw, idx) if idx is not None else _reverse0(xw)
        zeros = E.fill_like(S.getitem(R.sum(xw, axis=0), (slice(None), slice(0, H))), 0)
        hd = S.getitem(h0, d) if h0 is not None else zeros
        inits = [hd]
        if kind == "LSTM":
            inits.append(S.getitem(c0, d) if c0 is not None else zeros)
        rt = S.transpose(rd, (1, 0))  # [H, G*H]
        f_, g_, h_ = (acts[d * per_dir:(d + 1) * per_dir] + [None, None])[:3]
        pd = S.getitem(p, d) if p is not None else None
        seqs = [seq] + ([_reverse0(mask) if reverse and idx is None else mask]
                        if mask is not None else [])

        def clipped(z):
            return E.clip(z, -clip, clip) if clip is not None else z

        def step(xt, *rest):
            if mask is not None:
                mt, rest = rest[0], rest[1:]
            h = rest[0]
            if kind == "RNN":
                hn = f_(clipped(xt + matmul(h, rt)))
                new = [hn]
            elif kind == "LSTM":
                c = rest[1]
                z = xt + matmul(h, rt)
                zi, zo, zf, zc = (S.getitem(z, (slice(None), slice(k * H, (k + 1) * H)))
                                  for k in range(4))
                if pd is not None:
                    zi = zi + S.getitem(pd, slice(0, H)) * c
                    zf = zf + S.getitem(pd, slice(2 * H, 3 * H)) * c
                i = f_(clipped(zi))
                fg = f_(clipped(zf))
                cn = fg * c + i * g_(clipped(zc))
                if pd is not None:
                    zo = zo + S.getitem(pd, slice(H, 2 * H)) * cn
                o = f_(clipped(zo))
                hn = o * h_(cn)
                new = [hn, cn]
            else:  # GRU
                rz = S.getitem(rt, (slice(None), slice(0, 2 * H)))
                rh = S.getitem(rt, (slice(None), slice(2 * H, None)))
                xz = S.getitem(xt, (slice(None), slice(0, 2 * H))) + matmul(h, rz)
                z = f_(clipped(S.getitem(xz, (slice(None), slice(0, H)))))
                rr = f_(clipped(S.getitem(xz, (slice(None), slice(H, None)))))
                xh = S.getitem(xt, (slice(None), slice(2 * H, None)))
                if lbr:
                    hr = matmul(h, rh)
                    if rb_h is not None:
                        hr = hr + rb_h
                    hh = g_(clipped(xh + rr * hr))
                else:
                    hr = matmul(rr * h, rh)
                    if rb_h is not None:
                        hr = hr + rb_h
                    hh = g_(clipped(xh + hr))
                hn = (1 - z) * hh + z * h
                new = [hn]
            if mask is not None:
                kept = [mt * n + (1 - mt) * o for n, o in zip(new, rest)]
                return kept + [mt * new[0]]
            return new + [new[0]]

        stacked, finals, _, _, _ = _scan_core(step, seqs, inits + [None], [], None, kind)
        y = stacked[-1]
        if reverse:
            y = _reverse_by_length(y, idx) if idx is not None else _reverse0(y)
        ys.append(y)
        hs.append(finals[0])
        if kind == "LSTM":
            cs.append(finals[1])
    y = S.stack(ys, axis=1)  # [T, D, B, H]
    yh = S.stack(hs, axis=0)  # [D, B, H]
    yc = S.stack(cs, axis=0) if cs else None
    if layout == 1:
        y = S.transpose(y, (2, 0, 1, 3))
        yh = S.transpose(yh, (1, 0, 2))
        yc = S.transpose(yc, (1, 0, 2)) if yc is not None else None
    return [y, yh] + ([yc] if kind == "LSTM" else [])


_RNN_ATTRS = ("activation_alpha", "activation_beta", "activations", "clip", "direction",
              "hidden_size", "layout")
converter("LSTM", attrs=_RNN_ATTRS + ("input_forget",))(lambda node: _recurrent(node, "LSTM"))
converter("GRU", attrs=_RNN_ATTRS + ("linear_before_reset",))(lambda node: _recurrent(node,
                                                                                       "GRU"))
converter("RNN", attrs=_RNN_ATTRS)(lambda node: _recurrent(node, "RNN"))
