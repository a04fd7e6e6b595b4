"""``alignlab plot``: run directories -> accuracy / alignment / norm-ratio curves.

The fixture writes run directories in the harness's format with numbers chosen so that every
mean and SD is exact in float64: values are dyadic rationals, and each (label, epoch) group
of three seeds is ``x - d, x, x + d``, whose mean is ``x`` and sample SD ``d`` exactly.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from alignlab._toml import dumps_toml, loads_toml
from alignlab.reports import runs as run_tables
from alignlab.reports.curves import OUTPUT_NAMES, depth_colors, plot_curves, run_plot
from alignlab.reports.runs import (
    ACCURACY_COLUMNS,
    LAYER_COLUMNS,
    UPDATE_COLUMNS,
    accuracy_curves,
    expand_run_dirs,
    layer_curves,
    load_runs,
    update_curves,
)
from alignlab.train.rundir import CsvLog, write_json

matplotlib.use("Agg")

EPOCHS = 5
SEEDS = (0, 1, 2)
# File order (= depth) differs from name order (block.10 < head < stem), so a sort by name
# would show up as a wrong depth.
LAYERS = ("stem", "block.10", "head")


# --------------------------------------------------------------------------- the fixture


def acc_frac(method_index: int, seed: int, epoch: int) -> float:
    """Test accuracy as a fraction: mean 0.5 + e/16 + m/32, seed offset (s-1) d."""
    return 0.5 + epoch / 16 + method_index / 32 + (seed - 1) * acc_sd_frac(method_index, epoch)


def acc_sd_frac(method_index: int, epoch: int) -> float:
    return 2.0**-7 * (1 + (epoch + method_index) % 3)


def angle(method_index: int, seed: int, depth: int, epoch: int) -> float:
    return 10.0 * depth + 20.0 * method_index + epoch + (seed - 1) * angle_sd(depth)


def angle_sd(depth: int) -> float:
    return 0.5 * depth


def norm_ratio(method_index: int, seed: int, depth: int, epoch: int) -> float:
    return 1.0 + 0.125 * depth - epoch / 32 + method_index / 4 + (seed - 1) * 0.0625


def write_run(
    run_dir: Path,
    *,
    method: str,
    method_index: int = 0,
    seed: int = 0,
    options: dict | None = None,
    measure: str = "weight",
    data: str = "synthetic",
    model: str = "mlp",
    epochs: int = EPOCHS,
    percent: bool = False,
    status: str = "completed",
    extra_config: str = "",
    step_rows: bool = True,
    metrics_step: bool = True,
    update_angle: float | None = None,
    steps_per_epoch: int = 8,
) -> Path:
    """A run directory as ``alignlab train`` writes it, with the numbers above.

    ``update_angle``: every layer's ``update_angle_deg`` (default 30, measure none 45; BP
    logs 0). No ``ortho_residual`` column: the layout of run directories before it."""
    run_dir.mkdir(parents=True)
    # the package's own writers: TOML (dumps_toml), CSV (CsvLog), JSON (write_json)
    extra = loads_toml(extra_config) if extra_config else {}
    (run_dir / "config.toml").write_text(dumps_toml({
        "data": {"name": data, "limit": 512}, "model": {"name": model},
        "method": {"name": method, **(options or {})},
        "optim": {"lr": 0.01, "momentum": 0.9},
        "train": {"seed": seed, "epochs": epochs, "batch_size": 64}, **extra,
        "meta": {"alignlab": "0.1.0", "torch": "2.4.0"}}))
    scale = 100.0 if percent else 1.0
    metric_cols = ["epoch", *(["step"] if metrics_step else []), "train_loss", "train_acc",
                   "val_acc", "test_acc", "lr", "weight_decay", "wall_s"]
    CsvLog(run_dir / "metrics.csv", metric_cols).rewrite(
        {"epoch": e, "step": e * steps_per_epoch, "train_loss": 2.3 / (1 + e),
         "train_acc": 0.5, "val_acc": None,
         "test_acc": scale * acc_frac(method_index, seed, e), "lr": 0.01,
         "weight_decay": 0.0, "wall_s": 0.1 * e} for e in range(epochs + 1))
    # As the harness logs: end of epoch e at step 8 e (epoch 0: initialisation); with
    # log_every_steps, mid-epoch points carry the epoch in progress and a smaller step.
    upd = 30.0 if update_angle is None else update_angle
    rows = []
    for e in range(epochs + 1):
        if step_rows and e > 0:  # a log point inside epoch e: never on the curve
            rows += [{"epoch": e, "step": e * steps_per_epoch - 4, "layer": name,
                      "measure": measure, "angle_deg": 999.0, "norm_ratio": 999.0,
                      "feedback_used": True, "update_angle_deg": upd, "fb0_sq": 1.0}
                     for name in LAYERS]
        for d, name in enumerate(LAYERS, start=1):
            row = {"epoch": e, "step": e * steps_per_epoch, "layer": name,
                   "measure": measure, "feedback_used": d != 1,  # nothing below layer 1
                   "update_angle_deg": upd, "fb0_sq": 1.0}
            if measure == "none":
                row.update(update_angle_deg=45.0 if update_angle is None else update_angle,
                           fb0_sq=None)
            else:
                row.update(angle_deg=angle(method_index, seed, d, e),
                           norm_ratio=norm_ratio(method_index, seed, d, e))
            rows.append(row)
    for row in rows:
        row.update(type="Linear", method=method, w_sq=1.0, w_dot_w0=1.0, w0_sq=1.0)
    CsvLog(run_dir / "layers.csv", [
        "epoch", "step", "layer", "type", "method", "measure", "angle_deg", "norm_ratio",
        "feedback_used", "update_angle_deg", "w_sq", "w_dot_w0", "w0_sq", "fb0_sq"]).rewrite(
        rows)
    write_json(run_dir / "summary.json", {"status": status, "test_acc": 0.9})
    return run_dir


METHODS = (("fa", {}, "weight"), ("pfa", {"expansion_ratio": 10.0}, "path"))


def make_runs(root: Path) -> list[Path]:
    """2 methods x 3 seeds, 5 epochs, 3 layers (FA: weight measure; PFA r=10: path)."""
    out = []
    for m, (method, options, measure) in enumerate(METHODS):
        for s in SEEDS:
            out.append(write_run(root / "runs" / f"{method}-s{s}", method=method,
                                 method_index=m, seed=s, options=options, measure=measure))
    return out


# Runs of a model trained by layer-local targets (GAIT-prop & co. on an invertible network)
# as the harness logs them: measure none, no alignment angle (NaN), per layer the update
# angle to BP and |W W^T - I|_F, every TARGET_LOG optimiser steps inside an epoch.
TARGET_SPE = 10  # optimiser steps per epoch
TARGET_LOG = 4  # train.log_every_steps
TARGET_EPOCHS = 2
TARGET_LAYERS = ("layers.0", "layers.1", "layers.2")
#: (epoch, step) of every log point, in file order, and its fractional epoch
TARGET_POINTS = ((0, 0, 0.0), (1, 4, 0.4), (1, 8, 0.8), (1, 10, 1.0), (2, 12, 1.2),
                 (2, 16, 1.6), (2, 20, 2.0))
TARGET_HEADER = ("epoch,step,layer,type,method,measure,angle_deg,norm_ratio,feedback_used,"
                 "update_angle_deg,update_norm_ratio,w_sq,w_dot_w0,w0_sq,fb0_sq,w_dot_fb0,"
                 "decay_c,ortho_residual,condition,update_angle_first_order_deg")


def target_points() -> list[tuple[int, int]]:
    """The harness's log points: epoch 0 at step 0; in each epoch every step that is a
    multiple of TARGET_LOG except on its last batch, then the epoch's end."""
    points = [(0, 0)]
    for e in range(1, TARGET_EPOCHS + 1):
        points += [(e, s) for s in range((e - 1) * TARGET_SPE + 1, e * TARGET_SPE)
                   if s % TARGET_LOG == 0]
        points.append((e, e * TARGET_SPE))
    return points


