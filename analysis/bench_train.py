"""Benchmark: ``alignlab train`` on the Fashion-MNIST MLP, in one run, interleaved.

(a) the epoch time of ``alignlab train``'s loop (``metrics.csv``'s ``epoch_s``: the
    epoch's training steps) for BP against a minimal hand-written torch loop (plain
    ``nn.Linear`` MLP, ``torch.optim.SGD``, the same data tensors, initial weights, batch
    order, batch size and hyperparameters). Target: within 1.10x. Beside them the same
    minimal loop on the model converted to 'bp' (alignlab's custom autograd Function in
    every layer), which splits the gap into the layers' share and the loop's.
(b) each method's epoch time relative to BP's, with the shipped configs
    (``configs/fashion-mnist/<method>.toml``: WM's mirror steps included). Target: PFA
    (r = 10, factored state, the default under SGD) within 1.25x; its explicit-R form
    (``method.state = "explicit"``) beside it.
(c) the cost of the default per-epoch logging (layers.csv: alignment, per-layer scalars
    and the update angle on the probe batch): the epoch's wall time (training steps plus
    its log point, ``epoch_s + log_s``, evaluation and checkpoint included in both) with
    the default logging against ``train.log_layers = false``. Target: under 5%.

Every variant runs once per repeat, in the same order (ABAB...), so slow drifts of a shared
machine hit all of them alike; each row reports the median over repeats, and a ratio is
its median over its baseline's median (so a baseline's ratio is exactly 1). One epoch per
run (``--steps N`` limits it to N steps via ``data.limit``).

    .venv/bin/python analysis/bench_train.py [--steps N] [--repeats 5] [--threads 1]
        [--device cpu] [--out bench_train.csv]

``--data synthetic --sizes 20,32,4`` runs the same protocol on a small teacher-student
problem (the smoke test). No assertion here: the numbers are for the reader.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from alignlab._output import check_output_file, write_atomic
from alignlab._records import Records
from alignlab.train import load_config, train
from alignlab.train.rundir import read_csv

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "fashion-mnist"

#: (part, label, config file stem, extra --set overrides); the first row of a part is its
#: baseline
VARIANTS: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    ("a", "minimal torch loop (BP)", None, ()),
    ("a", "minimal loop, alignlab BP layers", None, ("convert",)),
    ("a", "alignlab train: bp", "bp", ()),
    ("b", "bp", "bp", ()),
    ("b", "fa", "fa", ()),
    ("b", "dfa", "dfa", ()),
    ("b", "usf", "usf", ()),
    ("b", "kp", "kp", ()),
    ("b", "wm", "wm", ()),
    ("b", "pfa (r=10, factored)", "pfa", ("method.state=factored",)),
    ("b", "pfa (r=10, explicit R)", "pfa", ("method.state=explicit",)),
    ("b", "pfa-o (factored)", "pfa-o", ("method.state=factored",)),
    ("c", "bp, logging off", "bp", ("train.log_layers=false",)),
    ("c", "bp, default logging", "bp", ()),
]
TARGETS = {"alignlab train: bp": 1.10, "pfa (r=10, factored)": 1.25,
           "bp, default logging": 1.05}
PART_TITLES = {"a": "(a) alignlab train vs a minimal torch loop: epoch_s",
               "b": "(b) each method vs BP: epoch_s",
               "c": "(c) default logging vs none: epoch_s + log_s"}


def _overrides(args, stem: str | None) -> list[str]:
    """--set overrides common to every run of this benchmark."""
    sets = ["train.epochs=1", f"train.device={args.device}"]
    if args.data == "synthetic":
        sizes = [int(s) for s in args.sizes.split(",")]
        sets += ["data.name=synthetic", f"data.input_shape=[{sizes[0]}]",
                 f"data.num_classes={sizes[-1]}", f"data.n_train={args.n_train}",
                 f"data.n_test={args.n_train // 4}",
                 f"model.sizes=[{','.join(map(str, sizes))}]"]
        if stem == "wm":  # the shipped 250 initial mirror steps dwarf a smoke epoch
            sets += ["wm.initial_steps=5"]
    if args.steps is not None:
        sets.append(f"data.limit={args.steps * args.batch_size}")
    sets.append(f"train.batch_size={args.batch_size}")
    return sets


def _config(args, stem: str, extra: Sequence[str] = ()):
    return load_config(CONFIGS / f"{stem}.toml", [*_overrides(args, stem), *extra])


def run_harness(args, stem: str, extra: Sequence[str], work: Path) -> dict[str, float]:
    """One ``alignlab train`` run of one epoch; its epoch-1 timings."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    train(_config(args, stem, extra), run_dir, quiet=True)
    row = read_csv(run_dir / "metrics.csv")[1]
    return {"epoch_s": float(row["epoch_s"]), "wall_s": float(row["epoch_s"]) +
            float(row["log_s"])}


