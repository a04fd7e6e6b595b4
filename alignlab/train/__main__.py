"""``python -m alignlab.train {train,sweep} ...``: the two subcommands on their own (what a
sweep's worker processes run), with the ``alignlab`` command's exit statuses."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .cli import register


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="alignlab")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser),
             _Parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"alignlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alignlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
