"""gk.ops.ctc_loss: the connectionist temporal classification loss, computed as Keras 3 on
JAX computes it (Optax's forward recursion in log space, "impossible" paths at -1e5 rather
than -inf, so the loss and its gradient stay finite), as a gc.scan over time."""
import graphc as gc

from . import ops as _o
from .ops_numpy import logaddexp

__all__ = ["ctc_loss"]

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
