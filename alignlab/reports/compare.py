"""Theory against training: measured alignment next to its theory, layer by layer.

``alignlab compare RUN_DIR [RUN_DIR ...] [--out DIR]`` reads run directories written by
``alignlab train`` (a run of any method, or of a layer-local rule) and, for every layer,
puts the measured alignment (or update angle to BP) next to what the layer's theory
predicts (the table below), with the prediction's band at the checkpoint (``band_*``:
mean, SD, ``band_z``, what was redrawn). For feedback that learns from ``grad_W`` (the
PFA family and KP) that is

* the **dynamics prediction** of Propositions 1 + 3 at every log point, from the logged
  per-layer scalars only (``w_sq, w_dot_w0, w0_sq, fb0_sq, decay_c``;
  :mod:`alignlab.theory.dynamics`), and the **fixed point** (Proposition 3 at the layer's
  ``n_out``, ``n_mid`` and ``B``'s entry kurtosis);
* the **Monte Carlo distribution** of the fixed-point angle at the layer's exact shapes
  and ``B`` ensemble, ``W`` drawn from its initial law (:func:`alignlab.sim.
  simulate_path_alignment`): mean, SD and ``z = (measured - mean) / SD``;
* the **conditional Monte Carlo**: the trained ``W`` from ``checkpoint.pt`` kept, ``B``
  redrawn from its ensemble (:func:`alignlab.sim.sample_btb`), the angle between ``W``
  and ``B^T B W`` (the fixed point ``R^T = B W``): what the angle would be had training not
  coupled ``W`` to ``B``. ``cond_z`` says where the measured angle sits in it;
* the **dynamics Monte Carlo**: the trained ``W_t`` and the run's own ``W_0``
  (:func:`alignlab.train.initial_model`) kept, ``B`` and ``R_0`` redrawn from their laws,
  the angle between ``W_t`` and Proposition 1's path ``M (W_t - c_t W_0) + c_t B^T R_0^T``
  at the run's final ``c_t``: the finite-size distribution of the dynamics prediction
  under the hypothesis that training left ``W`` independent of ``(B, R_0)``. ``dyn_z``
  says where the measured angle sits in it.

It writes ``DIR/compare.csv`` (one row per run, layer and log point: :data:`COLUMNS`),
``DIR/compare.png`` and ``DIR/compare.pdf`` as one set (:func:`alignlab._output.
write_together`; the location is checked before any work), and prints the final rows.
``docs/compare.md`` explains every column, panel and formula.

What theory predicts for a layer is the layer's own answer: its method's hook
``Method.alignment_theory(layer)`` (a layer-local rule's ``Rule.alignment_theory(index)``)
returns an object of :mod:`alignlab.nn.theory`, and this module asks it for the
prediction at every log point (``predict``), the value it tends to (``fixed_point``), the
band at the checkpoint (``band``) and what it is (``theory``, ``quantity``,
``description``). No method is named here. Today's answers:

=====================  ==============================  =========================================
method                 ``theory`` (``quantity``)       prediction; band at the checkpoint
=====================  ==============================  =========================================
PFA, PFA-o, PFA-id,    Props. 1-3 (feedback)           the dynamics prediction from the logged
KP                                                     scalars, the fixed point; the three Monte
                                                       Carlos above (band: the dynamics MC)
sparse PFA             Props. 1-3, not applicable      the same, marked: the masks break
                       (feedback)                      Proposition 1 (measured - predicted is
                                                       the deviation)
BP                     exact (feedback)                0 deg, norm ratio 1, SD 0
uSF                    sign identity (feedback)        the angle of ``s sign(W)``, exact given
                                                       the trained ``W``; the norm ratio at
                                                       every log point
brSF, frSF             random magnitude given W        ``M`` redrawn for the trained ``W``
                       (feedback)
WM                     mirror noise floor (feedback)   the floor at the run's ``[wm]``
                                                       settings; the mirror's recursion rerun
                                                       on the trained ``W``
FA                     independence null (feedback)    90 deg; ``B`` redrawn for the trained
                                                       ``W`` (its z: how far FA aligned)
GAIT-prop (trainer)    first order (update)            layers.csv's
                                                       ``update_angle_first_order_deg``
BP (trainer)           exact (update)                  0 deg
DFA, TP, ITP           measured only (update)          none (``b_law`` says why)
=====================  ==============================  =========================================

``quantity`` 'feedback' compares layers.csv's ``angle_deg`` (``W`` against its feedback
kernel), 'update' its ``update_angle_deg`` (the layer's update against BP's).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alignlab._records import Records
from alignlab.train.rundir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LAYERS_FILE,
    METRICS_FILE,
    check_run_files,
    read_run,
)
from alignlab.train.rundir import parse_number as _number

__all__ = [
    "COLUMNS",
    "DEFAULT_SAMPLES",
    "OUTPUT_NAMES",
    "SUMMARY_COLUMNS",
    "LayerInfo",
    "RunData",
    "compare_table",
    "default_out_dir",
    "final_rows",
    "format_summary",
    "load_run",
    "plot_compare",
    "run_compare",
]

#: Columns of ``compare.csv`` (one row per run, layer and ``layers.csv`` log point).
COLUMNS = (
    "run", "label", "method", "optimizer", "layer", "depth", "type", "measure",
    "theory", "quantity",
    "b_law", "kurtosis", "w_law", "n_out", "n_in", "n_mid", "expansion_ratio",
    "epoch", "step", "epoch_frac", "final", "decay_c",
    "measured_deg", "predicted_deg", "predicted_cross_deg", "fixed_point_deg",
    "mc_mean_deg", "mc_sd_deg", "z",
    "cond_mean_deg", "cond_sd_deg", "cond_z",
    "measured_norm_ratio", "predicted_norm_ratio", "fixed_point_norm_ratio",
    "mc_norm_ratio_mean", "cond_norm_ratio_mean", "mc_samples",
    "dyn_mean_deg", "dyn_sd_deg", "dyn_z",
    "band_mean_deg", "band_sd_deg", "band_z", "band_what",
)
#: Columns of the printed summary (the final row of every layer).
SUMMARY_COLUMNS = (
    "run", "layer", "n_out", "n_mid", "r", "measured", "predicted", "fixed_pt",
    "mc_mean", "mc_sd", "z", "cond_mean", "cond_sd", "cond_z", "dyn_mean", "dyn_sd", "dyn_z",
    "band_mean", "band_sd", "band_z", "theory",
)
OUTPUT_NAMES = {"csv": "compare.csv", "png": "compare.png", "pdf": "compare.pdf"}
DEFAULT_SAMPLES = 100  # MC draws per layer and MC: SD known to ~7% (1/sqrt(2n)), enough for z

_REQUIRED = (CONFIG_FILE, METRICS_FILE, LAYERS_FILE, CHECKPOINT_FILE)
_LAYER_FIELDS = ("epoch", "step", "layer", "measure", "angle_deg", "norm_ratio", "w_sq",
                 "w_dot_w0", "w0_sq", "fb0_sq", "w_dot_fb0", "decay_c")
#: quantity -> layers.csv's (angle, norm ratio) columns (alignlab.nn.theory.QUANTITIES)
_MEASURED = {"feedback": ("angle_deg", "norm_ratio"),
             "update": ("update_angle_deg", "update_norm_ratio")}
#: The angle recomputed from checkpoint.pt must match layers.csv's at the checkpoint's
#: log point to this many degrees (float32 rounding of the path is ~1e-5 deg)
_CHECKPOINT_TOL_DEG = 1e-2
#: layers.csv's w0_sq must equal |W_0|^2 of the rebuilt initial model to this relative
#: tolerance (the same float32 weights summed in float64: equal on the run's device kind;
#: another seed or init differs by ~1e-3)
_W0_RTOL = 1e-9


# --------------------------------------------------------------------------- the law of B


def _masked_class():
    """:class:`alignlab.sim.Masked`, the Bernoulli-masked iid law of sparse PFA's ``B``
    and ``R_0`` (imported on first use: alignlab.sim imports torch, which this CLI module
    must not do at import)."""
    from alignlab.sim import Masked

    return Masked


def _w_law(weight) -> str:
    """The iid law (of :data:`alignlab.theory.ENTRY_MOMENTS`, unmasked) whose kurtosis is
    nearest that of ``weight``'s entries: the initial law of ``W`` for the Monte Carlo,
    read from a fresh initialisation (Xavier-uniform MLP: 'uniform'; Kaiming-normal
    ResNet: 'gaussian'). The angle's law depends on ``W``'s only through small terms."""
    from alignlab.sim import ENSEMBLES
    from alignlab.theory import ENTRY_MOMENTS

    x = weight.detach().double().flatten()
    x = x - x.mean()
    m2 = float((x * x).mean())
    k4 = float((x**4).mean()) / (m2 * m2) if m2 > 0 else 3.0
    candidates = {name: m.kurtosis for name, m in ENTRY_MOMENTS.items()
                  if not m.masked and name in ENSEMBLES}
    return min(candidates, key=lambda name: abs(candidates[name] - k4))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a run, at its checkpoint."""

    name: str
    depth: int  # 1 = nearest the input (forward order)
    type: str
    measure: str
    n_out: int
    n_in: int  # W flattened: (n_out, n_in), conv n_in = C_in k k
    theory: Any  # alignlab.nn.theory.AlignmentTheory: the layer's own (its method's hook)
    w_law: str
    weight: Any = field(repr=False)  # torch float64 (n_out, n_in), the trained W
    measured_ckpt: float = math.nan  # angle recomputed from checkpoint.pt
    #: torch float64 (n_out, n_in): the run's W_0 (alignlab.train.initial_model), None when
    #: it does not reproduce layers.csv's w0_sq (then the dynamics MC is NaN)
    weight0: Any = field(default=None, repr=False)
    #: <W_0, F_0>: layers.csv's w_dot_fb0 at step 0 (NaN without a step-0 row)
    w0_dot_fb0: float = math.nan

    @property
    def law(self):
        """The law of the feedback Propositions 1-3 describe (the Monte Carlos read its
        ``kind, n_mid, ensemble, description, r0``): :attr:`theory` itself, a
        :class:`~alignlab.nn.theory.PathDynamics` where ``theory.monte_carlo``."""
        return self.theory


