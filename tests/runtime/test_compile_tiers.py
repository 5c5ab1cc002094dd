"""A program the disk cache lacks starts on quickly compiled code while its chosen pipeline
compiles in a forked child: both tiers compute the same values, the chosen code swaps in, the
disk cache gets only it, a damaged entry is rebuilt, and cache keys follow the host CPU."""
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.codegen.llvm import jit
from graphc.runtime import forked_compile, llvm_objects
from graphc.runtime.kernel_cache import GraphcWarning, KernelCache, default_cache
from graphc.targets import cpu

pytestmark = pytest.mark.skipif(not forked_compile.worthwhile(),
                                reason="the quick tier needs fork and two cores")
SWAP_TIMEOUT_S = 120


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHC_CACHE", raising=False)
    return tmp_path / "cache"


def mlp_step():
    """A function of run-time batch size: matrix products, an odd width, exp, max, a sum."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None, 37), name="x")
        w = gc.placeholder(gc.float32, (37, 19), name="w")
        h = gc.relu(x @ w)
        out = gc.sum(gc.exp(-h) * h, axis=1) + gc.max(h @ gc.transpose(w), axis=1)
        return gc.function([x, w], out, session=gc.Session(g, device="cpu"))


def expected(x, w):
    with np.errstate(invalid="ignore"):  # the inf and NaN cases
        h = np.maximum(x @ w, 0)
        return (np.exp(-h) * h).sum(axis=1) + (h @ w.T).max(axis=1)


def inputs(rng, batch):
    return (rng.standard_normal((batch, 37)).astype(np.float32),
            rng.standard_normal((37, 19)).astype(np.float32))


def until_swapped(f, args):
    deadline = time.monotonic() + SWAP_TIMEOUT_S
    while f._exe.library.quick:
        assert time.monotonic() < deadline, "the chosen code never swapped in"
        time.sleep(0.05)
        f(*args)


def test_both_tiers_agree_and_the_chosen_code_swaps_in(fresh_cache, tmp_path):
    # a new process: no GEMM compiled or loaded yet, as in a user's first compile
    proc = subprocess.run([sys.executable, __file__, str(tmp_path / "go")], capture_output=True,
                          text=True, timeout=2 * SWAP_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["swapped"]


def hold_children(go):
    """The forked children compiling the program and the GEMM (levels 3 and 2: not the
    pool's) wait until the file `go` exists: until then runs are the quick tier's."""
    parent, compile_object = os.getpid(), cpu.compile_object

    def compile_when_told(text, pipeline):
        deadline = time.monotonic() + SWAP_TIMEOUT_S / 2
        while (os.getpid() != parent and pipeline.get("level") in (2, 3)
               and not os.path.exists(go) and time.monotonic() < deadline):
            time.sleep(0.01)
        return compile_object(text, pipeline)
    cpu.compile_object = compile_when_told


def check_tiers(go):
    hold_children(go)
    rng = np.random.default_rng()
    f = mlp_step()
    library = f._exe.library
    assert library.quick
    assert [gemm.name for gemm in library._quick_gemms] == ["gemm float32"]
    cases = [inputs(rng, batch) for batch in (1, 13, 64, 0)]
    cases[1][0][3, 5] = np.inf  # inf through the matrix product: NaN and inf rows alike
    cases[1][0][7, 0] = np.nan
    cases[1][0][2, :] = -0.0
    quick = [f(*args) for args in cases]
    assert library.quick
    assert default_cache().get(library._key) is None  # the quick code is never stored
    open(go, "w").close()
    until_swapped(f, cases[0])
    assert library._quick_gemms == []
    chosen = [f(*args) for args in cases]
    for args, q, c in zip(cases, quick, chosen):
        assert q.shape == c.shape == (args[0].shape[0],)
        np.testing.assert_allclose(q, expected(*args), rtol=2e-5, atol=2e-5)
        # the same operations; only where LLVM fuses a multiply and add, or sums a GEMM's
        # products in another order, may the last bits differ
        np.testing.assert_allclose(c, q, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np.isnan(c), np.isnan(q))
    print("swapped")


def test_the_cache_holds_the_chosen_code_and_a_new_function_loads_it(fresh_cache):
    rng = np.random.default_rng()
    f = mlp_step()
    args = inputs(rng, 5)
    until_swapped(f, args)
    code = f._exe.library.code
    assert default_cache().get(f._exe.library._key) == jit.compile_ir(code.text, **code.pipeline)
    again = mlp_step()
    assert not again._exe.library.quick
    np.testing.assert_allclose(again(*args), expected(*args), rtol=2e-5, atol=2e-5)


def test_a_damaged_program_entry_is_rebuilt(fresh_cache):
    rng = np.random.default_rng()
    f = mlp_step()
    until_swapped(f, inputs(rng, 3))
    entry = KernelCache(fresh_cache).path(f._exe.library._key)
    with open(entry, "rb") as stored:
        data = bytearray(stored.read())
    data[len(data) // 2] ^= 0xFF
    with open(entry, "wb") as out:
        out.write(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = mlp_step()
    assert any(issubclass(w.category, GraphcWarning) and "corrupt" in str(w.message)
               for w in caught)
    assert rebuilt._exe.library.quick  # rebuilt as any missing program: quick tier first
    args = inputs(rng, 11)
    np.testing.assert_allclose(rebuilt(*args), expected(*args), rtol=2e-5, atol=2e-5)
    until_swapped(rebuilt, args)
    assert not mlp_step()._exe.library.quick  # whole again


def test_a_process_forked_meanwhile_leaves_the_compiles_to_their_parent(fresh_cache):
    f = mlp_step()
    assert f._exe.library.quick  # its child is compiling
    pid = os.fork()
    if pid == 0:  # ends as a process forked from a user's would: nothing to compile at exit
        status = 1
        try:
            cpu.compile_object = lambda *args: os._exit(3)
            llvm_objects._finish()
            status = 0
        finally:
            os._exit(status)
    assert os.waitpid(pid, 0)[1] == 0
    args = inputs(np.random.default_rng(), 9)
    until_swapped(f, args)
    np.testing.assert_allclose(f(*args), expected(*args), rtol=2e-5, atol=2e-5)


def test_cache_keys_follow_the_host_cpu(monkeypatch):
    gemm = cpu.gemm_code("float32")
    keys = {llvm_objects.object_key("program", "same kernels"), llvm_objects.shared_key(gemm)}
    triple, name, features = jit.host()
    other = features.replace("+avx512f", "-avx512f") if "+avx512f" in features else \
        features + ",+avx512f"
    for host in ((triple, name, other), (triple, "other-cpu", features)):
        monkeypatch.setattr(jit, "host", lambda host=host: host)
        keys |= {llvm_objects.object_key("program", "same kernels"),
                 llvm_objects.shared_key(gemm)}
    assert len(keys) == 6


def test_a_program_of_vector_code_alone_is_compiled_once(fresh_cache):
    """Its pipeline has the fast code generator already: quick code would cost as much."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(gc.float32, (None,), name="x")
        y = x
        for _ in range(7):
            y = y * 1.5 + 0.25
        f = gc.function([x], y, session=gc.Session(g, device="cpu"))
    assert f._exe.library.code.pipeline.get("codegen") == 0
    assert not f._exe.library.quick
    xb = np.random.default_rng().standard_normal(1001).astype(np.float32)
    expected_y = xb
    for _ in range(7):
        expected_y = expected_y * np.float32(1.5) + np.float32(0.25)
    np.testing.assert_allclose(f(xb), expected_y, rtol=1e-5)
    assert default_cache().get(f._exe.library._key) is not None


if __name__ == "__main__":
    check_tiers(sys.argv[1])
