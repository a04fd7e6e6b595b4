"""Where a trained layer's alignment departs from theory: is ``W`` coupled to its feedback?
(issue 15, studies 1 and 2)

    python analysis/compare_study/coupling.py runs/compare_study/fixedpoint/*
    python analysis/compare_study/coupling.py runs/compare_study/kp/*

Every theory of ``alignlab compare`` for the PFA family and KP treats the trained ``W`` as
independent of the random feedback it started from. This script measures, at a run's
checkpoint, per layer with a feedback kernel ``F`` (its ``effective_feedback``):

* ``measured``: the angle between ``W`` and ``F`` (what ``layers.csv`` logs);
* ``learned vs F0``: the angle between what training added, ``W_t - W_0``, and the initial
  feedback ``F_0`` (``W_0`` and ``F_0`` rebuilt from the run's seeds by
  :func:`alignlab.train.build_run`): 90 deg where training ignored ``F_0``, below 90
  where ``W`` grew along it (feedback alignment's own mechanism);
* ``|W|~|F|``: the correlation of ``|W|`` and ``|F|`` over the layer's entries (about
  ``+/- 1/sqrt(N)`` where the magnitudes are independent, as the sign-concordant theories
  assume; positive where ``W`` grew where ``F`` is large: frSF's fixed magnitudes);
* ``lag z``: whether ``F`` lags behind a moving ``W`` (the weight mirror tracks ``W`` with
  a time constant of ``1/(lr wd)`` mirror steps): the part of ``F`` off ``W``,
  ``E = F - (<F, W>/|W|^2) W``, against the direction ``W`` was moving at the end, the
  optimiser's momentum buffer ``v`` (its part off ``W``), as ``cos(E, v) sqrt(N)``: about
  ``N(0, 1)`` without a lag, positive with one (``-`` without a momentum buffer); ``lag
  tan2``: the part of ``tan^2 angle(W, F)`` along ``v`` (a lower bound on the lag's share:
  the lag integrates earlier steps' directions too, which a checkpoint does not keep);
* ``rank``, ``rank0``: the effective rank of the trained ``W`` and of ``W_0``
  (:func:`effective_rank`), which sets how much ``angle(W, B^T B W)`` varies over ``B``;
* ``c fit``, ``residual``: Proposition 1 as a fact about the run, where ``F`` has ``W``'s
  shape: ``F - W = c (F_0 - W_0)`` (the least-squares ``c`` and the relative residual: about
  1e-5 for KP, where it holds; large for a fixed ``F``; ``-`` for PFA);
* for a PFA layer (a ``pfa_B`` buffer): ``own``, the angle between ``W`` and ``B^T B W``, the
  path ``R`` reaches at its Proposition 1 fixed point for *this* ``B`` and ``W``, and
  ``finite``, Proposition 3's finite-size expectation of that angle over ``B``
  (``path_alignment_angle_finite``). ``measured - own`` is what ``R_0``'s residual leaves;
  ``own - finite`` is this ``B`` and this ``W`` against the average (the conditional Monte
  Carlo of ``alignlab compare``, ``cond_*``, gives its spread over ``B`` for the trained
  ``W``); and ``eig w``, ``eig z``: why ``own`` departs from ``finite``. The angle between
  ``W`` and ``M W`` (``M = B^T B``) depends on ``W`` only through ``W W^T``'s diagonal in
  ``M``'s eigenbasis; ``eig w = tr(M W W^T) / (mean eig(M) |W|^2)`` weights ``M``'s
  eigenvalues by ``W``'s output-side energy: 1 on average where ``W``'s output directions
  are independent of ``B``'s, above 1 where ``W`` grew along ``M``'s large eigenvalues
  (a smaller angle). ``eig z`` is its z against that null (``haar_trace_moments``, exact
  for Gaussian ``B``), also for ``W_0`` (``eig z0``: about N(0, 1)).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from alignlab._linalg import angle_deg
from alignlab.nn import converted_layers
from alignlab.nn.functional import mid_contract, path_kernel
from alignlab.theory import ENTRY_MOMENTS, haar_trace_moments, path_alignment_angle_finite
from alignlab.train import load_trained, rebuild_run


def layer_rows(run_dir: Path) -> list[dict]:
    """One dict per layer with a feedback kernel, at the run's checkpoint."""
    run = rebuild_run(run_dir)  # the model as it started
    config = run.config
    start = {name: (layer.weight.detach().double().clone(), fb.double().clone())
             for name, layer in converted_layers(run.model)
             if (fb := layer.effective_feedback()) is not None}
    load_trained(run, run_dir)
    kurtosis = ENTRY_MOMENTS[config.method.options.get("b_init", "uniform")].kurtosis
    rows = []
    for name, layer in converted_layers(run.model):
        f = layer.effective_feedback()
        if f is None or name not in start:
            continue
        w, f = layer.weight.detach().double(), f.double()
        w0, f0 = start[name]
        row = {"run": run_dir.name, "layer": name, "measured": float(angle_deg(w, f)),
               "learned_vs_f0": float(angle_deg(w - w0, f0)),
               "mag_corr": float(torch.corrcoef(torch.stack([w.abs().ravel(),
                                                             f.abs().ravel()]))[0, 1]),
               **dict(zip(("lag_z", "lag_tan2"),
                          _lag(w, f, run.optimizer.state.get(layer.weight, {})), strict=True)),
               "eff_rank": effective_rank(w), "eff_rank0": effective_rank(w0),
               "c": math.nan, "residual": math.nan, "own": math.nan, "finite": math.nan,
               "eig_w": math.nan, "eig_z": math.nan, "eig_z0": math.nan}
        b = getattr(layer, "pfa_B", None)
        if b is not None:  # R^T -> B W (Prop. 1): the path B^T B W
            b = b.double()
            row["own"] = float(angle_deg(w, path_kernel(b, mid_contract(b, w))))
            row["finite"] = float(path_alignment_angle_finite(w.shape[0], b.shape[0],
                                                              kurtosis))
            m_eigs = torch.linalg.eigvalsh(b.T @ b)  # once for W and W_0
            (row["eig_w"], row["eig_z"]), (_, row["eig_z0"]) = (
                eigen_weighting(b, m_eigs, x) for x in (w, w0))
        elif tuple(f.shape) == tuple(w.shape):
            d, d0 = f - w, f0 - w0
            row["c"] = float((d * d0).sum() / (d0 * d0).sum())
            row["residual"] = float((d - row["c"] * d0).norm() / d.norm())
        rows.append(row)
    return rows


