"""alignment(), update_angles(), mirror_step() and param_groups()."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab.models import MLP, resnet20
from alignlab.nn import (
    alignment,
    angle_deg,
    converted_layers,
    make_optimizer,
    mirror_step,
    param_groups,
    update_angles,
)


def _backward(net, x, y):
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()


def test_angle_and_norm_ratio_helpers():
    from alignlab._linalg import angle_deg as the_angle

    assert angle_deg is the_angle  # one angle function for the whole package
    x = torch.tensor([1.0, 0.0])
    assert angle_deg(x, torch.tensor([1.0, 1.0])) == pytest.approx(45.0, abs=1e-12)
    assert angle_deg(x, -x) == pytest.approx(180.0)
    assert alignlab.nn.norm_ratio(x, 3 * x) == pytest.approx(3.0)
    assert math.isnan(alignlab.nn.norm_ratio(torch.zeros(2), x))


def test_zero_gradient_has_no_angle():
    """A layer that gets no gradient (its output unused) has no update direction: NaN."""

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.used, self.unused = nn.Linear(4, 6), nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            h = torch.tanh(self.body(x))
            return self.used(h) + 0 * self.unused(h).detach()

    net = alignlab.convert(TwoHeads(), "fa", rng=0)
    rec = update_angles(net, F.cross_entropy, torch.randn(5, 4), torch.randint(0, 3, (5,)))
    rows = {r["layer"]: r for r in rec}
    assert math.isnan(rows["unused"]["angle_deg"]) and math.isnan(rows["unused"]["norm_ratio"])
    assert rows["used"]["angle_deg"] < 1e-4 and rows["used"]["norm_ratio"] == pytest.approx(1)
    assert rows["body"]["angle_deg"] > 1.0  # FA: the layer below the top is not BP


@pytest.mark.parametrize("model", [MLP((6, 5, 3)), nn.Linear(6, 3)], ids=["mlp", "bare"])
def test_metrics_of_an_unconverted_model_raise(model):
    with pytest.raises(ValueError, match="`model` must have converted layers"):
        alignment(model)
    x, y = torch.randn(2, 6), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="`model` must have converted layers"):
        update_angles(model, F.cross_entropy, x, y)


def test_alignment_table_marks_unused_feedback(tmp_path):
    net = alignlab.convert(MLP((20, 16, 12, 5)), "fa", rng=0)
    rec = alignment(net)
    assert rec.column("feedback_used") == [None, None, None]  # before any forward pass
    _backward(net, torch.randn(4, 20), torch.randint(0, 5, (4,)))
    rec = alignment(net)
    assert rec.column("layer") == ["1", "3", "5"]
    assert rec.column("feedback_used") == [False, True, True]
    assert math.isnan(rec[0]["angle_deg"]) and "never used" in rec[0]["note"]
    assert 40 < rec[1]["angle_deg"] < 140  # random feedback: around 90 degrees
    text = str(rec)
    assert "angle_deg" in text and "never used" in text
    path = rec.to_csv(tmp_path / "align.csv")
    assert path.read_text().splitlines()[0].startswith("layer,type,method,measure")


@pytest.mark.parametrize("method", ["kp", "pfa"])
def test_alignment_reports_learned_feedback_even_where_unused(method):
    # KP's B and PFA's R learn from grad_W in the first layer too: the angle means something
    net = alignlab.convert(MLP((20, 16, 12, 5)), method, rng=0)
    _backward(net, torch.randn(4, 20), torch.randint(0, 5, (4,)))
    rec = alignment(net)
    assert rec[0]["feedback_used"] is False
    assert 0.0 < rec[0]["angle_deg"] < 180.0 and "still measured" in rec[0]["note"]


def test_alignment_bp_is_zero_and_pfa_o_at_fixed_point_is_zero():
    x, y = torch.randn(4, 20), torch.randint(0, 5, (4,))
    bp = alignlab.convert(MLP((20, 16, 12, 5)), "bp")
    _backward(bp, x, y)
    np.testing.assert_allclose(alignment(bp).column("angle_deg")[1:], 0.0, atol=1e-12)
    pfa_o = alignlab.convert(MLP((20, 16, 12, 5)).double(), "pfa-o", rng=0)
    for _, layer in converted_layers(pfa_o):
        with torch.no_grad():
            layer.pfa_R.copy_(layer.pfa_B @ layer.weight)
    _backward(pfa_o, x.double(), y)
    rec = alignment(pfa_o)
    assert rec.column("measure") == ["path"] * 3
    np.testing.assert_allclose(rec.column("angle_deg")[1:], 0.0, atol=1e-10)
    np.testing.assert_allclose(rec.column("norm_ratio")[1:], 1.0, rtol=1e-12)


# Path alignment at the fixed point R^T = B W, through the real layers and `alignment`,
# against Proposition 3 at finite size (`path_alignment_angle_finite`, the ratio of
# expectations with the exact second moment of B^T B for the uniform B the layers draw).
# The tolerance is derived, not chosen: the angle of one layer varies over draws of B and
# W (SD about 0.19 deg at n_out = 100, n_in = 200, r = 10), so K layers are drawn and
# the mean is compared within t(0.9995, K-1) standard errors estimated from those draws,
# plus a bound on the Jensen bias of the mean (sample angle vs ratio of expectations,
# O(1/n_out); measured < 0.02 deg in 400 draws at n_out = 30 ... 200, bounded by 0.05).
# The gap to the theory at a wrong ratio (r = 8.5 or 12: n_mid 850 or 1200) is ~1.4 deg,
# about 7x the tolerance, so a wrong n_mid, a wrong variance of B or a path that is not
# B^T B W fails; the old +-1.5 deg window passed r = 8.5.
N_OUT, N_IN, K_DRAWS, JENSEN_BOUND = 100, 200, 12, 0.05


def _fixed_point_angles(r):
    from alignlab._linalg import mid_width

    angles = []
    for seed in range(K_DRAWS):
        torch.manual_seed(seed)
        layer = alignlab.convert(nn.Linear(N_IN, N_OUT).double(), "pfa", rng=seed,
                                 expansion_ratio=r)
        assert layer.pfa_B.shape == (mid_width(N_OUT, r), N_OUT)
        with torch.no_grad():
            layer.pfa_R.copy_(layer.pfa_B @ layer.weight)
        angles.append(alignment(layer)[0]["angle_deg"])
    angles = np.array(angles)
    se = angles.std(ddof=1) / math.sqrt(K_DRAWS)
    tol = scipy.stats.t.ppf(1 - 1e-3 / 2, K_DRAWS - 1) * se + JENSEN_BOUND
    return angles.mean(), tol


def _theory(r):
    from alignlab._linalg import mid_width
    from alignlab.theory import entry_kurtosis, path_alignment_angle_finite

    return float(path_alignment_angle_finite(N_OUT, mid_width(N_OUT, r),
                                             entry_kurtosis("uniform")))


@pytest.mark.parametrize("r", [10.0, 8.5, 12.0])
def test_pfa_path_alignment_at_fixed_point_matches_finite_size_theory(r):
    mean, tol = _fixed_point_angles(r)
    assert tol < 0.4  # the estimate is sharp enough to tell the ratios apart
    assert abs(mean - _theory(r)) < tol
    for wrong in {10.0, 8.5, 12.0} - {r}:  # and the theory at another ratio is rejected
        assert abs(mean - _theory(wrong)) > tol
    if r == 10.0:  # near the r -> inf limit arctan(1/sqrt(r)) = 17.55 deg
        assert abs(mean - math.degrees(math.atan(1 / math.sqrt(10)))) < 0.1


def test_dfa_alignment_not_reported_as_weight_alignment():
    net = alignlab.convert(MLP((8, 6, 3)), "dfa", rng=0)
    _backward(net, torch.randn(4, 8), torch.randint(0, 3, (4,)))
    rec = alignment(net)
    assert all(math.isnan(a) for a in rec.column("angle_deg"))
    assert "update_angles" in rec[1]["note"]


@pytest.mark.parametrize("model", ["mlp", "resnet20"])
def test_update_angles_against_bp_twin(model):
    torch.manual_seed(0)
    base = MLP((10, 8, 6, 3)) if model == "mlp" else resnet20(num_classes=3)
    x = torch.randn(4, 10) if model == "mlp" else torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 3, (4,))
    bp = alignlab.convert(base, "bp")
    rec = update_angles(bp, F.cross_entropy, x, y)
    np.testing.assert_allclose(rec.column("angle_deg"), 0.0, atol=1e-4)
    np.testing.assert_allclose(rec.column("norm_ratio"), 1.0, rtol=1e-6)
    # FA: the top layer's update is BP's; the ones below are not
    fa = alignlab.convert(base, "fa", rng=0)
    fa.train()
    stats = {k: v.clone() for k, v in fa.state_dict().items() if "running" in k}
    grads_before = [p.grad for p in fa.parameters()]
    rec = update_angles(fa, F.cross_entropy, x, y)
    assert rec[-2]["angle_deg"] < 1e-4  # top layer (last before '(all)')
    assert rec[0]["angle_deg"] > 1.0
    assert rec[-1]["layer"] == "(all)"
    # buffers (BN running stats) and .grad are restored
    for k, v in stats.items():
        torch.testing.assert_close(fa.state_dict()[k], v)
    assert all(g is None for g in grads_before) and all(p.grad is None for p in fa.parameters())
    assert all(m.method.name == "fa" for _, m in converted_layers(fa))
    dfa = alignlab.convert(base, "dfa", rng=0)
    rec = update_angles(dfa, F.cross_entropy, x, y)
    assert rec[-2]["angle_deg"] < 1e-4


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_mirror_step_aligns_wm_feedback(kind):
    torch.manual_seed(0)
    if kind == "linear":
        net = nn.Sequential(nn.Linear(30, 20), nn.ReLU(), nn.Linear(20, 10))
    else:
        net = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, groups=2), nn.ReLU(),
                            nn.Conv2d(8, 6, 3, dilation=2))
    net = alignlab.convert(net, "wm", rng=0)
    before = [angle_deg(m.weight.detach(), m.feedback.detach()) for _, m in converted_layers(net)]
    assert min(before) > 60
    for _ in range(60):
        assert mirror_step(net, lr=0.1, n_samples=128, rng=None) == 2
    for _, m in converted_layers(net):
        assert angle_deg(m.weight.detach(), m.feedback.detach()) < 12
        ratio = float(m.feedback.detach().norm() / m.weight.detach().norm())
        assert 0.8 < ratio < 1.2  # F -> noise_std^2 W / weight_decay = W


def test_param_groups_and_adam_warning():
    net = alignlab.convert(MLP((6, 5, 3)), "pfa", rng=0, expansion_ratio=2)
    groups = param_groups(net, lr=0.1, weight_decay=1e-4)
    assert [g["name"] for g in groups] == ["forward", "feedback"]
    assert groups[1]["weight_decay"] == 1e-4
    assert {id(p) for p in groups[1]["params"]} == {id(net[1].pfa_R), id(net[3].pfa_R)}
    n_all = sum(len(g["params"]) for g in groups)
    assert n_all == len(list(net.parameters()))
    groups = param_groups(net, lr=0.1, weight_decay=1e-4, feedback_weight_decay=0.0)
    assert groups[1]["weight_decay"] == 0.0
    with pytest.warns(UserWarning, match="linear optimiser"):
        make_optimizer(net, "adam", lr=1e-3)
    with pytest.warns(UserWarning, match="linear optimiser"):
        param_groups(net, lr=1e-3, optimizer=torch.optim.AdamW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = make_optimizer(net, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-4)
        make_optimizer(alignlab.convert(MLP((6, 5, 3)), "fa"), "adam", lr=1e-3)
    assert [g["name"] for g in opt.param_groups] == ["forward", "feedback"]
    with pytest.raises(ValueError, match="`lr` must be > 0"):
        param_groups(net, lr=0)
    bp = alignlab.convert(MLP((6, 5, 3)), "bp")
    assert [g["name"] for g in param_groups(bp, lr=0.1)] == ["forward"]
