"""Benchmark: GAIT-prop's training step (and epoch) time relative to BP's on the same network.

Issue 9's acceptance line: "GAIT-prop epoch time relative to BP's on the same network
(target: within 2x; the inverse refresh is the cost to beat)". Each variant is built as
``alignlab train`` builds it from ``configs/gaitprop/<stem>.toml``
(:func:`alignlab.train.load_config`, :func:`alignlab.models.build_model` in the config's
dtype, :func:`alignlab.nn.make_optimizer`, ``Trainer(model, opt, cfg.method.name,
**cfg.method.options)``) and timed on ``trainer.step(x, y)``, one call per minibatch as the
harness does: forward, targets, local updates, penalty gradient, optimiser step, LU
refactorisation of layers 2..L. Inputs are random (x uniform in [0, 1), labels uniform
over the classes): the cost does not depend on the data, so no data set is needed.

Variants (the first is the baseline of every ratio):

* ``bp``: the BP rule on the same invertible network, as configured (no penalty);
* ``bp + gait-prop's penalty``: the same with GAIT-prop's configured penalty (``'offdiag'``
  0.1): the BP run that GAIT-prop's accuracy is matched against, and the baseline of
  GAIT-prop's ``matched_ratio`` (rule against rule at equal penalty; "gait-prop, no
  penalty"'s matched baseline is ``bp``);
* ``gait-prop``: as configured (gamma 1e-3, ``'offdiag'`` penalty 0.1);
* ``gait-prop, no penalty``: the same with ``method.penalty = 'none'``: isolates the
  inverse refresh (and the solves that replace BP's ``W^T e``);
* ``itp``, ``tp``: as configured (``'offdiag'`` penalty 0.1 and 1000);
* ``gait-prop, targets form``: GAIT-prop in the literal form (``method.form = 'targets'``)
  instead of the default difference form;
* ``bp, float32``, ``gait-prop, float32``, ``gait-prop, targets form, float32``: the same
  in float32 (``train.dtype = 'float32'``).

``dtype_ratio`` divides a row's median by BP's in the same dtype (and section),
``form_ratio`` a difference-form row's by the same variant's in the literal form.

Beside them, a separate GAIT-prop trainer (as configured) runs the same step split into its
phases, each timed on its own: the forward pass (``model.activities``), the targets and
local updates (the rule's errors through the cached LU solves, ``-<e h^T>``), the penalty
gradient (:func:`alignlab.gaitprop.penalty_grad` over all layers), the optimiser step
(writing ``.grad``, ``opt.step()``) and the LU refactorisation (``model.refresh_inverses()``
after the weights changed: layers 2..L, each with its condition estimate), plus their
total, so the reader sees what dominates. (The phases are ``Trainer.step``'s body in the
same order; the smoke test checks that they update the weights bit for bit as it does.)
A third section times the rule's update alone (:func:`update_pass`: forward, errors,
``-<e h^T>``, with the LU factors cached, on a GAIT-prop network that is never stepped),
BP and GAIT-prop in both forms, float64 and float32: the only part of the step in which
the two forms differ.

Protocol: one warm-up step per variant, then ``--repeats`` rounds; each round runs
``--steps`` steps of every variant in turn (round robin), so slow drifts of a shared machine
hit all of them alike. A round gives each variant's mean time per step; a row reports the
median (and range) over rounds, the implied epoch time (median x ``--steps-per-epoch``,
default 60000 Fashion-MNIST training examples / batch: 1000 at batch 60) and the ratio of
its median to BP's median (BP's is exactly 1). No timing is asserted anywhere.

Expectation (flops per step, ``n`` = width, ``B`` = batch, ``L`` = weight layers, a
multiply-add counted as 2 flops throughout; the ``flop_ratio`` column):

* BP: ``6 n^2 B`` per layer (forward, the error ``W^T e``, the update ``e h^T``, each
  ``2 n^2 B``); at ``n = 784``, ``B = 60``: 2.21e8 per layer, 1.11e9 for ``L = 5``;
* GAIT-prop swaps ``W^T e`` for a triangular solve pair with the cached LU (the same
  ``2 n^2 B``) and adds one LU per layer 2..L: ``2/3 n^3`` = 3.21e8, 1.45x a BP layer. Without
  the penalty the step is therefore ``1 + (L - 1)/L * 1.45`` = **2.16x** BP's (L = 5; 2.45x
  per factorised layer): at or just above the 2x target by flop count alone, before any
  difference in how fast LAPACK's ``getrf`` runs against BLAS's ``gemm``;
* the ``'offdiag'`` penalty gradient ``4 s W offdiag(W^T W)`` is two ``n x n`` products per
  layer (``2 n^3`` multiply-adds = ``4 n^3`` = 1.93e9 flops): **8.7x** a BP layer's work
  by itself (4.4x if one counted its multiply-adds against BP's flops), so GAIT-prop as
  configured is ~10.9x BP's flops and **the 2x target cannot hold with the original
  per-step penalty** (ITP and TP carry the same penalty: the same expectation).

    .venv/bin/python analysis/bench_gaitprop.py [--repeats 5] [--steps 5] [--threads 1]
        [--width 784] [--hidden-layers 4] [--batch 60] [--steps-per-epoch N] [--csv PATH]
    .venv/bin/python analysis/bench_gaitprop.py --smoke      # width 32, 1 hidden layer (CI)

CPU only, float64 (the configs' dtype) unless a row says float32, ``--threads`` intra-op
threads (default 1).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from alignlab._output import check_output_file, write_atomic
from alignlab._records import Records
from alignlab._validate import check_int
from alignlab.gaitprop import Trainer, get_rule, penalty_grad
from alignlab.gaitprop.rules import layer_updates
from alignlab.models import build_model
from alignlab.nn import make_optimizer
from alignlab.train import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "gaitprop"

_GAIT_METHOD = load_config(CONFIGS / "gait-prop.toml").method.options
#: GAIT-prop's penalty as configured, for BP on the same network *with* that penalty
GAIT_PENALTY = (("method.penalty", _GAIT_METHOD["penalty"]),
                ("method.penalty_strength", _GAIT_METHOD["penalty_strength"]))
MATCHED_BP = "bp + gait-prop's penalty"
#: (label, config file stem, extra overrides); the first row is every ratio's baseline
VARIANTS: list[tuple[str, str, tuple[tuple[str, Any], ...]]] = [
    ("bp", "bp", ()),
    (MATCHED_BP, "bp", GAIT_PENALTY),
    ("gait-prop", "gait-prop", ()),
    ("gait-prop, no penalty", "gait-prop", (("method.penalty", "none"),)),
    ("itp", "itp", ()),
    ("tp", "tp", ()),
    ("gait-prop, targets form", "gait-prop", (("method.form", "targets"),)),
    ("bp, float32", "bp", (("train.dtype", "float32"),)),
    ("gait-prop, float32", "gait-prop", (("train.dtype", "float32"),)),
    ("gait-prop, targets form, float32", "gait-prop",
     (("method.form", "targets"), ("train.dtype", "float32"))),
]
#: the rule's update alone (section 'update'): (label, rule options, dtype); the first of
#: each dtype is BP, the baseline of that dtype's ``dtype_ratio``
UPDATES: list[tuple[str, dict[str, Any], torch.dtype]] = [
    (f"update: {name}, {dt}", options, dtype)
    for dt, dtype in (("float64", torch.float64), ("float32", torch.float32))
    for name, options in (("bp", {"rule": "bp"}), ("gait-prop", {"rule": "gait-prop"}),
                          ("gait-prop, targets form", {"rule": "gait-prop",
                                                       "form": "targets"}))]
#: the phases of one GAIT-prop step (Trainer.step's body, in order), then their total
PHASES = ("forward", "targets + local updates", "penalty gradient", "optimiser step",
          "LU refactorisation (layers 2..L)")
TOTAL = "total of the phases"
BREAKDOWN_STEM = "gait-prop"  # the config whose step is split into phases
TARGETS = {"gait-prop": 2.0, "gait-prop, no penalty": 2.0}
#: variant -> the variant its ``matched_ratio`` divides by (the same penalty, rule BP)
MATCHED = {"gait-prop": MATCHED_BP, "gait-prop, no penalty": "bp"}
#: variant -> BP in the same dtype and section (its ``dtype_ratio`` divides by it)
SAME_DTYPE_BP = {
    **{label: "bp, float32" if ("train.dtype", "float32") in extra else "bp"
       for label, _, extra in VARIANTS},
    **{label: f"update: bp, {label.rsplit(', ', 1)[1]}" for label, _, _ in UPDATES}}
#: difference-form variant -> the same variant in the literal form (``form_ratio``)
FORM_PAIRS = {"gait-prop": "gait-prop, targets form",
              "gait-prop, float32": "gait-prop, targets form, float32",
              "update: gait-prop, float64": "update: gait-prop, targets form, float64",
              "update: gait-prop, float32": "update: gait-prop, targets form, float32"}
TRAIN_EXAMPLES = 60_000  # Fashion-MNIST's training set (configs: no validation split)
WARMUP_STEPS = 1  # per variant, untimed (allocations, Adam's state, first LU)
N_BATCHES = 8  # distinct random batches, cycled
SMOKE = {"width": 32, "hidden_layers": 1, "repeats": 2, "steps": 2}
SECTIONS = {"step": "one training step, each variant vs BP",
            "phase": "GAIT-prop's step by phase (a separate trainer), each vs BP's step",
            "update": "the rule's update alone (forward, errors, -<e h^T>; LU factors cached): "
                      "where the two forms differ"}


# ---------------------------------------------------------------------------------------
# setup


@dataclass(frozen=True)
class Sizes:
    """The network and batch every variant shares."""

    width: int  # n: every layer is n x n
    hidden_layers: int  # L - 1 (plus the square output layer: L weight layers)
    batch: int  # B

    @property
    def layers(self) -> int:
        return self.hidden_layers + 1


def overrides(sizes: Sizes) -> list[tuple[str, Any]]:
    """Config overrides common to every variant: the sizes, the CPU."""
    return [("model.width", sizes.width), ("model.hidden_layers", sizes.hidden_layers),
            ("train.batch_size", sizes.batch), ("train.device", "cpu")]


def build_trainer(stem: str, extra: Sequence[tuple[str, Any]], sizes: Sizes) -> Trainer:
    """The variant's trainer, built as ``alignlab train`` builds it (``loop.py``): the
    config, the model in the config's dtype, the optimiser at epoch 1's learning rate."""
    cfg = load_config(CONFIGS / f"{stem}.toml", [*overrides(sizes), *extra])
    dtype = torch.float64 if cfg.train.dtype == "float64" else torch.float32
    model = build_model(cfg.model.name, rng=cfg.train.seed,
                        **dict(cfg.model.options)).to(dtype=dtype)
    if not getattr(model, "learns_by_targets", False):
        raise ValueError(f"`model.name` must be a model trained by layer-local targets, got "
                         f"{cfg.model.name!r} in {stem}.toml.")
    o = cfg.optim
    extra_opt = {"momentum": o.momentum, "nesterov": o.nesterov} if o.name == "sgd" else {
        "betas": o.betas}
    opt = make_optimizer(model, o.name, lr=o.lr_at(1), weight_decay=o.weight_decay_at(1),
                         **extra_opt)
    return Trainer(model, opt, cfg.method.name, **dict(cfg.method.options))


def random_batches(sizes: Sizes, num_classes: int, dtype: torch.dtype, n: int = N_BATCHES,
                   seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches ``x`` (B, width) uniform in [0, 1) and labels (B,) in 0..classes-1."""
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(sizes.batch, sizes.width, generator=gen, dtype=dtype),
             torch.randint(0, num_classes, (sizes.batch,), generator=gen))
            for _ in range(n)]


