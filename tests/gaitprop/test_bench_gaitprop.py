"""analysis/bench_gaitprop.py runs end to end at its smoke size and reports what it says.

No timing is asserted (a shared machine makes any bound flaky). Checked: one row per
variant and per phase, in order; BP's ratio is exactly 1 and every ratio is the row's
median over BP's median, every epoch time its median times the steps per epoch; the
medians lie within each row's positive range; the targets sit on the GAIT-prop rows; the
CSV holds the same table; the flop model gives the docstring's numbers; the phased step
updates the weights exactly as ``Trainer.step`` does (else the breakdown would time
something else); bad input fails in one line with exit status 2 before any work.
"""

import copy
import csv
import math
import runpy
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "analysis" / "bench_gaitprop.py"


@pytest.fixture(scope="module")
def bench():
    return runpy.run_path(str(BENCH), run_name="bench_gaitprop")


@pytest.mark.slow
def test_bench_gaitprop_smoke(bench, tmp_path, capsys):
    out = tmp_path / "bench.csv"
    rec = bench["main"](["--smoke", "--csv", str(out)])
    printed = capsys.readouterr().out
    labels = [label for label, _, _ in bench["VARIANTS"]]
    updates = [label for label, _, _ in bench["UPDATES"]]
    assert labels[0] == "bp"
    names = [*labels, *bench["PHASES"], bench["TOTAL"], *updates]
    assert [r["variant"] for r in rec] == names
    n_phase = len(bench["PHASES"]) + 1
    assert [r["section"] for r in rec] == (["step"] * len(labels) + ["phase"] * n_phase
                                           + ["update"] * len(updates))
    bp = rec[0]
    assert bp["ratio"] == 1.0 and bp["flop_ratio"] == 1.0
    smoke = bench["SMOKE"]
    for r in rec:
        assert r["repeats"] == smoke["repeats"] and r["steps"] == smoke["steps"]
        assert (r["width"], r["hidden_layers"], r["batch"]) == (32, 1, 60)
        assert r["steps_per_epoch"] == 1000 and r["threads"] == 1
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["ratio"] == r["median_ms"] / bp["median_ms"]
        assert r["epoch_s"] == r["median_ms"] * 1000 / 1e3
        if r["target"] != "":
            assert r["within_target"] == ("yes" if r["ratio"] <= r["target"] else "no")
        else:
            assert r["within_target"] == ""
    assert {r["variant"]: r["target"] for r in rec if r["target"] != ""} == {
        "gait-prop": 2.0, "gait-prop, no penalty": 2.0}
    by = {r["variant"]: r for r in rec}
    assert by["gait-prop, no penalty"]["config"] == "gait-prop.toml, method.penalty=none"
    # the matched BP row carries GAIT-prop's configured penalty; matched ratios divide by it
    matched = by[bench["MATCHED_BP"]]
    assert matched["config"] == "bp.toml, method.penalty=offdiag, method.penalty_strength=0.1"
    assert matched["flop_ratio"] > 1 and math.isnan(matched["matched_ratio"])
    for name, base in bench["MATCHED"].items():
        assert by[name]["matched_ratio"] == by[name]["median_ms"] / by[base]["median_ms"]
    # per dtype against BP in that dtype; the difference form against the literal one
    for name, base in bench["SAME_DTYPE_BP"].items():
        assert by[name]["dtype_ratio"] == by[name]["median_ms"] / by[base]["median_ms"]
        assert ("float32" in name) == ("float32" in base)
    assert by["bp"]["dtype_ratio"] == by["bp, float32"]["dtype_ratio"] == 1.0
    for name, base in bench["FORM_PAIRS"].items():
        assert by[name]["form_ratio"] == by[name]["median_ms"] / by[base]["median_ms"]
        assert "form=targets" in by[base]["config"] and "targets" not in by[name]["config"]
    assert sum(1 for r in rec if not math.isnan(r["form_ratio"])) == 4
    assert by["gait-prop, float32"]["config"] == "gait-prop.toml, train.dtype=float32"
    assert by["update: gait-prop, float32"]["config"].endswith("float32")
    # the flop model: the penalty is what separates the two GAIT-prop rows
    assert by["gait-prop"]["flop_ratio"] > by["gait-prop, no penalty"]["flop_ratio"] > 1
    assert by["tp"]["flop_ratio"] == by["itp"]["flop_ratio"] == by["gait-prop"]["flop_ratio"]
    assert by[bench["TOTAL"]]["flop_ratio"] == by["gait-prop"]["flop_ratio"]
    # the total row is each round's sum of the phases: its median is at most the phase sum
    # of maxima and at least the sum of minima
    phases = [by[p] for p in bench["PHASES"]]
    total = by[bench["TOTAL"]]
    assert sum(p["min_ms"] for p in phases) <= total["median_ms"] * (1 + 1e-12)
    assert total["median_ms"] <= sum(p["max_ms"] for p in phases) * (1 + 1e-12)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["variant"] for row in rows] == names
    assert [float(row["ratio"]) for row in rows] == [r["ratio"] for r in rec]
    assert [float(row["median_ms"]) for row in rows] == [r["median_ms"] for r in rec]
    assert list(rows[0]) == rec.columns
    for name in names:
        assert name in printed
    assert f"torch {torch.__version__}, 1 thread(s)" in printed


