"""Where the frontend's state lives: one gc.Session per graph holds every weight's value, and
one seed stream makes weight initialization, dropout and shuffling reproducible.

Models and layers built in one graph share its session, so a layer used by two models has one
value. Asking for another device moves the values into a new session on that device.
"""
import weakref

import numpy as np

import graphc as gc
from graphc.runtime.devices import check_device

_sessions = weakref.WeakKeyDictionary()  # graph -> Session
_seeds = [np.random.default_rng()]


def session(graph, device=None):
    """The session holding `graph`'s weight values, on `device` (None: the current one, else
    graphc's default)."""
    sess = _sessions.get(graph)
    if sess is None:
        sess = gc.Session(graph, device=device)
    elif device is not None and check_device(device) != sess.device:
        moved = gc.Session(graph, device=device)
        for var in graph.variables:
            moved.set_value(var, sess.get_value(var))
        sess = moved
    _sessions[graph] = sess
    return sess


def set_random_seed(seed):
    """Make what follows reproducible: weight initializers, dropout masks and fit's shuffling
    draw their seeds from one stream started here."""
    _seeds[0] = np.random.default_rng(seed)


def next_seed():
    """A fresh 31-bit seed from the stream set by set_random_seed."""
    return int(_seeds[0].integers(0, 2 ** 31 - 1))
