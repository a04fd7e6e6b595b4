"""Training-harness tests: one intra-op thread."""

import pytest


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """One intra-op thread (``one_thread`` in tests/conftest.py): tiny tensors on shared
    cores, and the same numbers in every process (the thread count can change summation
    order)."""