@dataclass(frozen=True)
class RunData:
    """A run directory as :func:`load_run` read it."""

    path: Path
    label: str
    method: str
    optimizer: str
    epoch: int  # the checkpoint's epoch (the final row of every layer)
    step: int
    steps: dict[int, int] = field(repr=False)  # metrics.csv: epoch -> optimiser steps
    rows: tuple[dict[str, Any], ...] = field(repr=False)  # layers.csv, parsed
    layers: tuple[LayerInfo, ...] = field(repr=False)


def _incomplete(path: Path, what: str) -> ValueError:
    return ValueError(f"`run_dirs` must be complete run directories, got {str(path)!r} "
                      f"({what}).")


def _check_run_dir(path: Path) -> None:
    check_run_files(path, _REQUIRED, name="run_dirs")


def _read_logs(path: Path) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The run's logs in one read (:func:`alignlab.train.rundir.read_run`): ``layers.csv``
    parsed (``epoch`` and ``step`` as ints) and ``metrics.csv``'s epoch -> optimiser steps.
    Cheap: run before any checkpoint is loaded."""
    rec = read_run(path, _REQUIRED, columns={LAYERS_FILE: _LAYER_FIELDS,
                                             METRICS_FILE: ("epoch", "step")},
                   name="run_dirs")
    rows = list(rec.layers)
    for line, row in enumerate(rows, start=2):
        for key in ("epoch", "step"):
            if not float(row[key]).is_integer():
                raise _incomplete(path, f"{LAYERS_FILE} line {line}: `{key}` must be a "
                                        f"whole number, got {row[key]!r}")
            row[key] = int(row[key])
    steps = {int(_number(r["epoch"])): int(_number(r["step"])) for r in rec.metrics}
    return rows, steps


def _mirror_settings(config) -> dict[str, Any]:
    """The run's mirror-phase settings (``[wm]``), as a method's ``alignment_theory`` reads
    them (only ``mirror_trained`` methods do)."""
    w = config.wm
    return {"lr": w.lr, "weight_decay": w.weight_decay, "noise_std": w.noise_std,
            "n_samples": w.n_samples, "every_steps": w.every_steps,
            "initial_steps": w.initial_steps}


def _trained_layers(config, model) -> list[tuple[str, Any, Any]]:
    """``(name, layer, theory)`` of every layer layers.csv logs, in forward order: the
    converted layers, their theory from their method's hook; or, for a model trained by a
    layer-local rule (``alignlab.gaitprop``), its layers ``layers.<i>`` and the rule's."""
    from alignlab.nn import converted_layers
    from alignlab.train.config import learns_by_targets

    if learns_by_targets(config.model.name):
        from alignlab.gaitprop import get_rule

        rule = get_rule(config.method.name)
        own = rule.options()
        rule = get_rule(config.method.name, **{k: v for k, v in config.method.options.items()
                                              if k in own})
        return [(f"layers.{i}", layer, rule.alignment_theory(i))
                for i, layer in enumerate(model.layers)]
    mirror = _mirror_settings(config)
    return [(name, layer, layer.method.alignment_theory(layer, mirror=mirror))
            for name, layer in converted_layers(model)]


