"""Helpers for the training-harness tests: tiny synthetic configs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from alignlab.train.config import dumps_toml

# A teacher-student problem an MLP 20-64-64-4 learns to ~75-85% in 3 epochs of 600 examples.
TINY = {
    "data": {"name": "synthetic", "n_train": 600, "n_test": 400, "input_shape": [20],
             "num_classes": 4},
    "model": {"name": "mlp", "sizes": [20, 64, 64, 4]},
    "method": {"name": "bp"},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
    "train": {"epochs": 3, "batch_size": 32, "device": "cpu", "probe_size": 64},
}


def tables(**changes: dict) -> dict:
    """TINY with some sections replaced or extended: ``tables(method={"name": "fa"})``."""
    out = {k: dict(v) for k, v in TINY.items()}
    for section, values in changes.items():
        out.setdefault(section, {}).update(values)
    return out


def write_config(path: Path, **changes: dict) -> Path:
    """Write ``tables(**changes)`` as TOML to ``path`` and return it."""
    path.write_text(dumps_toml(tables(**changes)))
    return path


def start_training(config_file: Path, run: Path) -> subprocess.Popen:
    """``python -m alignlab train CONFIG --out RUN --quiet`` in a child process (one
    thread), stderr piped; returns once the run's metrics.csv holds epochs 0 and 1 (or the
    child ended, or two minutes passed)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "alignlab", "train", str(config_file),
                             "--out", str(run), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = run / "metrics.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # epochs 0, 1
            break
        time.sleep(0.02)
    return proc
