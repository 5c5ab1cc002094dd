"""Fusion: how many fusion groups a computation becomes, why fusion stops, and the invariants
every partition keeps (each node in one group but a reshape that several products read, an acyclic group DAG, inputs from earlier
groups)."""
import time
from collections import Counter

import networkx as nx
import numpy as np
import pytest

import graphc as gc
from graphc.passes import fusion
from graphc.passes.fusion import (BROADCAST, CONTRACTION_INPUT, CYCLE, MAX_GROUP_NODES, REASONS,
                                  SIZE, SPACE, STATEFUL, TWO_CONSUMERS, partition)

rng = np.random.default_rng(3)


def check(outputs):
    """Partition the graph of `outputs` and assert every invariant of a partition."""
    outputs = outputs if isinstance(outputs, list) else [outputs]
    graph = outputs[0].graph
    part = partition(graph, outputs)
    deps = nx.DiGraph((t.node.id, n.id) for n in graph.nodes for t in n.inputs)
    deps.add_nodes_from(n.id for n in graph.nodes)
    live = set().union(*(nx.ancestors(deps, t.node.id) | {t.node.id} for t in outputs))
    computed = {i for i in live if graph.nodes[i].spec.kind != "source"}

    members = Counter(n.id for g in part.groups for n in g.nodes)
    assert set(members) == computed, "every computed node in a group"
    for g in part.groups:
        for n in g.nodes:
            if members[n.id] == 1:
                assert part.group_of[n.id] is g
            else:  # only an in-order view, copied into the prologues of its contractions
                assert n.spec.view == "linear" and g.kind == "contraction"
                assert g.levels[n.id].startswith("operand")
                assert all(n.outputs[0] is not o for o in g.outputs)

    dag = nx.DiGraph()
    dag.add_nodes_from(g.id for g in part.groups)
    crossing = {(b.producer, b.consumer) for b in part.boundaries}
    for g in part.groups:
        assert [n.id for n in g.nodes] == sorted(n.id for n in g.nodes)
        assert g.root in g.nodes and set(g.levels) == {n.id for n in g.nodes}
        for t in g.inputs:
            producer = part.group_of.get(t.node.id)
            assert producer is not g
            if producer is None:
                assert t.node.spec.kind == "source"
            else:
                assert producer.id < g.id, "inputs come from sources or earlier groups"
                assert any(t is o for o in producer.outputs)
                dag.add_edge(producer.id, g.id)
                assert any((t.node.name, n.name) in crossing for n in g.nodes
                           if any(u is t for u in n.inputs)), "every crossing edge says why"
    assert nx.is_directed_acyclic_graph(dag)
    for b in part.boundaries:
        assert b.reason in REASONS
        assert part.group_of[graph.node_by_name(b.producer).id] is not \
            part.group_of[graph.node_by_name(b.consumer).id]
    for t in outputs:
        if t.node.spec.kind != "source":
            assert any(t is o for o in part.group_of[t.node.id].outputs), (
                "fetched tensors are written")
    for g in part.groups:
        check_structure(g)
    return part


def is_anchor(node):
    return node.spec.kind in ("reduction", "contraction")


def stretched_axes(small, big):
    """The axes of `big` along which numpy broadcasting stretches `small`."""
    small = (1,) * (len(big) - len(small)) + tuple(small)
    return tuple(i for i, (s, b) in enumerate(zip(small, big)) if s == 1 and b != 1)


def check_structure(group):
    """What a kernel can rely on: its anchors agree, a row value is only broadcast back over
    the group's own axes, and nothing that reorders elements reads a row value."""
    anchors = [n for n in group.nodes if is_anchor(n)]
    inside = {n.id: n for n in group.nodes}
    if group.kind == "elementwise":
        assert not anchors
    if group.kind == "contraction":
        assert anchors == [group.root]
    if group.kind == "reduction":
        assert anchors and all(n.spec.kind == "reduction" and n.inputs[0].shape == group.space
                               for n in anchors)
    for n in group.nodes:
        for t in n.inputs:
            if t.node.id in inside and (group.levels[t.node.id], group.levels[n.id]) == \
                    ("reduced", "full") and not is_anchor(n):
                assert n.outputs[0].shape == group.space
                assert stretched_axes(t.shape, group.space) == tuple(
                    a for a in group.axes if group.space[a] != 1)
    sub = nx.DiGraph((t.node.id, n.id) for n in group.nodes for t in n.inputs
                     if t.node.id in inside)
    sub.add_nodes_from(inside)
    for n in group.nodes:
        if n.spec.kind == "view" and n.op not in ("reshape", "reshape_like", "expand_dims",
                                                  "squeeze", "broadcast_like", "broadcast_to"):
            assert not any(is_anchor(inside[a]) for a in nx.ancestors(sub, n.id))


