"""The training losses by name (``train.loss``): :data:`LOSSES`.

A loss is a small object that the step, the evaluation and the probe ask for three things:
the batch's loss (``loss(out, y)``, the mean over the batch, or the sum with
``reduction="sum"``), the number of correct predictions (:meth:`Loss.hits`; ``None``
where "correct" has no meaning, and the accuracy columns are then NaN), and whether it
fits a data set's targets (:meth:`Loss.check_targets`: class labels or real values).

* ``cross-entropy``: softmax cross-entropy of class labels (the default);
* ``squared-error``: half the squared error summed over the outputs,
  ``1/2 sum_i (y_i - out_i)^2`` per example, of real-valued targets ``(B, outputs)`` or
  of class labels one-hot encoded. The 1/2 is the teacher-student literature's
  (``eg = 1/2 E[(y - phi)^2]``, ``docs/teacher_student.md``): its gradient with respect
  to the output is ``out - y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from .._registry import Registry

__all__ = ["LOSSES", "CrossEntropy", "Loss", "SquaredError", "get_loss"]


@dataclass(frozen=True)
class Loss:
    """Base class: a loss of the model's output ``out`` (B, outputs) and the targets ``y``."""

    name: ClassVar[str] = ""
    targets: ClassVar[tuple[str, ...]] = ()  # the DataSplits.targets it accepts

    def __call__(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        raise NotImplementedError

    def hits(self, out: Tensor, y: Tensor) -> Tensor | None:
        """The number of correct predictions in the batch (a 0-d tensor), or None."""
        return None

    def check_targets(self, targets: str, data_name: str) -> None:
        """Refuse, in one line, a data set whose targets this loss cannot use."""
        if targets not in self.targets:
            fits = [n for n, cls in LOSSES.items() if targets in cls.targets]
            raise ValueError(f"`train.loss` must be {' or '.join(map(repr, fits))} for data "
                             f"set {data_name!r} (its targets are {targets}), got "
                             f"{self.name!r}.")


@dataclass(frozen=True)
class CrossEntropy(Loss):
    """Softmax cross-entropy of class labels ``y`` (B,) int64."""

    name: ClassVar[str] = "cross-entropy"
    targets: ClassVar[tuple[str, ...]] = ("classes",)

    def __call__(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        return F.cross_entropy(out, y, reduction=reduction)

    def hits(self, out: Tensor, y: Tensor) -> Tensor:
        return (out.argmax(dim=1) == y).sum()


@dataclass(frozen=True)
class SquaredError(Loss):
    """``1/2 sum_i (y_i - out_i)^2`` per example (summed over outputs; mean or sum over the
    batch). ``y``: real values shaped like ``out``, or class labels (one-hot encoded)."""

    name: ClassVar[str] = "squared-error"
    targets: ClassVar[tuple[str, ...]] = ("values", "classes")

    def __call__(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        if not y.is_floating_point():  # class labels: one-hot targets
            y = F.one_hot(y, out.shape[1]).to(out.dtype)
        per_example = 0.5 * (y.reshape(out.shape) - out).square().flatten(1).sum(dim=1)
        return per_example.sum() if reduction == "sum" else per_example.mean()

    def hits(self, out: Tensor, y: Tensor) -> Tensor | None:
        if y.is_floating_point():
            return None
        return (out.argmax(dim=1) == y).sum()


#: loss name -> class (``train.loss``)
LOSSES: Registry[type[Loss]] = Registry(
    "train.loss", {"cross-entropy": CrossEntropy, "squared-error": SquaredError})


def get_loss(name: str) -> Loss:
    """The loss ``name`` of :data:`LOSSES` (an unknown name raises, listing them)."""
    return LOSSES[name]()
