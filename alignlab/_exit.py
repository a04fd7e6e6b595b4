"""The exit statuses of every ``alignlab`` subcommand (one scheme; see ``docs/cli.md``).

Here, below every command module, so that a command (``train``, ``sweep``, ``figure3``)
returns a status without importing the top-level CLI; :mod:`alignlab.cli` re-exports it.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus"]


class ExitStatus(IntEnum):
    """The exit statuses of every subcommand."""

    OK = 0  # success
    CRASH = 1  # an unexpected exception: a traceback, i.e. a bug
    RUN_FAILED = 1  # (alias) sweep: a run of the grid did not finish (see its train.log)
    BAD_INPUT = 2  # bad input or unusable output location: one line, nothing written
    CLAIM_FAILED = 3  # a report ran and wrote its files, but the claim it checks failed
    DIVERGED = 4  # training diverged (NaN/inf loss); the last good checkpoint is kept
    WRITE_FAILED = 5  # a run could not write its folder mid-run (e.g. no space left on
    # device); it holds the last complete epoch and --resume continues it
    INTERRUPTED = 130  # Ctrl-C (SIGINT), or the reader closed the output pipe
    TERMINATED = 143  # SIGTERM, handled as Ctrl-C (128 + 15)
