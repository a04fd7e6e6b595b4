"""The chunking engine: chunk sizes, double buffering, slots, threads, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.sim.engine import Buffer, iter_chunks, plan_chunks


def test_plan_chunks() -> None:
    # everything fits: one chunk, nothing to overlap
    assert plan_chunks(10, 100, 50, 10_000, overlap=True) == (10, False)
    # 4 samples fit single-buffered (150 each), 3 double-buffered (250 each)
    assert plan_chunks(10, 100, 50, 700, overlap=True) == (2, True)
    assert plan_chunks(10, 100, 50, 700, overlap=False) == (4, False)
    # one sample fits, two sets of its draws do not: no overlap, one sample per chunk
    assert plan_chunks(10, 100, 50, 200, overlap=True) == (1, False)
    # a sample larger than the chunk budget is never split (memory.py refuses what does
    # not fit the budget at all)
    assert plan_chunks(10, 100, 50, 1, overlap=True) == (1, False)


@pytest.fixture
def two_threads():
    """The pool size follows torch's thread count (1 under OMP_NUM_THREADS=1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("max_chunk_bytes", [1, 400, 2**20])
def test_every_sample_lands_in_its_slot(threaded: bool, max_chunk_bytes: int) -> None:
    """fill(arrays, j, i) writes sample i into slot j; the chunks cover 0..n-1 in order,
    for one sample per chunk (1), double-buffered chunks of 2 (400 bytes: 80 bytes of
    draws per sample) and a single chunk."""
    n = 11
    buffers = {"x": Buffer((2, 3), torch.float64), "h": Buffer((4,), np.int64, host=True)}

    def fill(arrays, j, i):
        arrays["x"][j] = i
        arrays["h"][j] = -i

    seen = []
    for start, arrays in iter_chunks(n, buffers, fill, device=torch.device("cpu"),
                                     work_bytes=0, max_chunk_bytes=max_chunk_bytes,
                                     threaded=threaded):
        k = arrays["x"].shape[0]
        assert isinstance(arrays["x"], torch.Tensor) and isinstance(arrays["h"], np.ndarray)
        expect = torch.arange(start, start + k, dtype=torch.float64)
        torch.testing.assert_close(arrays["x"], expect[:, None, None].expand(k, 2, 3))
        np.testing.assert_array_equal(arrays["h"], -np.arange(start, start + k)[:, None]
                                      * np.ones((1, 4), dtype=np.int64))
        seen.extend(range(start, start + k))
    assert seen == list(range(n))


@pytest.mark.usefixtures("two_threads")
def test_an_error_in_a_draw_is_raised() -> None:
    def fill(arrays, j, i):
        if i == 5:
            raise RuntimeError("draw 5 failed")
        arrays["x"][j] = i

    chunks = iter_chunks(8, {"x": Buffer((1,), torch.float32)}, fill,
                         device=torch.device("cpu"), work_bytes=0, max_chunk_bytes=8,
                         threaded=True)
    with pytest.raises(RuntimeError, match="draw 5 failed"):
        for _ in chunks:
            pass


def test_one_seed_sequence_to_torch_conversion() -> None:
    """``alignlab._rng.torch_seeds`` is the formula every caller wrote out before it
    existed (first 64-bit words, top bit cleared), so their draws are unchanged; the
    simulators' device streams and ``torch_generator`` go through it."""
    from alignlab._rng import TAG_B, make_streams, torch_generator, torch_seeds

    ss = np.random.SeedSequence([7, 11])
    words = ss.generate_state(3, np.uint64)
    assert torch_seeds(ss, 3) == [int(w) & (2**63 - 1) for w in words]
    assert torch_seeds(ss) == torch_seeds(ss, 3)[:1]
    assert all(0 <= s < 2**63 for s in torch_seeds(np.random.SeedSequence(0), 64))

    def draws(gen: torch.Generator) -> torch.Tensor:
        return torch.randn(5, generator=gen)

    old = torch.Generator().manual_seed(int(words[0]) & (2**63 - 1))
    assert torch.equal(draws(torch_generator(ss)), draws(old))
    streams = make_streams(3)
    child = streams.seed_sequence(4, TAG_B)
    old = torch.Generator().manual_seed(
        int(child.generate_state(1, np.uint64)[0]) & (2**63 - 1))
    assert torch.equal(draws(streams.torch(4, TAG_B, torch.device("cpu"))), draws(old))
    gen = torch.Generator()
    assert torch_generator(gen) is gen and torch_generator(None) is None
    with pytest.raises(ValueError, match=r"^`seed` must be None, an int >= 0, a SeedSequence"):
        torch_generator(-1, "seed")
