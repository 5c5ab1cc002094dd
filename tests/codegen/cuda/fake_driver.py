"""A fake pycuda over host memory, so that runtime.cuda_driver.Gpu itself runs without a GPU.

`FakeDriver` has the parts of pycuda.driver that Gpu uses, with pycuda's signatures: device
memory is host memory (an allocation's int() is its address), copies are memmoves done when
called (queued copies too: the stream runs everything at once), a module is the CUDA C compiled
for the host (host_emulation.py) and a launch runs it on emulated blocks. It counts what Gpu asks of it
(`calls`), so tests can check which copies a run makes and that it waits once; `capacity`
bounds the memory, so tests can run out of it. It keeps pycuda's rule that device memory goes
back to the pool with a context current: a block dropped without (where pycuda aborts the
process) is counted in calls["dropped_without_context"]; empty copies and pinned buffers (which
the driver may refuse) in calls["empty"].

`emulated_gpu()` is a Gpu on a fake driver whose modules take the CUDA C itself, not a cubin.
"""
import ctypes
from collections import Counter

import numpy as np

from graphc.runtime import cuda_driver
from tests.codegen.cuda.host_emulation import BLOCKS, host_library


class FakeDriver:
    class Error(Exception):
        pass

    class MemoryError(Error):
        pass

    def __init__(self, capacity=1 << 30):
        self.capacity, self.used = capacity, 0
        self.depth = 0  # contexts pushed
        self.calls = Counter()
        driver = self

        class Device:
            count = staticmethod(lambda: 1)

            def __init__(self, number):
                self.number = number

            def compute_capability(self):
                return (9, 0)

            def retain_primary_context(self):
                return Context()

        class Context:
            def push(self):
                driver.calls["push"] += 1
                driver.depth += 1

            @staticmethod
            def pop():
                driver.calls["pop"] += 1
                driver.depth -= 1

        class Stream:
            def __init__(self, flags=0):
                self.flags = flags

            def synchronize(self):
                driver.calls["synchronize"] += 1

        self.Device, self.Context, self.Stream = Device, Context, Stream

    def init(self):
        pass

    def mem_get_info(self):
        return self.capacity - self.used, self.capacity

    def pagelocked_empty(self, shape, dtype, order="C", mem_flags=0):
        self.calls["pagelocked_empty"] += 1
        self.calls["empty"] += not shape
        return np.empty(shape, dtype)

    def memcpy_htod(self, dst, src):
        self._copy("htod", int(dst), src.ctypes.data, src.nbytes)

    def memcpy_htod_async(self, dst, src, stream=None):
        self._copy("htod_async", int(dst), src.ctypes.data, src.nbytes)

    def memcpy_dtoh(self, dst, src):
        self._copy("dtoh", dst.ctypes.data, int(src), dst.nbytes)

    def memcpy_dtoh_async(self, dst, src, stream=None):
        self._copy("dtoh_async", dst.ctypes.data, int(src), dst.nbytes)

    def memcpy_dtod_async(self, dst, src, size, stream=None):
        self._copy("dtod_async", int(dst), int(src), size)

    def _copy(self, kind, dst, src, nbytes):
        self.calls[kind] += 1
        self.calls["empty"] += not nbytes
        ctypes.memmove(dst, src, nbytes)

    def module_from_buffer(self, source):
        self.calls["module_from_buffer"] += 1
        return FakeModule(host_library(source.decode()))


class FakeModule:
    def __init__(self, library):
        self.library = library

    def get_function(self, symbol):
        return FakeFunction(self.library, symbol)


class FakeFunction:
    def __init__(self, library, symbol):
        self.run = library.gc_emulate_launch
        self.run.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 2 + [ctypes.c_void_p] * 3 + [
            ctypes.c_longlong] * 2
        self.kernel = ctypes.cast(getattr(library, symbol), ctypes.c_void_p)

    def prepare(self, arg_types):
        assert arg_types == "PPPqq"
        return self

    def prepared_async_call(self, grid, block, stream, *args):
        # pycuda takes tuples of Python ints only (a list as block is its old call form)
        assert type(grid) is tuple and type(block) is tuple
        assert all(type(n) is int for n in grid + block + args), (grid, block, args)
        assert grid[0] > 0 and grid[1:] == (1,) and block[1:] == (1, 1)
        self.run(self.kernel, min(grid[0], BLOCKS), block[0], *args)


class FakeTools:
    """pycuda.tools: a memory pool over the fake driver's memory."""

    def __init__(self, driver):
        self.driver = driver

    def DeviceMemoryPool(self):
        return FakePool(self.driver)


class FakePool:
    """pycuda's pool gives back the blocks it holds and tries again before it raises; this one
    holds none."""

    def __init__(self, driver):
        self.driver = driver

    def allocate(self, nbytes):
        if self.driver.used + nbytes > self.driver.capacity:
            raise self.driver.MemoryError("memory_pool::allocate failed: out of memory - "
                                          "failed to free memory for allocation")
        return FakeAllocation(self.driver, nbytes)


class FakeAllocation:
    def __init__(self, driver, nbytes):
        self.driver, self.nbytes = driver, nbytes
        self.bytes = np.zeros(nbytes, np.uint8)
        driver.used += nbytes

    def __int__(self):
        return self.bytes.ctypes.data

    def free(self):
        if not self.driver.depth:
            raise self.driver.Error("explicit_context_dependent failed: invalid device "
                                    "context - no currently active context?")
        self._give_back()

    def __del__(self):
        if self.bytes is not None and not self.driver.depth:
            self.driver.calls["dropped_without_context"] += 1
        self._give_back()

    def _give_back(self):
        if self.bytes is not None:
            self.driver.used -= self.nbytes
            self.bytes = None


class EmulatedGpu(cuda_driver.Gpu):
    """A Gpu on a fake driver, its modules built from the CUDA C itself."""

    def compile(self, source):
        return source.encode()


def emulated_gpu(capacity=1 << 30):
    driver = FakeDriver(capacity)
    return EmulatedGpu(driver, FakeTools(driver))
