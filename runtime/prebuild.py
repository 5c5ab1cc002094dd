"""`python -m graphc.runtime.prebuild`: compiles the code every CPU program links (the GEMM of
each dtype, the thread pool) into the disk cache ($GRAPHC_CACHE_DIR, ~/.cache/graphc), as an
install step would: graph-independent code, compiled once per machine (its cache key names
LLVM and the host CPU), so that a program's first compile pays for its own kernels alone.
"""
import time

from .kernel_cache import default_cache
from .llvm_objects import build_shared


def main():
    start = time.perf_counter()
    built = build_shared()
    where = default_cache().directory or "nowhere (the disk cache is off)"
    print(f"compiled {', '.join(built) or 'nothing (all cached)'} into {where} "
          f"in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