def update_angle(seed: int, depth: int, step: int) -> float:
    """Seeds 0 and 1: 10 d + step/4 -/+ d/2 (mean exact, SD d/sqrt(2))."""
    return 10.0 * depth + step / 4 + (seed - 0.5) * depth


def ortho_residual(seed: int, depth: int, step: int) -> float:
    """2^-44 d at initialisation (an orthogonal init), then d step/64 + seed/128: spans
    more than a decade (log axis); mean over seeds 0, 1: d step/64 + 1/256."""
    return 2.0**-44 * depth if step == 0 else depth * step / 64 + seed / 128


def first_order(seed: int, depth: int, step: int) -> float:
    """The logged first-order prediction (GAIT-prop): 0.9 x the update angle."""
    return 0.9 * update_angle(seed, depth, step)


def write_target_run(run_dir: Path, *, method: str, seed: int = 0,
                     angle=update_angle, metrics_epochs: int = TARGET_EPOCHS,
                     theory=first_order) -> Path:
    """A GAIT-prop-style run (model ``invertible``); ``angle(seed, depth, step)`` gives the
    update angle (BP: 0). ``metrics_epochs`` < TARGET_EPOCHS: a run still training (its
    metrics.csv stops there; layers.csv goes on)."""
    write_run(run_dir, method=method, seed=seed, model="invertible", measure="none",
              epochs=TARGET_EPOCHS, steps_per_epoch=TARGET_SPE, step_rows=False)
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    (run_dir / "metrics.csv").write_text("\n".join(metrics[:metrics_epochs + 2]) + "\n")
    lines = [TARGET_HEADER]
    for e, step in target_points():
        for d, name in enumerate(TARGET_LAYERS, start=1):
            lines.append(",".join([
                str(e), str(step), name, "InvertibleLinear", method, "none", "nan", "nan", "",
                repr(angle(seed, d, step)), "1.0", "784.0", "784.0", "784.0", "nan", "nan",
                "nan", repr(ortho_residual(seed, d, step)), "nan",
                repr(theory(seed, d, step) if theory else math.nan)]))
    (run_dir / "layers.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def make_target_runs(root: Path) -> list[Path]:
    """GAIT-prop and the BP rule (update angle 0), seeds 0 and 1."""
    return [write_target_run(root / "runs" / f"{m}-s{s}", method=m, seed=s,
                             angle=update_angle if m == "gait-prop" else lambda *a: 0.0,
                             theory=first_order if m == "gait-prop" else None)
            for m in ("gait-prop", "bp") for s in (0, 1)]


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    return make_runs(tmp_path)


@pytest.fixture(scope="module")
def plotted(tmp_path_factory):
    """The fixture runs plotted once (drawing is the slow part): (runs, final, paths)."""
    root = tmp_path_factory.mktemp("plotted")
    runs = make_runs(root)
    final, paths = run_plot(runs, root / "out")
    return runs, final, paths


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- numbers


def test_accuracy_csv_is_the_exact_mean_and_sd(plotted):
    _, final, paths = plotted
    rows = read_csv(paths["accuracy_csv"])
    assert list(rows[0]) == list(ACCURACY_COLUMNS)
    assert len(rows) == 2 * (EPOCHS + 1)
    expected = {}
    for m in range(len(METHODS)):
        for e in range(EPOCHS + 1):
            # percent; exact: every value is a multiple of 25/32
            expected[(m, e)] = (100 * (0.5 + e / 16 + m / 32), 100 * acc_sd_frac(m, e))
    labels = ["fa", "pfa"]
    for row in rows:
        m, e = labels.index(row["label"]), int(row["epoch"])
        mean, sd = expected[(m, e)]
        assert float(row["mean"]) == mean, row
        assert float(row["sd"]) == sd, row
        assert int(row["n"]) == 3
    # the printed table: last epoch of each label
    assert final.column("label") == labels
    assert final.column("epoch") == [EPOCHS, EPOCHS]
    assert final.column("test_acc_mean") == [expected[(m, EPOCHS)][0] for m in (0, 1)]
    assert final.column("test_acc_sd") == [expected[(m, EPOCHS)][1] for m in (0, 1)]


def test_percent_and_fraction_inputs_give_the_same_csv(tmp_path):
    for unit, percent in (("frac", False), ("pct", True)):
        dirs = [write_run(tmp_path / unit / f"s{s}", method="fa", seed=s, percent=percent)
                for s in SEEDS]
        accuracy_curves(load_runs(dirs)).to_csv(tmp_path / f"{unit}.csv")
    frac = (tmp_path / "frac.csv").read_text()
    assert frac == (tmp_path / "pct.csv").read_text()
    assert float(read_csv(tmp_path / "frac.csv")[0]["mean"]) == 50.0


def test_layers_csv_is_exact_with_depth_in_file_order(plotted):
    _, _, paths = plotted
    rows = read_csv(paths["layers_csv"])
    assert list(rows[0]) == list(LAYER_COLUMNS)
    assert len(rows) == 2 * len(LAYERS) * (EPOCHS + 1)
    for row in rows:
        m = ["fa", "pfa"].index(row["label"])
        d, e = int(row["depth"]), int(row["epoch"])
        assert row["layer"] == LAYERS[d - 1]  # depth = order in layers.csv, not by name
        assert row["measure"] == METHODS[m][2]
        # The in-epoch log point (999) never enters: the epoch's first log point is used.
        assert float(row["angle_deg_mean"]) == 10.0 * d + 20.0 * m + e
        assert float(row["angle_deg_sd"]) == angle_sd(d)
        assert float(row["norm_ratio_mean"]) == 1.0 + 0.125 * d - e / 32 + m / 4
        assert float(row["norm_ratio_sd"]) == 0.0625
        assert int(row["n"]) == 3
        assert row["feedback_used"] == ("false" if d == 1 else "true")


def test_without_a_metrics_step_the_epochs_last_log_point_is_used(tmp_path):
    """Fallback when metrics.csv has no step column: the largest step of each epoch."""
    for kind, has_step in (("with", True), ("without", False)):
        dirs = [write_run(tmp_path / kind / f"s{s}", method="pfa", seed=s, measure="path",
                          metrics_step=has_step) for s in SEEDS]
        lay = layer_curves(load_runs(dirs))
        assert max(lay.column("angle_deg_mean")) < 999.0
        (tmp_path / f"{kind}.csv").write_text(str(lay))
    assert (tmp_path / "with.csv").read_text() == (tmp_path / "without.csv").read_text()


def test_nan_angles_are_left_out_and_n_counts_the_rest(tmp_path):
    """The harness writes NaN where a layer's feedback is not measured (e.g. FA's first
    layer once its feedback is known to be unused): that seed drops out of that point."""
    dirs = [write_run(tmp_path / f"s{s}", method="fa", seed=s, step_rows=False)
            for s in SEEDS]
    path = dirs[1] / "layers.csv"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        cells = line.split(",")
        if cells[0] == "3" and cells[2] == "head":
            cells[6] = cells[7] = "nan"
            lines[i] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    lay = layer_curves(load_runs(dirs))
    (row,) = [r for r in lay if r["layer"] == "head" and r["epoch"] == 3]
    assert row["n"] == 2
    assert row["angle_deg_mean"] == (angle(0, 0, 3, 3) + angle(0, 2, 3, 3)) / 2 == 33.0
    assert row["angle_deg_sd"] == float(np.std([angle(0, 0, 3, 3), angle(0, 2, 3, 3)],
                                               ddof=1))
    assert {r["n"] for r in lay if not (r["layer"] == "head" and r["epoch"] == 3)} == {3}


def test_seeds_are_pooled_per_label(runs):
    runset = load_runs(runs)
    assert list(runset.labels) == ["fa"] * 3 + ["pfa"] * 3
    assert runset.label_order() == ["fa", "pfa"]
    acc = accuracy_curves(runset)
    assert set(acc.column("n")) == {3}
    # each label's epoch-3 mean is its own seeds' mean, not the other label's
    by = {(r["label"], r["epoch"]): r["mean"] for r in acc}
    assert by[("pfa", 3)] - by[("fa", 3)] == 100 / 32


def test_single_seed_has_nan_sd_and_n_1(tmp_path):
    d = write_run(tmp_path / "r", method="bp", seed=4)
    acc = accuracy_curves(load_runs([d]))
    assert set(acc.column("n")) == {1}
    assert all(math.isnan(x) for x in acc.column("sd"))
    assert acc.column("mean")[0] == 100 * acc_frac(0, 4, 0)


# --------------------------------------------------------------------------- labels


def test_labels_name_only_the_options_that_differ(tmp_path):
    root = tmp_path / "runs"
    dirs = [
        write_run(root / "pfa10", method="pfa", options={"expansion_ratio": 10.0,
                                                          "ensemble": "uniform"}),
        write_run(root / "pfa3", method="pfa", options={"expansion_ratio": 3.0,
                                                         "ensemble": "uniform"}),
        write_run(root / "pfao", method="pfa-o", options={"expansion_ratio": 1.0}),
        write_run(root / "bp", method="bp"),
    ]
    # same method, same options, different seed: one label (pooled)
    dirs.append(write_run(root / "pfa10b", method="pfa", seed=1,
                          options={"expansion_ratio": 10.0, "ensemble": "uniform"}))
    runset = load_runs(dirs)
    assert list(runset.labels) == ["pfa r=10", "pfa r=3", "pfa-o", "bp", "pfa r=10"]
    assert runset.label_order() == ["pfa r=10", "pfa r=3", "pfa-o", "bp"]


def test_same_seed_different_config_is_split_not_pooled(tmp_path):
    root = tmp_path / "runs"
    dirs = [write_run(root / f"lr{i}-s{s}", method="fa", seed=s,
                      extra_config="" if i == 0 else "[schedule]\nlr_gamma = 0.5\n\n")
            for i in (0, 1) for s in (0, 1)]
    labels = load_runs(dirs).labels
    assert list(labels) == ["fa schedule.lr_gamma=-"] * 2 + ["fa schedule.lr_gamma=0.5"] * 2


def test_the_same_configuration_twice_is_an_error(tmp_path):
    a = write_run(tmp_path / "a", method="fa", seed=0)
    b = write_run(tmp_path / "b", method="fa", seed=0)
    with pytest.raises(ValueError, match=r"must not repeat a configuration.*seed 0"):
        load_runs([a, b])
    with pytest.raises(ValueError, match="must not repeat a directory"):
        load_runs([a, tmp_path / "." / "a"])


def test_models_that_differ_are_in_the_label(tmp_path):
    dirs = [write_run(tmp_path / "m", method="fa", model="mlp"),
            write_run(tmp_path / "r", method="fa", model="resnet20")]
    assert list(load_runs(dirs).labels) == ["fa model=mlp", "fa model=resnet20"]


# --------------------------------------------------------------------------- the figure


def luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def axes_titled(fig, prefix: str):
    return [ax for ax in fig.axes if ax.get_title(loc="left").startswith(prefix)]


def test_depth_colours_go_from_light_to_dark(runs):
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    runset = load_runs(runs)
    fig = plot_curves(accuracy_curves(runset), layer_curves(runset))
    try:
        for prefix in ("(b) fa: weight", "(b) pfa: path", "(c) fa: weight", "(c) pfa: path"):
            (ax,) = axes_titled(fig, prefix)
            lines = [ln for ln in ax.get_lines() if ln.get_label() in LAYERS]
            assert [ln.get_label() for ln in lines] == list(LAYERS)  # drawn in depth order
            lum = [luminance(mcolors.to_rgba(ln.get_color())) for ln in lines]
            assert lum[0] > lum[1] > lum[2], lum  # first layer lightest, last darkest
            assert [mcolors.to_rgba(ln.get_color()) for ln in lines] == depth_colors(3)
            # the first layer's feedback is never used (feedback_used false): dashed
            assert [ln.get_linestyle() for ln in lines] == ["--", "-", "-"]
        # one colorbar, ticks named after the layers
        (bar_ax,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("layer depth")]
        assert bar_ax.get_ylabel().endswith("dashed: feedback never used")
        assert [t.get_text() for t in bar_ax.get_yticklabels()] == [
            f"{d}: {name}" for d, name in enumerate(LAYERS, start=1)]
    finally:
        plt.close(fig)


def test_accuracy_axis_zooms_to_the_last_half(runs):
    import matplotlib.pyplot as plt

    runset = load_runs(runs)
    acc = accuracy_curves(runset)
    fig = plot_curves(acc, layer_curves(runset))
    try:
        (ax,) = axes_titled(fig, "(a)")
        lo, hi = ax.get_ylim()
        late = [r for r in acc if r["epoch"] >= EPOCHS / 2]
        assert lo < min(r["mean"] - r["sd"] for r in late)  # late bands fully visible
        assert hi > max(r["mean"] + r["sd"] for r in late)
        assert lo > max(r["mean"] for r in acc if r["epoch"] == 0)  # epoch 0 cut off: zoomed
        assert ax.get_ylabel() == "test accuracy (%)" and ax.get_xlabel() == "epoch"
        assert [t.get_text().split(":")[0] for t in ax.get_legend().get_texts()] == ["fa", "pfa"]
    finally:
        plt.close(fig)


def test_dfa_appears_only_in_the_accuracy_panel(runs, tmp_path):
    dfa = [write_run(tmp_path / "runs" / f"dfa-s{s}", method="dfa", method_index=2, seed=s,
                     measure="none") for s in SEEDS]
    runset = load_runs(runs + dfa)
    acc, lay = accuracy_curves(runset), layer_curves(runset)
    assert "dfa" in acc.column("label")
    assert "dfa" not in lay.column("label")
    import matplotlib.pyplot as plt

    fig = plot_curves(acc, lay)
    try:
        assert not axes_titled(fig, "(b) dfa") and not axes_titled(fig, "(c) dfa")
        assert len(axes_titled(fig, "(b)")) == 2
    finally:
        plt.close(fig)
    # DFA only: one panel, no colorbar
    fig = plot_curves(*(lambda r: (accuracy_curves(r), layer_curves(r)))(load_runs(dfa)))
    try:
        assert [ax.get_title(loc="left")[:3] for ax in fig.axes] == ["(a)"]
    finally:
        plt.close(fig)


def test_a_diverged_seed_shortens_n_and_is_reported(tmp_path):
    dirs = [write_run(tmp_path / f"s{s}", method="pfa", seed=s,
                      epochs=2 if s == 2 else EPOCHS,
                      status="diverged" if s == 2 else "completed") for s in SEEDS]
    runset = load_runs(dirs)
    final = run_tables.final_accuracy(runset)
    n = {r["epoch"]: r["n"] for r in accuracy_curves(runset)}
    assert n == {0: 3, 1: 3, 2: 3, 3: 2, 4: 2, 5: 2}
    (row,) = list(final)
    assert (row["epoch"], row["n"], row["runs"]) == (EPOCHS, 2, 3)
    assert row["incomplete"] == "s2: diverged"
    assert "s2: diverged" in run_tables.format_final(final)


# --------------------------------------------------------------------------- update angles


@pytest.fixture(scope="module")
def target_plotted(tmp_path_factory):
    """GAIT-prop and BP-rule runs (2 seeds each) plotted once: (runs, paths)."""
    root = tmp_path_factory.mktemp("target")
    runs = make_target_runs(root)
    _, paths = run_plot(runs, root / "out")
    return runs, paths


def test_target_rule_points_are_every_log_point_at_fractional_epochs(target_plotted):
    _, paths = target_plotted
    assert target_points() == [(e, s) for e, s, _ in TARGET_POINTS]  # the fixture's own
    rows = read_csv(paths["updates_csv"])
    assert list(rows[0]) == list(UPDATE_COLUMNS)
    gait = [r for r in rows if r["label"] == "gait-prop"]
    assert len(gait) == len(TARGET_LAYERS) * len(TARGET_POINTS)
    for d, name in enumerate(TARGET_LAYERS, start=1):
        mine = [r for r in gait if r["layer"] == name]
        assert {r["depth"] for r in mine} == {str(d)}
        # x = step / steps per epoch (10, from metrics.csv), mid-epoch points included
        assert [float(r["epoch"]) for r in mine] == [x for _, _, x in TARGET_POINTS]
        assert [int(r["step"]) for r in mine] == [s for _, s, _ in TARGET_POINTS]
        for r, (_, step, _) in zip(mine, TARGET_POINTS, strict=True):
            # the mean over the two seeds, exactly; SD with ddof=1
            assert float(r["update_angle_deg_mean"]) == 10.0 * d + step / 4, r
            assert float(r["update_angle_deg_sd"]) == float(np.std(
                [update_angle(0, d, step), update_angle(1, d, step)], ddof=1))
            assert int(r["update_angle_deg_n"]) == 2
            expected = 2.0**-44 * d if step == 0 else d * step / 64 + 1 / 256
            assert float(r["ortho_residual_mean"]) == expected, r
            assert int(r["ortho_residual_n"]) == 2
            assert math.isclose(float(r["update_angle_first_order_deg_mean"]),
                                0.9 * (10.0 * d + step / 4), rel_tol=1e-12)
            assert int(r["update_angle_first_order_deg_n"]) == 2


def test_the_bp_rule_has_no_update_angle_but_its_ortho_residual(target_plotted):
    runs, paths = target_plotted
    bp = [r for r in read_csv(paths["updates_csv"]) if r["label"] == "bp"]
    assert len(bp) == len(TARGET_LAYERS) * len(TARGET_POINTS)  # (e) rows only
    assert {r["update_angle_deg_n"] for r in bp} == {"0"}
    assert all(math.isnan(float(r["update_angle_deg_mean"])) for r in bp)
    assert {r["ortho_residual_n"] for r in bp} == {"2"}
    assert {r["update_angle_first_order_deg_n"] for r in bp} == {"0"}
    # measure none, NaN angles: the existing panels and their CSV ignore these runs
    assert read_csv(paths["layers_csv"]) == []
    assert {r["label"] for r in read_csv(paths["accuracy_csv"])} == {"gait-prop", "bp"}


def test_a_bp_only_set_gets_no_update_rows_and_no_update_panels(tmp_path):
    import matplotlib.pyplot as plt

    dirs = [write_run(tmp_path / "runs" / f"bp-s{s}", method="bp", seed=s, update_angle=0.0)
            for s in SEEDS]
    _, paths = run_plot(dirs, tmp_path / "out")
    assert paths["updates_csv"].read_text() == ",".join(UPDATE_COLUMNS) + "\n"
    runset = load_runs(dirs)
    assert len(runset.updates) == len(SEEDS) * len(LAYERS) * (2 * EPOCHS + 1)  # all read
    fig = plot_curves(accuracy_curves(runset), layer_curves(runset), update_curves(runset))
    try:
        assert not axes_titled(fig, "(d)") and not axes_titled(fig, "(e)")
        assert len(axes_titled(fig, "(b) bp")) == 1
    finally:
        plt.close(fig)


def test_old_run_dirs_without_ortho_residual_still_plot(plotted, tmp_path):
    """The MLP fixture has no ortho_residual column: (d) from every log point (mid-epoch
    at step 8 e - 4, i.e. epoch e - 1/2), no (e); mixed with target-rule runs, (e) shows
    those only."""
    runs, _, paths = plotted
    rows = read_csv(paths["updates_csv"])
    points = [0.0] + [x for e in range(1, EPOCHS + 1) for x in (e - 0.5, float(e))]
    assert len(rows) == 2 * len(LAYERS) * len(points)
    for lab in ("fa", "pfa"):
        for d, name in enumerate(LAYERS, start=1):
            mine = [r for r in rows if r["label"] == lab and r["layer"] == name]
            assert {r["depth"] for r in mine} == {str(d)}
            assert [float(r["epoch"]) for r in mine] == points
            assert {(r["update_angle_deg_mean"], r["update_angle_deg_n"]) for r in mine} == {
                ("30.0", "3")}
            assert {r["ortho_residual_n"] for r in mine} == {"0"}
    # layers.csv without update_angle_deg either (older still): read as NaN, no rows
    old = write_run(tmp_path / "old", method="fa", seed=7)
    text = (old / "layers.csv").read_text().replace(",update_angle_deg,", ",other,")
    (old / "layers.csv").write_text(text)
    assert len(load_runs([old]).updates) == 0
    # mixed with GAIT-prop runs: (d) for fa, pfa and gait-prop, (e) for gait-prop only
    import matplotlib.pyplot as plt

    mixed = load_runs(runs + make_target_runs(tmp_path / "t")[:2])
    upd = update_curves(mixed)
    labels = ["fa model=mlp", "pfa model=mlp", "gait-prop model=invertible"]
    assert list(dict.fromkeys(upd.column("label"))) == labels
    fig = plot_curves(accuracy_curves(mixed), layer_curves(mixed), upd)
    try:
        # the GAIT-prop panel also draws the logged first-order theory (dashed)
        assert [ax.get_title(loc="left") for ax in axes_titled(fig, "(d)")] == [
            f"(d) {lab}\nupdate angle to BP" for lab in labels[:2]] + [
            f"(d) {labels[2]}\nupdate angle to BP; dashed: first-order theory"]
        gait_ax = axes_titled(fig, "(d)")[2]
        assert sum(line.get_linestyle() == "--" for line in gait_ax.get_lines()) == 3
        (ortho_ax,) = axes_titled(fig, "(e)")
        assert ortho_ax.get_title(loc="left").startswith("(e) gait-prop model=invertible")
        assert len(axes_titled(fig, "(b)")) == 2  # the target runs have no alignment
    finally:
        plt.close(fig)


def test_update_panels_draw_every_point_by_depth(target_plotted):
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    runs, _ = target_plotted
    runset = load_runs(runs)
    upd = update_curves(runset)
    fig = plot_curves(accuracy_curves(runset), layer_curves(runset), upd)
    try:
        (ax_d,) = axes_titled(fig, "(d)")  # BP's update is BP's: no (d) panel
        assert ax_d.get_title(loc="left") == (
            "(d) gait-prop\nupdate angle to BP; dashed: first-order theory")
        theory = [ln for ln in ax_d.get_lines() if ln.get_linestyle() == "--"]
        assert [mcolors.to_rgba(ln.get_color()) for ln in theory] == depth_colors(3)
        for d, ln in enumerate(theory, start=1):  # the logged prediction, mean over seeds
            np.testing.assert_allclose(ln.get_ydata(), [
                0.9 * (10.0 * d + st / 4) for _, st, _ in TARGET_POINTS], rtol=1e-12)
        ortho = axes_titled(fig, "(e)")
        assert [ax.get_title(loc="left").split("\n")[0] for ax in ortho] == [
            "(e) gait-prop", "(e) bp"]
        assert all(ax.get_yscale() == "log" for ax in ortho)  # 1/16 .. 0.94: > 1 decade
        # the initialisation's roundoff (2^-44 d) runs off the bottom: the curves get the axis
        lowest = 4 / 64 + 1 / 256  # depth 1, step 4
        assert all(lowest / 2 == ax.get_ylim()[0] for ax in ortho), [
            ax.get_ylim() for ax in ortho]
        assert not axes_titled(fig, "(b)") and not axes_titled(fig, "(c)")
        for ax, mean in ((ax_d, lambda d, st: 10.0 * d + st / 4),
                         (ortho[0], lambda d, st: 2.0**-44 * d if st == 0
                          else d * st / 64 + 1 / 256)):
            lines = [ln for ln in ax.get_lines() if ln.get_label() in TARGET_LAYERS]
            assert [ln.get_label() for ln in lines] == list(TARGET_LAYERS)
            assert [mcolors.to_rgba(ln.get_color()) for ln in lines] == depth_colors(3)
            for d, ln in enumerate(lines, start=1):
                assert list(ln.get_xdata()) == [x for _, _, x in TARGET_POINTS]
                assert list(ln.get_ydata()) == [mean(d, st) for _, st, _ in TARGET_POINTS]
        assert ax_d.get_ylim()[0] <= 0.0  # the angle axis starts at 0
        (bar,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("layer depth")]
        assert [t.get_text() for t in bar.get_yticklabels()] == [
            f"{d}: {name}" for d, name in enumerate(TARGET_LAYERS, start=1)]
    finally:
        plt.close(fig)


def test_a_run_in_its_first_epoch_has_only_points_it_can_place(tmp_path):
    """Without metrics.csv's epoch-1 row there is no steps-per-epoch: the mid-epoch points
    are left out (not put at whole epochs). Without any metrics step, each epoch's last
    log point stands for its end (as in (b), (c))."""
    d = write_target_run(tmp_path / "running", method="gait-prop", metrics_epochs=0)
    runset = load_runs([d])
    assert sorted({r["x"] for r in runset.updates}) == [0.0]
    assert len(update_curves(runset)) == len(TARGET_LAYERS)
    dirs = [write_run(tmp_path / f"s{s}", method="fa", seed=s, metrics_step=False)
            for s in SEEDS]
    upd = update_curves(load_runs(dirs))
    assert sorted(set(upd.column("epoch"))) == [float(e) for e in range(EPOCHS + 1)]
    assert set(upd.column("step")) == {8 * e for e in range(EPOCHS + 1)}  # the ends


# --------------------------------------------------------------------------- files


def test_writes_png_pdf_and_csvs_and_no_temporary_files(plotted):
    runs, _, paths = plotted
    out = paths["png"].parent
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_NAMES.values())
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    assert paths["png"].stat().st_size > 20_000 and paths["pdf"].stat().st_size > 5_000


