"""Signals the command line treats alike: SIGTERM as an interrupt, and a window in which
SIGINT and SIGTERM wait.

:func:`sigterm_as_interrupt` makes SIGTERM (what ``kill``, Slurm and most supervisors
send) raise :class:`Terminated`, a ``KeyboardInterrupt``, so that code which cleans up
after Ctrl-C (the training loop writes ``summary.json`` with status "interrupted") does
the same after SIGTERM. :func:`signals_deferred` holds both signals back while a file that
must not be cut short is written, or a subprocess is started and recorded (they are
re-raised when it ends).

Handlers are Python-level, so only the main thread installs them; elsewhere both context
managers do nothing. Nothing here depends on the rest of alignlab.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "signals_deferred", "sigterm_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt inside :func:`sigterm_as_interrupt`."""


def _on_sigterm(signum, frame):
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) for the duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:  # None: a handler not installed from Python, i.e. the default
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration; they are re-raised when it ends.

    Python-level handlers (not a thread's signal mask): whichever OS thread the signal
    lands on, Python runs the handler in the main thread, so worker threads (a simulator's
    pool) cannot let it through. Only the main thread may install handlers; elsewhere the
    body simply runs. A signal this process ignores (SIGINT in a shell script's background
    job) stays ignored: nothing to hold, and a subprocess started meanwhile inherits it
    ignored, as it would outside.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = [s for s in (signal.SIGINT, signal.SIGTERM)
            if signal.getsignal(s) is not signal.SIG_IGN]
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        for s in pending:
            signal.raise_signal(s)
