"""The ``alignlab`` command: exit statuses, errors that name the flag, output locations
checked before any work, tables parsed exactly. In-process (``main([...])``) except the
two tests that need a fresh interpreter."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alignlab import theory
from alignlab.cli import EPILOG, ExitStatus, build_parser, flag_message, main
from alignlab.reports import figure3 as f3

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--samples", "4", "--ratios", "1", "10", "--quiet"]


@pytest.fixture(autouse=True)
def tiny_plot(monkeypatch):
    """The command's behaviour does not depend on the picture: draw a 1-inch figure
    (the real one, 2100 x 630 px at 150 dpi, is tested in tests/reports)."""
    def plot(records, config=None):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot(records.column("ratio"), records.column("angle_mean_deg"))
        return fig

    monkeypatch.setattr(f3, "plot_figure3", plot)


def parse_table(text):
    """Rows of the first table in ``text`` (header line, dashes line, rows up to a blank
    line) as dicts of strings."""
    lines = text.splitlines()
    dash = next(i for i, line in enumerate(lines) if line.strip() and set(line) <= {"-", " "})
    header = lines[dash - 1].split()
    rows = []
    for line in lines[dash + 1:]:
        if not line.strip():
            break
        rows.append(dict(zip(header, line.split(), strict=True)))
    return rows


def one_line_error(capsys):
    io = capsys.readouterr()
    lines = io.err.splitlines()
    assert len(lines) == 1, io.err
    assert lines[0].startswith("alignlab: error: "), io.err
    return io.out, lines[0]


# ------------------------------------------------------------------------------ tables
def test_theory_prints_the_paper_values(capsys):
    assert main(["theory", "--ratio", "1", "10", "100"]) == 0
    rows = parse_table(capsys.readouterr().out)
    r = np.array([1.0, 10.0, 100.0])
    assert [row["ratio"] for row in rows] == ["1", "10", "100"]
    # printed to 5 significant digits: each cell is the theory value so rounded, exactly
    for name, exact in [("angle_deg", theory.path_alignment_angle(r)),
                        ("norm_ratio", theory.path_norm_ratio(r)),
                        ("eig_sd", theory.eigenvalue_sd(r))]:
        assert [row[name] for row in rows] == [f"{v:.5g}" for v in exact], name
    # theory.md: 45 deg and sqrt 2 at r = 1; 17.548 deg at r = 10; 5.7106 deg at r = 100
    assert [float(row["angle_deg"]) for row in rows] == [45.0, 17.548, 5.7106]
    assert [float(row["norm_ratio"]) for row in rows] == [1.4142, 1.0488, 1.005]
    assert [int(row["n_mid"]) for row in rows] == [100, 1000, 10000]
    assert [float(row["orthogonal_angle_deg"]) for row in rows] == [0.0, 0.0, 0.0]


def test_theory_below_ratio_one(capsys):
    """Failure 5: `--ratio 0.5` exited 2 because of the PFA-o column."""
    assert main(["theory", "--ratio", "0.5"]) == 0
    (row,) = parse_table(capsys.readouterr().out)
    assert float(row["orthogonal_angle_deg"]) == 45.0  # the tight frame's arccos(sqrt(1/2))
    assert row["angle_deg"] == f"{np.degrees(np.arctan(np.sqrt(2))):.5g}"
    assert row["n_mid"] == "50"


def test_theory_extreme_ratio_is_finite_and_silent(capsys):
    """Failure 7: `--ratio 1e18` printed NaN columns and a RuntimeWarning, exit 0."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["theory", "--ratio", "1e18"]) == 0
    io = capsys.readouterr()
    (row,) = parse_table(io.out)
    assert "nan" not in io.out and io.err == ""
    assert row["n_mid"] == str(10**20)
    assert float(row["angle_deg"]) == float(f"{np.degrees(1e-9):.5g}")
    assert float(row["angle_finite_deg"]) == float(f"{np.degrees(np.sqrt(99.8e-20)):.5g}")


def test_theory_csv(tmp_path, capsys):
    path = tmp_path / "sub" / "x.csv"
    assert main(["theory", "--ratio", "2", "--ratio", "4", "--csv", str(path)]) == 0
    lines = path.read_text().splitlines()
    assert lines[0].startswith("ratio,lambda,angle_deg") and len(lines) == 3
    assert float(lines[1].split(",")[2]) == float(theory.path_alignment_angle(2.0))
    assert capsys.readouterr().out.rstrip().endswith(f"wrote {path}")


