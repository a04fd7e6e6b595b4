"""alignlab: theory, Monte Carlo and training harness for feedback-alignment learning rules.

Subpackages
-----------
``alignlab.theory``  closed forms (numpy/scipy/sympy only; no torch import)
``alignlab.sim``     Monte Carlo random-matrix simulators (torch backend, CPU or GPU)
``alignlab.nn``      autograd Functions, methods, layers, conversion and alignment metrics

``convert`` and ``alignment`` are re-exported lazily so that ``import alignlab`` and
``alignlab.theory`` work without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "alignment", "convert", "nn", "sim", "theory"]

_LAZY = {"theory": "alignlab.theory", "sim": "alignlab.sim", "nn": "alignlab.nn"}
_LAZY_ATTRS = {"convert": "alignlab.nn", "alignment": "alignlab.nn"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return import_module(_LAZY[name])
    if name in _LAZY_ATTRS:
        return getattr(import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module 'alignlab' has no attribute {name!r}")
