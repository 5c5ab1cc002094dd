"""gc.distributed: one model trained by several processes of an MPI job (Horovod's approach).

    mpiexec -n 4 python train.py               # MPICH's, from the `mpi` extra (pip wheels)

    gc.distributed.init()                      # idempotent; a plain `python train.py` is size 1
    gc.distributed.rank(), gc.distributed.size()
    y = gc.distributed.allreduce(t, op="mean") # or "sum": a graph op with a gradient
    y = gc.distributed.broadcast(t, root=0)
    opt = gc.train.DistributedOptimizer(gc.train.AdamOptimizer(1e-3))
    sess.run(gc.distributed.broadcast_variables(root=0))

The collectives are ops of the registry (graphc/ops/collectives.py). On device cpu an
allreduce is two steps of the program (compiler.CollectiveStep): the start calls
MPI_Iallreduce (NativeMpi: mpi4py's libmpi through ctypes) on the addresses of the plan's input
and output buffers, the runtime calls MPI_Test between the following steps, and the wait calls
MPI_Wait just before the result's first use. Elsewhere (the reference, device cuda, loop
bodies, every broadcast) a collective is a host step that hands its input buffer (a numpy view
of the plan's memory) to the communicator's mpi4py buffer calls: an allreduce is then a
reduce-scatter and an allgather (each chunk reduced once, on one rank, so every rank gets
bitwise the same result), or for small tensors an allgather summed in rank order, copied into
the output buffer. Gradients are fused into buckets (`grouped_allreduce`), one collective per
bucket.

The first time a process runs a collective node, every rank first compares a signature of it
(op, dtype, shape): graphs that differ across ranks (a variable of another shape) raise a
GraphcError on every rank instead of hanging or mixing garbage. A collective whose shape is
known only at run time (a batch axis of None) may change size from call to call, so every
later call of it is checked too, cheaply (an MPI_Allreduce of four int64s: the ranks' element
counts and dtypes agree or not); one of static shape (every gradient of a variable) cannot, and
is checked only the first time.

Faults: `init()` installs an excepthook that prints the traceback and calls MPI_Abort, so a
rank that raises ends the whole job (plain MPICH would wait in finalize forever); a rank killed
by a signal ends the job through the launcher.

Threads: with several ranks on one machine and GRAPHC_NUM_THREADS unset, init() gives each rank
its share of the machine's cores (cores // ranks on the machine), so ranks do not oversubscribe
it. Set GRAPHC_NUM_THREADS to choose.
"""
import ctypes
import os
import sys
import time

import numpy as np

from .errors import DTypeError, GraphcError
from .ir.graph import get_default_graph
from .ops.collectives import DTYPES, allreduce, broadcast

__all__ = ["init", "initialized", "rank", "size", "local_size", "allreduce", "broadcast",
           "broadcast_variables", "grouped_allreduce", "barrier", "stats", "communicator"]

# environment variables that MPI launchers set in every rank (MPICH's hydra, Open MPI, PMIx)
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                      "MPI_LOCALNRANKS")
_DTYPE_CODES = {"float32": 1, "float64": 2, "int32": 3, "int64": 4}  # for the size check
SMALL_BYTES = 1 << 16  # tensors up to this (times the ranks) go by allgather + local sum
DEFAULT_BUCKET_BYTES = 25 << 20  # PyTorch DDP's bucket size
FIRST_BUCKET_BYTES = 1 << 20  # and its first bucket's: its allreduce starts early

_comm = None


def launched():
    """Whether this process was started by an MPI launcher (mpiexec)."""
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def init():
    """Join the MPI job this process was launched in (idempotent). A process that no launcher
    started is a job of its own: size 1, rank 0, and MPI is not loaded."""
    global _comm
    if _comm is not None:
        return _comm
    if not launched():
        _comm = SingleProcess()
        return _comm
    # a deterministic allreduce (NativeMpi says why), unless the user chose one
    os.environ.setdefault("MPIR_CVAR_IALLREDUCE_INTRA_ALGORITHM", "sched_recursive_doubling")
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise GraphcError("this process runs under an MPI launcher, but mpi4py is not "
                          "installed: pip install 'graphc[mpi]'") from err
    _comm = MpiCommunicator(MPI)
    return _comm