def test_figure3_prints_its_table_and_verdict(tmp_path, capsys):
    assert main(["figure3", *SMOKE, "--out", str(tmp_path)]) == ExitStatus.OK
    out = capsys.readouterr().out
    rows = parse_table(out)
    csv_rows = (tmp_path / "figure3.csv").read_text().splitlines()
    assert [row["ratio"] for row in rows] == ["1", "10"] and len(csv_rows) == 3
    # the printed table is the CSV, rounded to 5 digits
    header = csv_rows[0].split(",")
    for row, line in zip(rows, csv_rows[1:], strict=True):
        values = dict(zip(header, line.split(","), strict=True))
        assert row["angle_mean_deg"] == f"{float(values['angle_mean_deg']):.5g}"
    assert "claim holds" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f3.OUTPUT_FILES)


# ------------------------------------------------------------------------ exit statuses
def test_claim_failed_has_its_own_status_and_writes_the_files(tmp_path, capsys, monkeypatch):
    """Failure 12: status 1 meant both 'claim failed' and 'crashed'."""
    real = f3.ensemble_theory

    def wrong_theory(*args, **kwargs):  # the finite-size angle 1 deg off
        cols = real(*args, **kwargs)
        return dict(cols, theory_angle_finite_deg=cols["theory_angle_finite_deg"] + 1.0)

    monkeypatch.setattr(f3, "ensemble_theory", wrong_theory)
    assert main(["figure3", *SMOKE, "--out", str(tmp_path)]) == ExitStatus.CLAIM_FAILED == 3
    assert "claim FAILED" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f3.OUTPUT_FILES)


def test_crash_propagates_and_interrupt_is_130(tmp_path, capsys, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(f3, "figure3_records", crash)
    with pytest.raises(RuntimeError, match="a bug"):  # a traceback, status 1 in a shell
        main(["figure3", *SMOKE, "--out", str(tmp_path / "a")])
    monkeypatch.setattr(f3, "figure3_records", interrupt)
    assert main(["figure3", *SMOKE, "--out", str(tmp_path / "b")]) == ExitStatus.INTERRUPTED
    assert capsys.readouterr().err == "alignlab: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_closed_output_pipe_is_not_a_crash(monkeypatch):
    """`alignlab theory ... | head -1` ended in a BrokenPipeError traceback."""
    import io

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["theory", "--ratio", "1", "10"]) == ExitStatus.INTERRUPTED


def test_statuses_are_documented():
    statuses = {int(s) for s in ExitStatus}
    assert statuses == {0, 1, 2, 3, 4, 5, 130, 143}
    docs = (REPO / "docs" / "cli.md").read_text()
    for s in statuses:
        assert re.search(rf"^\| `{s}` \|", docs, re.M), s
        assert re.search(rf"(?<![\d.]){s} [a-z]", EPILOG), s


def test_command_modules_share_the_statuses():
    import alignlab.reports.cli
    import alignlab.train.cli
    import alignlab.train.sweep
    from alignlab._exit import ExitStatus as below_the_cli

    assert below_the_cli is ExitStatus  # the command modules import it without the CLI
    for module in (alignlab.reports.cli, alignlab.train.cli, alignlab.train.sweep):
        assert module.ExitStatus is ExitStatus, module
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert {"figure3", "theory", "train", "sweep", "plot"} <= set(sub)
    assert all(callable(p.get_default("func")) for p in sub.values())


def test_help_and_version_return_zero(capsys):
    assert main(["--help"]) == 0
    assert "exit status: 0 success" in capsys.readouterr().out
    assert main(["figure3", "--help"]) == 0
    assert "3 a report's claim check failed" in capsys.readouterr().out.replace("\n", " ")
    assert main(["--version"]) == 0


