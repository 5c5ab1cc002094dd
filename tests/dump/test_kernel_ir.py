"""The kernel IR as text: hand-built kernels print as expected, deep chains print at all."""
from graphc.dump.kernel_ir import kernel_ir_text, kernel_text
from graphc.kernels import ir


def test_a_row_kernel_prints_loops_shared_values_and_a_reduction():
    i, j, r = ir.Var("i0"), ir.Var("i1"), ir.Var("r0")
    row = ir.mul(i, ir.Dim(1))
    at = ir.add(row, j)
    x = ir.Load(0, at, "float32")
    total = ir.Reduce("sum", ((r, ir.Dim(1)),), ir.Load(0, ir.add(row, r), "float32"), "float32")
    value = ir.op("div", ir.op("mul", x, x), ir.op("neg", total))
    body = (ir.Loop(i, ir.Dim(0), (ir.Loop(j, ir.Dim(1), (ir.Store(2, at, value),)),),
                    parallel=True),)
    text = kernel_text(ir.Kernel("k0_div", body, {}, ("square", "sum", "div"), "why not"))
    assert text.splitlines() == [
        "kernel k0_div  [nodes: square, sum, div]",
        "  # why not",
        "  parallel for i0 in range(d0):",
        "    for i1 in range(d1):",
        "      b2[t1] = t2 * t2 / -sum(b0[t0 + r0] for r0 in range(d1))",
        "        where t0 = i0 * d1",
        "        where t1 = t0 + i1",
        "        where t2 = b0[t1]",
    ]


def test_statements_of_every_kind():
    i = ir.Var("i0")
    gemm = ir.Gemm("float32", ir.Dim(0), ir.const(5), ir.const(7),
                   ir.Operand(0, ir.const(0), ir.const(7), ir.const(1)),
                   ir.Operand(1, ir.const(0), ir.const(1), ir.const(7)),
                   ir.Operand(2, ir.const(3), ir.const(5), ir.const(1)), accumulate=True)
    index = ir.Load(3, i, "int64")
    check = ir.Check(ir.op("less", index, ir.const(10), dtype="bool"), 2, index)
    store = ir.Store(4, i, ir.op("cast", ir.op("add", ir.Load(5, i, "float32"),
                                                ir.Const(-1.5, "float32")), dtype="int32"),
                     accumulate=True)
    text = kernel_ir_text([ir.Kernel("k1_0", (gemm,), {}),
                           ir.Kernel("k2", (ir.Loop(i, ir.const(9), (check, store)),), {})])
    assert text.splitlines() == [
        "kernel k1_0",
        "  gemm float32 m=d0 n=5 k=7: b2(offset=3, rows=5, cols=1) += "
        "b0(offset=0, rows=7, cols=1) @ b1(offset=0, rows=1, cols=7)",
        "",
        "kernel k2",
        "  for i0 in range(9):",
        "    check t0 < 10 else error 2 (value t0)",
        "      where t0 = b3[i0]",
        "    b4[i0] += cast[int32](b5[i0] + -1.5)",
    ]


def test_precedence_keeps_the_meaning():
    a, b, c, d = (ir.Load(n, ir.Var("i0"), "float32") for n in range(4))
    body = (ir.Store(4, ir.Var("i0"), ir.op("mul", ir.op("sub", a, ir.op("sub", b, c)),
                                            ir.op("maximum", ir.op("neg", d), ir.op(
                                                "pow", ir.op("pow", a, c), b)))),)
    assert kernel_text(ir.Kernel("k", body, {})).splitlines()[1:] == [
        "  b4[i0] = (t2 - (t0 - t1)) * maximum(-b3[i0], (t2 ** t1) ** t0)",
        "    where t0 = b1[i0]", "    where t1 = b2[i0]", "    where t2 = b0[i0]"]


def test_a_chain_deeper_than_the_recursion_limit_prints_in_short_lines():
    x = ir.Load(0, ir.Var("i0"), "float32")
    for n in range(5000):
        x = ir.op("add", ir.op("mul", x, ir.Const(1.0001, "float32")), ir.Const(0.001, "float32"))
    text = kernel_text(ir.Kernel("k", (ir.Store(1, ir.Var("i0"), x),), {}))
    lines = text.splitlines()
    assert max(map(len, lines)) < 300
    assert lines[1].startswith("  b1[i0] = ") and lines[-1].strip().startswith("where t")
    assert text.count("1.0001") == 5000  # each operation written once
