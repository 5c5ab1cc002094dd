"""The native devices' memory plan: buffers share storage when their lifetimes do not overlap,
and an elementwise kernel may write over the input it reads last."""
import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.kernels import ir
from graphc.kernels.access import access, in_place_candidates
from graphc.runtime.memory_plan import ALIGN, Lifetimes, pack
from tests.passes.random_graphs import assert_same_values, random_graphs

rng = np.random.default_rng(11)


def uniform(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


# ---- packing, on made-up programs of host steps -----------------------------------------------
@st.composite
def programs(draw):
    """(steps, {slot: (first, last)}, sizes, private): each slot is written at its first step
    and read at every step up to its last."""
    length = draw(st.integers(1, 10))
    count = draw(st.integers(1, 14))
    spans = {}
    for slot in range(count):
        first = draw(st.integers(0, length - 1))
        spans[slot] = (first, draw(st.integers(first, length - 1)))
    steps = [("host", [s for s, (a, b) in spans.items() if a < p <= b],
              [s for s, (a, _) in spans.items() if a == p]) for p in range(length)]
    sizes = draw(st.lists(st.integers(0, 500), min_size=count, max_size=count))
    private = draw(st.sets(st.sampled_from(range(count))))
    return steps, spans, sizes, private


@settings(max_examples=200, deadline=None)
@given(programs())
def test_buffers_live_at_once_never_overlap(program):
    steps, spans, sizes, private = program
    lifetimes = Lifetimes(steps, private, [4] * len(sizes))
    assert {s: (lifetimes.first[s], lifetimes.last[s]) for s in spans} == spans
    offsets, total = pack(lifetimes, sizes)
    assert set(offsets) == set(spans) - private
    assert all(offset % ALIGN == 0 and offset + sizes[s] <= total
               for s, offset in offsets.items())
    for s, (a, b) in spans.items():
        for t, (c, d) in spans.items():
            if s < t and s in offsets and t in offsets and a <= d and c <= b:
                assert (offsets[s] + sizes[s] <= offsets[t] or offsets[t] + sizes[t]
                        <= offsets[s]), (s, t)
    aligned = sum(-(-sizes[s] // ALIGN) * ALIGN for s in offsets)
    assert total <= aligned


def test_a_chain_of_steps_takes_two_buffers():
    """Each value dies as the next is made: storage alternates between two places."""
    steps = [("host", [], [0])] + [("host", [p - 1], [p]) for p in range(1, 6)]
    offsets, total = pack(Lifetimes(steps, (), [4] * 6), [256] * 6)
    assert total == 512
    assert offsets[0] == offsets[2] == offsets[4] != offsets[1] == offsets[3] == offsets[5]


# ---- which kernels may write over an input ---------------------------------------------------
def kernel(*stores, extents=(3, 5)):
    """A perfect loop nest over `extents` around `stores`, each made by store(position)."""
    loops = [ir.Var(f"i{a}") for a in range(len(extents))]
    position = ir.linear(loops, ir.contiguous_strides([ir.const(e) for e in extents]))
    body = tuple(store(position) for store in stores)
    for var, extent in reversed(list(zip(loops, extents))):
        body = (ir.Loop(var, ir.const(extent), body),)
    return ir.Kernel("k", body, {})


def load(slot, index):
    return ir.Load(slot, index, "float32")


def test_only_loads_at_the_stored_position_allow_writing_in_place():
    def add(p):
        return ir.Store(2, p, ir.op("add", ir.op("exp", load(0, p)), load(1, p)))
    assert in_place_candidates(kernel(add)) == (2, [0, 1])

    def shifted(p):  # reads slot 1 at the next position too
        return ir.Store(2, p, ir.op("add", load(0, p), load(1, ir.add(p, ir.const(1)))))
    assert in_place_candidates(kernel(shifted)) == (2, [0])

    def row_sum(p):  # a reduction reads other positions of slot 0
        r = ir.Var("r")
        return ir.Store(2, p, ir.op("mul", load(0, p), ir.Reduce("sum", ((r, ir.const(5)),),
                                                                   load(0, r), "float32")))
    assert in_place_candidates(kernel(row_sum)) == (2, [])


def test_kernels_of_other_shapes_never_write_in_place():
    def plain(p):
        return ir.Store(2, p, load(0, p))

    def accumulating(p):
        return ir.Store(2, p, load(0, p), accumulate=True)

    def transposed(p):  # stored at another position than the loops' own
        i0, i1 = ir.Var("i0"), ir.Var("i1")
        return ir.Store(2, ir.add(ir.mul(i1, ir.const(3)), i0), load(0, p))
    for k in (kernel(accumulating), kernel(plain, plain), kernel(transposed)):
        assert in_place_candidates(k) == (None, [])


def test_new_values_go_over_their_variables_only_where_nothing_can_tell():
    """Slot 0 is a variable, slot 2 its new value: computed in the variable's storage only
    when no step reads the variable later, the kernel reads it in place if at all, and no
    step from that kernel on can fail."""
    def update(p):
        return ir.Store(2, p, ir.op("sub", load(0, p), load(1, p)))

    def read(p):
        return ir.Store(3, p, ir.op("exp", load(0, p)))

    def shifted(p):
        i0, i1 = ir.Var("i0"), ir.Var("i1")
        return ir.Store(2, p, load(0, ir.add(ir.mul(i1, ir.const(3)), i0)))

    def accumulating(p):
        return ir.Store(2, p, load(0, p), accumulate=True)

    def checked_index(p):
        return ir.Store(3, p, load(1, ir.Op("check_index", (p, ir.const(15), ir.const(0)),
                                              "int64")))
    check = ir.Kernel("check", (ir.Check(load(4, ir.const(0)), 0, ir.const(0)),), {})

    def over(*steps):
        lifetimes = Lifetimes([s if isinstance(s, tuple) else ("native", [access(s)])
                               for s in steps],
                              {0, 1, 2}, [4] * 5)
        return lifetimes.writes_over([(2, 0)]) == [(2, 0)]
    assert over(kernel(read), kernel(update))
    assert over(check, kernel(checked_index), kernel(update))
    assert over(("host", [1], [4]), kernel(update), kernel(lambda p: ir.Store(3, p, load(2, p))))
    assert not over(kernel(update), kernel(read))  # the old value is read after
    assert not over(kernel(shifted))  # read at other positions than written
    assert not over(kernel(accumulating))
    assert not over(kernel(update), check)  # a failure after it would leave it changed
    assert not over(kernel(update), kernel(checked_index))
    assert not over(kernel(update), ("host", [1], [4]))


# ---- on the CPU device -------------------------------------------------------------------------
def compiled(outputs, feeds, **options):
    """(session, executable) on device "cpu", compiled op by op (no fusion) unless told."""
    options.setdefault("optimize", "O0")
    sess = gc.Session(outputs[0].graph, device="cpu", **options)
    return sess, sess.compile(outputs, feeds)


def storage(exe, tensor):
    """The array that holds `tensor` in the executable's last plan."""
    return exe.last_plan.arrays[exe.slots.buffers[tensor.node.id, tensor.index]]


def test_intermediates_that_do_not_overlap_share_storage(graph):
    x = gc.placeholder(gc.float32, (1000,), name="x")
    a = gc.exp(x)
    s = gc.sum(a)  # a's last use
    c = x * s  # born after a died: may take a's storage
    d = gc.sin(c)  # reads c only where it writes: may write over it
    out = gc.sum(d)
    sess, exe = compiled([out], [x])
    for _ in range(2):
        xb = uniform(1000)
        [got] = sess.execute(exe, [xb])
        np.testing.assert_allclose(got, np.sum(np.sin(xb * np.exp(xb).sum())), rtol=1e-4)
    assert np.shares_memory(storage(exe, a), storage(exe, c))
    assert np.shares_memory(storage(exe, c), storage(exe, d))
    assert not np.shares_memory(storage(exe, a), storage(exe, s))
    planned, unshared = exe.plan_bytes
    assert planned < unshared


def test_a_kernel_that_reads_elsewhere_does_not_write_over_its_input(graph):
    x = gc.placeholder(gc.float32, (7, 5), name="x")
    u = gc.exp(x)
    xb = uniform(7, 5)
    for view, reference in ((gc.transpose, np.transpose), (lambda t: t[::-1], lambda a: a[::-1])):
        v = view(u)  # u's last use, read at other positions than v's
        sess, exe = compiled([v * 2.0], [x])
        [got] = sess.execute(exe, [xb])
        np.testing.assert_allclose(got, reference(np.exp(xb)) * 2, rtol=1e-6)
        assert not np.shares_memory(storage(exe, u), storage(exe, v))


def test_a_scatter_add_never_writes_over_its_input(graph):
    """The gradient of a gather adds rows into its output through an accumulating store:
    the rows it reads (dying there, of the output's size) keep storage of their own (the
    rules themselves are tested on hand-built kernels above)."""
    x = gc.placeholder(gc.float32, (7, 3), name="x")
    i = gc.placeholder(gc.int32, (7,), name="i")
    table = gc.Variable(uniform(7, 3), name="table")
    rows = gc.exp(x)
    [grad] = gc.grad(gc.sum(gc.gather(table, i) * rows), [table])
    assert grad.node.op == "gather_grad"
    for level in ("O0", "O2"):
        sess, exe = compiled([grad], [x, i], optimize=level)
        for _ in range(2):
            xb, ib = uniform(7, 3), rng.integers(0, 3, 7).astype(np.int32)  # repeated rows
            [got] = sess.execute(exe, [xb, ib])
            want = np.zeros((7, 3), np.float32)
            np.add.at(want, ib, np.exp(xb))
            np.testing.assert_allclose(got, want, rtol=1e-6)
        if level == "O0":
            added = grad.node.inputs[0]
            assert not np.shares_memory(storage(exe, added), storage(exe, grad))


def test_outputs_kept_by_the_caller_stay_intact(graph):
    x = gc.placeholder(gc.float32, (None, 9), name="x")
    h = gc.tanh(x) * 3.0
    outs = [gc.exp(h), gc.sum(h, axis=1), h]
    f = gc.function([x], outs, session=gc.Session(graph, device="cpu"))
    sess = gc.Session(graph, device="cpu")
    for run in (f, lambda xb: sess.run(outs, {x: xb})):
        xs = [uniform(4, 9) for _ in range(3)]
        kept = [run(xs[0]), run(xs[1])[0][1:3]]  # all three outputs, a view of one
        run(xs[2])
        run(xs[2])
        h0, h1 = np.tanh(xs[0]) * 3, np.tanh(xs[1]) * 3
        for got, want in zip(kept[0], [np.exp(h0), h0.sum(axis=1), h0]):
            np.testing.assert_allclose(got, want, rtol=1e-5)
        np.testing.assert_allclose(kept[1], np.exp(h1)[1:3], rtol=1e-5)


def test_an_mlp_train_step_needs_less_than_a_buffer_per_tensor(graph):
    x = gc.placeholder(gc.float32, (None, 20), name="x")
    y = gc.placeholder(gc.int32, (None,), name="y")
    w1, w2 = gc.Variable(uniform(20, 16)), gc.Variable(uniform(16, 3))
    logits = gc.relu(x @ w1) @ w2
    loss = gc.mean(gc.nn.sparse_softmax_cross_entropy(logits, y))
    grads = gc.grad(loss, [w1, w2])
    sess = gc.Session(graph, device="cpu")
    ref = gc.Session(graph, device="reference")
    f = gc.function([x, y], loss, updates=[(w, w - 0.1 * g) for w, g in zip([w1, w2], grads)],
                    session=sess)
    g = gc.function([x, y], loss, updates=[(w, w - 0.1 * g) for w, g in zip([w1, w2], grads)],
                    session=ref)
    for _ in range(3):
        xb, yb = uniform(13, 20), rng.integers(0, 3, 13).astype(np.int32)
        np.testing.assert_allclose(f(xb, yb), g(xb, yb), rtol=1e-5)
    for w in (w1, w2):
        np.testing.assert_allclose(sess.get_value(w), ref.get_value(w), rtol=1e-5, atol=1e-6)
    planned, unshared = f._exe.plan_bytes
    assert planned < unshared


def test_checking_numerics_keeps_every_buffer_apart(graph):
    x = gc.placeholder(gc.float32, (50,), name="x")
    a = gc.exp(x)
    c = gc.sin(a * gc.sum(a))
    sess, exe = compiled([gc.sum(c)], [x], check_numerics=True)
    sess.execute(exe, [uniform(50)])
    planned, unshared = exe.plan_bytes
    assert planned == unshared


@settings(max_examples=int(os.environ.get("GRAPHC_HYPOTHESIS_EXAMPLES", 25)), deadline=None)
@given(random_graphs(), st.sampled_from(["O0", "O2"]))
def test_random_graphs_run_on_cpu_as_on_the_reference(case, level):
    """Two runs with different values (buffers reused from the first), each against the
    reference; the first run's outputs are still what they were after the second."""
    graph = case.outputs[0].graph
    sess = gc.Session(graph, device="cpu", optimize=level)
    ref = gc.Session(graph, device="reference")
    feeds = [case.feed, {x: np.random.default_rng(i).uniform(-2, 2, v.shape).astype(v.dtype)
                         for i, (x, v) in enumerate(case.feed.items())}]
    first = sess.run(case.outputs, feeds[0])
    kept = [np.array(a) for a in first]
    for feed in feeds:
        assert_same_values(ref.run(case.outputs, feed), sess.run(case.outputs, feed),
                           case.outputs, "\n".join(case.lines))
    for got, want in zip(first, kept):
        np.testing.assert_array_equal(got, want)
