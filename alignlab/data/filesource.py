"""Data sets made of files: find verified copies, else download them.

:class:`FileSource` searches the candidate folders (``_files.candidate_folders``) for a
complete set of verified files, downloads the missing ones when allowed, and otherwise
raises :class:`DatasetNotFoundError` with one line saying which files to put where. The
format of the files is its subclasses' (``idx.py``, ``cifar.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ._files import (
    ChecksumError,
    DatasetNotFoundError,
    RemoteFile,
    candidate_folders,
    one_line,
    read_verified,
)
from .pipeline import PYTHON_NAMES, ArgumentNames, DataSource, RawData

__all__ = ["FileSource"]


class FileSource(DataSource):
    """A data set made of files that can be verified and downloaded.

    Subclasses set :attr:`files` (paths relative to the data set's folder),
    :attr:`mirrors`, optionally :attr:`system_folders` and :attr:`system_package`, and
    implement :meth:`parse` and :meth:`fetch`.
    """

    files: ClassVar[tuple[RemoteFile, ...]] = ()
    mirrors: ClassVar[tuple[str, ...]] = ()  # base URLs, tried in order
    system_folders: ClassVar[tuple[str, ...]] = ()  # searched when no `root` is given
    system_package: ClassVar[str] = ""  # the Debian package that fills system_folders[0]
    options: ClassVar[Mapping[str, Any]] = {
        "verify": True,  # check digests of local files and downloads
        "mirrors": None,  # base URLs to download from instead of the canonical ones
    }

    def check_options(self, options: Mapping[str, Any],
                      names: ArgumentNames = PYTHON_NAMES) -> dict[str, Any]:
        opts = super().check_options(options, names)
        if not isinstance(opts["verify"], bool):
            raise ValueError(f"`{names.key('verify')}` must be {names.value(True)} or "
                             f"{names.value(False)}, got {opts['verify']!r}.")
        mirrors = opts["mirrors"]
        if mirrors is not None:
            if isinstance(mirrors, str):
                mirrors = (mirrors,)
            if not mirrors or not all(isinstance(m, str) and m for m in mirrors):
                raise ValueError(f"`{names.key('mirrors')}` must be a non-empty list of base "
                                 f"URLs, got {opts['mirrors']!r}.")
            opts["mirrors"] = tuple(m if m.endswith("/") else m + "/" for m in mirrors)
        return opts

    def parse(self, contents: Mapping[str, bytes], source: Path) -> RawData:
        """Turn the verified file contents (by file name) into :class:`RawData`."""
        raise NotImplementedError

    def fetch(self, folder: Path, mirrors: Sequence[str], verify: bool) -> None:
        """Download whatever is missing into ``folder`` (atomically, checked)."""
        raise NotImplementedError

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any], names: ArgumentNames = PYTHON_NAMES) -> RawData:
        verify, mirrors = options["verify"], options["mirrors"] or self.mirrors
        folders = candidate_folders(self.name, root, self.system_folders)
        problems: list[str] = []
        for folder in folders:
            contents = self.read_folder(folder, verify, problems)
            if contents is not None:
                return self.parse(contents, folder)
        if not download:
            reason = f"downloading is off ({names.to_set('download', True)} to fetch them)"
        else:
            try:
                self.fetch(folders[0], mirrors, verify)
            except OSError as exc:  # no network, refused, broken transfer, read-only folder
                reason = f"download failed: {one_line(exc)}"
            else:
                contents = self.read_folder(folders[0], verify, problems)
                if contents is not None:
                    return self.parse(contents, folders[0])
                reason = "the downloaded files are incomplete"
        raise DatasetNotFoundError(self._not_found(folders, problems, reason, root is None,
                                                   names))

    def read_folder(self, folder: Path, verify: bool, problems: list[str]
                    ) -> dict[str, bytes] | None:
        """The verified contents of every file in ``folder``, or ``None`` (and a note in
        ``problems`` when a file is there but fails verification)."""
        contents = {}
        for spec in self.files:
            path = self.locate(folder, spec)
            if path is None:
                return None
            try:
                contents[spec.name] = read_verified(path, spec, verify=verify)
            except ChecksumError as exc:
                problems.append(one_line(exc))
                return None
        return contents

    @staticmethod
    def locate(folder: Path, spec: RemoteFile) -> Path | None:
        """``folder / spec.name``, or its uncompressed twin, if either is a file."""
        path = folder / spec.name
        if path.is_file():
            return path
        if spec.compressed and path.with_suffix("").is_file():
            return path.with_suffix("")
        return None

    def _not_found(self, folders: Sequence[Path], problems: Sequence[str], reason: str,
                   default_root: bool, names: ArgumentNames) -> str:
        files = ", ".join(self.wanted_files())
        where = ""
        if default_root:  # the user chose no folder: say how to choose one
            where = (f" (or {names.to_set('root', 'DIR')}, or set $ALIGNLAB_DATA=DIR, to use "
                     f"DIR/{self.name})")
            if self.system_package:  # searched only when no folder is chosen
                where += (f", or install Debian's package: apt-get install "
                          f"{self.system_package} (it puts them in {self.system_folders[0]})")
        searched = ", ".join(map(str, folders))
        bad = f"; rejected: {'; '.join(problems)}" if problems else ""
        return one_line(f"{self.title} not found: put {files} in {folders[0]}{where}. "
                        f"Searched {searched}; {reason}{bad}.")

    def wanted_files(self) -> list[str]:
        """The file names a user should provide (for the not-found message)."""
        return [spec.name for spec in self.files]
