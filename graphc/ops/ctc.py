"""ctc_beam_search: CTC prefix beam search over logits, as Keras 3 on JAX decodes: log-softmax
of the logits, beam_width prefixes kept per step, each split into the part ending in a blank
and the part ending in a label; prefixes that become equal are merged (their probabilities
added in log space); the top_paths best prefixes at the end. Its search is data-dependent
(which prefixes survive, which merge), so it runs through its numpy reference between native
steps (kind "host"), one sequence at a time, in the steps and tie orders of Keras's JAX code
(stable sorts; the classes reversed, so that equal scores keep TensorFlow's order)."""
import numbers

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import dtypes
from ..ir.types import TensorType, format_shape
from .registry import NOT_DIFFERENTIABLE, apply, register
from .sources import as_tensor

__all__ = ["ctc_beam_search"]

PAD = -1


def _infer(logits, lengths, *, beam_width, top_paths, mask_index):
    if logits.rank != 3 or lengths.rank != 1:
        raise ShapeError(f"ctc_beam_search takes logits (batch, steps, classes) and lengths "
                         f"(batch,), got {format_shape(logits.shape)} and "
                         f"{format_shape(lengths.shape)}")
    if logits.dtype not in (dtypes.float32, dtypes.float64) or not lengths.dtype.is_integer:
        raise DTypeError(f"ctc_beam_search takes float32/64 logits and integer lengths, got "
                         f"{logits.dtype.name} and {lengths.dtype.name}")
    classes = logits.shape[2]
    if isinstance(classes, numbers.Integral) and not 0 <= mask_index < classes:
        raise ShapeError(f"ctc_beam_search: mask_index {mask_index} is not one of the "
                         f"{classes} classes")
    batch, steps = logits.shape[0], logits.shape[1]
    return (TensorType(dtypes.int32, (top_paths, batch, steps)),
            TensorType(logits.dtype, (batch, top_paths)))


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _merge(inverse, scores):
    """The scores of equal prefixes added in log space (by their row among the unique ones)."""
    top = np.max(scores)
    merged = np.zeros_like(scores)
    np.add.at(merged, inverse, np.exp(scores - top))
    return np.log(merged) + top


def _unique(paths, size):
    """jnp.unique(paths, axis=0, size=size, fill_value=PAD): the sorted distinct rows padded
    with rows of PAD, and each row's index among them."""
    rows, inverse = np.unique(paths, axis=0, return_inverse=True)
    padded = np.full((size, paths.shape[1]), PAD, paths.dtype)
    padded[:len(rows)] = rows
    return padded, inverse.reshape(-1)


def _decode_one(logp, length, beam_width, top_paths, blank):
    """One sequence's (top_paths, steps) prefixes and their scores (logp: (steps, classes),
    classes reversed; blank: the reversed blank index)."""
    steps, classes = logp.shape
    width = 2 * beam_width
    size = width * classes
    starts = min(classes, beam_width)
    best = np.argsort(logp[0], kind="stable")[-starts:]
    paths = np.full((width, steps), PAD, np.int32)
    paths[:starts, 0] = np.where(best == blank, PAD, best)
    scores = np.full(width, -np.inf, logp.dtype)
    scores[:starts] = logp[0, best]
    masked = paths[:, 0] == PAD
    labels = np.arange(classes)
    labels[blank] = PAD
    labels = np.tile(labels, width)
    rows = np.arange(size)
    for t in range(1, max(min(int(length), steps), 1)):
        # every prefix extended by every class (the blank and a repeat add no label)
        paths, scores = np.repeat(paths, classes, axis=0), np.repeat(scores, classes)
        tail_at = np.argmax(paths == PAD, axis=1)
        tails = np.where(tail_at == 0, PAD, paths[rows, tail_at - 1])
        repeat = ~np.repeat(masked, classes) & (tails == labels)
        masked = labels == PAD
        paths[rows, tail_at] = np.where(repeat, PAD, labels)
        scores = scores + np.tile(logp[t], width)
        # equal prefixes merged, the beam_width best kept, each as its label and blank parts
        paths, inverse = _unique(paths, size)
        emit = _merge(inverse, np.where(masked, -np.inf, scores))
        blank_part = _merge(inverse, np.where(masked, scores, -np.inf))
        keep = np.argsort(np.logaddexp(emit, blank_part), kind="stable")[-beam_width:]
        paths = np.tile(paths[keep], (2, 1))
        scores = np.concatenate([emit[keep], blank_part[keep]])
        masked = np.repeat([False, True], beam_width)
    paths, inverse = _unique(paths, size)
    scores = _merge(inverse, scores)
    top = np.argsort(scores, kind="stable")[-top_paths:][::-1]
    return paths[top], scores[top]


def _ref(logits, lengths, *, beam_width, top_paths, mask_index):
    classes = logits.shape[2]
    # reversed classes: Keras's trick for TensorFlow's order among equal scores
    logp = _log_softmax(logits)[:, :, ::-1]
    blank = classes - mask_index - 1
    with np.errstate(all="ignore"):  # -inf - -inf where no prefix has a part
        decoded = [_decode_one(logp[b], lengths[b], beam_width, top_paths, blank)
                   for b in range(logits.shape[0])]
    paths = np.stack([p for p, _ in decoded]) if decoded else \
        np.zeros((0, top_paths, logits.shape[1]), np.int32)
    scores = np.stack([s for _, s in decoded]) if decoded else \
        np.zeros((0, top_paths), logits.dtype)
    paths = np.where(paths == PAD, PAD, classes - paths - 1).astype(np.int32)
    return np.transpose(paths, (1, 0, 2)), scores.astype(logits.dtype)


register("ctc_beam_search", infer=_infer, ref=_ref, grad=NOT_DIFFERENTIABLE, kind="host",
         doc="CTC prefix beam search: the top_paths best label sequences (-1 padded) of "
             "logits (batch, steps, classes) and their log probabilities")


def ctc_beam_search(logits, lengths, beam_width=100, top_paths=1, mask_index=0, name=None):
    """(paths (top_paths, batch, steps) int32, -1 padded; scores (batch, top_paths)): the best
    label sequences of each sequence's first `lengths` steps by CTC prefix beam search, and
    their log probabilities; mask_index is the blank class."""
    if not 1 <= int(top_paths) <= int(beam_width):
        raise ShapeError(f"ctc_beam_search needs 1 <= top_paths <= beam_width, got "
                         f"top_paths={top_paths}, beam_width={beam_width}")
    return apply("ctc_beam_search", [as_tensor(logits), as_tensor(lengths)], name=name,
                 beam_width=int(beam_width), top_paths=int(top_paths),
                 mask_index=int(mask_index))
