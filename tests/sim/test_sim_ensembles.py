"""Ensembles: laws (variance, kurtosis, support), Haar orthogonality, seeding, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import alignlab.sim as sim
import alignlab.theory as theory

Z = 5.0  # a handful of moment checks per run: 5 standard errors never trip by chance
IID = ["gaussian", "uniform", "rademacher", "sparse"]


def _ens(name: str) -> sim.Ensemble:
    return sim.get_ensemble(name, density=0.3) if name == "sparse" else sim.get_ensemble(name)


def test_registry() -> None:
    assert set(sim.ENSEMBLES) == {"gaussian", "uniform", "rademacher", "orthogonal", "sparse"}
    for name, cls in sim.ENSEMBLES.items():
        assert cls.name == name
        assert isinstance(sim.get_ensemble(name), cls)


@pytest.mark.parametrize("name", IID)
def test_kurtosis_matches_theory(name: str) -> None:
    ens = _ens(name)
    density = getattr(ens, "density", 1.0)
    assert ens.kurtosis == pytest.approx(theory.entry_kurtosis(name, density=density))
    assert sim.get_ensemble("orthogonal").kurtosis is None


@pytest.mark.parametrize("name", IID)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iid_moments(name: str, dtype: torch.dtype) -> None:
    """Mean 0, variance std^2 and kurtosis .kurtosis, within Z standard errors.

    Entries are iid, so standard errors over entries are valid here (unlike eigenvalues).
    """
    ens, std = _ens(name), 0.7
    x = ens.sample(4, 300, 200, std=std, generator=0, dtype=dtype).double().flatten().numpy()
    n = x.size
    rounding = 1e-6  # float32 storage of +-std (Rademacher's x^2 has zero variance)
    assert abs(x.mean()) <= Z * std / math.sqrt(n)
    x2 = x**2
    assert abs(x2.mean() - std**2) <= Z * x2.std() / math.sqrt(n) + rounding
    # kurtosis = E x^4 / (E x^2)^2: compare E x^4 with k * std^4 (exact variance)
    x4 = x**4
    assert abs(x4.mean() - ens.kurtosis * std**4) <= Z * x4.std() / math.sqrt(n) + rounding


def test_supports() -> None:
    std = 0.5
    u = sim.get_ensemble("uniform").sample(2, 100, 100, std=std, generator=1)
    a = math.sqrt(3.0) * std
    assert float(u.min()) >= -a and float(u.max()) < a
    r = sim.get_ensemble("rademacher").sample(2, 100, 100, std=std, generator=1)
    assert set(torch.unique(r).tolist()) == {-std, std}
    sp = sim.get_ensemble("sparse", density=0.2).sample(4, 200, 250, std=std, generator=1)
    frac = float((sp != 0).double().mean())
    assert abs(frac - 0.2) <= Z * math.sqrt(0.2 * 0.8 / sp.numel())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("rows", "cols"), [(50, 20), (20, 20), (20, 50)])
def test_orthogonal_scaling(rows: int, cols: int, dtype: torch.dtype) -> None:
    """std = 1/sqrt(rows) (the B convention, rows = n_mid, cols = n_out): B^T B = I when
    n_mid >= n_out; otherwise B B^T = (n_out/n_mid) I (tight frame, mean eigenvalue 1)."""
    B = sim.get_ensemble("orthogonal").sample(3, rows, cols, std=1 / math.sqrt(rows),
                                              generator=2, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    if rows >= cols:
        torch.testing.assert_close(B.mT @ B, torch.eye(cols, dtype=dtype).expand(3, -1, -1),
                                   atol=tol, rtol=0)
    else:
        lam = cols / rows
        torch.testing.assert_close(B @ B.mT, lam * torch.eye(rows, dtype=dtype).expand(3, -1, -1),
                                   atol=tol * lam, rtol=0)
        ev = torch.linalg.eigvalsh(B.mT @ B)
        assert float(ev.mean()) == pytest.approx(1.0, abs=10 * tol)
    assert float((B**2).mean()) == pytest.approx(1.0 / rows, rel=1e-4)


def test_orthogonal_is_haar() -> None:
    """Haar on O(3): E tr Q = 0 and E (tr Q)^2 = 1. Without the sign fix of QR's R
    diagonal, LAPACK's Householder signs bias the diagonal and E tr Q != 0."""
    Q = sim.get_ensemble("orthogonal").sample(4000, 3, 3, std=1 / math.sqrt(3), generator=3,
                                              dtype=torch.float64)
    tr = torch.diagonal(Q, dim1=-2, dim2=-1).sum(-1).numpy()
    assert abs(tr.mean()) <= Z * tr.std() / math.sqrt(tr.size)
    assert abs((tr**2).mean() - 1.0) <= Z * (tr**2).std() / math.sqrt(tr.size)