def initialized():
    return _comm is not None


def communicator():
    """The job's communicator (init() if not done yet)."""
    return _comm if _comm is not None else init()


def rank():
    return communicator().rank


def size():
    return communicator().size


def local_size():
    """How many ranks of the job share this machine."""
    return communicator().local_size


def barrier():
    communicator().barrier()


def stats():
    """What this process's collectives did so far: {"calls", "bytes", "seconds"} (host time
    inside MPI, waiting for the slowest rank included), and of the allreduces run natively
    (started, then waited for): "native_calls", "communication_seconds" (from each start to
    its completion as first seen by MPI_Test or MPI_Wait) and "overlapped_seconds" (the part
    of that time the program spent running other steps, not inside MPI)."""
    c = communicator()
    return {"calls": c.calls, "bytes": c.bytes, "seconds": c.seconds,
            "native_calls": c.native_calls, "communication_seconds": c.communication_seconds,
            "overlapped_seconds": c.overlapped_seconds}


def grouped_allreduce(tensors, op="mean", bucket_bytes=DEFAULT_BUCKET_BYTES,
                      first_bucket_bytes=None):
    """allreduce of each tensor, small ones fused: tensors of one dtype are flattened and
    concatenated, in the order given, into buckets of up to `bucket_bytes` (the first of each
    dtype up to `first_bucket_bytes`, default the same), one collective per bucket, and cut
    back into their shapes (Horovod's tensor fusion). Returns the reduced tensors in order.
    On device cpu each bucket's allreduce starts as soon as its tensors are computed and is
    waited for just before its first use (compiler.schedule_collectives)."""
    first_bucket_bytes = bucket_bytes if first_bucket_bytes is None else first_bucket_bytes
    from .ops.shape import concat, reshape, split
    tensors = list(tensors)
    out = [None] * len(tensors)
    buckets = {}  # dtype -> [[index, ...], ...]
    for i, t in enumerate(tensors):
        if not t.type.is_static:
            out[i] = allreduce(t, op)  # a run-time shape: its own collective
            continue
        nbytes = int(np.prod(t.shape, dtype=np.int64)) * t.dtype.np.itemsize
        chain = buckets.setdefault(t.dtype.name, [[]])
        filled = sum(int(np.prod(tensors[j].shape, dtype=np.int64))
                     for j in chain[-1]) * t.dtype.np.itemsize
        cap = first_bucket_bytes if len(chain) == 1 else bucket_bytes
        if chain[-1] and filled + nbytes > cap:
            chain.append([])
        chain[-1].append(i)
    for chain in buckets.values():
        for bucket in chain:
            if len(bucket) == 1:
                out[bucket[0]] = allreduce(tensors[bucket[0]], op)
                continue
            flat = concat([reshape(tensors[i], (-1,)) for i in bucket], axis=0)
            sizes = [int(np.prod(tensors[i].shape, dtype=np.int64)) for i in bucket]
            for i, piece in zip(bucket, split(allreduce(flat, op), sizes)):
                out[i] = reshape(piece, tensors[i].shape)
    return out


def broadcast_variables(root=0, variables=None, graph=None):
    """One op that sets every variable (default: every variable of `graph`, default graph's:
    weights and optimizer slots) to rank `root`'s value; fetching it yields None. Variables of
    one dtype travel fused, one collective per dtype."""
    from .ops.shape import concat, reshape, split
    from .ops.state import assign, group
    graph = graph or get_default_graph()
    variables = list(graph.variables if variables is None else variables)
    if not variables:
        raise GraphcError("broadcast_variables: the graph has no variables")
    by_dtype = {}
    for v in variables:
        if v.dtype.name not in DTYPES:
            raise DTypeError(f"broadcast_variables: variable '{v.name}' is {v.dtype.name}; "
                             f"collectives take {', '.join(DTYPES)}", v.node)
        by_dtype.setdefault(v.dtype.name, []).append(v)
    assigns = []
    with graph.as_default():
        for group_vars in by_dtype.values():
            if len(group_vars) == 1:
                assigns.append(assign(group_vars[0], broadcast(group_vars[0], root)))
                continue
            flat = concat([reshape(v, (-1,)) for v in group_vars], axis=0)
            sizes = [int(np.prod(v.shape, dtype=np.int64)) for v in group_vars]
            for v, piece in zip(group_vars, split(broadcast(flat, root), sizes)):
                assigns.append(assign(v, reshape(piece, v.shape)))
        return group(*assigns, name="broadcast_variables")