def ops(group):
    return [n.op for n in group.nodes]


def reason(part, producer, consumer):
    found = [b.reason for b in part.boundaries
             if (b.producer, b.consumer) == (producer.node.name, consumer.node.name)]
    assert len(found) == 1, part.boundaries
    return found[0]


@pytest.fixture(autouse=True)
def fresh_graph():
    with gc.Graph().as_default() as g:
        yield g


# ---- the workloads of DESIGN.md section 7 --------------------------------------------------
def test_w1_formula_is_one_elementwise_group():
    x = gc.placeholder(gc.float32, (2 ** 24,), name="x")
    y = gc.tanh(x) * gc.sigmoid(x) + 0.5 * x * x - gc.exp(-gc.abs(x))
    part = check(y)
    (group,) = part.groups
    assert group.kind == "elementwise" and group.root is y.node
    assert group.inputs[0] is x and group.outputs == [y]
    assert {"tanh", "sigmoid", "exp", "abs", "neg", "mul", "add", "sub"} == set(ops(group))
    assert group.describe().startswith("elementwise[tanh, sigmoid, mul")
    assert group.describe().endswith("over float32[16777216]")
    assert part.boundaries == []


def softmax_by_hand(x):
    e = gc.exp(x - gc.max(x, -1, keepdims=True))
    return e / gc.sum(e, -1, keepdims=True)


def log_softmax_by_hand(x):
    s = x - gc.max(x, -1, keepdims=True)
    return s - gc.log(gc.sum(gc.exp(s), -1, keepdims=True))


@pytest.mark.parametrize("shape", [(4096, 4096), (7, 1), (1,), (3, 5, 1023), (None, 10)])
@pytest.mark.parametrize("build", [softmax_by_hand, log_softmax_by_hand])
def test_softmax_written_out_is_at_most_two_groups(shape, build):
    y = build(gc.placeholder(gc.float32, shape, name="x"))
    part = check(y)
    assert len(part.groups) <= 2, part.summary()
    assert {g.kind for g in part.groups} <= {"reduction", "elementwise"}


def test_nn_softmax_is_one_group():
    if not hasattr(gc.nn, "softmax"):
        pytest.skip("gc.nn.softmax is not there yet")
    x = gc.placeholder(gc.float32, (4096, 4096), name="x")
    part = check(gc.nn.softmax(x) * 2 + 1)
    assert len(part.groups) == 1 and part.groups[0].kind == "reduction"


def test_dense_relu_is_one_contraction_with_its_epilogue():
    x = gc.placeholder(gc.float32, (None, 1024), name="x")
    W = gc.Variable(np.zeros((1024, 1023), "float32"), name="W")
    b = gc.Variable(np.zeros(1023, "float32"), name="b")
    part = check(gc.relu(x @ W + b))
    (group,) = part.groups
    assert group.kind == "contraction" and ops(group) == ["matmul", "add", "relu"]
    assert group.root.op == "matmul" and set(group.inputs) == {x, W, b}


def test_contraction_takes_a_single_consumer_prologue():
    x = gc.placeholder(gc.int32, (7, 5), name="x")
    W = gc.placeholder(gc.float32, (5, 3), name="W")
    scaled = gc.cast(x, gc.float32) * 0.5
    part = check(gc.sigmoid(gc.matmul(scaled, W)))
    (group,) = part.groups
    assert ops(group) == ["cast", "mul", "matmul", "sigmoid"]
    assert [group.levels[n.id] for n in group.nodes] == ["operand0", "operand0", "full", "full"]


