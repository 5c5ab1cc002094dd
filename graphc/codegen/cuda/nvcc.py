"""nvcc, the CUDA compiler driver: generated CUDA C -> PTX text or a cubin for one architecture.

The flags are part of the generated code's meaning: `--fmad=false` keeps a*b + c two roundings
(numpy's result; nvcc would contract it into one fma), and every warning is an error, so
generated code that a compiler doubts never runs.
"""
import os
import shutil
import subprocess
import tempfile

from ...errors import DeviceError

FLAGS = ("--fmad=false", "--Werror", "all-warnings", "-std=c++17")
OUTPUTS = {"ptx": "-ptx", "cubin": "-cubin"}


def find():
    """The path of nvcc on the PATH, or None."""
    return shutil.which("nvcc")


def version():
    """nvcc's version line (part of the key of cached compiled code)."""
    out = _run([_nvcc(), "--version"], "nvcc --version").stdout
    return out.strip().splitlines()[-1]


def compile_source(source, arch, output="ptx", timeout=600):
    """Compile CUDA C for `arch` (e.g. "sm_80"): PTX (bytes of text) or a cubin."""
    if output not in OUTPUTS:
        raise ValueError(f"output is one of {', '.join(OUTPUTS)}, got {output!r}")
    with tempfile.TemporaryDirectory(prefix="graphc-nvcc-") as folder:
        src, dst = os.path.join(folder, "kernels.cu"), os.path.join(folder, f"kernels.{output}")
        with open(src, "w") as f:
            f.write(source)
        _run([_nvcc(), OUTPUTS[output], f"-arch={arch}", *FLAGS, src, "-o", dst],
             f"nvcc for {arch}", timeout)
        with open(dst, "rb") as f:
            return f.read()


def _nvcc():
    path = find()
    if path is None:
        raise DeviceError("device 'cuda' needs nvcc (the CUDA toolkit) on the PATH to compile "
                          "its kernels")
    return path


def _run(command, what, timeout=60):
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DeviceError(f"{what} failed: {error}") from None
    if proc.returncode != 0:
        raise DeviceError(f"{what} failed (exit {proc.returncode}):\n"
                          f"{(proc.stderr or proc.stdout).strip()}")
    return proc
