"""Per-layer learning rates: param_groups / make_optimizer's ``layer_lr_scales``."""

import pytest
import torch

import alignlab
from alignlab.models import MLP
from alignlab.nn import make_optimizer, param_groups


def _net(method="bp", **options):
    return alignlab.convert(MLP((6, 5, 4, 3), rng=0).double(), method, rng=0, **options)


def test_groups_per_layer():
    net = _net()
    groups = param_groups(net, lr=0.1, weight_decay=1e-3, layer_lr_scales=[1.0, 0.5, 2.0])
    assert [g["name"] for g in groups] == ["layer:1", "layer:3", "layer:5"]  # all claimed
    assert [g["lr"] for g in groups] == [0.1, 0.05, 0.2]
    assert [g["lr_scale"] for g in groups] == [1.0, 0.5, 2.0]
    assert [len(g["params"]) for g in groups] == [2, 2, 2]  # weight and bias
    plain = param_groups(net, lr=0.1)
    assert [(g["name"], g["lr_scale"]) for g in plain] == [("forward", 1.0)]


def test_learned_feedback_follows_its_layer():
    """KP's learned feedback trains at its layer's rate (Proposition 1 needs W's rate)."""
    net = _net("kp")
    groups = param_groups(net, lr=0.1, layer_lr_scales=[1.0, 0.5, 2.0])
    by_name = {g["name"]: g for g in groups}
    assert by_name["feedback:3"]["lr"] == 0.05 and by_name["feedback:5"]["lr"] == 0.2


def test_one_sgd_step_is_the_scaled_step():
    torch.manual_seed(0)
    net = _net()
    ref = {n: p.detach().clone() for n, p in net.named_parameters()}
    x, y = torch.randn(8, 6, dtype=torch.float64), torch.randint(0, 3, (8,))
    scales = [1.0, 0.25, 3.0]
    opt = make_optimizer(net, "sgd", lr=0.1, weight_decay=0.01, layer_lr_scales=scales)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    opt.step()
    for (name, p), scale in zip(net.named_parameters(), [s for s in scales for _ in (0, 1)],
                                strict=True):
        want = ref[name] - 0.1 * scale * (grads[name] + 0.01 * ref[name])
        torch.testing.assert_close(p.detach(), want, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("scales,message", [
    ([1.0, 2.0], r"^`layer_lr_scales` must be one factor per converted layer of the model "
                 r"\(3: '1', '3', '5'\), got \[1.0, 2.0\]\.$"),
    ([1.0, -2.0, 1.0], r"^`layer_lr_scales\[1\]` must be > 0, got -2.0\.$"),
    ("fast", r"^`layer_lr_scales` must be a list of positive numbers, got 'fast'\.$"),
])
def test_bad_scales_are_one_line(scales, message):
    with pytest.raises(ValueError, match=message):
        param_groups(_net(), lr=0.1, layer_lr_scales=scales)
