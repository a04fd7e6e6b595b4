"""Training-harness tests: one intra-op thread."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny tensors on shared cores, and the same numbers in every
    process (thread count can change floating-point summation order)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
