"""Exporters of graphc's control flow: a "loop" node becomes ONNX `Scan` (a loop over
sequences without a condition: gc.scan, map_fn, foldl, the recurrent layers and the backward
loops of their gradients) or `Loop` (gc.while_loop, a loop without sequences), a "cond" node
becomes `If`. Bodies become GraphProto subgraphs, their nodes exported through the same
EXPORTERS table; the values a body captures (non-sequences, cond captures) are referred to by
their outer names, as ONNX's scoping allows; constants inside a body become initializers of
the main graph.
"""
from ..ops.control_flow import _split
from .exporter import _key, exporter, export_nodes, onnx_dtype


def _info(name, t):
    from onnx import helper
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype),
                                         [d if isinstance(d, int) else None for d in t.shape])


def _body_graph(ex, body, arg_names, name):
    """(GraphProto with no inputs) for graphc Body `body` whose argument k is the outer ONNX
    value arg_names[k] (If's branches)."""
    from onnx import helper
    sub = ex.child()
    for t, n in zip(body.arguments, arg_names):
        sub.names[_key(t)] = n
    export_nodes(sub, body.nodes)
    outs = []
    for r in body.results:
        out = sub.op("Identity", [sub.names[_key(r)]], outputs=[sub.fresh(f"{name}/out")])[0]
        outs.append(_info(out, r))
    return helper.make_graph(sub.nodes, ex.fresh(name), [], outs)


@exporter("cond")
def _cond(ex, node, ins):
    tb, fb, n_true = (node.attrs[k] for k in ("true_body", "false_body", "n_true"))
    caps = ins[1:]
    then_g = _body_graph(ex, tb, caps[:n_true], f"{node.name}/then")
    else_g = _body_graph(ex, fb, caps[n_true:], f"{node.name}/else")
    outs = ex.op("If", [ins[0]], outputs=len(node.outputs), then_branch=then_g,
                 else_branch=else_g)
    return outs if isinstance(outs, list) else [outs]


def _squeeze0(ex, name):
    return ex.op("Squeeze", [name, ex.const([0])])


@exporter("loop")
def _loop(ex, node, ins):
    a = node.attrs
    if a["cond"] is None and a["counts"][0] > 0:
        return _as_scan(ex, node, ins)
    return _as_loop(ex, node, ins)


def _as_scan(ex, node, ins):
    a = node.attrs
    body, counts = a["body"], a["counts"]
    n_seq, n_carry, _ = counts
    seqs, inits, nonseqs, _ = _split(ins[1:], counts)
    seq_t = node.inputs[1:1 + n_seq]
    # every sequence cut to the step count (Scan needs equal lengths)
    lens = [t.shape[0] for t in seq_t]
    same = all(n == lens[0] for n in lens)
    if a["bounded"] or not same:
        n = ex.op("Reshape", [ins[0], ex.const([1])]) if a["bounded"] else None
        for k in range(n_seq):
            m = ex.shape_of(seqs[k], 0)
            n = m if n is None else ex.op("Min", [n, m])
        seqs = [ex.op("Slice", [s, ex.const([0]), n, ex.const([0])]) for s in seqs]
    base = node.name
    h_names = [ex.fresh(f"{base}/h{j}") for j in range(n_carry)]
    x_names = [ex.fresh(f"{base}/x{i}") for i in range(n_seq)]
    body_args = x_names + h_names + list(nonseqs)
    arg_t = body.arguments
    graph_inputs = ([(n, arg_t[n_seq + j]) for j, n in enumerate(h_names)]
                    + [(n, arg_t[i]) for i, n in enumerate(x_names)])
    sub = ex.child()
    for t, n in zip(body.arguments, body_args):
        sub.names[_key(t)] = n
    export_nodes(sub, body.nodes)
    from onnx import helper
    outs_info = []
    for j in range(n_carry):
        r = body.results[j]
        nm = sub.op("Identity", [sub.names[_key(r)]], outputs=[sub.fresh(f"{base}/h{j}_new")])[0]
        outs_info.append(_info(nm, r))
    # per-step values only where something reads them (foldl's and the final states' are not)
    want = [k for k in range(len(body.results))
            if ex.used is None or _key(node.outputs[k]) in ex.used]
    for k in want:
        r = body.results[k]
        nm = sub.op("Identity", [sub.names[_key(r)]], outputs=[sub.fresh(f"{base}/y{k}")])[0]
        outs_info.append(_info(nm, r))
    g = helper.make_graph(sub.nodes, ex.fresh(f"{base}/body"),
                          [_info(n, t) for n, t in graph_inputs], outs_info)
    d = 1 if a["reverse"] else 0
    outs = ex.op("Scan", inits + seqs, outputs=n_carry + len(want), body=g,
                 num_scan_inputs=n_seq, scan_input_directions=[d] * n_seq,
                 scan_output_directions=[d] * len(want) or None)
    outs = outs if isinstance(outs, list) else [outs]
    finals = outs[:n_carry]
    stacked = [None] * len(body.results)
    for k, nm in zip(want, outs[n_carry:]):
        stacked[k] = nm
    count = finals[0] if finals else outs[n_carry]  # unread: any name will do
    if ex.used is None or _key(node.outputs[-1]) in ex.used:
        count = _squeeze0(ex, ex.shape_of(seqs[0], 0))
    stacked = [nm if nm is not None else count for nm in stacked]
    return stacked + finals + [count]


