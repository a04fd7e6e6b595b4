"""Which process this is among the processes of one run.

One process today. A distributed run (``torchrun``, DistributedDataParallel) gives each
rank a :class:`World` with its ``rank`` and ``world_size``; the loop lets only the main
rank write files and print, and splits nothing else on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["World"]


@dataclass(frozen=True)
class World:
    """``rank`` of ``world_size`` processes (the default: a single process)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory and prints progress."""
        return self.rank == 0
