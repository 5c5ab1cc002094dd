"""Keras-style progress output for fit, evaluate and predict.

verbose=1 on a terminal: a bar per epoch redrawn in place (steps, ETA, loss and metrics),
ending with the time per step. The bar draws its unfilled track, as Keras does
(`[=========>..........]`), so it keeps its width. verbose=1 when stdout is not a terminal
(a log file, CI), and verbose=2: one line per epoch, so logs are not flooded.

gk.utils.disable_interactive_logging() sends those lines to the Python logger
"graphc.frontend" (level INFO) instead of stdout, as Keras sends them to absl's.
"""
import logging
import sys
import time

BAR = 20
REDRAW_SECONDS = 0.05
_interactive = [True]


def enable_interactive_logging():
    _interactive[0] = True


def disable_interactive_logging():
    _interactive[0] = False


def is_interactive_logging_enabled():
    return _interactive[0]


def output_stream():
    """Where progress goes: stdout, or the logger while interactive logging is off."""
    return sys.stdout if _interactive[0] else _LogStream()


class _LogStream:
    """A write()-able stream that logs each line it is given."""

    def write(self, text):
        for line in text.splitlines():
            if line.strip():
                logging.getLogger("graphc.frontend").info(line)

    def flush(self):
        pass

    def isatty(self):
        return False


def _format_logs(logs):
    return "".join(f" - {k}: {_format_value(v)}" for k, v in logs.items())


def _format_value(value):
    if hasattr(value, "ndim") and value.ndim:  # a per-class metric
        return "[" + " ".join(f"{v:.4f}" for v in value.ravel()) + "]"
    return f"{value:.4f}"


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{seconds:.0f}s"


def _bar(done):
    """[=====>....] for the fraction `done` of the steps, BAR + 2 characters wide."""
    filled = int(BAR * done)
    arrow = ">" if 0 < filled < BAR else ""
    return "[" + "=" * (filled - len(arrow)) + arrow + "." * (BAR - filled) + "]"


def _per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """A bar over `target` steps written to `stream`."""

    def __init__(self, target, stream=None, live=None):
        self.target = target
        self.stream = stream or output_stream()
        self.live = self.stream.isatty() if live is None else live
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._width = 0
        self._open = False   # a live line drawn without its newline yet

    def update(self, step, logs, final=False):
        """Show progress after `step` steps (1-based)."""
        now = time.perf_counter()
        if not final and (not self.live or now - self._last_draw < REDRAW_SECONDS):
            return
        self._last_draw = now
        elapsed = now - self.start
        done = min(step / self.target, 1.0) if self.target else 1.0
        width = len(str(self.target))
        head = f"{step:>{width}}/{self.target}" + (f" {_bar(done)}" if self.live else "")
        if final:
            timing = f" {_format_time(elapsed)} {_per_step(elapsed / max(step, 1))}"
        else:
            eta = elapsed / max(step, 1) * (self.target - step)
            timing = f" ETA: {_format_time(eta)}"
        line = head + timing + _format_logs(logs)
        if self.live:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad + ("\n" if final else ""))
            self._width = len(line)
            self._open = not final
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end_line(self):
        """End a live line left open (fit stopped by Ctrl-C or an error), so that what is
        printed next starts on a line of its own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
