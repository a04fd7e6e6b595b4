"""A teacher's labels on a stream of fresh Gaussian inputs, drawn one block at a time.

Online learning from a teacher (``docs/teacher_student.md``; Saad & Solla 1995, Goldt et
al. 2019, Refinetti et al. 2021) sees a fresh input at every step. At ``N = 2000`` inputs
and ``t = 1000`` (``t = steps / N``: two million steps) stored inputs would take 32 GB,
so nothing here stores them: an :class:`InputStream` draws the next steps' inputs when
asked, and the harness's data set ``"teacher-stream"`` (:class:`TeacherStreamSource`)
draws each training batch as the loop asks for it.

The draw order (what makes a block reproducible)
------------------------------------------------
``InputStream(N, rng=r, index=s)`` is stream ``s`` of the root seed ``r``
(:mod:`alignlab._rng`): its inputs come from the numpy ``PCG64DXSM`` stream
``make_streams(r).child(0).numpy(s, TAG_AUX)``, ``N`` standard normals per step (row
``t`` is step ``t``'s input ``x_t``) in step order, and its output noise ``xi_t ~ N(0, 1)``
from ``make_streams(r).child(1).numpy(s, TAG_AUX)``, one number per step. numpy fills
an array value by value from the stream, so the rows do not depend on how they are cut
into blocks: ``take(3)`` then ``take(5)`` gives the rows of one ``take(8)``, and a block of
any size is a function of ``(r, s)`` and its first step. These are the streams of seed
``s`` in :mod:`alignlab.sim.teacher_student` (the batched simulator), so a simulator
and the harness given the same ``rng`` consume the same draws. Inputs and noise are
separate streams: adding output noise does not change the inputs.

The teacher ``y = sum_m A_m g(B_m . x / sqrt(N)) + sigma xi`` (:class:`Teacher`, ``g(z) =
erf(z / sqrt(2))``) is computed in float64 from the float64 draws.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from .._rng import TAG_AUX, TAG_B, RngLike, make_streams
from .._validate import check_finite, check_int, check_positive, invalid
from ..sim.teacher_student import INPUTS_KEY, NOISE_KEY  # the simulator's draw order
from .pipeline import PYTHON_NAMES, ArgumentNames, DataSource
from .tensors import Augment, DataSplits, TensorDataset

__all__ = ["InputStream", "StreamDataset", "Teacher", "TeacherStreamSource"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass(frozen=True, eq=False)
class Teacher:
    """The two-layer teacher ``y(x) = sum_m A_m erf(nu_m / sqrt(2))``, ``nu = B x / sqrt(N)``.

    ``B`` (M, N) and ``A`` (M,) are float64 numpy arrays (copies of what is given).
    Calling it on inputs ``x`` (n, N) returns the ``n`` noiseless labels (float64).
    """

    B: np.ndarray  # (M, N) first layer (the spec's B*)
    A: np.ndarray  # (M,) second layer

    def __post_init__(self):
        B = np.array(check_finite("B", self.B), dtype=np.float64)
        A = np.array(check_finite("A", self.A), dtype=np.float64).reshape(-1)
        if B.ndim != 2 or B.shape[0] != A.shape[0]:
            raise invalid("B", f"a matrix (M, N) with M = len(A) = {A.shape[0]}", B.shape)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "A", A)

    @property
    def M(self) -> int:
        return self.B.shape[0]

    @property
    def N(self) -> int:
        return self.B.shape[1]

    @classmethod
    def draw(cls, M: int, N: int, *, rng: RngLike = None, index: int = 0) -> Teacher:
        """The spec's teacher: ``B`` and ``A`` iid ``N(0, 1)``, drawn in that order (``B``
        row by row) from stream ``make_streams(rng).numpy(index, TAG_B)`` (the teacher's
        stream of seed ``index`` in :mod:`alignlab.sim.teacher_student`)."""
        M, N = check_int("M", M), check_int("N", N)
        gen = make_streams(rng).numpy(index, TAG_B)
        B = gen.standard_normal((M, N))
        A = gen.standard_normal(M)
        return cls(B, A)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)  # (n, N)
        nu = torch.from_numpy(x @ self.B.T) / math.sqrt(self.N)  # (n, M)
        return (torch.erf(nu * _INV_SQRT2) @ torch.from_numpy(self.A)).numpy()  # (n,)


class InputStream:
    """Fresh inputs ``x_t ~ N(0, I_N)`` and output noise ``xi_t ~ N(0, 1)``, step by step.

    Stream ``index`` of the root seed ``rng`` (``None``: fresh entropy, kept in
    :attr:`entropy`); the draw order is the module docstring's. Each call continues where
    the last one stopped; a new ``InputStream`` with the same arguments starts again.

    >>> stream = InputStream(500, rng=0)
    >>> for x in stream.blocks(10_000, 1024):   # (n, 500) float64, n <= 1024
    ...     ...
    """

    def __init__(self, n_inputs: int, *, rng: RngLike = None, index: int = 0):
        self.n_inputs = check_int("n_inputs", n_inputs)
        self.index = check_int("index", index, minimum=0)
        streams = make_streams(rng)
        self.entropy = streams.entropy
        self._x = streams.child(INPUTS_KEY).numpy(self.index, TAG_AUX)
        self._xi = streams.child(NOISE_KEY).numpy(self.index, TAG_AUX)
        self.steps_drawn = 0  # inputs drawn so far
        self.noise_drawn = 0  # noises drawn so far

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` steps' inputs, ``(n, N)`` float64."""
        n = check_int("n", n, minimum=0)
        x = self._x.standard_normal((n, self.n_inputs))
        self.steps_drawn += n
        return x

    def take_noise(self, n: int) -> np.ndarray:
        """The next ``n`` steps' output noise ``xi``, ``(n,)`` float64 (unscaled)."""
        n = check_int("n", n, minimum=0)
        xi = self._xi.standard_normal(n)
        self.noise_drawn += n
        return xi

    def blocks(self, n_steps: int, block_size: int = 1024) -> Iterator[np.ndarray]:
        """The inputs of the next ``n_steps`` steps in blocks ``(n, N)`` of ``block_size``
        rows (the last one shorter); drawn lazily, one block in memory at a time."""
        n_steps = check_int("n_steps", n_steps, minimum=0)
        block_size = check_int("block_size", block_size)
        return self._blocks(self.take, n_steps, block_size)

    def noise_blocks(self, n_steps: int, block_size: int = 1024) -> Iterator[np.ndarray]:
        """The output noise of the next ``n_steps`` steps, in blocks ``(n,)``."""
        n_steps = check_int("n_steps", n_steps, minimum=0)
        block_size = check_int("block_size", block_size)
        return self._blocks(self.take_noise, n_steps, block_size)

    @staticmethod
    def _blocks(take, n_steps: int, block_size: int) -> Iterator[np.ndarray]:
        for start in range(0, n_steps, block_size):
            yield take(min(block_size, n_steps - start))