# ---- communicators ---------------------------------------------------------------------------
class Pending:
    """A started native allreduce: its request and when things happened (perf_counter)."""
    __slots__ = ("request", "out", "divide", "begun", "started", "done", "nbytes")

    def __init__(self, request, out, divide, begun, nbytes):
        self.request, self.out, self.divide = request, out, divide
        self.begun, self.started, self.done, self.nbytes = begun, None, None, nbytes


class SingleProcess:
    """A job of one process: the collectives are the identity."""
    rank, size, local_size = 0, 1, 1
    calls = bytes = native_calls = 0
    seconds = communication_seconds = overlapped_seconds = 0.0
    outstanding = ()

    def start_allreduce(self, uid, op, out, send, recv, static=False):
        """The native allreduce of a job of one: the input's bytes into the output's."""
        if send != recv:
            ctypes.memmove(recv, send, out.nbytes)
        return None

    def wait(self, pending):
        pass

    def progress(self):
        pass

    def allreduce(self, array, op, uid):
        return np.array(array)

    def broadcast(self, array, root, uid):
        if root != 0:
            raise GraphcError(f"broadcast from rank {root} in a job of 1 process")
        return np.array(array)

    def barrier(self):
        pass

    def bcast_object(self, obj, root=0):
        return obj

    def allgather_object(self, obj):
        return [obj]

    def abort(self, code=1):
        os._exit(code)


