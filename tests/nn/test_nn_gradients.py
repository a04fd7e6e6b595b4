"""Every method x layer kind: the gradients equal the method's formula (float64).

The expected values are computed here independently of alignlab's backward code: the
input and kernel gradients come from torch autograd through ``F.linear`` or the torch
``nn.Conv2d._conv_forward`` with the method's kernel, and PFA's error population
``e_bar = B delta`` from an einsum. Tolerance: 1e-10 relative (plus 1e-12 absolute for
entries that are zero), i.e. float64 rounding of O(100)-term sums with margin.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab._rng import TAG_AUX, make_streams
from alignlab.nn import METHODS

TOL = {"rtol": 1e-10, "atol": 1e-12}
DT = torch.float64

# name -> (module factory, input shape)
CONFIGS = {
    "linear2d": (lambda: nn.Linear(5, 4), (6, 5)),
    "linear3d": (lambda: nn.Linear(5, 4), (3, 2, 5)),
    "conv_stride_pad": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1), (2, 4, 7, 7)),
    "conv_dilation": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
        (2, 4, 8, 9),
    ),
    "conv_groups": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), (2, 4, 5, 5)),
    "conv_same_reflect": (
        lambda: nn.Conv2d(4, 6, 3, padding="same", dilation=2, padding_mode="reflect"),
        (2, 4, 6, 6),
    ),
}

FORMULA_METHODS = [m for m in METHODS if m not in ("dfa", "brsf")]


def make(config: str, method: str, seed: int = 0, **options):
    factory, x_shape = CONFIGS[config]
    torch.manual_seed(seed)
    plain = factory().to(DT)
    layer = alignlab.convert(plain, method, rng=seed + 1, **options)
    x = torch.randn(x_shape, dtype=DT)
    with torch.no_grad():
        delta = torch.randn_like(plain(x))
    return plain, layer, x, delta


def run(layer, x, delta):
    """Gradients of <layer(x), delta>: input, then every named parameter."""
    x = x.clone().requires_grad_()
    for p in layer.parameters():
        p.grad = None
    (layer(x) * delta).sum().backward()
    return x.grad, {n: p.grad for n, p in layer.named_parameters()}


def ref_forward(plain, x, kernel):
    """The plain layer's forward with ``kernel`` in place of W and no bias (torch's code)."""
    if isinstance(plain, nn.Linear):
        return F.linear(x, kernel)
    return plain._conv_forward(x, kernel, None)


def vjp(plain, x, kernel, delta):
    """(d<f(x, K), delta>/dx, .../dK) by torch autograd."""
    x = x.clone().requires_grad_()
    kernel = kernel.detach().clone().requires_grad_()
    return torch.autograd.grad(ref_forward(plain, x, kernel), (x, kernel), delta)


def e_bar(plain, delta, b):
    """B delta at every row/position, per group: b (n_mid, n_out/g)."""
    if isinstance(plain, nn.Linear):
        return delta @ b.t()
    g = plain.groups
    n, c, h, w = delta.shape
    bg = b.reshape(g, b.shape[0] // g, c // g)
    out = torch.einsum("gmo,ngohw->ngmhw", bg, delta.reshape(n, g, c // g, h, w))
    return out.reshape(n, b.shape[0], h, w)


def xavier_sd(plain):
    w = plain.weight
    rf = w[0, 0].numel() if w.dim() == 4 else 1
    return math.sqrt(2.0 / (w.shape[1] * rf + w.shape[0] * rf))


def bp_grads(plain, x, delta):
    """Weight and bias gradients of the plain torch layer (BP's)."""
    p = copy.deepcopy(plain)
    (p(x) * delta).sum().backward()
    return p.weight.grad, (None if p.bias is None else p.bias.grad)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("method", FORMULA_METHODS)
def test_gradients_equal_formula(method, config):
    impls = [{}] if not method.startswith("pfa") else [{"impl": "path"}, {"impl": "literal"}]
    for opts in impls:
        extra = {"expansion_ratio": 1.5} if method in ("pfa", "pfa-sparse") else {}
        plain, layer, x, delta = make(config, method, **extra, **opts)
        gx, grads = run(layer, x, delta)
        w = layer.weight.detach()

        # W and b: exactly BP's, for every method
        gw_bp, gb_bp = bp_grads(plain, x, delta)
        torch.testing.assert_close(grads["weight"], gw_bp, **TOL)
        if gb_bp is not None:
            torch.testing.assert_close(grads["bias"], gb_bp, **TOL)

        if method.startswith("pfa"):
            b = layer.pfa_B
            rt = layer.pfa_R.detach()
            if method == "pfa-sparse":
                rt = rt * layer.pfa_R_mask
            eb = e_bar(plain, delta, b)
            gx_ref, grt_ref = vjp(plain, x, rt, eb)  # R e_bar down, e_bar h^T for R^T
            if method == "pfa-sparse":
                grt_ref = grt_ref * layer.pfa_R_mask
            torch.testing.assert_close(gx, gx_ref, **TOL)
            torch.testing.assert_close(grads["pfa_R"], grt_ref, **TOL)
            assert not b.requires_grad and "pfa_B" not in grads  # B: a buffer, never learns
            continue

        if method == "bp":
            kernel = w
        elif method == "usf":
            kernel = xavier_sd(plain) * torch.sign(w)
        elif method == "frsf":
            kernel = torch.sign(w) * layer.feedback_magnitude
        else:  # fa, kp, wm
            kernel = layer.feedback.detach()
        gx_ref, _ = vjp(plain, x, kernel, delta)
        torch.testing.assert_close(gx, gx_ref, **TOL)
        if method == "kp":
            torch.testing.assert_close(grads["feedback"], gw_bp, **TOL)
        if method == "wm":
            assert grads["feedback"] is None  # learns only in the mirror phase
        if method == "fa":
            assert "feedback" in dict(layer.named_buffers())


@pytest.mark.parametrize("config", CONFIGS)
def test_brsf_redraws_sign_concordant_magnitudes(config):
    plain, layer, x, delta = make(config, "brsf")
    w = layer.weight.detach()
    # draw k: |N(0, s^2)| from the layer's own stream (alignlab._rng), as fixed.py says
    seed = layer.method.scalar_state(layer)["seed"]
    gen = make_streams(seed).torch(0, TAG_AUX, w.device)
    kernel = torch.sign(w) * torch.randn(w.shape, generator=gen, dtype=DT).abs() * xavier_sd(plain)
    torch.testing.assert_close(layer.effective_feedback(), kernel, rtol=0, atol=0)
    gx, _ = run(layer, x, delta)  # the step uses the draw effective_feedback showed
    torch.testing.assert_close(gx, vjp(plain, x, kernel, delta)[0], **TOL)
    assert layer.method.scalar_state(layer) == {"seed": seed, "draws": 1}
    gx2, _ = run(layer, x, delta)  # a new step draws new magnitudes
    assert not torch.allclose(gx, gx2)


# --------------------------------------------------------------------------- DFA


@pytest.mark.parametrize("kind", ["linear2d", "linear3d", "conv"])
def test_dfa_sends_output_error_through_fixed_matrices(kind):
    torch.manual_seed(0)
    if kind == "conv":
        net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.Tanh(),
                            nn.Conv2d(4, 5, 3, padding=1, groups=1), nn.Tanh(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))
        x = torch.randn(2, 3, 6, 6, dtype=DT)
    else:
        net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 6), nn.Tanh(),
                            nn.Linear(6, 3))
        x = torch.randn((2, 3, 5) if kind == "linear3d" else (7, 5), dtype=DT)
    net = alignlab.convert(net.to(DT), "dfa", rng=1)
    l0, l2, l4 = net[0], net[2], net[-1]
    assert l0.method.output_size == 3
    out = net(x.clone().requires_grad_())
    e = torch.randn_like(out)
    xg = x.clone().requires_grad_()
    (net(xg) * e).sum().backward()

    with torch.no_grad():  # forward values, recomputed with plain torch ops
        a0 = l0._conv_forward(x, l0.weight, l0.bias) if kind == "conv" else F.linear(
            x, l0.weight, l0.bias)
        h0 = torch.tanh(a0)
    e2 = e.reshape(e.shape[0], -1) if kind == "conv" else e

    def tiled(proj, like):  # conv: tiled over space / (H W); linear: per row
        if proj.shape == like.shape:
            return proj
        if like.dim() == 4:
            return (proj / (like.shape[2] * like.shape[3]))[:, :, None, None].expand_as(like)
        return proj.reshape(proj.shape[0], *([1] * (like.dim() - 2)), -1).expand_as(like)

    # the input of the network gets e through the first layer's own matrix
    torch.testing.assert_close(xg.grad, tiled(e2 @ l0.dfa_B, x), **TOL)
    # layer 0's delta: (B_2 e) * f'(a_0), B_2 being the matrix of the layer above it
    d0 = tiled(e2 @ l2.dfa_B, h0) * (1 - h0**2)
    gw0 = vjp(l0, x, l0.weight, d0)[1] if kind == "conv" else d0.reshape(
        -1, d0.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
    torch.testing.assert_close(l0.weight.grad, gw0, **TOL)
    # the output layer's delta is e itself: its weight gradient is BP's
    assert l4.weight.grad is not None and l4.method.name == "dfa"


def test_dfa_without_captured_error_fails_clearly():
    layer = alignlab.nn.FeedbackLinear(3, 2, method="dfa", output_size=2)
    with pytest.raises(RuntimeError, match="DFA"):
        layer(torch.randn(4, 3, requires_grad=True)).sum().backward()


# -------------------------------------------------------------------- BP limits


def _copy_state(layer, name, value):
    with torch.no_grad():
        getattr(layer, name).copy_(value)


def _orthonormal_columns(n_mid, n_out_g, groups):
    blocks = []
    for _ in range(groups):
        q, _ = torch.linalg.qr(torch.randn(n_mid // groups, n_out_g, dtype=DT))
        blocks.append(q)  # (n_mid/g, n_out/g), B_g^T B_g = I
    return torch.cat(blocks, 0)


def _set_rt_to_bw(layer):
    """R^T = B W per group (the fixed point of Proposition 1)."""
    g = layer.groups if layer.weight.dim() == 4 else 1
    w = layer.weight.detach()
    b = layer.pfa_B
    bg = b.reshape(g, b.shape[0] // g, b.shape[1])
    wg = w.reshape(g, w.shape[0] // g, -1)
    _copy_state(layer, "pfa_R", torch.bmm(bg, wg).reshape(layer.pfa_R.shape))


LIMITS = {
    "fa": lambda layer: _copy_state(layer, "feedback", layer.weight),
    "kp": lambda layer: _copy_state(layer, "feedback", layer.weight),
    "pfa-id": lambda layer: _copy_state(layer, "pfa_R", layer.weight),
    "pfa-o": _set_rt_to_bw,
    "pfa": lambda layer: (
        _copy_state(layer, "pfa_B", _orthonormal_columns(
            layer.pfa_B.shape[0], layer.pfa_B.shape[1],
            layer.groups if layer.weight.dim() == 4 else 1)),
        _set_rt_to_bw(layer),
    ),
}


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("method", LIMITS)
def test_bp_limits_equal_torch_gradients(method, config):
    extra = {"expansion_ratio": 2.0} if method == "pfa" else {}
    plain, layer, x, delta = make(config, method, **extra)
    LIMITS[method](layer)
    gx, grads = run(layer, x, delta)
    ref = copy.deepcopy(plain)
    xr = x.clone().requires_grad_()
    (ref(xr) * delta).sum().backward()
    torch.testing.assert_close(gx, xr.grad, **TOL)
    torch.testing.assert_close(grads["weight"], ref.weight.grad, **TOL)
    if ref.bias is not None:
        torch.testing.assert_close(grads["bias"], ref.bias.grad, **TOL)


# ------------------------------------------------------------ cheap == literal


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("method", ["pfa", "pfa-o", "pfa-sparse"])
def test_cheap_pfa_equals_literal_recipe(method, config):
    out = {}
    for impl in ("literal", "path", "auto"):
        _, layer, x, delta = make(config, method, seed=3, impl=impl)
        gx, grads = run(layer, x, delta)
        out[impl] = (gx, grads["weight"], grads["pfa_R"])
    for impl in ("path", "auto"):
        for got, want in zip(out[impl], out["literal"], strict=True):
            torch.testing.assert_close(got, want, **TOL)


def test_auto_picks_cheaper_form_per_shape():
    from alignlab.nn.functional import Conv2dOps, LinearOps, PathFeedback

    rule = PathFeedback("auto")
    # MLP layer, small batch, r = 10: the literal recipe is cheaper on both counts
    b = torch.empty(5120, 512)
    assert rule._choose(LinearOps(), None, (512, 784), torch.empty(64, 512), b) == (
        "literal", "literal")
    # ResNet conv, batch x positions >> channels: the path is cheaper
    b = torch.empty(640, 64)
    delta = torch.empty(128, 64, 8, 8)
    assert rule._choose(Conv2dOps(), None, (64, 64, 3, 3), delta, b) == ("path", "path")
