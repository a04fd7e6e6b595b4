"""GAIT-prop tests: tiny float64 networks on one intra-op thread (shared CI cores)."""

import pytest


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """Every test here runs torch on one thread (``one_thread`` in tests/conftest.py)."""
