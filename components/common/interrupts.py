"""A request to stop a run (SIGTERM from a scheduler, SIGINT from Ctrl-C), recorded once and
honoured at safe points.

The handler records the request before it raises KeyboardInterrupt, because the exception
alone is not reliable: a signal that lands inside a weakref callback or a finalizer is
printed as "Exception ignored" and lost, and one that lands inside a Beam stage comes back as
a RuntimeError. So every place that decides what happens next asks `requested()`:

- the runner's launcher, before and after each component (no component starts after a stop
  request, the Pusher included);
- the Trainer's progress callback, after every batch (training stops within one step);
- the atomic Pusher, just before the rename that makes a version visible (nothing is pushed
  after a request, wherever it landed);
- the runner, when a component failed or the pipeline returned: a failure after a request is
  an interruption, not a failure.

Light on purpose: no TensorFlow imports.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Set by the handler, which Python runs on the main thread: no lock (a second signal arriving
# while the first handler held one would deadlock).
_requested: str | None = None


class RunInterrupted(KeyboardInterrupt):
    """Raised at a safe point after a stop request; a KeyboardInterrupt, so every handler that
    treats Ctrl-C as the end of the run treats this the same way."""


def requested() -> str | None:
    """The name of the signal that asked the run to stop (SIGTERM, SIGINT), or None."""
    return _requested


def request(reason: str) -> None:
    """Records a stop request (the signal handler's first step; tests call it directly)."""
    global _requested
    if _requested is None:
        _requested = reason


def clear() -> None:
    global _requested
    _requested = None


def check(where: str) -> None:
    """Raises RunInterrupted when a stop was requested; `where` names the safe point."""
    if _requested is not None:
        raise RunInterrupted(f"{_requested}: stopped {where}")


def _handler(signum, frame):  # noqa: ARG001 (signal's signature)
    request(signal.Signals(signum).name)
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals():
    """Installs the recording handler for SIGINT and SIGTERM meanwhile (main thread only);
    the previous handlers come back after, and the request is cleared on entry and on exit (a
    later run in the same process, a notebook's, never inherits it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear()
    previous = {s: signal.signal(s, _handler) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        clear()