def _as_loop(ex, node, ins):
    from onnx import helper
    a = node.attrs
    body, cond, counts = a["body"], a["cond"], a["counts"]
    n_seq, n_carry, n_nonseq = counts
    seqs, inits, nonseqs, cond_caps = _split(ins[1:], counts)
    carry_t = node.inputs[1 + n_seq:1 + n_seq + n_carry]
    if n_seq and a["reverse"]:
        raise ex.unsupported("a reverse loop with a condition")
    base = node.name
    # the condition before the first step: the cond body inline in the outer graph
    if cond is not None:
        sub = ex.child()
        for t, n in zip(cond.arguments, inits + cond_caps):
            sub.names[_key(t)] = n
        export_nodes(sub, cond.nodes)
        ex.nodes.extend(sub.nodes)
        cond0 = sub.names[_key(cond.results[0])]
    else:
        cond0 = ""
    m = ins[0] if a["bounded"] else ""
    if n_seq:  # the step count is also bounded by the sequences' length
        n = ex.op("Reshape", [ins[0], ex.const([1])]) if a["bounded"] else None
        for s in seqs:
            k = ex.shape_of(s, 0)
            n = k if n is None else ex.op("Min", [n, k])
        m = _squeeze0(ex, n)
    if not m and not cond0:
        raise ex.unsupported("a loop with neither a step count nor a condition")
    sub = ex.child()
    it, c_in = sub.fresh(f"{base}/iter"), sub.fresh(f"{base}/cond_in")
    h_names = [sub.fresh(f"{base}/h{j}") for j in range(n_carry)]
    x_names = [sub.op("Gather", [s, it], outputs=[sub.fresh(f"{base}/x{i}")], axis=0)[0]
               for i, s in enumerate(seqs)]
    for t, n in zip(body.arguments, x_names + h_names + list(nonseqs)):
        sub.names[_key(t)] = n
    export_nodes(sub, body.nodes)
    new = [sub.names[_key(r)] for r in body.results]
    if cond is not None:
        csub = sub.child()
        for t, n in zip(cond.arguments, new[:n_carry] + cond_caps):
            csub.names[_key(t)] = n
        export_nodes(csub, cond.nodes)
        sub.nodes.extend(csub.nodes)
        c_out = csub.names[_key(cond.results[0])]
    else:
        c_out = c_in
    c_out = sub.op("Identity", [c_out], outputs=[sub.fresh(f"{base}/cond_out")])[0]
    outs_info = [helper.make_tensor_value_info(c_out, 9, [])]
    for j in range(n_carry):
        nm = sub.op("Identity", [new[j]], outputs=[sub.fresh(f"{base}/h{j}_new")])[0]
        outs_info.append(_info(nm, body.results[j]))
    # per-step values only where something reads them (a while loop's are seldom read)
    used = ex.used
    want = [k for k in range(len(body.results))
            if used is None or _key(node.outputs[k]) in used]
    for k in want:
        nm = sub.op("Identity", [new[k]], outputs=[sub.fresh(f"{base}/y{k}")])[0]
        outs_info.append(_info(nm, body.results[k]))
    want_count = used is None or _key(node.outputs[-1]) in used
    extra_in = []
    if want_count:  # the iteration count: one more carried value
        cnt = sub.fresh(f"{base}/count")
        cnt_new = sub.op("Add", [cnt, ex.const(1)], outputs=[sub.fresh(f"{base}/count_new")])[0]
        outs_info.insert(1 + n_carry, helper.make_tensor_value_info(cnt_new, 7, []))
        extra_in = [helper.make_tensor_value_info(cnt, 7, [])]
    g_inputs = ([helper.make_tensor_value_info(it, 7, []),
                 helper.make_tensor_value_info(c_in, 9, [])]
                + [_info(n, t) for n, t in zip(h_names, carry_t)] + extra_in)
    g = helper.make_graph(sub.nodes, ex.fresh(f"{base}/body"), g_inputs, outs_info)
    loop_ins = [m, cond0] + list(inits) + ([ex.const(0)] if want_count else [])
    n_out = n_carry + int(want_count) + len(want)
    outs = ex.op("Loop", loop_ins, outputs=n_out, body=g)
    outs = outs if isinstance(outs, list) else [outs]
    finals = outs[:n_carry]
    count = outs[n_carry] if want_count else None
    scans = outs[n_carry + int(want_count):]
    stacked = [None] * len(body.results)
    for k, nm in zip(want, scans):
        stacked[k] = nm
    filler = count or (finals + scans)[0]
    stacked = [nm if nm is not None else filler for nm in stacked]  # unread: any name will do
    return stacked + finals + [count if count is not None else filler]
