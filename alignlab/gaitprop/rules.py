"""The learning rules of an invertible network: GAIT-prop, TP, incremental TP and BP.

Each rule is a small frozen dataclass whose fields are its options; it says whether it
needs the layers' inverses (``needs_inverse``) and computes every layer's local error
``e_l`` ``(B, n_l)`` from one forward pass. The update of layer ``l`` is then the same for
all rules (``spec/methods.md``):

.. math::

    \\Delta W_l = -\\langle e_l\\, h_{l-1}[:n_l]^T \\rangle, \\qquad
    \\Delta b_l = -\\langle e_l \\rangle \\qquad (\\langle\\cdot\\rangle = \\text{batch mean}),

the change per unit learning rate of plain gradient descent (BP's is minus the gradient of
the quadratic loss ``1/2 <|h_L - t_L|^2>``). With ``D_l = diag f'(a_l)`` and the exact
inverse ``g_l(z) = W_l^{-1}(f^{-1}(z) - b_l)``, going down from ``t_L = target``:

* ``bp``: ``e_L = D_L (h_L - t_L)``, ``e_{l-1} = D_{l-1} W_l^T e_l``;
* ``gait-prop``: ``e_l = c_l D_l (h_l - t_l)`` with ``c_l = gamma^-(L-l)``, and
  ``t_{l-1} = g_l(h_l + gamma D_l^2 (t_l - h_l))``;
* ``itp``: as GAIT-prop with the nudge ``gamma (t_l - h_l)`` (no ``D_l^2``);
  both propagate ``c_l (t_l - h_l)`` itself by default (``form='difference'``: exact at
  any gamma), or form the targets and subtract (``form='targets'``: the literal recipe);
* ``tp``: ``e_l = D_l (h_l - t_l)``, ``t_{l-1} = g_l(t_l)``.

In the tower, ``g_l`` gives the ``n_l`` units layer ``l`` reads; the other units of
``h_{l-1}`` keep their forward values as targets (BP: zero error).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from .._registry import Registry
from .._validate import check_choice, check_positive
from ..models.invertible import Activities, InvertibleNet

__all__ = [
    "FORMS", "RULES", "Backprop", "GaitProp", "IncrementalTP", "LayerUpdate", "Rule", "TargetProp",
    "check_inputs", "check_model", "get_rule", "layer_updates", "updates",
]


class LayerUpdate(NamedTuple):
    """One layer's update per unit learning rate: ``weight`` ``(n_l, n_l)``, ``bias``
    ``(n_l,)`` (a descent direction: BP's is minus the gradient)."""

    weight: Tensor
    bias: Tensor


@dataclass(frozen=True)
class Rule:
    """Base class: a rule's fields are its options (checked in ``__post_init__``)."""

    name: ClassVar[str] = ""
    needs_inverse: ClassVar[bool] = False  # uses g_l (layers 2..L)
    #: whether :func:`~alignlab.gaitprop.first_order_angles` predicts the rule's angle to BP
    first_order_theory: ClassVar[bool] = False

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def errors(self, model: InvertibleNet, acts: Activities, target: Tensor) -> list[Tensor]:
        """``[e_1, ..., e_L]``, each ``(B, n_l)``."""
        raise NotImplementedError

    #: why the rule's update angle has no prediction (measured only), when it has none
    no_theory: ClassVar[str] = "no theory of this rule's update angle to BP"

    def alignment_theory(self, layer: int):
        """What theory predicts for layer ``layer``'s (0-based) update angle to BP: an
        :class:`~alignlab.nn.theory.AlignmentTheory` of quantity 'update'. The first-order
        theory where :attr:`first_order_theory` says it describes the rule (layers.csv's
        ``update_angle_first_order_deg``), else measured only (:attr:`no_theory`)."""
        from ..nn.theory import AlignmentTheory, FirstOrderUpdate

        if self.first_order_theory:
            return FirstOrderUpdate(description="e_l from nudged targets through W^-1")
        return AlignmentTheory(quantity="update", description=self.no_theory)


def pad_zeros(x: Tensor, width: int) -> Tensor:
    """``x`` ``(B, m)`` with zero columns appended up to ``width`` (the tower: the units of
    the layer below that the layer does not read get no error)."""
    return x if x.shape[1] == width else torch.nn.functional.pad(x, (0, width - x.shape[1]))


def _pad(below: Tensor, t: Tensor) -> Tensor:
    """``t`` (the first units' target) with the remaining units of ``below`` appended."""
    if t.shape[1] == below.shape[1]:
        return t
    return torch.cat([t, below[:, t.shape[1]:]], dim=1)


@dataclass(frozen=True)
class Backprop(Rule):
    """Backpropagation of the quadratic loss on the same network (the reference)."""

    name: ClassVar[str] = "bp"

    def alignment_theory(self, layer):
        from ..nn.theory import Exact

        return Exact(quantity="update", description="BP's own update")

    def errors(self, model, acts, target):
        f, L = model.activation, model.depth
        errs: list[Tensor] = [None] * L  # type: ignore[list-item]
        e = f.derivative(acts.a[-1]) * (acts.h[-1] - target)
        for i in reversed(range(L)):
            errs[i] = e
            if i == 0:
                break
            back = e @ model.layers[i].weight.detach()  # (B, n_l): rows W^T e
            e = f.derivative(acts.a[i - 1]) * pad_zeros(back, acts.h[i].shape[1])
        return errs


#: how GAIT-prop and ITP send their targets down: ``'difference'`` propagates the scaled
#: difference ``c_l (t_l - h_l)`` (exact at any gamma, the default); ``'targets'`` forms the
#: targets ``t_l`` and subtracts (the literal recipe: the oracle, and the old numbers)
FORMS = ("difference", "targets")


@dataclass(frozen=True)
class _Incremental(Rule):
    """GAIT-prop and ITP: nudged targets, errors amplified by ``c_l = gamma^-(L-l)``.

    Two forms of the same recursion (equal in exact arithmetic):

    * ``'targets'`` (the literal recipe): ``z_l = h_l + gamma N_l (t_l - h_l)`` (``N_l =
      D_l^2``, ITP: ``I``), ``t_{l-1} = g_l(z_l)``, then ``h_{l-1} - t_{l-1}``. The
      difference is ``gamma^(L-l+1)`` times smaller than the activities it is computed
      from, so its rounding, multiplied back by ``c_{l-1}``, grows as ``u gamma^-(L-l+1)``;
    * ``'difference'``: ``s_l = c_l (t_l - h_l)`` is propagated itself. ``g_l`` is
      ``W_l^{-1}(f^{-1}(.) - b_l)``: the affine part maps differences to differences (the
      bias cancels) and ``f^{-1}``'s difference is exact elementwise
      (:meth:`~alignlab.models.invertible.LeakyReLU.inverse_step`), so

      .. math::

          s_{l-1} = W_l^{-1}\\,\\frac{f^{-1}(h_l + \\gamma^{L-l+1} N_l s_l) -
          f^{-1}(h_l)}{\\gamma^{L-l+1}}, \\qquad s_L = t_L - h_L,

      and ``e_l = -D_l s_l``: every quantity is of the size of the error, the rounding is
      relative to it (no ``gamma^-k`` amplification). Where no unit crosses its kink this is
      ``W_l^{-1} N_l s_l / f'``, gamma-free; where one does, the crossing stays exact.
    """

    gamma: float = 1e-3  # the nudge, the same at every layer
    form: str = "difference"  # FORMS: 'difference' (exact) or 'targets' (the literal recipe)
    needs_inverse: ClassVar[bool] = True
    squared_derivative: ClassVar[bool] = True  # GAIT: nudge gamma D^2 (t - h); ITP: gamma

    def __post_init__(self):
        g = float(check_positive("gamma", self.gamma, scalar=True))
        if g >= 1:
            raise ValueError(f"`gamma` must be in (0, 1), got {self.gamma!r}.")
        object.__setattr__(self, "gamma", g)
        check_choice("form", self.form, FORMS)

    def errors(self, model, acts, target, crossed: list[Tensor] | None = None):
        """As :meth:`Rule.errors`; ``crossed``, if given, receives per inverted layer
        (``L, L-1, .., 2``) the mask ``(B, n_l)`` of the units whose nudged activity lies
        across the kink from ``h_l``."""
        if self.form == "targets":
            return self._target_errors(model, acts, target, crossed)
        f, L, gamma = model.activation, model.depth, self.gamma
        errs: list[Tensor] = [None] * L  # type: ignore[list-item]
        s = target - acts.h[-1]  # s_L = t_L - h_L (c_L = 1), (B, n_L)
        for i in reversed(range(L)):  # layer l = i + 1
            d = f.derivative(acts.a[i])
            errs[i] = -(d * s)  # e_l = c_l D_l (h_l - t_l)
            if i == 0:
                break
            nudge = d * d * s if self.squared_derivative else s
            # z_l - h_l = gamma^(L-l+1) * nudge; s_{l-1} = c_{l-1} (t_{l-1} - h_{l-1})
            step, cross = f.inverse_step(acts.h[i + 1], nudge, gamma ** (L - i))
            if crossed is not None:
                crossed.append(cross)
            s = pad_zeros(model.layers[i].solve(step), acts.h[i].shape[1])
        return errs

    def _target_errors(self, model, acts, target, crossed):
        """The literal recipe: form ``t_{l-1} = g_l(z_l)`` and subtract."""
        f, L, gamma = model.activation, model.depth, self.gamma
        errs: list[Tensor] = [None] * L  # type: ignore[list-item]
        t, c = target, 1.0
        for i in reversed(range(L)):
            h = acts.h[i + 1]
            d = f.derivative(acts.a[i])
            diff = h - t  # (B, n_l)
            errs[i] = c * (d * diff)
            if i == 0:
                break
            nudge = d * d * diff if self.squared_derivative else diff
            z = h - gamma * nudge
            if crossed is not None:
                crossed.append((z >= 0) != (h >= 0))
            t = _pad(acts.h[i], model.invert_layer(i, z))
            c = c / gamma
        return errs


@dataclass(frozen=True)
class GaitProp(_Incremental):
    """GAIT-prop: ``t_{l-1} = g_l(h_l + gamma D_l^2 (t_l - h_l))``, ``e_l = c_l D_l (h_l -
    t_l)``; equals BP when the weights are orthogonal (``docs/gaitprop.md``)."""

    name: ClassVar[str] = "gait-prop"
    squared_derivative: ClassVar[bool] = True
    first_order_theory: ClassVar[bool] = True


@dataclass(frozen=True)
class IncrementalTP(_Incremental):
    """Incremental TP: GAIT-prop's nudge without the ``D^2`` factor (the paper's ITP)."""

    name: ClassVar[str] = "itp"
    squared_derivative: ClassVar[bool] = False
    no_theory: ClassVar[str] = ("nudge without D^2: even orthogonal weights do not give BP's "
                                "errors, so GAIT-prop's first-order theory does not apply")


@dataclass(frozen=True)
class TargetProp(Rule):
    """Target propagation: ``t_{l-1} = g_l(t_l)`` (the full inverse of the target),
    ``e_l = D_l (h_l - t_l)``."""

    name: ClassVar[str] = "tp"
    needs_inverse: ClassVar[bool] = True
    no_theory: ClassVar[str] = "full inverse of the target: no theory of its update angle"

    def errors(self, model, acts, target):
        f, L = model.activation, model.depth
        errs: list[Tensor] = [None] * L  # type: ignore[list-item]
        t = target
        for i in reversed(range(L)):
            errs[i] = f.derivative(acts.a[i]) * (acts.h[i + 1] - t)
            if i > 0:
                t = _pad(acts.h[i], model.invert_layer(i, t))
        return errs


#: name -> rule class; ``'gait'`` is short for ``'gait-prop'``.
RULES: Registry[type[Rule]] = Registry("rule", {
    "gait-prop": GaitProp, "gait": GaitProp, "itp": IncrementalTP, "tp": TargetProp,
    "bp": Backprop,
})


def get_rule(rule: str | Rule, **options) -> Rule:
    """A rule instance: ``rule`` by name (``RULES``) built with ``options``, or a ``Rule``
    (then no options). An unknown option raises naming it."""
    if isinstance(rule, Rule):
        if options:
            raise ValueError(f"`{next(iter(options))}` must not be given with a Rule "
                             f"instance ({rule!r}), got {next(iter(options.values()))!r}.")
        return rule
    if not isinstance(rule, str):
        raise ValueError(f"`rule` must be a rule name or a Rule, got {rule!r}.")
    cls = RULES[rule]
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in options:
        if key not in valid:
            raise ValueError(f"`{key}` is not an option of rule {rule!r}; valid options: "
                             f"{', '.join(valid) or 'none'}.")
    return cls(**options)


def check_model(model: Any, rule: Rule) -> InvertibleNet:
    """One-line ``ValueError`` unless ``model`` can be trained by ``rule``: an
    :class:`InvertibleNet`, and, when the rule needs inverses, an invertible activation and
    square layers ``(n_l, n_l)``. (Singular or ill-conditioned weights are refused when a
    layer is factorised, with the condition number.)"""
    if not isinstance(model, InvertibleNet):
        raise ValueError(f"`model` must be an InvertibleNet (alignlab.models.invertible) for "
                         f"rule {rule.name!r}, got {type(model).__name__}.")
    if not rule.needs_inverse:
        return model
    if not model.activation.invertible:
        raise ValueError(f"`activation` must be invertible for rule {rule.name!r} (it "
                         f"inverts every layer), got {model.activation_name!r} (slope "
                         f"{model.activation.slope:g}: f^-1 is undefined below 0).")
    for i, layer in enumerate(model.layers):
        n = model.widths[i + 1]
        if tuple(layer.weight.shape) != (n, n):
            raise ValueError(f"`layers[{i}].weight` must be square ({n} x {n}) for rule "
                             f"{rule.name!r} (it needs the layer's inverse), got shape "
                             f"{tuple(layer.weight.shape)}.")
    return model


def check_inputs(model: InvertibleNet, x: Tensor, target: Tensor) -> None:
    """One-line ``ValueError`` unless the floating-point tensors among ``x`` and ``target``
    have the model's dtype (nothing is cast: a float32 batch on a float64 model would
    silently lose the precision the rules' comparisons rely on)."""
    dtype = model.layers[0].weight.dtype
    for name, value in (("x", x), ("target", target)):
        if isinstance(value, Tensor) and value.is_floating_point() and value.dtype != dtype:
            raise ValueError(f"`{name}` must have the model's dtype {dtype} (cast it with "
                             f".to({dtype})), got {value.dtype}.")


def layer_updates(model: InvertibleNet, acts: Activities, errors: list[Tensor]
                  ) -> list[LayerUpdate]:
    """``-<e_l h_{l-1}[:n_l]^T>`` and ``-<e_l>`` per layer."""
    out = []
    for i, e in enumerate(errors):
        h_in = acts.h[i][:, :model.layers[i].n]
        b = e.shape[0]
        # (contiguous e^T: BLAS runs the (n, B) x (B, n) product about twice as fast)
        out.append(LayerUpdate((e.T.contiguous() @ h_in).mul_(-1.0 / b), -e.mean(0)))
    return out


def updates(model: InvertibleNet, x: Tensor, target: Tensor, rule: str | Rule = "gait",
            gamma: float | None = None, **options) -> list[LayerUpdate]:
    """Every layer's update under ``rule`` for the batch ``(x, target)`` at the current
    weights (nothing is changed): compare rules on identical weights.

    Parameters
    ----------
    model
        An :class:`~alignlab.models.invertible.InvertibleNet`.
    x
        Inputs ``(B, ...)`` with ``n_0`` features.
    target
        Class indices ``(B,)`` (one-hot on the first ``num_classes`` outputs, the other
        outputs at their forward values), float class targets ``(B, num_classes)`` or full
        output targets ``(B, n_L)``.
    rule
        ``'gait'`` / ``'gait-prop'``, ``'itp'``, ``'tp'``, ``'bp'`` or a :class:`Rule`.
    gamma
        The nudge of ``'gait'`` and ``'itp'`` (default 1e-3); an error for other rules.
    **options
        The rule's other options: ``form`` of ``'gait'`` and ``'itp'`` (:data:`FORMS`).

    Returns
    -------
    list of :class:`LayerUpdate`, layer 1 first: ``(weight, bias)`` per unit learning rate.

    Raises
    ------
    ValueError
        A bad rule or option, a model the rule cannot train (:func:`check_model`), or
        floating-point ``x`` / ``target`` of another dtype than the model's
        (:func:`check_inputs`; nothing is cast).
    """
    rule = get_rule(rule, **({} if gamma is None else {"gamma": gamma}), **options)
    check_model(model, rule)
    check_inputs(model, x, target)
    acts = model.activities(x)
    t = model.output_target(acts.h[-1], target)
    return layer_updates(model, acts, rule.errors(model, acts, t))
