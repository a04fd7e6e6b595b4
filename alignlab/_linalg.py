"""Small numerical primitives every part of the package shares (one copy each).

* :func:`angle_deg`: the angle between two tensors, accurate near 0 and 180 degrees;
* :func:`haar_orthogonal_`: Haar-distributed orthonormal frames (QR with Mezzadri's sign fix);
* :func:`mid_width`: ``n_mid`` from ``n_out`` and the expansion ratio (one rounding rule).

``angle_deg`` and ``mid_width`` work on numpy arrays without importing torch (so
``alignlab.theory`` stays torch-free); torch is imported only for torch inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["angle_deg", "haar_orthogonal_", "mid_width"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def angle_deg(x, y, axis=None):
    r"""Angle in degrees between ``x`` and ``y`` over the entries on ``axis`` (all by default).

    .. math::

        \angle(X, Y) = \operatorname{atan2}\big(|Y_\perp|\,|X|,\ \langle X, Y\rangle\big),
        \qquad Y_\perp = Y - \frac{\langle X, Y\rangle}{|X|^2} X,

    which equals ``degrees(arccos(<X, Y> / (|X| |Y|)))`` but keeps full relative precision
    near 0 degrees, where ``arccos`` of a clipped cosine is off by about 1e-6 degrees
    (PFA-o and KP sit there). NaN where either norm is zero.

    Parameters
    ----------
    x, y : numpy array or torch.Tensor
        Broadcastable; torch inputs are evaluated in float64 on their device.
    axis : int or tuple of int, optional
        Axes to reduce; the others are a batch. ``None``: every entry.

    Returns
    -------
    float for a full reduction of torch inputs, else an array (numpy for numpy inputs, a
    float64 tensor for batched torch inputs).
    """
    if _is_torch(x) or _is_torch(y):
        import torch

        x = torch.as_tensor(x).detach().double()
        y = torch.as_tensor(y).detach().to(device=x.device).double()
        dims = tuple(range(max(x.dim(), y.dim()))) if axis is None else axis
        xy = (x * y).sum(dims, keepdim=True)
        xx = (x * x).sum(dims, keepdim=True)
        perp = y - (xy / xx) * x
        pp = (perp * perp).sum(dims)
        xx, yy = xx.squeeze(dims), (y * y).sum(dims)
        out = torch.rad2deg(torch.atan2(torch.sqrt(pp * xx), xy.squeeze(dims)))
        out = torch.where((xx > 0) & (yy > 0), out, torch.nan)
        return float(out) if axis is None else out
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        xy = np.sum(x * y, axis=axis, keepdims=True)
        xx = np.sum(x * x, axis=axis, keepdims=True)
        perp = y - (xy / xx) * x
        pp = np.sum(perp * perp, axis=axis)
        xx, yy = np.squeeze(xx, axis), np.sum(y * y, axis=axis)
        out = np.degrees(np.arctan2(np.sqrt(pp * xx), np.squeeze(xy, axis)))
        return np.where((xx > 0) & (yy > 0), out, np.nan)[()]


def haar_orthogonal_(batch):
    """Overwrite ``batch`` (torch, ``(..., rows, cols)``, filled with iid N(0, 1) entries)
    with Haar-distributed orthonormal frames: orthonormal columns if ``rows >= cols``, else
    orthonormal rows. QR with the signs of ``diag(R)`` made positive (Mezzadri 2007); without
    the sign fix the law is not Haar. Returns ``batch``."""
    import torch

    rows, cols = batch.shape[-2:]
    tall = rows >= cols
    a = batch if tall else batch.mT
    q, r = torch.linalg.qr(a)  # q: (..., max, min), orthonormal columns
    sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(q.dtype)
    batch.copy_(q.mul_(sign[..., None, :]) if tall else q.mul_(sign[..., None, :]).mT)
    return batch


def mid_width(n_out, expansion_ratio, groups: int = 1):
    """``n_mid`` for a layer with ``n_out`` outputs at expansion ratio ``r``: the one rule.

    ``floor(n_out * r)`` (Figure 3's protocol, ``int(100 * 10**0.8) = 630``), computed with a
    1e-9 guard so that ``100 * 0.29`` gives 29, at least 1, and rounded *up* to a multiple of
    ``groups`` (grouped convolutions split ``B`` into ``groups`` blocks). Vectorised over
    numpy arrays (int64, or float64 where a value exceeds int64); returns a Python int for
    scalar input.
    """
    with np.errstate(over="ignore"):
        n = np.maximum(1, np.floor(np.asarray(n_out, dtype=float) * expansion_ratio + 1e-9))
        n = groups * np.ceil(n / groups)
    if not np.all(np.isfinite(n)):
        raise ValueError(f"`expansion_ratio` must give a finite width n_out * r, got "
                         f"{expansion_ratio!r} (n_out = {n_out!r}).")
    if n.ndim == 0:
        return int(n)  # a Python int: exact past int64 (r = 1e18 gives n_mid = 1e20)
    return n.astype(np.int64) if np.all(n < 2.0**63) else n  # floats where int64 would wrap
