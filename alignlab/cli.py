"""The ``alignlab`` command.

Subcommands
-----------
``alignlab figure3``  regenerate Figure 3 of the PFA paper (CSV, PNG, PDF) and check its claim
``alignlab theory``   print the closed-form predictions for a list of expansion ratios

Bad arguments print one line, ``alignlab: error: ...``, and exit with status 2; a Figure 3
whose simulation misses the theory exits with status 1 after writing its files.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and point to --help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_figure3(sub) -> None:
    p = sub.add_parser(
        "figure3",
        help="regenerate Figure 3 (eigenvalues of B^T B, path alignment) with theory overlaid",
        description="Simulate PFA's converged state R^T = B W over expansion ratios 1..100 "
        "(the paper's protocol by default), write DIR/figure3.{csv,png,pdf,json}, print the "
        "table and check that the simulation sits on Propositions 2 and 3.",
    )
    p.add_argument("--samples", type=int, default=100, help="samples per ratio (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--ensemble", default="uniform",
                   help="law of B's entries: uniform (paper), gaussian, rademacher, "
                        "orthogonal, sparse (default uniform)")
    p.add_argument("--density", type=float, default=0.1,
                   help="fraction of nonzero entries of B, ensemble sparse only (default 0.1)")
    p.add_argument("--method", default="direct", choices=("direct", "wishart"),
                   help="'wishart' samples B^T B directly (gaussian only; cost independent "
                        "of n_mid)")
    p.add_argument("--coupled", action="store_true",
                   help="common random numbers across ratios (each B the first n_mid rows of "
                        "one draw): same law per ratio, correlated across ratios, ~2x faster")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--ratios", type=float, nargs="+", metavar="R",
                   help="expansion ratios (default: the paper's 11 values, logspace(0, 2, 11))")
    p.add_argument("--n-out", type=int, default=100, help="rows of W (default 100)")
    p.add_argument("--n-in", type=int, default=256, help="columns of W (default 256)")
    p.add_argument("--out", default="figures", metavar="DIR",
                   help="output folder (default figures/)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_figure3)


def _cmd_figure3(args: argparse.Namespace) -> int:
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
    return 0 if check.ok else 1


def _add_theory(sub) -> None:
    p = sub.add_parser(
        "theory",
        help="print Proposition 2 and 3 predictions for expansion ratios",
        description="Closed-form predictions at R^T = B W: eigenvalue SD of B^T B, path "
        "alignment angle and norm ratio, in the limit and at finite size (n_mid = int(n_out r)).",
    )
    p.add_argument("--ratio", type=float, nargs="+", action="extend", required=True,
                   metavar="R", help="expansion ratio(s) r = n_mid / n_out (repeatable)")
    p.add_argument("--n-out", type=int, default=100,
                   help="n_out for the finite-size columns (default 100)")
    p.add_argument("--ensemble", default="uniform",
                   help="law of B's entries, sets the kurtosis: uniform (9/5), gaussian (3), "
                        "rademacher (1), sparse (3/density) (default uniform)")
    p.add_argument("--density", type=float, default=0.1,
                   help="fraction of nonzero entries, ensemble sparse only (default 0.1, "
                        "as in alignlab.sim)")
    p.add_argument("--csv", metavar="PATH", help="also write the table as CSV")
    p.set_defaults(func=_cmd_theory)


def theory_table(ratios: Sequence[float], n_out: int = 100, ensemble: str = "uniform",
                 density: float = 0.1):
    """The ``alignlab theory`` table as Records (one row per ratio)."""
    import numpy as np

    from alignlab import theory
    from alignlab._records import Records
    from alignlab._validate import check_int, check_positive

    r = np.atleast_1d(check_positive("ratio", list(ratios)))
    n_out = check_int("n_out", n_out)
    k4 = theory.entry_kurtosis(ensemble, **({"density": density} if ensemble == "sparse" else {}))
    n_mid = np.array([check_int("n_mid", int(n_out * x)) for x in r])
    cols = {
        "ratio": r,
        "lambda": 1.0 / r,
        "angle_deg": theory.path_alignment_angle(r),
        "cos": theory.path_alignment_cos(r),
        "norm_ratio": theory.path_norm_ratio(r),
        "eig_sd": theory.eigenvalue_sd(r),
        "n_mid": n_mid,
        "angle_finite_deg": theory.path_alignment_angle_finite(n_out, n_mid, k4),
        "norm_ratio_finite": theory.path_norm_ratio_finite(n_out, n_mid, k4),
        "eig_sd_finite": theory.eigenvalue_sd_finite(n_out, n_mid, k4),
        "m2_finite": theory.mp_second_moment_finite(n_out, n_mid, k4),
        "pfa_o_angle_deg": theory.path_alignment_angle_orthogonal(r),
    }
    rows = [
        {k: (int(v[i]) if k == "n_mid" else float(v[i])) for k, v in cols.items()}
        for i in range(r.size)
    ]
    return Records(rows, list(cols))


def _cmd_theory(args: argparse.Namespace) -> int:
    table = theory_table(args.ratio, args.n_out, args.ensemble, args.density)
    print(f"Propositions 2-3 at R^T = B W; finite size: n_out = {args.n_out}, "
          f"B {args.ensemble}")
    print(table.format(digits=5))
    if args.csv:
        print(f"wrote {table.to_csv(args.csv)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from alignlab import __version__

    parser = _Parser(
        prog="alignlab",
        description="Theory and analysis of alignment dynamics in feedback-alignment learning "
        "rules (PFA, FA, DFA, SF, KP, WM, GAIT-prop).",
    )
    parser.add_argument("--version", action="version", version=f"alignlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_figure3(sub)
    _add_theory(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad input found by the library: one line, no traceback
        print(f"alignlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alignlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