@settings(max_examples=10)
@given(name=st.sampled_from(sorted(sim.ENSEMBLES)), seed=st.integers(0, 2**63 - 1),
       rows=st.integers(1, 30), cols=st.integers(1, 30))
def test_same_seed_same_matrices(name: str, seed: int, rows: int, cols: int) -> None:
    ens = sim.get_ensemble(name)
    a = ens.sample(3, rows, cols, generator=seed)
    b = ens.sample(3, rows, cols, generator=seed)
    assert torch.equal(a, b)
    # sample i does not depend on n_samples
    assert torch.equal(ens.sample(5, rows, cols, generator=seed)[:3], a)
    if rows * cols > 1 and name != "rademacher":
        assert not torch.equal(a, ens.sample(3, rows, cols, generator=seed + 1))


def test_generator_kinds() -> None:
    ens = sim.get_ensemble("gaussian")
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = ens.sample(2, 4, 4, generator=g1), ens.sample(2, 4, 4, generator=g2)
    assert torch.equal(a, b)
    assert not torch.equal(a, ens.sample(2, 4, 4, generator=g1))  # the generator advanced
    n1, n2 = np.random.default_rng(5), np.random.default_rng(5)
    assert torch.equal(ens.sample(2, 4, 4, generator=n1), ens.sample(2, 4, 4, generator=n2))
    ss = np.random.SeedSequence(5)
    assert torch.equal(ens.sample(2, 4, 4, generator=ss), ens.sample(2, 4, 4, generator=ss))
    assert not torch.equal(ens.sample(2, 4, 4), ens.sample(2, 4, 4))  # None: fresh entropy


def test_options() -> None:
    assert sim.get_ensemble("sparse", density=0.5).kurtosis == pytest.approx(6.0)
    with pytest.raises(ValueError, match="`ensemble`"):
        sim.get_ensemble("cauchy")
    with pytest.raises(ValueError, match="`density`"):
        sim.get_ensemble("gaussian", density=0.5)
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="`density`"):
            sim.get_ensemble("sparse", density=bad)


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"n_samples": -1}, "n_samples"),
        ({"n_samples": 0}, "n_samples"),
        ({"rows": 2.5}, "rows"),
        ({"cols": 0}, "cols"),
        ({"std": float("nan")}, "std"),
        ({"std": -1.0}, "std"),
        ({"dtype": torch.float16}, "dtype"),
        ({"dtype": torch.int32}, "dtype"),
        ({"device": "no-such-device"}, "device"),
        ({"generator": -3}, "generator"),
        ({"generator": "seed"}, "generator"),
    ],
)
def test_bad_input(kwargs: dict, arg: str) -> None:
    call = {"n_samples": 2, "rows": 3, "cols": 4, **kwargs}
    n, r, c = call.pop("n_samples"), call.pop("rows"), call.pop("cols")
    with pytest.raises(ValueError, match=f"`{arg}`"):
        sim.get_ensemble("gaussian").sample(n, r, c, **call)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(sim.ENSEMBLES))