# ------------------------------------------------------------ one-line errors, flag names
@pytest.mark.parametrize("args, flag", [
    (["theory", "--ratio", "-1"], "--ratio"),
    (["theory", "--ratio", "0"], "--ratio"),
    (["theory", "--ratio", "nan"], "--ratio"),
    (["theory", "--ratio", "10", "--n-out", "0"], "--n-out"),
    (["theory", "--ratio", "10", "--ensemble", "cauchy"], "--ensemble"),
    (["theory", "--ratio", "10", "--density", "0.5"], "--density"),
    (["theory", "--ratio", "10", "--ensemble", "sparse", "--density", "2"], "--density"),
    (["figure3", "--samples", "-5"], "--samples"),
    (["figure3", "--samples", "1"], "--samples"),
    (["figure3", "--seed", "-1"], "--seed"),
    (["figure3", "--ensemble", "cauchy"], "--ensemble"),
    (["figure3", "--ratios", "0"], "--ratios"),
    (["figure3", "--n-out", "0"], "--n-out"),
    (["figure3", "--n-in", "0"], "--n-in"),
    (["figure3", "--method", "wishart"], "--method"),
    (["figure3", "--density", "0.5"], "--density"),  # failure 9: uniform B has no density
    (["figure3", "--ensemble", "gaussian", "--density", "0.5"], "--density"),
    (["figure3", "--ensemble", "sparse", "--density", "0"], "--density"),
    (["figure3", "--device", "cuda:99"], "--device"),  # failure 8
    (["figure3", "--ratios", "1e9"], "--ratios"),  # failure 3: 4e13 bytes for one sample
    (["figure3", "--ratios", "1", "1e12"], "--ratios"),
    (["figure3", "--n-in", "1000000000000"], "--n-in"),
])
def test_bad_input_is_one_line_naming_the_flag(args, flag, tmp_path, capsys):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if args[0] == "figure3" else []
    assert main([*args, *extra]) == ExitStatus.BAD_INPUT
    stdout, line = one_line_error(capsys)
    assert line.startswith(f"alignlab: error: `{flag}` "), line
    assert not re.search(r"`(n_samples|n_out|n_in|ratios|expansion_ratios?|n_mid)`", line)
    assert stdout == ""
    assert not out.exists()  # failure 8: no empty folder left behind
    assert list(tmp_path.iterdir()) == []


def test_argparse_errors_are_one_line(capsys):
    for args in (["theory", "--ratio", "ten"], ["no-such-command"], ["figure3", "--bogus"]):
        assert main(args) == ExitStatus.BAD_INPUT
        one_line_error(capsys)


def test_flag_message_rewrites_only_known_names():
    flags = {"n_samples": "--samples", "out_dir": "--out"}
    assert flag_message("`n_samples` must be an integer >= 2, got -5.", flags) == \
        "`--samples` must be an integer >= 2, got -5."
    assert flag_message("`out_dir` must be a writable folder,\n got 'x'.", flags) == \
        "`--out` must be a writable folder, got 'x'."
    unknown = "`kurtosis` must be >= 1, got 0."
    assert flag_message(unknown, flags) == unknown


def test_each_subcommand_maps_its_own_flags():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    fig, thy = sub["figure3"].get_default("_flags"), sub["theory"].get_default("_flags")
    assert fig["n_samples"] == "--samples" and fig["n_out"] == "--n-out"
    assert fig["out_dir"] == "--out" and fig["expansion_ratios"] == "--ratios"
    assert thy["ratios"] == "--ratio" and thy["csv"] == "--csv"


# ----------------------------------------------------- output locations (failures 1, 4)
def _no_simulation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the simulation ran before the output location was checked")

    monkeypatch.setattr(f3, "figure3_records", fail)