class MpiCommunicator:
    """A communicator of the job's processes (a duplicate of MPI_COMM_WORLD) on mpi4py's
    buffer interface: numpy arrays move without copies through Python objects."""

    def __init__(self, MPI):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = local.Get_size()
        local.Free()
        self.calls = self.bytes = self.native_calls = 0
        self.seconds = self.communication_seconds = self.overlapped_seconds = 0.0
        self.outstanding = []  # native allreduces started, not yet waited for (Pending)
        self._native = None
        self._checked = set()  # uids of collective nodes whose signature every rank agreed
        self.checks = 0  # per-call size checks made (_check)
        if "GRAPHC_NUM_THREADS" not in os.environ and self.local_size > 1:
            cores = len(os.sched_getaffinity(0))
            os.environ["GRAPHC_NUM_THREADS"] = str(max(1, cores // self.local_size))
        _install_abort_hook(self)

    # -- the collectives' references -------------------------------------------------------
    def _check(self, uid, signature, count=None, dtype=None):
        """Every rank's signature of the collective about to run; a GraphcError on every rank
        where they differ. The first time a node runs, the ranks compare the whole signature
        (a pickled allgather); after that, where `count` is given (a collective whose size may
        change from call to call: a shape known only at run time), a cheap check on every
        call: one blocking MPI_Allreduce (max) of four int64s (count, -count, dtype code,
        -dtype code), whose maxima say whether every rank sends as many elements of one dtype.
        Every rank gets the same maxima, so every rank takes the same branch."""
        if uid not in self._checked:
            self._disagree(self.comm.allgather(signature))
            self._checked.add(uid)
            return
        if count is None:
            return
        code = _DTYPE_CODES.get(np.dtype(dtype).name, 0)
        mine = np.array([count, -count, code, -code], np.int64)
        most = np.empty(4, np.int64)
        begun = time.perf_counter()
        self.comm.Allreduce(mine, most, op=self.MPI.MAX)
        self.seconds += time.perf_counter() - begun
        self.checks += 1
        if most[0] != -most[1] or most[2] != -most[3]:
            self._disagree(self.comm.allgather(signature))

    @staticmethod
    def _disagree(seen):
        """A GraphcError where the ranks' signatures `seen` (one per rank) differ."""
        if any(s != seen[0] for s in seen):
            rows = "; ".join(f"rank {r}: {s}" for r, s in enumerate(seen))
            raise GraphcError(f"the ranks run different collectives here ({rows}): every rank "
                              "must build the same graph (the same variables, of the same "
                              "shapes, in the same order) and feed a collective whose shape "
                              "is known only at run time tensors of the same shape")

    def allreduce(self, array, op, uid):
        array = np.ascontiguousarray(array)
        self._check(uid, f"allreduce {op} {array.dtype}{list(array.shape)}", array.size,
                    array.dtype)
        start = time.perf_counter()
        flat = array.reshape(-1)
        n, size = flat.size, self.size
        if n * flat.itemsize * size <= SMALL_BYTES:
            gathered = np.empty((size, n), flat.dtype)
            self.comm.Allgather(flat, gathered)
            result = gathered[0].copy()
            for r in range(1, size):  # in rank order, the same sum on every rank
                result += gathered[r]
        else:
            chunk = -(-n // size)
            if chunk * size != n:
                padded = np.zeros(chunk * size, flat.dtype)
                padded[:n] = flat
            else:
                padded = flat
            mine = np.empty(chunk, flat.dtype)
            # each chunk is reduced once, on one rank, then every rank gets every chunk
            self.comm.Reduce_scatter_block(padded, mine, op=self.MPI.SUM)
            result = np.empty(chunk * size, flat.dtype)
            self.comm.Allgather(mine, result)
            result = result[:n]
        if op == "mean":
            result /= np.asarray(size, result.dtype)
        self._count(start, array.nbytes)
        return result.reshape(array.shape)

    # -- native allreduces: MPI's C calls on the plan's buffers ----------------------------
    def start_allreduce(self, uid, op, out, send, recv, static=False):
        """Start the allreduce (MPI_Iallreduce) of the `out.size` elements at address `send`
        into those at address `recv` (the plan's buffers, the output `out` a numpy view of
        the latter, used for nothing but its type and, for op="mean", the division in place
        once complete). static: the node's shape is fixed in the graph (a gradient's), so
        its size cannot change after the first call's check, and later calls skip the
        per-call one (_check). Returns the Pending to wait for."""
        native = self._native or self._load_native()
        self._check(uid, f"allreduce {op} {out.dtype}{list(out.shape)}",
                    None if static else out.size, out.dtype)
        if out.size > 2**31 - 1:
            raise GraphcError(f"allreduce of {out.size} elements: more than MPI's int count")
        begun = time.perf_counter()
        request = native.handle()
        code = native.iallreduce(send, recv, out.size, native.types[out.dtype.name],
                                 native.sum, native.comm_handle, ctypes.byref(request))
        if code:
            raise GraphcError(f"MPI_Iallreduce failed with error {code}")
        pending = Pending(request, out, op == "mean", begun, out.nbytes)
        pending.started = time.perf_counter()
        self.seconds += pending.started - begun
        self.outstanding.append(pending)
        return pending

    def progress(self):
        """Let MPI move the outstanding allreduces along (MPI_Test on each), noting when each
        completes. The runtime calls it between the steps that follow a start."""
        native, flag = self._native, ctypes.c_int(0)
        begun = time.perf_counter()
        for p in self.outstanding:
            if p.done is None:
                native.test(ctypes.byref(p.request), ctypes.byref(flag), native.status_ignore)
                if flag.value:
                    p.done = time.perf_counter()
        self.seconds += time.perf_counter() - begun

    def wait(self, pending):
        """Complete an allreduce (MPI_Wait), then for op="mean" divide in place."""
        native = self._native
        waited = time.perf_counter()
        if pending.done is None:
            code = native.wait(ctypes.byref(pending.request), native.status_ignore)
            if code:
                raise GraphcError(f"MPI_Wait failed with error {code}")
            pending.done = time.perf_counter()
        self.outstanding.remove(pending)
        if pending.divide:
            np.divide(pending.out, pending.out.dtype.type(self.size), out=pending.out)
        end = time.perf_counter()
        self.seconds += end - waited
        self.calls += 1
        self.native_calls += 1
        self.bytes += pending.nbytes
        self.communication_seconds += pending.done - pending.begun
        self.overlapped_seconds += max(0.0, min(pending.done, waited) - pending.started)

    def _load_native(self):
        self._native = NativeMpi(self.MPI, self.comm)
        return self._native

    def broadcast(self, array, root, uid):
        if not 0 <= root < self.size:
            raise GraphcError(f"broadcast from rank {root} in a job of {self.size} processes")
        out = np.array(array, order="C")
        self._check(uid, f"broadcast from {root} {out.dtype}{list(out.shape)}", out.size,
                    out.dtype)
        start = time.perf_counter()
        self.comm.Bcast(out, root=root)
        self._count(start, out.nbytes)
        return out

    def _count(self, start, nbytes):
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.bytes += nbytes

    # -- control (Python objects: the frontend's shuffling state, predictions) -------------------
    def barrier(self):
        self.comm.Barrier()

    def bcast_object(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def abort(self, code=1):
        self.comm.Abort(code)


class NativeMpi:
    """The MPI library that mpi4py loaded, called through ctypes on raw addresses: no Python
    object holds the data. Its own duplicate of the job's communicator carries the native
    allreduces, which one thread starts in program order (the same order on every rank).

    MPICH picks an allreduce algorithm by message size; unless MPIR_CVAR_IALLREDUCE_INTRA_
    ALGORITHM is set, init() asks for recursive doubling, in which both partners of each
    exchange add the same two values (a float sum is commutative, exactly), so every rank
    ends with bitwise the same result, and a run with the same inputs gives the same bytes."""

    def __init__(self, MPI, comm):
        path = loaded_libmpi()
        if path is None:
            raise GraphcError("native collectives: no libmpi among the loaded libraries")
        lib = ctypes.CDLL(path)
        # handles are ints in MPICH's ABI, pointers in Open MPI's
        handle = ctypes.c_int if MPI._sizeof(MPI.Comm) == 4 else ctypes.c_void_p
        self.handle = handle
        self.comm = comm.Dup()

        def h(obj):
            value = obj.handle & (2**(8 * ctypes.sizeof(handle)) - 1)
            return handle(ctypes.c_int32(value).value if handle is ctypes.c_int else value)
        self.comm_handle = h(self.comm)
        self.types = {"float32": h(MPI.FLOAT), "float64": h(MPI.DOUBLE),
                      "int32": h(MPI.INT32_T), "int64": h(MPI.INT64_T)}
        self.sum = h(MPI.SUM)
        # MPI_STATUS_IGNORE: (MPI_Status *) 1 in MPICH and its derivatives, NULL in Open MPI
        self.status_ignore = ctypes.c_void_p(
            None if "Open MPI" in MPI.Get_library_version() else 1)
        self.iallreduce = lib.MPI_Iallreduce
        self.iallreduce.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, handle,
                                    handle, handle, ctypes.POINTER(handle)]
        self.iallreduce.restype = ctypes.c_int
        self.test = lib.MPI_Test
        self.test.argtypes = [ctypes.POINTER(handle), ctypes.POINTER(ctypes.c_int),
                              ctypes.c_void_p]
        self.test.restype = ctypes.c_int
        self.wait = lib.MPI_Wait
        self.wait.argtypes = [ctypes.POINTER(handle), ctypes.c_void_p]
        self.wait.restype = ctypes.c_int
        self.path = path


def loaded_libmpi():
    """The path of the libmpi this process loaded (mpi4py's), from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                name = line.split()[-1] if len(line.split()) >= 6 else ""
                if os.path.basename(name).startswith("libmpi.so"):
                    return name
    except OSError:
        pass
    return None


def _install_abort_hook(comm):
    """An uncaught exception on any rank prints its traceback, then aborts the whole job."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            sys.stderr.write(f"graphc.distributed: rank {comm.rank} of {comm.size} failed; "
                             "aborting the job\n")
            previous(kind, value, tb)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            comm.abort(1)
    sys.excepthook = hook