def test_same_runs_same_bytes(plotted):
    runs, _, paths = plotted
    first = {k: p.read_bytes() for k, p in paths.items()}
    _, again = run_plot(runs, paths["png"].parent)  # overwrites; the PDF has no date
    assert {k: p.read_bytes() for k, p in again.items()} == first


def test_default_out_is_next_to_the_runs(runs):
    _, paths = run_plot(runs)
    assert paths["png"].parent == runs[0].parent.parent / "runs" / "plot"
    assert paths["png"].exists()


def test_a_failure_while_writing_leaves_the_folder_as_it_was(runs, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    out = tmp_path / "out"
    out.mkdir()
    (out / "curves_accuracy.csv").write_text("old\n")
    real = Figure.savefig

    def failing(self, fname, *args, **kwargs):
        if kwargs.get("format") == "pdf":
            raise OSError("disk full")
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", failing)
    with pytest.raises(ValueError, match="`out_dir` could not be written: disk full"):
        run_plot(runs, out)
    assert [p.name for p in out.iterdir()] == ["curves_accuracy.csv"]
    assert (out / "curves_accuracy.csv").read_text() == "old\n"
    monkeypatch.setattr(Figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(
        OSError("disk full")))
    with pytest.raises(ValueError, match="disk full"):
        run_plot(runs, tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # folders it created are removed again


# --------------------------------------------------------------------------- errors


def assert_nothing_written(root: Path, before: set[Path]) -> None:
    assert set(root.rglob("*")) == before


@pytest.mark.parametrize("case", ["missing", "no_metrics", "mixed_data", "out_is_file",
                                  "out_under_file"])
def test_errors_are_one_line_and_write_nothing(runs, tmp_path, case):
    out = tmp_path / "out"
    run_dirs = list(runs)
    if case == "missing":
        run_dirs.append(tmp_path / "runs" / "nope")
        pattern = r"`run_dirs` must be an existing directory, got '.*nope'\."
    elif case == "no_metrics":
        (runs[1] / "metrics.csv").unlink()
        pattern = r"must be complete run directories, got '.*fa-s1' \(no metrics.csv\)\."
    elif case == "mixed_data":
        run_dirs.append(write_run(tmp_path / "runs" / "cifar", method="fa", data="cifar10"))
        pattern = r"must all use one data set, got synthetic \(.*\); cifar10 \(cifar\)\."
    elif case == "out_is_file":
        out.write_text("x")
        pattern = r"`out_dir` must be a writable folder, got '.*out' \(an existing file\)\."
    else:
        out.write_text("x")
        out = out / "sub"
        pattern = r"`out_dir` must be a writable folder, got '.*sub' \('.*out' is a file\)\."
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=pattern) as info:
        run_plot(run_dirs, out)
    assert "\n" not in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_a_run_with_no_logged_epoch_is_refused_in_one_line(runs, tmp_path, capsys,
                                                            alignlab_main):
    """metrics.csv with its header and no rows (a run just started): refused like
    ``compare`` refuses it (exit 2, one line, nothing written), not an empty figure."""
    header = (runs[1] / "metrics.csv").read_text().splitlines()[0]
    (runs[1] / "metrics.csv").write_text(header + "\n")
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=r"`run_dirs` must be complete run directories, "
                                         r"got '.*fa-s1' \(metrics.csv has no rows\)\."):
        run_plot(runs, tmp_path / "out")
    assert alignlab_main(["plot", str(runs[1]), "--out", str(tmp_path / "out")]) == 2
    io = capsys.readouterr()
    assert io.out == "" and io.err.count("\n") == 1, io.err
    assert io.err.startswith("alignlab: error: `RUN_DIR` must be complete run directories")
    assert_nothing_written(tmp_path, before)


