"""Training curves of any set of runs: the panels of the PFA paper's Figures 2, 4 and 5.

``alignlab plot RUN_DIR [RUN_DIR ...] [--out DIR]`` reads run directories written by
``alignlab train`` (``config.toml``, ``metrics.csv``, ``layers.csv``, ``summary.json``;
a folder of runs, such as a sweep's, stands for its runs, and other entries such as a
sweep's ``runs.csv`` or ``plot/`` are skipped with a note: :func:`expand_run_dirs`),
groups them by *label* (the method's name, plus the method options that differ across the
given runs, e.g. ``pfa r=10``; seeds pooled) and draws

(a) test accuracy per label over epochs, mean +/- SD over seeds;
(b) per-layer alignment angle over epochs, one subplot per label that has a measure
    (``weight`` or ``path``), lines coloured by depth (light = first layer, dark = last);
(c) per-layer norm ratio ``|feedback|_F / |W|_F`` likewise;
(d) per-layer angle between the method's weight update and BP's (``update_angle_deg``) at
    every log point (x = fractional epoch), one subplot per label with a nonzero angle (BP
    itself is 0 throughout and left out), including labels with no measure (DFA, and the
    layer-local-target rules GAIT-prop, TP, ITP); where a run logs it (GAIT-prop), the
    first-order theory's prediction (``update_angle_first_order_deg``) dashed beside it;
(e) per-layer ``|W W^T - I|_F`` (``ortho_residual``) likewise, where a run logs it (models
    trained by layer-local targets).

Labels whose layers all have measure ``none`` (DFA) have no (b), (c). The files written
into ``DIR`` are ``curves.png``, ``curves.pdf``, ``curves_accuracy.csv``,
``curves_layers.csv`` and ``curves_updates.csv`` (the numbers behind the picture), written
as one set
(:func:`alignlab._output.write_together`). The output location is checked before
any run is read; bad input is one ``ValueError`` line and nothing written. See
``docs/plot.md``.

How the run directories are read (``alignlab.train.rundir``'s format, read defensively):

* accuracy is plotted and written in percent; a run whose accuracies are all <= 1 is read
  as fractions (the harness's) and multiplied by 100;
* SD is the sample SD over seeds (``ddof=1``), NaN for a single seed;
* ``layers.csv`` may hold several log points per epoch (``train.log_every_steps``): the
  curve uses the row whose ``step`` equals the ``step`` of that epoch's ``metrics.csv`` row
  (the end of the epoch; epoch 0 = initialisation), or, without one, the epoch's largest
  ``step``; rows with no angle (NaN: feedback not weight-shaped or never used) are left out;
* (d), (e) use every log point, at x = ``step / steps_per_epoch`` (``steps_per_epoch``: the
  ``step`` of metrics.csv's epoch-1 row); without a ``step`` column x is the epoch, and
  without ``steps_per_epoch`` (no metrics ``step``, or a run still in its first epoch) only
  the epoch ends chosen as above are used; ``update_angle_deg`` and ``ortho_residual`` may
  be absent (older run directories): NaN;
* depth is the order in which layers first appear in ``layers.csv`` (the harness writes
  them in forward order), 1 = the layer nearest the input (in (d), (e): among every
  layer of the file; in (b), (c): among the layers with an angle); a layer whose
  ``feedback_used`` is false (nothing below it needs its feedback) is drawn dashed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab._records import Records
from alignlab._toml import load_toml

__all__ = [
    "ACCURACY_COLUMNS",
    "FLAGS",
    "LAYER_COLUMNS",
    "OUTPUT_NAMES",
    "UPDATE_COLUMNS",
    "Run",
    "RunSet",
    "accuracy_curves",
    "cmd_plot",
    "default_out_dir",
    "depth_colors",
    "expand_run_dirs",
    "final_accuracy",
    "format_final",
    "layer_curves",
    "load_runs",
    "plot_curves",
    "register",
    "run_plot",
    "update_curves",
]

#: Columns of ``curves_accuracy.csv`` (accuracy in percent).
ACCURACY_COLUMNS = ("label", "epoch", "mean", "sd", "n")
#: Columns of ``curves_layers.csv`` (angle in degrees, norm ratio dimensionless).
LAYER_COLUMNS = (
    "label", "measure", "layer", "depth", "epoch",
    "angle_deg_mean", "angle_deg_sd", "norm_ratio_mean", "norm_ratio_sd", "n",
    "feedback_used",  # true / false (nothing below the layer needs its feedback) / "" unknown
)
#: Columns of ``curves_updates.csv``: per label, layer and log point (``epoch`` fractional:
#: ``step / steps_per_epoch``), the update angle to BP (deg; NaN, n 0 for labels whose angle
#: is 0 throughout: BP) and ``|W W^T - I|_F``, each mean, SD over seeds and n.
UPDATE_COLUMNS = (
    "label", "layer", "depth", "step", "epoch",
    "update_angle_deg_mean", "update_angle_deg_sd", "update_angle_deg_n",
    "ortho_residual_mean", "ortho_residual_sd", "ortho_residual_n",
    # GAIT-prop: the first-order theory's prediction of the update angle (NaN, n 0 elsewhere)
    "update_angle_first_order_deg_mean", "update_angle_first_order_deg_sd",
    "update_angle_first_order_deg_n",
)
#: What ``run_plot`` writes into its output folder, by kind.
OUTPUT_NAMES = {
    "accuracy_csv": "curves_accuracy.csv",
    "layers_csv": "curves_layers.csv",
    "updates_csv": "curves_updates.csv",
    "png": "curves.png",
    "pdf": "curves.pdf",
}

#: Internal argument names in error messages -> the command-line flag (alignlab.cli).
FLAGS = {"out_dir": "--out", "run_dirs": "RUN_DIR"}

#: Short names for method options in labels (the spec's notation: r = n_mid / n_out).
_OPTION_ABBREV = {"expansion_ratio": "r"}
#: Measures that have an alignment angle (``none``: nothing weight-shaped, e.g. DFA).
_MEASURED = ("weight", "path")
_MISSING = object()
#: Columns of ``RunSet.updates`` (one row per run, layer and log point).
_UPDATE_RUN_COLUMNS = ("label", "run", "seed", "layer", "depth", "step", "x",
                       "update_angle_deg", "ortho_residual", "update_angle_first_order_deg")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Run:
    """One run directory, as read: identity from ``config.toml``, curves from the CSVs."""

    path: Path
    method: str  # config method.name
    options: dict[str, Any]  # the other [method] keys (expansion_ratio, ...)
    seed: int | None  # config train.seed
    data: str | None  # config data.name
    model: str | None  # config model.name
    status: str | None  # summary.json "status" (None: no summary yet)
    config: dict[str, Any] = field(repr=False)  # flattened: {"optim.lr": 0.01, ...}
    epochs: np.ndarray = field(repr=False)  # int, metrics.csv epoch
    test_acc: np.ndarray = field(repr=False)  # percent, NaN where empty
    layers: tuple[dict[str, Any], ...] = field(repr=False)  # one per (layer, epoch) log point
    # every log point used by (d), (e): layer, depth, epoch, step, x (fractional epoch),
    # update_angle_deg, ortho_residual
    updates: tuple[dict[str, Any], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class RunSet:
    """Runs with their labels, and the tidy per-run tables behind every curve.

    ``accuracy``: label, run, seed, epoch, test_acc (percent).
    ``layers``: label, run, seed, layer, depth, measure, epoch, angle_deg, norm_ratio,
    feedback_used (measured layers with a finite angle only; one row per run, layer and
    epoch).
    ``updates``: label, run, seed, layer, depth, step, x (fractional epoch),
    update_angle_deg, ortho_residual (every log point with either finite; depth among
    every layer of the file).
    """

    runs: tuple[Run, ...]
    labels: tuple[str, ...]  # labels[i] belongs to runs[i]
    accuracy: Records
    layers: Records
    updates: Records = field(default_factory=lambda: Records([], _UPDATE_RUN_COLUMNS))

    def label_order(self) -> list[str]:
        """Distinct labels in the order their first run was given."""
        return list(dict.fromkeys(self.labels))

    @property
    def data(self) -> str | None:
        """The runs' data set (``data.name``); None if no run names one."""
        names = {r.data for r in self.runs if r.data is not None}
        return names.pop() if len(names) == 1 else None


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def _number(text: str | None, what: str) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"`{what}` must be a number, got {text!r}.") from None


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        missing = [c for c in required if c not in columns]
        if missing:
            raise ValueError(
                f"`{path.name}` must have the columns {', '.join(required)}, got {columns} "
                f"in {str(path)!r} (missing {', '.join(missing)})."
            )
        return list(reader)


