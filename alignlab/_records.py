"""Tidy records: a list of flat rows that print as a table and export to CSV."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Records"]


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


class Records(Sequence[dict]):
    """An ordered list of rows (dicts with the same keys, in the same order).

    ``str(records)`` is an aligned text table; :meth:`to_csv` writes it with full
    precision (``repr`` of floats, so a CSV round-trips exactly).
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None):
        self._rows = [dict(r) for r in rows]
        if columns is None:
            columns = list(self._rows[0]) if self._rows else []
        self.columns = list(columns)
        for i, row in enumerate(self._rows):
            if set(row) != set(self.columns):
                raise ValueError(
                    f"`rows[{i}]` must have the columns {self.columns}, got {list(row)}."
                )

    def __getitem__(self, i):  # type: ignore[override]
        return self._rows[i]

    def __len__(self) -> int:
        return len(self._rows)

    def column(self, name: str) -> list:
        """All values of one column, in row order."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns are {self.columns}")
        return [r[name] for r in self._rows]

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.columns)
            for r in self._rows:
                writer.writerow([repr(r[c]) if isinstance(r[c], float) else r[c]
                                 for c in self.columns])
        return path

    def format(self, digits: int = 4) -> str:
        cells = [self.columns] + [[_fmt(r[c], digits) for c in self.columns] for r in self._rows]
        widths = [max(len(row[j]) for row in cells) for j in range(len(self.columns))]
        lines = ["  ".join(s.rjust(w) for s, w in zip(row, widths, strict=True)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Records({len(self)} rows, columns={self.columns})"
