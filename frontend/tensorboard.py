"""gk.callbacks.TensorBoard and the small event-file writer it uses: TensorBoard's files
are TFRecord files (each record: its length, a masked CRC-32C of it, the bytes, their masked
CRC-32C) of Event protocol buffers, which this module encodes by hand (a few fields of
event.proto and summary.proto), so graphc needs neither TensorFlow nor tensorboard.

Written: per epoch, each log value as a scalar "epoch_<name>" (train/ holds the training
logs, validation/ the val_ ones without their prefix), with update_freq="batch" or N also
"batch_<name>" every N batches, and with write_graph the model's graph (its nodes and their
inputs, as a GraphDef) in train/.
"""
import os
import socket
import struct
import time

import numpy as np

from .callbacks import Callback


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def record(data):
    """One TFRecord holding data."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked(crc32c(length))) + data
            + struct.pack("<I", _masked(crc32c(data))))


# ---- protocol buffer fields --------------------------------------------------------------------
def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64s as two's complement, as protobuf does
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(number, wire):
    return _varint(number << 3 | wire)


def _bytes(number, data):
    data = data.encode("utf-8") if isinstance(data, str) else data
    return _key(number, 2) + _varint(len(data)) + data


def event(step, wall_time=None, file_version=None, graph_def=None, summary=None):
    """An Event message: wall_time (1, double), step (2), file_version (3), graph_def (4),
    summary (5)."""
    out = _key(1, 1) + struct.pack("<d", time.time() if wall_time is None else wall_time)
    out += _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes(3, file_version)
    if graph_def is not None:
        out += _bytes(4, graph_def)
    if summary is not None:
        out += _bytes(5, summary)
    return out


def scalar_summary(tag, value):
    """A Summary with one Value: tag (1) and simple_value (2, float)."""
    value_msg = _bytes(1, tag) + _key(2, 5) + struct.pack("<f", float(value))
    return _bytes(1, value_msg)


def graph_def(graph):
    """A GraphDef of graph's nodes: NodeDef name (1), op (2), inputs (3)."""
    names = {}
    out = b""
    for node in graph.nodes:
        names[node] = f"{node.name}_{node.id}"
        inputs = b"".join(_bytes(3, names[t.node]) for t in node.inputs if t.node in names)
        out += _bytes(1, _bytes(1, names[node]) + _bytes(2, node.op) + inputs)
    return out


class EventWriter:
    """Appends events to one events.out.tfevents.<time>.<host> file in log_dir."""

    def __init__(self, log_dir):
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(log_dir, name)
        self._file = open(self.path, "wb")
        self.write(event(0, file_version="brain.Event:2"))

    def write(self, data):
        self._file.write(record(data))

    def scalar(self, tag, value, step):
        self.write(event(step, summary=scalar_summary(tag, value)))

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()


class TensorBoard(Callback):
    """Logs for TensorBoard: scalars per epoch (and per batch with update_freq), and the
    graph (write_graph). Histograms, images, profiling and embeddings are not written."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.write_graph = write_graph
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers = {}
        self._batches = 0

    def _writer(self, part):
        if part not in self._writers:
            self._writers[part] = EventWriter(os.path.join(self.log_dir, part))
        return self._writers[part]

    def on_train_begin(self, logs=None):
        self._batches = 0
        if self.write_graph and self.model is not None:
            self._writer("train").write(event(0, graph_def=graph_def(self.model.graph)))

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if isinstance(self.update_freq, int) and self._batches % self.update_freq == 0:
            for name, value in (logs or {}).items():
                if np.ndim(value) == 0:
                    self._writer("train").scalar(f"batch_{name}", value, self._batches)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if np.ndim(value):
                continue  # a per-class metric: TensorBoard scalars are numbers
            part, tag = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            self._writer(part).scalar(f"epoch_{tag}", value, epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    on_fit_stopped = on_train_end
