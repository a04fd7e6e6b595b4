"""Shared helpers of the GAIT-prop tests."""

import torch

from alignlab._linalg import angle_deg
from alignlab.models.invertible import InvertibleNet

F64_EPS = float(torch.finfo(torch.float64).eps)


def batch(n_in: int, size: int = 32, classes: int = 10, seed: int = 0, dtype=torch.float64):
    """Image-like inputs in [0, 1) and class labels, from their own generator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(size, n_in, dtype=dtype, generator=g)
    y = torch.randint(0, classes, (size,), generator=g)
    return x, y


def autograd_bp(model: InvertibleNet, x, y):
    """BP's weight and bias updates by autograd on 1/2 <|h_L - t_L|^2> (the independent
    reference for the hand-written rules)."""
    for p in model.parameters():
        p.grad = None
    out = model.output(x)
    t = model.output_target(out.detach(), y)
    (0.5 * (out - t).square().sum(1).mean()).backward()
    ups = [(-layer.weight.grad.clone(), -layer.bias.grad.clone()) for layer in model.layers]
    for p in model.parameters():
        p.grad = None
    return ups


def angles(reference, other):
    """Per-layer angle (degrees) between the weight updates of two lists of updates."""
    return [angle_deg(r[0], o[0]) for r, o in zip(reference, other, strict=True)]
