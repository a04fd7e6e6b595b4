"""The teacher stream: reproducible draws in a documented order, the right law, and the
data set 'teacher-stream' built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from alignlab._rng import TAG_AUX, TAG_B, make_streams
from alignlab.data import InputStream, Teacher, batches, load_dataset


def test_blocks_do_not_depend_on_how_they_are_cut():
    one = InputStream(7, rng=11, index=2).take(50)
    stream = InputStream(7, rng=11, index=2)
    cut = np.vstack([stream.take(1), stream.take(0), stream.take(20), stream.take(29)])
    np.testing.assert_array_equal(cut, one)
    blocks = np.vstack(list(InputStream(7, rng=11, index=2).blocks(50, block_size=8)))
    np.testing.assert_array_equal(blocks, one)
    assert stream.steps_drawn == 50


def test_the_documented_draw_order():
    """Inputs: child(0)'s stream (index, TAG_AUX), N per step in step order; noise:
    child(1)'s; teacher: stream (index, TAG_B), B then A (alignlab.sim.teacher_student's)."""
    streams = make_streams(4)
    x = streams.child(0).numpy(3, TAG_AUX).standard_normal((10, 5))
    xi = streams.child(1).numpy(3, TAG_AUX).standard_normal(10)
    stream = InputStream(5, rng=4, index=3)
    np.testing.assert_array_equal(stream.take_noise(10), xi)  # separate streams: any order
    np.testing.assert_array_equal(stream.take(10), x)
    gen = streams.numpy(3, TAG_B)
    B, A = gen.standard_normal((2, 5)), gen.standard_normal(2)
    teacher = Teacher.draw(2, 5, rng=4, index=3)
    np.testing.assert_array_equal(teacher.B, B)
    np.testing.assert_array_equal(teacher.A, A)


def test_seeds_and_indices_differ():
    a = InputStream(4, rng=0).take(5)
    assert not np.array_equal(a, InputStream(4, rng=1).take(5))
    assert not np.array_equal(a, InputStream(4, rng=0, index=1).take(5))
    np.testing.assert_array_equal(a, InputStream(4, rng=0).take(5))
    fresh = InputStream(4)
    np.testing.assert_array_equal(fresh.take(3), InputStream(4, rng=fresh.entropy).take(3))


def test_inputs_and_labels_have_the_spec_law():
    """x ~ N(0, I): mean 0, variance 1 per entry; y = A g(nu): mean 0 and variance
    sum_mn A_m A_n (2/pi) asin(T_mn / sqrt((1+T_mm)(1+T_nn))), T = B B^T / N.
    Tolerance: z = 4.5 standard errors (Bonferroni over the 4 checks at ~1e-5 each)."""
    N, n, z = 40, 20_000, 4.5
    x = InputStream(N, rng=1).take(n)
    flat = x.reshape(-1)
    assert abs(flat.mean()) < z / math.sqrt(flat.size)
    assert abs(flat.var() - 1) < z * math.sqrt(2 / flat.size)
    teacher = Teacher.draw(3, N, rng=2)
    y = teacher(x)
    T = teacher.B @ teacher.B.T / N
    d = np.sqrt(1 + np.diag(T))
    var = teacher.A @ ((2 / np.pi) * np.arcsin(T / np.outer(d, d))) @ teacher.A
    assert abs(y.mean()) < z * math.sqrt(var / n)
    se_var = math.sqrt((np.mean((y - y.mean()) ** 4) - y.var() ** 2) / n)
    assert abs(y.var() - var) < z * se_var


def test_teacher_is_the_formula():
    B = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]])
    A = np.array([0.7, -1.3])
    x = np.array([[0.3, 0.1, -2.0], [1.0, 1.0, 1.0]])
    from scipy.special import erf
    ref = erf(x @ B.T / math.sqrt(3) / math.sqrt(2)) @ A
    np.testing.assert_allclose(Teacher(B, A)(x), ref, rtol=1e-15)
    with pytest.raises(ValueError, match=r"^`B` must be a matrix \(M, N\) with M = len\(A\)"):
        Teacher(B, A[:1])


def _pass(splits, seed, batch_size=16):
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    xs, ys = zip(*batches(splits.train, batch_size, generator=gen), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_data_set_draws_a_fresh_pass_per_generator_draw():
    splits = load_dataset("teacher-stream", n_inputs=6, n_hidden=2, n_train=40, n_test=10,
                          seed=3)
    assert splits.targets == "values" and splits.num_classes == 1
    assert splits.test.x.shape == (10, 6) and splits.test.y.shape == (10, 1)
    x1, y1 = _pass(splits, 0)
    assert x1.shape == (40, 6) and y1.shape == (40, 1)
    x2, y2 = _pass(splits, 0)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)  # same generator state, same pass
    gen = torch.Generator().manual_seed(0)
    first = torch.cat([xb for xb, _ in batches(splits.train, 16, generator=gen)])
    second = torch.cat([xb for xb, _ in batches(splits.train, 16, generator=gen)])
    torch.testing.assert_close(first, x1, rtol=0, atol=0)
    assert not torch.equal(first, second)  # the next epoch is fresh
    # labels are the teacher's (noiseless here)
    teacher = Teacher.draw(2, 6, rng=3)
    np.testing.assert_allclose(y1[:, 0].numpy(), teacher(x1.double().numpy()), rtol=1e-6,
                               atol=1e-6)
    # without a generator: one fixed pass, no global random state read
    state = torch.get_rng_state()
    xa, _ = _pass(splits, None)
    xb, _ = _pass(splits, None)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    assert torch.equal(state, torch.get_rng_state())


def test_data_set_noise_limit_dtype():
    base = dict(n_inputs=5, n_hidden=1, n_train=30, n_test=8, seed=0)
    clean, noisy = (load_dataset("teacher-stream", **base, sigma=s) for s in (0.0, 0.5))
    (xc, yc), (xn, yn) = _pass(clean, 1), _pass(noisy, 1)
    torch.testing.assert_close(xc, xn, rtol=0, atol=0)  # the noise has its own stream
    assert not torch.equal(yc, yn)
    torch.testing.assert_close(clean.test.y, noisy.test.y, rtol=0, atol=0)  # test: noiseless
    limited = load_dataset("teacher-stream", **base, limit=12)
    assert len(limited.train) == 12 and len(_pass(limited, 1)[0]) == 12
    assert _pass(limited, 1, batch_size=5)[0].shape == (12, 5)
    double = clean.train.cast(torch.float64)
    assert _pass(type(clean)(**{**clean.__dict__, "train": double}), 1)[0].dtype == torch.float64
    val = load_dataset("teacher-stream", **base, val_size=4)
    assert val.val.x.shape == (4, 5) and not torch.equal(val.val.x, val.test.x[:4])


@pytest.mark.parametrize("kwargs,message", [
    ({"sigma": -1.0}, "`sigma` must be >= 0, got -1.0."),
    ({"n_inputs": 0}, "`n_inputs` must be an integer >= 1, got 0."),
    ({"limit": 99}, "`limit` must be <= 20 (the examples per epoch of 'teacher-stream'), "
                    "got 99."),
    ({"pad_to": 8}, "`pad_to` must be None for 'teacher-stream' (its inputs are vectors), "
                    "got 8."),
    ({"augment": True}, "`augment` must be False for 'teacher-stream' (its inputs are not "
                        "images), got True."),
])
def test_bad_values_are_one_line(kwargs, message):
    with pytest.raises(ValueError) as info:
        load_dataset("teacher-stream", **{"n_train": 20, "n_test": 4, "n_inputs": 3, **kwargs})
    assert str(info.value) == message
