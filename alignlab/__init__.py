"""alignlab: theory, Monte Carlo and training harness for feedback-alignment learning rules.

Subpackages
-----------
``alignlab.theory``   closed forms (numpy/scipy/sympy only; no torch import)
``alignlab.sim``      Monte Carlo random-matrix simulators (torch backend, CPU or GPU)
``alignlab.nn``       autograd Functions, methods, layers, conversion and alignment metrics
``alignlab.models``   architectures by name (MLP, ResNet-20, ResNet-18)
``alignlab.data``     data sets as in-memory tensors (MNIST, Fashion-MNIST, CIFAR-10, synthetic)
``alignlab.train``    the training harness (configs, run directories, sweeps)
``alignlab.reports``  figures that check a claim (Figure 3, training curves, compare)
``alignlab.gaitprop`` GAIT-prop, target propagation and BP on invertible networks

``convert`` and ``alignment`` are re-exported lazily so that ``import alignlab`` and
``alignlab.theory`` work without importing torch. ``Records`` is the tidy table every
report and metric returns.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ._records import Records

__version__ = "0.1.0"

__all__ = [
    "Records", "__version__", "alignment", "convert", "data", "gaitprop", "models", "nn",
    "reports", "sim", "theory", "train",
]

_LAZY = {name: f"alignlab.{name}"
         for name in ("theory", "sim", "nn", "models", "data", "train", "reports", "gaitprop")}
_LAZY_ATTRS = {"convert": "alignlab.nn", "alignment": "alignlab.nn"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return import_module(_LAZY[name])
    if name in _LAZY_ATTRS:
        return getattr(import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module 'alignlab' has no attribute {name!r}")
