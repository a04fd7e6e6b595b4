"""The mismatch is first order in the orthogonality residual |W W^T - I|: the prediction
derived from W^{-1} - W^T = W^T[(W W^T)^{-1} - I], a log-log slope of 1, and the identity."""

import numpy as np
import pytest
import torch
from gaitprop_helpers import angles, batch

from alignlab.gaitprop import (
    first_order_angles,
    kink_crossings,
    orthogonality_residual,
    updates,
)
from alignlab.models.invertible import InvertibleNet
from alignlab.theory import isotropic_angle

N, WIDTHS = 64, (64,) * 5  # 4 weight layers
GAMMA = 1e-2  # rounding floor ~1e-6 deg in layer 1 (1e-3 would put it at ~1e-3 deg)


def _perturbed(scale: float, seed: int = 0) -> InvertibleNet:
    """Haar weights plus ``scale * G / sqrt(n)`` (G iid normal, fixed): residual ~ scale."""
    m = InvertibleNet(WIDTHS, rng=seed)
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.add_(scale / N**0.5 * torch.randn(N, N, dtype=torch.float64,
                                                           generator=g))
    return m


def _measure(scale: float, seed: int = 0):
    m = _perturbed(scale, seed)
    x, y = batch(N, seed=seed)
    assert not any(kink_crossings(m, x, y, "gait", GAMMA))  # the theorem's condition
    bp = [(u.weight, u.bias) for u in updates(m, x, y, "bp")]
    gait = [(u.weight, u.bias) for u in updates(m, x, y, "gait", gamma=GAMMA)]
    resid = np.mean([float(orthogonality_residual(layer.weight)) for layer in m.layers])
    return resid, np.array(angles(bp, gait)), np.array(first_order_angles(m, x, y))


def test_identity_behind_the_prediction():
    w = _perturbed(0.1).layers[0].weight.detach()
    eye = torch.eye(N, dtype=torch.float64)
    lhs = torch.linalg.inv(w) - w.T
    rhs = w.T @ (torch.linalg.inv(w @ w.T) - eye)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)
    resid = w @ w.T - eye  # first order: -W^T R, the error O(|R|^2)
    err = float((lhs + w.T @ resid).norm())
    assert err < 2 * float(resid.norm()) ** 2 and err > 0.01 * float(resid.norm()) ** 2


def test_mismatch_slope_is_one_on_log_log_axes():
    scales = np.logspace(-5, -3, 5)
    rows = [_measure(s) for s in scales]
    resid = np.array([r[0] for r in rows])
    measured = np.array([r[1] for r in rows])  # (scales, layers)
    assert np.all(measured[:, -1] == 0)  # the top layer is never off
    for layer in range(3):
        slope = np.polyfit(np.log(resid), np.log(measured[:, layer]), 1)[0]
        # first-order theory: exactly 1 as |R| -> 0; second order moves the slope by about
        # |R|_F / ln(range) < 0.01 here, the rounding floor (1e-6 deg) by < 1e-2 at the
        # smallest point (angle 2e-3 deg)
        assert abs(slope - 1) < 0.02, (layer, slope)


@pytest.mark.parametrize("seed", [0, 1])
def test_first_order_prediction_matches_as_the_residual_shrinks(seed):
    for scale in (1e-4, 1e-3, 1e-2):
        resid, measured, predicted = _measure(scale, seed)
        # relative error of a first-order expansion: O(|R|); 3 |R|_F bounds it with room
        # (measured: 0.01 at |R|_F = 0.11); 1e-3 covers the rounding floor at the smallest
        np.testing.assert_allclose(measured[:-1], predicted[:-1], rtol=3 * resid + 1e-3)
        assert predicted[-1] == 0.0


def test_mismatch_grows_with_depth_below_the_perturbed_layers():
    """Each perturbed layer above adds its own first-order term: the bottom layer is the
    most off (the isotropic estimate |R|_F sqrt((L - l) / n) orders the layers the same
    way; it is a rough guide, checked here only within a factor 2)."""
    resid, measured, _ = _measure(1e-3)
    assert measured[0] > measured[1] > measured[2] > measured[3] == 0
    rough = isotropic_angle(resid, N, np.arange(3, 0, -1))
    assert np.all((measured[:-1] > rough / 2) & (measured[:-1] < 2 * rough))
