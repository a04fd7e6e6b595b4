"""The ``alignlab`` command (also ``python -m alignlab``).

Subcommands
-----------
``alignlab figure3``  regenerate Figure 3 of the PFA paper (CSV, PNG, PDF, JSON) and check
                      its claim (:mod:`alignlab.reports.cli`)
``alignlab theory``   print the closed-form predictions for a list of expansion ratios
``alignlab train``    train one network from a TOML config (:mod:`alignlab.train.cli`)
``alignlab sweep``    run a grid of training configs
``alignlab plot``     training curves of run directories (:mod:`alignlab.reports.curves`,
                      registered with the other reports in :mod:`alignlab.reports.cli`)
``alignlab compare``  measured alignment of run directories against Propositions 1-3 and
                      the Monte Carlo at each layer's shapes (:mod:`alignlab.reports.compare`)

Exit statuses (one scheme for every subcommand)
-----------------------------------------------
===  ======================================================================================
0    success
1    unexpected crash: a traceback, i.e. a bug (please report it)
2    bad input or unusable output location: one line ``alignlab: error: ...`` naming the
     flag, and nothing written
3    the report ran and wrote its files, but the claim it checks FAILED
4    training diverged (NaN/inf loss); the last good checkpoint is kept
5    training could not write its run folder (e.g. no space left on device): one line;
     the folder holds the last complete epoch and ``--resume`` continues it
130  interrupted (Ctrl-C, or the reader of the output closed the pipe); outputs are
     written as complete sets or not at all
143  terminated (SIGTERM), handled as Ctrl-C: a run's ``summary.json`` says interrupted
===  ======================================================================================

Command modules
---------------
Each module in :data:`COMMAND_MODULES` provides ``register(subparsers, parser_class)``,
which adds its subparsers, each with ``set_defaults(func=handler)``; a handler takes the
parsed namespace and returns an exit status. Modules are imported when the parser is
built, so they must import nothing heavy at module level (``alignlab theory`` must not
import torch). Library errors name internal arguments (```n_samples` must be ...``); the
CLI rewrites the backticked name into the flag that sets it (```--samples` must be ...``):
an option whose ``dest`` is the name maps automatically (``n_out`` -> ``--n-out``), other
names through the module's optional ``FLAGS`` dict and the subcommand's
``set_defaults(flags={...})`` (which wins).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from ._exit import ExitStatus
from ._signals import Terminated, sigterm_as_interrupt

__all__ = ["COMMAND_MODULES", "EPILOG", "ExitStatus", "build_parser", "flag_message", "main"]

#: The modules whose ``register(subparsers, parser_class)`` adds the subcommands, in order.
COMMAND_MODULES: tuple[str, ...] = (
    "alignlab.reports.cli",  # figure3, theory, teacher-student, plot, compare
    "alignlab.train.cli",  # train, sweep
)


EPILOG = """\
exit status: 0 success; 1 crash (a bug: traceback); 2 bad input or unusable output
location (one line, nothing written); 3 a report's claim check failed (files written);
4 training diverged (last good checkpoint kept); 5 a run could not write its folder (no
space left on device: --resume continues); 130 interrupted; 143 terminated (SIGTERM, as
Ctrl-C). See docs/cli.md."""


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage block) and point to --help."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(ExitStatus.BAD_INPUT, f"alignlab: error: {message} (see {self.prog} --help)\n")


def _flag_map(parser: argparse.ArgumentParser, *declared: Mapping[str, str]) -> dict[str, str]:
    """Internal name -> flag for one subcommand: each option's ``dest`` -> its long flag
    (positionals: their metavar), then the declared maps in order (later ones win)."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public accessor for its actions
        if action.dest in (argparse.SUPPRESS, "help"):
            continue
        if action.option_strings:
            longs = [o for o in action.option_strings if o.startswith("--")]
            flags[action.dest] = (longs or action.option_strings)[0]
        else:
            flags[action.dest] = action.metavar if isinstance(action.metavar, str) else \
                action.dest.upper()
    for d in declared:
        flags.update(d)
    return flags


def build_parser() -> argparse.ArgumentParser:
    """The ``alignlab`` parser with the subcommands of every module in COMMAND_MODULES."""
    from alignlab import __version__

    parser = _Parser(
        prog="alignlab",
        description="Theory and analysis of alignment dynamics in feedback-alignment learning "
        "rules (PFA, FA, DFA, SF, KP, WM, GAIT-prop).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"alignlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        before = set(sub.choices)
        module.register(sub, _Parser)
        for cmd in sorted(set(sub.choices) - before):
            p = sub.choices[cmd]
            p.epilog = p.epilog or EPILOG
            p.set_defaults(_flags=_flag_map(p, getattr(module, "FLAGS", {}),
                                            p.get_default("flags") or {}))
    return parser


_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def flag_message(message: str, flags: Mapping[str, str]) -> str:
    """``message`` on one line with each backticked internal name that has a flag replaced
    by the flag: "`n_samples` must be ..." -> "`--samples` must be ..."."""
    one_line = " ".join(str(message).split())
    return _NAME.sub(lambda m: f"`{flags.get(m.group(1), m.group(1))}`", one_line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Library ``ValueError`` s (bad input, unusable output location) become one line on
    stderr and status 2; Ctrl-C (or a closed output pipe) becomes status 130, SIGTERM
    (raised as an interrupt while the command runs, so it cleans up as after Ctrl-C)
    status 143; any other exception propagates (a traceback and status 1 under
    ``python -m alignlab``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line argparse error
        return ExitStatus.OK if exc.code is None else int(exc.code)
    try:
        with sigterm_as_interrupt():
            return int(args.func(args))
    except ValueError as exc:  # bad input found by the library: one line, no traceback
        print(f"alignlab: error: {flag_message(str(exc), args._flags)}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except KeyboardInterrupt as exc:
        term = isinstance(exc, Terminated)
        print(f"alignlab: interrupted{' (SIGTERM)' if term else ''}", file=sys.stderr)
        return ExitStatus.TERMINATED if term else ExitStatus.INTERRUPTED
    except BrokenPipeError:  # the reader went away (`alignlab theory ... | head -1`)
        with contextlib.suppress(OSError, ValueError):  # keep the exit-time flush quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.INTERRUPTED


def run() -> NoReturn:
    """The ``alignlab`` command itself (the console script and ``python -m alignlab``):
    :func:`main`, then exit at once with its status.

    Every command has written (and synced) its files and printed its lines when
    :func:`main` returns, so nothing is left for the interpreter's teardown but unloading
    modules, which takes 0.3-0.6 s once torch and matplotlib are loaded (a quarter of
    ``alignlab figure3``'s time beyond its simulation). The standard streams and logging
    are flushed first. A crash (an exception out of :func:`main`) leaves the ordinary way,
    with its traceback and status 1. Code that calls :func:`main` (tests, scripts) is not
    affected.
    """
    code = int(main())
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away after the last line was printed
        code = code or ExitStatus.INTERRUPTED
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(code)
