"""GAIT-prop's update against BP's before and after Adam's per-coordinate scaling (issue 17).

    python analysis/gaitprop_step_angle.py runs/gaitprop-long/gait-prop-full \\
        runs/gaitprop-long/gait-prop --batches 20

The logged ``update_angle_deg`` compares GAIT-prop's raw weight update with BP's. The
original trains with (uncorrected) Adam, which divides every coordinate by ``sqrt(v)``,
the running RMS of its gradient: where a coordinate's gradient is small, a small absolute
difference between the two rules becomes a large relative one. This script measures, at a
run's checkpoint (its weights and its optimiser's ``v``), on the run's first training
batches (the order the run sees them: no shuffling), per layer:

* ``raw``: the angle between GAIT-prop's update and BP's (``Trainer.diagnostics``' logged
  quantity, the penalty left out);
* ``grad``: the same for the gradients the optimiser receives (the penalty's gradient
  added to both);
* ``adam``: the angle between ``g / (sqrt(v) + eps)`` of the two rules (one batch's
  gradient through Adam's scaling with the checkpoint's ``v``: the direction each batch
  pushes the weights);

mean over the batches. Prints the table; nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from alignlab._linalg import angle_deg
from alignlab.gaitprop import Trainer, get_rule
from alignlab.gaitprop.penalty import penalty_grad
from alignlab.gaitprop.rules import layer_updates
from alignlab.train import load_trained, rebuild_run


def step_angles(run_dir: Path, batches: int) -> dict[str, list[float]]:
    """Per layer ``layers.<i>``: the mean ``(raw, grad, adam)`` angles over ``batches``."""
    run = rebuild_run(run_dir)
    config = run.config
    if not run.learns_by_targets:
        raise ValueError(f"`runs` must be runs of a layer-local rule (alignlab.gaitprop), "
                         f"got {str(run_dir)!r} (method {config.method.name!r}).")
    load_trained(run, run_dir)
    trainer = Trainer(run.model, run.optimizer, config.method.name, **config.method.options)
    model, opt, bp_rule = trainer.model, trainer.optimizer, get_rule("bp")
    eps = opt.param_groups[0]["eps"]
    size = config.train.batch_size
    out = {f"layers.{i}": [] for i in range(len(model.layers))}
    with torch.no_grad():
        for b in range(batches):
            x = run.train.x[b * size:(b + 1) * size]
            y = run.train.y[b * size:(b + 1) * size]
            acts = model.activities(x)
            target = model.output_target(acts.h[-1], y)
            ups = layer_updates(model, acts, trainer.rule.errors(model, acts, target))
            bps = layer_updates(model, acts, bp_rule.errors(model, acts, target))
            for i, (layer, up, bp) in enumerate(zip(model.layers, ups, bps, strict=True)):
                extra = penalty_grad(layer.weight, trainer.penalty, trainer.penalty_strength)
                g_rule, g_bp = up.weight.neg(), bp.weight.neg()
                if extra is not None:
                    g_rule, g_bp = g_rule + extra, g_bp + extra
                scale = opt.state[layer.weight]["exp_avg_sq"].sqrt().add(eps)
                out[f"layers.{i}"].append((float(angle_deg(bp.weight, up.weight)),
                                           float(angle_deg(g_bp, g_rule)),
                                           float(angle_deg(g_bp / scale, g_rule / scale))))
    return {k: [statistics.fmean(col) for col in zip(*v, strict=True)] for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="GAIT-prop run directories")
    parser.add_argument("--batches", type=int, default=20, help="training batches (20)")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches must be >= 1, got {args.batches}")
    print(f"{'run':<24} {'layer':<9} {'raw':>7} {'grad':>7} {'adam':>7}   (deg to BP, mean "
          f"over {args.batches} batches)")
    for run_dir in args.runs:
        try:
            table = step_angles(run_dir, args.batches)
        except ValueError as exc:
            print(f"gaitprop_step_angle: {exc}", file=sys.stderr)
            return 2
        for layer, (raw, grad, adam) in table.items():
            print(f"{run_dir.name:<24} {layer:<9} {raw:7.2f} {grad:7.2f} {adam:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
