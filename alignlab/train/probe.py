"""What the run logs about each layer: the per-layer references and the fixed probe batch
behind ``layers.csv``.

:class:`Probe` serves models converted to a method (:func:`alignlab.nn.convert`): the
alignment of every converted layer (:func:`alignlab.nn.alignment`), the update angle
against BP's on a fixed probe batch (:func:`alignlab.nn.update_angles`) and the weight
scalars against ``W_0`` and the initial feedback ``F_0``. :class:`TargetProbe` serves
models trained by a layer-local rule (:class:`alignlab.gaitprop.Trainer`). Both return the
rows of one log point with :meth:`rows` (the columns of
:data:`~alignlab.train.rundir.LAYER_COLUMNS`) and the all-layer update angle.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..data import TensorDataset
from ..nn import alignment, converted_layers, update_angles
from .losses import Loss

__all__ = ["Probe", "TargetProbe"]


def _dot(a: Tensor, b: Tensor) -> float:
    return float(torch.dot(a.reshape(-1).double(), b.reshape(-1).double()))


class Probe:
    """The per-layer references (``W_0``, ``F_0`` on the device) and the fixed probe batch
    behind layers.csv."""

    def __init__(self, model: nn.Module, train_ds, size: int, seed: int, loss: Loss):
        self.loss = loss  # the training loss (train.loss), whose updates are compared
        self.layers = converted_layers(model)
        self.w0 = [layer.weight.detach().clone() for _, layer in self.layers]
        self.fb0 = []  # (brSF: the first step's draw; reading it does not advance them)
        for _, layer in self.layers:
            fb = layer.effective_feedback()
            self.fb0.append(None if fb is None else fb.detach().clone())
        self.w0_sq = [_dot(w, w) for w in self.w0]
        self.fb0_sq = [math.nan if f is None else _dot(f, f) for f in self.fb0]
        self.batch = None
        if size and isinstance(train_ds, TensorDataset):
            gen = torch.Generator().manual_seed(seed)
            idx = torch.randperm(len(train_ds), generator=gen)[:size].to(train_ds.device)
            self.batch = (train_ds.x.index_select(0, idx), train_ds.y.index_select(0, idx))

    def rows(self, model: nn.Module, epoch: int, step: int, decay_c: float
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        """layers.csv rows at this point, and the all-layer update angle."""
        was_training = model.training
        model.train()
        upd = (update_angles(model, self.loss, *self.batch)  # restores the model
               if self.batch is not None else None)
        align = {r["layer"]: r for r in alignment(model)}
        model.train(was_training)
        by_layer = {} if upd is None else {r["layer"]: r for r in upd}
        rows = []
        for i, (name, layer) in enumerate(self.layers):
            a, u = align[name], by_layer.get(name, {})
            w = layer.weight.detach()
            fb0 = self.fb0[i]
            rows.append({
                "epoch": epoch, "step": step, "layer": name, "type": a["type"],
                "method": a["method"], "measure": a["measure"], "angle_deg": a["angle_deg"],
                "norm_ratio": a["norm_ratio"], "feedback_used": a["feedback_used"],
                "update_angle_deg": u.get("angle_deg", math.nan),
                "update_norm_ratio": u.get("norm_ratio", math.nan),
                "w_sq": _dot(w, w), "w_dot_w0": _dot(w, self.w0[i]), "w0_sq": self.w0_sq[i],
                "fb0_sq": self.fb0_sq[i],
                "w_dot_fb0": math.nan if fb0 is None else _dot(w, fb0),
                "decay_c": decay_c,
            })
        total = by_layer.get("(all)", {})
        return rows, {"update_angle_deg": total.get("angle_deg", math.nan),
                      "update_norm_ratio": total.get("norm_ratio", math.nan)}


class TargetProbe:
    """layers.csv for a model trained by a layer-local rule (``alignlab.gaitprop``): per
    layer, the rule's update against BP's on the fixed probe batch, ``|W W^T - I|_F``, the
    LU's condition estimate and (GAIT-prop) the first-order theory's angle
    (:meth:`alignlab.gaitprop.Trainer.diagnostics`), plus the
    weight scalars; no feedback, so no alignment (``measure`` 'none')."""

    def __init__(self, trainer, train_ds, size: int, seed: int):
        self.trainer = trainer
        self.layers = list(trainer.model.layers)
        self.w0 = [layer.weight.detach().clone() for layer in self.layers]
        self.w0_sq = [_dot(w, w) for w in self.w0]
        gen = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(train_ds), generator=gen)[:max(size, 1)].to(train_ds.device)
        self.batch = (train_ds.x.index_select(0, idx), train_ds.y.index_select(0, idx))

    def rows(self, model: nn.Module, epoch: int, step: int, decay_c: float
             ) -> tuple[list[dict[str, Any]], dict[str, float]]:
        diag = {r["layer"]: r for r in self.trainer.diagnostics(*self.batch)}
        rows = []
        for i, layer in enumerate(self.layers):
            d = diag[f"layers[{i}]"]
            w = layer.weight.detach()
            rows.append({
                "epoch": epoch, "step": step, "layer": f"layers.{i}",
                "type": type(layer).__name__, "method": self.trainer.rule.name,
                "measure": "none", "angle_deg": math.nan, "norm_ratio": math.nan,
                "update_angle_deg": d["update_angle_deg"],
                "update_norm_ratio": d["update_norm_ratio"],
                "w_sq": _dot(w, w), "w_dot_w0": _dot(w, self.w0[i]), "w0_sq": self.w0_sq[i],
                "fb0_sq": math.nan, "w_dot_fb0": math.nan, "decay_c": decay_c,
                "ortho_residual": d["ortho_residual"], "condition": d["condition"],
                "update_angle_first_order_deg": d["first_order_angle_deg"],
            })
        total = diag["(all)"]
        return rows, {"update_angle_deg": total["update_angle_deg"],
                      "update_norm_ratio": total["update_norm_ratio"]}