def shell_glob(folder: Path) -> list[str]:
    """``folder/*`` as the shell expands it (sorted, no hidden entries)."""
    import glob

    return sorted(glob.glob(str(folder / "*")))


def make_sweep_folder(root: Path) -> tuple[Path, list[Path]]:
    """The fixture runs in a sweep's folder, beside what a sweep and its reports leave
    there: runs.csv, summary.csv, plot/ and compare/ with files, .submitit/."""
    runs = make_runs(root)
    sweep = runs[0].parent
    (sweep / "runs.csv").write_text("run,status\n")
    (sweep / "summary.csv").write_text("config,n\n")
    for name in ("plot", "compare", ".submitit"):
        (sweep / name).mkdir()
        (sweep / name / "curves.csv").write_text("x\n")
    return sweep, runs


def test_a_sweep_folder_and_its_glob_plot_its_runs(tmp_path, capsys, alignlab_main):
    """``alignlab plot runs/sweep/*`` (runs.csv, plot/ and compare/ among the runs) and
    ``alignlab plot runs/sweep`` both plot the sweep's runs; the entries that are not runs
    are skipped with a one-line note."""
    sweep, runs = make_sweep_folder(tmp_path)
    not_runs = [sweep / "compare", sweep / "plot", sweep / "runs.csv", sweep / "summary.csv"]
    assert expand_run_dirs(shell_glob(sweep)) == (runs, not_runs)
    assert expand_run_dirs([sweep]) == (runs, [])  # .submitit/ is no run either
    assert alignlab_main(["plot", *shell_glob(sweep), "--out", str(sweep / "plot")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("alignlab: plot: skipped what is not a run directory: "
                      + ", ".join(map(str, not_runs))) and err[1].startswith("wrote "), err
    first = {p.name: p.read_bytes() for p in (sweep / "plot").glob("curves_*.csv")}
    assert len(first) == 3
    notes = []
    _, paths = run_plot([sweep], note=notes.append)  # the folder: default out beside the runs
    assert paths["png"].parent == sweep / "plot" and notes == []
    assert {p.name: p.read_bytes() for p in (sweep / "plot").glob("curves_*.csv")} == first
    # nothing that is a run: still an error, naming what was given
    with pytest.raises(ValueError, match=r"`run_dirs` must name at least one run directory "
                                         r"\(or a folder of runs\), got '.*runs.csv'\."):
        run_plot([sweep / "runs.csv"], tmp_path / "none")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_out_is_checked_before_reading_runs(tmp_path):
    # /proc refuses new entries even to root; the run folder does not even exist: the
    # output check comes first
    with pytest.raises(ValueError, match=r"`out_dir` must be a writable folder, got "
                                         r"'/proc/alignlab-plot' \(cannot create"):
        run_plot([tmp_path / "nope"], "/proc/alignlab-plot")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root may write into a read-only folder")
def test_read_only_out(runs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="`out_dir` must be a writable folder"):
            run_plot(runs, locked / "out")
    finally:
        locked.chmod(0o700)


def test_bad_metrics_columns_name_the_file(tmp_path):
    d = write_run(tmp_path / "r", method="fa")
    (d / "metrics.csv").write_text("epoch,train_loss\n0,2.3\n")
    with pytest.raises(ValueError, match=r"`run_dirs` must be complete run directories, got "
                                         r"'.*r' \(metrics.csv has no column test_acc\)\."):
        load_runs([d])


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def alignlab_main():
    """``alignlab.cli.main``, so exit statuses and flag names are the real ones."""
    from alignlab import cli as alignlab_cli

    return alignlab_cli.main


def test_cli_prints_the_final_table_and_writes(runs, tmp_path, capsys, alignlab_main):
    assert alignlab_main(["plot", *map(str, runs), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "final test accuracy, mean +/- SD over seeds"
    fa = next(ln for ln in lines if ln.lstrip().startswith("fa "))
    mean, sd = 100 * (0.5 + EPOCHS / 16), 100 * acc_sd_frac(0, EPOCHS)
    assert f"{mean:.2f} +/- {sd:.2f}" in fa and "3/3" in fa
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        OUTPUT_NAMES.values())


@pytest.mark.parametrize("case", ["missing_run", "out_is_file"])
def test_cli_errors_exit_2_with_one_line_naming_the_flag(runs, tmp_path, capsys, case,
                                                         alignlab_main):
    out = tmp_path / "o2"
    argv = ["plot", *map(str, runs)]
    if case == "missing_run":
        argv.append(str(tmp_path / "nope"))
        expected = "alignlab: error: `RUN_DIR` must be an existing directory, got '"
    else:
        out.write_text("x")
        expected = "alignlab: error: `--out` must be a writable folder, got '"
    before = set(tmp_path.rglob("*"))
    assert alignlab_main([*argv, "--out", str(out)]) == 2
    io = capsys.readouterr()
    assert io.out == "" and io.err.count("\n") == 1 and io.err.startswith(expected), io.err
    assert set(tmp_path.rglob("*")) == before


def test_registering_imports_no_matplotlib_pyplot():
    """``plot`` and ``compare`` are registered with the other reports; building their
    parsers imports neither matplotlib nor torch (every ``alignlab`` call builds them)."""
    import subprocess
    import sys

    code = ("import argparse, sys; from alignlab.reports import cli; "
            "p = argparse.ArgumentParser(); s = p.add_subparsers(); cli.register(s); "
            "assert {'plot', 'compare'} <= set(s.choices); "
            "print(sorted(m for m in ('matplotlib.pyplot', 'torch', 'alignlab.sim') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_large_depth_count_uses_sparse_ticks():
    cols = depth_colors(20)
    lum = np.array([luminance(c) for c in cols])
    assert np.all(np.diff(lum) < 0)  # monotone light -> dark over a ResNet-20's 20 layers
