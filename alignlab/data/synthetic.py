"""Synthetic teacher-student classification: always available, a function of ``seed``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from .._rng import torch_generator, torch_seeds
from .._validate import check_int
from .pipeline import PYTHON_NAMES, ArgumentNames, DataSource, RawData

__all__ = ["SyntheticSource", "teacher_student"]


def teacher_student(n_train: int, n_test: int, input_shape: tuple[int, ...], num_classes: int,
                    hidden: int, seed: int) -> RawData:
    """Gaussian inputs labelled by a fixed random teacher network.

    .. math::

        x \\sim \\mathcal N(0, I_d), \\qquad
        y = \\arg\\max_k \\big(W_2 \\tanh(W_1 x)\\big)_k,

    with :math:`W_1 \\in \\mathbb R^{h \\times d}` and :math:`W_2 \\in \\mathbb R^{K \\times h}`
    drawn once with i.i.d. entries :math:`\\mathcal N(0, 1/d)` and :math:`\\mathcal N(0, 1/h)`
    (pre-activations of unit variance, so ``tanh`` is neither linear nor saturated), and
    the rows of :math:`W_2` rescaled to equal norm so that no class dominates. The teacher,
    the training inputs and the test inputs come from three independent streams of
    ``seed``: the test set does not change with ``n_train``. The labels are computed in
    float64 on the CPU, so the same seed gives identical tensors on every run.
    """
    d = math.prod(input_shape)
    gens = [torch_generator(s) for s in torch_seeds(np.random.SeedSequence(seed), 3)]
    w1 = torch.randn(hidden, d, generator=gens[0], dtype=torch.float64) / math.sqrt(d)
    w2 = torch.randn(num_classes, hidden, generator=gens[0], dtype=torch.float64)
    w2 = w2 / w2.norm(dim=1, keepdim=True)

    def sample(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(n, d, generator=gen)  # (n, d) float32
        y = torch.empty(n, dtype=torch.int64)
        for start in range(0, n, 8192):  # bounded memory for the float64 copy
            xb = x[start:start + 8192].to(torch.float64)
            y[start:start + 8192] = (torch.tanh(xb @ w1.T) @ w2.T).argmax(dim=1)
        return x.view(n, *input_shape), y

    x_train, y_train = sample(n_train, gens[1])
    x_test, y_test = sample(n_test, gens[2])
    return RawData(x_train, y_train, x_test, y_test, num_classes=num_classes,
                   source="synthetic")


class SyntheticSource(DataSource):
    """Teacher-student classification (:func:`teacher_student`); always available."""

    name, title = "synthetic", "synthetic teacher-student data"
    options: ClassVar[Mapping[str, Any]] = {
        "n_train": 10_000,  # training examples
        "n_test": 2_000,  # test examples
        "input_shape": (1, 28, 28),  # 784 inputs: fits MLP 784-512-512-10 and, padded, ResNet-20
        "num_classes": 10,
        "teacher_hidden": 100,  # width of the teacher's tanh layer
    }

    def check_options(self, options: Mapping[str, Any],
                      names: ArgumentNames = PYTHON_NAMES) -> dict[str, Any]:
        opts = super().check_options(options, names)
        for key in ("n_train", "n_test", "teacher_hidden"):
            opts[key] = check_int(names.key(key), opts[key])
        opts["num_classes"] = check_int(names.key("num_classes"), opts["num_classes"], minimum=2)
        shape = opts["input_shape"]
        shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
        wrong = ValueError(f"`{names.key('input_shape')}` must be a positive int or a tuple of "
                           f"them, got {opts['input_shape']!r}.")
        try:
            opts["input_shape"] = tuple(check_int("input_shape", s) for s in shape)
        except (TypeError, ValueError):
            raise wrong from None
        if not opts["input_shape"]:
            raise wrong
        return opts

    def read(self, *, root: str | os.PathLike | None, download: bool, seed: int,
             options: Mapping[str, Any], names: ArgumentNames = PYTHON_NAMES) -> RawData:
        return teacher_student(options["n_train"], options["n_test"], options["input_shape"],
                               options["num_classes"], options["teacher_hidden"], seed)