@pytest.mark.parametrize("where", ["file", "file/sub", "/proc/alignlab-out"])
def test_figure3_unusable_out_fails_before_any_work(where, tmp_path, capsys, monkeypatch):
    _no_simulation(monkeypatch)
    (tmp_path / "file").write_text("keep")
    out = where if where.startswith("/") else str(tmp_path / where)
    assert main(["figure3", *SMOKE, "--out", out]) == ExitStatus.BAD_INPUT
    _, line = one_line_error(capsys)
    assert line.startswith(f"alignlab: error: `--out` must be a writable folder, got '{out}'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "keep"


def test_figure3_unwritable_out_fails_before_any_work(tmp_path, capsys, monkeypatch):
    """Failure 1 (a folder without write permission; root ignores permission bits, so
    the probe is refused instead)."""
    from alignlab import _output

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    _no_simulation(monkeypatch)
    monkeypatch.setattr(_output.tempfile, "mkstemp", refuse)
    assert main(["figure3", *SMOKE, "--out", str(tmp_path)]) == ExitStatus.BAD_INPUT
    _, line = one_line_error(capsys)
    assert "Permission denied" in line and line.startswith("alignlab: error: `--out`")


@pytest.mark.parametrize("where", ["/proc/alignlab.csv", "dir", "file/x.csv"])
def test_theory_unusable_csv_fails_before_the_table(where, tmp_path, capsys):
    """Failure 4: the table was printed, then a traceback."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("keep")
    path = where if where.startswith("/") else str(tmp_path / where)
    assert main(["theory", "--ratio", "1", "--csv", path]) == ExitStatus.BAD_INPUT
    stdout, line = one_line_error(capsys)
    assert stdout == ""  # nothing printed before the error
    assert line.startswith(f"alignlab: error: `--csv` must be a writable file path, got '{path}'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]


def test_interrupt_while_writing_keeps_the_previous_figures(tmp_path, capsys, monkeypatch):
    """Failure 2 through the command: Ctrl-C while the PNG is saved -> 130, old set kept."""
    from matplotlib.figure import Figure

    assert main(["figure3", *SMOKE, "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    assert main(["figure3", *SMOKE, "--seed", "1", "--out", str(tmp_path)]) == 130
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    capsys.readouterr()


# --------------------------------------------------------------- documentation examples
def test_examples_do_not_overwrite_the_committed_figure():
    """Failure 13: an example with non-default settings wrote into figures/, replacing the
    image the README shows. Only the paper protocol itself may write there."""
    offenders = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            m = re.search(r"alignlab figure3\b([^`#|]*)", line)
            if not m:
                continue
            args = m.group(1).split()
            out = args[args.index("--out") + 1] if "--out" in args else "figures"
            settings = [a for a in args if a.startswith("--") and a not in ("--out", "--quiet")]
            if settings and out.rstrip("/") in ("figures", "./figures"):
                offenders.append(f"{doc.name}: {line.strip()}")
    assert offenders == []


# ---------------------------------------------------------------- a fresh interpreter
def test_console_script_exit_status_and_one_line():
    script = Path(sys.executable).with_name("alignlab")
    proc = subprocess.run([str(script), "figure3", "--samples", "1"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "alignlab: error: `--samples` must be an integer >= 2, got 1."]


def test_python_m_alignlab_theory_does_not_import_torch():
    """`python -m alignlab` works (torchrun uses it) and the theory table imports no torch
    (each command module imports its heavy dependencies inside its handlers)."""
    env = dict(os.environ, PYTHONWARNINGS="error")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "alignlab", "theory",
                           "--ratio", "1"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert parse_table(proc.stdout)[0]["angle_deg"] == "45"
    # every `import` statement is logged, however deep (modules loaded by
    # importlib.import_module itself are not, but their own imports are)
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"alignlab.cli", "alignlab.reports.theory_table", "numpy"} <= imported
    assert {m for m in imported if m.split(".")[0] in ("torch", "matplotlib")} == set()


def test_the_command_exits_at_once_with_mains_status_and_all_its_output(tmp_path):
    """`python -m alignlab` (alignlab.cli.run) skips the interpreter's teardown: the status
    is main's, every printed line arrives, files are complete; a closed pipe is no crash."""
    import subprocess
    import sys

    def alignlab(*args, **kw):
        return subprocess.run([sys.executable, "-m", "alignlab", *args], capture_output=True,
                              text=True, **kw)

    ok = alignlab("theory", "--ratio", "1", "10", "100")
    assert ok.returncode == 0 and ok.stderr == ""
    assert ok.stdout.rstrip("\n").splitlines()[-1].split()[0] == "100"  # the last row
    bad = alignlab("figure3", "--samples", "1", "--out", str(tmp_path / "fig"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("alignlab: error: `--samples`") and bad.stdout == ""
    assert not (tmp_path / "fig").exists()
    small = alignlab("figure3", "--samples", "20", "--ratios", "1", "4", "--quiet", "--out",
                     str(tmp_path / "small"))
    assert small.returncode == 0, small.stderr
    csv = (tmp_path / "small" / "figure3.csv").read_text().splitlines()
    assert len(csv) == 3 and csv[-1].startswith("4")
    pipe = subprocess.run(f"{sys.executable} -m alignlab theory --ratio 1 10 100 | head -1",
                          shell=True, capture_output=True, text=True)
    assert pipe.returncode == 0 and "Traceback" not in pipe.stderr, pipe.stderr
