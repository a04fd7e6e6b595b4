"""The reports' subcommands (registered on the ``alignlab`` parser): ``figure3``,
``theory``, ``teacher-student``, ``plot`` and ``compare``.

``alignlab figure3 [--samples N] [--ratios R ...] [--ensemble E] ... [--out DIR]``
``alignlab theory --ratio R [R ...] [--n-out N] [--ensemble E] [--density D] [--csv PATH]``
``alignlab teacher-student [--rule dfa] [--K 2] [--M 2] [--N 1000] [--lr 0.2] ... --out DIR``
``alignlab plot RUN_DIR [RUN_DIR ...] [--out DIR]`` (:mod:`alignlab.reports.curves`)
``alignlab compare RUN_DIR [RUN_DIR ...] [--out DIR] [--samples N] [--seed S] [--device D]``
(:mod:`alignlab.reports.compare`)

Exit statuses (the package's one scheme, :class:`alignlab._exit.ExitStatus`): 0 success; 2 bad input
or an unusable output location (one line, nothing written); 3 Figure 3's claim check
failed (its files are written: Figure 3's, or the teacher-student simulation off its
ODE); 130 interrupted. Importing this module imports nothing
heavy: numpy, torch and matplotlib are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
import time

from .._exit import ExitStatus

__all__ = ["cmd_compare", "cmd_figure3", "cmd_plot", "cmd_teacher_student", "cmd_theory",
           "register"]

#: Internal argument names in error messages -> the flag that sets them, per subcommand
#: (options whose ``dest`` is the internal name, e.g. ``n_out`` -> ``--n-out``, need no
#: entry: alignlab.cli maps those itself).
FIGURE3_FLAGS = {
    "n_samples": "--samples",
    "out_dir": "--out",
    "expansion_ratio": "--ratios",
    "expansion_ratios": "--ratios",
    "n_mid": "--ratios",
}
TEACHER_STUDENT_FLAGS = {
    "out_dir": "--out",
    "t_max": "--t-max",
    "weight_decay": "--weight-decay",
    "per_decade": "--per-decade",
}
THEORY_FLAGS = {
    "ratios": "--ratio",
    "expansion_ratio": "--ratio",
    "n_mid": "--ratio",
}
PLOT_FLAGS = {"out_dir": "--out", "run_dirs": "RUN_DIR"}
COMPARE_FLAGS = {"out_dir": "--out", "run_dirs": "RUN_DIR", "n_samples": "--samples"}


def register(subparsers, parser_class: type[argparse.ArgumentParser] | None = None) -> None:
    """Add ``figure3``, ``theory``, ``teacher-student``, ``plot`` and ``compare`` to
    ``subparsers`` (from ``parser.add_subparsers()``).

    Each subcommand sets ``func`` (a handler taking the parsed namespace and returning an
    exit status) and ``flags`` (internal argument names -> flags, for error messages).
    ``parser_class`` is unused: subparsers are built with the class given to
    ``add_subparsers``.
    """
    del parser_class
    p = subparsers.add_parser(
        "figure3",
        help="regenerate Figure 3 (eigenvalues of B^T B, path alignment) with theory overlaid",
        description="Simulate PFA's converged state R^T = B W over expansion ratios 1..100 "
        "(the paper's protocol by default), write DIR/figure3.{csv,png,pdf,json}, print the "
        "table and check that the simulation sits on Propositions 2 and 3. Exit status 3 "
        "if it does not (the files are written).",
    )
    p.add_argument("--samples", type=int, default=100, help="samples per ratio (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--ensemble", default="uniform",
                   help="law of B's entries: uniform (paper), gaussian, rademacher, "
                        "orthogonal, sparse (default uniform)")
    p.add_argument("--density", type=float, default=None,
                   help="fraction of nonzero entries of B, for an ensemble that takes one "
                        "(sparse; default: the ensemble's own, 0.1)")
    p.add_argument("--method", default="direct", choices=("direct", "wishart"),
                   help="'wishart' samples B^T B directly (gaussian only; cost independent "
                        "of n_mid)")
    p.add_argument("--coupled", action="store_true",
                   help="common random numbers across ratios (each B the first n_mid rows of "
                        "one draw): same law per ratio, correlated across ratios, ~2x faster")
    p.add_argument("--device", default="cpu",
                   help="torch device, e.g. cpu or cuda; must be available (default cpu)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--ratios", type=float, nargs="+", metavar="R",
                   help="expansion ratios (default: the paper's 11 values, logspace(0, 2, 11))")
    p.add_argument("--n-out", type=int, default=100, help="rows of W (default 100)")
    p.add_argument("--n-in", type=int, default=256, help="columns of W (default 256)")
    p.add_argument("--out", default="figures", metavar="DIR",
                   help="output folder, checked before the simulation (default figures/, "
                        "the committed figure: write experiments elsewhere)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_figure3, flags=FIGURE3_FLAGS)

    t = subparsers.add_parser(
        "theory",
        help="print Proposition 2 and 3 predictions for expansion ratios",
        description="Closed-form predictions at R^T = B W: eigenvalue SD of B^T B, path "
        "alignment angle and norm ratio, in the limit and at finite size "
        "(n_mid = floor(n_out r)), and the angle for orthogonal B. No simulation.",
    )
    t.add_argument("--ratio", type=float, nargs="+", action="extend", required=True,
                   metavar="R", help="expansion ratio(s) r = n_mid / n_out (repeatable)")
    t.add_argument("--n-out", type=int, default=100,
                   help="n_out for the finite-size columns (default 100)")
    t.add_argument("--ensemble", default="uniform",
                   help="law of B's entries, sets the kurtosis: uniform (9/5), gaussian (3), "
                        "rademacher (1), sparse (3/density) (default uniform)")
    t.add_argument("--density", type=float, default=None,
                   help="fraction of nonzero entries, for an ensemble that takes one "
                        "(sparse; default: the ensemble's own)")
    t.add_argument("--csv", metavar="PATH",
                   help="also write the table as CSV (the location is checked first)")
    t.set_defaults(func=cmd_theory, flags=THEORY_FLAGS)

    ts = subparsers.add_parser(
        "teacher-student",
        help="teacher-student ODEs of online BP / DFA / FA against the simulation",
        description="Draw teacher-student pairs (erf, N(0, 1) weights), train the students "
        "online with --rule and the contrast rule in the batched simulator, integrate the "
        "order-parameter ODEs from the same start, write DIR/teacher_student.{csv,png,pdf,"
        "json} and check that the simulation follows the ODE within its finite-N band. "
        "Exit status 3 if it does not (the files are written). docs/teacher_student.md.",
    )
    ts.add_argument("--rule", default="dfa", choices=("bp", "dfa", "fa"),
                    help="the student's learning rule (default dfa; fa = dfa in two layers)")
    ts.add_argument("--contrast", default=None, choices=("bp", "dfa", "fa", "none"),
                    help="the rule shown beside it (default bp, or dfa when --rule bp)")
    ts.add_argument("--K", type=int, default=2, help="student hidden units (default 2)")
    ts.add_argument("--M", type=int, default=2, help="teacher hidden units (default 2)")
    ts.add_argument("--N", type=int, default=1000, help="input dimension (default 1000)")
    ts.add_argument("--lr", type=float, default=0.2, help="learning rate (default 0.2)")
    ts.add_argument("--lr2", type=float, default=None,
                    help="second layer's learning rate (default: --lr)")
    ts.add_argument("--t-max", type=float, default=1000.0,
                    help="time to train, in steps / N (default 1000)")
    ts.add_argument("--seeds", type=int, default=5, help="independent draws (default 5)")
    ts.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ts.add_argument("--sigma", type=float, default=0.0, help="teacher output noise SD")
    ts.add_argument("--weight-decay", type=float, default=0.0,
                    help="weight decay per unit time (dv = -wd v dt; default 0)")
    ts.add_argument("--per-decade", type=int, default=10,
                    help="record times per decade of t, log-spaced (default 10)")
    ts.add_argument("--method", default="gram", choices=("gram", "explicit"),
                    help="simulator: gram (exact in law, cost independent of N; default) or "
                         "explicit (the weights in R^N, draw for draw)")
    ts.add_argument("--out", default="teacher-student", metavar="DIR",
                    help="output folder, checked before any work (default teacher-student/)")
    ts.add_argument("--quiet", action="store_true", help="no progress lines")
    ts.set_defaults(func=cmd_teacher_student, flags=TEACHER_STUDENT_FLAGS)

    pl = subparsers.add_parser(
        "plot",
        help="training curves of runs: accuracy, per-layer alignment, norm ratio and "
        "update angle to BP",
        description="Read run directories written by `alignlab train`, pool seeds per "
        "method (label = method name + the options that differ across the runs) and write "
        "DIR/curves.{png,pdf} (the paper's Figure 2/4/5 panels: test accuracy mean ± SD "
        "over epochs; per-layer alignment angle and norm ratio coloured by depth; per-layer "
        "update angle to BP and |W W^T - I|_F at every log point where runs have them) "
        "with DIR/curves_accuracy.csv, DIR/curves_layers.csv and DIR/curves_updates.csv. "
        "See docs/plot.md.",
    )
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                    help="run directories, or folders of runs (a sweep's DIR: its runs); "
                         "other entries (runs.csv, plot/) are skipped with a note")
    pl.add_argument("--out", metavar="DIR",
                    help="output folder (default: <first RUN_DIR's parent>/plot)")
    pl.set_defaults(func=cmd_plot, flags=PLOT_FLAGS)

    from alignlab.reports.compare import DEFAULT_SAMPLES

    c = subparsers.add_parser(
        "compare",
        help="measured alignment of trained runs against each rule's theory and Monte Carlo",
        description="For every layer of every RUN_DIR (any method the harness trains): "
        "measured alignment and norm ratio against epoch beside the theory its method names "
        "(Props. 1-3 dynamics for the PFA family and KP; the sign identity, random "
        "magnitudes, the weight mirror's noise floor, FA's independence null, BP's 0, "
        "GAIT-prop's first-order update angle; 'measured only' where none exists); at the "
        "end, the theory's Monte Carlo band at the layer's exact shapes (for Props. 1-3: at "
        "the fixed point, conditional on the trained W, and of the dynamics at the run's "
        "decay factor), with z-scores. Writes DIR/compare.{csv,png,pdf} and prints the "
        "final rows. See docs/compare.md.",
    )
    c.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories written by `alignlab train`")
    c.add_argument("--out", metavar="DIR",
                   help="output folder (default: <first RUN_DIR's parent>/compare)")
    c.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"Monte Carlo draws per layer, each MC (default {DEFAULT_SAMPLES})")
    c.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")
    c.add_argument("--device", default="cpu",
                   help="torch device of the Monte Carlo, e.g. cpu or cuda (default cpu)")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.set_defaults(func=cmd_compare, flags=COMPARE_FLAGS)


def cmd_figure3(args: argparse.Namespace) -> int:
    """Handler of ``alignlab figure3``: validate the settings and the output folder, then
    simulate, write the four files as one set, and check the claim."""
    from alignlab.reports.figure3 import Figure3Config, ratios_from_cli, run_figure3

    config = Figure3Config(
        n_out=args.n_out,
        n_in=args.n_in,
        ratios=ratios_from_cli(args.ratios),
        n_samples=args.samples,
        seed=args.seed,
        coupled=args.coupled,
        ensemble=args.ensemble,
        density=args.density,
        method=args.method,
        device=args.device,
        dtype=args.dtype,
    )
    progress = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    records, check, paths = run_figure3(config, args.out, progress=progress)
    print(records.format(digits=5))
    print()
    print(check.summary())
    print(f"wrote {', '.join(str(p) for p in paths.values())} "
          f"in {time.perf_counter() - t0:.2f} s")
    return ExitStatus.OK if check.ok else ExitStatus.CLAIM_FAILED


def cmd_theory(args: argparse.Namespace) -> int:
    """Handler of ``alignlab theory``: the table (and its CSV, location checked first)."""
    from alignlab._output import check_output_file, write_atomic
    from alignlab.reports.theory_table import theory_table

    if args.csv is not None:
        check_output_file(args.csv, name="csv")
    table = theory_table(args.ratio, args.n_out, args.ensemble, args.density)
    from alignlab import theory

    options = {} if args.density is None else {"density": args.density}
    k4 = theory.entry_kurtosis(args.ensemble, **options)
    print(f"Propositions 2-3 at R^T = B W; finite size: n_out = {args.n_out}, B {args.ensemble}"
          + "".join(f", {k} {v:g}" for k, v in options.items()) + f" (entry kurtosis {k4:g})")
    print(table.format(digits=5))
    if args.csv is not None:
        print(f"wrote {write_atomic(args.csv, table.to_csv, name='csv')}")
    return ExitStatus.OK


def cmd_teacher_student(args: argparse.Namespace) -> int:
    """Handler of ``alignlab teacher-student``: validate, simulate and integrate, write the
    four files as one set, check the claim."""
    from alignlab.reports.teacher_student import TeacherStudentConfig, run_teacher_student

    config = TeacherStudentConfig(
        rule=args.rule, K=args.K, M=args.M, N=args.N, lr=args.lr, lr2=args.lr2,
        t_max=args.t_max, seeds=args.seeds, seed=args.seed, sigma=args.sigma,
        weight_decay=args.weight_decay, per_decade=args.per_decade, method=args.method,
        contrast=args.contrast)
    progress = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    _results, _records, check, paths = run_teacher_student(config, args.out,
                                                           progress=progress)
    print(check.summary())
    print(f"wrote {', '.join(str(p) for p in paths.values())} "
          f"in {time.perf_counter() - t0:.2f} s")
    return ExitStatus.OK if check.ok else ExitStatus.CLAIM_FAILED


def cmd_plot(args: argparse.Namespace) -> int:
    """Handler of ``alignlab plot``: read the runs, write the figure and its tables as one
    set, print the final-accuracy table."""
    from alignlab.reports.curves import run_plot
    from alignlab.reports.runs import format_final

    final, paths = run_plot(args.run_dirs, args.out,
                            note=lambda msg: print(f"alignlab: plot: {msg}", file=sys.stderr))
    print(format_final(final))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return ExitStatus.OK


def cmd_compare(args: argparse.Namespace) -> int:
    """Handler of ``alignlab compare``: the table, its figure and CSV as one set, and the
    final rows printed."""
    from alignlab.reports.compare import format_summary, run_compare

    progress = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    table, paths = run_compare(args.run_dirs, args.out, n_samples=args.samples,
                               seed=args.seed, device=args.device, progress=progress)
    print(format_summary(table))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return ExitStatus.OK