def phased_step(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """One ``trainer.step(x, y)`` (without the loss it returns), split into :data:`PHASES`;
    returns each phase's seconds. The same operations in the same order as
    ``Trainer.step``, so the weights end bit for bit where ``trainer.step`` puts them."""
    model, rule = trainer.model, trainer.rule
    t = [time.perf_counter()]
    acts = model.activities(x)  # h_l (B, n) and a_l per layer
    t.append(time.perf_counter())
    target = model.output_target(acts.h[-1], y)  # (B, n_L)
    ups = layer_updates(model, acts, rule.errors(model, acts, target))
    t.append(time.perf_counter())
    extras = [penalty_grad(layer.weight, trainer.penalty, trainer.penalty_strength)
              for layer in model.layers]  # (n, n) each, or None
    t.append(time.perf_counter())
    for layer, up, extra in zip(model.layers, ups, extras, strict=True):
        grad = up.weight.neg()
        if extra is not None:
            grad += extra
        layer.weight.grad = grad
        layer.bias.grad = up.bias.neg()
    trainer.optimizer.step()
    t.append(time.perf_counter())
    if rule.needs_inverse:
        model.refresh_inverses()
    t.append(time.perf_counter())
    trainer.steps += 1
    return [b - a for a, b in zip(t, t[1:], strict=False)]


def flops(sizes: Sizes, *, inverts: bool, penalty: bool) -> float:
    """The flop model of one step (module docstring): ``6 n^2 B L``, plus ``2/3 n^3`` per
    layer 2..L for a rule that inverts, plus ``4 n^3 L`` for a penalty."""
    n, b, L = sizes.width, sizes.batch, sizes.layers
    return (6 * n**2 * b * L + (L - 1) * (2 / 3) * n**3 * inverts
            + 4 * n**3 * L * penalty)


def phase_flops(sizes: Sizes) -> list[float]:
    """The flop model of each of :data:`PHASES` (the optimiser: elementwise, not counted)."""
    n, b, L = sizes.width, sizes.batch, sizes.layers
    return [2 * n**2 * b * L, 4 * n**2 * b * L, 4 * n**3 * L, math.nan,
            (L - 1) * (2 / 3) * n**3]


# ---------------------------------------------------------------------------------------
# the benchmark


def build_all(sizes: Sizes) -> dict[str, Trainer]:
    """Every trainer :func:`run` times: one per :data:`VARIANTS` label, ``'phases'`` (the
    breakdown) and, per dtype, ``'update <dtype>'`` (GAIT-prop's network as configured,
    never stepped: the update section's weights)."""
    trainers = {label: build_trainer(stem, extra, sizes) for label, stem, extra in VARIANTS}
    trainers["phases"] = build_trainer(BREAKDOWN_STEM, (), sizes)
    for dt in ("float64", "float32"):
        trainers[f"update {dt}"] = build_trainer(BREAKDOWN_STEM, (("train.dtype", dt),), sizes)
    return trainers


def update_pass(model, rule, x: torch.Tensor, y: torch.Tensor) -> list:
    """The rule's update at the current weights: forward, errors, ``-<e h^T>`` (what
    :func:`alignlab.gaitprop.updates` computes, without its checks)."""
    acts = model.activities(x)
    target = model.output_target(acts.h[-1], y)  # (B, n_L)
    return layer_updates(model, acts, rule.errors(model, acts, target))


def _dtype(trainer: Trainer) -> torch.dtype:
    return next(trainer.model.parameters()).dtype


def run(sizes: Sizes, *, repeats: int, steps: int, steps_per_epoch: int,
        trainers: dict[str, Trainer] | None = None, quiet: bool = True) -> Records:
    """Time every variant, the phases and the updates, interleaved; one row each (see the
    module docstring). ``trainers``: built ones (default: :func:`build_all`)."""
    repeats = check_int("repeats", repeats)
    steps = check_int("steps", steps)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch)
    if trainers is None:
        trainers = build_all(sizes)
    classes = trainers["bp"].model.num_classes
    batches = {dtype: random_batches(sizes, classes, dtype)
               for dtype in (torch.float64, torch.float32)}
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    labels = [label for label, _, _ in VARIANTS]
    update_labels = [label for label, _, _ in UPDATES]
    per_step: dict[str, list[float]] = {k: [] for k in [*labels, *PHASES, TOTAL,
                                                         *update_labels]}
    update_jobs = {}
    for label, options, dtype in UPDATES:
        opts = dict(options)
        model = trainers[f"update {str(dtype).removeprefix('torch.')}"].model
        update_jobs[label] = (model, get_rule(opts.pop("rule"), **opts))
    k = 0

    def batch(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal k
        k += 1
        return batches[dtype][k % N_BATCHES]

    for label in labels:  # warm-up, untimed
        for _ in range(WARMUP_STEPS):
            trainers[label].step(*batch(_dtype(trainers[label])))
    for _ in range(WARMUP_STEPS):
        phased_step(trainers["phases"], *batch())
        for model, rule in update_jobs.values():
            update_pass(model, rule, *batch(model.layers[0].weight.dtype))
    for rep in range(repeats):
        for label in labels:
            trainer = trainers[label]
            todo = [batch(_dtype(trainer)) for _ in range(steps)]
            t0 = time.perf_counter()
            for xb, yb in todo:
                trainer.step(xb, yb)
            per_step[label].append((time.perf_counter() - t0) / steps)
        sums = [0.0] * len(PHASES)
        for _ in range(steps):
            for i, dt in enumerate(phased_step(trainers["phases"], *batch())):
                sums[i] += dt
        for name, s in zip(PHASES, sums, strict=True):
            per_step[name].append(s / steps)
        per_step[TOTAL].append(sum(sums) / steps)
        for label, (model, rule) in update_jobs.items():
            todo = [batch(model.layers[0].weight.dtype) for _ in range(steps)]
            t0 = time.perf_counter()
            for xb, yb in todo:
                update_pass(model, rule, xb, yb)
            per_step[label].append((time.perf_counter() - t0) / steps)
        if not quiet:
            print(f"round {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan

    bp_flops = flops(sizes, inverts=False, penalty=False)
    expected = {}
    for label in labels:
        tr = trainers[label]
        expected[label] = flops(sizes, inverts=tr.rule.needs_inverse,
                                penalty=tr.penalty != "none" and tr.penalty_strength > 0)
    expected.update(zip(PHASES, phase_flops(sizes), strict=True))
    tr = trainers["phases"]
    expected[TOTAL] = flops(sizes, inverts=tr.rule.needs_inverse,
                            penalty=tr.penalty != "none" and tr.penalty_strength > 0)
    for label in update_labels:  # forward, errors (W^T e or a solve pair), -<e h^T>
        expected[label] = bp_flops
    configs = {label: f"{stem}.toml" + "".join(f", {key}={value}" for key, value in extra)
               for label, stem, extra in VARIANTS}
    configs.update({label: f"{BREAKDOWN_STEM}.toml, " + ", ".join(
        f"{key}={value}" for key, value in options.items()) + f", {str(dtype)[6:]}"
        for label, options, dtype in UPDATES})
    base = 1e3 * statistics.median(per_step["bp"])
    median = {name: 1e3 * statistics.median(vals) for name, vals in per_step.items()}
    rows = []
    for name, vals in per_step.items():
        med = median[name]
        ratio = med / base
        target = TARGETS.get(name, "")
        section = ("update" if name in update_labels else "step" if name in configs
                   else "phase")
        same = SAME_DTYPE_BP.get(name)
        form = FORM_PAIRS.get(name)
        rows.append({
            "section": section, "variant": name,
            "config": configs.get(name, f"{BREAKDOWN_STEM}.toml"), "repeats": len(vals),
            "steps": steps, "median_ms": med, "min_ms": 1e3 * min(vals),
            "max_ms": 1e3 * max(vals), "epoch_s": med * steps_per_epoch / 1e3,
            "ratio": ratio, "flop_ratio": expected[name] / bp_flops,
            "matched_ratio": (med / median[MATCHED[name]] if name in MATCHED else math.nan),
            "dtype_ratio": med / median[same] if same else math.nan,
            "form_ratio": med / median[form] if form else math.nan, "target": target,
            "within_target": "" if target == "" else ("yes" if ratio <= target else "no"),
            "width": sizes.width, "hidden_layers": sizes.hidden_layers, "batch": sizes.batch,
            "steps_per_epoch": steps_per_epoch, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "load_1m_start": load0, "load_1m_end": load1,
        })
    return Records(rows)


# ---------------------------------------------------------------------------------------
# command line


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> Records:
    ap = _Parser(prog="bench_gaitprop.py", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=None,
                    help="interleaved rounds (median over them; default 5)")
    ap.add_argument("--steps", type=int, default=None,
                    help="timed steps per variant per round (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--width", type=int, default=None, help="n (default: the configs', 784)")
    ap.add_argument("--hidden-layers", type=int, default=None,
                    help="hidden layers (default: the configs', 4)")
    ap.add_argument("--batch", type=int, default=None, help="B (default: the configs', 60)")
    ap.add_argument("--steps-per-epoch", type=int, default=None,
                    help=f"for the epoch time (default: {TRAIN_EXAMPLES} / batch, rounded up)")
    ap.add_argument("--csv", default=None, help="write the table here (atomically)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny: width 32, 1 hidden layer, 2 rounds of 2 steps (CI)")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    args = ap.parse_args(argv)
    base = load_config(CONFIGS / "bp.toml")
    defaults = {"width": base.model.options["width"],
                "hidden_layers": base.model.options["hidden_layers"],
                "batch": base.train.batch_size, "repeats": 5, "steps": 5}
    if args.smoke:
        defaults.update(SMOKE)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    before = torch.get_num_threads()
    try:  # bad input fails here, in one line, before any timing
        for name in ("repeats", "steps", "threads", "width", "batch"):
            check_int(name, getattr(args, name))
        check_int("hidden_layers", args.hidden_layers, minimum=0)
        if args.steps_per_epoch is None:
            args.steps_per_epoch = -(-TRAIN_EXAMPLES // args.batch)
        check_int("steps_per_epoch", args.steps_per_epoch)
        out = None if args.csv is None else check_output_file(args.csv, name="csv")
        sizes = Sizes(args.width, args.hidden_layers, args.batch)
        torch.set_num_threads(args.threads)
        with torch.random.fork_rng(devices=[]):  # the caller's global generator untouched
            trainers = build_all(sizes)
    except ValueError as exc:
        torch.set_num_threads(before)
        ap.error(str(exc))
    try:
        rec = run(sizes, repeats=args.repeats, steps=args.steps,
                  steps_per_epoch=args.steps_per_epoch, trainers=trainers, quiet=args.quiet)
    finally:
        torch.set_num_threads(before)
    if out is not None:
        write_atomic(out, rec.to_csv, name="csv")
    if not args.quiet:
        r0 = rec[0]
        print(f"torch {r0['torch']}, {r0['threads']} thread(s), CPU, float64 unless the "
              f"variant says float32; width "
              f"{sizes.width}, {sizes.layers} weight layers, batch {sizes.batch}, "
              f"{args.steps_per_epoch} steps/epoch; median over {args.repeats} interleaved "
              f"rounds of {args.steps} steps; load average {r0['load_1m_start']:.2f} -> "
              f"{r0['load_1m_end']:.2f} on {os.cpu_count()} cores")
        for section, title in SECTIONS.items():
            print(f"\n{title}")
            print(Records([{k: r[k] for k in ("variant", "median_ms", "min_ms", "max_ms",
                                              "epoch_s", "ratio", "flop_ratio",
                                              "matched_ratio", "dtype_ratio", "form_ratio",
                                              "target", "within_target")}
                           for r in rec if r["section"] == section]).format(digits=3))
        if out is not None:
            print(f"\nwrote {out}")
    return rec


if __name__ == "__main__":
    main()
