"""Optimiser groups for learned feedback, the per-layer step hooks, the weight-mirror phase.

Nothing here depends on which method a layer uses: the helpers read the method's
class-level properties (``learned``, ``feedback_learns_from_backward``,
``follows_optimizer_step``, ``mirror_trained``) and call its hooks (``check_training``,
``check_optimizer``, ``before_step``/``after_step``, ``mirror_update``); see
``methods/base.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from .._rng import torch_generator
from .._validate import check_choice, check_int, check_positive, invalid
from .convert import converted_layers
from .uncorrected_adam import UncorrectedAdam

__all__ = ["OPTIMIZERS", "attach_factored_pfa", "make_optimizer", "mirror_step", "param_groups"]

#: optimiser name -> class (``make_optimizer``; a training config's ``optim.name``)
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
              "uncorrected-adam": UncorrectedAdam}


def _is_adam_family(optimizer) -> bool:
    name = optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", "")
    return "adam" in name.lower()


def _step_following_layers(model: nn.Module) -> list:
    """(name, layer) for the layers whose state follows the optimiser step (factored PFA)."""
    return [(n, layer) for n, layer in converted_layers(model)
            if layer.method.follows_optimizer_step]


def param_groups(model: nn.Module, *, lr: float, weight_decay: float = 0.0,
                 feedback_weight_decay: float | None = None, optimizer=None,
                 layer_lr_scales: Sequence[float] | None = None) -> list[dict]:
    """Named optimiser groups: ``'forward'`` (everything else) and ``'feedback'``.

    The ``'feedback'`` group holds the learned feedback parameters of converted layers
    (KP's and WM's ``feedback``, PFA's ``pfa_R``), with ``feedback_weight_decay``
    (default: ``weight_decay``, which Proposition 1 needs: ``R^T - B W`` then decays by
    the same factor as a weight). WM's ``feedback`` gets no gradient from the backward
    pass (optimisers skip it); it learns in :func:`mirror_step`. Shared parameters appear
    once. Pass ``optimizer`` (a name or class) to be warned when an Adam-family optimiser
    would train learned feedback: Proposition 1 needs a linear optimiser (SGD with or
    without momentum, coupled weight decay). Factored PFA layers (``state='factored'``)
    have no feedback parameters; for them a ``feedback_weight_decay`` other than
    ``weight_decay``, or an ``optimizer`` other than SGD, raises ``ValueError`` (their
    ``R`` is *defined* as trained by SGD with W's hyperparameters).

    Per-layer learning rates: ``layer_lr_scales`` (one positive factor per converted
    layer, in the order of :func:`~alignlab.nn.converted_layers`) gives each converted
    layer its own groups, ``'layer:<name>'`` (its weight and bias) and, if it learns
    feedback, ``'feedback:<name>'``, with learning rate ``lr * scale`` (the layer's
    feedback follows its weight's rate, as Proposition 1 needs); everything else stays in
    ``'forward'`` at ``lr``. Every group carries its factor as ``'lr_scale'`` (1 when not
    given) so that a schedule sets ``group['lr'] = lr * group['lr_scale']``. Weight decay
    stays coupled (torch's ``weight_decay``), so a layer's decay per step scales with its
    rate: the step of a layer is the whole SGD step times its factor.

    Returns
    -------
    A list of dicts for ``torch.optim``'s constructors, e.g.
    ``torch.optim.SGD(param_groups(model, lr=0.1, weight_decay=1e-4), momentum=0.9)``.
    """
    lr = float(check_positive("lr", lr))
    weight_decay = float(check_positive("weight_decay", weight_decay, allow_zero=True))
    if feedback_weight_decay is None:
        feedback_weight_decay = weight_decay
    feedback_weight_decay = float(
        check_positive("feedback_weight_decay", feedback_weight_decay, allow_zero=True))
    feedback, learns_by_grad, methods = [], False, []
    for _, layer in converted_layers(model):
        for p in layer.feedback_parameters():
            if all(p is not q for q in feedback):
                feedback.append(p)
        meth = layer.method
        if meth.learned and meth.feedback_learns_from_backward:
            learns_by_grad = True
        if meth not in methods:
            methods.append(meth)
    scaled = _layer_scales(model, layer_lr_scales)
    claimed = [p for _, _, ps, fb in scaled for p in (*ps, *fb)]
    forward = [p for p in model.parameters()
               if all(p is not q for q in feedback) and all(p is not q for q in claimed)]
    feedback = [p for p in feedback if all(p is not q for q in claimed)]
    optimizer_name = None if optimizer is None else _optimizer_name(optimizer)
    for meth in methods:
        meth.check_training(optimizer_name=optimizer_name, weight_decay=weight_decay,
                            feedback_weight_decay=feedback_weight_decay)
    if optimizer is not None and learns_by_grad and _is_adam_family(optimizer):
        warnings.warn(
            "an Adam-family optimiser trains learned feedback (KP/PFA): Proposition 1 "
            "(R^T - B W decays whatever the data) needs a linear optimiser such as SGD "
            "with coupled weight decay; with Adam the feedback is not guaranteed to converge "
            "to B W.", stacklevel=2)
    groups = []
    if forward or not scaled:  # (every parameter may be in a layer's group)
        groups.append({"name": "forward", "params": forward, "lr": lr,
                       "weight_decay": weight_decay, "lr_scale": 1.0})
    if feedback:
        groups.append({"name": "feedback", "params": feedback, "lr": lr,
                       "weight_decay": feedback_weight_decay, "lr_scale": 1.0})
    for name, scale, params, fb in scaled:
        groups.append({"name": f"layer:{name}", "params": params, "lr": lr * scale,
                       "weight_decay": weight_decay, "lr_scale": scale})
        if fb:
            groups.append({"name": f"feedback:{name}", "params": fb, "lr": lr * scale,
                           "weight_decay": feedback_weight_decay, "lr_scale": scale})
    return groups


def _layer_scales(model: nn.Module, layer_lr_scales: Sequence[float] | None
                  ) -> list[tuple[str, float, list, list]]:
    """(name, scale, weight and bias, learned feedback) per converted layer, or [] when no
    scales are given; checked against the model's converted layers."""
    if layer_lr_scales is None:
        return []
    if isinstance(layer_lr_scales, str) or not isinstance(layer_lr_scales, Sequence):
        raise invalid("layer_lr_scales", "a list of positive numbers", layer_lr_scales)
    scales = [float(check_positive(f"layer_lr_scales[{i}]", s, scalar=True))
              for i, s in enumerate(layer_lr_scales)]
    layers = converted_layers(model)
    if len(scales) != len(layers):
        names = ", ".join(repr(n) for n, _ in layers) or "none"
        raise invalid("layer_lr_scales", f"one factor per converted layer of the model "
                      f"({len(layers)}: {names})", list(layer_lr_scales))
    out = []
    for (name, layer), scale in zip(layers, scales, strict=True):
        params = [p for p in (layer.weight, layer.bias) if p is not None]
        out.append((name, scale, params, layer.feedback_parameters()))
    return out


def _optimizer_name(optimizer) -> str:
    if isinstance(optimizer, str):
        return optimizer.lower()
    cls = optimizer if isinstance(optimizer, type) else type(optimizer)
    return "sgd" if issubclass(cls, torch.optim.SGD) else cls.__name__


def make_optimizer(model: nn.Module, name: str = "sgd", *, lr: float, weight_decay: float = 0.0,
                   feedback_weight_decay: float | None = None,
                   layer_lr_scales: Sequence[float] | None = None,
                   **kwargs) -> torch.optim.Optimizer:
    """The optimiser ``name`` (:data:`OPTIMIZERS`: 'sgd', 'adam', 'adamw', or
    'uncorrected-adam', GAIT-prop's original) over :func:`param_groups` (per-layer
    learning rates with ``layer_lr_scales``).

    Extra keyword arguments (``momentum=0.9``, ``betas=...``) go to the optimiser. If the
    model has layers whose state follows the optimiser step (factored PFA), they get their
    step hooks (:func:`attach_factored_pfa`), which require SGD.
    """
    check_choice("name", name, OPTIMIZERS)
    groups = param_groups(model, lr=lr, weight_decay=weight_decay,
                          feedback_weight_decay=feedback_weight_decay, optimizer=name,
                          layer_lr_scales=layer_lr_scales)
    opt = OPTIMIZERS[name](groups, **kwargs)
    if _step_following_layers(model):
        attach_factored_pfa(opt, model)
    return opt


class _StepHooks:
    """Calls ``before_step``/``after_step`` of every registered layer's method around each
    step of one optimiser (for the layers whose ``W`` is in the optimiser)."""

    def __init__(self):
        self.layers: list = []
        self.pending: list = []  # (layer, what its before_step returned)

    def add(self, layers) -> None:
        for layer in layers:
            if all(layer is not other for other in self.layers):
                self.layers.append(layer)

    def pre(self, optimizer, args, kwargs) -> None:
        where = {id(p): group for group in optimizer.param_groups for p in group["params"]}
        self.pending = []
        for layer in self.layers:
            group = where.get(id(layer.weight))
            if group is not None:
                self.pending.append((layer, layer.method.before_step(layer, optimizer, group)))

    def post(self, optimizer, args, kwargs) -> None:
        for layer, note in self.pending:
            layer.method.after_step(layer, note)
        self.pending = []


def attach_factored_pfa(optimizer: torch.optim.Optimizer, model: nn.Module) -> int:
    """Let ``optimizer`` train the factored PFA layers of ``model`` (``state='factored'``).

    Factored PFA keeps no ``R``: by Proposition 1, ``R_t^T = B W_t + c_t D_0`` exactly when
    ``R`` would be trained by the same SGD step as ``W`` (same ``lr``, coupled
    ``weight_decay`` and ``momentum``). This registers step pre/post hooks on
    ``optimizer`` that advance each layer's ``(c, u)`` after every step with the
    hyperparameters of the param group holding its ``W``, read at that step (so
    schedules, e.g. the epoch-0 weight-decay burst, are followed). Calling it again adds
    layers without installing a second hook. :func:`make_optimizer` calls it for you.

    The mechanism is not specific to PFA: the hooks call ``Method.before_step`` and
    ``Method.after_step`` of every layer whose method has ``follows_optimizer_step``
    (after ``Method.check_optimizer`` accepted the optimiser); factored PFA is the one
    such method today.

    Raises
    ------
    ValueError
        ``optimizer`` is not ``torch.optim.SGD``; a group holding a factored ``W`` has
        ``nesterov``, ``dampening != 0`` or ``maximize`` (also checked at every step); a
        factored layer's ``W`` is not in ``optimizer``; two factored layers share a ``W``.

    Returns
    -------
    The number of factored layers this optimiser now advances.
    """
    layers = _step_following_layers(model)
    if not layers:
        raise ValueError("`model` must have factored PFA layers (layers whose feedback follows "
                         "the optimiser step: convert with state='factored'), got none.")
    where = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    seen: dict[int, str] = {}
    for name, layer in layers:
        if id(layer.weight) in seen:
            raise ValueError(
                f"`model` must not share a weight between factored PFA layers "
                f"({seen[id(layer.weight)]!r} and {name!r}): the summed gradient breaks "
                "Proposition 1.")
        seen[id(layer.weight)] = name
        group = where.get(id(layer.weight))
        if group is None:
            raise ValueError(f"`optimizer` must hold the weight of factored PFA layer "
                             f"{name!r}, got an optimiser without it.")
        layer.method.check_optimizer(optimizer, group)
    hook = getattr(optimizer, "_alignlab_step_hooks", None)
    if hook is None:
        hook = _StepHooks()
        optimizer.register_step_pre_hook(hook.pre)
        optimizer.register_step_post_hook(hook.post)
        optimizer._alignlab_step_hooks = hook
    hook.add(layer for _, layer in layers)
    return len(hook.layers)


def mirror_step(model: nn.Module, *, lr: float = 0.1, weight_decay: float = 1.0,
                noise_std: float = 1.0, n_samples: int = 64, rng=None) -> int:
    """One weight-mirror phase step for every mirror-trained (WM) layer of ``model``.

    Each layer's method (``Method.mirror_update``), on its own: draw noise
    ``xi ~ N(0, noise_std^2)`` at its input, drive it through its weights, ``y = W xi``
    (no bias; convs with the layer's stride, dilation and groups and no padding, on an
    input just larger than the receptive field), and

    .. math:: F \\leftarrow (1 - \\eta \\lambda) F + \\eta \\langle y \\xi^T \\rangle

    with ``F`` the feedback kernel in W's layout and the average over samples (and
    positions). ``E[y xi^T] = noise_std^2 W``, so ``F`` converges to
    ``noise_std^2 W / weight_decay`` (``W`` itself with the defaults).

    Returns
    -------
    The number of WM layers updated.
    """
    lr = float(check_positive("lr", lr))
    weight_decay = float(check_positive("weight_decay", weight_decay, allow_zero=True))
    noise_std = float(check_positive("noise_std", noise_std))
    n_samples = check_int("n_samples", n_samples)
    generator = torch_generator(rng)
    count = 0
    for _, layer in converted_layers(model):
        if layer.method.mirror_trained:
            layer.method.mirror_update(layer, lr=lr, weight_decay=weight_decay,
                                       noise_std=noise_std, n_samples=n_samples,
                                       generator=generator)
            count += 1
    return count
