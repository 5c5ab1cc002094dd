"""Copies made twice in one program: a kernel that fills a scratch buffer exactly as an earlier
kernel filled another is dropped, and the matrix products that read its buffer read the earlier
one. A convolution and its filter gradient in one train step copy the same patches of x
(conv_rules.py): the gradient multiplies the forward's copy, which the memory plan then keeps
alive until the gradient's product.

A kernel with the same statements as an earlier one stores the same values, unless a buffer it
reads was written again in between (a scatter writes one buffer in two kernels): such copies
are kept. Only scratch buffers that one kernel writes take part, and only one that no
expression loads is renamed (products read patches through their operands); tensors' buffers
never are, since the runtime hands them out.
"""
import dataclasses

from . import ir
from .access import kernel_access, loads
from .fingerprint import fingerprint


def share_copies(segments, slots):
    """Drop repeated copies from `segments` (the program's lists of kernels, in the order they
    run; changed in place), given the program's Slots. Returns {dropped slot: slot read
    instead}."""
    tensors = set(slots.buffers.values())
    loaded, writers = set(), {}  # slots some expression loads; slot -> kernels writing it
    for kernels in segments:
        for k in kernels:
            loaded.update(load.buffer for load in loads(k))
            for s in kernel_access(k)[1]:
                writers[s] = writers.get(s, 0) + 1
    copies = {}  # a copy's statements, its target blanked -> (target slot, position)
    last_write = {}  # slot -> position of the last kernel that wrote it
    renamed = {}
    position = 0
    for kernels in segments:
        kept = []
        for kernel in kernels:
            kernel = _renamed(kernel, renamed) if renamed else kernel
            reads, writes = kernel_access(kernel)
            target = _copy_target(kernel)
            if target is not None and target not in tensors and writers[target] == 1:
                key = fingerprint([dataclasses.replace(kernel, name="",
                                                       body=_blank(kernel.body, target))])
                if key in copies and target not in loaded:
                    earlier, at = copies[key]
                    if (slots.buffer_info[earlier][0] == slots.buffer_info[target][0]
                            and all(last_write.get(s, -1) < at for s in reads)):
                        renamed[target] = earlier
                        continue
                copies[key] = (target, position)
            for s in writes:
                last_write[s] = position
            kept.append(kernel)
            position += 1
        kernels[:] = kept
    return renamed


def _copy_target(kernel):
    """The slot a kernel stores into when it is one loop nest around one plain Store."""
    body = kernel.body
    while len(body) == 1 and isinstance(body[0], ir.Loop):
        body = body[0].body
    if len(body) == 1 and isinstance(body[0], ir.Store) and not body[0].accumulate:
        return body[0].buffer
    return None


def _blank(body, slot):
    """The statements with stores into `slot` storing into slot -1."""
    out = []
    for s in body:
        if isinstance(s, ir.Loop):
            s = dataclasses.replace(s, body=_blank(s.body, slot))
        elif isinstance(s, ir.Store) and s.buffer == slot:
            s = dataclasses.replace(s, buffer=-1)
        out.append(s)
    return tuple(out)


def _renamed(kernel, renamed):
    """The kernel with its products' operands in renamed slots moved to their new slots."""
    if not any(isinstance(s, ir.Gemm) for s in ir.walk_statements(kernel.body)):
        return kernel

    def operand(o):
        return dataclasses.replace(o, buffer=renamed.get(o.buffer, o.buffer))
    body = ir.map_gemms(kernel.body, lambda g: dataclasses.replace(
        g, a=operand(g.a), b=operand(g.b), c=operand(g.c)))
    return dataclasses.replace(kernel, body=body)
