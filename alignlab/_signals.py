"""SIGTERM handled as Ctrl-C: one mechanism for every command that stops cleanly.

``kill PID`` (SIGTERM, what schedulers, ``timeout`` and container runtimes send) would end
Python at once, with no ``finally`` run: no ``summary.json`` for a run, no ``runs.csv`` for
a sweep. Inside :func:`terminate_as_interrupt` it raises :class:`KeyboardInterrupt` in the
main thread instead, so the code that already handles Ctrl-C (write what was done, stop the
workers, exit status 130) handles it too.

Nothing here depends on the rest of alignlab.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["terminate_as_interrupt"]


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (as Ctrl-C does); the
    previous handler is restored when it ends.

    Only the main thread may install signal handlers: elsewhere (a worker thread) the block
    runs unchanged. Python runs the handler in the main thread whichever thread the signal
    lands on. Signals held back by :func:`alignlab._output.write_together` during its
    renames are re-raised afterwards and then reach this handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:  # None: a handler not installed from Python, i.e. the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