def _rebuild(config, state_dict):
    """The run's model (converted to its method, or as built for a layer-local rule) with
    the checkpoint's tensors; and the weights it started from, ``W_0`` by layer name
    (:func:`alignlab.train.initial_model`: the seeds of ``train.seed``, on the CPU, the
    caller's random state left as it was). ``W_0`` gives ``W``'s initial law and the
    dynamics MC's ``W_0``."""
    from alignlab.train import initial_model

    model = initial_model(config, "cpu")
    initial = {name: layer.weight.detach().clone()
               for name, layer, _ in _trained_layers(config, model)}
    model.load_state_dict(state_dict)
    return model, initial


def _dot(a, b) -> float:
    """``<a, b>`` as the training loop logs it (float64 sum of the entries)."""
    import torch

    return float(torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))


def load_run(run_dir: str | os.PathLike, label: str | None = None) -> RunData:
    """Read one run directory: its config, ``metrics.csv`` steps, ``layers.csv`` rows and
    the layers rebuilt from ``checkpoint.pt`` (every layer's ``W``, its theory from its
    method's hook and, where it has a feedback kernel, the angle recomputed there, which
    must match ``layers.csv`` at the checkpoint's log point).

    Raises ``ValueError`` (one line) for a missing or incomplete directory and a
    checkpoint that does not match the logs.
    """
    path = Path(run_dir)
    _check_run_dir(path)
    return _load_run(path, label, _read_logs(path))


def _load_run(path: Path, label: str | None,
              logs: tuple[list[dict[str, Any]], dict[int, int]]) -> RunData:
    """:func:`load_run` of a checked directory whose logs :func:`_read_logs` has read."""
    import torch

    from alignlab._linalg import angle_deg
    from alignlab.train import load_config

    try:
        config = load_config(path / "config.toml")
    except ValueError as exc:
        raise ValueError(f"{exc} (in {str(path / 'config.toml')!r})") from None
    rows, steps = logs
    try:
        ck = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=True)
        state, epoch, step = ck["model"], int(ck["epoch"]), int(ck["step"])
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is bad input here
        raise _incomplete(path, f"checkpoint.pt cannot be read: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        model, initial = _rebuild(config, state)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"`run_dirs` must hold checkpoints of their own config, got "
                         f"{str(path)!r} ({str(exc).splitlines()[0]}).") from None

    final = {r["layer"]: r for r in rows if r["epoch"] == epoch and r["step"] == step}
    first = {}  # each layer's first row: w0_sq is the same in every row; at step 0
    for r in rows:  # (W_t = W_0) its w_dot_fb0 is <W_0, F_0>
        first.setdefault(r["layer"], r)
    layers = []
    for depth, (name, layer, theory) in enumerate(_trained_layers(config, model), start=1):
        where = f"layer {name!r} of {str(path)!r}"
        if name not in final:
            raise _incomplete(path, f"layers.csv has no row for layer {name!r} at the "
                                    f"checkpoint (epoch {epoch}, step {step})")
        w = layer.weight.detach()
        n_out = int(w.shape[0])
        measured, logged = math.nan, final[name]["angle_deg"]
        if theory.quantity == "feedback":  # the angle to the feedback kernel, recomputed
            fb = layer.effective_feedback()
            measured = math.nan if fb is None else float(angle_deg(w, fb))
        if math.isfinite(logged) and abs(measured - logged) > _CHECKPOINT_TOL_DEG:
            raise ValueError(
                f"`run_dirs` must hold a checkpoint that matches its logs, got {where}: "
                f"angle {measured:.4f} deg from checkpoint.pt, {logged:.4f} in layers.csv "
                f"(epoch {epoch}).")
        w0 = initial[name]
        same_w0 = math.isclose(_dot(w0, w0), first[name]["w0_sq"], rel_tol=_W0_RTOL)
        layers.append(LayerInfo(
            name=name, depth=depth, type=type(layer).__name__, measure=final[name]["measure"],
            n_out=n_out, n_in=int(w[0].numel()), theory=theory, w_law=_w_law(w0),
            weight=w.double().reshape(n_out, -1).clone(), measured_ckpt=measured,
            weight0=w0.double().reshape(n_out, -1).clone() if same_w0 else None,
            w0_dot_fb0=first[name]["w_dot_fb0"] if first[name]["step"] == 0 else math.nan))
    known = {li.name for li in layers}
    unknown = sorted({r["layer"] for r in rows} - known)
    if unknown:
        raise ValueError(f"`run_dirs` must hold logs of their own model, got {str(path)!r} "
                         f"(layers.csv names layers {', '.join(unknown)} that the model "
                         "does not have).")
    return RunData(path=path, label=label or path.name, method=config.method.name,
                   optimizer=config.optim.name, epoch=epoch, step=step, steps=steps,
                   rows=tuple(rows), layers=tuple(layers))