def test_a_prologue_that_is_also_fetched_is_written_by_its_own_group():
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    W = gc.placeholder(gc.float32, (5, 3), name="W")
    scaled = x * 0.5
    y = gc.matmul(scaled, W)
    part = check([y, scaled])
    assert len(part.groups) == 2
    assert reason(part, scaled, y) == TWO_CONSUMERS


def test_reshape_read_by_two_products_is_in_both_prologues():
    # an LSTM's stacked gate gradients, reshaped into rows for both weight gradients
    dz = gc.placeholder(gc.float32, (5, None, 12), name="dz")
    h, x = gc.placeholder(gc.float32, (None, 3), name="h"), gc.placeholder(gc.float32, (None, 2), name="x")
    rows = gc.reshape(dz, (-1, 12))
    dU, dW = gc.matmul(gc.transpose(h), rows), gc.matmul(gc.transpose(x), rows) * 2.0
    part = check([dU, dW])
    assert len(part.groups) == 2 and all(g.kind == "contraction" for g in part.groups)
    assert all(g.inputs[0] is dz or g.inputs[1] is dz for g in part.groups)
    assert not part.boundaries
    batch = 7
    values = {dz: rng.standard_normal((5, batch, 12)).astype("float32"),
              h: rng.standard_normal((5 * batch, 3)).astype("float32"),
              x: rng.standard_normal((5 * batch, 2)).astype("float32")}
    got = gc.function([dz, h, x], [dU, dW], device="cpu")(*values.values())
    flat = values[dz].reshape(-1, 12)
    np.testing.assert_allclose(got[0], values[h].T @ flat, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], 2 * (values[x].T @ flat), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("other", ["sum", "fetched"])
def test_reshape_read_by_a_product_and_something_else_is_in_one_group(other):
    dz = gc.placeholder(gc.float32, (5, 4, 12), name="dz")
    h = gc.placeholder(gc.float32, (20, 3), name="h")
    rows = gc.reshape(dz, (-1, 12))
    products = [gc.matmul(gc.transpose(h), rows), gc.matmul(gc.transpose(h) * 2.0, rows)]
    part = check(products + [gc.sum(rows, axis=0) if other == "sum" else rows])
    (home,) = [g for g in part.groups if rows.node in g.nodes]
    assert any(rows is o for o in home.outputs)


def test_contraction_output_is_not_a_prologue_of_another():
    a, b, c = (gc.placeholder(gc.float32, (4, 4), name=n) for n in "abc")
    ab = a @ b
    part = check(ab @ c)
    assert len(part.groups) == 2 and reason(part, ab, ab @ c) == CONTRACTION_INPUT


def test_conv2d_takes_bias_and_activation():
    x = gc.placeholder(gc.float32, (None, 9, 9, 3), name="x")
    f = gc.placeholder(gc.float32, (3, 3, 3, 8), name="f")
    b = gc.placeholder(gc.float32, (8,), name="b")
    part = check(gc.relu(gc.nn.conv2d(x, f) + b))
    (group,) = part.groups
    assert group.kind == "contraction" and ops(group) == ["conv2d", "add", "relu"]


# ---- reductions -------------------------------------------------------------------------------
def test_reduction_takes_prologue_and_epilogue():
    x = gc.placeholder(gc.float32, (7, 1023), name="x")
    norm = gc.sqrt(gc.sum(x * x, axis=1)) + 1e-6
    part = check(norm)
    (group,) = part.groups
    assert group.kind == "reduction" and group.root.op == "sum" and group.axes == (1,)
    assert [group.levels[n.id] for n in group.nodes] == ["full", "reduced", "reduced", "reduced"]


def test_value_read_by_reductions_over_different_axes_is_computed_once():
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    a = gc.exp(x)
    rows, cols = gc.sum(a, axis=1), gc.sum(a, axis=0)
    part = check([rows, cols])
    assert len(part.groups) == 2
    home = part.group_of[a.node.id]
    other = cols if home is part.group_of[rows.node.id] else rows
    assert reason(part, a, other) == TWO_CONSUMERS
    assert any(a is o for o in home.outputs)


def test_reduction_then_broadcast_to_a_different_shape_stops_fusion():
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    v = gc.placeholder(gc.float32, (7, 3), name="v")
    s = gc.sum(x, axis=1, keepdims=True)
    y = gc.exp(s * v)
    part = check(y)
    assert len(part.groups) == 2 and reason(part, s, s * v) == BROADCAST


