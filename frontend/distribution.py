"""gk.distribution: data-parallel training on the processes of an MPI job.

    gk.distribution.set_distribution(gk.distribution.DataParallel())
    model.fit(x, y, batch_size=128)          # under `mpiexec -n 4 python train.py`

With DataParallel set, fit, evaluate and predict are data parallel (the graphs they compile
are built with the collectives below, so set it before the first fit):
- every global batch of `batch_size` examples is split across the ranks, each rank taking
  its own contiguous shard (np.array_split: sizes differ by at most one; a rank may get none of
  a last batch smaller than the job);
- fit starts from rank 0's weights, optimizer state and shuffling state (broadcast at the start
  of every fit), and each step averages the gradients over the global batch: a rank's
  gradient is weighted by its share of the batch's examples (an empty shard counts zero), so
  the update is the one a single process makes on the whole global batch, up to float32
  reordering, and the weights stay bitwise identical on every rank;
- losses and metrics sum their totals and counts over the ranks inside the step, so every rank
  logs the same values (the mean over all examples), and History, evaluate() and every callback
  decision (EarlyStopping, ReduceLROnPlateau) agree on every rank;
- predict returns every rank the whole prediction (the shards gathered in order);
- only rank 0 prints progress and writes files (ModelCheckpoint, model.save, save_weights,
  CSVLogger, BackupAndRestore); the other ranks wait for the write, so any rank can load the
  file right after.
- random draws in the train step shaped like the batch (dropout masks, noise, gc.random draws
  like a batch tensor) are the global batch's: every rank starts from rank 0's generator states
  (broadcast at the start of every fit), draws for the whole global batch
  (gc.random.global_batch, fed the batch's size and the rank's first row) and keeps its rows,
  so the ranks' masks together are the single-process masks;
- BatchNormalization in training normalizes with the mean and variance of the global batch
  (sync batch norm: per-rank sums and counts, then sums of squared deviations, allreduced; the
  gradient flows back through the allreduces), and updates its moving statistics from them.
"""
import contextlib

import numpy as np

import graphc as gc
from graphc.errors import GraphcError


class DataParallel:
    """Replicate the model on every rank of the MPI job, split each batch across them."""

    def __repr__(self):
        return "DataParallel()"


_current = [None]


def set_distribution(strategy):
    """Make fit/evaluate/predict follow `strategy` (a DataParallel; None: one process)."""
    if strategy is not None and not isinstance(strategy, DataParallel):
        raise GraphcError(f"set_distribution takes gk.distribution.DataParallel() or None, got "
                          f"{strategy!r}")
    if strategy is not None:
        gc.distributed.init()
    _current[0] = strategy


def distribution():
    return _current[0]


def active():
    """Whether steps are data parallel now."""
    return _current[0] is not None


def rank():
    return gc.distributed.rank() if active() else 0


def size():
    return gc.distributed.size() if active() else 1


def is_chief():
    """Whether this process prints and writes files: rank 0, or any process alone."""
    return rank() == 0


def shard(index, n):
    """This rank's part of a global batch of examples among n (a slice or an index array):
    contiguous, the sizes differing by at most one (np.array_split's cut)."""
    n_ranks = size()
    if n_ranks == 1:
        return index
    if isinstance(index, slice):
        start, stop = index.start or 0, min(index.stop, n)
        total = stop - start
    else:
        total = len(index)
    bounds = _bounds(total, n_ranks)
    lo, hi = bounds[rank()], bounds[rank() + 1]
    if isinstance(index, slice):
        return slice(start + lo, start + hi)
    return index[lo:hi]


def _bounds(total, parts):
    """np.array_split's cut points of `total` items into `parts`."""
    base, extra = divmod(total, parts)
    sizes = [base + 1] * extra + [base] * (parts - extra)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()


def chief_only(write):
    """Run `write()` on rank 0 only, the other ranks waiting until it is done (so that any
    rank can read what it wrote); returns what it returned (None elsewhere)."""
    if size() == 1:
        return write()
    result = write() if rank() == 0 else None
    gc.distributed.barrier()
    return result


def sum_over_ranks(values):
    """Inside a step: each scalar tensor of `values` summed over the ranks, in one collective
    (the identity when not data parallel)."""
    if not active():
        return list(values)
    stacked = gc.stack([gc.cast(v, gc.float32) for v in values])
    total = gc.distributed.allreduce(stacked, op="sum")
    return [total[i] for i in range(len(values))]


def bcast_object(obj):
    """rank 0's Python object, on every rank."""
    return gc.distributed.communicator().bcast_object(obj) if size() > 1 else obj


def allgather_object(obj):
    return gc.distributed.communicator().allgather_object(obj) if size() > 1 else [obj]


# ---- inside the train step -------------------------------------------------------------------
_step = [None]  # while a data-parallel train step is built: (rows, offset) placeholders


@contextlib.contextmanager
def train_step_scope(inputs):
    """While building the train step, data parallel: yields the [rows, offset] placeholders the
    step is fed (the global batch's size, this rank's first row of it); random draws shaped like
    the batch of `inputs` draw the global batch's numbers, and global_moments syncs. Alone:
    yields [] and changes nothing."""
    if not active():
        yield []
        return
    rows = gc.placeholder(gc.int64, (), name="global_batch_rows")
    offset = gc.placeholder(gc.int64, (), name="global_batch_offset")
    _step[0] = (rows, offset)
    try:
        with gc.random.global_batch(rows, offset, list(inputs)):
            yield [rows, offset]
    finally:
        _step[0] = None


def in_train_step():
    """Whether a data-parallel train step is being built (so layers sync over the ranks)."""
    return _step[0] is not None


def window(index, n):
    """[rows, offset] fed to a data-parallel train step for a global batch `index` (a slice or
    an index array, as shard takes): the batch's size and this rank's first row of it."""
    if isinstance(index, slice):
        total = min(index.stop, n) - (index.start or 0)
    else:
        total = len(index)
    return [np.int64(total), np.int64(_bounds(total, size())[rank()])]


def local_window(rows):
    """[rows, offset] for a step fed `rows` examples on this rank, the global batch being the
    ranks' examples in rank order (train_on_batch)."""
    counts = allgather_object(int(rows))
    return [np.int64(sum(counts)), np.int64(sum(counts[:rank()]))]


def global_moments(x, axes):
    """Mean and variance of x over `axes` (the batch's among them): inside a data-parallel
    train step, over the global batch (sync batch norm: per-rank sums and counts allreduced,
    then the sums of squared deviations from the global mean, so the figures are the
    single-process ones to float32 order; gradients flow through the allreduces). Only while
    in_train_step()."""
    count = gc.sum(gc.ones_like(x), axis=axes)
    total = gc.distributed.allreduce(gc.stack([gc.sum(x, axis=axes), count]), op="sum")
    count = gc.stop_gradient(total[1])
    mean = total[0] / count
    kept = [1 if i in axes else d for i, d in enumerate(x.shape)]
    centered = x - gc.reshape(mean, tuple(kept))
    squares = gc.distributed.allreduce(gc.sum(gc.square(centered), axis=axes), op="sum")
    return mean, squares / count