# --------------------------------------------------------------------------- Monte Carlo


def _mc_fixed_point(layer: LayerInfo, n_samples: int, seed: int, device: str
                    ) -> tuple[float, float, float]:
    """Unconditional MC at the fixed point (:func:`alignlab.sim.fixed_point_mc`):
    ``(mean, SD, mean norm ratio)`` of the angle between ``W`` and ``B^T B W`` over
    independent ``B`` (the layer's law) and ``W`` (its initial law), at the layer's exact
    ``(n_out, n_in, n_mid)``. Its root is :func:`alignlab._rng.keyed_seed` of ``seed`` and
    the shapes and laws, so layers alike in several runs share it."""
    from alignlab._rng import keyed_seed
    from alignlab.sim import fixed_point_mc

    law = layer.law
    key = f"mc/{layer.n_out}/{layer.n_in}/{law.n_mid}/{law.description}/{layer.w_law}"
    s = fixed_point_mc(layer.n_out, layer.n_in, law.n_mid, b_ensemble=law.ensemble,
                       w_ensemble=layer.w_law, n_samples=n_samples,
                       seed=keyed_seed(seed, key), device=device)
    return s.mean_deg, s.sd_deg, s.norm_ratio_mean


def _mc_conditional(layer: LayerInfo, n_samples: int, seed: int, device: str, key: str
                    ) -> tuple[float, float, float]:
    """Conditional MC (:func:`alignlab.sim.conditional_mc`): the trained ``W`` kept, ``B``
    redrawn (the layer's law) ``n_samples`` times from the root
    :func:`alignlab._rng.keyed_seed` ``(seed, key)``; ``(mean, SD, mean norm ratio)`` of
    the angle between ``W`` and ``B^T B W``."""
    from alignlab._rng import keyed_seed
    from alignlab.sim import conditional_mc

    s = conditional_mc(layer.weight, layer.law.n_mid, b_ensemble=layer.law.ensemble,
                       n_samples=n_samples, seed=keyed_seed(seed, key), device=device)
    return s.mean_deg, s.sd_deg, s.norm_ratio_mean


def _mc_dynamics(layer: LayerInfo, decay_c: float, n_samples: int, seed: int, device: str,
                 key: str, b_key: str) -> tuple[float, float]:
    r"""Dynamics MC (:func:`alignlab.sim.dynamics_mc`): ``(mean, SD)`` of the angle between
    the trained ``W_t`` and Proposition 1's path at ``c = decay_c``,
    ``B^T B (W_t - c W_0) + c B^T R_0^T``, with ``W_t`` and the run's ``W_0`` kept and
    ``B`` (the layer's law; not redrawn when ``B = I``) and ``R_0^T`` (its initial law)
    redrawn. ``R_0^T`` comes from the root :func:`alignlab._rng.keyed_seed` ``(seed, key)``
    and ``B`` from ``(seed, b_key)``: with ``b_key`` the conditional MC's key, sample
    ``i``'s ``B`` is the conditional MC's, so at ``c = 0`` the two agree draw by draw."""
    from alignlab._rng import keyed_seed
    from alignlab.sim import dynamics_mc

    law = layer.law
    s = dynamics_mc(layer.weight, layer.weight0, decay_c, law.n_mid, b_ensemble=law.ensemble,
                    r0_ensemble=law.r0.ensemble, r0_std=law.r0.std, n_samples=n_samples,
                    seed=keyed_seed(seed, key), b_seed=keyed_seed(seed, b_key),
                    device=device)
    return s.mean_deg, s.sd_deg


def _final_row(run: RunData, layer: LayerInfo) -> dict[str, Any]:
    """The layer's layers.csv row at the checkpoint."""
    return next(r for r in run.rows if r["layer"] == layer.name
                and r["epoch"] == run.epoch and r["step"] == run.step)


#: what the dynamics Monte Carlo, the band of Propositions 1-3, redraws and keeps
_DYNAMICS_BAND = "B, R_0 redrawn; W_t, W_0 kept (Props. 1+3 at the run's c_t)"


def _monte_carlo(run: RunData, layer: LayerInfo, n_samples: int, seed: int, device: str,
                 cache: dict) -> dict[str, Any]:
    """The Monte Carlos at the layer's checkpoint: Propositions 1-3's three where its
    theory asks for them (``monte_carlo``; the band is then the dynamics MC), else the
    theory's own band (``band``), ``n_samples`` draws each."""
    from alignlab._rng import keyed_seed

    nan = math.nan
    law = layer.law
    out = {"mc_mean_deg": nan, "mc_sd_deg": nan, "mc_norm_ratio_mean": nan,
           "cond_mean_deg": nan, "cond_sd_deg": nan, "cond_norm_ratio_mean": nan,
           "dyn_mean_deg": nan, "dyn_sd_deg": nan, "n": 0,
           "band_mean_deg": nan, "band_sd_deg": nan, "band_what": "-"}
    final = _final_row(run, layer)
    if not layer.theory.monte_carlo:
        band = layer.theory.band(layer.weight, layer.weight0, final, n_samples=n_samples,
                                 seed=keyed_seed(seed, f"band/{run.path.name}/{layer.name}"),
                                 device=device)
        if band is not None:
            out.update({"band_mean_deg": band.mean_deg, "band_sd_deg": band.sd_deg,
                        "band_what": band.what, "n": band.n})
        return out
    cond_key = f"cond/{run.path.name}/{layer.name}"
    if law.kind == "orthonormal":  # B^T B = I for every draw: the fixed-point path is W
        out.update({"mc_mean_deg": 0.0, "mc_sd_deg": 0.0, "mc_norm_ratio_mean": 1.0,
                    "cond_mean_deg": 0.0, "cond_sd_deg": 0.0, "cond_norm_ratio_mean": 1.0})
    else:
        key = (layer.n_out, layer.n_in, law.n_mid, law.description, layer.w_law)
        if key not in cache:  # the same shapes and laws in several runs (seeds): one MC
            cache[key] = _mc_fixed_point(layer, n_samples, seed, device)
        mc = cache[key]
        cond = _mc_conditional(layer, n_samples, seed, device, cond_key)
        out.update({"mc_mean_deg": mc[0], "mc_sd_deg": mc[1], "mc_norm_ratio_mean": mc[2],
                    "cond_mean_deg": cond[0], "cond_sd_deg": cond[1],
                    "cond_norm_ratio_mean": cond[2], "n": n_samples})
    c = final["decay_c"]
    if layer.weight0 is not None and math.isfinite(c):  # else no W_0 or no c_t (Adam)
        dyn = _mc_dynamics(layer, c, n_samples, seed, device,
                           f"dyn/{run.path.name}/{layer.name}", cond_key)
        out.update({"dyn_mean_deg": dyn[0], "dyn_sd_deg": dyn[1],
                    "band_mean_deg": dyn[0], "band_sd_deg": dyn[1],
                    "band_what": _DYNAMICS_BAND})
        if law.r0.ensemble is not None:  # (R_0^T = W_0: nothing drawn)
            out["n"] = n_samples
    return out


