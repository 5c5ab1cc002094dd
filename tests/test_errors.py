"""Every error a user can cause: its class, what its message says (the node, what was expected
and what came, and the line of the user's code that created the node), and that the session
and its variables are as they were afterwards.

A line that an error must point at ends with a `# @tag` comment; `where(tag)` gives its
"test_errors.py:<line>". Cases that could crash the process (an allocation too large for the
machine, corrupt files) run in a subprocess, which must end with a clean GraphcError.
"""
import inspect
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphc as gc

HERE = os.path.basename(__file__)
_LINES = open(__file__).read().splitlines()


def where(tag):
    """'test_errors.py:<n>' for the one line of this file that ends with '# @tag'."""
    found = [i + 1 for i, line in enumerate(_LINES) if line.rstrip().endswith(f"# @{tag}")]
    assert len(found) == 1, f"tag {tag!r} is on lines {found}"
    return f"{HERE}:{found[0]}"


def check(err, *parts):
    """`err` is a GraphcError whose message contains every one of `parts`, and shows dims known
    only at run time as None (as Keras does), never by their symbols' names (x.0)."""
    assert isinstance(err, gc.GraphcError), type(err)
    message = str(err)
    for part in parts:
        assert part in message, f"{part!r} is not in the message:\n{message}"
    assert not re.search(r"[A-Za-z_]\.\d", message), message


@pytest.fixture(autouse=True)
def _every_test_in_a_fresh_graph(graph):
    return graph


@pytest.fixture
def rng():
    return np.random.default_rng()


def test_every_error_class_is_a_graphc_error():
    classes = [c for _, c in inspect.getmembers(gc.errors, inspect.isclass)
               if issubclass(c, Exception)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, gc.GraphcError), cls
    assert issubclass(gc.DeviceError, gc.ResourceError)



# ---- each error is also the built-in exception a numpy or Keras user catches ----------------
def test_shape_dtype_and_feed_errors_are_value_errors_and_dtype_errors_type_errors():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    i = gc.placeholder(gc.int32, (3,), name="i")
    with pytest.raises(ValueError) as info:
        x + gc.placeholder(gc.float32, (4,), name="y")
    assert isinstance(info.value, gc.ShapeError)
    for build in (lambda: gc.exp(i), lambda: gc.logical_and(x, x)):
        with pytest.raises(TypeError) as info:
            build()
        assert isinstance(info.value, gc.DTypeError) and isinstance(info.value, ValueError)
    sess = gc.Session()
    for feed in ({x: np.zeros((2, 4), np.float32)}, {i: np.array([0.5, 1.0, 2.0])}, {}):
        with pytest.raises(ValueError) as info:
            sess.run(x[:, 0] * gc.cast(i[0], gc.float32), feed)
        assert isinstance(info.value, gc.FeedError), feed
    with pytest.raises(IndexError) as info:
        x[:, 3]
    assert isinstance(info.value, gc.IndexError_)


