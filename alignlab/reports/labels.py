"""Labels of runs: which runs pool as seeds of one experiment, and what to call them.

A label is the method's name plus the method options that differ among that method's runs
(``pfa r=10``; :data:`_OPTION_ABBREV` shortens option names), plus the model when the runs
use several; runs of one label that share a seed are told apart by the other config keys
that differ among them, and identical configurations with the same seed are an error
(pooling them would understate the SD). Used by ``alignlab plot`` and ``alignlab compare``
(:func:`alignlab.reports.runs.load_runs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runs import Run

__all__ = ["run_labels"]

#: Short names for method options in labels (the spec's notation: r = n_mid / n_out).
_OPTION_ABBREV = {"expansion_ratio": "r"}
_MISSING = object()


def _fmt_value(value: Any) -> str:
    if value is _MISSING:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _option_text(key: str, value: Any) -> str:
    return f"{_OPTION_ABBREV.get(key, key)}={_fmt_value(value)}"


def _differing(dicts: Sequence[dict[str, Any]], skip: Iterable[str] = ()) -> list[str]:
    """Keys (sorted) whose value is not the same in every dict (absent counts as a value)."""
    skip = set(skip)
    keys = sorted({k for d in dicts for k in d} - skip)
    return [k for k in keys if len({repr(d.get(k, _MISSING)) for d in dicts}) > 1]


def _bookkeeping(key: str) -> bool:
    """Config entries that never distinguish experiments: the seed and the versions
    (``[meta]``, ``[versions]`` or top-level entries)."""
    return key == "train.seed" or "." not in key or key.startswith(("meta.", "versions."))


def run_labels(runs: Sequence[Run]) -> list[str]:
    """One label per run: method name + the method options that differ among the runs of
    that method (+ model if models differ); if two runs of one label share a seed, the
    other config keys that differ among that label's runs are added; identical configs
    with the same seed are an error (pooling them would understate the SD)."""
    parts: list[list[str]] = [[r.method] for r in runs]
    by_method: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        by_method.setdefault(r.method, []).append(i)
    for idx in by_method.values():
        for key in _differing([runs[i].options for i in idx]):
            for i in idx:
                if key in runs[i].options:
                    parts[i].append(_option_text(key, runs[i].options[key]))
    if len({repr(r.model) for r in runs}) > 1:
        for i, r in enumerate(runs):
            parts[i].append(f"model={_fmt_value(r.model)}")

    labels = [" ".join(p) for p in parts]
    groups: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    for lab, idx in groups.items():
        seeds = [runs[i].seed for i in idx if runs[i].seed is not None]
        if len(seeds) == len(set(seeds)):
            continue
        extra = [k for k in _differing([runs[i].config for i in idx])
                 if not _bookkeeping(k) and not k.startswith("method.")
                 and k != "model.name"]
        for i in idx:
            labels[i] = " ".join(
                [lab] + [f"{k}={_fmt_value(runs[i].config.get(k, _MISSING))}" for k in extra]
            )
        seen: dict[tuple[str, Any], Path] = {}
        for i in idx:
            key = (labels[i], runs[i].seed)
            if runs[i].seed is not None and key in seen:
                raise ValueError(
                    "`run_dirs` must not repeat a configuration, got "
                    f"{str(seen[key])!r} and {str(runs[i].path)!r} (both {labels[i]!r}, "
                    f"seed {runs[i].seed})."
                )
            seen[key] = runs[i].path
    return labels
