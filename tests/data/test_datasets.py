"""The shared pipeline (validation split, limit, padding, normalisation, options) on small
files, CIFAR-10 from batches and archive, the synthetic set, ImageNet's optional path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alignlab.data import (
    DATASETS,
    DatasetNotFoundError,
    DataSplits,
    MissingDependencyError,
    RandomCropFlip,
    TensorDataset,
    batches,
    load_dataset,
)
from alignlab.data.cifar import CIFAR10_MEAN, CIFAR10_STD


def _ids(ds: TensorDataset, mean: float, std: float) -> list[int]:
    """The example ids the small files write into pixel [0, 0] of channel 0."""
    return torch.round((ds.x[:, 0, 0, 0] * std + mean) * 255).long().tolist()


def test_registry_names():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "cifar10", "synthetic", "imagenet",
                             "teacher-stream"}


# --- MNIST-format pipeline --------------------------------------------------------------

def test_mnist_tensors_and_defaults(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")
    splits = load_dataset("mnist", root=tmp_path, download=False)
    assert isinstance(splits, DataSplits)
    assert splits.num_classes == 10 and splits.input_shape == (1, 28, 28)
    assert splits.val is None and splits.augment_fn is None  # the paper: no augmentation
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64
    assert splits.train.x.shape == (12, 1, 28, 28)
    expected = (small_mnist.x_train / 255 - 0.1307) / 0.3081
    np.testing.assert_allclose(splits.train.x[:, 0].numpy(), expected, rtol=0, atol=1e-5)
    assert _ids(splits.train, 0.1307, 0.3081) == list(range(12))


def test_normalize_false_gives_pixels_over_255(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")
    splits = load_dataset("mnist", root=tmp_path, download=False, normalize=False, pad_to=30)
    np.testing.assert_allclose(splits.train.x[:, 0, 1:29, 1:29].numpy(),
                               small_mnist.x_train / 255, rtol=0, atol=1e-7)
    assert float(splits.train.x[:, 0, 0].abs().max()) == 0  # padding: black is 0 here
    assert splits.mean == () and splits.std == ()


def test_limit_takes_the_first_examples(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")
    splits = load_dataset("mnist", root=tmp_path, download=False, limit=5)
    assert _ids(splits.train, 0.1307, 0.3081) == [0, 1, 2, 3, 4]
    assert len(splits.test) == 5  # test set untouched
    with pytest.raises(ValueError, match=r"`limit` must be <= 12"):
        load_dataset("mnist", root=tmp_path, download=False, limit=13)


def test_pad_to_32_pads_black_before_normalising(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")
    plain = load_dataset("mnist", root=tmp_path, download=False)
    padded = load_dataset("mnist", root=tmp_path, download=False, pad_to=32)
    assert padded.input_shape == (1, 32, 32) and padded.train.x.shape == (12, 1, 32, 32)
    assert torch.equal(padded.train.x[:, :, 2:30, 2:30], plain.train.x)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    black = -0.1307 / 0.3081
    np.testing.assert_allclose(padded.train.x[:, 0, border].numpy(), black, rtol=1e-6)
    with pytest.raises(ValueError, match="`pad_to` must be >= the image size 28"):
        load_dataset("mnist", root=tmp_path, download=False, pad_to=20)


def test_validation_split_sizes_disjoint_fixed(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")

    def load(**kw):
        return load_dataset("mnist", root=tmp_path, download=False, **kw)

    a = load(val_size=4, seed=0)
    ids_train, ids_val = _ids(a.train, 0.1307, 0.3081), _ids(a.val, 0.1307, 0.3081)
    assert len(ids_train) == 8 and len(ids_val) == 4
    assert sorted(ids_train + ids_val) == list(range(12))  # a partition
    assert ids_train == sorted(ids_train) and ids_val == sorted(ids_val)  # file order kept
    b = load(val_size=4, seed=0)
    assert _ids(b.val, 0.1307, 0.3081) == ids_val  # fixed by the seed
    others = {tuple(_ids(load(val_size=4, seed=s).val, 0.1307, 0.3081)) for s in range(1, 6)}
    assert others - {tuple(ids_val)}  # and changes with it
    # limit applies after the split: the validation set does not depend on it
    c = load(val_size=4, seed=0, limit=3)
    assert _ids(c.val, 0.1307, 0.3081) == ids_val and _ids(c.train, 0.1307, 0.3081) == ids_train[:3]
    with pytest.raises(ValueError, match="`val_size` must be < 12"):
        load(val_size=12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_batches_and_augmentation(tmp_path, small_cifar):
    small_cifar.write_batches(tmp_path / "cifar10")
    cpu = load_dataset("cifar10", root=tmp_path, download=False, val_size=4)
    gpu = load_dataset("cifar10", root=tmp_path, download=False, val_size=4, device="cuda")
    assert gpu.train.x.is_cuda and gpu.val.y.is_cuda and gpu.test.x.is_cuda
    # CUDA divides by the scalar 255 through its reciprocal: x / 255 may differ by an ulp
    # (at most float32's eps for pixels <= 1), which the normalisation divides by the std
    ulp = np.finfo(np.float32).eps / min(CIFAR10_STD)
    np.testing.assert_allclose(gpu.train.x.cpu().numpy(), cpu.train.x.numpy(), rtol=0,
                               atol=2 * ulp)
    for make in (lambda: torch.Generator().manual_seed(0),
                 lambda: torch.Generator(device="cuda").manual_seed(0)):
        runs = [[(xb.cpu(), yb.cpu()) for xb, yb in batches(
            gpu.train, 8, shuffle=True, generator=make(), augment=gpu.augment_fn)]
            for _ in range(2)]
        assert all(xb.shape[1:] == (3, 32, 32) for xb, _ in runs[0])
        for (xa, ya), (xb, yb) in zip(*runs, strict=True):  # deterministic on the GPU too
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # a CPU generator gives the same batches whether the data are on the CPU or the GPU
    on_cpu = [yb for _, yb in batches(cpu.train, 8, shuffle=True,
                                      generator=torch.Generator().manual_seed(0))]
    on_gpu = [yb.cpu() for _, yb in batches(gpu.train, 8, shuffle=True,
                                            generator=torch.Generator().manual_seed(0))]
    assert all(torch.equal(a, b) for a, b in zip(on_cpu, on_gpu, strict=True))


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 0}, "`limit` must be an integer >= 1"),
    ({"val_size": -1}, "`val_size` must be an integer >= 0"),
    ({"pad_to": 2.5}, "`pad_to` must be an integer >= 1"),
    ({"augment": "yes"}, "`augment` must be None, True or False"),
    ({"download": 1}, "`download` must be True or False"),
    ({"download": None}, "`download` must be True or False"),
    ({"normalize": "no"}, "`normalize` must be True or False"),
    ({"seed": -3}, "`seed` must be an integer >= 0"),
    ({"device": "gpu7"}, "`device` must be a torch device"),
    ({"verify": "no"}, "`verify` must be True or False"),
    ({"mirrors": []}, "`mirrors` must be a non-empty list"),
    ({"n_train": 10}, "`mnist option` must be one of 'mirrors', 'verify'; got 'n_train'."),
])
def test_bad_arguments_fail_before_any_work(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_dataset("mnist", root="/nonexistent", **{"download": False, **kwargs})


@pytest.mark.parametrize("kwargs, message", [
    ({"limit": 13}, "`data.limit` must be <= 12 (the training examples of 'mnist' after the "
                    "validation split), got 13."),
    ({"val_size": 12}, "`data.val_size` must be < 12 (the training examples of 'mnist'), "
                       "got 12."),
    ({"pad_to": 20}, "`data.pad_to` must be >= the image size 28 of 'mnist', got 20."),
    ({"limit": 0}, "`data.limit` must be an integer >= 1, got 0."),
    ({"download": 1}, "`data.download` must be true or false, got 1."),
    ({"augment": "yes"}, "`data.augment` must be unset, true or false, got 'yes'."),
    ({"verify": "no"}, "`data.verify` must be true or false, got 'no'."),
])
def test_a_config_section_names_the_config_keys(tmp_path, small_mnist, kwargs, message):
    """The harness passes config_section="data": messages name `data.limit` (the key the
    user wrote), not the Python argument (issue 14 item 11)."""
    small_mnist.write(tmp_path / "mnist")
    with pytest.raises(ValueError) as info:
        load_dataset("mnist", root=tmp_path, config_section="data",
                     **{"download": False, **kwargs})
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs, message", [
    ({"input_shape": 20, "pad_to": 32}, "`data.pad_to` must be unset for 'synthetic' (its "
                                        "inputs have shape (20,), not (C, H, W)), got 32."),
    ({"input_shape": 20, "augment": True}, "`data.augment` must be false for 'synthetic' "
                                           "(random crops need images, its inputs have shape "
                                           "(20,)), got true."),
    ({"n_train": 0}, "`data.n_train` must be an integer >= 1, got 0."),
    ({"input_shape": [1, -2]}, "`data.input_shape` must be a positive int or a tuple of "
                               "them, got [1, -2]."),
])
def test_a_config_section_names_the_synthetic_keys(kwargs, message):
    with pytest.raises(ValueError) as info:
        load_dataset("synthetic", n_test=4, config_section="data", **{"n_train": 8, **kwargs})
    assert str(info.value) == message


def test_unknown_name():
    with pytest.raises(ValueError, match=r"`dataset` must be one of .*'mnist'.*; got 'mnits'\."):
        load_dataset("mnits")


# --- CIFAR-10 ---------------------------------------------------------------------------

def test_cifar_from_batches(tmp_path, small_cifar):
    small_cifar.write_batches(tmp_path / "cifar10")
    splits = load_dataset("cifar10", root=tmp_path, download=False, val_size=0)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert len(splits.train) == 20 and len(splits.test) == 4 and splits.val is None
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    raw = torch.from_numpy(small_cifar.images[:5].reshape(20, 3, 32, 32)).float() / 255
    np.testing.assert_allclose(splits.train.x.numpy(), ((raw - mean) / std).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(splits.train.y.numpy(), small_cifar.labels[:5].reshape(-1))
    np.testing.assert_array_equal(splits.test.y.numpy(), small_cifar.labels[5])
    # the paper's default: crop + flip, padding filled with the normalised black pixel
    assert isinstance(splits.augment_fn, RandomCropFlip)
    np.testing.assert_allclose(splits.augment_fn.fill, -mean.flatten() / std.flatten())


def test_cifar_from_archive_only(tmp_path, small_cifar):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(small_cifar.archive)
    splits = load_dataset("cifar10", root=tmp_path, download=False, val_size=5)
    assert len(splits.train) == 15 and len(splits.val) == 5
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar_corrupt_local_archive_not_trusted(tmp_path, small_cifar):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(small_cifar.archive[:-5])
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz failed verification"):
        load_dataset("cifar10", root=tmp_path, download=False, val_size=0)
    assert not (tmp_path / "cifar10" / "cifar-10-batches-py").exists()


def test_cifar_default_split_is_45k_5k_and_needs_the_data(tmp_path, small_cifar):
    small_cifar.write_batches(tmp_path / "cifar10")
    assert DATASETS["cifar10"].default_val_size == 5000
    with pytest.raises(ValueError, match="`val_size` must be < 20"):  # 20 images only here
        load_dataset("cifar10", root=tmp_path, download=False)


# --- synthetic --------------------------------------------------------------------------

def test_synthetic_is_deterministic_and_seeded():
    a = load_dataset("synthetic", n_train=500, n_test=100, seed=3)
    b = load_dataset("synthetic", n_train=500, n_test=100, seed=3)
    for x, y in ((a.train.x, b.train.x), (a.train.y, b.train.y), (a.test.x, b.test.x),
                 (a.test.y, b.test.y)):
        assert torch.equal(x, y)
    c = load_dataset("synthetic", n_train=500, n_test=100, seed=4)
    assert not torch.equal(a.train.x, c.train.x)
    assert not torch.equal(a.train.y, c.train.y)
    d = load_dataset("synthetic", n_train=200, n_test=100, seed=3)
    assert torch.equal(a.test.x, d.test.x)  # the test set does not depend on n_train


def test_synthetic_defaults_and_labels():
    s = load_dataset("synthetic", n_train=2000, n_test=10)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10  # 784 inputs
    assert s.train.x.dtype == torch.float32 and s.augment_fn is None and s.val is None
    counts = torch.bincount(s.train.y, minlength=10)
    assert counts.min() > 2000 / 10 / 2  # every class well represented
    assert abs(float(s.train.x.std()) - 1) < 0.05


def test_synthetic_labels_are_a_function_of_the_input():
    """Options reach the generator, and the labels carry the teacher's signal: a linear
    probe on the inputs beats chance by far (labels drawn independently of x would not)."""
    s = load_dataset("synthetic", n_train=300, n_test=300, input_shape=20, num_classes=3,
                     teacher_hidden=7)
    assert s.input_shape == (20,)
    x = torch.cat([s.train.x, s.test.x]).double()
    y = torch.cat([s.train.y, s.test.y])
    feats = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    w = torch.linalg.lstsq(feats, onehot).solution
    accuracy = float(((feats @ w).argmax(1) == y).double().mean())
    assert accuracy > 0.7  # 0.88 here; with shuffled labels 0.45 (chance 1/3)


def test_synthetic_options_checked():
    with pytest.raises(ValueError, match="`n_train` must be an integer >= 1"):
        load_dataset("synthetic", n_train=0)
    with pytest.raises(ValueError, match="`input_shape` must be a positive int or a tuple"):
        load_dataset("synthetic", input_shape=(1, -28))
    with pytest.raises(ValueError, match="`synthetic option` must be one of"):
        load_dataset("synthetic", verify=True)
    with pytest.raises(ValueError, match="`pad_to` must be None for 'synthetic'"):
        load_dataset("synthetic", input_shape=784, pad_to=32, n_train=10, n_test=10)
    with pytest.raises(ValueError, match="`augment` must be False for 'synthetic'"):
        load_dataset("synthetic", input_shape=784, augment=True, n_train=10, n_test=10)


def test_synthetic_images_can_be_padded_and_augmented():
    s = load_dataset("synthetic", n_train=8, n_test=4, pad_to=32, augment=True)
    assert s.input_shape == (1, 32, 32) and s.train.x.shape == (8, 1, 32, 32)
    assert s.augment_fn(s.train.x, torch.Generator().manual_seed(0)).shape == (8, 1, 32, 32)


# --- ImageNet (optional torchvision) ----------------------------------------------------

def test_imagenet_without_torchvision_says_how_to_install():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match=r"pip install alignlab\[imagenet\]"):
            load_dataset("imagenet")
    else:
        pytest.skip("torchvision is installed; the folder test below covers ImageNet")


def test_imagenet_tiny_folder(tmp_path):
    pytest.importorskip("torchvision", reason="torchvision not installed (optional extra)")
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("n01", "n02"):
            folder = tmp_path / "imagenet" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.JPEG")
    splits = load_dataset("imagenet", root=tmp_path, image_size=32, resize=36, num_workers=0,
                          val_size=2, seed=0)
    assert splits.num_classes == 2 and splits.input_shape == (3, 32, 32)
    assert len(splits.train) == 4 and len(splits.val) == 2 and len(splits.test) == 4
    g = torch.Generator().manual_seed(0)
    xb, yb = next(batches(splits.train, 3, shuffle=True, generator=g))
    assert xb.shape == (3, 3, 32, 32) and yb.dtype == torch.int64
    limited = load_dataset("imagenet", root=tmp_path, image_size=32, num_workers=0, limit=2)
    assert len(limited.train) == 2