@pytest.mark.parametrize("kind", ["checkpoint", "graph file", "model file", "weights file"])
def test_a_missing_file_is_a_file_not_found_error(kind, tmp_path):
    import graphc.frontend as gk
    model = gk.Sequential([gk.layers.Input((2,)), gk.layers.Dense(1)])
    load = {"checkpoint": gc.Session().restore, "graph file": gc.load,
            "model file": gk.load_model, "weights file": model.load_weights}[kind]
    path = str(tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as info:
        load(path)
    assert isinstance(info.value, gc.FileNotFoundError_)
    assert isinstance(info.value, gc.CheckpointError)  # as it was before it was also this
    assert info.value.filename == path
    assert str(info.value) == f"no {kind} at {path}"

# ---- shapes and dtypes fail when the graph is built ----------------------------------------
def test_shape_mismatch_fails_at_build():
    x = gc.placeholder(gc.float32, (3, 4), name="x")
    y = gc.placeholder(gc.float32, (5,), name="y")
    with pytest.raises(gc.ShapeError) as info:
        gc.add(x, y, name="total")  # @named-add
    check(info.value, "node 'total' [add]", "(3, 4)", "(5,)", "sizes 4 and 5",
          where("named-add"))
    with pytest.raises(gc.ShapeError) as info:
        x + y  # @operator-add
    check(info.value, "node 'add' [add]", "(3, 4)", "(5,)", where("operator-add"))
    assert len(x.graph) == 2  # nothing was added


def test_matmul_inner_dims_fail_at_build():
    a = gc.placeholder(gc.float32, (None, 4), name="a")
    b = gc.Variable(np.zeros((5, 7), np.float32), name="b")
    with pytest.raises(gc.ShapeError) as info:
        a @ b  # @matmul
    check(info.value, "[matmul]", "(None, 4)", "(5, 7)", "inner dims 4 and 5", where("matmul"))


@pytest.mark.parametrize("build, words", [
    (lambda f, i: gc.logical_and(f, f), ["[logical_and]", "bool", "float32"]),
    (lambda f, i: gc.exp(i), ["[exp]", "floating-point", "int32"]),
    (lambda f, i: gc.where(f, f, f), ["[where]", "bool condition", "float32"]),
    (lambda f, i: gc.matmul(f > 0, f > 0), ["[matmul]", "bool"]),
])
def test_dtype_mismatch_fails_at_build(build, words):
    f = gc.placeholder(gc.float32, (2, 2), name="f")
    i = gc.placeholder(gc.int32, (2, 2), name="i")
    with pytest.raises(gc.DTypeError) as info:
        build(f, i)
    lambda_line = f"{HERE}:{build.__code__.co_firstlineno}"
    check(info.value, *words, lambda_line)


# ---- feeds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, words", [
    (np.zeros((2, 4), np.float32), ["shape (2, 4)", "expected (None, 3)"]),
    (np.zeros((3,), np.float32), ["shape (3,)", "expected (None, 3)"]),
    (np.zeros((1, 1, 3), np.float32), ["shape (1, 1, 3)"]),
    ([[1.0, 2.0, 3.0], [4.0]], ["not an array"]),
    (np.array([["a", "b", "c"]]), ["dtype <U1", "expected float32"]),
])
def test_feed_of_wrong_shape_or_kind(value, words):
    x = gc.placeholder(gc.float32, (None, 3), name="x")  # @feed-x
    sess = gc.Session()
    with pytest.raises(gc.FeedError) as info:
        sess.run(x * 2, {x: value})
    check(info.value, "node 'x' [placeholder]", "value fed for 'x'", *words, where("feed-x"))


@pytest.mark.parametrize("value, words", [
    (np.array([1.5, 2.0]), ["dtype float64", "expected int32", "lose information"]),
    (np.array([1, 2**40], np.int64), ["dtype int64", "expected int32", "lose information"]),
    (np.array([-2**31 - 1, 0], np.int64), ["dtype int64", "expected int32"]),
    (np.array([True, False]), None),  # widening casts are fine
    (np.array([7, -2**31], np.int64), None),  # int64 values that fit int32
])
def test_lossy_feed_is_refused(value, words):
    i = gc.placeholder(gc.int32, (2,), name="i")  # @feed-i
    sess = gc.Session()
    if words is None:
        np.testing.assert_array_equal(sess.run(i + 0, {i: value}), value.astype(np.int32))
        return
    with pytest.raises(gc.FeedError) as info:
        sess.run(i + 0, {i: value})
    check(info.value, "node 'i' [placeholder]", *words, where("feed-i"))


def test_missing_feed_names_the_placeholder(rng):
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    labels = gc.placeholder(gc.int32, (None,), name="labels")  # @labels
    loss = gc.mean(x) + gc.cast(gc.sum(labels), gc.float32)
    sess = gc.Session()
    with pytest.raises(gc.FeedError) as info:
        sess.run(loss, {x: rng.normal(size=(2, 3)).astype(np.float32)})
    check(info.value, "placeholder 'labels' needs a value", "feed_dict", "int32[None]",
          where("labels"))