def _flag(text: str | None) -> bool | None:
    """A CSV boolean (true/false, 1/0, yes/no); None when empty or unrecognised."""
    value = (text or "").strip().lower()
    return True if value in ("true", "1", "yes") else False if value in (
        "false", "0", "no") else None


def _section(config: dict, name: str) -> dict:
    value = config.get(name, {})
    return value if isinstance(value, dict) else {}


def _read_run(run_dir: Path) -> Run:
    config = load_toml(run_dir / "config.toml", name="config.toml")
    method = _section(config, "method")
    name = method.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"`method.name` must be set in config.toml, got {name!r} in {str(run_dir)!r}."
        )
    options = {k: v for k, v in method.items() if k != "name"}
    seed = _section(config, "train").get("seed")
    data = _section(config, "data").get("name")
    model = _section(config, "model").get("name")

    rows = _read_csv(run_dir / "metrics.csv", ("epoch", "test_acc"))
    if not rows:  # started, nothing logged yet: nothing to draw
        raise ValueError(f"`run_dirs` must be run directories with at least one logged epoch, "
                         f"got {str(run_dir)!r} (metrics.csv has no rows).")
    where = f"{run_dir.name}/metrics.csv"
    epochs_f = np.array([_number(r["epoch"], f"{where} epoch") for r in rows], dtype=float)
    if not np.all(np.isfinite(epochs_f) & (epochs_f == np.round(epochs_f))):
        raise ValueError(f"`epoch` must be whole numbers, got {epochs_f.tolist()} in {where}.")
    acc = np.array([_number(r["test_acc"], f"{where} test_acc") for r in rows], dtype=float)
    finite = acc[np.isfinite(acc)]
    if finite.size and finite.max() <= 1.0:  # fractions -> percent
        acc = acc * 100.0

    # optimiser steps at each epoch's metrics row: picks the matching layers.csv log point
    metric_step: dict[int, float] = {}
    for e, r in zip(epochs_f.tolist(), rows, strict=True):
        st = _number(r.get("step"), f"{where} step")
        if math.isfinite(st):
            metric_step[int(e)] = st

    layers: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    layers_path = run_dir / "layers.csv"
    if layers_path.is_file():
        where = f"{run_dir.name}/layers.csv"
        raw = _read_csv(layers_path, ("epoch", "layer", "measure", "angle_deg", "norm_ratio"))
        best: dict[tuple[str, int], tuple[float, int]] = {}  # (layer, epoch) -> (rank, index)
        for r in raw:
            epoch = _number(r["epoch"], f"{where} epoch")
            if not (math.isfinite(epoch) and epoch == round(epoch)):
                continue
            step = _number(r.get("step"), f"{where} step")
            key = (r["layer"], int(epoch))
            # Lower rank wins: the row at the metrics row's step; else the epoch's last log
            # point (mid-epoch points carry the epoch in progress and a smaller step).
            target = metric_step.get(int(epoch))
            if target is not None and math.isfinite(step):
                if step != target:
                    continue  # a log point inside the epoch
                rank = -math.inf
            else:
                rank = -step if math.isfinite(step) else 0.0
            if key in best and best[key][0] < rank:
                continue
            row = {
                "layer": r["layer"],
                "epoch": int(epoch),
                "measure": (r["measure"] or "none").strip(),
                "angle_deg": _number(r["angle_deg"], f"{where} angle_deg"),
                "norm_ratio": _number(r["norm_ratio"], f"{where} norm_ratio"),
                "feedback_used": _flag(r.get("feedback_used")),
            }
            if key in best:  # a later row for the same point (e.g. after a resume) wins
                layers[best[key][1]] = row
                best[key] = (rank, best[key][1])
            else:
                best[key] = (rank, len(layers))
                layers.append(row)
        updates = _update_points(raw, metric_step, where)

    status = None
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            summary = {}
        status = summary.get("status") if isinstance(summary, dict) else None

    return Run(
        path=run_dir,
        method=name,
        options=options,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        data=data if isinstance(data, str) else None,
        model=model if isinstance(model, str) else None,
        status=status if isinstance(status, str) else None,
        config=_flatten(config),
        epochs=epochs_f.astype(np.int64),
        test_acc=acc,
        layers=tuple(layers),
        updates=tuple(updates),
    )


