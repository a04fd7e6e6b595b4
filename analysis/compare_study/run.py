"""Regenerate the compare study of issue 8 (theory against training), with one command.

    python analysis/compare_study/run.py                    # the study: hours on a CPU
    python analysis/compare_study/run.py --jobs 4 --mc-device cuda --resnet   # on a GPU box
    python analysis/compare_study/run.py --smoke            # 1 seed, 1 epoch, 2000 examples
    python analysis/compare_study/run.py --dry-run          # print what would run
    python analysis/compare_study/run.py --groups ratios --set train.epochs=10   # shorter

Step 1 trains: one ``alignlab sweep`` per group of :data:`GROUPS` into ``RUNS/<group>/``
(default ``runs/compare_study``), every grid point for seeds 0, 1, 2. Re-running the
command skips completed runs and resumes interrupted ones (the sweep's own rule), so an
interrupted study is finished by running it again.

Step 2 compares: one ``alignlab compare`` per question of :data:`COMPARISONS` into
``OUT/<question>/compare.{csv,png,pdf}`` (default ``docs/compare_study``), each printing its
table. Only completed runs are compared (others are listed and left out). Step 3 writes
``OUT/summary.md``, every question's table with seeds pooled, and ``OUT/rules.{md,png,pdf}``,
issue 15's table and figure of every rule (``summarise.py``).

The configs in this folder (``base = ...`` chains onto ``configs/fashion-mnist``; see each
file's header) are the study: PFA at r = 1, 2, 5, 10, 20, 50 with the paper's decay
schedule; PFA-o and PFA-id; sparse PFA at densities 1, 0.5, 0.2, 0.1; no, weak and strong
decay; Adam instead of SGD; optionally ResNet-20 (``--resnet``). ``docs/compare.md``
explains the comparison; ``tests/reports/test_compare.py`` loads every grid point of every
config through the harness's config loader.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEEDS = (0, 1, 2)
SEED_KEY = "train.seed"
#: --smoke: every group and question, one seed, a short schedule on a subset (minutes)
SMOKE_SETS = ("train.epochs=1", "data.limit=2000", "train.log_every_steps=8")


@dataclass(frozen=True)
class Group:
    """One sweep: config files of this folder and a grid (the seeds are added to it)."""

    name: str
    configs: tuple[str, ...]
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    optional: bool = False  # run only when asked for (--resnet)

    def config_paths(self) -> list[Path]:
        return [HERE / c for c in self.configs]

    def full_grid(self, seeds: tuple[int, ...]) -> list[tuple[str, list[Any]]]:
        return [(k, list(v)) for k, v in self.grid] + [(SEED_KEY, list(seeds))]

    def points(self, seeds: tuple[int, ...] = SEEDS):
        """``(config path, [(key, value), ...])`` for every run of the group."""
        grid = self.full_grid(seeds)
        for config in self.config_paths():
            for combo in itertools.product(*(values for _, values in grid)):
                yield config, list(zip([k for k, _ in grid], combo, strict=True))


GROUPS: tuple[Group, ...] = (
    Group("ratios", ("pfa.toml",), (("method.expansion_ratio", (1, 2, 5, 10, 20, 50)),)),
    Group("variants", ("pfa-o.toml", "pfa-id.toml")),
    Group("sparse", ("pfa-sparse.toml",), (("method.density", (1, 0.5, 0.2, 0.1)),)),
    Group("decay", ("pfa-decay-none.toml", "pfa-decay-weak.toml", "pfa-decay-strong.toml")),
    Group("optimizer", ("pfa-adam.toml",)),
    Group("resnet20", ("resnet20-pfa.toml",), (("method.expansion_ratio", (1, 10)),),
          optional=True),
    # issue 15: the fixed point reached (strong decay after the burst, c_40 = 0.0046)
    Group("fixedpoint", ("pfa-decay-strong.toml",), (("method.expansion_ratio", (10, 2)),)),
    # issue 15: the same at twice the hidden width (does the per-seed spread shrink?)
    Group("fixedpoint-wide", ("pfa-decay-strong-wide.toml",),
          (("method.expansion_ratio", (10, 2)),)),
    Group("fixedpoint-wider", ("pfa-decay-strong-wider.toml",),
          (("method.expansion_ratio", (10, 2)),), optional=True),
    # issue 15: KP with a decay at which W - B_KP decays within the run
    Group("kp", ("kp-decay.toml",)),
    # issue 15: the weight mirror's floor at three effective sample sizes
    Group("mirror", ("wm.toml",), (("wm.n_samples", (16, 64, 256)),)),
    # issue 15: sign-concordant feedback and FA
    Group("sign", ("usf.toml", "brsf.toml", "frsf.toml", "fa.toml")),
    # issue 15: BP (every angle 0) and DFA (update angle, measured only)
    Group("other", ("bp.toml", "dfa.toml")),
)

#: question -> the runs it compares: (group, glob of run-folder names). Run folders are
#: named by the sweep ``<config-stem>__<key>=<value>__...``.
COMPARISONS: dict[str, tuple[tuple[str, str], ...]] = {
    # every expansion ratio on the Figure 3 curve; hidden layers vs the classifier
    "ratios": (("ratios", "*"),),
    # B^T B = I (fixed point 0 deg) next to iid B at the same ratio
    "variants": (("variants", "*"), ("ratios", "pfa__method.expansion_ratio=1__*")),
    # masks break Proposition 1: how far off
    "sparse": (("sparse", "*"),),
    # the residual of R_0 sets the final angle: no / weak / paper / strong decay at r = 10
    "decay": (("decay", "*"), ("ratios", "pfa__method.expansion_ratio=10__*")),
    # Adam (no Proposition 1) against SGD at r = 10
    "optimizer": (("optimizer", "*"), ("ratios", "pfa__method.expansion_ratio=10__*")),
    "resnet20": (("resnet20", "*"),),
    # issue 15: hidden layers on the finite-size fixed point at r = 10 and r = 2
    "fixedpoint": (("fixedpoint", "*"),),
    "fixedpoint-wide": (("fixedpoint-wide", "*"),),
    "fixedpoint-wider": (("fixedpoint-wider", "*"),),
    "kp": (("kp", "*"),),
    "mirror": (("mirror", "*"),),
    "sign": (("sign", "*"),),
    "other": (("other", "*"),),
}


def _summarise():
    """``summarise.py`` beside this file (a script folder, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("compare_study_summarise",
                                                  HERE / "summarise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def completed_runs(runs_root: Path, sources: tuple[tuple[str, str], ...]
                   ) -> tuple[list[Path], list[Path]]:
    """The run folders a question compares: (completed, other) in name order."""
    from alignlab.train.rundir import read_summary

    done, other = [], []
    for group, pattern in sources:
        for path in sorted((runs_root / group).glob(pattern)):
            if not path.is_dir() or not (path / "config.toml").is_file():
                continue
            summary = read_summary(path) or {}
            (done if summary.get("status") == "completed" else other).append(path)
    return done, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, help="run folder (default runs/compare_study, "
                        "or runs/compare_study_smoke with --smoke)")
    parser.add_argument("--out", type=Path, help="results folder (default docs/compare_study, "
                        "or RUNS/compare with --smoke)")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at a time (2)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: "
                        "cores // jobs)")
    parser.add_argument("--launcher", default="local", choices=("local", "inline"),
                        help="how the sweeps run their runs (alignlab sweep --launcher)")
    parser.add_argument("--groups", nargs="+", metavar="GROUP",
                        help=f"only these groups/questions ({', '.join(g.name for g in GROUPS)})")
    parser.add_argument("--resnet", action="store_true", help="also the ResNet-20 group")
    parser.add_argument("--smoke", action="store_true",
                        help="one seed, one epoch on 2000 examples (checks the pipeline)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help=f"training seeds (default {' '.join(map(str, SEEDS))})")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run, e.g. train.epochs=10 (repeatable)")
    parser.add_argument("--samples", type=int, default=None,
                        help="Monte Carlo draws per layer (default: alignlab compare's)")
    parser.add_argument("--mc-device", default="cpu", help="device of the Monte Carlo")
    parser.add_argument("--skip-training", action="store_true", help="step 2 only")
    parser.add_argument("--skip-compare", action="store_true",
                        help="step 1 only, and only the groups asked for (not those a "
                        "question borrows from)")
    parser.add_argument("--dry-run", action="store_true", help="print, run nothing")
    args = parser.parse_args(argv)

    from alignlab.reports.compare import DEFAULT_SAMPLES, format_summary, run_compare
    from alignlab.train import run_sweep

    seeds = tuple(args.seeds) if args.seeds else (0,) if args.smoke else SEEDS
    sets = (list(SMOKE_SETS) if args.smoke else []) + args.sets
    runs_root = args.runs or REPO / ("runs/compare_study_smoke" if args.smoke
                                     else "runs/compare_study")
    out_root = args.out or (runs_root / "compare" if args.smoke
                            else REPO / "docs/compare_study")
    names = {g.name for g in GROUPS}
    wanted = set(args.groups or [g.name for g in GROUPS if not g.optional])
    if args.resnet:
        wanted.add("resnet20")
    unknown = sorted(wanted - names)
    if unknown:
        parser.error(f"--groups: unknown {', '.join(unknown)} (known: {', '.join(names)})")

    status = 0
    if not args.skip_training:  # ---- step 1: the sweeps ----------------------------------
        # a question also reads groups it borrows from (decay uses ratios' r = 10 runs)
        needed = wanted if args.skip_compare else (
            wanted | {g for q in wanted for g, _ in COMPARISONS[q]})
        for group in GROUPS:
            if group.name not in needed:
                continue
            print(f"== sweep {group.name}: {', '.join(group.configs)}", flush=True)
            status |= run_sweep(group.config_paths(), group.full_grid(seeds), sets=sets,
                                jobs=args.jobs, out=runs_root / group.name,
                                launcher=args.launcher, dry_run=args.dry_run,
                                threads=args.threads)

    for question, sources in COMPARISONS.items():  # ---- step 2: the comparisons -----------
        if question not in wanted or args.skip_compare:
            continue
        out = out_root / question
        if args.dry_run:
            where = " ".join(str(runs_root / g / p) for g, p in sources)
            print(f"== compare {question}: alignlab compare {where} --out {out}")
            continue
        done, other = completed_runs(runs_root, sources)
        for path in other:
            print(f"compare {question}: left out {path} (not completed)", file=sys.stderr)
        if not done:
            print(f"compare {question}: no completed runs, nothing compared", file=sys.stderr)
            status |= 1
            continue
        print(f"== compare {question}: {len(done)} runs -> {out}", flush=True)
        table, paths = run_compare(done, out, n_samples=args.samples or DEFAULT_SAMPLES,
                                   device=args.mc_device,
                                   progress=lambda m: print(m, file=sys.stderr, flush=True))
        print(format_summary(table), flush=True)
    if not args.dry_run and not args.skip_compare:  # ---- step 3: the Markdown tables ------
        summarise = _summarise()
        for target in [summarise.write_summary(out_root), *summarise.write_rules(out_root)]:
            if target is not None:
                print(f"== wrote {target}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
