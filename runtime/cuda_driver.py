"""The GPU behind device 'cuda', through pycuda: one context, a caching memory pool, a stream,
modules compiled by nvcc and cached on disk, launches and copies.

pycuda is optional (`pip install graphc[cuda]`): it is imported when a CUDA program first runs,
and a missing pycuda or GPU is a DeviceError then, never when a program is built. The device's
primary context serves the whole process; each run makes it current while it runs. Kernels are
queued on one stream without waiting; copies wait for what was queued before them.

`Gpu` is all the CUDA executable asks of a GPU, so tests can put a stand-in in its place.
"""
import contextlib

from graphc.codegen.cuda import nvcc
from graphc.errors import DeviceError, ResourceError

from .kernel_cache import cache_key, default_cache, graphc_identity

NEEDS = "device 'cuda' needs pycuda and an NVIDIA GPU"


class Gpu:
    def __init__(self):
        try:
            import pycuda.driver as driver
            import pycuda.tools as tools
        except ImportError as error:
            raise DeviceError(f"{NEEDS}: pycuda cannot be imported ({error}); install it "
                              "with pip install graphc[cuda]") from None
        try:
            driver.init()
            if driver.Device.count() == 0:
                raise DeviceError(f"{NEEDS}: the CUDA driver finds no GPU")
            self.device = driver.Device(0)
            self.context = self.device.retain_primary_context()
        except driver.Error as error:
            raise DeviceError(f"{NEEDS}: the CUDA driver fails: {error}") from None
        self.driver = driver
        self.arch = "sm_%d%d" % self.device.compute_capability()
        with self.current():
            self.pool = tools.DeviceMemoryPool()
            self.stream = driver.Stream()

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
        it, the pool's unused blocks given back first."""
        try:
            return self.pool.allocate(max(nbytes, 1))
        except self.driver.MemoryError:
            self.pool.free_held()
            try:
                return self.pool.allocate(max(nbytes, 1))
            except self.driver.MemoryError:
                free, total = self.driver.mem_get_info()
                raise ResourceError(f"out of GPU memory: {what} needs {nbytes:,} bytes; "
                                    f"{free:,} of the GPU's {total:,} bytes are free") from None

    # Copies go through the default stream, which waits for the kernels queued on ours (a
    # blocking stream) and which they wait for: each copy comes in order, and is done when it
    # returns, so the host array may change or be read at once.
    def upload(self, allocation, array):
        self.driver.memcpy_htod(allocation, array)

    def download(self, array, allocation):
        self.driver.memcpy_dtoh(array, allocation)

    def load(self, source):
        """The module of a CUDA C translation unit, as a cubin for this GPU: compiled by nvcc
        or found in the kernel cache (keyed by source, architecture and nvcc's version)."""
        key = cache_key(source, self.arch, nvcc.version(), graphc_identity())
        cubin = default_cache().get_or_build(
            key, lambda: nvcc.compile_source(source, self.arch, "cubin"))
        return Module(self, self.driver.module_from_buffer(cubin))


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