def _update_points(raw: Sequence[dict[str, str]], metric_step: dict[int, float],
                   where: str) -> list[dict[str, Any]]:
    """Every log point of ``layers.csv`` for (d), (e), at x = ``step / steps_per_epoch``.

    ``steps_per_epoch`` is the ``step`` of metrics.csv's epoch-1 row. Without a ``step`` in
    layers.csv, x is the epoch. Without ``steps_per_epoch`` (metrics.csv has no ``step``, or
    the run has not finished epoch 1), a mid-epoch point cannot be placed: only the rows at
    a metrics row's ``step`` are used (x = its epoch) or, with no metrics ``step`` at all,
    each epoch's largest ``step``. Depth is the order of first appearance of every layer.
    A later row for the same layer and x (after a resume) replaces the earlier one.
    """
    spe = metric_step.get(1)
    spe = spe if spe is not None and spe > 0 else None
    parsed = []
    last_step: dict[int, float] = {}  # epoch -> largest step (the fallback's epoch end)
    depth: dict[str, int] = {}
    for r in raw:
        depth.setdefault(r["layer"], len(depth) + 1)
        epoch = _number(r["epoch"], f"{where} epoch")
        if not (math.isfinite(epoch) and epoch == round(epoch)):
            continue
        step = _number(r.get("step"), f"{where} step")
        parsed.append((r, int(epoch), step))
        if math.isfinite(step):
            last_step[int(epoch)] = max(step, last_step.get(int(epoch), -math.inf))
    points: dict[tuple[str, float], dict[str, Any]] = {}
    for r, epoch, step in parsed:
        if not math.isfinite(step):
            x = float(epoch)
        elif spe is not None:
            x = step / spe
        else:  # only an epoch's end can be placed
            end = metric_step.get(epoch) if metric_step else last_step[epoch]
            if step != end:
                continue
            x = float(epoch)
        angle = _number(r.get("update_angle_deg"), f"{where} update_angle_deg")
        ortho = _number(r.get("ortho_residual"), f"{where} ortho_residual")
        theory = _number(r.get("update_angle_first_order_deg"),
                         f"{where} update_angle_first_order_deg")
        if not (math.isfinite(angle) or math.isfinite(ortho)):
            continue
        points[(r["layer"], x)] = {
            "layer": r["layer"], "depth": depth[r["layer"]], "epoch": epoch,
            "step": int(step) if math.isfinite(step) and step == round(step) else math.nan,
            "x": x, "update_angle_deg": angle, "ortho_residual": ortho,
            "update_angle_first_order_deg": theory,
        }
    return list(points.values())


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


def _labels(runs: Sequence[Run]) -> list[str]:
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


_RUN_MARKERS = ("config.toml", "metrics.csv")


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in _RUN_MARKERS)


