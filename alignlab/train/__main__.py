"""``python -m alignlab.train {train,sweep} ...``: the ``alignlab`` command (what a sweep's
worker processes run), with its exit statuses and its one-line errors naming the flag."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """:func:`alignlab.cli.main` (every subcommand; ``train`` and ``sweep`` among them)."""
    from alignlab.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
