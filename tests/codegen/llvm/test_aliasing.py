"""Alias scopes on the kernels' loads and stores: LLVM is told two accesses never overlap
exactly when their buffers are distinct storage and one of them writes, never for an output
and the inputs the memory plan may lay it over; the patch copy of a convolution vectorizes."""
import re

import numpy as np
from llvmlite import ir as ll

import graphc as gc
from graphc.codegen.llvm.emit import KernelEmitter
from graphc.kernels import ir

rng = np.random.default_rng(5)


def load(slot, index):
    return ir.Load(slot, index, "float32")


def accesses(kernel):
    """[(slot, is a store, alias.scope, noalias scopes)] of the emitted function."""
    module = ll.Module()
    fn = KernelEmitter(module, kernel, "kernel").emit()
    found = []
    for block in fn.blocks:
        for inst in block.instructions:
            if inst.opname not in ("load", "store") or "alias.scope" not in inst.metadata:
                continue
            pointer = inst.operands[1] if inst.opname == "store" else inst.operands[0]
            slot = int(pointer.operands[0].name.removeprefix("buf"))
            noalias = inst.metadata.get("noalias")
            found.append((slot, inst.opname == "store", inst.metadata["alias.scope"].operands[0],
                          set(noalias.operands) if noalias else set()))
    return found


def claimed_disjoint(kernel):
    """{(slot a, slot b)}: pairs of buffers some accesses of which LLVM may take as disjoint
    (an access of b lists the scope of an access of a as one it does not alias)."""
    found = accesses(kernel)
    pairs = {(a, b) for a, _, scope, _ in found for b, _, _, noalias in found if scope in noalias}
    return pairs | {(b, a) for a, b in pairs}


def test_an_in_place_output_is_never_claimed_apart_from_the_inputs_it_may_overwrite():
    i = ir.Var("i")
    n = ir.const(37)
    # out(2) = exp(a(0)[i]) + b(1)[i] + c(3)[i + 1]: the plan may write 2 over 0 or 1, not 3
    value = ir.op("add", ir.op("add", ir.op("exp", load(0, i)), load(1, i)),
                  load(3, ir.add(i, ir.const(1))))
    kernel = ir.Kernel("k", (ir.Loop(i, n, (ir.Store(2, i, value),), parallel=True),), {})
    found = accesses(kernel)
    assert sorted({(slot, store) for slot, store, _, _ in found}) == [
        (0, False), (1, False), (2, True), (3, False)]
    # the store is apart from 3 only; the loads of 0, 1 and 3 claim nothing among themselves
    assert claimed_disjoint(kernel) == {(2, 3), (3, 2)}


def test_a_kernel_that_cannot_write_in_place_claims_every_pair_with_a_store():
    i, j = ir.Var("i"), ir.Var("j")
    # a transposed copy plus an accumulation: no in-place candidate
    body = (ir.Store(2, ir.add(ir.mul(j, ir.const(5)), i),
                     ir.op("add", load(0, ir.add(ir.mul(i, ir.const(7)), j)), load(1, j))),
            ir.Store(3, j, load(0, j), accumulate=True))
    kernel = ir.Kernel("k", (ir.Loop(i, ir.const(5), (ir.Loop(j, ir.const(7), body),)),), {})
    pairs = claimed_disjoint(kernel)
    assert pairs == {(a, b) for a in range(4) for b in range(4)
                     if a != b and {a, b} & {2, 3}}


def test_the_patch_copy_moves_channel_runs_as_vectors():
    with gc.Graph().as_default():
        xs = gc.placeholder(gc.float32, (None, 13, 11, 32), name="x")
        ks = gc.placeholder(gc.float32, (3, 3, 32, 16), name="k")
        f = gc.function([xs, ks], gc.nn.conv2d(xs, ks), device="cpu")
    x = rng.normal(size=(2, 13, 11, 32)).astype(np.float32)
    k = rng.normal(size=(3, 3, 32, 16)).astype(np.float32)
    out = f(x, k)
    assert out.shape == (2, 11, 9, 16)
    ref = np.einsum("nhwijc,ijco->nhwo", np.lib.stride_tricks.sliding_window_view(
        x, (3, 3), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3), k.astype(np.float64))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    asm = f.source("asm")
    copy = re.search(r"\n(k\w*conv2d_0\w*):\n(.*?)\.Lfunc_end", asm, re.S).group(2)
    assert re.search(r"v?movup[sd]\s+[^\n]*\(", copy)  # packed loads and stores
    assert not re.search(r"v?movss", copy)
