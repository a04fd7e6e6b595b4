"""GAIT-prop's and ITP's two forms: the difference form (the default: ``c_l (t_l - h_l)``
propagated itself) and the literal recipe (``form='targets'``: targets formed, then
subtracted). Equal in exact arithmetic; the difference form keeps its precision at any
gamma, the literal one loses ``gamma^-(L-l)`` of it."""

import pytest
from gaitprop_helpers import batch

from alignlab.gaitprop import FORMS, GaitProp, IncrementalTP, get_rule, kink_crossings, updates
from alignlab.models.invertible import InvertibleNet

SQUARE = (24,) * 5  # 4 weight layers
TOWER = (24, 24, 16, 12, 10)


def _rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def _assert_forms_agree(m, x, y, rule_cls, gamma, rtol):
    diff = updates(m, x, y, rule_cls(gamma=gamma))
    lit = updates(m, x, y, rule_cls(gamma=gamma, form="targets"))
    for i, (d, t) in enumerate(zip(diff, lit, strict=True)):
        assert _rel(d.weight, t.weight) < rtol, (i, _rel(d.weight, t.weight))
        assert _rel(d.bias, t.bias) < rtol, (i, _rel(d.bias, t.bias))


@pytest.mark.parametrize("rule_cls", [GaitProp, IncrementalTP], ids=["gait", "itp"])
@pytest.mark.parametrize("widths", [SQUARE, TOWER], ids=["square", "tower"])
@pytest.mark.parametrize("init", ["haar", "gaussian"])
def test_difference_form_equals_the_literal_form(rule_cls, widths, init):
    """Small nets, float64, moderate gamma: the literal form's own rounding is about
    ``u gamma^-(L-1) cond`` ~ 1e-16 / 0.2^3 ~ 1e-13 (x the conditioning of the Gaussian
    weights), far below 1e-9; crossings or not (gamma 0.2 crosses some kinks here)."""
    m = InvertibleNet(widths, init=init, rng=1)
    crossings = 0
    for seed in range(3):
        x, y = batch(widths[0], size=16, seed=seed)
        _assert_forms_agree(m, x, y, rule_cls, 0.2, 1e-9)
        crossings += sum(kink_crossings(m, x, y, rule_cls(gamma=0.2)))
    assert crossings > 0  # the kinks' exact treatment is part of what agrees


def test_the_default_form_is_the_difference_and_targets_is_selectable():
    assert FORMS == ("difference", "targets")
    assert GaitProp().form == "difference" and IncrementalTP().form == "difference"
    assert get_rule("gait", form="targets").form == "targets"
    with pytest.raises(ValueError, match=r"^`form` must be one of 'difference', 'targets'; "
                                         r"got 'target'\.$"):
        GaitProp(form="target")
