"""Does every seed's trained PFA layer sit on Proposition 3's fixed point, and does the
spread shrink as the network widens? (issue 15, study 1)

    python analysis/compare_study/fixedpoint_width.py \\
        docs/compare_study/fixedpoint/compare.csv \\
        docs/compare_study/fixedpoint-wide/compare.csv \\
        docs/compare_study/fixedpoint-wider/compare.csv --out docs/compare_study/fixedpoint

Reads ``alignlab compare`` tables of PFA runs (the ``fixedpoint`` groups of ``run.py``: the
strong decay, ``c_40 = 0.0046``, at hidden widths 512, 1024, 2048) and takes each layer's
final row: the measured angle minus the finite-size fixed point
(``path_alignment_angle_finite``), with the conditional Monte Carlo's SD (the trained ``W``
kept, ``B`` redrawn: how much the angle of *this* ``W`` varies over ``B``) and its z.
Prints one line per (width, r, layer) with every seed, and whether each hidden layer is
within ``--tolerance`` (0.3 deg, the issue's criterion) of the fixed point; with ``--out``
draws the offsets against the width, the conditional SD as error bars
(``fixedpoint_width.png`` and ``.pdf``).

A trained hidden layer's ``W`` carries its energy in about 10 directions (``coupling.py``'s
``rank``), at every width: the angle between ``W`` and ``B^T B W`` then averages ``B``'s
spectrum over about ``n_out x rank`` numbers, so its spread over ``B`` falls like
``1/sqrt(n_out)``, where an iid ``W``'s (``rank`` about ``n_out/2``) falls like ``1/n_out``.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

SEED = re.compile(r"train\.seed=(\d+)")


def final_offsets(compare_csv: Path) -> dict[tuple[int, float, int, bool], dict[str, tuple]]:
    """``{(hidden width, r, layer, is classifier): {seed: (offset, cond SD, cond z)}}`` from
    the final rows of ``compare_csv`` with a fixed point and a conditional Monte Carlo
    (Propositions 1-3's layers); the width is the first
    layer's ``n_out``, the classifier the run's deepest layer, the seed read from the run
    folder's name (the sweep's ``train.seed=N``; the whole name where it has none)."""
    if not Path(compare_csv).is_file():
        raise ValueError(f"`compare_csv` must be a compare.csv file, got {str(compare_csv)!r}.")
    with open(compare_csv, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["final"] == "True" and all(
            math.isfinite(float(r[k])) for k in ("fixed_point_deg", "cond_sd_deg"))]
    by_run = defaultdict(list)
    for r in rows:
        by_run[r["run"]].append(r)
    out = defaultdict(dict)
    for run, layers in by_run.items():
        first = min(layers, key=lambda r: int(r["depth"]))
        last = max(int(r["depth"]) for r in layers)
        seed = (m.group(1) if (m := SEED.search(Path(run).name)) else Path(run).name)
        for r in layers:
            key = (int(first["n_out"]), float(r["expansion_ratio"]), int(r["layer"]),
                   int(r["depth"]) == last)
            out[key][seed] = (float(r["measured_deg"]) - float(r["fixed_point_deg"]),
                              float(r["cond_sd_deg"]), float(r["cond_z"]))
    return dict(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("compare_csv", type=Path, nargs="+", help="alignlab compare tables")
    parser.add_argument("--tolerance", type=float, default=0.3,
                        help="a hidden layer's allowed |measured - fixed point| (deg; 0.3)")
    parser.add_argument("--out", type=Path, help="folder for fixedpoint_width.{png,pdf}")
    args = parser.parse_args(argv)
    table: dict = {}
    try:
        for path in args.compare_csv:
            table.update(final_offsets(path))
    except ValueError as exc:
        print(f"fixedpoint_width: {exc}", file=sys.stderr)
        return 2
    if not table:
        print("fixedpoint_width: no layer with a fixed point in the tables", file=sys.stderr)
        return 2
    print(f"{'width':>5} {'r':>4} {'layer':>5}  {'measured - fixed point (deg), per seed':<40}"
          f" {'cond SD':>13} {'cond z':>18}  within {args.tolerance:g}")
    hidden_ok = hidden_all = 0
    for (width, r, layer, classifier), seeds in sorted(table.items()):
        cells = [seeds[s] for s in sorted(seeds)]
        ok = sum(abs(c[0]) <= args.tolerance for c in cells)
        if not classifier:
            hidden_ok, hidden_all = hidden_ok + ok, hidden_all + len(cells)
        sds = [c[1] for c in cells]
        print(f"{width:5d} {r:4g} {layer:5d}  "
              f"{' '.join(f'{c[0]:+7.3f}' for c in cells):<40} "
              f"{min(sds):6.3f}-{max(sds):.3f} "
              f"{' '.join(f'{c[2]:+5.1f}' for c in cells):>18}  "
              f"{'(classifier)' if classifier else f'{ok}/{len(cells)}'}")
    print(f"hidden layers within {args.tolerance:g} deg: {hidden_ok} of {hidden_all}")
    if args.out:
        _figure(table, args.tolerance, args.out)
    return 0


def _figure(table: dict, tolerance: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alignlab._output import check_output_dir
    from alignlab.reports._figure import write_figure_set

    out = check_output_dir(out, name="out")
    ratios = sorted({r for _, r, _, _ in table}, reverse=True)
    fig, axes = plt.subplots(1, len(ratios), figsize=(4 * len(ratios), 3.6), sharey=True,
                             layout="constrained", squeeze=False)
    for ax, r in zip(axes[0], ratios, strict=True):
        hidden = sorted((k, v) for k, v in table.items() if k[1] == r and not k[3])
        layers = sorted({k[2] for k, _ in hidden})
        for (width, _, layer, _), seeds in hidden:
            k = layers.index(layer)
            for j, s in enumerate(sorted(seeds)):
                offset, sd, _ = seeds[s]
                x = width * 2 ** (0.06 * (3 * k + j - 3))  # side by side at each width
                ax.errorbar(x, offset, yerr=sd, fmt="o", ms=4, color=f"C{k}", lw=1,
                            label=f"layer {layer}" if (width, j) == (hidden[0][0][0], 0)
                            else None)
        ax.axhspan(-tolerance, tolerance, color="0.9", zorder=0)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({k[0] for k, _ in hidden}), [str(w) for w in
                                                          sorted({k[0] for k, _ in hidden})])
        ax.minorticks_off()
        ax.set_xlabel("hidden width")
        ax.set_title(f"r = {r:g}", loc="left", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("measured - finite-size fixed point (deg)")
    axes[0][0].legend(frameon=False, fontsize=8)
    fig.suptitle("PFA hidden layers at the end (c = 0.0046), 3 seeds; bars: SD over B for the "
                 f"trained W; grey: +/- {tolerance:g} deg", fontsize=9)
    written = write_figure_set(out, fig, {}, stem="fixedpoint_width")
    print("wrote " + ", ".join(str(p) for p in written.values()))


if __name__ == "__main__":
    sys.exit(main())
