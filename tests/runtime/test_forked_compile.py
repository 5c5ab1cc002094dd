"""Compiling in a forked child: the child's object is the one in-process compiling makes, and
every way the child can fail (raising, killed, stuck, no fork) ends in an in-process compile."""
import ctypes
import os
import signal
import time

import numpy as np
import pytest
from llvmlite import ir as ll

from graphc.codegen.llvm import jit
from graphc.errors import GraphcError
from graphc.runtime import forked_compile
from graphc.runtime.forked_compile import ForkedCompile


def scale_module(factor):
    """`void scale(double* x, i64 n)`: x[i] *= factor."""
    module = ll.Module(name="scale")
    module.triple = jit.host()[0]
    f64 = ll.DoubleType()
    i64 = ll.IntType(64)
    fn = ll.Function(module, ll.FunctionType(ll.VoidType(), [f64.as_pointer(), i64]), "scale")
    x, n = fn.args
    entry, body, done = (fn.append_basic_block(name) for name in ("entry", "body", "done"))
    b = ll.IRBuilder(entry)
    b.cbranch(b.icmp_signed(">", n, i64(0), name="any"), body, done)
    b.position_at_end(body)
    i = b.phi(i64, name="i")
    i.add_incoming(i64(0), entry)
    at = b.gep(x, [i], name="at")
    b.store(b.fmul(b.load(at, name="xi"), f64(factor), name="scaled"), at)
    following = b.add(i, i64(1), name="next")
    i.add_incoming(following, body)
    b.cbranch(b.icmp_signed("<", following, n, name="more"), body, done)
    b.position_at_end(done)
    b.ret_void()
    return str(module)


def run_scale(code, n):
    x = np.random.default_rng(n).standard_normal(n)
    expected = x * 3.0
    library = jit.load_object(code)   # kept while its code runs
    library.function("scale", None, ctypes.c_void_p, ctypes.c_int64)(x.ctypes.data, n)
    np.testing.assert_array_equal(x, expected)



class Recorder:
    """make_ir that notes which process built the IR and can misbehave in the child only."""

    def __init__(self, tmp_path, in_child=None):
        self.log = tmp_path / "pids"
        self.log.write_text("")
        self.parent = os.getpid()
        self.in_child = in_child

    def __call__(self):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if os.getpid() != self.parent and self.in_child:
            self.in_child()
        return scale_module(3.0)

    def pids(self):
        return [int(line) for line in self.log.read_text().split()]


@pytest.mark.skipif(not forked_compile.worthwhile(), reason="needs fork and two cores")
def test_the_child_compiles_what_this_process_would(tmp_path):
    make_ir = Recorder(tmp_path)
    code = ForkedCompile(make_ir).result()
    assert code == jit.compile_ir(scale_module(3.0))
    (builder,) = make_ir.pids()
    assert builder != os.getpid()   # built and compiled in the child only
    for n in (0, 1, 7, 1023):
        run_scale(code, n)


def test_pipeline_options_reach_the_child():
    pipeline = {"level": 2, "unroll": False}
    code = ForkedCompile(lambda: scale_module(3.0), **pipeline).result()
    assert code == jit.compile_ir(scale_module(3.0), **pipeline)


def hang():
    time.sleep(60)


@pytest.mark.parametrize("misbehave", [
    lambda: 1 / 0,                                    # raises
    lambda: os.kill(os.getpid(), signal.SIGKILL),     # killed
    lambda: os._exit(0),                              # exits "well" and writes nothing
    hang,                                             # stuck past the timeout
])
def test_a_failing_child_leaves_the_compile_to_this_process(tmp_path, monkeypatch, misbehave):
    monkeypatch.setattr(forked_compile, "CHILD_TIMEOUT_S", 1.0)
    make_ir = Recorder(tmp_path, in_child=misbehave)
    start = time.monotonic()
    code = ForkedCompile(make_ir).result()
    assert time.monotonic() - start < 30
    assert os.getpid() in make_ir.pids()
    run_scale(code, 1023)


def test_without_fork_this_process_compiles(tmp_path, monkeypatch):
    def no_fork():
        raise OSError("fork refused")
    monkeypatch.setattr(os, "fork", no_fork)
    make_ir = Recorder(tmp_path)
    code = ForkedCompile(make_ir).result()
    assert make_ir.pids() == [os.getpid()]
    run_scale(code, 7)


def test_ir_that_does_not_verify_raises_here():
    with pytest.raises(GraphcError, match="does not verify"):
        ForkedCompile(lambda: "define void @f() {\nentry:\n  br label %nowhere\n}\n").result()


def test_a_process_forked_meanwhile_compiles_for_itself(tmp_path):
    make_ir = Recorder(tmp_path)
    pending = ForkedCompile(make_ir)
    pid = os.fork()
    if pid == 0:   # not the parent of the compiling child: compiles in-process
        status = 1
        try:
            code = pending.result()
            status = 0 if code == jit.compile_ir(scale_module(3.0)) else 2
        finally:
            os._exit(status)
    assert os.waitpid(pid, 0)[1] == 0
    run_scale(pending.result(), 1023)