def test_flop_model_matches_the_docstring(bench):
    sizes = bench["Sizes"](784, 4, 60)
    flops = bench["flops"]
    bp = flops(sizes, inverts=False, penalty=False)
    assert bp == 6 * 784**2 * 60 * 5
    assert math.isclose(bp / 5, 2.21e8, rel_tol=5e-3)
    no_penalty = flops(sizes, inverts=True, penalty=False) / bp
    assert math.isclose(no_penalty, 1 + 4 / 5 * (2 / 3 * 784**3) / (6 * 784**2 * 60))
    assert round(no_penalty, 2) == 2.16
    assert round(4 * 784**3 / (6 * 784**2 * 60), 1) == 8.7  # the penalty per BP layer
    assert round(flops(sizes, inverts=True, penalty=True) / bp, 1) == 10.9
    phase = bench["phase_flops"](sizes)
    assert math.isnan(phase[3])  # the optimiser: elementwise, not counted
    assert math.isclose(sum(p for p in phase if not math.isnan(p)),
                        flops(sizes, inverts=True, penalty=True))


@pytest.mark.parametrize("stem, extra", [("gait-prop", ()), ("tp", ()), ("bp", ()),
                                         ("gait-prop", (("method.penalty", "none"),))])
def test_phased_step_is_trainer_step(bench, stem, extra):
    sizes = bench["Sizes"](16, 2, 8)
    with torch.random.fork_rng(devices=[]):
        a = bench["build_trainer"](stem, extra, sizes)
    b = copy.deepcopy(a)  # model and optimiser together (its parameters are b's)
    assert b.optimizer.param_groups[0]["params"][0] is next(b.model.parameters())
    b.model.refresh_inverses()  # the copies' LU caches are keyed on the old storage
    batches = bench["random_batches"](sizes, a.model.num_classes, torch.float64, n=3)
    n_lu = [layer.n_factorisations for layer in b.model.layers]
    for x, y in batches:
        a.step(x, y)
        times = bench["phased_step"](b, x, y)
        assert len(times) == len(bench["PHASES"]) and all(t >= 0 for t in times)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert b.steps == a.steps == 3
    lus = [layer.n_factorisations - k for layer, k in zip(b.model.layers, n_lu, strict=True)]
    assert lus == ([0] * len(lus) if stem == "bp" else [0] + [3] * (len(lus) - 1))


@pytest.mark.parametrize("argv, message", [
    (["--repeats", "0"], "`repeats` must be an integer >= 1, got 0."),
    (["--steps", "-1"], "`steps` must be an integer >= 1, got -1."),
    (["--hidden-layers", "-1"], "`hidden_layers` must be an integer >= 0, got -1."),
    (["--steps-per-epoch", "0"], "`steps_per_epoch` must be an integer >= 1, got 0."),
    (["--width", "5"], "`model.num_classes` must be <= the output width 5, got 10."),
    (["--repeats", "two"], "argument --repeats: invalid int value: 'two'"),
])
def test_bad_input_is_one_line_and_exit_2(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        bench["main"](["--smoke", *argv])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"bench_gaitprop.py: error: {message}\n"


def test_unusable_csv_fails_before_any_work(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        bench["main"](["--smoke", "--csv", str(tmp_path)])  # a folder
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("bench_gaitprop.py: error: `csv` must be a writable file path")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_update_pass_is_the_rules_update(bench):
    """The update section times what ``alignlab.gaitprop.updates`` computes, for each of
    its rows (BP, GAIT-prop in both forms; float64 and float32), and the two forms are
    different computations (else the comparison would time one thing twice)."""
    from alignlab.gaitprop import get_rule, updates

    sizes = bench["Sizes"](16, 2, 8)
    trainers = {dt: bench["build_trainer"]("gait-prop", (("train.dtype", dt),), sizes)
                for dt in ("float64", "float32")}
    got = {}
    for label, options, dtype in bench["UPDATES"]:
        model = trainers[str(dtype).removeprefix("torch.")].model
        opts = dict(options)
        rule = get_rule(opts.pop("rule"), **opts)
        x, y = bench["random_batches"](sizes, model.num_classes, dtype, n=1)[0]
        got[label] = bench["update_pass"](model, rule, x, y)
        for a, b in zip(got[label], updates(model, x, y, rule), strict=True):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    for dt in ("float64", "float32"):
        diff = got[f"update: gait-prop, {dt}"][0].weight
        lit = got[f"update: gait-prop, targets form, {dt}"][0].weight
        assert not torch.equal(diff, lit)