def expand_run_dirs(entries: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """``(run directories, skipped entries)`` of what the command line names.

    A run directory (one with ``config.toml`` or ``metrics.csv``) is taken as given; a
    folder of runs (a sweep's, with ``runs.csv``, ``plot/``, ``compare/`` beside them) as
    its run directories, in name order; anything else that exists (a file such as a sweep's
    ``runs.csv``, a folder without runs such as ``plot/``) is skipped, so ``runs/sweep/*``
    works as well as ``runs/sweep``. A path that does not exist is an error, and so is a
    list with no run at all.
    """
    if isinstance(entries, (str, os.PathLike)):
        entries = [entries]
    runs: list[Path] = []
    skipped: list[Path] = []
    for entry in entries:
        p = Path(entry)
        if not p.exists():
            raise ValueError(f"`run_dirs` must be an existing directory, got {str(p)!r}.")
        if _is_run(p):
            runs.append(p)
            continue
        inner = sorted(q for q in p.iterdir() if _is_run(q)) if p.is_dir() else []
        if inner:
            runs.extend(inner)
        else:
            skipped.append(p)
    if not runs:
        got = ", ".join(repr(str(p)) for p in skipped) or "[]"
        raise ValueError(f"`run_dirs` must name at least one run directory (or a folder of "
                         f"runs), got {got}.")
    return runs, skipped


def _check_run_dirs(run_dirs: Sequence[str | os.PathLike]) -> list[Path]:
    paths, _skipped = expand_run_dirs(run_dirs)
    for p in paths:
        for name in ("metrics.csv", "config.toml"):
            if not (p / name).is_file():
                raise ValueError(
                    f"`run_dirs` must be a run directory ({name} missing), got {str(p)!r}."
                )
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        dup = next(p for p, q in zip(paths, resolved, strict=True) if resolved.count(q) > 1)
        raise ValueError(f"`run_dirs` must not repeat a directory, got {str(dup)!r} twice.")
    return paths


def load_runs(run_dirs: Sequence[str | os.PathLike]) -> RunSet:
    """Read run directories (or folders of runs: :func:`expand_run_dirs`) into labelled
    tidy tables (see :class:`RunSet`).

    Raises ``ValueError`` (one line) for a missing path, no run at all, a run without
    ``metrics.csv`` or ``config.toml`` or without a logged epoch, runs on different data
    sets, or a configuration given twice.
    """
    paths = _check_run_dirs(run_dirs)
    runs = [_read_run(p) for p in paths]
    datasets: dict[str, list[str]] = {}
    for r in runs:
        if r.data is not None:
            datasets.setdefault(r.data, []).append(r.path.name)
    if len(datasets) > 1:
        got = "; ".join(f"{d} ({', '.join(names)})" for d, names in datasets.items())
        raise ValueError(f"`run_dirs` must all use one data set, got {got}.")
    labels = _labels(runs)

    acc_rows = []
    layer_rows = []
    update_rows = []
    depth_of: dict[str, dict[str, int]] = {}  # label -> layer -> depth (1-based)
    for run, lab in zip(runs, labels, strict=True):
        for e, a in zip(run.epochs.tolist(), run.test_acc.tolist(), strict=True):
            acc_rows.append({"label": lab, "run": str(run.path), "seed": run.seed,
                             "epoch": int(e), "test_acc": float(a)})
        depths = depth_of.setdefault(lab, {})
        for row in run.layers:
            if row["measure"] not in _MEASURED or not math.isfinite(row["angle_deg"]):
                continue
            depths.setdefault(row["layer"], len(depths) + 1)
            layer_rows.append({"label": lab, "run": str(run.path), "seed": run.seed,
                               "layer": row["layer"], "depth": depths[row["layer"]],
                               "measure": row["measure"], "epoch": row["epoch"],
                               "angle_deg": row["angle_deg"],
                               "norm_ratio": row["norm_ratio"],
                               "feedback_used": row["feedback_used"]})
        for row in run.updates:
            update_rows.append({"label": lab, "run": str(run.path), "seed": run.seed,
                                **{k: row[k] for k in _UPDATE_RUN_COLUMNS[3:]}})
    return RunSet(
        runs=tuple(runs),
        labels=tuple(labels),
        accuracy=Records(acc_rows, ["label", "run", "seed", "epoch", "test_acc"]),
        layers=Records(layer_rows, ["label", "run", "seed", "layer", "depth", "measure",
                                    "epoch", "angle_deg", "norm_ratio", "feedback_used"]),
        updates=Records(update_rows, _UPDATE_RUN_COLUMNS),
    )


# --------------------------------------------------------------------------- statistics


def _mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and sample SD (ddof=1; NaN for one value) of the finite values, and their count."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    sd = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
    return float(np.mean(v)), sd, int(v.size)


def accuracy_curves(runset: RunSet) -> Records:
    """Test accuracy (%) per label and epoch: mean, SD over seeds, n (``ACCURACY_COLUMNS``)."""
    cells: dict[tuple[str, int], list[float]] = {}
    for row in runset.accuracy:
        cells.setdefault((row["label"], row["epoch"]), []).append(row["test_acc"])
    order = {lab: i for i, lab in enumerate(runset.label_order())}
    rows = []
    for (lab, epoch), vals in sorted(cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        mean, sd, n = _mean_sd(vals)
        if n:
            rows.append({"label": lab, "epoch": epoch, "mean": mean, "sd": sd, "n": n})
    return Records(rows, ACCURACY_COLUMNS)


def layer_curves(runset: RunSet) -> Records:
    """Alignment angle (deg) and norm ratio per label, layer and epoch (``LAYER_COLUMNS``)."""
    cells: dict[tuple[str, int, int], list[dict]] = {}
    for row in runset.layers:
        cells.setdefault((row["label"], row["depth"], row["epoch"]), []).append(row)
    order = {lab: i for i, lab in enumerate(runset.label_order())}
    rows = []
    for (lab, depth, epoch), group in sorted(
        cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
    ):
        a_mean, a_sd, n = _mean_sd([g["angle_deg"] for g in group])
        r_mean, r_sd, _ = _mean_sd([g["norm_ratio"] for g in group])
        measures = sorted({g["measure"] for g in group})
        used = {g["feedback_used"] for g in group}
        rows.append({
            "label": lab, "measure": "/".join(measures), "layer": group[0]["layer"],
            "depth": depth, "epoch": epoch, "angle_deg_mean": a_mean, "angle_deg_sd": a_sd,
            "norm_ratio_mean": r_mean, "norm_ratio_sd": r_sd, "n": n,
            "feedback_used": "true" if used == {True} else "false" if used == {False} else "",
        })
    return Records(rows, LAYER_COLUMNS)


def update_curves(runset: RunSet) -> Records:
    """Update angle to BP (deg) and ``|W W^T - I|_F`` per label, layer and log point
    (``UPDATE_COLUMNS``), mean over seeds at each fractional epoch.

    A label whose every update angle is 0 or NaN (BP: its update is BP's) gets NaN, n 0 in
    the update-angle columns; a point with neither quantity (n 0 in both) is left out.
    """
    cells: dict[tuple[str, int, float], list[dict]] = {}
    moving: set[str] = set()  # labels with a finite, nonzero update angle somewhere
    for row in runset.updates:
        cells.setdefault((row["label"], row["depth"], row["x"]), []).append(row)
        a = row["update_angle_deg"]
        if math.isfinite(a) and a != 0.0:
            moving.add(row["label"])
    order = {lab: i for i, lab in enumerate(runset.label_order())}
    rows = []
    for (lab, depth, x), group in sorted(
        cells.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
    ):
        a_mean, a_sd, a_n = (_mean_sd([g["update_angle_deg"] for g in group])
                             if lab in moving else (math.nan, math.nan, 0))
        o_mean, o_sd, o_n = _mean_sd([g["ortho_residual"] for g in group])
        p_mean, p_sd, p_n = _mean_sd([g["update_angle_first_order_deg"] for g in group])
        if not (a_n or o_n):
            continue
        # the seeds' common step (NaN if they differ, e.g. other batch sizes, or if unknown)
        steps = {g["step"] if math.isfinite(g["step"]) else None for g in group}
        step = steps.pop() if len(steps) == 1 else None
        step = math.nan if step is None else step
        rows.append({
            "label": lab, "layer": group[0]["layer"], "depth": depth, "step": step,
            "epoch": x, "update_angle_deg_mean": a_mean, "update_angle_deg_sd": a_sd,
            "update_angle_deg_n": a_n, "ortho_residual_mean": o_mean,
            "ortho_residual_sd": o_sd, "ortho_residual_n": o_n,
            "update_angle_first_order_deg_mean": p_mean,
            "update_angle_first_order_deg_sd": p_sd, "update_angle_first_order_deg_n": p_n,
        })
    return Records(rows, UPDATE_COLUMNS)


def final_accuracy(runset: RunSet, accuracy: Records | None = None) -> Records:
    """Per label: the last epoch of its accuracy curve, mean +/- SD there, n of the runs.

    ``runs`` counts the label's runs; ``n < runs`` means some run stopped early (its
    status, from summary.json, is listed in ``incomplete``).
    """
    accuracy = accuracy_curves(runset) if accuracy is None else accuracy
    last: dict[str, dict] = {}
    for row in accuracy:
        last[row["label"]] = row
    rows = []
    for lab in runset.label_order():
        members = [r for r, lb in zip(runset.runs, runset.labels, strict=True) if lb == lab]
        odd = [f"{r.path.name}: {r.status or 'no summary'}" for r in members
               if r.status != "completed"]
        row = last.get(lab)
        rows.append({
            "label": lab,
            "epoch": row["epoch"] if row else -1,
            "test_acc_mean": row["mean"] if row else math.nan,
            "test_acc_sd": row["sd"] if row else math.nan,
            "n": row["n"] if row else 0,
            "runs": len(members),
            "incomplete": "; ".join(odd) if odd else "-",
        })
    return Records(rows, ["label", "epoch", "test_acc_mean", "test_acc_sd", "n", "runs",
                          "incomplete"])


# --------------------------------------------------------------------------- plotting

#: Sequential colormap for depth and the part of it used (its lightest end is invisible).
DEPTH_CMAP = "YlGnBu"
DEPTH_RANGE = (0.3, 1.0)


def depth_colors(n_layers: int) -> list[tuple[float, float, float, float]]:
    """RGBA per depth 1..n_layers: light (first layer) to dark (last layer)."""
    import matplotlib

    cmap = matplotlib.colormaps[DEPTH_CMAP]
    lo, hi = DEPTH_RANGE
    if n_layers == 1:
        return [tuple(cmap(hi))]
    return [tuple(cmap(lo + (hi - lo) * k / (n_layers - 1))) for k in range(n_layers)]


def _accuracy_ylim(acc: Records) -> tuple[float, float] | None:
    """Zoom to where the curves end up: the lowest mean - SD over the last half of the
    epochs (of any label) to the highest mean + SD there, with a 15% margin."""
    if not len(acc):
        return None
    epochs = np.array(acc.column("epoch"))
    half = epochs.max() / 2.0
    lows, highs = [], []
    for row in acc:
        if row["epoch"] >= half:
            sd = row["sd"] if math.isfinite(row["sd"]) else 0.0
            lows.append(row["mean"] - sd)
            highs.append(row["mean"] + sd)
    lo, hi = min(lows), max(highs)
    margin = max(0.15 * (hi - lo), 0.05)
    return lo - margin, min(hi + margin, 100.0 + margin / 3)


def _depth_colorbar(subfig, axes, n_depth: int, names_by_depth: dict[int, set[str]],
                    label: str):
    """One colorbar for ``axes`` naming the depths 1..n_depth (by layer, where every label
    agrees on the name), with at most 7 ticks past 12 depths."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(depth_colors(n_depth))
    norm = BoundaryNorm(np.arange(0.5, n_depth + 1.5), n_depth)
    bar = subfig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.04,
                          pad=0.01, aspect=40)
    ticks = list(range(1, n_depth + 1))
    if n_depth > 12:  # keep the tick labels readable
        ticks = sorted(set(np.linspace(1, n_depth, 7).round().astype(int).tolist()))
    bar.set_ticks(ticks)
    if all(len(names_by_depth.get(d, ())) == 1 for d in ticks):
        names = [next(iter(names_by_depth[d])) for d in ticks]
        bar.set_ticklabels([f"{d}: {'module ' if n.isdigit() else ''}{n}"
                            for d, n in zip(ticks, names, strict=True)])
    bar.set_label(label)
    return bar


#: On a log axis, values below this fraction of the largest are roundoff (an orthogonal
#: initialisation's ``|W W^T - I|_F`` ~ 1e-14): they run off the bottom.
_ROUNDOFF = 1e-8


def _log_floor(values: Iterable[float]) -> float | None:
    """The bottom of a log y axis for ``values`` (positive finite ones; below
    ``_ROUNDOFF`` x the largest left out), or None when those span at most a decade
    (linear axis). The bottom is half the smallest value kept."""
    v = [x for x in values if math.isfinite(x) and x > 0]
    if not v:
        return None
    kept = [x for x in v if x >= _ROUNDOFF * max(v)]
    return min(kept) / 2 if max(kept) > 10.0 * min(kept) else None


def plot_curves(accuracy: Records, layers: Records, updates: Records | None = None, *,
                title: str = ""):
    """The figure: (a) accuracy on top, then (b) angle and (c) norm ratio per measured label,
    then (d) update angle to BP and (e) ``|W W^T - I|_F`` per label that has them.

    Takes the tables of :func:`accuracy_curves`, :func:`layer_curves` and (optional)
    :func:`update_curves`; returns the matplotlib Figure (Agg backend). Without
    ``updates`` (or with nothing in it to show) the figure is (a)-(c) only.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    acc_labels = list(dict.fromkeys(accuracy.column("label")))
    measured = list(dict.fromkeys(layers.column("label")))
    updates = Records([], UPDATE_COLUMNS) if updates is None else updates
    moving = list(dict.fromkeys(r["label"] for r in updates if r["update_angle_deg_n"]))
    ortho = list(dict.fromkeys(r["label"] for r in updates if r["ortho_residual_n"]))
    # one column per label in (d), (e): a label's two panels stack
    upd_labels = [lab for lab in dict.fromkeys(updates.column("label"))
                  if lab in moving or lab in ortho]
    upd_rows = [kind for kind, labs in (("d", moving), ("e", ortho)) if labs]
    n_cols = max(len(measured), len(upd_labels), 1)
    heights = [3.6] + ([6.0] if measured else []) + ([3.0 * len(upd_rows)] if upd_rows else [])
    fig = plt.figure(figsize=(max(3.4 * n_cols + 1.2, 9.0), sum(heights)),
                     layout="constrained")
    # Subfigures, each with its own layout: the accuracy legend (outside, right) and each
    # depth colorbar take their room in their own rows only. Never three in one column:
    # matplotlib's constrained layout then places them differently in the last bits from
    # one draw to the next (a PNG pixel flips now and then); nested pairs are stable.
    subs = [fig]
    if len(heights) > 1:
        subs = list(fig.subfigures(2, 1, height_ratios=[heights[0], sum(heights[1:])]))
    if len(heights) > 2:
        subs[1:] = list(subs[1].subfigures(2, 1, height_ratios=heights[1:]))
    top = subs[0]
    bottom = subs[1] if measured else None

    # (a) accuracy
    ax = top.subplots()
    palette = plt.get_cmap("tab10" if len(acc_labels) <= 10 else "tab20")
    for k, lab in enumerate(acc_labels):
        rows = [r for r in accuracy if r["label"] == lab]
        e = np.array([r["epoch"] for r in rows])
        m = np.array([r["mean"] for r in rows])
        s = np.array([r["sd"] for r in rows])
        color = palette(k % palette.N)
        end = rows[-1]
        text = f"{end['mean']:.2f}" + (f" ± {end['sd']:.2f}" if math.isfinite(end["sd"])
                                        else "")
        ax.plot(e, m, color=color, lw=1.6, marker="o" if len(e) <= 3 else None, ms=4,
                label=f"{lab}: {text} %  (n = {end['n']}, epoch {end['epoch']})")
        band = np.isfinite(s)
        if band.any():
            ax.fill_between(e, m - np.where(band, s, 0), m + np.where(band, s, 0),
                            where=band, color=color, alpha=0.2, lw=0)
    ylim = _accuracy_ylim(accuracy)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("(a) test accuracy, mean ± SD over seeds (y axis zoomed to the last half "
                 "of training)", loc="left", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="final epoch: mean ± SD", title_fontsize=8, alignment="left")

    if measured:
        _plot_layer_panels(bottom, layers, measured, n_cols)
    if upd_rows:
        _plot_update_panels(subs[-1], updates, upd_labels, moving, ortho, upd_rows, n_cols)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _plot_layer_panels(bottom, layers: Records, measured: list[str], n_cols: int) -> None:
    """(b), (c): per-layer curves, one column per measured label, colour = depth."""
    from matplotlib.ticker import MaxNLocator

    n_depth = max(layers.column("depth"))
    colors = depth_colors(n_depth)
    names_by_depth: dict[int, set[str]] = {}
    for r in layers:
        names_by_depth.setdefault(r["depth"], set()).add(r["layer"])
    grid = bottom.subplots(2, n_cols, sharex=True, squeeze=False)
    for j in range(len(measured), n_cols):  # columns of labels drawn in (d), (e) only
        grid[0, j].set_visible(False)
        grid[1, j].set_visible(False)
    layer_axes = []
    any_unused = False
    for j, lab in enumerate(measured):
        rows = [r for r in layers if r["label"] == lab]
        measure = rows[0]["measure"]
        ax_b, ax_c = grid[0, j], grid[1, j]
        layer_axes += [ax_b, ax_c]
        for depth in sorted({r["depth"] for r in rows}):
            rr = [r for r in rows if r["depth"] == depth]
            e = np.array([r["epoch"] for r in rr])
            for axis, col in ((ax_b, "angle_deg"), (ax_c, "norm_ratio")):
                m = np.array([r[f"{col}_mean"] for r in rr])
                s = np.array([r[f"{col}_sd"] for r in rr])
                used = {r["feedback_used"] for r in rr}  # epoch 0 may not know yet: ""
                unused = "false" in used and "true" not in used
                any_unused |= unused
                axis.plot(e, m, color=colors[depth - 1], lw=1.4, label=rr[0]["layer"],
                          ls="--" if unused else "-", marker="o" if len(e) == 1 else None,
                          ms=3)
                band = np.isfinite(s)
                if band.any():
                    axis.fill_between(e, m - np.where(band, s, 0), m + np.where(band, s, 0),
                                      where=band, color=colors[depth - 1], alpha=0.18, lw=0)
        # 0 deg is meaningful: the axis starts there (a line on 0 stays visible)
        hi = [r["angle_deg_mean"] + (r["angle_deg_sd"] if math.isfinite(r["angle_deg_sd"])
                                     else 0.0) for r in rows]
        y_top = 1.06 * max(max(hi), 1e-3)
        ax_b.set_ylim(-0.02 * y_top, y_top)
        ax_b.set_title(f"(b) {lab}: {measure} alignment", loc="left", fontsize=10)
        ax_c.set_title(f"(c) {lab}: {measure} norm ratio", loc="left", fontsize=10)
        lim = ax_c.get_ylim()
        ax_c.axhline(1.0, color="0.5", lw=0.8, ls="--", zorder=0)  # equal norms
        ax_c.set_ylim(lim)  # only where 1 is in the data's range: never squash the curves
        ax_c.set_xlabel("epoch")
        if j == 0:
            ax_b.set_ylabel("alignment angle to W (deg)")
            ax_c.set_ylabel(r"norm ratio $\|$feedback$\|_F\,/\,\|W\|_F$")
        for axis in (ax_b, ax_c):
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
    _depth_colorbar(bottom, layer_axes, n_depth, names_by_depth,
                    "layer depth (1 = input side)"
                    + ("; dashed: feedback never used" if any_unused else ""))


def _plot_update_panels(sub, updates: Records, labels: list[str], moving: list[str],
                        ortho: list[str], kinds: list[str], n_cols: int) -> None:
    """(d) update angle to BP, (e) ``|W W^T - I|_F``: one column per label, one row per
    kind, every log point (x = fractional epoch), colour = depth among the file's layers."""
    from matplotlib.ticker import MaxNLocator

    shown = [r for r in updates if (r["label"] in moving and r["update_angle_deg_n"])
             or (r["label"] in ortho and r["ortho_residual_n"])]
    n_depth = max(r["depth"] for r in shown)
    colors = depth_colors(n_depth)
    names_by_depth: dict[int, set[str]] = {}
    for r in shown:
        names_by_depth.setdefault(r["depth"], set()).add(r["layer"])
    whole = all(float(r["epoch"]).is_integer() for r in shown)  # per-epoch logs only
    grid = sub.subplots(len(kinds), n_cols, squeeze=False)
    spec = {  # kind -> (which labels, column, title, y label)
        "d": (moving, "update_angle_deg", "update angle to BP",
              "angle to BP's update (deg)"),
        "e": (ortho, "ortho_residual", r"$\|W W^\top - I\|_F$",
              r"orthogonality $\|W W^\top - I\|_F$"),
    }
    drawn = []
    for j in range(n_cols):
        last = None  # the column's lowest panel gets the x label
        for i, kind in enumerate(kinds):
            axis = grid[i, j]
            labs, col, what, ylabel = spec[kind]
            if j >= len(labels) or labels[j] not in labs:
                axis.set_visible(False)
                continue
            lab = labels[j]
            rows = [r for r in updates if r["label"] == lab and r[f"{col}_n"]]
            any_theory = False
            floor = _log_floor(r[f"{col}_mean"] for r in rows) if kind == "e" else None
            log = floor is not None
            if log:
                axis.set_yscale("log")
            for depth in sorted({r["depth"] for r in rows}):
                rr = [r for r in rows if r["depth"] == depth]
                x = np.array([r["epoch"] for r in rr])
                m = np.array([r[f"{col}_mean"] for r in rr])
                s = np.array([r[f"{col}_sd"] for r in rr])
                axis.plot(x, m, color=colors[depth - 1], lw=1.4, label=rr[0]["layer"],
                          marker="o" if len(x) == 1 else None, ms=3)
                band = np.isfinite(s) & ((m - np.where(np.isfinite(s), s, 0) > 0) | (not log))
                if band.any():  # (on a log axis only where mean - SD > 0)
                    axis.fill_between(x, m - np.where(band, s, 0), m + np.where(band, s, 0),
                                      where=band, color=colors[depth - 1], alpha=0.18, lw=0)
                theory = [r for r in rr if r["update_angle_first_order_deg_n"]]
                if kind == "d" and theory:  # GAIT-prop: the first-order theory, dashed
                    axis.plot([r["epoch"] for r in theory],
                              [r["update_angle_first_order_deg_mean"] for r in theory],
                              color=colors[depth - 1], lw=1.0, ls="--")
                    any_theory = True
            if log and floor > axis.get_ylim()[0]:  # nothing below it but roundoff
                axis.set_ylim(bottom=floor)
            if kind == "d":  # 0 deg (BP's own update) is meaningful: the axis starts there
                hi = [r[f"{col}_mean"] + (r[f"{col}_sd"] if math.isfinite(r[f"{col}_sd"])
                                          else 0.0) for r in rows]
                y_top = 1.06 * max(max(hi), 1e-3)
                axis.set_ylim(-0.02 * y_top, y_top)
            head = textwrap.fill(f"({kind}) {lab}", width=36)
            note = "; dashed: first-order theory" if kind == "d" and any_theory else ""
            axis.set_title(f"{head}\n{what}{note}", loc="left", fontsize=9)
            if j == 0 or (j > 0 and grid[i, j - 1] not in drawn):
                axis.set_ylabel(ylabel)
            if whole:
                axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            drawn.append(axis)
            last = axis
        if last is not None:
            last.set_xlabel("epoch")
    _depth_colorbar(sub, drawn, n_depth, names_by_depth,
                    "layer depth (1 = input side)")


# --------------------------------------------------------------------------- output


def default_out_dir(run_dirs: Sequence[str | os.PathLike]) -> Path:
    """``<first run's parent>/plot``: next to the runs, never over committed figures."""
    return Path(run_dirs[0]).absolute().parent / "plot"


def run_plot(
    run_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None = None,
    *,
    note: Callable[[str], None] | None = None,
) -> tuple[Records, dict[str, Path]]:
    """Read the runs, write ``OUTPUT_NAMES`` into ``out_dir``; return the final-accuracy
    table (:func:`final_accuracy`) and the paths written, by kind.

    ``run_dirs`` may name folders of runs and entries that are not runs
    (:func:`expand_run_dirs`); ``note`` (if given) is told, in one line, which entries were
    skipped. ``out_dir`` defaults to :func:`default_out_dir` of the runs. Everything is
    checked (the output location first, by probing it, then the runs) before anything is
    written; the five files are written under temporary names and renamed into place
    together (:func:`alignlab._output.write_together`), so a failure leaves the folder as
    it was.
    """
    from alignlab._output import check_output_dir
    from alignlab.reports._figure import write_figure_set

    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    if not run_dirs:
        raise ValueError("`run_dirs` must name at least one run directory, got [].")
    out = None if out_dir is None else check_output_dir(out_dir, name="out_dir")
    runs, skipped = expand_run_dirs(run_dirs)
    if out is None:
        out = check_output_dir(default_out_dir(runs), name="out_dir")
    if skipped and note is not None:
        note(f"skipped what is not a run directory: {', '.join(map(str, skipped))}")
    runset = load_runs(runs)
    acc = accuracy_curves(runset)
    lay = layer_curves(runset)
    upd = update_curves(runset)
    final = final_accuracy(runset, acc)

    import matplotlib

    matplotlib.use("Agg")

    models = sorted({r.model for r in runset.runs if r.model})
    title = (f"data: {runset.data or '?'}, model: {', '.join(models) or '?'}; "
             f"{len(runset.runs)} runs, {len(runset.label_order())} labels; "
             "lines: mean over seeds, bands: ± SD")
    fig = plot_curves(acc, lay, upd, title=title)
    written = write_figure_set(out, fig, {
        OUTPUT_NAMES["accuracy_csv"]: acc.to_csv,
        OUTPUT_NAMES["layers_csv"]: lay.to_csv,
        OUTPUT_NAMES["updates_csv"]: upd.to_csv,
    }, stem="curves")
    return final, {kind: written[name] for kind, name in OUTPUT_NAMES.items()}


# --------------------------------------------------------------------------- CLI


def register(subparsers, parser_class: type[argparse.ArgumentParser] | None = None) -> None:
    """Add ``plot`` to ``subparsers`` (from ``parser.add_subparsers()``).

    ``parser_class`` is accepted for symmetry with the other ``register`` functions and
    unused (the subparsers use the class given to ``add_subparsers``). The handler returns
    an exit status; matplotlib is imported only when it runs.
    """
    del parser_class
    p = subparsers.add_parser(
        "plot",
        help="training curves of runs: accuracy, per-layer alignment, norm ratio and "
        "update angle to BP",
        description="Read run directories written by `alignlab train`, pool seeds per "
        "method (label = method name + the options that differ across the runs) and write "
        "DIR/curves.{png,pdf} (the paper's Figure 2/4/5 panels: test accuracy mean ± SD "
        "over epochs; per-layer alignment angle and norm ratio coloured by depth; per-layer "
        "update angle to BP and |W W^T - I|_F at every log point where runs have them) "
        "with DIR/curves_accuracy.csv, DIR/curves_layers.csv and DIR/curves_updates.csv. "
        "See docs/plot.md.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories, or folders of runs (a sweep's DIR: its runs); "
                        "other entries (runs.csv, plot/) are skipped with a note")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: <first RUN_DIR's parent>/plot)")
    p.set_defaults(func=cmd_plot, flags=FLAGS)


def cmd_plot(args: argparse.Namespace) -> int:
    """Handler of ``alignlab plot``."""
    final, paths = run_plot(args.run_dirs, args.out,
                            note=lambda msg: print(f"alignlab: plot: {msg}", file=sys.stderr))
    print(format_final(final))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


def format_final(final: Records) -> str:
    """The final-accuracy table as printed by ``alignlab plot``."""
    rows = []
    for r in final:
        sd = f" +/- {r['test_acc_sd']:.2f}" if math.isfinite(r["test_acc_sd"]) else ""
        rows.append({
            "label": r["label"],
            "epoch": r["epoch"],
            "test accuracy (%)": f"{r['test_acc_mean']:.2f}{sd}",
            "seeds": f"{r['n']}/{r['runs']}",
            "incomplete runs": r["incomplete"],
        })
    columns = ["label", "epoch", "test accuracy (%)", "seeds", "incomplete runs"]
    if all(r["incomplete runs"] == "-" for r in rows):
        columns.pop()
        rows = [{c: r[c] for c in columns} for r in rows]
    return "final test accuracy, mean +/- SD over seeds\n" + Records(rows, columns).format()
