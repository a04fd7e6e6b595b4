"""``alignlab teacher-student``: ODE against the batched simulation, files and claim check."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from alignlab.cli import main
from alignlab.reports.teacher_student import (
    TeacherStudentConfig,
    check_teacher_student,
    draw,
    run_teacher_student,
    teacher_student_result,
)

SMALL = dict(K=2, M=2, N=200, t_max=20.0, seeds=3, per_decade=5)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ts")
    return out, run_teacher_student(TeacherStudentConfig(**SMALL), out)


def test_writes_the_four_files_and_the_claim_holds(small_run):
    out, (results, records, check, paths) = small_run
    assert sorted(p.name for p in out.iterdir()) == [
        "teacher_student.csv", "teacher_student.json", "teacher_student.pdf",
        "teacher_student.png"]
    assert check.ok, check.summary()
    assert [r.rule for r in results] == ["dfa", "bp"]  # the rule, then its contrast
    rows = list(csv.DictReader(paths["csv"].open()))
    t = TeacherStudentConfig(**SMALL).times()
    assert t[0] == 0 and t[1] == 1 / 200 and t[-1] == 20.0
    assert len(rows) == len(records) == 2 * 3 * len(t)
    assert float(rows[-1]["t"]) == pytest.approx(20.0)
    settings = json.loads(paths["json"].read_text())
    assert settings["rule"] == "dfa" and settings["check"]["ok"] is True
    for res in results:  # the simulation starts at the ODE's initial condition
        np.testing.assert_allclose(res.eg_sim[:, 0], res.eg_ode[:, 0], rtol=1e-12)
        np.testing.assert_allclose(res.Q_sim[:, 0], res.Q_ode[:, 0], rtol=1e-12)
        assert np.all(res.eg_sim[:, -1] < 0.8 * res.eg_sim[:, 0])  # it learned


def test_the_check_fails_when_theory_and_simulation_disagree(small_run):
    _, (results, _, check, _) = small_run
    band = TeacherStudentConfig(**SMALL).band
    shifted = [replace(results[0], eg_ode=results[0].eg_ode * 1.2), results[1]]
    bad = check_teacher_student(shifted, band)
    assert not bad.ok and "dfa: median eg relative deviation" in bad.failures[0]
    flipped = [results[0], replace(results[1], alignment_ode=-results[1].alignment_ode)]
    assert any("bp: median alignment" in f for f in check_teacher_student(flipped, band).failures)
    nan = [replace(results[0], eg_sim=results[0].eg_sim * np.nan)]
    assert not check_teacher_student(nan, band).ok
    assert check.ok


def test_settings_change_what_runs():
    base = TeacherStudentConfig(**{**SMALL, "t_max": 5.0}, contrast="none")
    init, _ = draw(base)

    def run(config, init=init):
        return teacher_student_result(init, config.rule, config, config.times(), rng=1)

    ref = run(base)
    other, _ = draw(replace(base, seed=1))
    for change in (dict(method="explicit"), dict(lr=0.5), dict(lr2=0.05),
                   dict(weight_decay=0.5), dict(sigma=0.3), dict(rule="bp")):
        res = run(replace(base, **change))
        assert not np.allclose(res.eg_sim, ref.eg_sim), change
    assert not np.allclose(run(base, other).eg_sim, ref.eg_sim)
    assert run(base).eg_sim.tolist() == ref.eg_sim.tolist()  # and nothing else does
    assert base.rules == ("dfa",)
    assert len(replace(base, per_decade=20).times()) > len(base.times())


def test_cli_runs_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    status = main(["teacher-student", "--N", "100", "--t-max", "5", "--seeds", "2",
                   "--per-decade", "3", "--quiet", "--contrast", "none", "--out",
                   str(tmp_path / "ok")])
    out = capsys.readouterr().out
    assert status == 0 and "claim holds" in out
    for args, flag in ((["--K", "0"], "--K"), (["--lr", "-1"], "--lr"),
                       (["--t-max", "0.0001"], "--t-max"), (["--N", "1"], "--N")):
        assert main(["teacher-student", *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err, err
    assert not (tmp_path / "bad").exists()
