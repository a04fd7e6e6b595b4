"""GAIT-prop against BP at equal penalty: the test-accuracy gap per epoch beside the update
angle and the orthogonality residual (issue 17).

    R=runs/gaitprop-long
    python analysis/gaitprop_gap.py --pair "full 0.1" $R/bp-full $R/gait-prop-full \\
        --pair "full 1.0" $R/bp-full-p1 $R/gait-prop-full-p1 --out docs/results/gaitprop-gap

Each ``--pair LABEL BP_RUN GAIT_RUN`` is a BP run and a GAIT-prop run of the same network,
penalty and data order. Per epoch (the end-of-epoch rows of ``metrics.csv`` and
``layers.csv``): GAIT-prop's test accuracy minus BP's (percentage points), GAIT-prop's
update angle to BP in its first layer (``layers.0``, the largest: errors pass through the
most inverses) and the mean orthogonality residual ``|W W^T - I|_F`` of its hidden layers.
Prints one markdown table; ``--out DIR`` also draws ``gap.png``: the gap against the epoch,
and the gap against layer 1's angle (does a smaller angle mean a smaller gap?), with
``gap.pdf`` and the table as ``gap.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
from pathlib import Path

from alignlab.train.rundir import CONFIG_FILE, LAYERS_FILE, METRICS_FILE, read_run


def _epoch_ends(rows, value) -> dict[int, float]:
    """``{epoch: value(row)}`` at each epoch's last step (epoch >= 1)."""
    last: dict[int, dict] = {}
    for r in rows:
        if r["epoch"] >= 1 and (r["epoch"] not in last or r["step"] > last[r["epoch"]]["step"]):
            last[r["epoch"]] = r
    return {e: value(r) for e, r in last.items()}


def pair_rows(bp_dir: Path, gait_dir: Path) -> list[dict]:
    """One dict per epoch both runs finished: ``epoch``, ``bp`` and ``gait`` test accuracy
    (%), ``gap`` (pp), ``angle1`` (deg) and ``residual`` (GAIT-prop's hidden layers)."""
    bp, gait = (read_run(d, (CONFIG_FILE, METRICS_FILE, LAYERS_FILE), name="runs", columns={
        METRICS_FILE: ("test_acc",), LAYERS_FILE: ("update_angle_deg", "ortho_residual")})
        for d in (bp_dir, gait_dir))
    acc_bp, acc_gait = (_epoch_ends(r.metrics, lambda x: 100 * x["test_acc"])
                        for r in (bp, gait))
    layers = [r for r in gait.layers if r["layer"] != f"layers.{_last_layer(gait)}"]
    angle1 = _epoch_ends([r for r in layers if r["layer"] == "layers.0"],
                         lambda x: x["update_angle_deg"])
    steps = {}
    for r in layers:
        steps.setdefault(r["epoch"], {}).setdefault(r["step"], []).append(r["ortho_residual"])
    residual = {e: statistics.fmean(by[max(by)]) for e, by in steps.items() if e >= 1}
    return [{"epoch": e, "bp": acc_bp[e], "gait": acc_gait[e], "gap": acc_gait[e] - acc_bp[e],
             "angle1": angle1.get(e, math.nan), "residual": residual.get(e, math.nan)}
            for e in sorted(set(acc_bp) & set(acc_gait))]


def _last_layer(run) -> int:
    return max(int(str(r["layer"]).split(".")[-1]) for r in run.layers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=3, action="append", required=True,
                        metavar=("LABEL", "BP_RUN", "GAIT_RUN"),
                        help="a label, a BP run and a GAIT-prop run at the same penalty")
    parser.add_argument("--out", type=Path, help="folder for gap.png, gap.pdf and gap.csv")
    args = parser.parse_args(argv)
    table = {}
    try:
        for label, bp_dir, gait_dir in args.pair:
            table[label] = pair_rows(Path(bp_dir), Path(gait_dir))
    except ValueError as exc:
        print(f"gaitprop_gap: {exc}", file=sys.stderr)
        return 2
    print("| pair | epoch | BP test % | GAIT-prop test % | gap (pp) | layer-1 angle (deg) "
          "| hidden `|W W^T - I|_F` |\n|---|---:|---:|---:|---:|---:|---:|")
    for label, rows in table.items():
        for r in rows:
            print(f"| {label} | {int(r['epoch'])} | {r['bp']:.2f} | {r['gait']:.2f} | "
                  f"{r['gap']:+.2f} | {r['angle1']:.2f} | {r['residual']:.3f} |")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        from alignlab._output import check_output_dir
        from alignlab.reports._figure import write_figure_set

        out = check_output_dir(args.out, name="out")
        fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        for k, (label, rows) in enumerate(table.items()):
            e, gap, angle = ([r[c] for r in rows] for c in ("epoch", "gap", "angle1"))
            ax0.plot(e, gap, "o-", color=f"C{k}", lw=1, ms=3, label=label)
            ax1.plot(angle, gap, "o-", color=f"C{k}", lw=1, ms=3, label=label)
        for ax in (ax0, ax1):
            ax.axhline(0, color="0.5", lw=0.8)
            ax.axhspan(-0.5, 0.5, color="0.92", zorder=0)
            ax.grid(alpha=0.3)
            ax.set_ylabel("GAIT-prop - BP, test accuracy (pp)")
        ax0.set_xlabel("epoch")
        ax0.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax0.legend(frameon=False, fontsize=8)
        ax1.set_xscale("log")
        ax1.set_xlabel("GAIT-prop's update angle to BP, layer 1 (deg, end of epoch)")
        ax0.set_title("the gap at equal penalty (grey: within 0.5 pp)", loc="left",
                      fontsize=9)
        ax1.set_title("the gap against the update's angle", loc="left", fontsize=9)
        def write_csv(path: Path) -> None:
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["pair", "epoch", "bp_test_pct", "gait_test_pct", "gap_pp",
                            "angle1_deg", "residual"])
                w.writerows([label, int(r["epoch"]), *(repr(r[k]) for k in (
                    "bp", "gait", "gap", "angle1", "residual"))]
                    for label, rows in table.items() for r in rows)

        written = write_figure_set(out, fig, {"gap.csv": write_csv}, stem="gap")
        print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
