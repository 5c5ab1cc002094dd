"""The GPU behind device 'cuda', through pycuda: one context, a caching memory pool, a stream,
modules compiled by nvcc and cached on disk, launches and copies.

pycuda is optional (`pip install -e ".[cuda]"`): it is imported when a CUDA program first runs,
and a missing pycuda or GPU is a DeviceError then, never when a program is built. The device's
primary context serves the whole process; each run makes it current while it runs. Kernels and
copies are queued on one stream; a run waits for it once (synchronize), except where the host
needs data at once (download). Host arrays of STAGED_FROM bytes or more go through page-locked
(pinned) staging buffers, kept for the next run, so that their copies are asynchronous and
fast; every fetch is staged, so that it waits for nothing.

`Gpu` is all the CUDA executable asks of a GPU, so tests can put a stand-in in its place; the
driver (pycuda.driver and pycuda.tools' memory pool) can be passed in, so tests can run the
class itself on a fake one.
"""
import contextlib
import ctypes

import numpy as np

from graphc.errors import DeviceError, ResourceError
from graphc.targets import cuda

from .kernel_cache import cache_key, default_cache, graphc_identity

NEEDS = "device 'cuda' needs pycuda and an NVIDIA GPU"
STAGED_FROM = 1 << 16  # bytes
LIBCUDA = "libcuda.so.1"  # the driver library pycuda is linked to (Linux)
# cuInit's failures that cuGetErrorString cannot describe: CUDA_ERROR_STUB_LIBRARY
UNDESCRIBED = {34: "the libcuda loaded is the CUDA toolkit's stub library, not a GPU's driver "
                   "(is the toolkit's stubs folder on LD_LIBRARY_PATH?)"}


def pycuda_driver():
    """(pycuda.driver, pycuda.tools), or a DeviceError."""
    try:
        import pycuda.driver as driver
        import pycuda.tools as tools
    except ImportError as error:
        raise DeviceError(f"{NEEDS}: pycuda cannot be imported ({error}); install it "
                          "with pip install -e \".[cuda]\" in graphc's checkout") from None
    failure = init_failure()
    if failure:
        raise DeviceError(f"{NEEDS}: the CUDA driver's cuInit fails: {failure}")
    return driver, tools


def init_failure(library=LIBCUDA):
    """Why cuInit fails, asked of the driver library through ctypes; None when it succeeds
    (or the library cannot be opened by that name: pycuda's init then speaks for itself).
    pycuda's own init would crash where the driver cannot describe the failure, as the CUDA
    toolkit's stub libcuda: it reads the text of cuGetErrorString without checking that it
    answered."""
    try:
        libcuda = ctypes.CDLL(library)
    except OSError:
        return None
    status = libcuda.cuInit(0)
    if status == 0:
        return None
    text = ctypes.c_char_p()
    if libcuda.cuGetErrorString(status, ctypes.byref(text)) != 0 or not text.value:
        return UNDESCRIBED.get(status, f"error {status}")
    return text.value.decode()


