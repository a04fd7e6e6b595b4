"""How far has a fixed random feedback aligned, over time? (issue 15, study 4)

    python analysis/compare_study/null_z.py runs/compare_study/sign/fa__* \\
        --out docs/compare_study/sign

For a layer whose feedback ``B`` is drawn once and never learned (FA), the reference is the
null "``W`` independent of ``B``": the angle between any fixed ``W`` and a sign-symmetric
``B`` has mean 90 deg and SD ``alignlab.theory.fa_null_angle(N)`` (``N`` the layer's
entries; about ``1/sqrt(N)`` rad, whatever ``W`` is). At every log point of ``layers.csv``
this script puts the measured angle in that null as a z-score, ``(angle - 90) / sd``: how
many null SDs FA has aligned ``W`` with its ``B`` (``alignlab compare``'s ``band_z`` is the
same at the checkpoint, from a Monte Carlo). Prints the angle and z per layer at the ends
of epochs 1, 2, 5, 10, 20 (and the last), and with ``--out`` draws z against epoch
(``null_z.png``).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from alignlab.nn import converted_layers
from alignlab.theory import fa_null_angle
from alignlab.train import initial_model
from alignlab.train.rundir import CONFIG_FILE, LAYERS_FILE, METRICS_FILE, read_run

EPOCHS = (1, 2, 5, 10, 20)


def run_z(run_dir: Path) -> dict[str, list[tuple[float, float, float]]]:
    """Per layer (name as layers.csv writes it): ``(epoch, angle, z)`` at every log point
    with a measured angle, epochs fractional inside an epoch."""
    rec = read_run(run_dir, (CONFIG_FILE, LAYERS_FILE, METRICS_FILE), name="runs")
    model = initial_model(rec.resolved_config(), "cpu")
    entries = {name: layer.weight.numel() for name, layer in converted_layers(model)}
    per_epoch = {int(r["epoch"]): int(r["step"]) for r in rec.metrics}
    out = defaultdict(list)
    for r in rec.layers:
        name, angle = str(r["layer"]), r["angle_deg"]
        if name not in entries or angle != angle:  # NaN: no feedback measured
            continue
        epoch, step = int(r["epoch"]), int(r["step"])
        start, end = per_epoch.get(epoch - 1, 0), per_epoch.get(epoch, step)
        frac = epoch if step >= end or end == start else epoch - 1 + (step - start) / (
            end - start)
        mean, sd = (float(v) for v in fa_null_angle(entries[name]))
        out[name].append((frac, angle, (angle - mean) / sd))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (FA)")
    parser.add_argument("--out", type=Path, help="folder for null_z.png")
    args = parser.parse_args(argv)
    try:
        runs = {p.name: run_z(p) for p in args.runs}
    except ValueError as exc:
        print(f"null_z: {exc}", file=sys.stderr)
        return 2
    print(f"{'run':<22} {'layer':<6} " + " ".join(f"{'ep ' + str(e):>15}" for e in EPOCHS)
          + f" {'last':>15}   (angle deg / z)")
    for run, layers in runs.items():
        for name, points in layers.items():
            ends = {round(t, 9): (a, z) for t, a, z in points if float(t).is_integer()}
            cells = [ends.get(e) for e in EPOCHS] + [points[-1][1:]]
            print(f"{run:<22} {name:<6} " + " ".join(
                f"{a:7.2f}/{z:7.1f}" if c else f"{'-':>15}" for c in cells
                for a, z in [c or (0.0, 0.0)]))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from alignlab._output import check_output_dir, write_atomic

        out = check_output_dir(args.out, name="out")
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        names = sorted({n for layers in runs.values() for n in layers}, key=int)
        for k, name in enumerate(names):
            for j, layers in enumerate(runs.values()):
                t, _, z = zip(*layers.get(name, [(0, 0, 0)]), strict=True)
                ax.plot(t, [-v for v in z], color=f"C{k}", lw=1,
                        label=f"layer {name}" if j == 0 else None)
        ax.set_yscale("symlog", linthresh=3)
        ax.axhspan(-3, 3, color="0.9", zorder=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("(90 - angle) / null SD")
        ax.set_title("FA: alignment of W with its fixed B against the independence null "
                     "(grey: |z| < 3)", loc="left", fontsize=9)
        ax.legend(frameon=False, fontsize=8)
        ax.grid(alpha=0.3)
        target = out / "null_z.png"
        write_atomic(target, lambda tmp: fig.savefig(tmp, format="png", dpi=150))
        plt.close(fig)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
