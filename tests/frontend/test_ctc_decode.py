"""gk.ops.ctc_decode against numpy references written from CTC's definition: greedy decoding
(each step's best class, repeats merged, blanks dropped) and, for beam search with a beam
wide enough to keep every prefix, the exact label sequences of highest probability found by
summing the probabilities of all alignments (benchmarks/keras_ops_parity.py compares both
strategies with Keras's own outputs)."""
import itertools

import numpy as np
import pytest

import graphc as gc
import graphc.frontend as gk

rng = np.random.default_rng(5)


def _decode(logits, lengths, **kwargs):
    x = gc.placeholder(gc.float32, (None, None, logits.shape[2]))
    n = gc.placeholder(gc.int32, (None,))
    decoded, scores = gk.ops.ctc_decode(x, n, **kwargs)
    return gc.Session().run([decoded, scores], feed_dict={x: logits, n: lengths})


def _greedy_reference(logits, lengths, merge_repeated, blank):
    batch, steps, _ = logits.shape
    decoded = np.full((batch, steps), -1)
    scores = np.zeros((batch, 1), np.float64)
    for b in range(batch):
        n = max(0, min(lengths[b], steps))
        best = logits[b, :n].argmax(-1)
        labels = [c for t, c in enumerate(best)
                  if c != blank and not (merge_repeated and t and best[t - 1] == c)]
        decoded[b, :len(labels)] = labels
        scores[b] = -logits[b, :n].max(-1).sum()
    return decoded[None], scores


@pytest.mark.parametrize("merge_repeated,blank", [(True, 0), (False, 0), (True, 3)])
def test_greedy_decoding_matches_numpy(merge_repeated, blank):
    logits = rng.normal(size=(5, 7, 4)).astype("float32")
    logits[1, 2:5] = logits[1, 2]  # one best class three times in a row
    logits[2, 3] = -0.0
    lengths = np.array([7, 5, 0, 3, 12], np.int32)  # empty and longer than the steps
    decoded, scores = _decode(logits, lengths, merge_repeated=merge_repeated,
                              mask_index=blank)
    expected, expected_scores = _greedy_reference(logits, lengths, merge_repeated, blank)
    np.testing.assert_array_equal(decoded, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-6, atol=1e-6)
    # mask_index=None: the last class is the blank
    decoded, _ = _decode(logits, lengths, mask_index=None)
    np.testing.assert_array_equal(decoded, _greedy_reference(logits, lengths, True, 3)[0])


def _labelings(logits, blank):
    """{labels: probability} summed over every alignment of the steps (softmax per step)."""
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    totals = {}
    for path in itertools.product(range(logits.shape[1]), repeat=len(logits)):
        merged = [c for t, c in enumerate(path) if t == 0 or path[t - 1] != c]
        labels = tuple(c for c in merged if c != blank)
        totals[labels] = totals.get(labels, 0.0) + np.prod(p[np.arange(len(path)), path])
    return totals


@pytest.mark.parametrize("blank", [0, 2])
def test_a_wide_beam_finds_the_most_probable_labelings(blank):
    logits = (rng.normal(size=(3, 5, 3)) * 1.5).astype("float64")
    lengths = np.array([5, 4, 2], np.int32)
    x = gc.placeholder(gc.float64, (None, 5, 3))
    n = gc.placeholder(gc.int64, (None,))
    decoded, scores = gc.Session().run(
        list(gk.ops.ctc_decode(x, n, strategy="beam_search", beam_width=64, top_paths=3,
                               mask_index=blank)),
        feed_dict={x: logits, n: lengths.astype(np.int64)})
    assert decoded.shape == (3, 3, 5) and scores.shape == (3, 3)
    for b in range(3):
        totals = _labelings(logits[b, :lengths[b]], blank)
        best = sorted(totals.items(), key=lambda kv: -kv[1])[:3]
        for k, (labels, prob) in enumerate(best):
            np.testing.assert_array_equal(decoded[k, b, :len(labels)], labels)
            assert np.all(decoded[k, b, len(labels):] == -1)
            np.testing.assert_allclose(scores[b, k], np.log(prob), rtol=1e-9)


def test_beam_search_of_one_path_agrees_with_greedy_where_one_class_dominates():
    # every step's best class far above the others: both strategies find the same labels
    classes = rng.integers(0, 5, (4, 9))
    logits = (np.eye(5)[classes] * 30 + rng.normal(size=(4, 9, 5))).astype("float32")
    lengths = np.array([9, 6, 1, 4], np.int32)
    greedy, _ = _decode(logits, lengths)
    beam, scores = _decode(logits, lengths, strategy="beam_search", beam_width=5)
    np.testing.assert_array_equal(beam, greedy)
    assert np.all(scores <= 0) and np.all(scores > -1e-3 * 9)


def test_bad_arguments_are_refused():
    x = gc.placeholder(gc.float32, (2, 3, 4))
    n = gc.placeholder(gc.int32, (2,))
    with pytest.raises(ValueError, match="strategy"):
        gk.ops.ctc_decode(x, n, strategy="prefix")
    with pytest.raises(ValueError, match="top_paths"):
        gk.ops.ctc_decode(x, n, strategy="beam_search", beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="mask_index"):
        gk.ops.ctc_decode(x, n, strategy="beam_search", mask_index=4)
    with pytest.raises(TypeError, match="lengths"):
        gc.ops.ctc.ctc_beam_search(x, gc.placeholder(gc.float32, (2,)))
