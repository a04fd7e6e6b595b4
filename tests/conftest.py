import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# helpers for the tests of every room: tests/data/datafiles.py (small files in the real
# formats) and tests/train/trainhelpers.py (tiny training configs)
sys.path[:0] = [str(Path(__file__).parent / "data"), str(Path(__file__).parent / "train")]

# CI: derandomised (reproducible) examples, no per-example deadline (shared, noisy machines).
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def one_thread():
    """torch on one intra-op thread for the test (results independent of the core count;
    no oversubscription when several processes share the machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _signal_handlers_restored(request):
    """Every test leaves SIGINT and SIGTERM's handlers and the signal mask as it found
    them: subprocesses of later tests in the same worker inherit an ignored or blocked
    SIGINT (a sweep's runs would then ignore the sweep's Ctrl-C). A test that changes them
    is named on stderr, and they are restored."""
    import signal

    held = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in held}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    if signal.pthread_sigmask(signal.SIG_BLOCK, []) != mask:
        print(f"\n{request.node.nodeid} changed the signal mask; restored", file=sys.stderr)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for s, handler in before.items():
        if signal.getsignal(s) is not handler:
            print(f"\n{request.node.nodeid} left {signal.Signals(s).name} handled by "
                  f"{signal.getsignal(s)!r}; restored", file=sys.stderr)
            signal.signal(s, handler)