def test_symbolic_dims_that_disagree_fail_at_run_time(rng):
    a = gc.placeholder(gc.float32, (None, 3), name="a")
    b = gc.placeholder(gc.float32, (None, 3), name="b")
    total = a + b  # @runtime-add
    sess = gc.Session()
    with pytest.raises(gc.ShapeError) as info:
        sess.run(total, {a: np.ones((2, 3)), b: np.ones((5, 3))})
    check(info.value, "[add]", "at run time", "(2, 3)", "(5, 3)", where("runtime-add"))
    arrays = rng.normal(size=(2, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(sess.run(total, {a: arrays[0], b: arrays[1]}), arrays.sum(0))



def test_messages_show_run_time_dims_as_none_and_dumps_by_name():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    z = gc.placeholder(gc.float32, (None, 4), name="z")
    for build, words in [
        (lambda: x + z, ["cannot add shapes (None, 3) and (None, 4)"]),
        (lambda: gc.sum(x, axis=2), ["(tensor 'x', shape (None, 3))"]),
        (lambda: x @ gc.placeholder(gc.float32, (5, 2)), ["matmul of (None, 3) and (5, 2)"]),
        (lambda: gc.random.normal(x.shape), ["random shape must be ints, got (None, 3)"]),
    ]:
        with pytest.raises(gc.ShapeError) as info:
            build()
        check(info.value, *words)  # check() also refuses the name 'x.0'
    assert "float32[x.0, 3]" in gc.dump(x * 2.0)  # dumps name the dim, as the README shows

def test_bad_feed_keys():
    x = gc.placeholder(gc.float32, (2,), name="x")
    sess = gc.Session()
    with pytest.raises(gc.GraphcError) as info:
        sess.run(x, {3: np.ones(2)})
    check(info.value, "feed_dict keys must be tensors or tensor names", "got 3")


def test_feed_of_an_unknown_tensor_name():
    x = gc.placeholder(gc.float32, (2,), name="x")
    with pytest.raises(gc.GraphcError, match="'nope'"):
        gc.Session().run(x, {"nope": np.ones(2)})


# ---- integers that do not fit int32 ---------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: gc.constant([1, 2**40], dtype=gc.int32),
    lambda: gc.constant(np.array([2**31]), dtype="int32"),
    lambda: gc.Variable(np.array([2**40]), dtype=gc.int32),
])
def test_int64_values_that_overflow_int32_are_refused(make):
    with pytest.raises(gc.DTypeError, match="int32"):
        make()


def test_python_int_that_overflows_the_tensor_dtype_is_refused():
    i = gc.placeholder(gc.int32, (2,), name="i")
    with pytest.raises(gc.DTypeError, match="int32"):
        i + 2**40


# ---- graphs ---------------------------------------------------------------------------------
def test_tensors_of_two_graphs_cannot_be_combined(graph):
    x = gc.placeholder(gc.float32, (3,), name="x")
    other = gc.Graph()
    with other.as_default():
        z = gc.placeholder(gc.float32, (3,), name="z")  # @other-z
    with pytest.raises(gc.GraphMismatchError) as info:
        x + z
    check(info.value, "'z'", "another graph")
    with pytest.raises(gc.GraphMismatchError) as info:
        gc.Session(graph=graph).run(z, {z: np.ones(3)})
    check(info.value, "tensor 'z' belongs to another graph", where("other-z"))
    with pytest.raises(gc.GraphMismatchError) as info:
        gc.grad(gc.sum(x), [z])
    check(info.value, "'z' belongs to another graph")


def test_graph_mismatch_at_build_names_the_user_line():
    x = gc.placeholder(gc.float32, (3,), name="x")
    with gc.Graph().as_default():
        z = gc.placeholder(gc.float32, (3,), name="z")
    with pytest.raises(gc.GraphMismatchError) as info:
        x + z  # @mixed-add
    check(info.value, "'z'", where("mixed-add"))


