"""GAIT-prop against BP: the orthogonality mismatch and the gamma trade-off (two figures).

    python analysis/gaitprop_figures.py              # -> figures/gaitprop_{mismatch,gamma}.*
    python analysis/gaitprop_figures.py --smoke --out /tmp/gp   # tiny sizes (CI), seconds

Both use the original geometry (``SquareInvNet(784, 4)``: 5 square weight layers of 784
units, leaky-ReLU 0.1 everywhere, Haar-orthogonal weights, float64) on the first
``batches x 60`` Fashion-MNIST training images (pixels / 255, as the original; synthetic
uniform [0, 1) inputs with random labels when the files are not on this machine, and at the
smoke size: the CSV's ``data`` column says which), and compare every layer's GAIT-prop
weight update with BP's on the same batch and weights (``alignlab.gaitprop.updates``),
taking the median over the batches.

**gaitprop_mismatch**: every weight is perturbed, ``W = Q + s G / sqrt(n)`` (``G`` iid
normal, fixed), over a range of ``s``; x = ``|W W^T - I|_F`` (mean over layers), y = the
angle to BP per layer at ``gamma = 1e-2`` (markers; GAIT-prop in its default difference
form), with the first-order prediction derived from ``W^{-1} - W^T = W^T[(W W^T)^{-1} -
I]`` (``first_order_angles``, lines) and the rough isotropic estimate ``|R|_F sqrt((L - l)
/ n)`` (dotted). Dashed horizontals: each layer's rounding floor at ``s = 0``, where it is
within the axes (the literal form's was; the difference form's, ~1e-12 deg, is not). Right
panel: measured / predicted.
Claims checked: log-log slope 1 +- 0.05 for every layer below the top (points where no
nudge crossed a kink, above 10x the floor and with ``|R|_F <= 0.5``), measured within
``3 |R|_F + 5%`` of the prediction there, top layer exactly 0, Gaussian weights > 45 deg
below the top. Points where a nudge crossed the kink are drawn as crosses.

**gaitprop_gamma**: unperturbed Haar weights; x = gamma (0.5 down to 1e-8), y = the angle
to BP per layer (BP computed in the same dtype), GAIT-prop in its literal form (top:
targets formed, then subtracted, ``form='targets'``) and its difference form (bottom, the
default), computed in float64 (left) and float32 (right). The literal form's rounding grows
as ``u gamma^-(L-l)`` (``u`` = unit roundoff: each target difference is ``gamma^(L-l)``
times smaller than the activities it is computed from, then multiplied back); the
difference form has no such term. Large gamma lets nudges cross the leaky-ReLU kink
(``kink_crossings``; grey band), where both forms compute the same (exact) algorithm.
Dashed: ``A_l u gamma^-(L-l)`` with ``A_l`` fitted to the literal form's float64 rounding
regime, the same ``A_l`` with float32's ``u`` on the right (a prediction); dotted (float32):
float32 BP's own angle to float64 BP. Claims checked: literal float64 slopes ``-(L-l)`` +-
0.3 in the rounding regime; literal float32 within 10x of the line predicted from float64;
the literal form's best gamma (smallest worst-layer angle) lies inside the grid, both ends
at least 10x worse; the difference form within 1e-6 deg of BP in float64 and 0.01 deg in
float32 at every gamma where no kink is crossed, with the same angles at all of them
(gamma cancels exactly); where kinks are crossed (gamma >= 0.05) the two forms' float64
angles agree to 1e-6 relative. The original's ``gamma = 1e-3`` is marked.

Exit status 0 when every claim holds, 3 when one fails (the files are written either way).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from alignlab import Records
from alignlab._linalg import angle_deg
from alignlab.gaitprop import (
    FORMS,
    GaitProp,
    first_order_angles,
    orthogonality_residual,
    updates,
)
from alignlab.gaitprop.rules import layer_updates
from alignlab.models.invertible import InvertibleNet
from alignlab.theory import isotropic_angle

ROOT = Path(__file__).resolve().parents[1]
U64, U32 = (float(torch.finfo(d).eps) / 2 for d in (torch.float64, torch.float32))
#: the difference form's claims where no kink is crossed: within these of BP (degrees)
DIFFERENCE_BOUND_64, DIFFERENCE_BOUND_32 = 1e-6, 0.01


@dataclass(frozen=True)
class Config:
    width: int = 784  # the original: 784 units
    layers: int = 5  # weight layers (4 hidden + the square output layer)
    batch: int = 60  # the original's batch
    batches: int = 1  # median over this many batches (1: the first 60 images)
    seed: int = 0  # network and perturbation draws
    mismatch_gamma: float = 1e-2  # nudge of the mismatch figure (the default, difference form)
    scales: tuple = tuple(np.logspace(-5, -0.5, 13))  # perturbation sizes s
    # gamma grid of the trade-off figure (with the original 1e-3 and 1e-2 themselves)
    gammas: tuple = tuple(sorted({*np.logspace(np.log10(0.5), -8, 36), 1e-2, 1e-3, 1e-6},
                                 reverse=True))
    original_gamma: float = 1e-3
    data: str = "fashion-mnist"  # or "synthetic" (uniform [0, 1) inputs, random labels)


SMOKE = Config(width=96, layers=4, batch=16, batches=1, scales=tuple(np.logspace(-4, -1, 5)),
               gammas=tuple(sorted({*np.logspace(-0.3, -6, 12), 1e-3, 1e-6}, reverse=True)),
               data="synthetic")


def load_batches(cfg: Config) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str]:
    """``cfg.batches`` batches of ``cfg.batch``: Fashion-MNIST (first pixels / 255 when the
    width is below 784) or synthetic uniform inputs."""
    n = cfg.batch * cfg.batches
    try:
        if cfg.data != "fashion-mnist" or cfg.width != 784:
            raise ValueError(f"data = {cfg.data!r}, width {cfg.width}")
        from alignlab.data import DATASETS

        src = DATASETS["fashion-mnist"]
        raw = src.read(root=None, download=False, seed=0, options=src.check_options({}))
        x = raw.x_train[:n].flatten(1).double() / 255
        y = raw.y_train[:n]
        source = "fashion-mnist"
    except (OSError, ValueError) as exc:  # no data files here: the figure runs, and says so
        print(f"note: synthetic inputs ({exc})", file=sys.stderr)
        g = torch.Generator().manual_seed(cfg.seed + 1)
        x = torch.rand(n, cfg.width, dtype=torch.float64, generator=g)
        y = torch.randint(0, 10, (n,), generator=g)
        source = "synthetic"
    parts = [(x[i * cfg.batch:(i + 1) * cfg.batch], y[i * cfg.batch:(i + 1) * cfg.batch])
             for i in range(cfg.batches)]
    return parts, source


def _net(cfg: Config, init: str = "haar") -> InvertibleNet:
    return InvertibleNet((cfg.width,) * (cfg.layers + 1), init=init, rng=cfg.seed)


def _angles(model, x, y, gamma, reference=None, form: str = "difference"
            ) -> tuple[list[float], int]:
    """Per-layer angle between GAIT-prop's (in ``form``) and BP's (or ``reference``'s)
    weight updates, and how many units' nudges crossed the kink (one pass: the rule's own
    count, as ``kink_crossings``)."""
    bp = reference if reference is not None else updates(model, x, y, "bp")
    acts = model.activities(x)
    crossed: list[torch.Tensor] = []
    rule = GaitProp(gamma, form=form)
    errors = rule.errors(model, acts, model.output_target(acts.h[-1], y), crossed)
    ga = layer_updates(model, acts, errors)
    kinks = sum(int(mask.sum()) for mask in crossed)
    return [angle_deg(b.weight.double(), a.weight.double())
            for a, b in zip(ga, bp, strict=True)], kinks


# ---------------------------------------------------------------------------------------
# the mismatch figure


def mismatch_records(cfg: Config, data) -> Records:
    parts, source = data
    m = _net(cfg)
    base = [layer.weight.detach().clone() for layer in m.layers]
    g = torch.Generator().manual_seed(cfg.seed + 100)
    noise = [torch.randn(w.shape, dtype=w.dtype, generator=g) / cfg.width**0.5 for w in base]
    rows = []
    for s in (0.0,) + tuple(cfg.scales):
        with torch.no_grad():
            for layer, q, e in zip(m.layers, base, noise, strict=True):
                layer.weight.copy_(q + s * e)
        resid = [float(orthogonality_residual(layer.weight)) for layer in m.layers]
        got = [_angles(m, x, y, cfg.mismatch_gamma) for x, y in parts]
        meas = np.median([a for a, _ in got], axis=0)
        kinks = sum(k for _, k in got)
        pred = np.median([first_order_angles(m, x, y) for x, y in parts], axis=0)
        r = float(np.mean(resid))
        iso = isotropic_angle(r, cfg.width, cfg.layers - 1 - np.arange(cfg.layers))
        for i in range(cfg.layers):
            rows.append({"init": "haar", "scale": float(s), "layer": i + 1,
                         "residual": resid[i], "residual_mean": r,
                         "angle_deg": float(meas[i]), "first_order_deg": float(pred[i]),
                         "isotropic_deg": float(iso[i]), "kink_units": kinks,
                         "gamma": cfg.mismatch_gamma, "width": cfg.width, "data": source})
    gauss = _net(cfg, "gaussian")
    meas = np.median([_angles(gauss, x, y, cfg.mismatch_gamma)[0] for x, y in parts], axis=0)
    resid = [float(orthogonality_residual(layer.weight)) for layer in gauss.layers]
    for i in range(cfg.layers):
        rows.append({"init": "gaussian", "scale": float("nan"), "layer": i + 1,
                     "residual": resid[i], "residual_mean": float(np.mean(resid)),
                     "angle_deg": float(meas[i]), "first_order_deg": float("nan"),
                     "isotropic_deg": float("nan"), "kink_units": -1,
                     "gamma": cfg.mismatch_gamma, "width": cfg.width, "data": source})
    return Records(rows)


def check_mismatch(rec: Records, cfg: Config) -> list[str]:
    """The figure's claims; returns the failures (empty: all hold)."""
    fails = []
    haar = [r for r in rec if r["init"] == "haar"]
    floor = {r["layer"]: r["angle_deg"] for r in haar if r["scale"] == 0}
    for r in haar:
        if r["layer"] == cfg.layers and r["angle_deg"] != 0:
            fails.append(f"top layer off BP by {r['angle_deg']:.3g} deg at s = {r['scale']:.3g}")
    for layer in range(1, cfg.layers):
        pts = [r for r in haar if r["layer"] == layer and r["scale"] > 0 and not r["kink_units"]
               and r["angle_deg"] > 10 * floor[layer] and r["residual_mean"] <= 0.5]
        if len(pts) < 3:
            fails.append(f"layer {layer}: only {len(pts)} points above the rounding floor")
            continue
        x = np.log([r["residual_mean"] for r in pts])
        slope = np.polyfit(x, np.log([r["angle_deg"] for r in pts]), 1)[0]
        if abs(slope - 1) > 0.05:
            fails.append(f"layer {layer}: log-log slope {slope:.3f}, not 1 +- 0.05")
        for r in pts:
            tol = 3 * r["residual_mean"] + 0.05
            if abs(r["angle_deg"] / r["first_order_deg"] - 1) > tol:
                fails.append(f"layer {layer}: measured {r['angle_deg']:.3g} deg vs first order "
                             f"{r['first_order_deg']:.3g} at |R| = {r['residual_mean']:.3g}")
    gauss = [r["angle_deg"] for r in rec if r["init"] == "gaussian" and r["layer"] < cfg.layers]
    if min(gauss) <= 45:
        fails.append(f"Gaussian weights: min angle {min(gauss):.3g} deg, not > 45")
    return fails


