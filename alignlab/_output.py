"""Output locations: checked before any work, written as one set.

Every command that writes results (``alignlab figure3 --out DIR``, ``alignlab theory --csv
PATH``, and the training harness's run directories and checkpoints) uses the same two
steps:

1. :func:`check_output_dir` / :func:`check_output_file` before the work starts: the
   location must be (or be creatable as) a writable folder. The check *probes* (creates
   and removes a temporary entry), because permission bits lie (root, read-only mounts,
   ``/proc``); it leaves nothing behind. A bad location raises :class:`UnusableOutput`, a
   ``ValueError`` in the package's one form ("`out_dir` must be a writable folder, ...").
2. :func:`write_together` when the results exist: every file is written under a hidden
   temporary name in the target folder (``.figure3.csv.<hex>.tmp``), flushed to disk, and
   only then renamed into place, with SIGINT and SIGTERM held back during the renames. A
   failure or interrupt while writing leaves the previous set untouched and no temporary
   file behind; folders created for the run are removed again.

The one window that is not atomic: the renames themselves (one ``os.replace`` per file,
microseconds in all). Signals are deferred until they are done, so Ctrl-C cannot split a
set; a SIGKILL or a power cut inside that window can (POSIX has no multi-file rename).
:func:`write_atomic` is the one-file case (a checkpoint).

Nothing here depends on the rest of alignlab but :mod:`alignlab._signals`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._signals import signals_deferred

__all__ = [
    "UnusableOutput",
    "check_output_dir",
    "check_output_file",
    "write_atomic",
    "write_together",
]

_PROBE_PREFIX = ".alignlab-probe-"


class UnusableOutput(ValueError):
    """The output location cannot be written (bad input: the CLI exits with status 2)."""


def _probe(folder: Path, target: Path, name: str, shown: Any, what: str) -> None:
    """Raise unless ``target`` (a folder, existing or not) can be written into: find its
    nearest existing ancestor (a file on the way is an error), then create and remove a
    temporary file in it (``target`` exists) or a temporary folder (it does not)."""

    def unusable(why: str) -> UnusableOutput:
        return UnusableOutput(f"`{name}` must be a writable {what}, got {str(shown)!r} ({why}).")

    base = None
    for p in (target, *target.parents):
        if p.is_dir():
            base = p
            break
        if os.path.lexists(p):
            if os.path.islink(p) and not p.exists():
                raise unusable(f"{str(p)!r} is a broken symbolic link")
            raise unusable("an existing file" if p == folder else f"{str(p)!r} is a file")
    assert base is not None  # the root always exists
    try:
        if base == target:
            fd, probe = tempfile.mkstemp(dir=base, prefix=_PROBE_PREFIX)
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(dir=base, prefix=_PROBE_PREFIX))
    except OSError as exc:
        kind = "a file" if base == target else "a folder"
        raise unusable(f"cannot create {kind} in {str(base)!r}: {exc.strerror or exc}") from None


def _as_path(path: Any, name: str) -> Path:
    try:
        return Path(path)
    except TypeError:
        raise UnusableOutput(f"`{name}` must be a path, got {path!r}.") from None


def check_output_dir(path: str | os.PathLike, *, name: str = "out_dir") -> Path:
    """Check that results can be written into folder ``path``; create nothing.

    ``path`` may not exist yet (it is created when results are written); then its nearest
    existing ancestor must be a folder in which a folder can be created. Probed by creating
    and removing a temporary file (``path`` exists) or folder (it does not).

    Parameters
    ----------
    path
        The output folder.
    name
        The argument the error names (the CLI turns it into its flag, e.g. ``--out``).

    Returns
    -------
    Path
        ``path`` as given (not resolved), as a :class:`~pathlib.Path`.

    Raises
    ------
    UnusableOutput
        ``path`` is an existing file, lies under a file, or cannot be written.
    """
    p = _as_path(path, name)
    target = Path(os.path.abspath(p))
    _probe(target, target, name, path, "folder")
    return p


def check_output_file(path: str | os.PathLike, *, name: str = "path") -> Path:
    """Check that file ``path`` can be written: not an existing folder, and its folder
    passes :func:`check_output_dir`. Creates nothing."""
    p = _as_path(path, name)
    if p.is_dir() or p.name in ("", ".", ".."):
        raise UnusableOutput(f"`{name}` must be a writable file path, got {str(path)!r} "
                             "(a folder).")
    target = Path(os.path.abspath(p))
    _probe(target, target.parent, name, path, "file path")
    return p


def _make_dirs(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created, outermost first."""
    missing = []
    for p in (folder, *folder.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        p.mkdir()
    return missing[::-1]


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - e.g. folders cannot be opened on Windows
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_together(
    folder: str | os.PathLike,
    writers: Mapping[str, Callable[[Path], Any]],
    *,
    name: str = "out_dir",
    durable: bool = True,
) -> dict[str, Path]:
    """Write several files into ``folder`` so that a reader sees the old set or the new set.

    Parameters
    ----------
    folder
        Target folder (created, with its parents, if missing).
    writers
        ``{file name: write}``; ``write(tmp_path)`` writes the file's content to
        ``tmp_path``, a hidden temporary name in ``folder`` that does not end in the file's
        suffix (pass a format explicitly, e.g. ``fig.savefig(p, format="png")``).
    name
        The argument an error names.
    durable
        fsync each file before the renames and the folder after them (a crash right after
        return keeps the new set).

    Returns
    -------
    dict
        ``{file name: final path}``, in the order of ``writers``.

    Raises
    ------
    UnusableOutput
        Writing failed with an ``OSError`` (disk full, folder removed or made read-only
        since the check). Nothing of the new set is left behind.
    """
    folder = Path(folder)
    for fname in writers:
        if Path(fname).name != fname or fname in ("", ".", ".."):
            raise ValueError(f"`writers` keys must be plain file names, got {fname!r}.")
    token = secrets.token_hex(4)
    temps = {f: folder / f".{f}.{token}.tmp" for f in writers}
    created: list[Path] = []
    done = False
    try:
        created = _make_dirs(folder)
        for fname, write in writers.items():
            write(temps[fname])
            if durable:
                _fsync_path(temps[fname])
        with signals_deferred():
            for fname in writers:
                os.replace(temps[fname], folder / fname)
            done = True
        if durable:
            _fsync_path(folder, directory=True)
    except OSError as exc:
        raise UnusableOutput(f"`{name}` could not be written: {exc}") from exc
    finally:
        if not done:
            for t in temps.values():
                with contextlib.suppress(OSError):
                    t.unlink()
            for p in reversed(created):  # innermost first; only if still empty
                with contextlib.suppress(OSError):
                    p.rmdir()
    return {f: folder / f for f in writers}


def write_atomic(path: str | os.PathLike, write: Callable[[Path], Any], *,
                 name: str = "path", durable: bool = True) -> Path:
    """Write one file atomically (temporary name, fsync, rename): :func:`write_together`
    with one entry. For checkpoints: a crash leaves the previous file intact."""
    p = Path(path)
    return write_together(p.parent, {p.name: write}, name=name, durable=durable)[p.name]
