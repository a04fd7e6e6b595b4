"""``python -m alignlab ...``: the ``alignlab`` command (see :mod:`alignlab.cli`).

The same as the console script; torchrun and other launchers that take a module use it.
"""

import sys

from alignlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
