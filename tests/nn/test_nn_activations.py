"""alignlab.nn.activations: the erf activation g(z) = erf(z / sqrt(2)) and the registry."""

import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from alignlab.models import MLP
from alignlab.nn.activations import ACTIVATIONS, Erf


def test_erf_forward_is_the_float64_reference():
    z = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    np.testing.assert_allclose(Erf()(z).numpy(), erf(z.numpy() / math.sqrt(2)),
                               rtol=4e-16, atol=4e-16)


def test_erf_derivative_is_gprime():
    """g'(z) = sqrt(2/pi) exp(-z^2/2), the spec's derivative, through autograd."""
    z = torch.linspace(-5, 5, 201, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(Erf()(z).sum(), z)
    ref = math.sqrt(2 / math.pi) * np.exp(-z.detach().numpy() ** 2 / 2)
    np.testing.assert_allclose(grad.numpy(), ref, rtol=1e-14, atol=1e-300)


def test_erf_gradcheck():
    z = torch.randn(4, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    assert torch.autograd.gradcheck(Erf(), (z,))
    assert torch.autograd.gradgradcheck(Erf(), (z,))


def test_mlp_builds_every_activation_by_name():
    for name, cls in ACTIVATIONS.items():
        net = MLP((5, 4, 3, 2), activation=name, rng=0)
        assert [type(m) for m in net if isinstance(m, cls)] == [cls, cls]


def test_unknown_activation_is_one_line():
    with pytest.raises(ValueError, match=r"^`activation` must be one of .*'erf'; got 'erff'\.$"):
        MLP((5, 3), activation="erff")


def test_mlp_without_biases():
    net = MLP((5, 4, 2), activation="erf", bias=False, rng=0)
    assert [n for n, _ in net.named_parameters()] == ["1.weight", "3.weight"]
    with_bias = MLP((5, 4, 2), activation="erf", rng=0)
    assert [n for n, _ in with_bias.named_parameters()] == ["1.weight", "1.bias", "3.weight",
                                                             "3.bias"]
    with pytest.raises(ValueError, match=r"^`bias` must be true or false, got 1\.$"):
        MLP((5, 4, 2), bias=1)