def plot_mismatch(rec: Records, cfg: Config):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    cmap = plt.get_cmap("viridis")
    haar = [r for r in rec if r["init"] == "haar"]
    lo = min(r["residual_mean"] for r in haar if r["scale"] > 0)
    hi = max(r["residual_mean"] for r in haar)
    ymin = min(r["first_order_deg"] for r in haar if r["scale"] > 0 and r["layer"] < cfg.layers)
    handles = []
    floors_drawn = False
    for layer in range(1, cfg.layers):
        c = cmap((layer - 1) / max(cfg.layers - 2, 1) * 0.85)
        pts = sorted((r for r in haar if r["layer"] == layer and r["scale"] > 0),
                     key=lambda r: r["residual_mean"])
        x = np.array([r["residual_mean"] for r in pts])
        clean = [r for r in pts if not r["kink_units"]]
        kinked = [r for r in pts if r["kink_units"]]
        ax.plot(x, [r["first_order_deg"] for r in pts], "-", color=c, lw=1.6)
        ax.plot(x, [r["isotropic_deg"] for r in pts], ":", color=c, lw=1.2)
        ax.plot([r["residual_mean"] for r in clean], [r["angle_deg"] for r in clean], "o",
                color=c, ms=5, mfc="white", mew=1.4)
        ax.plot([r["residual_mean"] for r in kinked], [r["angle_deg"] for r in kinked], "x",
                color=c, ms=7, mew=1.6)
        floor = next(r["angle_deg"] for r in haar if r["layer"] == layer and r["scale"] == 0)
        if floor > ymin / 3:
            ax.axhline(floor, color=c, ls="--", lw=0.8, alpha=0.7)
            floors_drawn = True
        bx.semilogx([r["residual_mean"] for r in clean],
                    [r["angle_deg"] / r["first_order_deg"] for r in clean], "o-", color=c,
                    ms=4, lw=1)
        handles.append(Line2D([], [], color=c, lw=2, label=f"layer {layer}"))
    gauss = [r["angle_deg"] for r in rec if r["init"] == "gaussian" and r["layer"] < cfg.layers]
    ax.axhspan(min(gauss), max(gauss), color="0.85", zorder=0)
    ax.text(lo, min(gauss) / 2.2, " Gaussian weights (all layers below the top)", va="center",
            fontsize=7.5, color="0.35")
    k = "0.3"
    handles += [Line2D([], [], color=k, lw=1.6, label="first order (prediction)"),
                Line2D([], [], color=k, ls="", marker="o", mfc="white", label="GAIT-prop"),
                Line2D([], [], color=k, ls="", marker="x", mew=1.6,
                       label="GAIT-prop, a nudge crossed the kink"),
                Line2D([], [], color=k, ls=":", label=r"isotropic $|R|_F\sqrt{(L-l)/n}$")]
    if floors_drawn:
        handles.append(Line2D([], [], color=k, ls="--", lw=0.8, label="rounding floor (Haar)"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
    ax.set(xscale="log", yscale="log", xlabel=r"orthogonality residual $|WW^T - I|_F$ "
           "(mean over layers)", ylabel="angle to BP's update (deg)",
           xlim=(lo / 1.5, hi * 1.5), ylim=(ymin / 3, 300))
    ax.set_title(f"(a) GAIT-prop vs BP: n = {cfg.width}, {cfg.layers} layers, gamma = "
                 f"{cfg.mismatch_gamma:g}, W = Q + sG/sqrt(n)\nlayer {cfg.layers} (output): "
                 "0 exactly, every rule", fontsize=9)
    bx.axhline(1, color="0.5", lw=0.8)
    bx.set(xlabel=r"$|WW^T - I|_F$", ylabel="measured / first-order prediction")
    bx.set_title("(b) first order is exact as the residual -> 0\n(right: second order)",
                 fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------
# the gamma figure


def gamma_records(cfg: Config, data) -> Records:
    """Per (form, dtype, gamma, layer): GAIT-prop's angle to BP computed in the same dtype
    (median over the batches), the crossing units, and (``bp_vs_float64_deg``) that BP's own
    angle to float64 BP."""
    parts, source = data
    nets = {"float64": _net(cfg), "float32": _net(cfg).to(torch.float32)}
    inputs = {"float64": parts, "float32": [(x.float(), y) for x, y in parts]}
    refs = {k: [updates(nets[k], x, y, "bp") for x, y in inputs[k]] for k in nets}
    bp_drift = np.median([[angle_deg(b64.weight, b32.weight.double()) for b64, b32 in
                           zip(r64, r32, strict=True)] for r64, r32 in
                          zip(refs["float64"], refs["float32"], strict=True)], axis=0)
    rows = []
    for form in FORMS:
        for dtype, m in nets.items():
            for gamma in cfg.gammas:
                got = [_angles(m, x, y, gamma, ref, form) for (x, y), ref in
                       zip(inputs[dtype], refs[dtype], strict=True)]
                ang = np.median([a for a, _ in got], axis=0)
                kinks = int(sum(k for _, k in got))
                for i in range(cfg.layers):
                    rows.append({"form": form, "dtype": dtype, "gamma": float(gamma),
                                 "layer": i + 1,
                                 "amplification": float(gamma) ** -(cfg.layers - 1 - i),
                                 "angle_deg": float(ang[i]), "kink_units": kinks,
                                 "bp_vs_float64_deg": (0.0 if dtype == "float64"
                                                       else float(bp_drift[i])),
                                 "width": cfg.width, "data": source})
    return Records(rows)


def _literal(rec, dtype: str | None = None) -> list[dict]:
    return [r for r in rec if r["form"] == "targets" and (dtype is None or r["dtype"] == dtype)]


def _rounding_regime(rows, cfg: Config, layer: int):
    """The literal form's float64 points of ``layer`` dominated by rounding: no kink
    crossed, gamma below the layer's best, angle between 1e-9 deg (well above angle_deg's
    own resolution) and 10 deg (before the angle saturates)."""
    pts = [r for r in _literal(rows, "float64") if r["layer"] == layer]
    best = min(pts, key=lambda r: r["angle_deg"])["gamma"]
    return [r for r in pts if r["gamma"] <= best and r["kink_units"] == 0
            and 1e-9 < r["angle_deg"] < 10]


def best_gamma(rec: Records, cfg: Config) -> tuple[float, float]:
    """The gamma whose worst float64 layer is closest to BP in the literal form, and that
    worst angle."""
    worst: dict[float, float] = {}
    for r in _literal(rec, "float64"):
        worst[r["gamma"]] = max(worst.get(r["gamma"], 0.0), r["angle_deg"])
    g = min(worst, key=worst.get)
    return g, worst[g]


def rounding_constants(rec: Records, cfg: Config) -> dict[int, float]:
    """``A_l`` in ``angle_l (rad) = A_l u gamma^-(L-l)``, from the literal form in float64
    (geometric mean)."""
    out = {}
    for layer in range(1, cfg.layers):
        pts = _rounding_regime(rec, cfg, layer)
        if pts:
            out[layer] = float(np.exp(np.mean([np.log(np.radians(r["angle_deg"]) /
                                                      (U64 * r["amplification"]))
                                               for r in pts])))
    return out


def difference_summary(rec: Records, cfg: Config) -> dict[str, float]:
    """The difference form's worst layer over the gammas where no kink is crossed, per
    dtype, and the spread of its angles over those gammas (0: gamma cancels exactly)."""
    out = {}
    for dtype in ("float64", "float32"):
        pts = [r for r in rec if r["form"] == "difference" and r["dtype"] == dtype
               and not r["kink_units"]]
        out[f"{dtype}_worst_deg"] = max(r["angle_deg"] for r in pts) if pts else float("nan")
        spread = [np.ptp([r["angle_deg"] for r in pts if r["layer"] == layer])
                  for layer in range(1, cfg.layers + 1)] if pts else [float("nan")]
        out[f"{dtype}_spread_deg"] = float(max(spread))
        out[f"{dtype}_clean_gammas"] = len({r["gamma"] for r in pts})
    return out


def check_gamma(rec: Records, cfg: Config) -> list[str]:
    fails = []
    consts = rounding_constants(rec, cfg)
    for layer in range(1, cfg.layers):
        pts = _rounding_regime(rec, cfg, layer)
        if len(pts) < 3:
            fails.append(f"layer {layer}: only {len(pts)} literal float64 points in the "
                         "rounding regime")
            continue
        slope = np.polyfit(np.log([r["gamma"] for r in pts]),
                           np.log([r["angle_deg"] for r in pts]), 1)[0]
        k = cfg.layers - layer
        if abs(slope + k) > 0.3:
            fails.append(f"layer {layer}: literal float64 slope {slope:.2f}, not -{k} +- 0.3")
        for r in _literal(rec, "float32"):
            if r["layer"] != layer or r["kink_units"]:
                continue
            pred = np.degrees(consts[layer] * U32 * r["amplification"])
            if pred < 10 and r["angle_deg"] > 1e-4 and not pred / 10 < r["angle_deg"] < 10 * pred:
                fails.append(f"layer {layer}, gamma {r['gamma']:.3g}: literal float32 "
                             f"{r['angle_deg']:.3g} deg vs predicted {pred:.3g}")
    g, worst = best_gamma(rec, cfg)
    lit64 = _literal(rec, "float64")
    ends = [max(r["angle_deg"] for r in lit64 if r["gamma"] == e)
            for e in (max(cfg.gammas), min(cfg.gammas))]
    if not (min(cfg.gammas) < g < max(cfg.gammas) and min(ends) > 10 * worst):
        fails.append(f"no interior optimum (literal form): best gamma {g:.3g} (worst layer "
                     f"{worst:.3g} deg), ends {ends[0]:.3g} / {ends[1]:.3g} deg")
    # the difference form: BP's update wherever no kink is crossed, at every gamma alike
    summary = difference_summary(rec, cfg)
    for dtype, bound in (("float64", DIFFERENCE_BOUND_64), ("float32", DIFFERENCE_BOUND_32)):
        if summary[f"{dtype}_clean_gammas"] < 3:
            fails.append(f"difference form, {dtype}: only {summary[f'{dtype}_clean_gammas']} "
                         "gammas without a kink crossing")
        if not summary[f"{dtype}_worst_deg"] < bound:
            fails.append(f"difference form, {dtype}: worst layer "
                         f"{summary[f'{dtype}_worst_deg']:.3g} deg, not < {bound:g}")
        if summary[f"{dtype}_spread_deg"] != 0:
            fails.append(f"difference form, {dtype}: angles vary by "
                         f"{summary[f'{dtype}_spread_deg']:.3g} deg over the gammas without "
                         "a crossing (gamma should cancel exactly)")
    # where nudges cross, both forms are the same algorithm: they agree in float64 where the
    # literal form's rounding is negligible (gamma >= 0.05: below 1e-9 deg)
    crossed = [r for r in rec if r["dtype"] == "float64" and r["kink_units"]
               and r["gamma"] >= 0.05 and r["layer"] < cfg.layers]
    by = {(r["form"], r["gamma"], r["layer"]): r["angle_deg"] for r in rec
          if r["dtype"] == "float64"}
    if not any(r["form"] == "difference" for r in crossed):
        fails.append("no kink crossing at gamma >= 0.05: the forms' agreement is unchecked")
    for r in crossed:
        other = by[("targets", r["gamma"], r["layer"])]
        if r["form"] == "difference" and not abs(r["angle_deg"] - other) <= 1e-6 * other + 1e-9:
            fails.append(f"layer {r['layer']}, gamma {r['gamma']:.3g} (kinks crossed): "
                         f"difference {r['angle_deg']:.6g} deg vs literal {other:.6g} deg")
    return fails


def plot_gamma(rec: Records, cfg: Config):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    consts = rounding_constants(rec, cfg)
    floor = 1e-15  # angles of 0 (and below) are drawn here
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.2), sharex=True, sharey=True)
    cmap = plt.get_cmap("viridis")
    gam = np.array(sorted({r["gamma"] for r in rec}))
    crossed = [r["gamma"] for r in rec if r["dtype"] == "float64" and r["kink_units"]
               and r["form"] == "difference"]
    titles = {"targets": "literal form (targets formed, then subtracted)",
              "difference": "difference form (c_l (t_l - h_l) propagated; the default)"}
    for row, form in enumerate(("targets", "difference")):
        for col, (dtype, u) in enumerate((("float64", U64), ("float32", U32))):
            ax = axes[row, col]
            for layer in range(1, cfg.layers):
                c = cmap((layer - 1) / max(cfg.layers - 1, 1) * 0.85)
                pts = sorted((r for r in rec if r["form"] == form and r["dtype"] == dtype
                              and r["layer"] == layer), key=lambda r: r["gamma"])
                y = np.array([max(r["angle_deg"], floor) for r in pts])
                ax.plot([r["gamma"] for r in pts], y, "o-", color=c, ms=3, lw=1.2,
                        label=f"layer {layer}")
                if form == "targets" and layer in consts:
                    k = cfg.layers - layer
                    regime = _rounding_regime(rec, cfg, layer)
                    g_hi = max(r["gamma"] for r in regime) * (1 if dtype == "float64" else 30)
                    line = np.degrees(consts[layer] * u * gam ** -float(k))
                    keep = (line < 200) & (gam <= g_hi)
                    ax.plot(gam[keep], line[keep], "--", color=c, lw=1.0, alpha=0.9)
                if dtype == "float32":
                    drift = pts[0]["bp_vs_float64_deg"]
                    ax.axhline(max(drift, floor), color=c, ls=":", lw=0.9)
            if crossed:
                ax.axvspan(min(crossed), gam.max() * 1.5, color="0.9", zorder=0)
            ax.axvline(cfg.original_gamma, color="0.4", ls=":", lw=1)
            ax.axhline(0.01, color="0.6", lw=0.8)
            ax.set(xscale="log", yscale="log", ylim=(floor / 3, 300),
                   xlim=(gam.max() * 1.5, gam.min() / 1.5))
            ax.set_title(f"{titles[form]}\ncomputed in {dtype} (u = {u:.2g}), against BP in "
                         f"{dtype}", fontsize=8.5)
            if row == 1:
                ax.set_xlabel("gamma (nudge)")
            if col == 0:
                ax.set_ylabel("angle to BP's update (deg)")
    axes[0, 0].text(cfg.original_gamma, 100, " original gamma", fontsize=7, color="0.3",
                    va="top", rotation=90)
    g, worst = best_gamma(rec, cfg)
    axes[0, 0].plot([g], [worst], marker="*", ms=12, color="tab:red", ls="")
    axes[0, 1].legend(fontsize=7, loc="center right")
    axes[0, 1].text(0.03, 0.04, "dashed: rounding $A_l\\,u\\,\\gamma^{-(L-l)}$, $A_l$ "
                    "fitted on float64\n(left), the same $A_l$ with float32's $u$ (right)\n"
                    "red star: the literal form's best gamma",
                    transform=axes[0, 1].transAxes, va="bottom", fontsize=7)
    axes[1, 1].text(0.03, 0.04, "dotted: float32 BP's own angle to float64 BP\n"
                    "grey band: some nudge crosses the leaky-ReLU kink\n"
                    f"output layer (layer {cfg.layers}): 0 in every panel; "
                    f"{floor:g} stands for 0",
                    transform=axes[1, 1].transAxes, va="bottom", fontsize=7)
    fig.suptitle(f"GAIT-prop against BP over gamma: n = {cfg.width}, {cfg.layers} layers, "
                 "Haar-orthogonal weights (every angle is 0 in exact arithmetic while no "
                 "nudge crosses a kink)", fontsize=9.5)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------


def write(stem: str, rec: Records, fig, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [rec.to_csv(out / f"{stem}.csv"), out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[1], dpi=150)
    fig.savefig(paths[2], metadata={"CreationDate": None})
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "figures")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (seconds; CI)")
    args = p.parse_args(argv)
    cfg = SMOKE if args.smoke else Config()
    t0 = time.perf_counter()
    data = load_batches(cfg)
    mis = mismatch_records(cfg, data)
    gam = gamma_records(cfg, data)
    fails = [f"mismatch: {f}" for f in check_mismatch(mis, cfg)]
    fails += [f"gamma: {f}" for f in check_gamma(gam, cfg)]
    paths = write("gaitprop_mismatch", mis, plot_mismatch(mis, cfg), args.out)
    paths += write("gaitprop_gamma", gam, plot_gamma(gam, cfg), args.out)
    sizes = {"scales": len(cfg.scales), "gammas": len(cfg.gammas)}
    print(f"data: {data[1]}; config: {asdict(cfg) | sizes}")
    for path in paths:
        print(f"wrote {path}")
    print(f"difference form: {difference_summary(gam, cfg)}")
    for gamma in (1e-3, 1e-6):
        for form in FORMS:
            for dtype in ("float64", "float32"):
                angles = [r["angle_deg"] for r in gam if r["form"] == form
                          and r["dtype"] == dtype and r["gamma"] == gamma]
                if angles:
                    print(f"gamma {gamma:g}, {form}, {dtype}: angle to BP per layer "
                          + ", ".join(f"{a:.3g}" for a in angles) + " deg")
    print(f"{time.perf_counter() - t0:.1f} s")
    if fails:
        for f in fails:
            print(f"CLAIM FAILED: {f}", file=sys.stderr)
        return 3
    print("claims hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
