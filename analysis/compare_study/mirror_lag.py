"""How much of the weight mirror's angle is its lag behind a moving ``W``? (issue 15, study 3)

    python analysis/compare_study/mirror_lag.py runs/compare_study/mirror/* --steps 1000

The mirror's noise floor (``weight_mirror_angle_given_w``) is the stationary angle between
``F`` and a *fixed* ``W``. During training ``W`` moves, and the mirror, a first-order filter
with time constant ``1/a`` mirror steps (``a = wm.lr * wm.weight_decay``), trails it. A
checkpoint keeps neither ``W``'s past nor the filter's, so this script continues a WM run
from its checkpoint (its model, optimiser state and settings; a fresh batch order) for
``--steps`` training steps, with the mirror step after each as in training, and runs beside
each layer's mirror its **noise-free twin**, the same recursion with the noise average
replaced by its expectation ``E[y xi^T] = s^2 W``:

    F~ <- (1 - a) F~ + lr s^2 W_t        (started at its fixed-W value lr s^2 W / a)

``F~`` is ``F`` without the sampling noise: the pure lag. Over the last ``--window`` steps
(after ``steps - window`` steps of burn-in, default ``10/a``), per layer:

* ``measured``: mean ``tan^2 angle(W, F)``, the mirror as it trains;
* ``lag``: mean ``tan^2 angle(W, F~)``, the lag alone;
* ``floor``: ``tan^2`` of the fixed-W theory's mean angle for the final ``W``;
* ``floor + lag``: the prediction for ``measured`` when the lag and the noise add in
  quadrature (independent and both perpendicular to ``W``);
* ``cross``: the measured mean of their cross term, ``2 <L, N> / <F, W^>^2`` with ``L`` and
  ``N`` the parts of ``F~`` and ``F - F~`` perpendicular to ``W``; ``floor + lag + cross``
  accounts for ``measured`` up to the noise's own fluctuation over the window and the
  twin's and ``F``'s different components along ``W``.

Angles in degrees are printed beside the ``tan^2`` values (``arctan sqrt``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from alignlab.data.tensors import batches
from alignlab.nn import converted_layers, mirror_step
from alignlab.theory import weight_mirror_angle_given_w
from alignlab.train import load_trained, rebuild_run
from alignlab.train.losses import get_loss


def _tan2_parts(w: torch.Tensor, f: torch.Tensor, f_lag: torch.Tensor) -> tuple[float, ...]:
    """``tan^2 angle(W, F)``, ``tan^2 angle(W, F~)`` and the cross term ``2 <L, N> /
    <F, W^>^2``, all in float64."""
    w_hat = w / w.norm()

    def off(x):  # the part of x perpendicular to W, and its component along W
        along = (x * w_hat).sum()
        return x - along * w_hat, along

    e, along = off(f)
    lag, lag_along = off(f_lag)
    return (float((e * e).sum() / along ** 2), float((lag * lag).sum() / lag_along ** 2),
            float(2 * (lag * (e - lag)).sum() / along ** 2))


def track(run, *, steps: int, window: int, seed: int = 0) -> list[dict]:
    """Continue ``run`` (a :class:`~alignlab.train.setup.Run` with its checkpoint loaded)
    for ``steps`` training steps, each followed by a mirror step, and return one row per
    mirror-trained layer: the means over the last ``window`` steps (see the module doc)."""
    cfg = run.config
    wm = cfg.wm
    a = wm.lr * wm.weight_decay
    gain = wm.lr * wm.noise_std ** 2
    layers = [(name, layer) for name, layer in converted_layers(run.model)
              if layer.method.mirror_trained]
    if not layers:
        return []
    twins = {name: layer.weight.detach().double() * (gain / a) for name, layer in layers}
    sums = {name: [0.0, 0.0, 0.0] for name, _ in layers}
    loss_fn = get_loss(cfg.train.loss)
    batch_gen = torch.Generator().manual_seed(seed)
    mirror_gen = torch.Generator().manual_seed(seed + 1)
    model, opt = run.model, run.optimizer
    model.train()
    done = 0
    while done < steps:
        for xb, yb in batches(run.train, cfg.train.batch_size, shuffle=True,
                              generator=batch_gen):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()
            mirror_step(model, lr=wm.lr, weight_decay=wm.weight_decay,
                        noise_std=wm.noise_std, n_samples=wm.n_samples, rng=mirror_gen)
            done += 1
            for name, layer in layers:
                w = layer.weight.detach().double()
                twins[name].mul_(1 - a).add_(w, alpha=gain)
                if done > steps - window:
                    parts = _tan2_parts(w, layer.feedback.detach().double(), twins[name])
                    sums[name] = [s + p for s, p in zip(sums[name], parts, strict=True)]
            if done == steps:
                break
    rows = []
    for name, layer in layers:
        measured, lag, cross = (s / window for s in sums[name])
        floor_deg = weight_mirror_angle_given_w(layer.weight.detach().double().numpy(),
                                                wm.n_samples, wm.lr, wm.weight_decay)[0]
        rows.append({"layer": name, "measured": measured, "lag": lag, "cross": cross,
                     "floor": math.tan(math.radians(floor_deg)) ** 2})
    return rows


def run_rows(run_dir: Path, *, steps: int | None, window: int | None,
             seed: int = 0) -> list[dict]:
    """:func:`track` on the WM run in ``run_dir`` from its checkpoint; ``steps`` defaults to
    ``20/a`` and ``window`` to ``steps / 2``."""
    run = load_trained(rebuild_run(run_dir), run_dir)
    config = run.config
    steps = steps or math.ceil(20 / (config.wm.lr * config.wm.weight_decay))
    window = window or steps // 2
    if not 0 < window <= steps:
        raise ValueError(f"--window must be in 1..{steps} (the steps), got {window}")
    rows = track(run, steps=steps, window=window, seed=seed)
    if not rows:
        raise ValueError(f"{run_dir}: no mirror-trained layer (a weight-mirror run?)")
    return [{"run": run_dir.name, **r} for r in rows]


def _deg(tan2: float) -> float:
    return math.degrees(math.atan(math.sqrt(max(tan2, 0.0))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="WM run directories")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps to continue (default 20/a)")
    parser.add_argument("--window", type=int, default=None,
                        help="the last steps averaged over (default half the steps)")
    parser.add_argument("--seed", type=int, default=0, help="batch order and mirror noise")
    args = parser.parse_args(argv)
    print(f"{'run':<40} {'layer':<6} {'measured':>9} {'floor':>9} {'lag':>9} {'cross':>9} "
          f"{'floor+lag':>9} | deg: {'measured':>8} {'floor':>6} {'floor+lag':>9} "
          f"{'+cross':>7}")
    for run_dir in args.runs:
        try:
            rows = run_rows(run_dir, steps=args.steps, window=args.window, seed=args.seed)
        except ValueError as exc:
            print(f"mirror_lag: {exc}", file=sys.stderr)
            return 2
        for r in rows:
            pred = r["floor"] + r["lag"]
            print(f"{r['run']:<40} {r['layer']:<6} {r['measured']:9.2e} {r['floor']:9.2e} "
                  f"{r['lag']:9.2e} {r['cross']:+9.1e} {pred:9.2e} | "
                  f"{_deg(r['measured']):8.3f} {_deg(r['floor']):6.3f} {_deg(pred):9.3f} "
                  f"{_deg(pred + r['cross']):7.3f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
