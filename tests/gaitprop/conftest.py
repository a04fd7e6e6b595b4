"""GAIT-prop tests: tiny float64 networks on one intra-op thread (shared CI cores)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