# ---- gradients ------------------------------------------------------------------------------
def test_gradient_of_an_integer_tensor():
    i = gc.placeholder(gc.int32, (4,), name="i")
    total = gc.sum(i)  # @int-sum
    with pytest.raises(gc.GradientError) as info:
        gc.grad(total, [i])
    check(info.value, "'sum'", "int32", "no gradient", where("int-sum"))
    x = gc.placeholder(gc.float32, (4,), name="x")
    with pytest.raises(gc.GradientError) as info:
        gc.grad(gc.sum(x), [i])
    check(info.value, "x 'i' is int32", "no gradient")


def test_gradient_of_a_non_scalar_needs_grad_ys():
    x = gc.placeholder(gc.float32, (None, 3), name="x")
    y = x * 2  # @vector-y
    with pytest.raises(gc.GradientError) as info:
        gc.grad(y, [x])
    check(info.value, "(None, 3)", "scalar", "grad_ys", where("vector-y"))


def test_unconnected_gradient_raises_unless_zero_is_asked_for(rng):
    x = gc.placeholder(gc.float64, (3,), name="x")
    W = gc.Variable(rng.normal(size=(2, 5)), name="W")  # @unconnected-W
    loss = gc.sum(gc.square(x))
    with pytest.raises(gc.GradientError) as info:
        gc.grad(loss, [x, W])
    check(info.value, "does not depend on 'W'", "unconnected='zero'", where("unconnected-W"))
    gx, gW = gc.grad(loss, [x, W], unconnected="zero")
    xv = rng.normal(size=3)
    got_x, got_W = gc.Session().run([gx, gW], {x: xv})
    np.testing.assert_allclose(got_x, 2 * xv)
    np.testing.assert_array_equal(got_W, np.zeros((2, 5)))
    with pytest.raises(gc.GradientError, match="'raise' or 'zero'"):
        gc.grad(loss, [W], unconnected="none")


# ---- a failed run changes nothing -----------------------------------------------------------
@pytest.mark.parametrize("bad, node, words", [
    (-1.0, "logp", ["NaN"]),
    (0.0, "logp", ["1 Inf"]),
    (np.nan, "halve", ["NaN"]),  # a fed NaN is found where it is first computed with
])
def test_check_numerics_names_the_first_bad_node(bad, node, words, rng):
    x = gc.placeholder(gc.float64, (None,), name="x")
    W = gc.Variable(rng.normal(size=2), name="W")
    halved = gc.mul(x, 0.5, name="halve")  # @halve
    logp = gc.log(halved, name="logp")  # @logp
    later = gc.sqrt(logp + 5.0, name="later")
    update = gc.assign_add(W, gc.sum(later))  # depends on the bad values
    before = gc.Session().run(W)
    sess = gc.Session(check_numerics=True)
    feed = np.abs(rng.normal(size=3)) + 1.0
    feed[1] = bad
    with pytest.raises(gc.NumericsError) as info:
        sess.run([later, update], {x: feed})
    check(info.value, f"node '{node}'", *words, "check_numerics", where(node))
    np.testing.assert_array_equal(sess.get_value(W), before)
    # the session goes on working and applies the next good run's update
    good = np.abs(rng.normal(size=5)) + 1.0
    got, _ = sess.run([later, update], {x: good})
    np.testing.assert_allclose(got, np.sqrt(np.log(good * 0.5) + 5.0))
    np.testing.assert_allclose(sess.get_value(W), before + got.sum())


def test_without_check_numerics_nan_is_a_value():
    x = gc.placeholder(gc.float32, (2,), name="x")
    got = gc.Session().run(gc.log(x), {x: np.array([-1.0, 1.0], np.float32)})
    assert np.isnan(got[0]) and got[1] == 0


