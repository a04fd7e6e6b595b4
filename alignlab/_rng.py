"""Seeding, the one scheme for the whole package.

Simulators: one root seed, one independent random stream per (sample, role).
Layers and models (:func:`torch_generator`): ``None`` (torch's default generator), an int
seed, a ``SeedSequence`` or a ``torch.Generator``. A ``SeedSequence`` becomes torch seeds
in one way only, :func:`torch_seeds` (its first 64-bit words, top bit cleared): the
simulators' device streams, the training loop's per-role seeds and the data's split and
synthetic streams all go through it.

Every simulator takes ``rng``: ``None`` (fresh OS entropy), an ``int`` seed, a
:class:`numpy.random.SeedSequence`, a :class:`numpy.random.Generator` or a
:class:`torch.Generator`. It is turned into a root :class:`~numpy.random.SeedSequence`
once (a Generator is *advanced* by one draw, so repeated calls with the same Generator
give fresh samples, as usual). Sample ``i`` of role ``tag`` (0 for ``B``, 1 for ``W``)
then draws from its own child stream ``SeedSequence(entropy, spawn_key=key + (i, tag))``.
A report that runs several computations under one user seed (``alignlab compare``'s
Monte Carlos) gives each its root by name, :func:`keyed_seed` (``seed``, ``key``).

Consequences, all tested:

* the same seed gives bit-identical output on repeated calls (same device kind);
* sample ``i`` does not depend on the chunk size, the number of threads or
  ``n_samples`` (the first ``k`` samples of a larger run are the ``k`` samples of a
  smaller one);
* no global random state is read or written.

On CPU the streams are numpy ``PCG64DXSM`` generators (filled in parallel threads: the
GIL is released while numpy fills an array). On other devices they are
``torch.Generator`` objects on that device, seeded from the same child
``SeedSequence``; the two backends produce different (equally valid) numbers.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "TAG_AUX", "TAG_B", "TAG_W", "RngLike", "Streams", "keyed_seed", "make_streams",
    "torch_generator", "torch_seeds",
]

RngLike = int | np.random.SeedSequence | np.random.Generator | torch.Generator | None

# Roles of a stream: the last element of its spawn key. TAG_CHILD marks sub-runs, so a
# child's keys (..., key, 3, i, tag) never collide with a sample's (..., i, tag).
TAG_B = 0  # the feedback matrix B (or its Bartlett factor)
TAG_W = 1  # the forward weights W
TAG_AUX = 2  # anything else (e.g. the torch.Generator of the literal recipe)
TAG_CHILD = 3
TAG_KEY = 4  # first word of a named computation's spawn key (keyed_seed)


def _root_seed_sequence(rng: Any, name: str = "rng") -> np.random.SeedSequence:
    """Turn an ``rng`` argument into a root SeedSequence (validating it; errors name
    the argument ``name``)."""
    if rng is None:
        return np.random.SeedSequence()
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, bool) or (isinstance(rng, numbers.Integral) and rng < 0):
        raise ValueError(f"`{name}` must be None, an int >= 0, a SeedSequence, a numpy "
                         f"Generator or a torch.Generator, got {rng!r}.")
    if isinstance(rng, numbers.Integral):
        return np.random.SeedSequence(int(rng))
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(0, 2**63 - 1)))
    if isinstance(rng, torch.Generator):
        draw = torch.randint(0, 2**63 - 1, (1,), generator=rng, device=rng.device)
        return np.random.SeedSequence(int(draw.item()))
    raise ValueError(f"`{name}` must be None, an int >= 0, a SeedSequence, a numpy "
                     f"Generator or a torch.Generator, got {rng!r}.")


@dataclass(frozen=True)
class Streams:
    """Index-addressable independent streams derived from one root SeedSequence."""

    root: np.random.SeedSequence

    @property
    def entropy(self) -> int:
        """The root entropy: pass it back as ``rng`` to reproduce a run made with ``rng=None``."""
        return int(self.root.entropy)  # type: ignore[arg-type]

    def child(self, key: int) -> Streams:
        """Independent streams for sub-run ``key`` (e.g. one expansion ratio of a sweep)."""
        key_path = tuple(self.root.spawn_key) + (key, TAG_CHILD)
        return Streams(np.random.SeedSequence(self.root.entropy, spawn_key=key_path))

    def seed_sequence(self, index: int, tag: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.root.entropy,
                                      spawn_key=tuple(self.root.spawn_key) + (index, tag))

    def numpy(self, index: int, tag: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64DXSM(self.seed_sequence(index, tag)))

    def torch(self, index: int, tag: int, device: torch.device) -> torch.Generator:
        return torch_generator(self.seed_sequence(index, tag), device=device)


def make_streams(rng: RngLike, name: str = "rng") -> Streams:
    """Validate ``rng`` (the argument called ``name``) and return its :class:`Streams`."""
    return Streams(_root_seed_sequence(rng, name))


def keyed_seed(seed: int, key: str) -> np.random.SeedSequence:
    """The root of the computation named ``key`` under the user's int ``seed``: one seed
    gives a report's several Monte Carlos independent, reproducible streams.

    ``SeedSequence(seed, spawn_key=(TAG_KEY, w_0, ..., w_7))``, ``w`` the eight
    little-endian 32-bit words of SHA-256 of ``key`` in UTF-8: stable across processes,
    platforms and versions (no ``hash()``), and no key's streams are another's (a spawn
    key of odd length, unlike every sample's and child's; SHA-256 does not collide).
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0, got {seed!r}.")
    words = np.frombuffer(hashlib.sha256(key.encode("utf-8")).digest(), dtype="<u4")
    return np.random.SeedSequence(int(seed), spawn_key=(TAG_KEY, *map(int, words)))


def torch_seeds(seed_sequence: np.random.SeedSequence, n: int = 1) -> list[int]:
    """``n`` seeds for ``torch.Generator.manual_seed`` from ``seed_sequence``: the first
    ``n`` 64-bit words of its state, top bit cleared (each in ``[0, 2**63)``).

    The one SeedSequence -> torch conversion of the package (word ``k`` does not depend on
    ``n``, so ``torch_seeds(ss, 3)[0] == torch_seeds(ss)[0]``).
    """
    return [int(word) & (2**63 - 1) for word in seed_sequence.generate_state(n, np.uint64)]


def torch_generator(rng: Any, name: str = "rng", *,
                    device: torch.device | str | None = None) -> torch.Generator | None:
    """A layer's or model's ``rng`` as a ``torch.Generator``: None (torch's default
    generator: None is returned), an int seed >= 0 or a ``SeedSequence`` (a new generator
    on ``device``, default the CPU, seeded with the int or with :func:`torch_seeds`), or a
    ``torch.Generator`` (used as it is). Errors name the argument ``name``."""
    if rng is None or isinstance(rng, torch.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence):
        seed = torch_seeds(rng)[0]
    elif isinstance(rng, bool) or not isinstance(rng, numbers.Integral) or rng < 0:
        raise ValueError(f"`{name}` must be None, an int >= 0, a SeedSequence or a "
                         f"torch.Generator, got {rng!r}.")
    else:
        seed = int(rng)
    gen = torch.Generator(device=device) if device is not None else torch.Generator()
    return gen.manual_seed(seed)
