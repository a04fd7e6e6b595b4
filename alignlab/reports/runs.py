"""The runs behind ``alignlab plot``: run directories read into labelled tidy tables
(:func:`load_runs`, :class:`RunSet`) and their statistics over seeds: the accuracy,
per-layer alignment and update-angle curves (:func:`accuracy_curves`,
:func:`layer_curves`, :func:`update_curves`) and the final accuracy (:func:`final_accuracy`,
printed by :func:`format_final`). Run directories are read through their one reader,
:func:`alignlab.train.rundir.read_run`; labels come from :mod:`alignlab.reports.labels`.

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

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab._records import Records
from alignlab.train.rundir import (
    CONFIG_FILE,
    LAYERS_FILE,
    METRICS_FILE,
    check_run_files,
    read_run,
)

from .labels import run_labels

__all__ = [
    "ACCURACY_COLUMNS",
    "LAYER_COLUMNS",
    "UPDATE_COLUMNS",
    "Run",
    "RunSet",
    "accuracy_curves",
    "expand_run_dirs",
    "final_accuracy",
    "format_final",
    "layer_curves",
    "load_runs",
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
#: Measures that have an alignment angle (``none``: nothing weight-shaped, e.g. DFA).
_MEASURED = ("weight", "path")
#: Columns of ``RunSet.updates`` (one row per run, layer and log point).
_UPDATE_RUN_COLUMNS = ("label", "run", "seed", "layer", "depth", "step", "x",
                       "update_angle_deg", "ortho_residual", "update_angle_first_order_deg")


#: The columns each CSV file must have to be plotted.
_NEEDED = {METRICS_FILE: ("epoch", "test_acc"),
           LAYERS_FILE: ("epoch", "layer", "measure", "angle_deg", "norm_ratio")}


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


def _section(config: dict, name: str) -> dict:
    value = config.get(name, {})
    return value if isinstance(value, dict) else {}


def _read_run(run_dir: Path) -> Run:
    record = read_run(run_dir, (CONFIG_FILE, METRICS_FILE), columns=_NEEDED, name="run_dirs")
    config = record.config
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

    rows = record.metrics  # at least one: read_run refuses a metrics.csv without rows
    epochs_f = np.array([r["epoch"] for r in rows], dtype=float)
    if not np.all(np.isfinite(epochs_f) & (epochs_f == np.round(epochs_f))):
        raise ValueError(f"`epoch` must be whole numbers, got {epochs_f.tolist()} in "
                         f"{run_dir.name}/{METRICS_FILE}.")
    acc = np.array([r["test_acc"] for r in rows], dtype=float)
    finite = acc[np.isfinite(acc)]
    if finite.size and finite.max() <= 1.0:  # fractions -> percent
        acc = acc * 100.0

    # optimiser steps at each epoch's metrics row: picks the matching layers.csv log point
    metric_step = {int(e): r["step"] for e, r in zip(epochs_f.tolist(), rows, strict=True)
                   if math.isfinite(r["step"])}

    layers: list[dict[str, Any]] = []
    best: dict[tuple[str, int], tuple[float, int]] = {}  # (layer, epoch) -> (rank, index)
    for r in record.layers:
        epoch, step = r["epoch"], r["step"]
        if not (math.isfinite(epoch) and epoch == round(epoch)):
            continue
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
        row = {"layer": r["layer"], "epoch": int(epoch), "measure": r["measure"],
               "angle_deg": r["angle_deg"], "norm_ratio": r["norm_ratio"],
               "feedback_used": r["feedback_used"]}
        if key in best:  # a later row for the same point (e.g. after a resume) wins
            layers[best[key][1]] = row
            best[key] = (rank, best[key][1])
        else:
            best[key] = (rank, len(layers))
            layers.append(row)

    status = record.summary.get("status") if isinstance(record.summary, dict) else None
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
        updates=tuple(_update_points(record.layers, metric_step)),
    )


def _update_points(raw: Sequence[dict[str, Any]], metric_step: dict[int, float]
                   ) -> list[dict[str, Any]]:
    """Every log point of ``layers.csv`` (rows as :func:`~alignlab.train.rundir.read_run`
    parsed them) for (d), (e), at x = ``step / steps_per_epoch``.

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
        epoch, step = r["epoch"], r["step"]
        if not (math.isfinite(epoch) and epoch == round(epoch)):
            continue
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
        angle, ortho = r["update_angle_deg"], r["ortho_residual"]
        if not (math.isfinite(angle) or math.isfinite(ortho)):
            continue
        points[(r["layer"], x)] = {
            "layer": r["layer"], "depth": depth[r["layer"]], "epoch": epoch,
            "step": int(step) if math.isfinite(step) and step == round(step) else math.nan,
            "x": x, "update_angle_deg": angle, "ortho_residual": ortho,
            "update_angle_first_order_deg": r["update_angle_first_order_deg"],
        }
    return list(points.values())


#: A folder is a run directory if it holds one of these.
_RUN_MARKERS = (CONFIG_FILE, METRICS_FILE)


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
        check_run_files(p, (CONFIG_FILE, METRICS_FILE), name="run_dirs")
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
    labels = run_labels(runs)

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