# --------------------------------------------------------------------------- the table


def _epoch_frac(steps: dict[int, int], epoch: int, step: int) -> float:
    """Training epochs done at a log point: ``epoch`` at the end of an epoch, fractional for
    a mid-epoch point (which carries the epoch in progress)."""
    end = steps.get(epoch)
    if end == step or epoch == 0:
        return float(epoch)
    start = steps.get(epoch - 1, 0)
    if end is None:  # the epoch in progress: its length from the first epoch's
        end = start + (steps.get(1, 0) - steps.get(0, 0))
    return float(epoch - 1) + ((step - start) / (end - start) if end > start else 1.0)


def _z(x: float, mean: float, sd: float) -> float:
    return (x - mean) / sd if sd > 0 and math.isfinite(sd) else math.nan


def _layer_rows(run: RunData, layer: LayerInfo, mc: dict[str, Any]) -> list[dict]:
    theory = layer.theory
    fixed_deg, fixed_ratio = theory.fixed_point()
    angle_col, ratio_col = _MEASURED[theory.quantity]
    nan = math.nan
    rows = []
    for r in run.rows:
        if r["layer"] != layer.name:
            continue
        final = r["epoch"] == run.epoch and r["step"] == run.step
        pred, ratio = theory.predict(r, layer.weight if final else None)
        measured = r[angle_col]
        rows.append({
            "run": str(run.path), "label": run.label, "method": run.method,
            "optimizer": run.optimizer, "layer": layer.name, "depth": layer.depth,
            "type": layer.type, "measure": layer.measure, "theory": theory.theory,
            "quantity": theory.quantity, "b_law": theory.description,
            "kurtosis": theory.kurtosis, "w_law": layer.w_law, "n_out": layer.n_out,
            "n_in": layer.n_in, "n_mid": theory.n_mid,
            "expansion_ratio": theory.expansion_ratio,
            "epoch": r["epoch"], "step": r["step"],
            "epoch_frac": _epoch_frac(run.steps, r["epoch"], r["step"]), "final": final,
            "decay_c": r["decay_c"], "measured_deg": measured, "predicted_deg": pred,
            "predicted_cross_deg": theory.predict_cross(r, layer.w0_dot_fb0),
            "fixed_point_deg": fixed_deg,
            "mc_mean_deg": mc["mc_mean_deg"], "mc_sd_deg": mc["mc_sd_deg"],
            "z": _z(measured, mc["mc_mean_deg"], mc["mc_sd_deg"]) if final else nan,
            "cond_mean_deg": mc["cond_mean_deg"] if final else nan,
            "cond_sd_deg": mc["cond_sd_deg"] if final else nan,
            "cond_z": _z(measured, mc["cond_mean_deg"], mc["cond_sd_deg"]) if final else nan,
            "measured_norm_ratio": r[ratio_col], "predicted_norm_ratio": ratio,
            "fixed_point_norm_ratio": fixed_ratio,
            "mc_norm_ratio_mean": mc["mc_norm_ratio_mean"],
            "cond_norm_ratio_mean": mc["cond_norm_ratio_mean"] if final else nan,
            "mc_samples": mc["n"],
            "dyn_mean_deg": mc["dyn_mean_deg"] if final else nan,
            "dyn_sd_deg": mc["dyn_sd_deg"] if final else nan,
            "dyn_z": _z(measured, mc["dyn_mean_deg"], mc["dyn_sd_deg"]) if final else nan,
            "band_mean_deg": mc["band_mean_deg"] if final else nan,
            "band_sd_deg": mc["band_sd_deg"] if final else nan,
            "band_z": _z(measured, mc["band_mean_deg"], mc["band_sd_deg"]) if final else nan,
            "band_what": mc["band_what"] if final else "-",
        })
    return rows


def compare_table(runs: Sequence[RunData], *, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                  device: str = "cpu", progress: Callable[[str], None] | None = None
                  ) -> Records:
    """The ``compare.csv`` table (:data:`COLUMNS`) of loaded runs: every layer's theory
    (its method's hook) at every log point; at every layer's checkpoint its band, and
    Propositions 1-3's fixed-point, conditional and dynamics Monte Carlos where the
    theory asks for them."""
    cache: dict = {}
    rows = []
    for run in runs:
        for layer in run.layers:
            theory = layer.theory
            if progress is not None:
                progress(f"{run.path.name}: layer {layer.name} ({layer.n_out}x{layer.n_in}, "
                         f"{theory.theory}: {theory.description})")
            if progress is not None and layer.weight0 is None and theory.monte_carlo:
                progress(f"{run.path.name}: layer {layer.name}: W_0 rebuilt from the config "
                         "does not match layers.csv's w0_sq: no dynamics MC (dyn_* NaN)")
            mc = _monte_carlo(run, layer, n_samples, seed, device, cache)
            rows.extend(_layer_rows(run, layer, mc))
    return Records(rows, COLUMNS)


def final_rows(table: Records) -> Records:
    """The rows at each layer's checkpoint (``final``)."""
    return Records([r for r in table if r["final"]], COLUMNS)