def test_reduction_broadcast_back_over_its_own_axes_fuses():
    x = gc.placeholder(gc.float32, (6, 7, 5), name="x")
    centred = x - gc.mean(x, axis=(1, 2), keepdims=True)
    y = centred * gc.rsqrt(gc.mean(gc.square(centred), axis=(1, 2), keepdims=True) + 1e-5)
    part = check(y)
    (group,) = part.groups
    assert group.kind == "reduction" and group.axes == (1, 2)


def test_reductions_over_other_axes_do_not_share_a_row_kernel():
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    m = gc.max(x, axis=0, keepdims=True)
    y = gc.sum(x - m, axis=1)
    part = check(y)
    assert len(part.groups) == 2 and reason(part, m, x - m) == SPACE


def test_reordering_view_keeps_row_values_out():
    x = gc.placeholder(gc.float32, (6, 6), name="x")  # square: the space keeps its shape
    m = gc.max(x, axis=1, keepdims=True)
    shifted = x - m
    part = check(gc.transpose(gc.exp(shifted)))
    assert part.group_of[m.node.id] is not part.group_of[shifted.node.id]
    assert reason(part, m, shifted) == SPACE
    # a reshape keeps elements in order, so the row kernel stays whole
    assert len(check(gc.reshape(gc.exp(shifted), (36,))).groups) == 1


def test_pieces_of_one_shape_fuse_into_their_concat():
    """An LSTM step's gate gradients: four elementwise pieces of one shape and their concat
    are one group over a piece's shape (lowering stores each piece at its offset)."""
    z = gc.placeholder(gc.float32, (6, 20), name="z")
    i, f, g, o = gc.split(z, 4, axis=1)
    out = gc.concat([gc.sigmoid(i) * o, gc.sigmoid(f) * o, gc.tanh(g) * o, -o], axis=1)
    part = check(out)
    (group,) = part.groups
    assert group.space == (6, 5) and group.root is out.node and group.outputs == [out]
    assert {"split", "sigmoid", "tanh", "mul", "neg", "concat"} == set(ops(group))
    # pieces of other shapes keep the output's space, read back from their own groups
    uneven = gc.concat([gc.exp(i), gc.exp(gc.concat([f, g], axis=1))], axis=1)
    assert check(uneven).group_of[uneven.node.id].space == (6, 15)


# ---- cycles, state, and what is written --------------------------------------------------------
def test_merge_that_would_create_a_cycle_is_refused():
    x = gc.placeholder(gc.float32, (5, 5), name="x")
    W = gc.placeholder(gc.float32, (5, 5), name="W")
    a = gc.exp(x)
    b = gc.matmul(a, W)
    c = a + gc.sum(b)
    part = check(c)  # asserts the group DAG is acyclic
    assert reason(part, a, c) == CYCLE
    assert part.group_of[a.node.id] is not part.group_of[c.node.id]


def test_cycle_check_past_its_budget_only_forgoes_a_fusion(monkeypatch):
    monkeypatch.setattr(fusion, "CYCLE_CHECK_BUDGET", 0)
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    a = gc.exp(x)
    first, second = gc.sum(a, axis=1), gc.sum(a, axis=0)
    part = check([first, second])
    # a tries the group of `second` first (made first), and the search from `first` runs out
    assert reason(part, a, second) == CYCLE
    assert part.group_of[a.node.id] is part.group_of[first.node.id]


def test_stateful_ops_stand_alone():
    v = gc.Variable(np.ones(7, "float32"), name="v")
    noise = gc.random.normal((7,), seed=1)
    new = v * 0.9 + noise
    step = gc.group(gc.assign(v, new))
    part = check(step)
    for t in (noise, step, step.node.inputs[0]):
        assert ops(part.group_of[t.node.id]) == [t.node.op]
        assert part.group_of[t.node.id].kind == "stateful"
    assert reason(part, noise, new) == STATEFUL
    assert ops(part.group_of[new.node.id]) == ["mul", "add"]


