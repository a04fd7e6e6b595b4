"""Soft orthogonality penalties and the orthogonality residual.

GAIT-prop equals BP only while the weights stay orthogonal, so the original code adds a
penalty's gradient to every layer's data gradient (output layer included) *before* the
optimiser's normalisation. Two forms, strength ``s``:

* ``'offdiag'`` (the original): ``s * sum_{i != j} (W^T W)_{ij}^2``. The original code
  stores weights as ``(in, out)`` and penalises the off-diagonal of ``W_code W_code^T``; in
  torch's ``(out, in)`` layout that is the Gram matrix of the *columns*, ``W^T W``.
  Gradient ``4 s W offdiag(W^T W)``. It is blind to column norms (``W = Q diag(d)`` costs
  nothing).
* ``'full'`` (the follow-up work): ``s * |W W^T - I|_F^2``, gradient ``4 s (W W^T - I) W``;
  zero only for orthogonal ``W`` (layout-free for square ``W``).

Both cost two ``n x n`` matrix products per layer (``4 n^3`` flops): at ``n = 784`` and
batch 60 that is about 9 times a BP step of the layer. ``'none'`` adds nothing.
"""

from __future__ import annotations

from torch import Tensor

from .._validate import check_choice, check_positive

__all__ = ["PENALTIES", "orthogonality_residual", "penalty_grad", "penalty_value"]

PENALTIES = ("offdiag", "full", "none")


def _check(kind: str, strength: float) -> float:
    check_choice("penalty", kind, PENALTIES)
    return float(check_positive("penalty_strength", strength, allow_zero=True, scalar=True))


def orthogonality_residual(weight: Tensor) -> Tensor:
    """``|W W^T - I|_F`` (a 0-dim tensor): 0 exactly for orthogonal ``W``."""
    w = weight.detach()
    gram = w @ w.T
    gram.diagonal().sub_(1)
    return gram.norm()


def penalty_value(weight: Tensor, kind: str = "offdiag", strength: float = 1.0) -> Tensor:
    """The penalty of ``weight`` (differentiable; see the module docstring)."""
    s = _check(kind, strength)
    if kind == "none":
        return weight.sum() * 0
    if kind == "offdiag":
        gram = weight.T @ weight
        return s * (gram.square().sum() - gram.diagonal().square().sum())
    gram = weight @ weight.T
    eye = gram.new_ones(gram.shape[0]).diag()
    return s * (gram - eye).square().sum()


def penalty_grad(weight: Tensor, kind: str = "offdiag", strength: float = 1.0) -> Tensor | None:
    """The penalty's gradient with respect to ``weight`` in closed form (``None`` for
    ``'none'`` or strength 0): ``4 s W offdiag(W^T W)`` or ``4 s (W W^T - I) W``."""
    s = _check(kind, strength)
    if kind == "none" or s == 0:
        return None
    w = weight.detach()
    if kind == "offdiag":
        gram = w.T @ w  # (n_in, n_in): the columns' Gram matrix
        gram.diagonal().zero_()
        return (4 * s) * (w @ gram)
    gram = w @ w.T
    gram.diagonal().sub_(1)
    return (4 * s) * (gram @ w)
