"""The console command: tables, one-line errors, exit codes."""

import subprocess
import sys

import pytest

from alignlab.cli import main, theory_table


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "alignlab.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_theory_prints_paper_values(capsys):
    assert main(["theory", "--ratio", "1", "10", "100"]) == 0
    out = capsys.readouterr().out
    # theory.md: r = 1: 45.00 deg, ratio 1.414; r = 10: 17.55 deg, 1.049; r = 100: 5.71 deg, 1.005
    for value in ("45", "1.4142", "17.548", "1.0488", "5.7106", "1.005"):
        assert value in out


def test_theory_table_columns_and_csv(tmp_path):
    table = theory_table([10], n_out=100, ensemble="uniform")
    row = table[0]
    assert row["n_mid"] == 1000
    assert row["angle_deg"] == pytest.approx(17.548, abs=1e-3)
    assert row["pfa_o_angle_deg"] == 0.0
    # finite size: m2 = 1 + (n_out + k4 - 2) / n_mid with k4 = 9/5 for uniform entries
    assert row["m2_finite"] == pytest.approx(1 + (100 + 1.8 - 2) / 1000, rel=1e-14)
    path = table.to_csv(tmp_path / "t.csv")
    assert path.read_text().splitlines()[0].startswith("ratio,lambda,angle_deg")


def test_theory_csv_flag(tmp_path, capsys):
    assert main(["theory", "--ratio", "2", "--ratio", "4", "--csv", str(tmp_path / "x.csv")]) == 0
    assert len((tmp_path / "x.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    "args, name",
    [
        (["theory", "--ratio", "-1"], "ratio"),
        (["theory", "--ratio", "0"], "ratio"),
        (["theory", "--ratio", "nan"], "ratio"),
        (["theory", "--ratio", "10", "--n-out", "0"], "n_out"),
        (["theory", "--ratio", "10", "--ensemble", "cauchy"], "ensemble"),
        (["figure3", "--samples", "-5"], "n_samples"),
        (["figure3", "--ensemble", "cauchy"], "ensemble"),
        (["figure3", "--ratios", "0"], "ratios"),
        (["figure3", "--n-out", "0"], "n_out"),
        (["figure3", "--method", "wishart"], "method"),
    ],
)
def test_bad_input_is_one_line_error(args, name, tmp_path):
    proc = run_cli(*args, *(["--out", str(tmp_path)] if args[0] == "figure3" else []))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("alignlab: error:")
    assert f"`{name}`" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing written before the input is validated


def test_argparse_errors_are_one_line():
    proc = run_cli("theory", "--ratio", "ten")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("no-such-command")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