def test_fetched_intermediate_is_an_output_of_the_fused_group():
    x = gc.placeholder(gc.float32, (7,), name="x")
    y = gc.exp(x)
    z = y * 2 + 1
    part = check([z, y])
    (group,) = part.groups
    assert group.outputs == [y, z]
    assert len(part.summary().splitlines()) == 1


def test_mlp_train_step_partitions_into_few_kernels():
    batch = gc.Dim("batch")
    x = gc.placeholder(gc.float32, (batch, 784), name="x")
    labels = gc.placeholder(gc.int32, (batch,), name="labels")
    params, h = [], x
    for i, (m, n) in enumerate([(784, 512), (512, 512), (512, 10)]):
        W = gc.Variable(rng.normal(size=(m, n)).astype("float32") * 0.01, name=f"W{i}")
        b = gc.Variable(np.zeros(n, "float32"), name=f"b{i}")
        params += [W, b]
        h = h @ W + b
        h = gc.relu(h) if i < 2 else h
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(h, labels))
    grads = gc.grad(loss, params)
    train = gc.group(*[gc.assign_sub(p, 0.1 * g) for p, g in zip(params, grads)])
    part = check([loss, train])
    computed = sum(1 for n in loss.graph.nodes if n.spec.kind != "source")
    print(f"\nMLP train step: {computed} nodes -> {len(part.groups)} fusion groups\n"
          + part.summary())
    assert len(part.groups) < computed / 2
    forward = [g for g in part.groups if ops(g) == ["matmul", "add", "relu"]]
    assert len(forward) == 2
    assert sum(g.kind == "stateful" for g in part.groups) == len(params) + 1


def test_long_chain_is_cut_into_groups_of_bounded_size_in_linear_time():
    x = gc.placeholder(gc.float32, (1000,), name="x")
    a, b = gc.constant(1.0001, gc.float32), gc.constant(0.001, gc.float32)
    y = x
    for _ in range(100_000):
        y = y * a + b
    start = time.perf_counter()
    part = partition(y.graph, [y])
    seconds = time.perf_counter() - start
    print(f"\n100,000-step chain (200,000 nodes) partitioned in {seconds:.2f} s")
    assert len(part.groups) == 200_000 // MAX_GROUP_NODES
    assert all(len(g.nodes) == MAX_GROUP_NODES for g in part.groups)
    assert part.groups[0].inputs == [x, a, b] and part.groups[-1].outputs == [y]
    for before, after in zip(part.groups, part.groups[1:]):   # each continues the last
        assert set(after.inputs) == {before.outputs[0], a, b} and len(before.outputs) == 1
    assert len(part.boundaries) == len(part.groups) - 1
    assert {b.reason for b in part.boundaries} == {SIZE}
    assert seconds < 30


# ---- random graphs -----------------------------------------------------------------------------
def random_graph(seed, steps=25):
    """Random elementwise, broadcast, reduction, view and matmul steps over (4, 4)-ish values."""
    r = np.random.default_rng(seed)
    pool = [gc.placeholder(gc.float32, shape, name=f"in{i}")
            for i, shape in enumerate([(4, 4), (4, 1), (1, 4)])]
    pick = lambda: pool[r.integers(len(pool))]  # noqa: E731
    steps_table = [
        lambda: gc.exp(-gc.abs(pick())),
        lambda: gc.tanh(pick()) * pick(),
        lambda: pick() + pick(),
        lambda: gc.sum(pick(), axis=int(r.integers(2)), keepdims=True),
        lambda: gc.max(pick(), axis=int(r.integers(2)), keepdims=True),
        lambda: gc.mean(pick()) * pick(),
        lambda: gc.transpose(pick()),
        lambda: (lambda v: gc.reshape(gc.reshape(v, (-1,)), v.shape[::-1]))(pick()),
    ]
    for _ in range(steps):
        if r.random() < 0.15:
            a = pick()
            b = pick()
            if a.shape[1] == b.shape[0]:
                pool.append(gc.matmul(a, b))
            continue
        pool.append(steps_table[r.integers(len(steps_table))]())
    fetched = [pool[-1]] + [t for t in pool[3:-1] if r.random() < 0.2]
    return fetched


@pytest.mark.parametrize("seed", range(60))
def test_random_graphs_partition_into_an_acyclic_group_dag(seed):
    outputs = random_graph(seed)
    check(outputs)
