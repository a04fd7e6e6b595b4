"""Figure 3 at the paper's protocol, simulated once per test session (about 2 s)."""

import pytest


@pytest.fixture(scope="session")
def paper_records():
    """Records of the default Figure3Config (11 ratios x 100 samples, uniform B, seed 0):
    every statistic about the paper's protocol reads these, none re-simulates."""
    from alignlab.reports.figure3 import Figure3Config, figure3_records

    return figure3_records(Figure3Config())