def run_minimal(args, convert_layers: bool = False) -> dict[str, float]:
    """The minimal loop: what the harness's BP epoch does, written plainly (with
    ``convert_layers``, on the model converted to 'bp', i.e. through alignlab's custom
    autograd Function: the layers' share of the harness's cost, apart from the loop's)."""
    from alignlab.models import build_model
    from alignlab.train import build_run

    cfg = _config(args, "bp")
    o = cfg.optim
    run = build_run(cfg)  # the harness's seeds, device, data (and BP-converted model)
    device = run.device
    x, y = run.train.x, run.train.y  # (N, ...) and (N,)
    if convert_layers:
        model = run.model  # converted to 'bp': alignlab's autograd Function in every layer
    else:  # plain nn.Linear layers with the harness's initial weights
        model = build_model(cfg.model.name, rng=run.seeds["model"],
                            **dict(cfg.model.options)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=o.lr_at(1), momentum=o.momentum,
                          weight_decay=o.weight_decay_at(1))
    gen = torch.Generator().manual_seed(run.seeds["batches"])  # the harness's batch order
    bs, n = cfg.train.batch_size, x.shape[0]
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen).to(device)
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"epoch_s": time.perf_counter() - t0, "wall_s": float("nan")}


def run(args) -> Records:
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    times: dict[str, list[dict[str, float]]] = {label: [] for _, label, _, _ in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        work = Path(tmp)
        run_minimal(args)  # warm-up, untimed: imports, allocator, BLAS, the data files
        run_harness(args, "bp", (), work)
        for rep in range(args.repeats):
            for _part, label, stem, extra in VARIANTS:
                t = (run_minimal(args, "convert" in extra) if stem is None
                     else run_harness(args, stem, extra, work))
                times[label].append(t)
            if not args.quiet:
                print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for part in PART_TITLES:
        members = [(label, stem) for p, label, stem, _ in VARIANTS if p == part]
        base_label = members[0][0]
        key = "wall_s" if part == "c" else "epoch_s"
        base = statistics.median(t[key] for t in times[base_label])
        for label, _stem in members:
            vals = [t[key] for t in times[label]]
            med = statistics.median(vals)
            target = TARGETS.get(label, "")
            ratio = med / base
            rows.append({
                "part": part, "variant": label, "measure": key, "repeats": len(vals),
                "median_s": med, "min_s": min(vals), "max_s": max(vals),
                "baseline": base_label, "ratio": ratio, "target": target,
                "within_target": "" if target == "" else ("yes" if ratio <= target
                                                            else "no"),
                "threads": args.threads, "steps": args.steps if args.steps else "epoch",
                "load_1m_start": load0, "load_1m_end": load1,
            })
    return Records(rows)


def main(argv: Sequence[str] | None = None) -> Records:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None,
                    help="optimiser steps per epoch (default: the whole training set)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data", default="fashion-mnist", choices=("fashion-mnist", "synthetic"))
    ap.add_argument("--sizes", default="20,32,4",
                    help="MLP sizes with --data synthetic (input, hidden..., classes)")
    ap.add_argument("--n-train", type=int, default=512, help="examples with --data synthetic")
    ap.add_argument("--out", default="bench_train.csv", help="CSV of the table")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    for name in ("repeats", "threads", "batch_size"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.steps is not None and args.steps < 1:
        ap.error("--steps must be >= 1")
    out = check_output_file(args.out, name="out")
    rec = run(args)
    write_atomic(out, rec.to_csv)
    if not args.quiet:
        print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, "
              f"batch {args.batch_size}, {rec[0]['steps']} steps/epoch, median of "
              f"{args.repeats} interleaved repeats; load average {rec[0]['load_1m_start']:.2f}"
              f" -> {rec[0]['load_1m_end']:.2f} on {os.cpu_count()} cores")
        for part, title in PART_TITLES.items():
            print(f"\n{title}")
            print(Records([{k: r[k] for k in ("variant", "median_s", "min_s", "max_s",
                                              "ratio", "target", "within_target")}
                           for r in rec if r["part"] == part]).format(digits=4))
        print(f"\nwrote {out}")
    return rec


if __name__ == "__main__":
    main()