def format_summary(table: Records) -> str:
    """The final rows as ``alignlab compare`` prints them (angles in degrees)."""
    rows = []
    for r in final_rows(table):
        rows.append({
            "run": Path(r["run"]).name, "layer": r["layer"], "n_out": r["n_out"],
            "n_mid": "-" if r["n_mid"] is None else r["n_mid"],
            "r": r["expansion_ratio"], "measured": r["measured_deg"],
            "predicted": r["predicted_deg"], "fixed_pt": r["fixed_point_deg"],
            "mc_mean": r["mc_mean_deg"], "mc_sd": r["mc_sd_deg"], "z": r["z"],
            "cond_mean": r["cond_mean_deg"], "cond_sd": r["cond_sd_deg"],
            "cond_z": r["cond_z"], "dyn_mean": r["dyn_mean_deg"], "dyn_sd": r["dyn_sd_deg"],
            "dyn_z": r["dyn_z"], "band_mean": r["band_mean_deg"], "band_sd": r["band_sd_deg"],
            "band_z": r["band_z"],
            "theory": f"{r['theory']} [{r['quantity']}]",
        })
    head = ("final alignment per layer (deg; [update]: the update angle to BP): measured, "
            "the theory's prediction, its fixed point,\nMC at the fixed point (B, W "
            "redrawn), conditional MC (trained W kept, B redrawn), dynamics MC (W_t, W_0 "
            "kept, B, R_0 redrawn, the run's c_t),\nthe theory's band at the checkpoint; "
            "z = (measured - mean) / SD")
    return head + "\n" + Records(rows, SUMMARY_COLUMNS).format(digits=4)


# --------------------------------------------------------------------------- plotting


