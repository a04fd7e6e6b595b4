"""nn tests use tiny tensors: one intra-op thread avoids oversubscription on shared CI
cores (it made these tests ~50x slower on a loaded 2-core machine)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
