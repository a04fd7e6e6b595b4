"""The whole-process Figure 3 benchmark runs end to end at a smoke size and measures what
it says: alignlab's simulation time is read from the command's own progress lines (a
broken pattern would make the "overhead" the whole process), and it is part of the
process's wall time. No timing is asserted (a shared machine makes any bound flaky)."""

import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "analysis" / "bench_figure3.py"


@pytest.mark.slow
def test_bench_figure3_whole_processes_smoke(capsys):
    bench = runpy.run_path(str(BENCH))
    times = bench["main"](["--processes", "1", "--samples", "4"])
    assert {k: len(v) for k, v in times.items()} == {
        "alignlab_s": 1, "literal_s": 1, "simulation_s": 1, "overhead_s": 1}
    sim, wall = times["simulation_s"][0], times["alignlab_s"][0]
    assert 0 < sim < wall and times["overhead_s"][0] == pytest.approx(wall - sim)
    assert times["literal_s"][0] > 0
    assert "medians over 1 interleaved rounds" in capsys.readouterr().out
