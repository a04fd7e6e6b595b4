"""``alignlab compare``: measured alignment against Propositions 1-3 and Monte Carlo.

* synthetic run directories with known answers: PFA layers set by hand to the fixed point
  ``R^T = B W`` with ``W`` drawn independently of ``B`` (z-scores near 0, with the bound
  derived below), one layer coupled to ``B`` on purpose (the conditional MC must see it),
  and logged scalars whose predictions are known exactly;
* the command end to end on a tiny real training run (synthetic data, MLP, PFA, 2 epochs,
  strong decay), through ``alignlab.cli.main``;
* every error case: exit status 2, one line, nothing written;
* a tiny run of every method and layer-local rule through compare: each layer gets its
  method's theory (``Method.alignment_theory``) and a finite prediction, or "measured
  only" with the reason; no method named in compare.py; BP all zero;
* the feedback laws, the masked ensemble, and the study's configs (every grid point loads).
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import math
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from alignlab import cli, theory
from alignlab.nn import converted_layers
from alignlab.reports import compare as cmp
from alignlab.train import initial_model, load_config, load_trained, rebuild_run, train
from alignlab.train.config import dumps_toml, resolve_config
from alignlab.train.rundir import LAYER_COLUMNS, METRIC_COLUMNS, CsvLog

REPO = Path(__file__).resolve().parents[2]
STUDY = REPO / "analysis" / "compare_study"
REQUIRED = ("run", "method", "expansion_ratio", "layer", "n_out", "n_in", "n_mid", "epoch",
            "measured_deg", "predicted_deg", "fixed_point_deg", "mc_mean_deg", "mc_sd_deg", "z",
            "cond_mean_deg", "cond_sd_deg", "cond_z", "dyn_mean_deg", "dyn_sd_deg", "dyn_z")
UNIFORM_K4 = 1.8  # the default b_init 'uniform'
EPS = np.finfo(float).eps

# A teacher-student problem (as tests/train): 300 examples, MLP 20-48-32-4, PFA r = 4.
# Strong decay: burst 0.3 at lr 0.05 takes c from 1 to ~0.01 within the 2 epochs.
TINY = {
    "data": {"name": "synthetic", "n_train": 300, "n_test": 200, "input_shape": [20],
             "num_classes": 4},
    "model": {"name": "mlp", "sizes": [20, 48, 32, 4]},
    "method": {"name": "pfa", "expansion_ratio": 4},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01,
              "weight_decay_burst": 0.3},
    "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "probe_size": 32,
              "log_every_steps": 4},
}


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """Every test here runs torch on one thread (``one_thread`` in tests/conftest.py)."""


def tiny_run(folder: Path, **sections) -> Path:
    tables = {k: dict(v) for k, v in TINY.items()}
    for section, values in sections.items():
        tables[section] = dict(values) if section == "method" else {**tables[section], **values}
    config = folder.parent / f"{folder.name}.toml"
    config.write_text(dumps_toml(tables))
    train(load_config(config), folder, quiet=True)
    return folder


@pytest.fixture(scope="module")
def pfa_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("runs") / "pfa")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def cli_main(argv, monkeypatch) -> int:
    """``alignlab.cli.main`` (``compare`` is registered by :mod:`alignlab.reports.cli`)."""
    del monkeypatch
    return cli.main(argv)


# --------------------------------------------------------------------------- synthetic runs


def synthetic_run(folder: Path, seed: int, *, couple: str | None = None, c: float = 0.0,
                  move: bool = False, sizes=(24, 64, 48, 10), method: str = "pfa",
                  options=None) -> Path:
    """A run directory written by hand, Proposition 1 made exact: the model as the config's
    run starts (:func:`alignlab.train.initial_model`: ``W_0`` from the model seed, ``B``
    and ``R_0`` from the feedback seed, hence independent), then every layer set to

        W_t = W_0                       (default), or
        W_t = 0.6 W_0 + G               (``move``: G iid, independent of B and R_0),
        R_t^T = B W_t + c (R_0^T - B W_0)   (KP: the kernel W_t + c (K_0 - W_0)),

    so the path is ``M (W_t - c W_0) + c B^T R_0^T`` exactly. Two log points:

    * epoch 0: ``W_0`` and the initial path ``F_0``, ``c = 1`` (the prediction without the
      cross term is 90 deg; with ``<W_0, F_0>`` it is the measured angle exactly);
    * epoch 1 (the checkpoint): ``W_t``, ``decay_c = c`` (``c = 0``: the fixed point
      ``R^T = B W``, where the prediction is Proposition 3's finite-size value exactly).

    ``couple``: the name of a layer whose ``W_t`` is ``v g^T`` (``|W_0|`` in norm) with ``v``
    the top eigenvector of ``B^T B``: its ``B^T B W_t = mu W_t`` is parallel to ``W_t``,
    which no independent ``B`` gives.
    """
    from alignlab._linalg import angle_deg
    from alignlab.nn import alignment, converted_layers

    folder.mkdir(parents=True)
    if options is None:
        options = {"expansion_ratio": 4} if method == "pfa" else {}
    if method != "kp":
        options = {**options, "state": "explicit"}
    tables = {"data": {"name": "synthetic", "input_shape": [sizes[0]],
                       "num_classes": sizes[-1]},
              "model": {"name": "mlp", "sizes": list(sizes)},
              "method": {"name": method, **options},
              "optim": {"name": "sgd"}, "train": {"epochs": 1, "seed": seed, "device": "cpu"}}
    config = resolve_config(tables)
    (folder / "config.toml").write_text(dumps_toml(config.to_dict()))
    model = initial_model(config)
    gen = torch.Generator().manual_seed(3000 + seed)
    rows = []
    with torch.no_grad():
        for name, layer in converted_layers(model):
            w = layer.weight
            w0, f0 = w.detach().clone(), layer.effective_feedback().detach().clone()
            state = layer.feedback if method == "kp" else layer.pfa_R
            r0 = state.detach().clone()
            if move:
                w.mul_(0.6).add_(torch.randn(w.shape, generator=gen) * float(w0.std()))
            if name == couple:
                b = layer.pfa_B.double()
                _, vecs = torch.linalg.eigh(b.T @ b)
                g = torch.randn(w.shape[1], generator=gen, dtype=torch.float64)
                w.copy_(torch.outer(vecs[:, -1], g) * float(w0.norm() / g.norm()))
            if method == "kp":
                state.copy_(w + c * (r0 - w0))
            else:
                b = layer.pfa_B
                state.copy_(b @ w + c * (r0 - b @ w0))  # Proposition 1, exactly
            w0_sq = cmp._dot(w0, w0)
            rows.append({"epoch": 0, "step": 0, "layer": name, "angle_deg": angle_deg(w0, f0),
                         "norm_ratio": float(f0.norm() / w0.norm()), "w_sq": w0_sq,
                         "w_dot_w0": w0_sq, "w0_sq": w0_sq, "fb0_sq": cmp._dot(f0, f0),
                         "w_dot_fb0": cmp._dot(w0, f0), "decay_c": 1.0})
            rows.append({"epoch": 1, "step": 10, "layer": name, "w_sq": cmp._dot(w, w),
                         "w_dot_w0": cmp._dot(w, w0), "w0_sq": w0_sq,
                         "fb0_sq": cmp._dot(f0, f0), "w_dot_fb0": cmp._dot(w, f0),
                         "decay_c": c})
    angles = {r["layer"]: r for r in alignment(model)}
    for r in rows:
        a = angles[r["layer"]]
        r.update({"type": a["type"], "method": method, "measure": a["measure"],
                  "feedback_used": True})
        if r["epoch"] == 1:
            r.update({"angle_deg": a["angle_deg"], "norm_ratio": a["norm_ratio"]})
    rows.sort(key=lambda r: r["epoch"])
    CsvLog(folder / "layers.csv", LAYER_COLUMNS).rewrite(rows)
    CsvLog(folder / "metrics.csv", METRIC_COLUMNS).rewrite(
        [{"epoch": 0, "step": 0, "test_acc": 0.1}, {"epoch": 1, "step": 10, "test_acc": 0.1}])
    torch.save({"model": model.state_dict(), "epoch": 1, "step": 10}, folder / "checkpoint.pt")
    return folder


N_MC = 200


@pytest.fixture(scope="module")
def synthetic_table(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    paths = [synthetic_run(root / f"independent{s}", s) for s in range(3)]
    paths.append(synthetic_run(root / "coupled", 7, couple="3"))
    runs = [cmp.load_run(p) for p in paths]
    return cmp.compare_table(runs, n_samples=N_MC, seed=0)


def test_independent_w_gives_z_near_zero(synthetic_table):
    """W independent of B by construction, drawn from the laws the MC draws (W Xavier-
    uniform, B uniform with variance 1/n_mid): the measured angle is one more draw from the
    MC's distribution, and, given W, from the conditional MC's. So z = (x - mean)/SD with
    both estimated from n = 200 draws is distributed as sqrt(1 + 1/n) t_{n-1} under
    normality: P(|z| > 4) = 8.8e-5, and over the 9 z plus 9 cond_z values (3 runs x 3
    layers) a union bound gives a false-alarm rate <= 0.16% for any seed. The 9 z are
    independent (their MC is shared, which correlates them by 1/n only): their mean has SD
    1/3 (|mean| < 1.1: 0.1%) and their sum of squares is chi^2_9 (< 27.9: 0.1%). A z
    computed with the standard error instead of the SD, or against the wrong shapes or law,
    fails these by far."""
    final = [r for r in cmp.final_rows(synthetic_table) if "independent" in r["run"]]
    assert len(final) == 9
    z = np.array([r["z"] for r in final])
    cz = np.array([r["cond_z"] for r in final])
    assert np.all(np.abs(z) < 4) and np.all(np.abs(cz) < 4), (z, cz)
    assert abs(z.mean()) < 1.1 and float(np.sum(z**2)) < 27.9, z
    assert abs(cz.mean()) < 1.1 and float(np.sum(cz**2)) < 27.9, cz
    # the MC is at the layer's exact shapes: its mean sits on the finite-size theory
    # within the MC's standard error plus the Jensen term (bounded in docs/simulator.md
    # by a fraction of the SD at these sizes; 0.25 SD allowed)
    for r in final:
        se = r["mc_sd_deg"] / math.sqrt(N_MC)
        assert abs(r["mc_mean_deg"] - r["fixed_point_deg"]) < 5 * se + 0.25 * r["mc_sd_deg"]


def test_w_coupled_to_b_is_seen_by_the_conditional_mc(synthetic_table):
    """W along the top eigenvector of B^T B: measured angle ~0, while B redrawn puts the
    angle of the same W at ~26 deg with an SD of a few degrees: cond_z far below -3."""
    row = next(r for r in cmp.final_rows(synthetic_table)
               if "coupled" in r["run"] and r["layer"] == "3")
    assert row["measured_deg"] < 0.1
    assert row["cond_mean_deg"] > 10 and row["cond_z"] < -5, row


def test_known_answers_of_the_logged_scalars(synthetic_table):
    """c = 0 at the checkpoint: the dynamics prediction is Prop. 3's finite-size fixed point
    exactly; c = 1 with W_t = W_0 at epoch 0: 90 deg without the cross term, the measured
    angle with it. The fixed point is theory.path_alignment_angle_finite at the layer's
    n_out, n_mid and uniform B's kurtosis 9/5; n_mid = floor(4 n_out)."""
    for r in synthetic_table:
        assert r["n_mid"] == 4 * r["n_out"] and r["expansion_ratio"] == 4.0
        fixed = float(theory.path_alignment_angle_finite(r["n_out"], r["n_mid"], UNIFORM_K4))
        assert r["fixed_point_deg"] == fixed and r["kurtosis"] == UNIFORM_K4
        assert r["b_law"] == "uniform" and r["w_law"] == "uniform"
        if r["epoch"] == 1:
            assert r["final"]
            np.testing.assert_allclose(r["predicted_deg"], fixed, rtol=1e-12)
            np.testing.assert_allclose(r["predicted_norm_ratio"],
                                       theory.path_norm_ratio_finite(r["n_out"], r["n_mid"],
                                                                     UNIFORM_K4), rtol=1e-12)
        else:
            assert not r["final"] and math.isnan(r["z"]) and math.isnan(r["cond_z"])
            assert r["predicted_deg"] == 90.0
            # from inner products the angle is known to sqrt(eps) rad at best (the
            # coupled layer sits at 1e-5 deg, where that is all there is): 8 eps allowed
            np.testing.assert_allclose(r["predicted_cross_deg"], r["measured_deg"],
                                       rtol=1e-9, atol=np.degrees(np.sqrt(8 * EPS)))


@pytest.mark.parametrize("method", ["kp", "pfa-o", "pfa-id"])
def test_cross_term_prediction_is_exact_where_b_is_orthonormal(method, tmp_path):
    """B^T B = I: the path is X_t + c F_0 exactly (Proposition 1), so with <W_t, F_0> and
    the step-0 row's <W_0, F_0> the prediction is the measured angle at every log point of
    a trained run (float32 training: the logged inner products are rounded to ~1e-7
    relative; 6e-5 deg seen for KP, 3e-6 for PFA-o/id, 1e-3 allowed), while the
    expectation's prediction is degrees away (W grows along F_0 in training)."""
    run = tiny_run(tmp_path / method, method={"name": method})
    cmp.run_compare([run], tmp_path / "cmp", n_samples=4)
    rows = [r for r in read_csv(tmp_path / "cmp" / "compare.csv")
            if math.isfinite(float(r["measured_deg"]))]
    measured = np.array([float(r["measured_deg"]) for r in rows])
    np.testing.assert_allclose([float(r["predicted_cross_deg"]) for r in rows], measured,
                               rtol=0, atol=1e-3)
    assert np.max(np.abs([float(r["predicted_deg"]) for r in rows] - measured)) > 1.0


def test_dynamics_mc_at_c_zero_is_the_conditional_mc(synthetic_table):
    """At c = 0 the dynamics MC's path is M W_t, and it draws sample i's B exactly as the
    conditional MC does (same chunks, seeds and streams): the same numbers, up to the
    float32 rounding of batched products of another batch size (none seen)."""
    final = cmp.final_rows(synthetic_table)
    assert len(final) == 12 and all(r["decay_c"] == 0.0 for r in final)
    for r in final:
        np.testing.assert_allclose([r["dyn_mean_deg"], r["dyn_sd_deg"], r["dyn_z"]],
                                   [r["cond_mean_deg"], r["cond_sd_deg"], r["cond_z"]],
                                   rtol=1e-6)
        assert r["mc_samples"] == N_MC


N_DYN = 100
C_DYN = 0.3  # the residual of R_0: the final angle is ~5 deg above the fixed point
DYN_SIZES = (200, 256, 256, 10)


@pytest.fixture(scope="module")
def dynamics_table(tmp_path_factory):
    """Proposition 1 exact with c = 0.3 and W_t = 0.6 W_0 + G independent of (B, R_0): two
    PFA runs, a third whose layer '3' is coupled to B, and one PFA-o, PFA-id and KP run."""
    root = tmp_path_factory.mktemp("dynamics")
    paths = [synthetic_run(root / f"pfa{s}", s, c=C_DYN, move=True, sizes=DYN_SIZES)
             for s in range(2)]
    paths.append(synthetic_run(root / "coupled", 2, c=C_DYN, move=True, sizes=DYN_SIZES,
                               couple="3"))
    paths += [synthetic_run(root / m, 3 + k, c=C_DYN, move=True, sizes=DYN_SIZES, method=m)
              for k, m in enumerate(("pfa-o", "pfa-id", "kp"))]
    runs = [cmp.load_run(p) for p in paths]
    return runs, cmp.compare_table(runs, n_samples=N_DYN, seed=0)


def _expected_prediction(run, row) -> float:
    """The dynamics prediction with |F_0|^2 at its expectation over (B, R_0),
    E|B^T R_0^T|^2 = n_out n_in std(R_0)^2 (E B^T B = I), from the final logged scalars."""
    from alignlab.theory.dynamics import path_alignment_dynamics_angle

    layer = next(li for li in run.layers if li.name == row["layer"])
    log = next(r for r in run.rows if r["layer"] == row["layer"] and r["epoch"] == run.epoch)
    fb0 = layer.n_out * layer.n_in * layer.law.r0.std**2
    return float(path_alignment_dynamics_angle(log["w_sq"], log["w_dot_w0"], log["w0_sq"], fb0,
                                               log["decay_c"], layer.law.m2))


def test_dynamics_mc_is_the_distribution_of_the_prediction(dynamics_table):
    """W independent of (B, R_0) by construction and the path built by Proposition 1: the
    measured angle is one more draw of the dynamics MC's distribution (the MC redraws B
    and R_0 from the laws the model drew them from), so dyn_z ~ sqrt(1 + 1/n) t_{n-1}
    (n = 100) under normality: over the 17 independent layers (2 + 2 + 1 PFA hidden /
    classifier layers, 9 of PFA-o, PFA-id, KP) P(any |z| > 4) <= 17 x 1.3e-4 = 0.2%, and
    sum z^2 < 40.8 (chi^2_17's 0.1% point; the t tails make it about 0.15%).

    Its mean is the dynamics prediction (with E|F_0|^2): the prediction is the angle of
    the exact expectations E<W_t, P> and E|P|^2, and differs from the mean angle by the
    Jensen term only, second order in the angle's SD (about 1e-4 deg here): within 5
    standard errors plus 0.1 SD for the hidden layers. The fixed point misses by far: the
    conditional MC's z exceeds 10 (the residual c B^T R_0 adds ~4.5 deg at an SD of
    ~0.1), and B^T B = I layers sit ~21 deg above their fixed point of 0 deg."""
    runs, table = dynamics_table
    final = cmp.final_rows(table)
    independent = [r for r in final if not (Path(r["run"]).name == "coupled" and
                                            r["layer"] == "3")]
    assert len(independent) == 17
    z = np.array([r["dyn_z"] for r in independent])
    assert np.all(np.abs(z) < 4) and float(np.sum(z**2)) < 40.8, z
    by_path = {str(run.path): run for run in runs}
    for r in independent:
        assert r["mc_samples"] == N_DYN and r["dyn_sd_deg"] > 0 and r["decay_c"] == C_DYN
        if r["n_out"] < 100:
            continue
        expect = _expected_prediction(by_path[r["run"]], r)
        se = r["dyn_sd_deg"] / math.sqrt(N_DYN)
        assert abs(r["dyn_mean_deg"] - expect) < 5 * se + 0.1 * r["dyn_sd_deg"], (r, expect)
        if r["b_law"] == "uniform":
            assert r["cond_z"] > 10, r
        else:
            assert r["fixed_point_deg"] == 0.0 and r["measured_deg"] > 15, r
    laws = {(Path(r["run"]).name, r["b_law"]) for r in final}
    assert {("pfa-o", "B^T B = I"), ("pfa-id", "B = I"), ("kp", "B = I")} <= laws


def test_dynamics_mc_sees_w_coupled_to_b(dynamics_table):
    """W_t along the top eigenvector of B^T B: its path mu W_t - c M W_0 + c B^T R_0 is
    far closer to W_t than any redrawn B makes it (~10 deg against ~32 +- 1)."""
    _, table = dynamics_table
    row = next(r for r in cmp.final_rows(table)
               if Path(r["run"]).name == "coupled" and r["layer"] == "3")
    assert row["dyn_mean_deg"] - row["measured_deg"] > 10 and row["dyn_z"] < -5, row


def _edit_log(run: Path, column: str, edit) -> None:
    rows = read_csv(run / "layers.csv")
    for r in rows:
        r[column] = edit(r)
    CsvLog(run / "layers.csv", list(rows[0])).rewrite(rows)


def test_dynamics_mc_is_nan_without_w0_or_c(tmp_path):
    """No dynamics MC (NaN, the other columns as before) when the W_0 rebuilt from the
    config does not give layers.csv's w0_sq (a log of another seed or version), and when
    the final c_t is NaN (Adam: no Proposition 1)."""
    base = synthetic_run(tmp_path / "base", 0, c=0.2, move=True)
    other_w0 = tmp_path / "other-w0"
    shutil.copytree(base, other_w0)
    _edit_log(other_w0, "w0_sq", lambda r: repr(float(r["w0_sq"]) * (1 + 1e-6)))
    no_c = tmp_path / "no-c"
    shutil.copytree(base, no_c)
    _edit_log(no_c, "decay_c", lambda r: "nan" if r["epoch"] == "1" else r["decay_c"])
    runs = [cmp.load_run(p) for p in (base, other_w0, no_c)]
    assert all(li.weight0 is not None for li in runs[0].layers)
    assert all(li.weight0 is None for li in runs[1].layers)
    messages = []
    table = cmp.compare_table(runs, n_samples=4, progress=messages.append)
    assert sum("does not match layers.csv's w0_sq" in m for m in messages) == 3
    final = cmp.final_rows(table)
    for r in final:
        dyn = [r["dyn_mean_deg"], r["dyn_sd_deg"], r["dyn_z"]]
        assert math.isfinite(r["cond_z"])
        if Path(r["run"]).name == "base":
            assert all(math.isfinite(v) for v in dyn), r
        else:
            assert all(math.isnan(v) for v in dyn), r


def test_initial_model_is_the_runs_start(pfa_run):
    """``alignlab.train.initial_model(config)`` is the model train() started from: its
    |W_0|^2, <W_0, W_0> and |F_0|^2 are layers.csv's epoch-0 w0_sq, w_dot_w0 and fb0_sq to
    the last bit (the same float32 tensors summed in float64; the CSV holds repr), and
    load_run's W_0 is its weight. Another seed gives other weights. The caller's torch
    generator is left as it was."""
    from alignlab.nn import converted_layers

    config = load_config(pfa_run / "config.toml")
    state = torch.get_rng_state()
    model = initial_model(config)
    assert torch.equal(torch.get_rng_state(), state)
    start = {r["layer"]: r for r in read_csv(pfa_run / "layers.csv") if r["epoch"] == "0"}
    loaded = {li.name: li for li in cmp.load_run(pfa_run).layers}
    other = dict(converted_layers(initial_model(
        load_config(pfa_run / "config.toml", ["train.seed=1"]))))
    for name, layer in converted_layers(model):
        w, f = layer.weight.detach(), layer.effective_feedback()
        assert cmp._dot(w, w) == float(start[name]["w0_sq"]) == float(start[name]["w_dot_w0"])
        assert cmp._dot(f, f) == float(start[name]["fb0_sq"])
        assert torch.equal(loaded[name].weight0, w.double())
        assert not torch.equal(other[name].weight, w)
    with pytest.raises(ValueError, match=r"^`device` must be a torch device"):
        initial_model(config, "nonsense")


@pytest.mark.parametrize(("module", "method", "options"), [
    (torch.nn.Linear(300, 200), "pfa", {"expansion_ratio": 4}),
    (torch.nn.Linear(300, 200), "pfa", {"expansion_ratio": 2, "b_init": "gaussian"}),
    (torch.nn.Linear(300, 200), "pfa-sparse", {"expansion_ratio": 2, "density": 0.25}),
    (torch.nn.Conv2d(32, 64, 3), "pfa", {"expansion_ratio": 4}),
    (torch.nn.Linear(300, 200), "pfa-o", {}),
    (torch.nn.Linear(300, 200), "pfa-id", {}),
    (torch.nn.Linear(300, 200), "kp", {}),
    (torch.nn.Linear(300, 200), "kp", {"init": "gaussian"}),
])
def test_initial_law_is_the_methods_draw(module, method, options):
    """The law the dynamics MC redraws R_0^T from (compare's reading of pfa.py's
    _initial_rt and KP's init) against the method's own draw (explicit R, KP's kernel):
    mean square, fourth moment and zero fraction of the 40000+ entries each within 5
    standard errors of the law's (computed from the entries themselves); uniform entries
    also within the law's bound sqrt(3) SD / sqrt(density). A law with W's fans instead
    of R's (a factor 1.5-3 in variance) or the wrong family fails by tens of SEs."""
    from alignlab.nn import convert

    layer = convert(module, method, rng=0, **options)
    law = layer.method.alignment_theory(layer).r0
    r0 = (layer.feedback if method == "kp" else layer.pfa_R).detach().double().flatten()
    assert r0.numel() > 40_000
    density = options.get("density", 1.0)
    kept = r0[r0 != 0].numpy()
    np.testing.assert_allclose(kept.size / r0.numel(), density, atol=5 * math.sqrt(
        density * (1 - density) / r0.numel()) + 1e-12)
    k4 = law.ensemble.kurtosis
    x = r0.numpy()
    for values, expect in ((x**2, law.std**2), (x**4, k4 * law.std**4)):
        se = values.std(ddof=1) / math.sqrt(values.size)
        assert abs(values.mean() - expect) < 5 * se, (values.mean(), expect, se)
    if options.get("init", "uniform") == "uniform":
        bound = math.sqrt(3.0 / density) * law.std
        assert np.abs(kept).max() <= bound * (1 + 1e-6) and np.abs(kept).max() > 0.99 * bound


# --------------------------------------------------------------------------- end to end


def test_compare_end_to_end(pfa_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    code = cli_main(["compare", str(pfa_run), "--out", str(out), "--samples", "20",
                     "--quiet"], monkeypatch)
    io = capsys.readouterr()
    assert code == 0, io.err
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv", "compare.pdf",
                                                     "compare.png"]
    assert (out / "compare.png").stat().st_size > 20_000
    rows = read_csv(out / "compare.csv")
    assert set(REQUIRED) <= set(rows[0])
    logged = read_csv(pfa_run / "layers.csv")
    assert len(rows) == len(logged)  # one row per layer and log point (mid-epoch included)
    by_point = {(r["layer"], r["step"]): r for r in logged}
    for r in rows:
        assert float(r["measured_deg"]) == float(by_point[r["layer"], r["step"]]["angle_deg"])
    # 10 steps per epoch, a point every 4 steps: 0, 4, 8, 10, 12, 16, 20
    fracs = sorted({float(r["epoch_frac"]) for r in rows})
    np.testing.assert_allclose(fracs, [0.0, 0.4, 0.8, 1.0, 1.2, 1.6, 2.0], atol=1e-12)
    final = [r for r in rows if r["final"] == "True"]
    assert [r["layer"] for r in final] == ["1", "3", "5"]
    for r in final:
        assert r["step"] == "20" and float(r["mc_sd_deg"]) > 0
        assert math.isfinite(float(r["z"])) and math.isfinite(float(r["cond_z"]))
        assert float(r["dyn_sd_deg"]) > 0 and math.isfinite(float(r["dyn_z"]))
        n_out, n_mid = int(r["n_out"]), int(r["n_mid"])
        assert n_mid == 4 * n_out
        assert float(r["fixed_point_deg"]) == float(
            theory.path_alignment_angle_finite(n_out, n_mid, UNIFORM_K4))
    for r in final:  # the band of Props. 1-3 is the dynamics MC
        assert r["theory"] == "Props. 1-3 (path dynamics)" and r["quantity"] == "feedback"
        assert (r["band_mean_deg"], r["band_sd_deg"], r["band_z"]) == (
            r["dyn_mean_deg"], r["dyn_sd_deg"], r["dyn_z"])
        assert float(r["expansion_ratio"]) == 4.0  # the config's option
    # the summary: one line per layer, the final measured angles; the theory last
    table = io.out.splitlines()
    assert table[0].startswith("final alignment per layer")
    head = table[3].split()
    assert head[:-1] == list(cmp.SUMMARY_COLUMNS[:-1]) and head[-1] == "theory"
    lines = [line.split(None, len(cmp.SUMMARY_COLUMNS) - 1) for line in table[5:]]
    assert [(w[0], w[1]) for w in lines] == [("pfa", "1"), ("pfa", "3"), ("pfa", "5")]
    col = cmp.SUMMARY_COLUMNS.index
    for words, r in zip(lines, final, strict=True):
        assert len(words) == len(cmp.SUMMARY_COLUMNS)
        assert words[-1] == "Props. 1-3 (path dynamics) [feedback]"
        np.testing.assert_allclose(float(words[col("measured")]), float(r["measured_deg"]),
                                   rtol=1e-3)
        np.testing.assert_allclose(float(words[col("dyn_z")]), float(r["dyn_z"]), rtol=1e-3,
                                   atol=1e-3)


def test_run_compare_writes_the_default_folder(pfa_run, tmp_path, monkeypatch):
    """Without --out, next to the runs: <parent>/compare (here: a copy, not the fixture's).
    The picture is tested above: a 1-inch figure here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(cmp, "plot_compare", lambda table, title="": plt.figure(figsize=(1, 1)))
    run = tmp_path / "runs" / "one"
    shutil.copytree(pfa_run, run)
    table, paths = cmp.run_compare([run], n_samples=4)
    assert paths["csv"] == tmp_path / "runs" / "compare" / "compare.csv"
    assert len(table) == len(read_csv(run / "layers.csv"))


# --------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def dfa_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("runs") / "dfa", method={"name": "dfa"},
                    train={"epochs": 1, "log_every_steps": 0})


def _broken(pfa_run, tmp_path, how):
    run = tmp_path / "broken"
    shutil.copytree(pfa_run, run)
    how(run)
    return run


def _no_rows(run):
    text = (run / "layers.csv").read_text().splitlines()
    (run / "layers.csv").write_text(text[0] + "\n")


def _wrong_angle(run):
    text = (run / "layers.csv").read_text().splitlines()
    head, last = text[0].split(","), text[-1].split(",")
    last[head.index("angle_deg")] = "45.0"
    (run / "layers.csv").write_text("\n".join(text[:-1] + [",".join(last)]) + "\n")


@pytest.mark.parametrize(("how", "message"), [
    (lambda run: shutil.rmtree(run), r"`RUN_DIR` must be existing directories"),
    (lambda run: (run / "checkpoint.pt").unlink(), r"complete run directories.*no checkpoint"),
    (lambda run: (run / "layers.csv").unlink(), r"complete run directories.*no layers.csv"),
    (lambda run: (run / "metrics.csv").unlink(), r"complete run directories.*no metrics.csv"),
    (_no_rows, r"complete run directories.*layers.csv has no rows"),
    (lambda run: (run / "checkpoint.pt").write_bytes(b"not a checkpoint"),
     r"checkpoint.pt cannot be read"),
    (_wrong_angle, r"a checkpoint that matches its logs.*45.0000 in layers.csv"),
])
def test_bad_run_directories(pfa_run, tmp_path, capsys, monkeypatch, how, message):
    run = _broken(pfa_run, tmp_path, how)
    out = tmp_path / "out"
    code = cli_main(["compare", str(run), "--out", str(out), "--quiet"], monkeypatch)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("alignlab: error: ") and re_search(message, err[0]), err
    assert not out.exists()


def re_search(pattern, text):
    import re

    return re.search(pattern, text) is not None


def test_update_angle_run_is_accepted(dfa_run, pfa_run, tmp_path, capsys, monkeypatch):
    """DFA (no feedback matrix per layer), alone or among PFA runs, is compared (it was
    refused): its layers are "measured only", the quantity their update angle to BP, the
    reason in b_law; the PFA run's rows as before."""
    out = tmp_path / "out"
    code = cli_main(["compare", str(pfa_run), str(dfa_run), "--out", str(out), "--quiet",
                     "--samples", "4"], monkeypatch)
    assert code == 0, capsys.readouterr().err
    rows = read_csv(out / "compare.csv")
    dfa = [r for r in rows if Path(r["run"]).name == "dfa"]
    logged = {(r["layer"], r["step"]): r for r in read_csv(dfa_run / "layers.csv")}
    assert len(dfa) == len(logged) == 6  # 3 layers, epochs 0 and 1
    for r in dfa:
        log = logged[r["layer"], r["step"]]
        assert (r["theory"], r["quantity"]) == ("measured only", "update")
        assert "no feedback matrix per layer" in r["b_law"]
        assert float(r["measured_deg"]) == float(log["update_angle_deg"])
        assert math.isfinite(float(r["measured_deg"]))
        assert math.isnan(float(r["predicted_deg"])) and r["band_what"] == "-"
    assert {r["theory"] for r in rows if Path(r["run"]).name == "pfa"} == {
        "Props. 1-3 (path dynamics)"}


def test_bad_options_and_output(pfa_run, tmp_path, capsys, monkeypatch):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    cases = [(["--out", str(afile)], "`--out` must be a writable folder"),
             (["--out", str(tmp_path / "o"), "--samples", "1"], "`--samples` must be an "
              "integer >= 2"),
             (["--out", str(tmp_path / "o"), "--device", "nonsense"], "`--device` must be")]
    for extra, message in cases:
        code = cli_main(["compare", str(pfa_run), *extra, "--quiet"], monkeypatch)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists() and afile.read_text() == "x"


def test_cli_module_imports_nothing_heavy():
    """Building the alignlab parser imports every command module: this one must not pull
    in torch or matplotlib (alignlab theory stays fast)."""
    code = ("import sys, alignlab.reports.cli as c, argparse; "
            "p = argparse.ArgumentParser(); c.register(p.add_subparsers()); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'alignlab.sim') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out


# --------------------------------------------------------------------------- every method

# A tiny invertible network trained by each layer-local rule (as tests/train).
INVERTIBLE = {
    "data": {"name": "synthetic", "n_train": 48, "n_test": 24, "input_shape": [6],
             "num_classes": 3, "teacher_hidden": 8},
    "model": {"name": "invertible", "width": 6, "hidden_layers": 1, "num_classes": 3},
    "optim": {"name": "uncorrected-adam", "lr": 1e-3},
    "train": {"epochs": 1, "batch_size": 12, "device": "cpu", "probe_size": 4,
              "dtype": "float64", "log_every_steps": 2},
}
#: run -> (method options, the theory every layer must get)
EVERY_METHOD = {
    "bp": ({"name": "bp"}, "Exact"),
    "fa": ({"name": "fa"}, "IndependenceNull"),
    "usf": ({"name": "usf"}, "SignIdentity"),
    "brsf": ({"name": "brsf"}, "RandomMagnitude"),
    "frsf": ({"name": "frsf"}, "RandomMagnitude"),
    "kp": ({"name": "kp"}, "PathDynamics"),
    "wm": ({"name": "wm"}, "MirrorFloor"),
    "dfa": ({"name": "dfa"}, "AlignmentTheory"),
    "pfa": ({"name": "pfa", "expansion_ratio": 4}, "PathDynamics"),
    "pfa-o": ({"name": "pfa-o"}, "PathDynamics"),
    "pfa-id": ({"name": "pfa-id"}, "PathDynamics"),
    "pfa-sparse": ({"name": "pfa-sparse", "expansion_ratio": 2, "density": 0.5},
                   "MaskedPathDynamics"),
    "gait-prop": ({"name": "gait-prop", "gamma": 0.1}, "FirstOrderUpdate"),
    "itp": ({"name": "itp", "gamma": 0.1}, "AlignmentTheory"),
    "tp": ({"name": "tp"}, "AlignmentTheory"),
    "inv-bp": ({"name": "bp"}, "Exact"),
}
RULE_RUNS = ("gait-prop", "itp", "tp", "inv-bp")
#: theories whose angle needs the trained W: a prediction at the checkpoint only
NEEDS_W = ("SignIdentity", "RandomMagnitude")
#: theories without a band (the first-order angle is computed, not sampled, on the probe)
NO_BAND = ("FirstOrderUpdate",)
N_EVERY = 6


@pytest.fixture(scope="module")
def every_method(tmp_path_factory):
    """One tiny run per method of alignlab.nn and per layer-local rule (1 epoch, a log
    point every 4 (2) steps), and compare's table of them all."""
    root = tmp_path_factory.mktemp("every")
    paths = []
    for name, (method, _) in EVERY_METHOD.items():
        if name in RULE_RUNS:
            tables = {**{k: dict(v) for k, v in INVERTIBLE.items()}, "method": method}
            config = root / f"{name}.toml"
            config.write_text(dumps_toml(tables))
            train(load_config(config), root / name, quiet=True)
            paths.append(root / name)
        else:
            paths.append(tiny_run(root / name, method=method, train={"epochs": 1}))
    runs = [cmp.load_run(p) for p in paths]
    return paths, runs, cmp.compare_table(runs, n_samples=N_EVERY, seed=0)


def test_every_method_gets_its_theory(every_method):
    """Every layer of every run: its method's theory (the class the method builds), a
    quantity, and either a finite prediction (at every log point where the theory needs
    only the logged scalars, at the checkpoint where it needs W) and a band at the
    checkpoint (but for GAIT-prop's first-order angle, computed on the probe batch), or
    "measured only" with the reason and a finite measured update angle.
    No run's table is all NaN."""
    from alignlab.nn import theory as nt

    _, runs, table = every_method
    assert {Path(r["run"]).name for r in table} == set(EVERY_METHOD)
    for run in runs:
        expect = getattr(nt, EVERY_METHOD[run.path.name][1])
        rows = [r for r in table if r["run"] == str(run.path)]
        logged = [r for r in run.rows]
        assert len(rows) == len(logged) > len(run.layers)
        for layer in run.layers:
            assert type(layer.theory) is expect, (run.path.name, layer.theory)
        for r in rows:
            assert r["theory"] == expect.theory and r["quantity"] in nt.QUANTITIES
            assert r["b_law"] not in ("", "-")
            if expect is nt.AlignmentTheory:  # measured only, and why
                assert r["theory"] == "measured only" and r["quantity"] == "update"
                assert len(r["b_law"]) > 20 and math.isfinite(r["measured_deg"]), r
                assert math.isnan(r["predicted_deg"]) and math.isnan(r["band_mean_deg"])
                continue
            if r["final"] or expect.__name__ not in NEEDS_W:
                assert math.isfinite(r["predicted_deg"]), r
            if r["final"] and expect.__name__ not in NO_BAND:
                assert math.isfinite(r["band_mean_deg"]) and r["band_sd_deg"] >= 0, r
                assert r["band_what"] != "-"
                if r["band_sd_deg"] > 0 and math.isfinite(r["measured_deg"]):
                    assert r["band_z"] == (r["measured_deg"] - r["band_mean_deg"]) / (
                        r["band_sd_deg"])
        assert any(math.isfinite(r[k]) for r in rows
                   for k in ("measured_deg", "predicted_deg", "band_mean_deg"))
    sparse = {r["theory"] for r in table if Path(r["run"]).name == "pfa-sparse"}
    assert sparse == {"Props. 1-3, not applicable (masks break Proposition 1)"}


def test_bp_is_all_zero(every_method):
    """BP, converted or trained as a layer-local rule: measured (where logged), predicted,
    fixed point and band all 0 deg at every log point, norm ratios 1."""
    _, _, table = every_method
    rows = [r for r in table if Path(r["run"]).name in ("bp", "inv-bp")]
    assert len(rows) > 10
    for r in rows:
        assert r["predicted_deg"] == 0.0 and r["fixed_point_deg"] == 0.0, r
        assert r["predicted_norm_ratio"] == 1.0
        assert math.isnan(r["measured_deg"]) or r["measured_deg"] < 1e-6, r
        if r["final"]:
            assert (r["band_mean_deg"], r["band_sd_deg"]) == (0.0, 0.0)
    assert sum(math.isfinite(r["measured_deg"]) for r in rows) > 10


def test_sign_identity_and_logged_norm_ratio(every_method):
    """uSF's theory is an identity: at the checkpoint the predicted angle is the measured
    one (recomputed from the trained W in float64), and its norm ratio s sqrt(N) / |W|
    from the logged |W|^2 is the logged ratio at every log point."""
    _, _, table = every_method
    rows = [r for r in table if Path(r["run"]).name == "usf"
            and math.isfinite(r["measured_deg"])]
    assert len(rows) >= 4
    for r in rows:
        np.testing.assert_allclose(r["predicted_norm_ratio"], r["measured_norm_ratio"],
                                   rtol=1e-6)
        if r["final"]:
            np.testing.assert_allclose(r["predicted_deg"], r["measured_deg"], atol=1e-3)
            assert r["band_sd_deg"] == 0.0


def test_first_order_prediction_is_the_logged_column(every_method):
    """GAIT-prop's prediction is layers.csv's update_angle_first_order_deg, row by row,
    and the measured value its update_angle_deg; the top layer is BP's (0 deg)."""
    paths, _, table = every_method
    run = next(p for p in paths if p.name == "gait-prop")
    logged = {(r["layer"], int(r["step"])): r for r in read_csv(run / "layers.csv")}
    rows = [r for r in table if r["run"] == str(run)]
    assert len(rows) == len(logged) > 4
    for r in rows:
        log = logged[r["layer"], r["step"]]
        assert r["predicted_deg"] == float(log["update_angle_first_order_deg"])
        assert r["measured_deg"] == float(log["update_angle_deg"])
    assert all(r["predicted_deg"] == 0.0 for r in rows if r["layer"] == "layers.1")


def test_compare_of_every_method_end_to_end(every_method, tmp_path, monkeypatch, capsys):
    """All the runs in one command: exit 0, one CSV row per logged row, the figure."""
    paths, _, _ = every_method
    out = tmp_path / "cmp"
    code = cli_main(["compare", *map(str, paths), "--out", str(out), "--samples", "4",
                     "--quiet"], monkeypatch)
    io = capsys.readouterr()
    assert code == 0, io.err
    rows = read_csv(out / "compare.csv")
    assert len(rows) == sum(len(read_csv(p / "layers.csv")) for p in paths)
    assert (out / "compare.png").stat().st_size > 50_000
    assert "measured only [update]" in io.out and "exact (BP) [feedback]" in io.out


def _method_names() -> set[str]:
    from alignlab.gaitprop import RULES
    from alignlab.nn import METHODS

    return set(METHODS) | set(RULES)


def test_compare_never_names_a_method():
    """compare.py asks a layer's theory object; it names no method or rule: no string
    (docstrings aside) holds a method's name as a word, no method or theory class is
    referred to by name except the base class (for its "measured only" label)."""
    from alignlab.nn import METHODS
    from alignlab.nn import theory as nt

    tree = ast.parse(Path(cmp.__file__).read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    words = re.compile(r"(?<![\w-])(" + "|".join(
        re.escape(n) for n in sorted(_method_names(), key=len, reverse=True)) + r")(?![\w-])")
    classes = {cls.__name__ for cls in METHODS.values()} | (set(nt.__all__) - {
        "AlignmentTheory"})
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                id(node) not in docstrings):
            assert not words.search(node.value), node.value
        if isinstance(node, (ast.Name, ast.alias)):
            name = node.id if isinstance(node, ast.Name) else node.name
            assert name not in classes, name


# --------------------------------------------------------------------------- the laws


@pytest.mark.parametrize(("method", "options", "kind", "k4", "n_mid", "ratio"), [
    ("pfa", {"expansion_ratio": 3}, "iid", 1.8, 15, 3.0),
    ("pfa", {"expansion_ratio": 2, "b_init": "gaussian"}, "iid", 3.0, 10, 2.0),
    ("pfa", {"expansion_ratio": 2.3}, "iid", 1.8, 11, 2.3),
    ("pfa-sparse", {"expansion_ratio": 4, "density": 0.25}, "iid", 1.8 / 0.25, 20, 4.0),
    ("pfa-o", {}, "orthonormal", math.nan, 5, 1.0),
    ("pfa-id", {}, "orthonormal", math.nan, 5, 1.0),
    ("kp", {}, "orthonormal", math.nan, 5, 1.0),
])
def test_feedback_law(method, options, kind, k4, n_mid, ratio):
    """The law of Propositions 1-3 each PFA method and KP give their layer (the hook),
    the expansion ratio the method's option (r = 2.3: n_mid = 11, n_mid / n_out = 2.2)."""
    from alignlab.nn import convert
    from alignlab.nn.theory import PathDynamics

    layer = convert(torch.nn.Linear(6, 5), method, rng=0, **options)
    law = layer.method.alignment_theory(layer)
    assert isinstance(law, PathDynamics) and law.monte_carlo
    assert (law.kind, law.n_mid, law.n_out, law.expansion_ratio) == (kind, n_mid, 5, ratio)
    np.testing.assert_equal(law.kurtosis, k4)
    if kind == "orthonormal":
        assert law.fixed_point() == (0.0, 1.0) and law.m2 == 1.0
    else:
        assert law.fixed_point() == (
            float(theory.path_alignment_angle_finite(5, n_mid, k4)),
            float(theory.path_norm_ratio_finite(5, n_mid, k4)))


def test_masked_ensemble_has_sparse_pfa_law():
    """Bernoulli(d) x uniform with variance std^2: zero fraction 1 - d, E b^2 = std^2,
    kurtosis 9/(5 d) (each within 5 standard errors over 400 independent matrices)."""
    from alignlab.sim import Uniform

    d, std = 0.25, 0.5
    ens = cmp._masked_class()(base=Uniform(), density=d)
    assert ens.kurtosis == pytest.approx(1.8 / d, rel=1e-15)
    x = ens.sample(400, 40, 30, std=std, generator=3, dtype=torch.float64).numpy()
    x = x.reshape(400, -1)
    for values, expect in ((np.mean(x == 0, axis=1), 1 - d),
                           (np.mean(x**2, axis=1) / std**2, 1.0),
                           (np.mean(x**4, axis=1) / std**4, 1.8 / d)):
        se = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - expect) < 5 * se, (values.mean(), expect, se)


# --------------------------------------------------------------------------- the study


def _study_module():
    spec = importlib.util.spec_from_file_location("compare_study_run", STUDY / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_study_configs_load_at_every_grid_point():
    """Every run of the study (every group, config and grid point, the smoke settings
    too) validates through the harness's config loader; every config file is used; the
    questions name existing groups."""
    study = _study_module()
    used = set()
    n = 0
    for group in study.GROUPS:
        for config, overrides in group.points():
            used.add(config.name)
            loaded = load_config(config, overrides)
            n += 1
            for key, value in overrides:
                assert loaded.get(key) == value
            assert loaded.model.name in ("mlp", "resnet20")
            assert loaded.data.name == "fashion-mnist"
        first = next(group.points((0,)))
        load_config(first[0], [*study.SMOKE_SETS, *first[1]])
    assert n == 18 + 6 + 12 + 9 + 3 + 6 + (6 + 6 + 6 + 3 + 9 + 12 + 6)  # issue 8, then 15
    assert used == {p.name for p in STUDY.glob("*.toml")}
    groups = {g.name for g in study.GROUPS}
    assert {g for sources in study.COMPARISONS.values() for g, _ in sources} <= groups
    assert set(study.COMPARISONS) == groups
    # what the study is about, as the configs resolve it
    ref = load_config(STUDY / "pfa.toml")
    assert (ref.optim.weight_decay_burst, ref.optim.weight_decay, ref.optim.momentum,
            ref.train.epochs, ref.model.options["sizes"]) == (0.03, 9e-5, 0.9, 40,
                                                              (784, 512, 512, 10))
    assert ref.method.options["state"] == "factored"
    # the width groups differ from the fixed-point group in the hidden width alone
    strong = load_config(STUDY / "pfa-decay-strong.toml")
    for name, width in (("wide", 1024), ("wider", 2048)):
        c = load_config(STUDY / f"pfa-decay-strong-{name}.toml")
        assert c.model.options["sizes"] == (784, width, width, 10)
        assert (c.optim, c.method, c.train) == (strong.optim, strong.method, strong.train)
    adam = load_config(STUDY / "pfa-adam.toml")
    assert adam.optim.name == "adam" and adam.method.options["state"] == "explicit"
    assert load_config(STUDY / "pfa-id.toml").method.name == "pfa-id"
    assert load_config(STUDY / "pfa-decay-none.toml").optim.weight_decay_at(1) == 0.0


def test_study_summary_pools_seeds(tmp_path):
    """summarise.py: per label and layer, mean / SD over seeds at the final rows, the
    largest |measured - predicted| at the end and from epoch 1 on, ranges of z."""
    spec = importlib.util.spec_from_file_location("compare_study_summarise",
                                                  STUDY / "summarise.py")
    summarise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarise)
    cols = ["run", "label", "layer", "depth", "n_out", "n_mid", "epoch_frac", "final",
            "decay_c", "measured_deg", "predicted_deg", "fixed_point_deg", "mc_sd_deg", "z",
            "dyn_mean_deg", "dyn_sd_deg", "dyn_z"]
    rows = []
    for seed, (m_end, p_end, z) in enumerate([(18.0, 17.8, 1.5), (19.0, 18.5, -0.5)]):
        for frac, m, p, final in ((0.5, 40.0, 30.0, False), (1.0, 20.0, 19.0 + seed, False),
                                  (2.0, m_end, p_end, True)):
            rows.append([f"r{seed}", "pfa", "1", "1", "512", "5120", frac, final,
                         0.05, m, p, 17.55, 0.035, 9.0, 17.9, 0.1, z])
    (tmp_path / "q").mkdir()
    with open(tmp_path / "q" / "compare.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(cols)
        writer.writerows(rows)
    target = summarise.write_summary(tmp_path)
    line = [ln for ln in target.read_text().splitlines() if ln.startswith("| pfa |")]
    cells = [c.strip() for c in line[0].strip("|").split("|")]
    assert cells[:6] == ["pfa", "1", "512", "5120", "2", "0.050"]
    assert cells[6] == f"18.50 +/- {statistics.stdev([18.0, 19.0]):.2f}"
    assert cells[7:10] == ["18.15", "17.55", "0.50"]  # mean predicted; max |m - p| at the end
    assert cells[10] == "1.00"  # from epoch 1 on: |20 - 19|, |20 - 20|, 0.2, 0.5 (not 10)
    assert cells[12] == "9.0" and cells[15] == "-0.5 .. 1.5"
    assert summarise.write_summary(tmp_path / "empty") is None


def test_study_rules_table_and_figure(tmp_path):
    """summarise.write_rules: the questions of RULE_QUESTIONS only, final rows only, one
    row per question, label and layer: measured mean +/- SD over seeds, the prediction
    (the band's mean where the theory predicts only through its band), their difference,
    ranges of the band's SD and z; rules.md, .png and .pdf written."""
    spec = importlib.util.spec_from_file_location("compare_study_summarise",
                                                  STUDY / "summarise.py")
    summarise = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarise)
    cols = ["run", "label", "layer", "final", "theory", "quantity", "measured_deg",
            "predicted_deg", "band_mean_deg", "band_sd_deg", "band_z"]
    questions = {
        "mirror": [["a", "wm", "1", "True", "mirror noise floor", "feedback", 16.0, 15.9,
                    15.95, 0.05, 1.0],
                   ["b", "wm", "1", "True", "mirror noise floor", "feedback", 17.0, 15.9,
                    15.95, 0.07, 15.0],
                   ["b", "wm", "1", "False", "mirror noise floor", "feedback", 80.0, 15.9,
                    "", "", ""]],
        "sign": [["c", "brsf", "3", "True", "random magnitude given W", "feedback", 47.5,
                  "", 47.4, 0.02, 5.0]],
        "ratios": [["d", "pfa", "1", "True", "Props. 1-3", "feedback", 1.0, 2.0, 2.0, 0.1,
                    -10.0]],
    }
    for question, rows in questions.items():
        (tmp_path / question).mkdir()
        with open(tmp_path / question / "compare.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(cols)
            writer.writerows(rows)
    targets = summarise.write_rules(tmp_path)
    assert [t.name for t in targets] == ["rules.md", "rules.png", "rules.pdf"]
    assert all(t.stat().st_size > 0 for t in targets)
    lines = [ln for ln in targets[0].read_text().splitlines() if ln.startswith("| ")][1:]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    assert [c[:3] for c in cells] == [["mirror", "wm", "1"], ["sign", "brsf", "3"]]
    assert cells[0][3:] == ["mirror noise floor", "feedback", "2",
                            f"16.50 +/- {statistics.stdev([16.0, 17.0]):.2f}", "15.90",
                            "0.60", "0.050 .. 0.070", "1.0 .. 15.0"]
    assert cells[1][6:9] == ["47.50", "47.40", "0.10"]  # no prediction: the band's mean
    assert summarise.write_rules(tmp_path / "empty") == []


def _study_script(name: str):
    spec = importlib.util.spec_from_file_location(f"compare_study_{name}",
                                                  STUDY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_optional_groups_run_only_when_named(tmp_path, capsys):
    """run.py: an optional group (the 2048-wide fixed point, ResNet-20) is left out of the
    default study and runs when --groups names it (or --resnet, for ResNet-20)."""
    study = _study_module()
    optional = {g.name for g in study.GROUPS if g.optional}
    assert optional == {"resnet20", "fixedpoint-wider"}

    def swept(*argv):
        assert study.main(["--dry-run", "--runs", str(tmp_path), *argv]) == 0
        out = capsys.readouterr().out
        return {line.split()[2].rstrip(":") for line in out.splitlines()
                if line.startswith("== sweep ")}

    default = swept()
    assert not default & optional and "fixedpoint-wide" in default
    assert swept("--groups", "fixedpoint-wider") == {"fixedpoint-wider"}
    assert swept("--resnet") == default | {"resnet20"}


def test_study_coupling_reads_the_run_it_names(pfa_run, tmp_path):
    """coupling.py: the measured angle is compare's (from the checkpoint); a PFA layer gets
    its own fixed point and Proposition 3's, a KP layer Proposition 1's c fitted exactly
    (F - W = c (F_0 - W_0) to float32 rounding, c the logged decay_c)."""
    coupling = _study_script("coupling")
    rows = coupling.layer_rows(pfa_run)
    loaded = cmp.load_run(pfa_run)
    assert [r["layer"] for r in rows] == [li.name for li in loaded.layers]
    for r, li in zip(rows, loaded.layers, strict=True):
        assert r["measured"] == pytest.approx(li.measured_ckpt, abs=1e-9)
        assert 0 < r["own"] < 90 and 0 < r["finite"] < 90 and math.isnan(r["c"])
    kp = tiny_run(tmp_path / "kp", method={"name": "kp"})
    logged = {r["layer"]: r["decay_c"] for r in cmp.load_run(kp).rows}
    for r in coupling.layer_rows(kp):
        # float32 training: F and W carry rounding of about 1e-7 relative per step
        assert r["c"] == pytest.approx(logged[r["layer"]], rel=1e-4) and r["residual"] < 1e-4
        assert math.isnan(r["own"]) and math.isfinite(r["lag_z"])  # SGD momentum 0.9
    with pytest.raises(ValueError, match="run_dir"):
        coupling.layer_rows(tmp_path / "missing")
    for r in rows:  # W_0 is independent of B: its eigen-weighting z is about N(0, 1)
        assert abs(r["eig_z0"]) < 5 and math.isfinite(r["eig_z"]) and r["eig_w"] > 0
    # eigen-weighting: W's output energy on M = B^T B's top eigenvector gives lambda_max /
    # mean lambda, and a z from haar_trace_moments; spread evenly (W = Q, orthogonal) it is 1
    g0 = torch.Generator().manual_seed(3)
    b = torch.randn(12, 4, generator=g0, dtype=torch.float64)
    lam, u = torch.linalg.eigh(b.T @ b)
    top = torch.outer(u[:, -1], torch.randn(7, generator=g0, dtype=torch.float64))
    ratio, z = coupling.eigen_weighting(b, lam, top)
    assert ratio == pytest.approx(float(lam[-1] / lam.mean()))
    mean, sd = theory.haar_trace_moments(lam.numpy(), [float(top.square().sum()), 0, 0, 0])
    assert z == pytest.approx((ratio * mean - mean) / sd) and z > 0
    ratio, z = coupling.eigen_weighting(b, lam, torch.eye(4, dtype=torch.float64))
    assert ratio == pytest.approx(1.0) and math.isnan(z)  # W W^T = I: no spread to weigh
    # lag: F = 2 W + a v_off (v_off = v off W) lags along v: cos 1, z = sqrt(N), and its
    # tan^2 along v is |a v_off|^2 / |2 W|^2; no buffer: NaN
    g = torch.Generator().manual_seed(0)
    w, v = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(
        6, 5, generator=g, dtype=torch.float64)
    v_off = v - (v * w).sum() / (w * w).sum() * w
    z, tan2 = coupling._lag(w, 2 * w + 0.1 * v_off, {"momentum_buffer": v})
    assert z == pytest.approx(math.sqrt(30))
    assert tan2 == pytest.approx(float((0.1 * v_off).square().sum() / (2 * w).square().sum()))
    assert coupling._lag(w, 2 * w - 0.1 * v_off, {"momentum_buffer": v})[0] == pytest.approx(
        -math.sqrt(30))
    assert all(math.isnan(x) for x in coupling._lag(w, w, {}))
    # effective rank: k equal singular values give k, unequal ones fewer; any shape
    q = torch.linalg.qr(torch.randn(9, 9, generator=g, dtype=torch.float64))[0]
    assert coupling.effective_rank(3.0 * q[:, :4] @ q[:4, :]) == pytest.approx(4.0)
    assert coupling.effective_rank(q[:, :2] @ torch.diag(torch.tensor(
        [2.0, 1.0], dtype=torch.float64)) @ q[:2, :]) == pytest.approx(25 / 17)
    assert coupling.effective_rank(q[:, :3].reshape(9, 3, 1)) == pytest.approx(3.0)


def test_study_null_z_is_the_fa_null(tmp_path, capsys):
    """null_z.py on a compare.csv: z = (angle - 90) / fa_null_angle's SD at every measured
    log point of a layer with FA's independence null (the first, whose feedback is unused,
    left out), epochs as compare.csv gives them; --out draws the figure; a missing file
    or a table without such a layer is one line and exit 2."""
    null_z = _study_script("null_z")
    run = tiny_run(tmp_path / "fa", method={"name": "fa"})
    cmp.run_compare([run], tmp_path / "cmp", n_samples=4)
    table = null_z.null_z(tmp_path / "cmp" / "compare.csv")
    rows = [r for r in cmp.load_run(run).rows if math.isfinite(r["angle_deg"])]
    assert sorted(table) == sorted({("fa", str(r["layer"])) for r in rows})
    sizes = {"1": 48 * 20, "3": 32 * 48, "5": 4 * 32}
    for (_, name), points in table.items():
        angles = [r["angle_deg"] for r in rows if str(r["layer"]) == name]
        assert [a for _, a, _ in points] == pytest.approx(angles, rel=1e-15)
        sd = float(theory.fa_null_angle(sizes[name])[1])
        assert [z for _, _, z in points] == pytest.approx([(a - 90) / sd for a in angles])
        assert points[-1][0] == TINY["train"]["epochs"]
    assert null_z.main([str(tmp_path / "cmp" / "compare.csv"), "--out",
                        str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "null_z.png").stat().st_size > 0
    assert null_z.main([str(tmp_path / "missing.csv")]) == 2
    pfa = tiny_run(tmp_path / "pfa", train={"epochs": 1})
    cmp.run_compare([pfa], tmp_path / "cmp-pfa", n_samples=4)
    assert null_z.main([str(tmp_path / "cmp-pfa" / "compare.csv")]) == 2
    assert "null_z:" in capsys.readouterr().err


def test_study_fixedpoint_width_reads_the_final_rows(pfa_run, tmp_path, capsys):
    """fixedpoint_width.py on a compare.csv: per (width, r, layer) the final measured angle
    minus the fixed point, the conditional SD and z, keyed by the seed in the run's name;
    the deepest layer is the classifier; the count of hidden layers within the tolerance
    follows --tolerance; a missing file or a table without a fixed point is exit 2."""
    script = _study_script("fixedpoint_width")
    seeded = tmp_path / "pfa__train.seed=7"
    shutil.copytree(pfa_run, seeded)
    cmp.run_compare([seeded], tmp_path / "cmp", n_samples=4)
    table = script.final_offsets(tmp_path / "cmp" / "compare.csv")
    final = {r["layer"]: r for r in read_csv(tmp_path / "cmp" / "compare.csv")
             if r["final"] == "True"}
    assert sorted(table) == [(48, 4.0, 1, False), (48, 4.0, 3, False), (48, 4.0, 5, True)]
    for (_, _, layer, _), seeds in table.items():
        r = final[str(layer)]
        assert seeds == {"7": (float(r["measured_deg"]) - float(r["fixed_point_deg"]),
                               float(r["cond_sd_deg"]), float(r["cond_z"]))}
    hidden = [abs(s["7"][0]) for k, s in table.items() if not k[3]]
    for tol, within in ((max(hidden) + 1e-9, 2), (min(hidden) - 1e-9, 0)):
        assert script.main([str(tmp_path / "cmp" / "compare.csv"), "--tolerance",
                            str(tol)]) == 0
        assert f"within {tol:g} deg: {within} of 2" in capsys.readouterr().out
    assert script.main([str(tmp_path / "cmp" / "compare.csv"), "--out",
                        str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "fixedpoint_width.png").stat().st_size > 0
    assert script.main([str(tmp_path / "missing.csv")]) == 2
    bp = tiny_run(tmp_path / "bp", method={"name": "bp"}, train={"epochs": 1})
    cmp.run_compare([bp], tmp_path / "cmp-bp", n_samples=4)
    assert script.main([str(tmp_path / "cmp-bp" / "compare.csv")]) == 2
    assert "fixedpoint_width:" in capsys.readouterr().err


def test_gaitprop_step_angle_measures_the_runs_own_update(every_method):
    """analysis/gaitprop_step_angle.py: on the run's first batch, 'raw' is the angle
    Trainer.diagnostics gives there (the logged quantity); BP against itself is 0 in every
    column; a run of a method that is no layer-local rule is refused in one line."""
    spec = importlib.util.spec_from_file_location("gaitprop_step_angle",
                                                  REPO / "analysis" / "gaitprop_step_angle.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from alignlab.gaitprop import Trainer
    from alignlab.train import build_run

    paths, _, _ = every_method
    run_dir = next(p for p in paths if p.name == "gait-prop")
    table = script.step_angles(run_dir, 1)
    config = load_config(run_dir / "config.toml")
    run = build_run(config, device=torch.device("cpu"))
    run.model.load_state_dict(torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"])
    trainer = Trainer(run.model, run.optimizer, config.method.name, **config.method.options)
    size = config.train.batch_size
    diag = {r["layer"]: r["update_angle_deg"]
            for r in trainer.diagnostics(run.train.x[:size], run.train.y[:size])}
    assert table["layers.0"][0] == pytest.approx(diag["layers[0]"], abs=1e-9) and diag[
        "layers[0]"] > 0
    assert all(math.isfinite(v) for row in table.values() for v in row)
    bp = script.step_angles(next(p for p in paths if p.name == "inv-bp"), 2)
    assert all(v == pytest.approx(0.0, abs=1e-6) for row in bp.values() for v in row)
    with pytest.raises(ValueError, match="layer-local rule"):
        script.step_angles(next(p for p in paths if p.name == "fa"), 1)


def test_study_mirror_lag_separates_the_lag_from_the_noise(tmp_path, pfa_run, capsys):
    """mirror_lag.py: the noise-free twin of the mirror is W's multiple while W stands still
    (lag 0 to rounding), and trails a W that trains (lag > 0); its tan^2 parts add up (the
    known answer below); a run without a mirror is a one-line error, exit 2."""
    lag = _study_script("mirror_lag")
    wm = tiny_run(tmp_path / "wm", method={"name": "wm"}, train={"epochs": 1})
    rows = lag.run_rows(wm, steps=30, window=10)
    assert [r["layer"] for r in rows] == [name for name, layer in converted_layers(
        load_trained(rebuild_run(wm), wm).model)]
    for r in rows:
        assert r["lag"] > 1e-8 and r["measured"] > 0 and r["floor"] > 0
    frozen = load_trained(rebuild_run(wm), wm)
    for group in frozen.optimizer.param_groups:
        group["lr"] = 0.0
    for r in lag.track(frozen, steps=30, window=10):
        assert r["lag"] < 1e-24 and abs(r["cross"]) < 1e-12 and r["measured"] > 0
    g = torch.Generator().manual_seed(1)
    w, el, n = (torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(3))
    el, n = (x - (x * w).sum() / (w * w).sum() * w for x in (el, n))  # perpendicular to W
    measured, lag_t2, cross = lag._tan2_parts(w, 2 * w + el + n, 3 * w + 1.5 * el)
    den = float((2 * w).square().sum())
    assert measured == pytest.approx(float((el + n).square().sum()) / den)
    assert lag_t2 == pytest.approx(float((1.5 * el).square().sum()) / float(
        (3 * w).square().sum()))
    assert cross == pytest.approx(2 * float((1.5 * el * (el + n - 1.5 * el)).sum()) / den)
    again, other = (lag.run_rows(wm, steps=30, window=10, seed=s) for s in (0, 1))
    assert again == rows and other != rows  # --seed: the batch order and mirror noise
    assert lag.main([str(pfa_run), "--steps", "2"]) == 2
    assert "no mirror-trained layer" in capsys.readouterr().err
    assert lag.main([str(tmp_path / "missing")]) == 2
    assert lag.main([str(wm), "--steps", "4", "--window", "5"]) == 2


def test_gaitprop_gap_pairs_the_runs_epoch_by_epoch(every_method, tmp_path, capsys):
    """analysis/gaitprop_gap.py: per finished epoch, GAIT-prop's test accuracy minus BP's
    (from each metrics.csv), GAIT-prop's layer-1 update angle and its hidden layers' mean
    residual at the epoch's last logged step; --out draws gap.png; a folder that is not a
    run is one line and exit 2."""
    spec = importlib.util.spec_from_file_location("gaitprop_gap",
                                                  REPO / "analysis" / "gaitprop_gap.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paths, _, _ = every_method
    bp, gait = (next(p for p in paths if p.name == n) for n in ("inv-bp", "gait-prop"))
    rows = script.pair_rows(bp, gait)
    acc = {p: {int(r["epoch"]): 100 * float(r["test_acc"]) for r in read_csv(p / "metrics.csv")}
           for p in (bp, gait)}
    layers = read_csv(gait / "layers.csv")
    last = max(int(r["step"]) for r in layers)
    n_layers = len({r["layer"] for r in layers})
    at_end = [r for r in layers if int(r["step"]) == last]
    assert [r["epoch"] for r in rows] == [1]
    assert rows[0]["gap"] == pytest.approx(acc[gait][1] - acc[bp][1])
    assert rows[0]["angle1"] == pytest.approx(float(next(
        r["update_angle_deg"] for r in at_end if r["layer"] == "layers.0")))
    assert rows[0]["residual"] == pytest.approx(statistics.fmean(
        float(r["ortho_residual"]) for r in at_end if r["layer"] != f"layers.{n_layers - 1}"))
    assert script.main(["--pair", "x, a label", str(bp), str(gait), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "gap.png").stat().st_size > 0
    assert "| x, a label | 1 |" in capsys.readouterr().out
    written = read_csv(tmp_path / "gap.csv")
    assert written[0]["pair"] == "x, a label" and written[0]["epoch"] == "1"
    assert [float(written[0][k]) for k in ("gap_pp", "angle1_deg", "residual")] == [
        pytest.approx(rows[0][k]) for k in ("gap", "angle1", "residual")]
    assert script.main(["--pair", "x", str(bp), str(tmp_path / "missing")]) == 2
    assert "gaitprop_gap:" in capsys.readouterr().err
