"""Alias scopes of a kernel's buffers: metadata telling LLVM which loads and stores never touch
the same memory. The buffer pointers come from the context table, so without it LLVM must
assume any two of them overlap: it copies a channel run element by element, or guards each
vectorized loop with run-time overlap checks.

A program's buffers are distinct arrays or disjoint parts of the memory plan's arena, but for
one exception: a kernel's output may lie over an input it overwrites in place
(graphc.kernels.access.in_place_candidates). Those slots form one class; every other slot is a
class of its own. Each buffer has a scope; a store is marked as touching no buffer of another
class, a load as touching none of the written buffers of another class: two loads claim
nothing (one array may be fed for two placeholders).
Scopes are named after the kernel's function, so the claims of two kernels never mix (LLVM
clones them when it inlines a kernel).
"""
from llvmlite import ir as ll

from ...kernels.access import in_place_candidates, kernel_access


class AliasScopes:
    """The scopes of one kernel's buffers, in `module`, for the function named `name`."""

    def __init__(self, module, name, kernel):
        self.module = module
        reads, writes = kernel_access(kernel)
        output, inputs = in_place_candidates(kernel)
        shared = {output, *inputs} if inputs else set()
        self.class_of = {s: min(shared) if s in shared else s for s in reads | writes}
        self.written = writes
        domain = module.add_metadata([ll.MetaDataString(module, name)])
        self.scopes = {s: module.add_metadata([ll.MetaDataString(module, f"{name}.buf{s}"),
                                               domain])
                       for s in sorted(self.class_of)}
        self.lists = {}  # (slot, write) -> (alias.scope list, noalias list or None)

    def mark(self, instruction, slot, write):
        """Attach the scopes of a load (write False) or store of buffer `slot`."""
        key = slot, write
        if key not in self.lists:
            others = [scope for s, scope in self.scopes.items()
                      if self.class_of[s] != self.class_of[slot] and (write or s in self.written)]
            self.lists[key] = (self.module.add_metadata([self.scopes[slot]]),
                               others and self.module.add_metadata(others))
        scope, noalias = self.lists[key]
        instruction.set_metadata("alias.scope", scope)
        if noalias:
            instruction.set_metadata("noalias", noalias)
        return instruction
