"""The training harness: configs, the training loop, run directories and sweeps.

>>> from alignlab.train import load_config, train
>>> config = load_config("configs/fashion-mnist/pfa.toml", ["train.epochs=2"])
>>> result = train(config, "runs/try")          # metrics.csv, layers.csv, ...

On the command line: ``alignlab train CONFIG``, ``alignlab train --resume RUN_DIR``,
``alignlab sweep CONFIG --grid KEY=V1,V2 ...`` (also ``python -m alignlab sweep ...``).
See ``docs/training.md``. Importing this package does not import torch; the names below
are loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "Config",
    "Diverged",
    "RunResult",
    "World",
    "WriteFailed",
    "build_run",
    "evaluate",
    "initial_model",
    "load_config",
    "load_trained",
    "rebuild_run",
    "resolve_config",
    "run_sweep",
    "train",
    "train_teacher_student",
]

_WHERE = {
    "Config": "config", "load_config": "config", "resolve_config": "config",
    "Diverged": "steps", "RunResult": "loop", "evaluate": "loop",
    "initial_model": "setup", "train": "loop", "WriteFailed": "rundir", "build_run": "setup",
    "rebuild_run": "setup", "load_trained": "setup",
    "run_sweep": "sweep", "World": "world", "train_teacher_student": "teacher_student",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
