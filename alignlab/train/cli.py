"""The ``train`` and ``sweep`` subcommands (registered on the ``alignlab`` parser).

``alignlab train CONFIG [--set KEY=VALUE ...] [--out RUN_DIR]``
``alignlab train --resume RUN_DIR [--set train.epochs=N]`` (continue, or extend, a run)
``alignlab sweep CONFIG [CONFIG ...] --grid KEY=V1,V2,... [--grid ...] [--jobs N] [--out DIR]
[--launcher local|inline|submitit] [--slurm-partition P --slurm-time MIN ...]``
``torchrun --nproc-per-node=N -m alignlab train CONFIG``: one run over N processes (DDP)

Exit statuses (the package's one scheme, :class:`alignlab._exit.ExitStatus`): 0 success; 1 a
crash (a bug); 2 bad input or an unusable output folder (one line ``alignlab: error: ...``,
nothing written); 4 training diverged (NaN/inf loss; the last good checkpoint is kept); 5
the run folder could not be written mid-run (no space left on device; it holds the last
complete epoch, ``--resume`` continues); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM):
``summary.json`` says interrupted either way. torch and the harness are imported inside
the handlers, so registering costs nothing.
"""

from __future__ import annotations

import argparse
import sys

from .._exit import ExitStatus

__all__ = ["cmd_sweep", "cmd_train", "register"]


def register(subparsers, parser_class: type[argparse.ArgumentParser] | None = None) -> None:
    """Add ``train`` and ``sweep`` to ``subparsers`` (from ``parser.add_subparsers()``).

    The subparsers build their parsers with the class given to ``add_subparsers``
    (``parser_class=``); ``parser_class`` is accepted for symmetry with the other
    ``register`` functions and unused. Each subcommand sets ``func`` to a handler taking
    the parsed namespace and returning an exit status.
    """
    del parser_class
    p = subparsers.add_parser(
        "train",
        help="train one network from a TOML config (or resume a run directory)",
        description="Train a network converted to a credit-assignment method, logging "
        "accuracy, alignment and update angles every epoch into a run directory "
        "(config.toml, metrics.csv, layers.csv, checkpoint.pt, summary.json). "
        "See docs/training.md.",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG", help="TOML config file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=0.1 (value parsed as a "
                        "TOML literal; bare words are strings); repeatable")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="run directory (default runs/<config-stem>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint (with --set "
                        "train.epochs=N: extend it to N epochs)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)

    s = subparsers.add_parser(
        "sweep",
        help="run a grid of configs (methods x seeds x any key) as parallel processes",
        description="Run every point of the grid as its own run directory under DIR "
        "(skipping completed runs, resuming interrupted ones) and write DIR/runs.csv and "
        "DIR/summary.csv (mean and SD of the final metrics over train.seed).",
    )
    s.add_argument("configs", nargs="+", metavar="CONFIG",
                   help="TOML config file(s); the grid runs for each (e.g. one per method)")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a grid axis, e.g. --grid method.name=bp,fa --grid train.seed=0,1,2; "
                        "repeatable")
    s.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key for every run; repeatable")
    s.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="runs at a time (default 1); each gets cores // N threads")
    s.add_argument("--threads", type=int, metavar="T",
                   help="torch threads per local run (default cores // N); 1 when other work "
                        "shares the machine")
    s.add_argument("--out", metavar="DIR",
                   help="sweep folder (default runs/<config-stem>-sweep-<hash of the CONFIG "
                        "paths>)")
    s.add_argument("--on-change", default="stop", choices=("stop", "new"),
                   help="a run folder holding a run made with other settings (apart from "
                        "train.epochs): stop before any work, naming the keys (default), or "
                        "new: run that point in <run>~<hash of its config> beside it")
    s.add_argument("--launcher", default="local", choices=("local", "inline", "submitit"),
                   help="where runs execute: local (default; --jobs subprocesses on this "
                        "machine), inline (one after another in this process) or submitit "
                        "(one Slurm job per run, --jobs at a time; needs alignlab[cluster])")
    g = s.add_argument_group("submitit / Slurm (with --launcher submitit)")
    g.add_argument("--submitit-cluster", dest="cluster", default="auto",
                   choices=("auto", "slurm", "local"),
                   help="auto (default: Slurm where sbatch exists, else submitit's local "
                        "executor), slurm, or local (every run at once on this machine)")
    g.add_argument("--slurm-partition", metavar="NAME", help="the partition (queue)")
    g.add_argument("--slurm-time", type=int, metavar="MINUTES",
                   help="time limit of each job in minutes (a run cut short resumes when the "
                        "sweep is re-run)")
    g.add_argument("--slurm-gpus-per-node", type=int, metavar="N", help="GPUs per job")
    g.add_argument("--slurm-cpus-per-task", type=int, metavar="N",
                   help="CPU cores per job (also each run's torch threads)")
    g.add_argument("--slurm-mem-gb", type=float, metavar="GB", help="memory per job")
    g.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="any other #SBATCH option, e.g. --slurm-param account=lab "
                        "--slurm-param qos=high; repeatable")
    s.add_argument("--dry-run", action="store_true",
                   help="validate every grid point and list the runs, run nothing")
    s.set_defaults(func=cmd_sweep)


def cmd_train(args: argparse.Namespace) -> int:
    """Handler of ``alignlab train`` (under torchrun: one rank of a distributed run)."""
    from .loop import Diverged, WriteFailed, train
    from .rundir import default_run_dir, prepare_resume
    from .world import World

    world = World.from_env()
    if args.resume is not None:
        if args.config is not None or args.out is not None:
            raise ValueError("`--resume` takes no CONFIG or --out (the run's config.toml is "
                             "used; only --set train.epochs=N, to extend it), got "
                             f"{'CONFIG' if args.config is not None else '--out'}.")
        config, run_dir = prepare_resume(args.resume, args.sets)
        resume = True
    else:
        if args.config is None:
            raise ValueError("`CONFIG` must be given (or --resume RUN_DIR), got neither.")
        from .config import load_config

        config = load_config(args.config, args.sets)
        run_dir = args.out if args.out is not None else default_run_dir(args.config, args.sets)
        resume = False
    quiet = args.quiet or not world.is_main
    try:
        result = train(config, run_dir, resume=resume, quiet=quiet, world=world)
    except Diverged as exc:
        if world.is_main:
            print(f"alignlab: training diverged: {exc}", file=sys.stderr)
        return ExitStatus.DIVERGED
    except WriteFailed as exc:
        if world.is_main:
            print(f"alignlab: error: {exc}", file=sys.stderr)
        return ExitStatus.WRITE_FAILED
    if not quiet:
        print(result.describe())
    return ExitStatus.OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """Handler of ``alignlab sweep``."""
    from .sweep import parse_grid, run_sweep

    params = {}
    for item in args.slurm_param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"`--slurm-param` must be KEY=VALUE (e.g. account=lab), got "
                             f"{item!r}.")
        params[key.strip()] = value.strip()
    slurm = {"partition": args.slurm_partition, "time": args.slurm_time,
             "gpus_per_node": args.slurm_gpus_per_node,
             "cpus_per_task": args.slurm_cpus_per_task, "mem_gb": args.slurm_mem_gb,
             "params": params}
    grid = parse_grid(args.grid)
    return run_sweep(args.configs, grid, sets=args.sets, jobs=args.jobs, out=args.out,
                     launcher=args.launcher, dry_run=args.dry_run, cluster=args.cluster,
                     slurm=slurm, threads=args.threads, on_change=args.on_change)