class Gpu:
    def __init__(self, driver=None, tools=None):
        if driver is None:
            driver, tools = pycuda_driver()
        self.driver = driver
        try:
            driver.init()
            if driver.Device.count() == 0:
                raise DeviceError(f"{NEEDS}: the CUDA driver finds no GPU")
            self.device = driver.Device(0)
            self.context = self.device.retain_primary_context()
            self.arch = "sm_%d%d" % self.device.compute_capability()
            with self.current():
                self.pool = tools.DeviceMemoryPool()
                self.stream = driver.Stream()
        except driver.Error as error:
            raise DeviceError(f"{NEEDS}: the CUDA driver fails: {error}") from None

    @contextlib.contextmanager
    def current(self):
        """The context made current in this thread while the block runs."""
        self.context.push()
        try:
            yield self
        finally:
            self.driver.Context.pop()

    def allocate(self, nbytes, what):
        """Device memory of nbytes (from the pool); a ResourceError when the GPU has not got
        it (the pool has given back the blocks it held and tried again by then)."""
        try:
            return Allocation(self, self.pool.allocate(max(nbytes, 1)))
        except self.driver.MemoryError:
            free, total = self.driver.mem_get_info()
            raise ResourceError(f"out of GPU memory: {what} needs {nbytes:,} bytes; "
                                f"{free:,} of the GPU's {total:,} bytes are free") from None

    def upload(self, allocation, array):
        """Queue a copy of a host array to the device; the array may change once it returns."""
        if not array.nbytes:  # empty copies and pinned buffers are not asked of the driver
            return
        if array.nbytes < STAGED_FROM:  # through the default stream, read when it returns
            self.driver.memcpy_htod(int(allocation), array)
            return
        staged = self._staged(allocation, array.nbytes)
        np.copyto(staged, array.reshape(-1).view(np.uint8))
        self.driver.memcpy_htod_async(int(allocation), staged, self.stream)

    # The (legacy) default stream waits for the kernels queued on ours (created blocking,
    # flags 0) and they for it: a copy through it comes in order. From pageable memory the
    # host array has been read when the copy returns; to it, the copy is done.
    def download(self, array, allocation):
        """Copy device memory into a host array now, after what is queued."""
        if array.nbytes:
            with self._waiting():
                self.driver.memcpy_dtoh(array, int(allocation))

    def fetch(self, allocation, nbytes):
        """Queue a copy of device memory to a pinned buffer (bytes), read after synchronize()."""
        if not nbytes:
            return np.empty(0, np.uint8)
        staged = self._staged(allocation, nbytes, "fetch")
        self.driver.memcpy_dtoh_async(staged, int(allocation), self.stream)
        return staged

    def copy(self, destination, source, nbytes):
        """Queue a copy between device allocations."""
        if nbytes:
            self.driver.memcpy_dtod_async(int(destination), int(source), nbytes, self.stream)

    def synchronize(self):
        """Wait for everything queued."""
        with self._waiting():
            self.stream.synchronize()

    @contextlib.contextmanager
    def _waiting(self):
        """A wait for the GPU, where a fault of a kernel queued before shows: a DeviceError."""
        try:
            yield
        except self.driver.Error as error:
            raise DeviceError(f"the GPU failed while running graphc's kernels: {error}") from None

    def _staged(self, allocation, nbytes, use="upload"):
        """The allocation's pinned buffer for uploads or fetches of nbytes (kept with it)."""
        staged = allocation.staging.get(use)
        if staged is None or staged.nbytes != nbytes:
            staged = allocation.staging[use] = self.driver.pagelocked_empty(nbytes, np.uint8)
        return staged

    def load(self, source):
        """The module of a CUDA C translation unit."""
        binary = self.compile(source)
        try:
            return Module(self, self.driver.module_from_buffer(binary))
        except self.driver.Error as error:  # e.g. a driver older than nvcc
            raise DeviceError(f"the CUDA driver cannot load the kernels nvcc compiled for "
                              f"{self.arch}: {error}") from None

    def compile(self, source):
        """A cubin for this GPU: compiled by nvcc or found in the kernel cache (keyed by
        source, architecture and nvcc's version)."""
        key = cache_key(source, self.arch, cuda.compiler_version(), graphc_identity())
        return default_cache().get_or_build(key, lambda: cuda.binary(source, self.arch))


class Part:
    """The bytes of an allocation from `offset` on (the memory plan's arena holds several
    buffers); int() is their address. It keeps the allocation."""

    def __init__(self, allocation, offset):
        self.allocation, self.address = allocation, int(allocation) + offset
        self.staging = {}  # as an Allocation's

    def __int__(self):
        return self.address

    def __del__(self):
        if self.staging:
            with self.allocation.gpu.current():
                self.staging.clear()


class Allocation:
    """A block of the pool's device memory; int() is its address. It goes back to the pool
    with the GPU's context current: pycuda's own pooled allocation, dropped with none current
    while the pool holds no other block, throws in its destructor, which aborts the process."""

    def __init__(self, gpu, block):
        self.gpu, self.block, self.address = gpu, block, int(block)
        self.staging = {}  # "upload"/"fetch" -> its pinned staging buffer (see Gpu._staged)

    def __int__(self):
        return self.address

    def __del__(self):
        with self.gpu.current():
            self.block.free()
            self.staging.clear()


class Module:
    def __init__(self, gpu, module):
        self.gpu, self.module = gpu, module

    def kernel(self, symbol, shape):
        """launch(blocks, threads, buffers, dims, error, lo, hi): the kernel queued on the
        stream (addresses and bounds as ints). `shape` is its launch.Launch (which stand-in
        GPUs read)."""
        fn = self.module.get_function(symbol)
        fn.prepare("PPPqq")
        stream = self.gpu.stream

        def launch(blocks, threads, *args):
            fn.prepared_async_call((blocks, 1), (threads, 1, 1), stream, *args)
        return launch


_gpu = None


def gpu():
    """The process's Gpu, started on first use."""
    global _gpu
    if _gpu is None:
        _gpu = Gpu()
    return _gpu
