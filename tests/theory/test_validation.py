"""Bad input raises ValueError naming the argument; the theory package never imports torch."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import alignlab.theory as T

NAN = float("nan")

CASES = [
    # (function, args, kwargs, argument named in the message)
    (T.decay_factor, (-1, 0.1, 0.01), {}, "steps"),
    (T.decay_factor, (2.5, 0.1, 0.01), {}, "steps"),
    (T.decay_factor, (10, -0.1, 0.01), {}, "lr"),
    (T.decay_factor, (10, 0.1, NAN), {}, "weight_decay"),
    (T.decay_factor, (10, 0.1, 0.01), {"momentum": 1.0}, "momentum"),
    (T.decay_factor, (10, 0.1, 0.01), {"momentum": -0.1}, "momentum"),
    (T.decay_factor_schedule, (0.1, 0.01), {}, "lr"),
    (T.decay_factor_schedule, ([0.1, NAN], 0.01), {}, "lr"),
    (T.decay_factor_piecewise, ([(10, 0.1, -1.0)],), {}, "segments[0].weight_decay"),
    (T.decay_factor_piecewise, ([(1.5, 0.1, 0.1)],), {}, "segments[0].n_steps"),
    (T.decay_factor_piecewise, ([],), {}, "segments"),
    (T.decay_factor_piecewise, ([(10, 0.1)],), {}, "segments"),
    (T.decay_factor_continuous, (-1.0, 0.1), {}, "t"),
    (T.decay_rate_asymptotic, (0.1, 0.1), {"momentum": 2.0}, "momentum"),
    (T.mp_edges, (0.0,), {}, "lam"),
    (T.mp_edges, (NAN,), {}, "lam"),
    (T.narayana_moment, (-1, 0.5), {}, "k"),
    (T.narayana_moment, (2, -0.5), {}, "lam"),
    (T.entry_kurtosis, ("orthogonal",), {}, "ensemble"),
    (T.entry_kurtosis, ("cauchy",), {}, "ensemble"),
    (T.entry_kurtosis, ("sparse",), {"density": 0.0}, "density"),
    (T.entry_kurtosis, ("gaussian",), {"density": 0.5}, "density"),
    (T.mp_second_moment_finite, (0, 10), {}, "n_out"),
    (T.mp_second_moment_finite, (10, 2.5), {}, "n_mid"),
    (T.mp_second_moment_finite, (10, 20, 0.5), {}, "kurtosis"),
    (T.mp_second_moment_finite, (10, np.array([20, 0])), {}, "n_mid"),
    (T.eigenvalue_sd, (-1.0,), {}, "expansion_ratio"),
    (T.eigenvalue_sd_finite, (10, NAN), {}, "n_mid"),
    (T.path_alignment_cos, (0.0,), {}, "expansion_ratio"),
    (T.path_alignment_angle, (-1.0,), {}, "expansion_ratio"),
    (T.path_norm_ratio, (NAN,), {}, "expansion_ratio"),
    (T.path_alignment_cos_finite, (True, 10), {}, "n_out"),
    (T.path_alignment_angle_finite, (10, 0), {}, "n_mid"),
    (T.path_norm_ratio_finite, (10, 10, NAN), {}, "kurtosis"),
    (T.path_alignment_angle_orthogonal, (0.0,), {}, "expansion_ratio"),
    (T.path_norm_ratio_orthogonal, (-2.0,), {}, "expansion_ratio"),
    (T.eigenvalue_sd_orthogonal, (NAN,), {}, "expansion_ratio"),
    (T.path_alignment_angle_finite, (10, [10**20, 1.5]), {}, "n_mid"),
    (T.entry_moments, ("sparse",), {"density": 2.0, "density_name": "b_density"}, "b_density"),
    (T.alignment_dynamics_cos, (np.ones(3), np.ones(3), -1.0, 0.5, 1.2), {}, "r0_norm"),
    (T.alignment_dynamics_cos, (np.ones(3), np.ones(3), 1.0, NAN, 1.2), {}, "c_t"),
    (T.alignment_dynamics_cos, (np.ones(3), np.ones(3), 1.0, 0.5, 0.5), {}, "m2"),
    (T.alignment_dynamics_cos, (np.ones(3), np.ones(4), 1.0, 0.5, 1.2), {}, "wt"),
    (T.angle_deg, ([1.0, NAN], [1.0, 1.0]), {}, "x"),
    (T.angle_deg, ([1.0, 1.0], [0.0, 0.0]), {}, "y"),
    (T.norm_ratio, ([0.0, 0.0], [1.0, 1.0]), {}, "x"),
    (T.abs_moment_ratio, ("orthogonal",), {}, "ensemble"),
    (T.sign_concordant_cos, (np.zeros(4),), {}, "w"),
    (T.sign_concordant_angle_iid, ("laplace",), {}, "ensemble"),
    (T.sign_concordant_cos_random_magnitude, ("uniform", "nope"), {}, "b_ensemble"),
    (
        T.sign_concordant_cos_random_magnitude,
        ("sparse", "uniform"),
        {"w_density": 2.0},
        "w_density",
    ),
    (T.fa_init_cos_sd, (0,), {}, "n_entries"),
    (T.fa_init_cos_mean, (1.5,), {}, "n_entries"),
    (T.weight_mirror_feedback, (np.ones((2, 3)), 0.0), {}, "noise_sd"),
    (T.weight_mirror_feedback, (np.ones(3), 1.0), {}, "w"),
    (T.gaitprop_mismatch, (np.ones((2, 3)),), {}, "w"),
    (T.pinv_alignment_cos, (0, 10), {}, "n_rows"),
    (T.pinv_alignment_cos, (10, -3), {}, "n_cols"),
]


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "name"),
    CASES,
    ids=[f"{c[0].__name__}-{c[3]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_input_names_the_argument(func, args, kwargs, name):
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")):
        func(*args, **kwargs)


def test_checks_take_the_name_the_caller_knows():
    """Config keys and flags are checked with the same helpers as theory arguments:
    one message form, the caller's name (``optim.betas``, not ``momentum``)."""
    from alignlab._validate import check_momentum, invalid

    assert str(invalid("data.limit", "an integer >= 1", 0)) == (
        "`data.limit` must be an integer >= 1, got 0.")
    with pytest.raises(ValueError) as info:
        check_momentum([0.9, 1.0], name="optim.betas")
    assert str(info.value) == "`optim.betas` must be in [0, 1), got [0.9, 1.0]."
    with pytest.raises(ValueError, match=r"^`momentum` must be >= 0, got -0\.5\.$"):
        check_momentum(-0.5)


def test_every_public_name_is_exported_and_documented():
    """Functions and classes carry a docstring; constants (tables, defaults) are
    documented in their module's docstring."""
    import importlib

    for name in T.__all__:
        obj = getattr(T, name)
        if name == "symbolic":
            continue
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
        else:
            homes = [importlib.import_module(f"alignlab.theory.{m}")
                     for m in ("entries", "alignment", "spectrum", "decay")]
            assert any(name in (m.__doc__ or "") and name in getattr(m, "__all__", ())
                       for m in homes), name


def test_theory_never_imports_torch():
    code = (
        "import sys, alignlab.theory as T; T.symbolic; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
