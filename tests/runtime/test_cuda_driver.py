"""runtime.cuda_driver against the driver it sees: cuInit's failures asked of libcuda stand-ins
built here, a module the driver refuses, and (where pycuda imports) the real pycuda offering
every function, argument and exception that cuda_driver uses."""
import inspect
import shutil
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cuda_driver
from tests.codegen.cuda.fake_driver import emulated_gpu

# libcuda stand-ins: the CUDA toolkit's stub answers every call CUDA_ERROR_STUB_LIBRARY and
# writes nothing; a driver on a machine without a GPU fails cuInit with CUDA_ERROR_NO_DEVICE
LIBCUDAS = {
    "stub": "int cuInit(unsigned f) { return 34; }\n"
            "int cuGetErrorString(int s, const char **p) { return 34; }\n",
    "no_gpu": "int cuInit(unsigned f) { return 100; }\n"
              "int cuGetErrorString(int s, const char **p) {\n"
              "    *p = s == 100 ? \"no CUDA-capable device is detected\" : 0;\n"
              "    return s == 100 ? 0 : 1;\n}\n",
    "unknown": "int cuInit(unsigned f) { return 999; }\n"
               "int cuGetErrorString(int s, const char **p) { *p = 0; return 1; }\n",
    "gpu": "int cuInit(unsigned f) { return 0; }\n",
}


@pytest.fixture(scope="module")
def libcuda(tmp_path_factory):
    """The path of a libcuda stand-in by name, compiled by the C compiler."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build libcuda stand-ins")
    folder = tmp_path_factory.mktemp("libcuda")

    def build(name):
        source, library = folder / f"{name}.c", folder / f"libcuda_{name}.so"
        if not library.exists():
            source.write_text(LIBCUDAS[name])
            subprocess.run([cc, "-shared", "-fPIC", "-o", str(library), str(source)],
                           check=True)
        return str(library)
    return build


def test_init_failure_names_what_the_driver_says(libcuda):
    assert "stub library" in cuda_driver.init_failure(libcuda("stub"))
    assert "LD_LIBRARY_PATH" in cuda_driver.init_failure(libcuda("stub"))
    assert cuda_driver.init_failure(libcuda("no_gpu")) == "no CUDA-capable device is detected"
    assert cuda_driver.init_failure(libcuda("unknown")) == "error 999"
    assert cuda_driver.init_failure(libcuda("gpu")) is None


def test_init_failure_leaves_a_missing_library_to_pycuda(tmp_path):
    assert cuda_driver.init_failure(str(tmp_path / "libcuda.so.1")) is None


def test_a_module_the_driver_refuses_is_a_device_error():
    gpu = emulated_gpu()

    def refuse(binary):
        raise gpu.driver.Error("cuModuleLoadDataEx failed: device kernel image is invalid")
    gpu.driver.module_from_buffer = refuse
    with gpu.current(), pytest.raises(gc.DeviceError, match="cannot load the kernels nvcc "
                                                            "compiled for sm_90: cuModule"):
        gpu.load('extern "C" __global__ void k() {}')


# ---- the real pycuda, where it imports ----------------------------------------------------------
def _pycuda():
    try:
        import pycuda.driver as driver
        import pycuda.tools as tools
    except ImportError as error:
        pytest.skip(f"pycuda cannot be imported: {error}")
    return driver, tools


def _signature(function):
    """A pycuda function's signature line: Boost.Python's docstring, or Python's own."""
    try:
        return str(inspect.signature(function))
    except ValueError:
        return function.__doc__.strip().splitlines()[0]


# What cuda_driver calls, as pycuda's docstrings write the arguments (order and defaults)
SIGNATURES = {
    "init": "init([  (int)flags=0])",
    "mem_get_info": "mem_get_info() -> tuple",
    "memcpy_htod": "memcpy_htod( (object)dest, (object)src)",
    "memcpy_htod_async": "memcpy_htod_async( (object)dest, (object)src [, (object)stream=None])",
    "memcpy_dtoh": "memcpy_dtoh( (object)dest, (object)src)",
    "memcpy_dtoh_async": "memcpy_dtoh_async( (object)dest, (object)src [, (object)stream=None])",
    "memcpy_dtod_async": "memcpy_dtod_async( (object)dest, (object)src, (int)size "
                         "[, (object)stream=None])",
    "pagelocked_empty": "pagelocked_empty( (object)shape, (object)dtype [, (object)order='C'",
    "module_from_buffer": "module_from_buffer( (object)buffer [, (object)options=[]",
    "Device.count": "count() -> int",
    "Device.retain_primary_context": "retain_primary_context( (Device)self) -> Context",
    "Device.compute_capability": "compute_capability( (Device)arg1) -> tuple",
    "Context.push": "push( (Context)arg1) -> None",
    "Context.pop": "pop() -> None",
    "Stream.__init__": "__init__( (object)arg1 [, (int)flags=0])",
    "Stream.synchronize": "synchronize( (Stream)arg1) -> None",
    "Module.get_function": "get_function( (Module)self, (str)name) -> Function",
    "Function.prepare": "(func, arg_types, texrefs=None)",
    "Function.prepared_async_call": "(func, grid, block, stream, *args, **kwargs)",
}


def test_pycuda_offers_what_cuda_driver_uses():
    driver, tools = _pycuda()
    for name, want in SIGNATURES.items():
        owner, _, attribute = name.rpartition(".")
        function = getattr(getattr(driver, owner) if owner else driver, attribute)
        assert _signature(function).startswith(want), (name, _signature(function))
    assert isinstance(inspect.getattr_static(driver.Device, "count"), staticmethod)
    assert isinstance(inspect.getattr_static(driver.Context, "pop"), staticmethod)
    pool = tools.DeviceMemoryPool
    assert _signature(pool.allocate).startswith("allocate( (DeviceMemoryPool)arg1, (int)arg2)")
    assert {"__int__", "__index__", "free"} <= set(dir(driver.PooledDeviceAllocation))
    # an out-of-memory pool raises driver.MemoryError, a driver.Error (not Python's)
    assert driver.MemoryError.__mro__[1:3] == (driver.Error, Exception)
    assert not issubclass(driver.MemoryError, MemoryError)


def test_pycuda_packs_launch_arguments_as_the_kernels_take_them():
    """"PPPqq": three pointers and two long longs, 8 bytes each at offsets 0..32, as the
    kernels' parameters (render.PARAMS) lie."""
    _pycuda()
    from pycuda._pvt_struct import calcsize, pack
    values = (2 ** 64 - 8, 16, 2 ** 40, -1, 2 ** 62)
    assert calcsize("PPPqq") == 40
    assert pack("PPPqq", *values) == np.array(values[:3], np.uint64).tobytes() + np.array(
        values[3:], np.int64).tobytes()


def test_gpu_with_pycuda_starts_or_is_a_device_error():
    """Gpu() on the real pycuda, in a process of its own (a driver that crashes it fails the
    test, not the run): it starts where a GPU is, else raises a DeviceError."""
    _pycuda()
    script = ("import graphc as gc\nfrom graphc.runtime import cuda_driver\n"
              "try:\n    cuda_driver.Gpu()\nexcept gc.DeviceError as error:\n"
              "    print('DeviceError', error)\nelse:\n    print('started')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = proc.stdout.strip()
    assert out == "started" or out.startswith("DeviceError device 'cuda' needs pycuda and an "
                                              "NVIDIA GPU: "), out
