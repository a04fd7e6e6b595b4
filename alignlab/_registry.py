"""One name -> object lookup for the whole package, with one error form.

Methods, ensembles, models, data sets and reports each keep a :class:`Registry`. Looking
up an unknown name raises ``ValueError("`method` must be one of 'bp', 'fa', ...; got 'x'.")``
(the form of :func:`alignlab._validate.check_choice`), so every CLI and config error
that names a bad choice reads the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from ._validate import check_choice

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping ``name -> entry`` whose failed lookups name the argument.

    Parameters
    ----------
    what
        The argument a name is given as (``"method"``, ``"model"``, ...): it appears in
        the error message.
    entries
        Initial ``{name: entry}``; more are added with :meth:`register`.
    """

    def __init__(self, what: str, entries: Mapping[str, T] | None = None):
        self.what = what
        self._entries: dict[str, T] = dict(entries or {})

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name")`` adds the decorated class or function."""

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"`{self.what}` {name!r} is registered twice.")
            self._entries[name] = entry
            return entry

        return add

    def add(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (the non-decorator form of :meth:`register`)."""
        return self.register(name)(entry)

    def get_entry(self, name: str) -> T:
        """The entry for ``name``; an unknown name raises ``ValueError`` listing them all."""
        check_choice(self.what, name, sorted(self._entries))
        return self._entries[name]

    def get(self, name: str, default: T | None = None) -> T | None:  # type: ignore[override]
        return self._entries.get(name, default)

    def __getitem__(self, name: str) -> T:
        return self.get_entry(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {sorted(self._entries)})"