def effective_rank(w: torch.Tensor) -> float:
    """The participation ratio of ``W W^T``'s eigenvalues, ``(tr G)^2 / tr(G^2)`` with
    ``G = W W^T`` (``|W|_F^4 / |W W^T|_F^2``): ``k`` for ``k`` equal singular values, about
    ``n_out n_in / (n_out + n_in)`` for an iid ``W``. The fewer directions carry ``W``'s
    energy, the more ``angle(W, M W)`` varies over ``B`` for this ``W``."""
    w2 = w.reshape(w.shape[0], -1)
    return float(w2.square().sum() ** 2 / (w2 @ w2.T).square().sum())


def eigen_weighting(b: torch.Tensor, m_eigs: torch.Tensor,
                    w: torch.Tensor) -> tuple[float, float]:
    """``(eig w, eig z)`` of the module doc: ``M = B^T B``'s eigenvalues (``m_eigs``)
    weighted by ``W``'s output-side energy, ``tr(M W W^T) / (mean eig(M) |W|^2)``, and its z
    against ``W``'s output directions independent of ``M``'s eigenbasis
    (``haar_trace_moments``)."""
    w2 = w.reshape(w.shape[0], -1)
    gram = w2 @ w2.T
    mean, sd = haar_trace_moments(m_eigs.numpy(), torch.linalg.eigvalsh(gram).numpy())
    x = float((b @ w2).square().sum())  # tr(M W W^T) = |B W|^2; mean = mean eig(M) |W|^2
    return x / mean, (x - mean) / sd if sd > 0 else math.nan  # sd 0: W W^T = c I


def _lag(w: torch.Tensor, f: torch.Tensor, opt_state: dict) -> tuple[float, float]:
    """``(z, tan2)``: ``z = cos(E, v) sqrt(N)``, ``E`` and ``v`` (the momentum buffer) with
    their parts along ``W`` removed, and ``tan2 = <E, v/|v|>^2 / <F, W/|W|>^2``, the share of
    ``tan^2 angle(W, F)`` that lies along ``v``; NaN without a buffer or where ``F`` has
    another shape."""
    v = opt_state.get("momentum_buffer")
    if v is None or tuple(f.shape) != tuple(w.shape):
        return math.nan, math.nan
    v = v.detach().double()
    ww = (w * w).sum()
    along_w = (f * w).sum() / ww
    e, v = f - along_w * w, v - (v * w).sum() / ww * w
    proj = float((e * v).sum() / v.norm())
    return (proj / float(e.norm()) * math.sqrt(w.numel()),
            proj ** 2 / float(along_w ** 2 * ww))


def _cell(x: float, fmt: str) -> str:
    """``x`` formatted, or ``-`` right-aligned to the format's width where it is NaN."""
    return format(x, fmt) if math.isfinite(x) else "-".rjust(int(fmt.lstrip("+").split(".")[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    args = parser.parse_args(argv)
    print(f"{'run':<58} {'layer':<6} {'measured':>9} {'learned vs F0':>13} {'|W|~|F|':>8} "
          f"{'lag z':>6} {'lag tan2':>9} {'rank':>6} {'rank0':>6} {'c fit':>7} "
          f"{'residual':>9} {'own':>8} {'finite':>8} {'meas-own':>9} {'own-fin':>8} "
          f"{'eig w':>6} {'eig z':>6} {'eig z0':>6}")
    for run_dir in args.runs:
        try:
            rows = layer_rows(run_dir)
        except ValueError as exc:
            print(f"coupling: {exc}", file=sys.stderr)
            return 2
        for r in rows:
            print(f"{r['run']:<58} {r['layer']:<6} {r['measured']:9.3f} "
                  f"{r['learned_vs_f0']:13.2f} {_cell(r['mag_corr'], '8.3f')} "
                  f"{_cell(r['lag_z'], '6.1f')} {_cell(r['lag_tan2'], '9.2e')} "
                  f"{r['eff_rank']:6.1f} {r['eff_rank0']:6.1f} "
                  f"{_cell(r['c'], '7.4f')} "
                  f"{_cell(r['residual'], '9.1e')} {_cell(r['own'], '8.3f')} "
                  f"{_cell(r['finite'], '8.3f')} {_cell(r['measured'] - r['own'], '+9.3f')} "
                  f"{_cell(r['own'] - r['finite'], '+8.3f')} {_cell(r['eig_w'], '6.3f')} "
                  f"{_cell(r['eig_z'], '+6.1f')} {_cell(r['eig_z0'], '+6.1f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
