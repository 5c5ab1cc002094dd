"""Ctrl-C during fit: the step that runs finishes, then KeyboardInterrupt is raised.

A SIGINT that lands while a train step runs would otherwise leave the step's outputs
unapplied or a callback's file half-handled. Within `deferred()` the first SIGINT only marks
the interrupt; fit raises KeyboardInterrupt at its next check (after a step and its callbacks,
after each validation batch), so the model is at the last completed step. A second SIGINT
raises at once, for a step that takes too long. Only the main thread gets signals, and a handler
the user installed is left alone.
"""
import contextlib
import signal
import threading


class Interrupt:
    def __init__(self):
        self.pending = False

    def handle(self, signum, frame):
        if self.pending:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        """Raise the KeyboardInterrupt a SIGINT asked for, at this safe point."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    interrupt = Interrupt()
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if ours:
        signal.signal(signal.SIGINT, interrupt.handle)
    try:
        yield interrupt
    finally:
        if ours:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt.check()  # a SIGINT after the last check