# ---------------------------------------------------------------------------------------
# the harness's data set


@dataclass(frozen=True)
class StreamDataset:
    """The training split of ``"teacher-stream"``: every pass draws ``size`` fresh examples.

    A pass (an epoch of the training loop) is the :class:`InputStream` of a root seed
    drawn from the ``generator`` that :func:`~alignlab.data.batches` is given (the loop's
    batch-order generator, checkpointed with the run), so passes differ, a resumed run
    draws what the uninterrupted one drew, and ``shuffle`` has nothing to shuffle. A pass
    without a generator (the loop's evaluation of the training loss before the first
    step) is the stream of ``fixed_seed``, the same every time: no global random state is
    read. Batches
    are ``(x (b, N), y (b, 1))`` in ``dtype`` on ``device``; ``augment`` is refused (the
    inputs are not images).
    """

    teacher: Teacher
    size: int  # examples per pass
    sigma: float  # output-noise SD
    fixed_seed: np.random.SeedSequence  # the stream of a pass without a generator
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    block_size: int = 1024  # rows drawn at a time

    def __len__(self) -> int:
        return self.size

    def cast(self, dtype: torch.dtype) -> StreamDataset:
        """The same stream, its batches in ``dtype``."""
        return StreamDataset(self.teacher, self.size, self.sigma, self.fixed_seed,
                             self.device, dtype, self.block_size)

    def iter_batches(self, batch_size: int, *, shuffle: bool = False,
                     generator: torch.Generator | None = None, drop_last: bool = False,
                     augment: Augment | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        if augment is not None:
            raise ValueError("`augment` must be None for 'teacher-stream' (its inputs are "
                             "not images), got a function.")
        if generator is None:
            stream = InputStream(self.teacher.N, rng=self.fixed_seed)
        else:
            root = torch.randint(0, 2**63 - 1, (), generator=generator, device=generator.device)
            stream = InputStream(self.teacher.N, rng=int(root))
        stop = self.size - self.size % batch_size if drop_last else self.size
        block = max(batch_size, self.block_size - self.block_size % batch_size)
        for start in range(0, stop, block):
            n = min(block, stop - start)
            x, y = labelled(self.teacher, stream, n, self.sigma)
            x = torch.from_numpy(x).to(self.device, self.dtype)  # (n, N)
            y = torch.from_numpy(y).to(self.device, self.dtype)[:, None]  # (n, 1)
            for b in range(0, n, batch_size):
                yield x[b:b + batch_size], y[b:b + batch_size]


def labelled(teacher: Teacher, stream: InputStream, n: int, sigma: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """The next ``n`` inputs of ``stream`` and their labels ``teacher(x) + sigma xi``
    (``xi`` drawn only when ``sigma > 0``), float64."""
    x = stream.take(n)  # (n, N)
    y = teacher(x)  # (n,)
    if sigma > 0:
        y = y + sigma * stream.take_noise(n)
    return x, y


class TeacherStreamSource(DataSource):
    """``"teacher-stream"``: fresh Gaussian inputs labelled by a random erf teacher.

    The teacher (``B`` (``n_hidden``, ``n_inputs``), ``A`` (``n_hidden``), iid ``N(0, 1)``:
    :meth:`Teacher.draw`) and the test and validation samples are functions of
    ``data.seed``; the training examples are drawn afresh every epoch
    (:class:`StreamDataset`). Targets are real numbers, one output: train with
    ``train.loss = "squared-error"`` and a model with one output. ``limit`` caps the
    examples per epoch; ``pad_to`` and ``augment`` are refused; ``normalize`` has nothing
    to do (the inputs are standard normal already).
    """

    name, title = "teacher-stream", "a teacher's labels on fresh Gaussian inputs"
    options: ClassVar[Mapping[str, Any]] = {
        "n_inputs": 500,  # N: input dimension
        "n_hidden": 2,  # M: the teacher's hidden units
        "sigma": 0.0,  # SD of the output noise added to the training labels
        "n_train": 10_000,  # fresh training examples per epoch
        "n_test": 2_000,  # test examples (fixed, noiseless)
    }

    def check_options(self, options: Mapping[str, Any],
                      names: ArgumentNames = PYTHON_NAMES) -> dict[str, Any]:
        opts = super().check_options(options, names)
        for key in ("n_inputs", "n_hidden", "n_train", "n_test"):
            opts[key] = check_int(names.key(key), opts[key])
        opts["sigma"] = float(check_positive(names.key("sigma"), opts["sigma"],
                                             allow_zero=True, scalar=True))
        return opts

    def load(self, *, root: str | os.PathLike | None, limit: int | None, val_size: int | None,
             pad_to: int | None, augment: bool | None, download: bool, seed: int,
             device: torch.device, options: Mapping[str, Any], normalize: bool = True,
             names: ArgumentNames = PYTHON_NAMES) -> DataSplits:
        if pad_to is not None:
            raise ValueError(f"`{names.key('pad_to')}` must be {names.value(None)} for "
                             f"{self.name!r} (its inputs are vectors), got {pad_to}.")
        if augment:
            raise ValueError(f"`{names.key('augment')}` must be {names.value(False)} for "
                             f"{self.name!r} (its inputs are not images), got "
                             f"{names.value(True)}.")
        n_train = options["n_train"]
        if limit is not None:
            if limit > n_train:
                raise ValueError(f"`{names.key('limit')}` must be <= {n_train} (the examples "
                                 f"per epoch of {self.name!r}), got {limit}.")
            n_train = limit
        N = options["n_inputs"]
        teacher = Teacher.draw(options["n_hidden"], N, rng=seed)

        def key(index: int) -> np.random.SeedSequence:  # 0: test, 1: validation, 2: fixed
            return np.random.SeedSequence(seed, spawn_key=(index,))

        def fixed(index: int, n: int) -> TensorDataset:  # held out: noiseless, float64
            x, y = labelled(teacher, InputStream(N, rng=key(index)), n, 0.0)
            return TensorDataset(torch.from_numpy(x).to(device),
                                 torch.from_numpy(y).to(device)[:, None])

        return DataSplits(
            name=self.name,
            train=StreamDataset(teacher, n_train, options["sigma"], key(2), device),
            val=fixed(1, val_size) if val_size else None,
            test=fixed(0, options["n_test"]),
            num_classes=1,
            input_shape=(N,),
            targets="values",
            source="teacher-stream",
        )
