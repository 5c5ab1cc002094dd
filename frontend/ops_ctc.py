"""gk.ops.ctc_loss and ctc_decode. The connectionist temporal classification loss is computed
as Keras 3 on JAX computes it (Optax's forward recursion in log space, "impossible" paths at
-1e5 rather than -inf, so the loss and its gradient stay finite), as a gc.scan over time.
Decoding is Keras's too: greedy (each step's best class, repeats merged, blanks dropped) as
a composition of graph ops; beam search by the core op ctc_beam_search."""
import graphc as gc
from graphc.errors import ArgumentError
from graphc.ops.ctc import ctc_beam_search

from . import ops as _o
from .ops_numpy import logaddexp

__all__ = ["ctc_loss", "ctc_decode"]

LOG_EPSILON = -1e5


def _positions(like, axis):
    """0, 1, 2, ... along `axis` of a float tensor shaped like `like` (sizes known at run
    time only are fine)."""
    return gc.cumsum(gc.ones_like(like), axis=axis) - 1.0


def _add_to_phi(phi, score):
    """phi's entries after the first, logaddexp'ed with score."""
    return gc.concat([phi[:, :1], logaddexp(phi[:, 1:], score)], axis=-1)


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """Per-sequence CTC loss of integer targets (batch, labels) against logits output
    (batch, steps, classes); the lengths count each sequence's valid labels and steps;
    mask_index is the blank class."""
    target = gc.cast(_o._t(target), gc.int32)
    output = _o._t(output)
    output = output if output.dtype in (gc.float32, gc.float64) else gc.cast(output, gc.float32)
    classes = output.shape[2]
    target_length = gc.cast(_o._t(target_length), output.dtype)
    output_length = gc.cast(_o._t(output_length), output.dtype)
    labels = gc.cast(target, output.dtype)
    steps_pad = gc.cast(_positions(output[:, :, 0], 1) >= gc.expand_dims(output_length, 1),
                        output.dtype)  # (batch, steps): 1 past a sequence's end
    label_lengths = gc.cast(gc.sum(gc.cast(
        _positions(labels, 1) < gc.expand_dims(target_length, 1), gc.int32), axis=1), gc.int32)

    logprobs = gc.nn.log_softmax(output)
    repeat = gc.cast(gc.equal(target[:, :-1], target[:, 1:]), output.dtype)
    repeat = gc.concat([repeat, labels[:, :1] * 0.0], axis=1)  # (batch, labels)
    phi_t = gc.transpose(logprobs[:, :, mask_index:mask_index + 1], (1, 0, 2))
    hot = gc.one_hot(target, classes, dtype=output.dtype)  # (batch, labels, classes)
    emit_t = gc.transpose(logprobs @ gc.transpose(hot, (0, 2, 1)), (1, 0, 2))
    zero = labels[:, :1] * 0.0
    phi0 = gc.concat([zero, labels * 0.0 + LOG_EPSILON], axis=1)  # (batch, labels + 1)
    emit0 = labels * 0.0 + LOG_EPSILON

    def step(emit, blank, pad, prev_phi, prev_emit, rep):
        phi = _add_to_phi(prev_phi, prev_emit + LOG_EPSILON * rep)
        next_emit = logaddexp(phi[:, :-1] + emit, prev_emit + emit)
        next_phi = _add_to_phi(phi + blank, prev_emit + blank + LOG_EPSILON * (1.0 - rep))
        pad = gc.expand_dims(pad, 1)
        return [pad * prev_phi + (1.0 - pad) * next_phi,
                pad * prev_emit + (1.0 - pad) * next_emit]

    (phis, emits), _ = gc.scan(step, sequences=[emit_t, phi_t, gc.transpose(steps_pad)],
                               outputs_info=[phi0, emit0], non_sequences=[repeat],
                               name="ctc_loss")
    last = _add_to_phi(phis[-1], emits[-1])
    return -gc.sum(last * gc.one_hot(label_lengths, last.shape[1], dtype=output.dtype), axis=1)


def _greedy(logits, lengths, merge_repeated, blank):
    """Keras's greedy decoding: (1, batch, steps) labels, -1 after each sequence's own, and
    (batch, 1) minus the sum of the chosen logits."""
    labels = gc.cast(gc.argmax(logits, axis=-1), gc.int32)
    best = gc.max(logits, axis=-1)
    steps = _positions(best, 1)
    past = steps >= gc.expand_dims(gc.cast(lengths, best.dtype), 1)
    labels = gc.where(past, blank, labels)
    best = gc.where(past, gc.zeros_like(best), best)
    if merge_repeated:
        repeat = gc.concat([gc.zeros_like(labels[:, :1]),
                            gc.cast(gc.equal(labels[:, 1:], labels[:, :-1]), gc.int32)], 1)
        labels = gc.where(repeat > 0, blank, labels)
    kept = gc.not_equal(labels, blank)
    # each kept label moves to the slot its rank among the kept ones gives
    slot = gc.cumsum(gc.cast(kept, best.dtype), axis=1) - 1.0
    lands = gc.logical_and(gc.expand_dims(kept, 2),
                           gc.equal(gc.expand_dims(slot, 2), gc.expand_dims(steps, 1)))
    placed = gc.sum(gc.cast(lands, gc.int32) * gc.expand_dims(labels, 2), axis=1)
    filled = gc.max(gc.cast(lands, gc.int32), axis=1) > 0
    decoded = gc.where(filled, placed, gc.fill_like(placed, -1))
    return gc.expand_dims(decoded, 0), -gc.sum(best, axis=1, keepdims=True)


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1,
               merge_repeated=True, mask_index=0):
    """Keras's ops.ctc_decode of logits (batch, steps, classes) over each sequence's first
    sequence_lengths steps: (decoded, scores). "greedy": decoded (1, batch, steps), -1
    padded, scores (batch, 1) the negated sum of the chosen logits; "beam_search": decoded
    (top_paths, batch, steps) and scores (batch, top_paths) the log probabilities.
    mask_index (None: the last class) is the blank."""
    logits = _o._t(inputs)
    if logits.dtype not in (gc.float32, gc.float64):  # Keras decodes in float32 at least
        logits = gc.cast(logits, gc.float32)
    lengths = gc.cast(_o._t(sequence_lengths), gc.int32)
    blank = logits.shape[2] - 1 if mask_index is None else int(mask_index)
    if strategy == "greedy":
        return _greedy(logits, lengths, merge_repeated, blank)
    if strategy == "beam_search":
        return ctc_beam_search(logits, lengths, beam_width, top_paths, blank)
    raise ArgumentError(f"ctc_decode: strategy must be 'greedy' or 'beam_search', got "
                        f"{strategy!r}")
