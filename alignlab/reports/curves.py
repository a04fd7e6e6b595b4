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

The runs are read and pooled by :mod:`alignlab.reports.runs` (how run directories are read
is described there); ``alignlab plot`` is registered in :mod:`alignlab.reports.cli`.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from alignlab._records import Records

from .runs import (
    UPDATE_COLUMNS,
    accuracy_curves,
    expand_run_dirs,
    final_accuracy,
    layer_curves,
    load_runs,
    update_curves,
)

__all__ = [
    "OUTPUT_NAMES",
    "default_out_dir",
    "depth_colors",
    "plot_curves",
    "run_plot",
]

#: What ``run_plot`` writes into its output folder, by kind.
OUTPUT_NAMES = {
    "accuracy_csv": "curves_accuracy.csv",
    "layers_csv": "curves_layers.csv",
    "updates_csv": "curves_updates.csv",
    "png": "curves.png",
    "pdf": "curves.pdf",
}


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
