"""``python -m alignlab ...``: the ``alignlab`` command (see :mod:`alignlab.cli`).

The same as the console script (:func:`alignlab.cli.run`); torchrun and other launchers
that take a module use it.
"""

from alignlab.cli import run

if __name__ == "__main__":
    run()
