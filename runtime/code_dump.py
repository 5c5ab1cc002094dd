"""GRAPHC_DUMP_DIR's files of generated code, written beside the graphs of each stage.

The pass manager writes `00-input.txt`, one file per pass and the fusion groups; an
executable with native code adds its kernel IR and what its code generator made of it, numbered
after them so that a listing sorts in pipeline order:

    90-kernel-ir.txt     every native kernel (graphc/dump/kernel_ir.py), in call order, with
                         the host steps between them and what each buffer and dim holds
    91-program.ll        device cpu: the LLVM IR as generated,
    92-program-opt.ll    after LLVM's pipeline,
    93-program.s         and the host assembly
    91-program.cu        device cuda: the CUDA C,
    92-program.ptx       and nvcc's PTX (where nvcc is on the PATH)

A program loaded from the disk cache was never generated in this process: its text is
generated here from its kernels, the same text as when it was compiled. Nothing is written,
and nothing costs, unless GRAPHC_DUMP_DIR is set.
"""
import os

from graphc.compiler import NativeStep
from graphc.dump.kernel_ir import kernel_ir_text
from graphc.dump.kernels import kernel_line
from graphc.io.atomic import write_text
from graphc.ir.types import TensorType

KERNEL_IR = "90-kernel-ir.txt"


def write_code(exe):
    """Write the files of a CPU or CUDA executable when its compilation dumps its stages."""
    directory = exe.compilation.dump_directory
    if directory is None:
        return
    write_text(os.path.join(directory, KERNEL_IR), program_text(exe) + "\n")
    if not any(isinstance(step, NativeStep) for step in exe.steps):
        return  # no native code
    for name, kind, needs in exe.target.dump_files:
        if needs is None or needs():
            write_text(os.path.join(directory, name), exe.source(kind))


def program_text(exe):
    """The kernel IR of every step in order; host steps as their fusion group's line."""
    slots = exe.slots
    lines = [f"# kernel IR of {exe.device} program (kernels in call order; LLVM functions "
             f"and CUDA kernels are named after them)"]
    nodes = exe.outputs[0].graph.nodes
    held = {}  # slot -> the tensors it holds
    for (node_id, index), slot in slots.buffers.items():
        held.setdefault(slot, []).append(nodes[node_id].outputs[index].name)
    for slot, (dtype, shape) in enumerate(slots.buffer_info):
        lines.append(f"# b{slot}: {TensorType(dtype, shape)} "
                     f"{', '.join(held.get(slot, ['(scratch)']))}")
    lines += [f"# d{i}: {d}" for i, d in enumerate(slots.dim_objects)]
    for step in exe.steps:
        if isinstance(step, NativeStep):
            lines += ["", f"## native segment {step.number}", "", kernel_ir_text(step.kernels)]
        else:
            lines += ["", f"## on the host (numpy reference): {kernel_line(step.group)}"]
    return "\n".join(lines)
