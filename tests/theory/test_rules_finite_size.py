"""The other rules' finite-size predictions (alignlab.theory.rules): exact identities,
reference values, bad input. Their agreement with Monte Carlo is tests/sim/test_sim_rules.py."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

import alignlab.theory as T

EPS = np.finfo(float).eps
NAN = float("nan")


# ------------------------------------------------------------------------ bad input
CASES = [
    (T.random_magnitude_angle_given_w, (np.zeros((3, 4)),), "w"),
    (T.random_magnitude_angle_given_w, ([[1.0, NAN]],), "w"),
    (T.sign_concordant_angle_sd_iid, ("sparse", 100), "ensemble"),
    (T.sign_concordant_angle_sd_iid, ("orthogonal", 100), "ensemble"),
    (T.sign_concordant_angle_sd_iid, ("gaussian", 0), "n_entries"),
    (T.fa_null_angle, (1.5,), "n_entries"),
    (T.weight_mirror_effective_samples, (0, 0.02, 1.0), "n_samples"),
    (T.weight_mirror_effective_samples, (16, -0.02, 1.0), "lr"),
    (T.weight_mirror_effective_samples, (16, 0.02, NAN), "weight_decay"),
    (T.weight_mirror_effective_samples, (16, 1.0, 2.0), "lr * weight_decay"),
    (T.weight_mirror_floor_angle, (0, 16, 0.02, 1.0), "n_in"),
    (T.weight_mirror_norm_ratio, (10, 16, 0.02, 1.0, 0.0), "noise_std"),
    (T.weight_mirror_angle_given_w, (np.ones((2, 3, 4)), 16, 0.02, 1.0), "w"),
    (T.weight_mirror_angle_given_w, (np.ones((2, 3)), 1.5, 0.02, 1.0), "n_samples"),
    (T.weight_mirror_angle_given_w, (np.ones((2, 3)), 16, [0.1, 0.2], 1.0), "lr"),
    (T.isotropic_angle, (-1.0, 10, 2), "residual"),
    (T.isotropic_angle, (1.0, 0, 2), "n"),
]


@pytest.mark.parametrize(("func", "args", "name"), CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_naming_the_argument(func, args, name):
    with pytest.raises(ValueError, match=re.escape(f"`{name}`")) as info:
        func(*args)
    assert "\n" not in str(info.value)


def test_the_module_never_imports_torch():
    code = ("import sys, alignlab.theory.rules, alignlab.theory.closed_forms; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------- sign-concordant
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_random_magnitude_depends_on_the_nonzero_magnitudes_only(seed, scale):
    """sign(0) = 0 drops zero entries; the overall scale and the signs do not matter."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((6, 9)) * (rng.random((6, 9)) < 0.7)
    w[0, 0] = 1.0  # a nonzero entry
    ref = T.random_magnitude_angle_given_w(w[w != 0])
    got = T.random_magnitude_angle_given_w(-scale * w)
    np.testing.assert_allclose(got, ref, rtol=64 * EPS)