def test_a_run_that_fails_after_an_assign_leaves_the_variable_unchanged(rng):
    W = gc.Variable(rng.normal(size=3), name="W")
    V = gc.Variable(rng.normal(size=3), name="V")
    index = gc.placeholder(gc.int32, (None,), name="index")
    # the assignments are evaluated before the gather that fails, which reads W's new value
    grow = gc.group(gc.assign(V, V * 3.0))
    picked = gc.gather(gc.assign_add(W, 1.0), index)  # @gather
    sess = gc.Session()
    w0, v0 = sess.get_value(W), sess.get_value(V)
    with pytest.raises(gc.errors.IndexError_) as info:
        sess.run([grow, picked], {index: np.array([0, 3], np.int32)})
    check(info.value, "[gather]", "index 3", "0 <= index < 3", "(3,)", where("gather"))
    assert isinstance(info.value, IndexError)
    np.testing.assert_array_equal(sess.get_value(W), w0)
    np.testing.assert_array_equal(sess.get_value(V), v0)
    _, got = sess.run([grow, picked], {index: np.array([2, 0], np.int32)})
    np.testing.assert_allclose(got, (w0 + 1.0)[[2, 0]])
    np.testing.assert_allclose(sess.get_value(W), w0 + 1.0)
    np.testing.assert_allclose(sess.get_value(V), v0 * 3.0)


def test_assigning_twice_in_one_run(rng):
    W = gc.Variable(rng.normal(size=(2,)), name="W")
    first = gc.assign(W, W + 1.0, name="first")
    second = gc.assign(W, W * 2.0, name="second")  # @second
    sess = gc.Session()
    w0 = sess.get_value(W)
    with pytest.raises(gc.GraphcError) as info:
        sess.run(gc.group(first, second))
    check(info.value, "variable 'W' is assigned twice in one run", "'first'", "'second'",
          where("second"))
    np.testing.assert_array_equal(sess.get_value(W), w0)
    sess.run(first)
    sess.run(second)
    np.testing.assert_allclose(sess.get_value(W), (w0 + 1.0) * 2.0)


# ---- resources ------------------------------------------------------------------------------
def test_allocation_over_the_memory_limit(monkeypatch, rng):
    a = gc.placeholder(gc.float32, (None, 1), name="a")
    b = gc.placeholder(gc.float32, (1, None), name="b")
    W = gc.Variable(np.ones(2, np.float32), name="W")
    outer = gc.mul(a, b, name="outer")  # @outer
    update = gc.assign(W, W + gc.sum(outer))
    sess = gc.Session()
    monkeypatch.setenv("GRAPHC_MEMORY_LIMIT", "1000000")
    with pytest.raises(gc.ResourceError) as info:
        sess.run([update, outer], {a: np.ones((1000, 1)), b: np.ones((1, 1000))})
    check(info.value, "node 'outer' [mul]", "4,000,000 bytes", "1,000,000 bytes",
          where("outer"))
    np.testing.assert_array_equal(sess.get_value(W), np.ones(2))
    av, bv = rng.normal(size=(7, 1)), rng.normal(size=(1, 9))
    _, got = sess.run([update, outer], {a: av, b: bv})
    np.testing.assert_allclose(got, av * bv, rtol=1e-6)
    np.testing.assert_allclose(sess.get_value(W), 1 + (av * bv).sum(dtype=np.float32),
                               rtol=1e-5)


def run_python(code, tmp_path):
    """Run `code` in a fresh interpreter whose address space is capped, so a regression that
    really allocates fails with MemoryError instead of exhausting the machine."""
    prelude = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        import numpy as np
        import graphc as gc
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("GRAPHC_MEMORY_LIMIT", None)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def assert_clean_error(proc, error, *parts):
    """The process ended with exit code 1 on an uncaught `error` whose message has `parts`."""
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert last.startswith(f"graphc.errors.{error}: "), proc.stderr[-2000:]
    for part in parts:
        assert part in last, (part, last)


HUGE = (100000, 100000, 100)  # 4e12 bytes of float32


@pytest.mark.parametrize("source", ["x = gc.placeholder(gc.float32, (1,), name='x')",
                                    "x = gc.constant([1.0], name='x')"])
