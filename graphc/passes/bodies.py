"""Passes inside the bodies of loops and conds.

A loop or cond node holds its bodies (graphc/ir/subgraph.py) as attrs, so a pass that walks
the outer graph sees the node but not what its bodies compute. `everywhere(run, outputs)` runs
a pass inside every body first (nested bodies before the bodies that hold them), then over
the outer graph: each body is optimized as the graph behind its results and arguments, so it
keeps its arguments (used or not) in order and its results in order, and each node whose
bodies changed is rebuilt over the new ones. A body nothing changed stays the same Body
object, and a graph none of whose bodies changed is not copied.
"""
from ..ir.subgraph import Body
from .rebuild import reachable, rebuild


def optimize_body(body, run):
    """The Body that `run` (outputs -> (graph, outputs)) makes of `body`; `body` itself when
    the pass left its graph as it was."""
    n = len(body.results)
    graph, outs = run(list(body.results) + list(body.arguments))
    if graph is body.graph and all(a is b for a, b in zip(outs, list(body.results)
                                                          + list(body.arguments))):
        return body
    args = outs[n:]
    assert all(a.node.op == "argument" for a in args), "a pass replaced a body's argument"
    return Body(graph, args, outs[:n], body.name)


def map_bodies(outputs, fn):
    """(graph, outputs) with every body of every node the outputs reach replaced by
    fn(body); the outputs' own graph when fn changed none."""
    graph = outputs[0].graph if outputs else None
    if graph is None or not graph.holds_bodies:  # no walk of a graph without bodies
        return graph, outputs
    new_attrs = {}
    for node in reachable(outputs):
        changed = {}
        for key, value in node.attrs.items():
            if isinstance(value, Body):
                new = fn(value)
                if new is not value:
                    changed[key] = new
        if changed:
            new_attrs[node.id] = {**node.attrs, **changed}
    if not new_attrs:
        return graph, outputs
    return rebuild(outputs, new_attrs=new_attrs)


def everywhere(run, outputs):
    """run(outputs) after running it inside every body the outputs reach, innermost first."""
    _, outputs = map_bodies(outputs, lambda body: optimize_body(
        body, lambda outs: everywhere(run, outs)))
    return run(outputs)
