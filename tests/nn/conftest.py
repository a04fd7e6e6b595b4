"""nn tests use tiny tensors: one intra-op thread avoids oversubscription on shared CI
cores (it made these tests ~50x slower on a loaded 2-core machine)."""

import pytest


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """Every test here runs torch on one thread (``one_thread`` in tests/conftest.py)."""