def test_allocation_too_large_for_the_machine(source, tmp_path):
    proc = run_python(f"""
        {source}
        huge = gc.broadcast_to(x, {HUGE}) * 2.0
        small = x + 1.0
        sess = gc.Session()
        try:
            sess.run(huge, {{x: np.ones(1, np.float32)}} if x.op == "placeholder" else None)
        except gc.ResourceError:
            assert sess.run(small, {{x: np.ones(1, np.float32)}}) == 2.0  # still works
            raise
    """, tmp_path)
    assert_clean_error(proc, "ResourceError", "float32[100000, 100000, 100]",
                       "4,000,000,000,000 bytes", "<string>:")


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
@pytest.mark.parametrize("kind", ["checkpoint", "graph file"])
def test_corrupt_files_give_a_clean_error(kind, damage, tmp_path):
    save_and_load = {
        "checkpoint": ("sess.save('f')", "sess.restore('f')"),
        "graph file": ("gc.save('f', loss, session=sess)", "gc.load('f')"),
    }[kind]
    proc = run_python(f"""
        W = gc.Variable(np.arange(1000.0), name="W")
        loss = gc.sum(W * W)
        sess = gc.Session()
        {save_and_load[0]}
        data = open('f', 'rb').read()
        damaged = {{
            "flip": lambda: data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF])
                            + data[len(data) // 2 + 1:],
            "truncate": lambda: data[:len(data) * 2 // 3],
            "empty": lambda: b"",
            "garbage": lambda: bytes(range(256)) * 8,
        }}[{damage!r}]()
        open('f', 'wb').write(damaged)
        sess.set_value(W, np.ones(1000))
        try:
            {save_and_load[1]}
        except gc.CheckpointError:
            assert (sess.get_value(W) == 1).all()  # nothing changed
            raise
    """, tmp_path)
    assert_clean_error(proc, "CheckpointError", ": f", "corrupt")


def test_cuda_without_a_gpu_and_unknown_devices():
    try:  # builds anywhere; runs only with pycuda and a GPU
        assert gc.Session(device="cuda").run(gc.constant(2.0) * 3.0) == 6.0
    except gc.DeviceError as error:
        check(error, "device 'cuda' needs pycuda and an NVIDIA GPU")
    with pytest.raises(gc.DeviceError) as info:
        gc.Session(device="tpu")
    check(info.value, "unknown device 'tpu'", "'reference'", "'cpu'", "'cuda'")
    for device in ("cpu", "reference"):
        assert gc.Session(device=device).run(gc.constant(2.0) * 3.0) == 6.0


# ---- misuse ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fetch, shown", [(3, "3"), (None, "None"), (np.ones(2), "array"),
                                          ([1.5], "1.5"), ({"a": "loss"}, "'loss'")])
def test_fetching_a_non_tensor(fetch, shown):
    gc.placeholder(gc.float32, (2,), name="loss")
    with pytest.raises(gc.GraphcError) as info:
        gc.Session().run(fetch)
    check(info.value, f"cannot fetch {shown}", "fetches are tensors")


def test_symbolic_tensors_have_no_truth_value_length_or_iteration():
    x = gc.placeholder(gc.float32, (None, 3), name="x")  # @x
    with pytest.raises(gc.GraphcError) as info:
        if x > 0:
            pass
    check(info.value, "[greater]", "no truth value", "gc.where", HERE)
    with pytest.raises(gc.GraphcError) as info:
        bool(x)
    check(info.value, "tensor 'x' is symbolic and has no truth value", where("x"))
    with pytest.raises(gc.GraphcError) as info:
        len(x)
    check(info.value, "len() of tensor 'x'", "(None, 3)")
    with pytest.raises(gc.GraphcError) as info:
        list(x)
    check(info.value, "cannot be iterated")


def test_closed_session():
    x = gc.constant(1.0)
    sess = gc.Session()
    sess.close()
    with pytest.raises(gc.GraphcError, match="closed"):
        sess.run(x)
