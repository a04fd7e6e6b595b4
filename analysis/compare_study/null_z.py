"""How far has a fixed random feedback aligned, over time? (issue 15, study 4)

    python analysis/compare_study/null_z.py docs/compare_study/sign/compare.csv \\
        --out docs/compare_study/sign

For a layer whose feedback ``B`` is drawn once and never learned (FA: theory
``independence null`` in ``alignlab compare``'s table), the reference is the null "``W``
independent of ``B``": the angle between any fixed ``W`` and a sign-symmetric ``B`` has mean
90 deg and SD ``alignlab.theory.fa_null_angle(N)`` (``N = n_out n_in`` the layer's entries;
about ``1/sqrt(N)`` rad, whatever ``W`` is). This script reads a ``compare.csv`` and puts
every measured angle of such a layer in that null as a z-score, ``(angle - 90) / sd``: how
many null SDs training has aligned ``W`` with its ``B`` (``band_z`` is the same at the
checkpoint, from a Monte Carlo). Prints angle and z per run and layer at the ends of epochs
1, 2, 5, 10, 20 (and the last), and with ``--out`` draws z against epoch (``null_z.png``
and ``.pdf``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

from alignlab.nn.theory import IndependenceNull
from alignlab.theory import fa_null_angle

EPOCHS = (1, 2, 5, 10, 20)


def null_z(compare_csv: Path) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    """Per (run, layer) of the independence-null layers with a measured angle:
    ``(epoch_frac, angle, z)`` at every log point, in the file's order."""
    if not Path(compare_csv).is_file():
        raise ValueError(f"`compare_csv` must be a compare.csv file, got {str(compare_csv)!r}.")
    with open(compare_csv, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["theory"] == IndependenceNull.theory]
    out = defaultdict(list)
    for r in rows:
        angle = float(r["measured_deg"])
        if math.isfinite(angle):  # NaN: the layer's feedback is not used
            mean, sd = (float(v) for v in fa_null_angle(int(r["n_out"]) * int(r["n_in"])))
            out[Path(r["run"]).name, r["layer"]].append(
                (float(r["epoch_frac"]), angle, (angle - mean) / sd))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("compare_csv", type=Path, help="an alignlab compare table")
    parser.add_argument("--out", type=Path, help="folder for null_z.png and null_z.pdf")
    args = parser.parse_args(argv)
    try:
        table = null_z(args.compare_csv)
    except ValueError as exc:
        print(f"null_z: {exc}", file=sys.stderr)
        return 2
    if not table:
        print(f"null_z: no layer of {str(args.compare_csv)!r} has FA's independence null",
              file=sys.stderr)
        return 2
    print(f"{'run':<22} {'layer':<6} " + " ".join(f"{'ep ' + str(e):>15}" for e in EPOCHS)
          + f" {'last':>15}   (angle deg / z)")
    for (run, layer), points in table.items():
        ends = {t: (a, z) for t, a, z in points if t.is_integer()}
        cells = [ends.get(float(e)) for e in EPOCHS] + [points[-1][1:]]
        print(f"{run:<22} {layer:<6} " + " ".join(
            f"{c[0]:7.2f}/{c[1]:7.1f}" if c else f"{'-':>15}" for c in cells))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from alignlab._output import check_output_dir
        from alignlab.reports._figure import write_figure_set

        out = check_output_dir(args.out, name="out")
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        layers = sorted({layer for _, layer in table}, key=int)
        for (_, layer), points in table.items():
            k = layers.index(layer)
            t, _, z = zip(*points, strict=True)
            ax.plot(t, [-v for v in z], color=f"C{k}", lw=1, label=f"layer {layer}")
        handles, labels = ax.get_legend_handles_labels()
        first = {lab: h for h, lab in zip(handles, labels, strict=True)}  # one per layer
        ax.legend(first.values(), first.keys(), frameon=False, fontsize=8)
        ax.set_yscale("symlog", linthresh=3)
        ax.axhspan(-3, 3, color="0.9", zorder=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("(90 - angle) / null SD")
        ax.set_title("FA: alignment of W with its fixed B against the independence null "
                     "(grey: |z| < 3)", loc="left", fontsize=9)
        ax.grid(alpha=0.3)
        written = write_figure_set(out, fig, {}, stem="null_z")
        print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
