"""Object code compiled in a forked child process while this one goes on with other work.

LLVM's binding layer runs one call at a time in a process (graphc/codegen/llvm/jit.py), so two
modules compile at once only in two processes. A forked child needs no start-up: it has graphc
loaded, builds the module's IR itself, compiles it and writes the object to a temporary file
that the parent reads when it needs the code. Wherever that fails (no fork here, a single core,
the child failing, killed or stuck), the parent compiles in-process as it would have: the child
changes when the work is done, never what it makes.
"""
import os
import signal
import tempfile
import time

from graphc.targets import cpu

CHILD_TIMEOUT_S = 120  # a child this late is stuck: far past any compile, even on a loaded machine


def worthwhile():
    """Whether a child can run beside this process: fork exists and there is a core for it."""
    return hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1


class ForkedCompile:
    """cpu.compile_object(make_ir(), pipeline), started in a child; `result()` waits for it."""

    def __init__(self, make_ir, **pipeline):
        self._make_ir = make_ir
        self._pipeline = pipeline
        self._parent = os.getpid()
        self._pid = self._file = self._status = None
        try:
            self._file = tempfile.TemporaryFile()
            self._pid = os.fork()
        except OSError:
            return   # result() compiles in-process
        if self._pid == 0:
            self._run_child()

    def _run_child(self):
        status = 1
        try:
            self._file.write(cpu.compile_object(self._make_ir(), self._pipeline))
            self._file.flush()
            status = 0
        finally:
            os._exit(status)   # never the parent's exit handlers, buffers or stack

    @property
    def forked(self):
        """Whether this process has a child compiling (else result() compiles here)."""
        return bool(self._pid) and os.getpid() == self._parent

    def ready(self):
        """Whether result() returns without waiting for the child: it has exited (or is none)."""
        if self._status is None and self._pid and os.getpid() == self._parent:
            done, status = os.waitpid(self._pid, os.WNOHANG)
            if done:
                self._status = status
        return self._status is not None or not self._pid or os.getpid() != self._parent

    def discard(self):
        """Stops the child, its work no longer wanted."""
        if self._pid and os.getpid() == self._parent:
            if self._status is None:
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            self._pid = None
        if self._file is not None:
            self._file.close()

    def result(self):
        """The object code (bytes): the child's, else compiled here."""
        code = self._child_result()
        if self._file is not None:
            self._file.close()
        if code is None:
            code = cpu.compile_object(self._make_ir(), self._pipeline)
        return code

    def _child_result(self):
        # a process forked from the parent meanwhile has the record but not the child
        if not self._pid or os.getpid() != self._parent:
            return None
        pid, self._pid = self._pid, None
        try:
            if (self._status if self._status is not None else _wait(pid)) != 0:
                return None
            self._file.seek(0)
            return self._file.read() or None
        except OSError:
            return None


def _wait(pid):
    """The child's exit status; a child that outlives CHILD_TIMEOUT_S is killed (status -1)."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -1
        time.sleep(0.001)
