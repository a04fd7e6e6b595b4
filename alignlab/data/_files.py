"""Where data files live, how they are checked and how they are downloaded.

Nothing here knows a file format. Three guarantees:

* a file is trusted only after one of its known digests matches (the digest of the file
  as it is, or of its decompressed content: Debian re-gzipped Fashion-MNIST, so only the
  content digest matches there);
* a download goes to a temporary name in the destination folder, is checked, and only
  then renamed (``os.replace``, atomic on one file system) to its real name, so a
  corrupt, truncated or interrupted download never leaves a file a later run trusts, and
  a download that fails writes nothing (the destination folder is made only once a
  mirror answers, and removed again if it stays empty);
* with no usable files and no network the error is one line naming the files and the
  folder to put them in.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "ChecksumError",
    "DataFormatError",
    "DatasetNotFoundError",
    "Digest",
    "RemoteFile",
    "candidate_folders",
    "download",
    "one_line",
    "read_verified",
    "verify_bytes",
]

ENV_VAR = "ALIGNLAB_DATA"  # a folder holding one sub-folder per data set
_CHUNK = 1 << 20  # download chunk: 1 MiB
_TIMEOUT_S = 60.0  # per socket operation, not for the whole file

# Tests replace this with an opener that serves local bytes or fails mid-stream.
urlopen = urllib.request.urlopen


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """No usable copy of a data set, and none could be downloaded.

    Its message is one line naming the files and the folder to put them in. It is a
    ``ValueError`` too, so the CLI reports it in one line like every bad input.
    """


class ChecksumError(ValueError):
    """A downloaded file does not match its published digest (the file was discarded)."""


class DataFormatError(ValueError):
    """A file that passed (or skipped) verification is not in the format it should be."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Digest:
    """A published hash: ``algorithm`` (any :mod:`hashlib` name) and its hex digest."""

    algorithm: str
    hexdigest: str

    def of(self, data: bytes) -> str:
        """The digest of ``data`` under this algorithm."""
        return hashlib.new(self.algorithm, data).hexdigest()

    def matches(self, data: bytes) -> bool:
        return self.of(data) == self.hexdigest.lower()


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set.

    Parameters
    ----------
    name
        Its file name, e.g. ``"train-images-idx3-ubyte.gz"``.
    file_digest
        Digest of the file exactly as published (the download is checked against it).
    content_digest
        Digest of the decompressed content of a ``.gz`` file (``None``: not known or not
        a ``.gz``). A local file is trusted when either digest matches.
    """

    name: str
    file_digest: Digest | None = None
    content_digest: Digest | None = None

    @property
    def compressed(self) -> bool:
        return self.name.endswith(".gz")


def read_verified(path: Path, spec: RemoteFile, *, verify: bool = True) -> bytes:
    """Read ``path`` (the file ``spec``, or the uncompressed twin of a ``.gz``) and return
    its content, decompressed if ``path`` is gzipped; see :func:`verify_bytes`."""
    return verify_bytes(path.read_bytes(), spec, gzipped=path.name.endswith(".gz"),
                        verify=verify, what=str(path))


def verify_bytes(raw: bytes, spec: RemoteFile, *, gzipped: bool, verify: bool = True,
                 what: str = "") -> bytes:
    """Check ``raw`` (the bytes of file ``spec``, gzipped or not) and return its content.

    A gzipped file is accepted when its own digest matches ``spec.file_digest`` or its
    decompressed content matches ``spec.content_digest``; an uncompressed one when it
    matches either. ``verify=False`` skips the digests (a broken gzip stream is still an
    error).

    Raises
    ------
    ChecksumError
        No known digest matches, or the gzip stream is truncated or corrupt.
    """
    what = what or spec.name
    if verify and gzipped and spec.file_digest is not None and spec.file_digest.matches(raw):
        return gzip.decompress(raw)
    try:
        content = gzip.decompress(raw) if gzipped else raw
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ChecksumError(f"{what} is not a complete gzip file ({one_line(exc)}).") from None
    if not verify:
        return content
    for digest in (spec.content_digest, None if gzipped else spec.file_digest):
        if digest is not None and digest.matches(content):
            return content
    known = [d for d in (spec.file_digest, spec.content_digest) if d is not None]
    expected = " or ".join(f"{d.algorithm} {d.hexdigest}" for d in known) or "a known digest"
    raise ChecksumError(f"{what} failed verification: expected {expected}.")


def candidate_folders(name: str, root: str | os.PathLike | None,
                      system: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """The folders searched for data set ``name``, in order; the first is where a
    download goes.

    ``root`` given: ``root/name``, then ``root`` itself. Otherwise ``$ALIGNLAB_DATA/name``
    (or ``~/.cache/alignlab/data/name`` when the variable is unset), then the system
    folders (e.g. Debian's ``/usr/share/datasets/fashion-mnist``).
    """
    if root is not None:
        base = Path(root).expanduser()
        return [base / name, base]
    env = os.environ.get(ENV_VAR)
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "alignlab" / "data"
    return [base / name, *(Path(s) for s in system)]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def download(urls: Sequence[str], dest: Path, *,
             check: Callable[[Path], None] | None = None) -> None:
    """Fetch ``dest`` from the first of ``urls`` that answers; atomically.

    The bytes go to a temporary file next to ``dest``; a short read (fewer bytes than the
    server announced), a network error or a failed ``check`` (which raises) deletes it.
    Only a complete, checked file is renamed to ``dest``. Mirrors are tried in order; a
    network error moves on to the next mirror, a checksum mismatch too (and is raised if
    no mirror gives a good file). A failure is raised, not printed: the caller's one-line
    error names it. ``dest``'s folder is created only once a mirror answers, and the
    folders created here are removed again (if still empty) when no mirror gives a good
    file: a failed download writes nothing.

    Raises
    ------
    ChecksumError
        Every mirror answered, at least one with bytes that failed ``check``.
    OSError
        No mirror could be reached or a transfer broke off (``urllib.error.URLError`` is
        an ``OSError``); the message names each mirror's failure.
    """
    created: list[Path] = []  # folders made here, deepest first
    checksum_failure: ChecksumError | None = None
    network_failures: list[str] = []
    for url in urls:
        tmp: Path | None = None
        try:
            with urlopen(url, timeout=_TIMEOUT_S) as response:
                created = created or _make_folder(dest.parent)
                fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part",
                                                dir=dest.parent)
                tmp = Path(tmp_name)
                with os.fdopen(fd, "wb") as out:
                    _copy(url, response, out)
            if check is not None:
                check(tmp)
            os.replace(tmp, dest)
            return
        except ChecksumError as exc:
            checksum_failure = exc
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, IncompleteRead
            network_failures.append(f"{url}: {one_line(exc)}")
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    _remove_if_empty(created)
    if checksum_failure is not None:
        raise checksum_failure
    raise OSError(f"could not download {dest.name} ({'; '.join(network_failures)})")


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (and its parents); return the ones that did not exist, deepest
    first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_if_empty(folders: Sequence[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file landed there), or already gone
            return


def _copy(url: str, response, out) -> None:
    """Stream the open ``response`` of ``url`` into the binary file ``out``, with progress
    lines on stderr."""
    length = response.headers.get("Content-Length") if response.headers else None
    total = int(length) if length and length.isdigit() else None
    size = f" ({total / 1e6:.1f} MB)" if total else ""
    _progress(f"alignlab: downloading {url}{size}")
    done, next_report, last = 0, 0.1, time.monotonic()
    while chunk := response.read(_CHUNK):
        out.write(chunk)
        done += len(chunk)
        if total and done / total >= next_report and time.monotonic() - last > 1.0:
            _progress(f"alignlab:   {100 * done / total:3.0f}% of {total / 1e6:.1f} MB")
            next_report, last = done / total + 0.1, time.monotonic()
    if total is not None and done != total:
        raise OSError(f"transfer of {url} ended after {done} of {total} bytes")
