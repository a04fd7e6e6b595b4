"""Alignment metrics: weight/path alignment per layer, and the update angle against BP."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from .._linalg import angle_deg
from .._records import Records
from .convert import converted_layers
from .methods import BP

__all__ = ["alignment", "angle_deg", "bp_twin", "norm_ratio", "update_angles"]

ALIGNMENT_COLUMNS = ["layer", "type", "method", "measure", "shape", "angle_deg", "norm_ratio",
                     "feedback_used", "note"]
UPDATE_COLUMNS = ["layer", "type", "method", "angle_deg", "norm_ratio"]


def norm_ratio(x: Tensor, y: Tensor) -> float:
    """``|y|_F / |x|_F`` (NaN when ``x`` is zero)."""
    nx = float(x.detach().double().norm())
    return float(y.detach().double().norm()) / nx if nx else math.nan


def _compare(x: Tensor, y: Tensor) -> tuple[float, float]:
    """(angle in degrees, ``|y| / |x|``) between ``x`` and ``y``; both NaN when either is
    zero (a zero update or feedback has no direction)."""
    x, y = x.detach(), y.detach()
    if not (bool(x.any()) and bool(y.any())):
        return math.nan, math.nan
    return angle_deg(x, y), norm_ratio(x, y)


def alignment(model: nn.Module) -> Records:
    """Per converted layer: angle (degrees) and norm ratio between ``W`` and its feedback.

    The feedback is the layer's *effective* feedback in W's layout (the kernel that
    multiplies ``delta`` on its way down): the fixed/learned kernel for FA, SF, KP, WM
    (``measure='weight'``) and the path ``P^T = B^T R^T`` for PFA (``measure='path'``).
    Conv kernels are compared flattened, ``(C_out, C_in/groups * kh * kw)``.

    Rows where the value would not mean anything carry ``angle_deg = norm_ratio = nan`` and
    a note: methods with no weight-shaped feedback (``measure='none'``: DFA's maps the
    output error to the layer, not ``delta``; use :func:`update_angles`), and layers whose
    feedback was never used because nothing below them needs a gradient (the first layer:
    ``feedback_used`` False, as seen in the last forward pass with gradients enabled;
    None before any such pass) *and* whose feedback does not learn from the backward pass
    (FA, SF). Feedback that does (``Method.feedback_learns_from_backward``: KP, PFA's
    ``R``) keeps learning from ``grad_W`` even where it is not used, so its angle is
    reported, with ``feedback_used`` False and a note. Feedback redrawn at every step
    (``Method.feedback_redrawn_each_step``: brSF) is reported as one draw: the one the
    next training step will use (reading it does not advance the draws).

    Returns
    -------
    ``Records`` with columns layer, type, method, measure, shape, angle_deg, norm_ratio,
    feedback_used, note; ``print`` it for a table, ``.to_csv(path)`` to save it.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    layers = converted_layers(model)
    if not layers:
        raise ValueError("`model` must have converted layers (use alignlab.convert), got none.")
    rows = []
    for name, layer in layers:
        meth = layer.method
        w = layer.weight.detach()
        row = {"layer": name, "type": type(layer).__name__, "method": meth.name,
               "measure": meth.measure, "shape": "x".join(map(str, w.shape)),
               "angle_deg": math.nan, "norm_ratio": math.nan,
               "feedback_used": layer.feedback_used, "note": ""}
        fb = layer.effective_feedback()
        if fb is None:
            row["note"] = ("not comparable with W (no weight-shaped feedback: "
                           "the method sends the output error); see update_angles")
        elif layer.feedback_used is False and not meth.feedback_learns_from_backward:
            row["note"] = "feedback never used (nothing below needs a gradient)"
        else:
            if layer.feedback_used is False:  # KP/PFA: the state still learns from grad_W
                row["note"] = "unused below this layer; its learned state is still measured"
            row["angle_deg"], row["norm_ratio"] = _compare(w, fb)
            if meth.feedback_redrawn_each_step:
                row["note"] = "one draw of a per-step random feedback"
        rows.append(row)
    return Records(rows, columns=ALIGNMENT_COLUMNS)


@contextlib.contextmanager
def bp_twin(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily train every converted layer of ``model`` by BP: a twin sharing the weights."""
    layers = [layer for _, layer in converted_layers(model)]
    methods = [layer.method for layer in layers]
    try:
        for layer in layers:
            layer.method = BP()
        yield model
    finally:
        for layer, meth in zip(layers, methods, strict=True):
            layer.method = meth


def _devices(model: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def update_angles(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], inputs: Tensor,
                  target: Tensor) -> Records:
    """Per converted layer: angle between the method's weight gradient and BP's.

    Both gradients are taken on the same batch and the same weights: the BP pass runs the
    same model with every converted layer switched to BP (:func:`bp_twin`), from the
    same random state (so dropout masks agree), and the model's buffers (BatchNorm
    running statistics), existing ``.grad`` and the converted layers' scalar state
    (``Method.scalar_state``: a per-step random feedback's draw count) are restored
    afterwards, so the method's pass uses the feedback the next training step will use
    and calling this does not change training. For SGD the update is ``-lr * grad``, so
    this is the angle between the two updates (before weight decay).

    Returns
    -------
    ``Records`` with columns layer, type, method, angle_deg, norm_ratio (``|g_method| /
    |g_bp|``), one row per converted layer and a last row ``'(all)'`` over all of them;
    NaN where either gradient is zero.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` must be a torch.nn.Module, got {type(model).__name__}.")
    layers = converted_layers(model)
    if not layers:
        raise ValueError("`model` must have converted layers (use alignlab.convert), got none.")
    params = list(model.parameters())
    saved_grads = [p.grad for p in params]
    saved_buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    saved_scalars = [layer.method.scalar_state(layer) for _, layer in layers]
    devices = _devices(model)

    def weight_grads() -> list[Tensor]:
        for p in params:
            p.grad = None
        with torch.random.fork_rng(devices=devices):
            loss = loss_fn(model(inputs), target)
            loss.backward()
        grads = [torch.zeros_like(layer.weight) if layer.weight.grad is None
                 else layer.weight.grad.detach().clone() for _, layer in layers]
        with torch.no_grad():
            for k, v in model.named_buffers():
                if k in saved_buffers:
                    v.copy_(saved_buffers[k])
        return grads

    try:
        g_method = weight_grads()
        with bp_twin(model):
            g_bp = weight_grads()
    finally:
        for p, g in zip(params, saved_grads, strict=True):
            p.grad = g
        for (_, layer), scalars in zip(layers, saved_scalars, strict=True):
            if layer.method.scalar_state(layer) != scalars:  # (a forward pass moved it on)
                layer.method.load_scalar_state(layer, scalars)
    rows = []
    for (name, layer), gm, gb in zip(layers, g_method, g_bp, strict=True):
        angle, ratio = _compare(gb, gm)
        rows.append({"layer": name, "type": type(layer).__name__, "method": layer.method.name,
                     "angle_deg": angle, "norm_ratio": ratio})
    all_m = torch.cat([g.reshape(-1).double() for g in g_method])
    all_b = torch.cat([g.reshape(-1).double() for g in g_bp])
    angle, ratio = _compare(all_b, all_m)
    rows.append({"layer": "(all)", "type": "", "method": rows[0]["method"],
                 "angle_deg": angle, "norm_ratio": ratio})
    return Records(rows, columns=UPDATE_COLUMNS)
