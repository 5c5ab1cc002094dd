"""Targets: what the compiler (graphc/compiler.py) knows of the machine it makes code for.

A target declares its capabilities: the dtypes its Gemm statements take (products of others
run in a wider dtype), whether a kernel may store its output over an input it reads at the
same position, and the scalar ops its code generator has no instructions for (their fusion
groups run through the numpy reference). It runs its own kernel passes after the
target-neutral ones, and it owns its code generator: `generate` turns the program's segments
of kernels into code, and `source` shows that code. The runtime reaches a code generator
through its target only.

`Target` itself is the kernel IR's own target: every Gemm dtype, no pass of its own, nothing
it cannot compute and no code; the kernel IR interpreter (graphc/kernels/interpret.py) runs its
programs. cpu.py (LLVM) and cuda.py (CUDA C) are its siblings; neither imports the other.
"""
from ..errors import GraphcError
from ..kernels.lower import GEMM_DTYPES


class Target:
    name = "kernel IR"
    gemm_dtypes = GEMM_DTYPES
    # Whether assignments and groups run no step: an assignment's output is its value's
    # buffer, handed to the variable after the run; a group's is the constant True.
    resolves_assignments = False
    # Whether a kernel may store over an input that it reads only at the position it stores
    # (graphc.kernels.access.in_place_candidates); the memory plan then lets the two share.
    writes_in_place = False
    # Whether allreduces run as native calls on the plan's buffers, started and waited for
    # as two steps (compiler.CollectiveStep), not as host steps through the reference.
    native_collectives = False
    # Whether a Gemm may keep a packed copy of B across runs of a loop's body (Gemm.packed_b):
    # the lowering then gives the products of a loop's invariant arguments such a buffer.
    keeps_packed_b = False
    # Whether a Gemm may compute its epilogue (Gemm.bias, Gemm.relu): the lowering then folds
    # a bias row and relu after a product into it.
    fuses_gemm_epilogue = False
    source_kinds = ()  # what `source` shows, the default first
    # GRAPHC_DUMP_DIR's files of the code: (file name, source kind, None or a test that says
    # whether the tool making it is here)
    dump_files = ()

    def unsupported(self, kernels):
        """The (op on dtype) names in `kernels` that this target has no instructions for."""
        return set()

    def group_passes(self, kernels, slots):
        """One fusion group's kernels as this target runs them (slots gives scratch)."""
        return kernels

    def program_passes(self, segments, slots):
        """Rewrite the program's segments (lists of kernels, in the order they run; changed
        in place) for this target. Returns the slots that no kernel uses any more."""
        return frozenset()

    def generate(self, segments, allow_tf32=False, loop_body=False):
        """The code of the program's segments (None: the kernel IR is the program).
        loop_body: the program is a loop's body (a target may add a driver of the loop)."""
        return None

    def source(self, code, kind):
        """The text of the code as `kind` (one of source_kinds)."""
        if kind not in self.source_kinds:
            expected = ", ".join(map(repr, self.source_kinds)) or "none"
            raise GraphcError(f"unknown source kind {kind!r} on device {self.name!r}; "
                              f"expected one of {expected}")
        return self._source(code, kind)

    def _source(self, code, kind):
        raise NotImplementedError


KERNEL_IR = Target()