def test_cuda_reproducible_and_same_law(name: str) -> None:
    ens = sim.get_ensemble(name)
    a = ens.sample(8, 64, 32, std=0.5, generator=1, device="cuda")
    assert a.device.type == "cuda"
    assert torch.equal(a, ens.sample(8, 64, 32, std=0.5, generator=1, device="cuda"))
    x2 = a.double().square().flatten()  # E b^2 = std^2, within Z standard errors
    assert abs(float(x2.mean()) - 0.25) <= Z * float(x2.std()) / math.sqrt(x2.numel()) + 1e-12


@pytest.mark.parametrize("name", sorted(sim.ENSEMBLES))
def test_torch_backend_draws(name: str) -> None:
    """The torch draw path (used on GPUs) exercised on CPU tensors: same laws."""
    from alignlab.sim.engine import Draw

    ens, std = _ens(name), 0.5
    out = torch.empty(6, 120, 80, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for j in range(out.shape[0]):
        ens.fill_(out[j], std, Draw(gen))
    ens.finish_(out, std)
    x = out.flatten().numpy()
    assert abs((x**2).mean() - std**2) <= Z * (x**2).std() / math.sqrt(x.size) + 1e-12
    if ens.kurtosis is not None:
        x4 = x**4
        assert abs(x4.mean() - ens.kurtosis * std**4) <= Z * x4.std() / math.sqrt(x.size) + 1e-12
    else:  # orthogonal: orthonormal columns after scaling back
        q = out / (std * math.sqrt(120))
        torch.testing.assert_close(q.mT @ q, torch.eye(80, dtype=out.dtype).expand(6, -1, -1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_missing_cuda_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="`device`"):
        sim.get_ensemble("gaussian").sample(1, 2, 2, device="cuda")


# ---------------------------------------------------------------------- Masked
@pytest.mark.parametrize(("base", "density"), [("uniform", 0.25), ("rademacher", 0.5),
                                               ("gaussian", 0.8)])
def test_masked_law(base: str, density: float) -> None:
    """Bernoulli(d) x the base law with variance std^2: the nonzero fraction d, E b^2 =
    std^2 and E b^4 = (k_base / d) std^4 (``.kurtosis``, from the theory's masked moments),
    each within Z standard errors over iid entries."""
    ens, std = sim.Masked(base, density), 0.7
    assert ens.kurtosis == pytest.approx(theory.entry_kurtosis(base) / density, rel=1e-15)
    x = ens.sample(4, 300, 200, std=std, generator=5, dtype=torch.float64).flatten().numpy()
    n = x.size
    assert abs(np.mean(x != 0) - density) <= Z * math.sqrt(density * (1 - density) / n)
    for values, expect in ((x**2, std**2), (x**4, ens.kurtosis * std**4)):
        assert abs(values.mean() - expect) <= Z * values.std() / math.sqrt(n)


def test_masked_gaussian_is_sparse() -> None:
    """Sparse is the Gaussian case: the same law and, draw by draw, the same numbers."""
    masked, sparse = sim.Masked(sim.Gaussian(), 0.3), sim.get_ensemble("sparse", density=0.3)
    assert masked.kurtosis == pytest.approx(sparse.kurtosis, rel=1e-15)
    assert torch.equal(masked.sample(3, 40, 30, generator=8),
                       sparse.sample(3, 40, 30, generator=8))
    assert sim.Masked("sparse", 0.5).kurtosis == pytest.approx(3.0 / 0.1 / 0.5)  # twice


@pytest.mark.parametrize(("base", "density", "message"), [
    ("orthogonal", 0.5, r"^`base` must be an iid ensemble .*, got 'orthogonal'\.$"),
    ("cauchy", 0.5, r"^`base` must be one of"),
    ("uniform", 0.0, r"^`density` must be in \(0, 1\], got 0\.0\.$"),
    ("uniform", 1.5, r"^`density` must be in \(0, 1\]"),
])
def test_masked_bad_options(base: str, density: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sim.Masked(base, density)
