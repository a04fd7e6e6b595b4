"""Batches and batch augmentation: deterministic given the generator, no example lost or
repeated, and crops that are real shifts of the padded image."""

from __future__ import annotations

import itertools

import pytest
import torch

from alignlab.data import RandomCropFlip, TensorDataset, batches


def _dataset(n: int = 10, shape=(3,)) -> TensorDataset:
    x = torch.arange(n, dtype=torch.float32).view(n, *([1] * len(shape))).expand(n, *shape)
    return TensorDataset(x.contiguous(), torch.arange(n))


def test_sequential_batches_cover_in_order():
    out = list(batches(_dataset(10), 4))
    assert [len(yb) for _, yb in out] == [4, 4, 2]
    assert torch.equal(torch.cat([yb for _, yb in out]), torch.arange(10))
    assert torch.equal(out[1][0][:, 0], torch.tensor([4.0, 5, 6, 7]))  # x travels with y
    assert [len(yb) for _, yb in batches(_dataset(10), 4, drop_last=True)] == [4, 4]


def test_shuffled_batches_are_a_permutation_fixed_by_the_generator():
    ds = _dataset(50)

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        out = list(batches(ds, 8, shuffle=True, generator=g))
        for xb, yb in out:
            assert torch.equal(xb[:, 0], yb.float())  # pairs stay together
        return torch.cat([yb for _, yb in out])

    a = order(0)
    assert torch.equal(a.sort().values, torch.arange(50))  # each example exactly once
    assert torch.equal(a, order(0))
    assert not torch.equal(a, order(1))
    assert not torch.equal(a, torch.arange(50))
    # same as torch.randperm with that generator: documented, so the harness can rely on it
    assert torch.equal(a, torch.randperm(50, generator=torch.Generator().manual_seed(0)))


def test_epochs_differ_as_the_generator_advances():
    g = torch.Generator().manual_seed(0)
    first = torch.cat([yb for _, yb in batches(_dataset(30), 30, shuffle=True, generator=g)])
    second = torch.cat([yb for _, yb in batches(_dataset(30), 30, shuffle=True, generator=g)])
    assert not torch.equal(first, second)


def test_augment_applied_to_each_batch_with_the_generator():
    seen = []

    def augment(xb, generator):
        seen.append(generator)
        return xb + 100

    g = torch.Generator().manual_seed(0)
    out = list(batches(_dataset(10), 4, generator=g, augment=augment))
    assert len(seen) == 3 and all(s is g for s in seen)
    assert torch.equal(out[0][0][:, 0], torch.tensor([100.0, 101, 102, 103]))


def test_batches_checks_arguments_eagerly():
    with pytest.raises(ValueError, match="`batch_size` must be an integer >= 1"):
        batches(_dataset(), 0)
    with pytest.raises(ValueError, match="`dataset` must be a TensorDataset"):
        batches(torch.zeros(3), 2)
    with pytest.raises(ValueError, match="`augment` must be None or callable"):
        batches(_dataset(), 2, augment="flip")


def test_tensor_dataset_validates():
    # targets are int64 class labels (N,) or real values (N, ...): float y is valid since
    # real-valued targets (data set 'teacher-stream', train.loss 'squared-error')
    with pytest.raises(ValueError, match=r"`y` must be an int64 tensor of shape \(N,\) or a "
                                         r"floating-point tensor of shape \(N, ...\)"):
        TensorDataset(torch.zeros(3, 2), torch.zeros(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="`y` must be an int64 tensor"):
        TensorDataset(torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.int64))
    values = TensorDataset(torch.zeros(3, 2), torch.ones(3, 1))
    assert values.cast(torch.float64).y.dtype == torch.float64
    labels = TensorDataset(torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64))
    assert labels.cast(torch.float64).y.dtype == torch.int64
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="`x` must be a floating-point tensor"):
        TensorDataset(torch.zeros(3, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


# --- RandomCropFlip ---------------------------------------------------------------------

def _images(b=16, c=3, h=8, w=8, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _placement(out, padded, h, w):
    """(di, dj, flipped) such that out is that crop of padded, or None."""
    for di, dj, flipped in itertools.product(range(padded.shape[-2] - h + 1),
                                             range(padded.shape[-1] - w + 1), (False, True)):
        crop = padded[:, di:di + h, dj:dj + w]
        if torch.equal(out, crop.flip(-1) if flipped else crop):
            return di, dj, flipped
    return None


def test_crops_are_shifts_of_the_padded_image():
    x = _images()
    fill = (-1.0, -2.0, -3.0)
    aug = RandomCropFlip(padding=4, flip=True, fill=fill)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.tensor(fill).view(1, 3, 1, 1).repeat(16, 1, 16, 16)
    padded[:, :, 4:12, 4:12] = x
    places = [_placement(out[i], padded[i], 8, 8) for i in range(16)]
    assert all(p is not None for p in places), places
    assert len({p[:2] for p in places}) > 4  # offsets really vary ...
    assert {p[2] for p in places} == {False, True}  # ... and both flips occur
    assert not torch.equal(out, x)


def test_crop_is_deterministic_given_the_generator():
    x = _images()
    aug = RandomCropFlip()
    a = aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(5)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(6)))


def test_no_padding_no_flip_is_identity_and_flip_only_mirrors():
    x = _images(b=32)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(RandomCropFlip(padding=0, flip=False)(x, g), x)
    out = RandomCropFlip(padding=0, flip=True)(x, g)
    mirrored = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((mirrored | kept).all()) and 5 < int(mirrored.sum()) < 27


def test_crop_offsets_are_uniform_over_the_range():
    """With padding 4 the offsets (di, dj) are uniform on {0..8}^2: recovered from an image
    whose pixels are all distinct (every 8x8 crop of the 16x16 padded image overlaps it)."""
    b, h = 4000, 8
    x = (torch.arange(h * h, dtype=torch.float32) + 1).view(1, 1, h, h).repeat(b, 1, 1, 1)
    out = RandomCropFlip(padding=4, flip=False)(x, torch.Generator().manual_seed(0))[:, 0]
    first = (out > 0).flatten(1).float().argmax(1)  # first image pixel inside each crop
    r, c = first // h, first % h
    value = out.flatten(1)[torch.arange(b), first].long() - 1
    di, dj = value // h - r + 4, value % h - c + 4  # padded row = crop row + di
    counts = torch.bincount(di * 9 + dj, minlength=81)
    assert counts.numel() == 81 and int(counts.min()) > 0
    # uniform: each of 81 cells expects 49.4; a chi-square with 80 dof stays below 130
    chi2 = float(((counts - b / 81) ** 2 / (b / 81)).sum())
    assert chi2 < 130, chi2