def _zoom(values: Sequence[float], floor: float = 0.0) -> tuple[float, float] | None:
    v = np.array([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    lo, hi = min(floor, float(v.min())), float(v.max())
    pad = 0.08 * max(hi - lo, 1e-3)
    return lo - (pad if lo < floor else 0.02 * pad), hi + pad


def plot_compare(table: Records, *, title: str = ""):
    """The figure (Agg backend): per label, (a) angle and (b) norm ratio against epoch
    (measured solid, the theory's prediction dashed, its fixed point dotted; colour =
    layer depth; the angle is to ``W`` or, for quantity 'update', to BP's update); then
    (c) the final angles of layers with an expansion ratio against it on the Figure 3
    curves, with the MC mean +/- SD, (d) the z-scores of the three Monte Carlos (fixed
    point, conditional, dynamics) and of the other theories' bands, and (e) every final
    angle against its prediction (band mean where the prediction needs the trained W),
    the band's SD as error bar: on the diagonal where theory holds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    from alignlab._linalg import mid_width
    from alignlab.reports.curves import depth_colors
    from alignlab.theory import path_alignment_angle, path_alignment_angle_finite

    labels = list(dict.fromkeys(table.column("label")))
    n_cols = min(len(labels), 4)
    blocks = math.ceil(len(labels) / n_cols)
    n_depth = max(table.column("depth"))
    colors = depth_colors(n_depth)
    fig = plt.figure(figsize=(max(4.2 * n_cols, 15.0), 5.6 * blocks + 5.0),
                     layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[5.6 * blocks, 5.0])
    grid = top.subplots(2 * blocks, n_cols, squeeze=False)
    for k in range(blocks * n_cols):
        ax_a, ax_b = grid[2 * (k // n_cols), k % n_cols], grid[2 * (k // n_cols) + 1, k % n_cols]
        if k >= len(labels):
            ax_a.set_visible(False)
            ax_b.set_visible(False)
            continue
        lab = labels[k]
        rows = [r for r in table if r["label"] == lab]
        zoom_a, zoom_b = [], []
        for run in dict.fromkeys(r["run"] for r in rows):
            for depth in sorted({r["depth"] for r in rows if r["run"] == run}):
                rr = sorted((r for r in rows if r["run"] == run and r["depth"] == depth),
                            key=lambda r: r["epoch_frac"])
                x = np.array([r["epoch_frac"] for r in rr])
                col = colors[depth - 1]
                late = x >= 1.0 if (x >= 1.0).any() else np.ones_like(x, dtype=bool)
                for ax, meas, pred, fixed, zoom in (
                        (ax_a, "measured_deg", "predicted_deg", "fixed_point_deg", zoom_a),
                        (ax_b, "measured_norm_ratio", "predicted_norm_ratio",
                         "fixed_point_norm_ratio", zoom_b)):
                    ym = np.array([r[meas] for r in rr])
                    yp = np.array([r[pred] for r in rr])
                    ax.plot(x, ym, color=col, lw=1.4, marker="o" if len(x) < 12 else None,
                            ms=3)
                    ax.plot(x, yp, color=col, lw=1.2, ls="--")
                    if math.isfinite(rr[0][fixed]):
                        ax.axhline(rr[0][fixed], color=col, lw=0.9, ls=":")
                    zoom += list(ym[late]) + list(yp[late]) + [rr[0][fixed]]
        for ax, zoom, floor in ((ax_a, zoom_a, 0.0), (ax_b, zoom_b, 1.0)):
            lim = _zoom(zoom, floor)
            if lim is not None:
                ax.set_ylim(*lim)
            ax.grid(alpha=0.3)
        what = ("update angle to BP" if rows[0]["quantity"] == "update"
                else f"{rows[0]['measure']} alignment")
        ax_a.set_title(f"(a) {lab}: {what}\n{rows[0]['theory']}", loc="left", fontsize=8)
        ratio = ("|update| / |BP's update|" if rows[0]["quantity"] == "update"
                 else "|feedback| / |W|")
        ax_b.set_title(f"(b) {lab}: norm ratio {ratio}", loc="left", fontsize=9)
        ax_b.set_xlabel("epoch")
        if k % n_cols == 0:
            ax_a.set_ylabel("angle (deg)")
            ax_b.set_ylabel("norm ratio")
    names: dict[int, str] = {}
    for r in table:
        names.setdefault(r["depth"], r["layer"])
    handles = [Line2D([], [], color=colors[d - 1], lw=2,
                      label=f"layer {names[d]}" if names[d].isdigit() else names[d])
               for d in sorted(names)]
    handles += [Line2D([], [], color="0.3", lw=1.4, label="measured"),
                Line2D([], [], color="0.3", lw=1.2, ls="--",
                       label="prediction (the layer's theory, logged scalars)"),
                Line2D([], [], color="0.3", lw=0.9, ls=":",
                       label="fixed point (Prop. 3 finite size; the theory's floor)")]
    top.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               fontsize=8, frameon=False,
               title="colour: layer (forward order); y axes zoomed to epochs >= 1 "
                     "(epoch 0 sits near 90 deg)", title_fontsize=8)

    ax_c, ax_d, ax_e = bottom.subplots(1, 3, width_ratios=[1.2, 1.0, 1.0])
    final = final_rows(table)
    ratio_rows = [r for r in final if math.isfinite(r["expansion_ratio"])]
    iid = [r for r in ratio_rows if math.isfinite(r["kurtosis"])]
    ortho = [r for r in ratio_rows if r["fixed_point_deg"] == 0.0]
    n_outs = sorted({r["n_out"] for r in iid})
    palette = plt.get_cmap("tab10")
    rs = [r["expansion_ratio"] for r in iid + ortho]
    if rs:
        lo, hi = min(rs) / 1.4, max(rs) * 1.4
        grid_r = np.logspace(np.log10(lo), np.log10(hi), 200)
        ax_c.plot(grid_r, path_alignment_angle(grid_r), color="0.2", lw=1.5,
                  label=r"Prop. 3 limit $\arctan(1/\sqrt{r})$ (Figure 3)")
        combos = sorted({(r["n_out"], r["kurtosis"]) for r in iid})
        kurtoses = sorted({k4 for _, k4 in combos})
        styles = ("--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)))  # one per kurtosis
        for n_out, k4 in combos[:6]:
            n_mid = np.unique(mid_width(n_out, grid_r))
            ax_c.plot(n_mid / n_out, path_alignment_angle_finite(n_out, n_mid, k4),
                      color=palette(n_outs.index(n_out) % 10), lw=1.0,
                      ls=styles[kurtoses.index(k4) % len(styles)],
                      label=f"finite size, n_out = {n_out}, kurtosis {k4:.3g}")
    for r in iid:  # the MC bar right of its measured point, one offset per n_out (log x)
        k = n_outs.index(r["n_out"])
        col = palette(k % 10)
        x = r["expansion_ratio"]
        ax_c.errorbar(x * (1.0 + 0.025 * (k + 1)), r["mc_mean_deg"], yerr=r["mc_sd_deg"],
                      color=col, capsize=2, lw=0.9, marker="_", ms=6, zorder=2, alpha=0.7)
        ax_c.plot(x, r["measured_deg"], "o", color=col, ms=4.5, zorder=3, alpha=0.85,
                  mec="0.2", mew=0.4)
    if ortho:
        ax_c.plot([r["expansion_ratio"] for r in ortho], [r["measured_deg"] for r in ortho],
                  "x", color="C3", ms=6, label="B^T B = I (fixed point 0 deg)")
    for n_out in n_outs:
        ax_c.plot([], [], "o", color=palette(n_outs.index(n_out) % 10),
                  label=f"measured, n_out = {n_out}")
    if iid:
        ax_c.errorbar([], [], yerr=[], color="0.35", capsize=2, marker="_",
                      label="MC at the fixed point, mean ± SD (right of its point)")
    ax_c.set_xscale("log")
    nice = {0.1, 0.2, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500, 1000}
    ax_c.xaxis.set_major_locator(FixedLocator(sorted(nice | {round(x, 3) for x in rs})))
    ax_c.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_c.xaxis.set_minor_formatter(NullFormatter())
    ax_c.set_xlabel("expansion ratio r = n_mid / n_out (of the layer)")
    ax_c.set_ylabel("final angle to W (deg)")
    ax_c.set_ylim(bottom=0)
    ax_c.grid(alpha=0.3, which="both")
    ax_c.set_title("(c) end of training against the expansion ratio", loc="left", fontsize=9)
    if not ratio_rows:
        ax_c.text(0.5, 0.5, "no layer with an expansion ratio", transform=ax_c.transAxes,
                  ha="center", va="center", fontsize=8, color="0.4")
    if ax_c.get_legend_handles_labels()[0]:
        ax_c.legend(fontsize=7, frameon=False)

    # a band other than the dynamics MC's (that one is dyn_z already)
    own = {id(r): r["band_z"] if r["band_what"] != _DYNAMICS_BAND else math.nan
           for r in final}
    scored = [r for r in final
              if any(math.isfinite(v) for v in (r["z"], r["cond_z"], r["dyn_z"], own[id(r)]))]
    pos = {lab: i for i, lab in enumerate(dict.fromkeys(r["label"] for r in scored))}
    ax_d.axhspan(-3, 3, color="0.9", zorder=0)
    for r in scored:
        x = pos[r["label"]] + 0.5 * (r["depth"] - (n_depth + 1) / 2) / max(n_depth, 1)
        col = colors[r["depth"] - 1]
        step = 0.12 / max(n_depth, 1)  # the three z's of a layer side by side
        ax_d.plot(x - step, r["z"], "o", color=col, ms=5, mec="0.2", mew=0.5)
        ax_d.plot(x, r["cond_z"], "s", mfc="none", mec=col, ms=6, mew=1.3)
        ax_d.plot(x + step, r["dyn_z"], "^", color=col, ms=6, mec="0.1", mew=0.6)
        ax_d.plot(x, own[id(r)], "D", color=col, ms=5, mec="0.1", mew=0.6)
    ax_d.plot([], [], "o", color="0.5", label="z: MC at the fixed point (B, W redrawn)")
    ax_d.plot([], [], "s", mfc="none", mec="0.5", label="cond. z: trained W kept, B redrawn")
    ax_d.plot([], [], "^", color="0.5", mec="0.1", mew=0.6,
              label="dyn. z: Props. 1+3 at the run's c_t (W_t, W_0 kept; B, R_0 redrawn)")
    ax_d.plot([], [], "D", color="0.5", mec="0.1", mew=0.6,
              label="band z: another theory's band (band_what)")
    ax_d.set_yscale("symlog", linthresh=3.0)
    z_all = [abs(v) for r in scored for v in (r["z"], r["cond_z"], r["dyn_z"], own[id(r)])
             if math.isfinite(v)]
    z_top = max([4.0] + [1.3 * v for v in z_all])
    ax_d.set_ylim(-z_top, z_top)
    ticks = [t for t in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000) if t <= z_top]
    ax_d.yaxis.set_major_locator(FixedLocator([-t for t in ticks[::-1]] + [0] + ticks))
    ax_d.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_d.yaxis.set_minor_formatter(NullFormatter())
    ax_d.axhline(0, color="0.5", lw=0.8)
    ax_d.set_xticks(range(len(pos)), list(pos), rotation=20, ha="right", fontsize=8)
    ax_d.set_xlim(-0.7, max(len(pos) - 0.3, 0.7))
    ax_d.set_ylabel("(measured - MC mean) / MC SD")
    ax_d.set_title("(d) where the final angle sits (grey band: |z| < 3)", loc="left",
                   fontsize=9)
    ax_d.grid(alpha=0.3, axis="y")
    ax_d.legend(fontsize=7, frameon=False, loc="best")
    plot_measured_against_predicted(ax_e, final)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_measured_against_predicted(ax, final: Records) -> None:
    """(e): every final angle against its prediction (the band's mean where the
    prediction needs what only the band has), one marker per label, the band's SD as a
    horizontal error bar, the diagonal where theory holds; measured-only layers are
    listed, not drawn."""
    labels = list(dict.fromkeys(r["label"] for r in final))
    markers = "osD^v<>pPXh"
    points = []
    for r in final:
        pred = r["predicted_deg"] if math.isfinite(r["predicted_deg"]) else r["band_mean_deg"]
        if math.isfinite(pred) and math.isfinite(r["measured_deg"]):
            points.append((r, pred))
    for k, lab in enumerate(labels):
        pts = [(r, p) for r, p in points if r["label"] == lab]
        if not pts:
            continue
        xs, ys = [p for _, p in pts], [r["measured_deg"] for r, _ in pts]
        sd = [r["band_sd_deg"] if math.isfinite(r["band_sd_deg"]) else 0.0 for r, _ in pts]
        ax.errorbar(xs, ys, xerr=sd, ls="none", marker=markers[k % len(markers)],
                    color=f"C{k % 10}", ms=5, capsize=2, lw=0.9, mec="0.2", mew=0.4,
                    label=f"{lab} ({pts[0][0]['theory']})")
    values = [v for r, p in points for v in (p, r["measured_deg"])]
    hi = max(values + [1.0]) * 1.05
    ax.plot([0, hi], [0, hi], color="0.4", lw=0.9, ls="--", zorder=0)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("predicted (deg): the theory's, or its band mean")
    ax.set_ylabel("measured at the end (deg)")
    ax.grid(alpha=0.3)
    from alignlab.nn.theory import AlignmentTheory

    unexplained = sorted({r["label"] for r in final if r["theory"] == AlignmentTheory.theory})
    ax.set_title("(e) measured against predicted, every layer with a theory", loc="left",
                 fontsize=9)
    if unexplained:
        import textwrap

        ax.text(0.98, 0.02, textwrap.fill("measured only: " + "; ".join(unexplained), 60),
                transform=ax.transAxes, ha="right", va="bottom", fontsize=6, color="0.3")
    ax.legend(fontsize=5.5, frameon=False, loc="upper left")


# --------------------------------------------------------------------------- running


def default_out_dir(run_dirs: Sequence[str | os.PathLike]) -> Path:
    """``<first run's parent>/compare``: next to the runs, never over committed figures."""
    return Path(run_dirs[0]).absolute().parent / "compare"


def _labels(paths: Sequence[Path]) -> list[str]:
    """The ``alignlab plot`` labels (method + options that differ; seeds pooled), plus the
    optimiser when the runs do not all use one (Proposition 1 is an SGD result)."""
    from alignlab.reports.runs import load_runs

    runset = load_runs(paths)
    optims = [r.config.get("optim.name", "?") for r in runset.runs]
    if len(set(optims)) > 1:
        return [f"{lab} {opt}" for lab, opt in zip(runset.labels, optims, strict=True)]
    return list(runset.labels)


def run_compare(
    run_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None = None,
    *,
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> tuple[Records, dict[str, Path]]:
    """Read the runs, compute the table, write :data:`OUTPUT_NAMES` into ``out_dir`` as one
    set; return the table (:data:`COLUMNS`) and the paths written, by kind.

    Checked before any work, in this order: ``n_samples``, ``device``, the output location
    (probed), every run directory (present and complete), then each run is read and
    rebuilt. Any ``ValueError`` leaves nothing written.
    """
    from alignlab._output import check_output_dir
    from alignlab._validate import check_int
    from alignlab.reports._figure import write_figure_set
    from alignlab.sim.engine import check_device

    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise ValueError("`run_dirs` must name at least one run directory, got [].")
    n_samples = check_int("n_samples", n_samples, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    check_device(device)
    out = check_output_dir(default_out_dir(paths) if out_dir is None else out_dir,
                           name="out_dir")
    logs = []
    for p in paths:  # every run's files and logs before any checkpoint is loaded
        _check_run_dir(p)
        logs.append(_read_logs(p))
    labels = _labels(paths)
    runs = [_load_run(p, lab, log) for p, lab, log in zip(paths, labels, logs, strict=True)]
    table = compare_table(runs, n_samples=n_samples, seed=seed, device=device,
                          progress=progress)

    import matplotlib

    matplotlib.use("Agg")

    title = (f"Theory against training: {len(runs)} run(s), {len(set(labels))} label(s); "
             f"Monte Carlo: {n_samples} draws per layer, seed {seed}")
    fig = plot_compare(table, title=title)
    written = write_figure_set(out, fig, {OUTPUT_NAMES["csv"]: table.to_csv}, stem="compare",
                               dpi=130)
    return table, {kind: written[name] for kind, name in OUTPUT_NAMES.items()}
