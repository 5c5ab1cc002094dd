"""model.summary(): one row per layer with its output shape and parameter count."""
WIDTHS = (32, 26, 12)


def _row(cells):
    return "".join(str(c).ljust(w) for c, w in zip(cells, WIDTHS)).rstrip()


def _shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def summary_text(model):
    """The table: layer (type), output shape, parameter count with thousands separators; then
    the totals. A subclassed model lists its layers once it is built."""
    rows = []
    if model.shows_inputs:
        for t in model.inputs:
            rows.append((f"{t.name} (InputLayer)", _shape(tuple(
                d if isinstance(d, int) else None for d in t.shape)), 0))
    for layer in model.layers if model.inputs is not None else ():
        rows.append((f"{layer.name} ({type(layer).__name__})", _shape(layer.output_shape),
                     layer.count_params() if layer.built else 0))
    rule = "_" * sum(WIDTHS)
    trainable = sum(_size(v) for v in model.trainable_weights)
    total = sum(_size(v) for v in model.weights)
    lines = [f'Model: "{model.name}"', rule, _row(("Layer (type)", "Output Shape", "Param #")),
             "=" * sum(WIDTHS)]
    for i, (name, shape, count) in enumerate(rows):
        lines.append(_row((name, shape, f"{count:,}")))
        lines.append(rule if i < len(rows) - 1 else "=" * sum(WIDTHS))
    if not rows:
        lines.append("(no layers yet: the model is built when it first sees data)")
    lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", rule]
    return "\n".join(lines)


def _size(var):
    n = 1
    for d in var.shape:
        n *= d
    return n