def test_random_magnitude_tends_to_the_iid_limit():
    """Large iid Gaussian W: the mean tends to arccos(E|w| E|b| / sqrt(E w^2 E b^2)) with
    Gaussian magnitudes (2/pi), and the SD shrinks as 1/sqrt(N)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(2_000_000)
    mean, sd = T.random_magnitude_angle_given_w(w)
    limit = np.degrees(np.arccos(T.sign_concordant_cos_random_magnitude("gaussian", "gaussian")))
    # |W|_1 / (sqrt(N) |W|_F) fluctuates by ~0.25/sqrt(N) relative: 5 of those, in degrees
    assert abs(mean - limit) <= np.degrees(5 * 0.25 / np.sqrt(w.size) / np.sin(np.radians(limit)))
    # Var ln cos = ((pi/2 - 1)/kappa - 1/2)/N with kappa = 2/pi
    expected = np.degrees(np.sqrt(((np.pi / 2 - 1) * np.pi / 2 - 0.5) / w.size)
                          / np.tan(np.radians(limit)))
    assert sd == pytest.approx(expected, rel=1e-3)


def test_sign_concordant_sd_values():
    n = np.array([100, 10_000])
    gauss = T.sign_concordant_angle_sd_iid("gaussian", n)
    cot = 1 / np.tan(np.radians(T.sign_concordant_angle_iid("gaussian")))
    np.testing.assert_allclose(gauss, np.degrees(cot * np.sqrt((np.pi / 2 - 1.5) / n)),
                               rtol=64 * EPS)
    uni = T.sign_concordant_angle_sd_iid("uniform", 30)
    assert uni == pytest.approx(np.degrees(np.sqrt(3.0) * np.sqrt(1 / 900)), rel=64 * EPS)
    assert T.sign_concordant_angle_sd_iid("rademacher", 100) == 0.0  # sign(W) is W


# ------------------------------------------------------------------------- FA's null
def test_fa_null_is_90_and_the_exact_gaussian_sd():
    """For Gaussian B the angle has density ~ sin^(N-2): its SD by quadrature; the two-term
    series is within 1.5/N^2 of it (the next term, (4/3)/N^2, as N grows)."""
    for n in (2, 3, 5, 10, 50, 1000):
        mean, sd = T.fa_null_angle(n)
        assert mean == 90.0

        def dens(t, n=n):
            return np.sin(t) ** (n - 2)

        var = (integrate.quad(lambda t: (t - np.pi / 2) ** 2 * dens(t), 0, np.pi,
                              epsabs=0, epsrel=1e-12)[0]
               / integrate.quad(dens, 0, np.pi, epsabs=0, epsrel=1e-12)[0])
        assert abs(np.radians(sd) / np.sqrt(var) - 1) <= 1.5 / n**2, n
    # leading order: fa_init_cos_sd
    np.testing.assert_allclose(np.radians(T.fa_null_angle([10**6, 10**8])[1]),
                               T.fa_init_cos_sd([10**6, 10**8]), rtol=1e-6)


# --------------------------------------------------------------------- weight mirror
def test_effective_samples_is_the_geometric_sum():
    """N_eff = S (sum_k (1-a)^k)^2 / sum_k (1-a)^2k, summed directly."""
    for s, lr, wd in ((16, 0.02, 1.0), (5, 0.3, 2.0), (1, 1.0, 1.0)):
        a = lr * wd
        k = np.arange(20_000)
        direct = s * np.sum((1 - a) ** k) ** 2 / np.sum((1 - a) ** (2 * k))
        assert T.weight_mirror_effective_samples(s, lr, wd) == pytest.approx(direct, rel=1e-9)
    assert T.weight_mirror_effective_samples(64, 0.02, 1.0) == pytest.approx(6336.0, rel=EPS)


def test_floor_and_norm_ratio_values():
    """docs/results.md: 512 inputs, 64 samples, lr 0.02, wd 1: 15.9 deg (their n_in/N_eff
    gives 15.87; the diagonal's +1 gives 15.88) and 1.040."""
    assert abs(float(T.weight_mirror_floor_angle(512, 64, 0.02, 1.0)) - 15.883) <= 5e-4
    np.testing.assert_allclose(T.weight_mirror_floor_angle(512, 64, 0.02, 1.0),
                               np.degrees(np.arctan(np.sqrt(513 / 6336))), rtol=8 * EPS)
    np.testing.assert_allclose(T.weight_mirror_norm_ratio(512, 64, 0.02, 1.0, 1.0),
                               np.sqrt(1 + 513 / 6336), rtol=8 * EPS)
    # the scale is s^2 / wd
    np.testing.assert_allclose(T.weight_mirror_norm_ratio(512, 64, 0.01, 2.0, 0.5),
                               0.125 * np.sqrt(1 + 513 / 6336), rtol=8 * EPS)


def test_given_w_is_near_the_floor_for_a_wide_w():
    """A high-rank W (rho ~ 1/n_out): the mean angle given W is the floor up to the
    second-order terms, of the order of its variance (here < 1e-3 deg)."""
    rng = np.random.default_rng(1)
    w = rng.uniform(-1, 1, (512, 784))
    for s in (16, 64, 256):
        mean, sd = T.weight_mirror_angle_given_w(w, s, 0.02, 1.0)
        floor = float(T.weight_mirror_floor_angle(784, s, 0.02, 1.0))
        assert abs(mean - floor) < 1e-3
        assert 0 < sd < 0.1


def test_isotropic_angle_lives_in_theory():
    """Moved from alignlab.gaitprop (a pure closed form): |R|_F sqrt(k / n) radians."""
    import alignlab.gaitprop as G

    assert not hasattr(G, "isotropic_angle")
    np.testing.assert_allclose(T.isotropic_angle(0.1, 64, [4, 1]),
                               np.degrees([0.1 * 0.25, 0.1 / 8]), rtol=8 * EPS)


def test_degenerate_and_extreme_arguments_are_finite():
    """One nonzero entry (brSF) or one input (the mirror): the feedback is a multiple of W,
    angle exactly 0; a vanishing or a near-unstable mirror rate stays finite, no warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert T.random_magnitude_angle_given_w([[0.0, -2.0]]) == (0.0, 0.0)
        assert T.weight_mirror_angle_given_w(np.ones((3, 1)), 4, 0.1, 1.0) == (0.0, 0.0)
        w = np.random.default_rng(2).uniform(-1, 1, (20, 30))
        for lr in (1e-17, 1.0, 1.99):
            mean, sd = T.weight_mirror_angle_given_w(w, 16, lr, 1.0)
            floor = float(T.weight_mirror_floor_angle(30, 16, lr, 1.0))
            assert np.isfinite(sd) and abs(mean - floor) < 0.1 * max(floor, 1e-12) + 3 * sd
        assert float(T.weight_mirror_floor_angle(10, 2**70, 1e-300, 1.0)) == 0.0
        assert float(T.weight_mirror_norm_ratio(10, 2**70, 1e-300, 1.0, 1.0)) == 1.0
