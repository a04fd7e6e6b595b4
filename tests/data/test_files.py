"""Finding, verifying and downloading files: nothing unverified is ever trusted."""

from __future__ import annotations

import gzip
import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from datafiles import IDX_NAMES, SmallMnist

from alignlab.data import DATASETS, ChecksumError, DatasetNotFoundError, load_dataset
from alignlab.data._files import Digest, RemoteFile, read_verified

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _files_in(folder: Path) -> list[str]:
    """Every file (hidden temporaries included) under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _serve(folder: Path, data: SmallMnist) -> str:
    """Write ``data``'s .gz files into ``folder`` and return it as a file:// mirror."""
    data.write(folder)
    return folder.as_uri()


# --- local files ------------------------------------------------------------------------

def test_local_files_load_and_match(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "mnist")
    splits = load_dataset("mnist", root=tmp_path, download=False)
    assert splits.source == str(tmp_path / "mnist")
    raw = splits.train.x * 0.3081 + 0.1307  # undo the normalisation
    np.testing.assert_allclose(raw[:, 0].numpy() * 255, small_mnist.x_train, atol=1e-3)
    np.testing.assert_array_equal(splits.test.y.numpy(), small_mnist.y_test)


def test_files_directly_in_root_and_uncompressed_twins(tmp_path, small_mnist):
    for name, content in small_mnist.content.items():  # gunzipped copies, in root itself
        (tmp_path / name.removesuffix(".gz")).write_bytes(content)
    splits = load_dataset("mnist", root=tmp_path, download=False)
    assert splits.source == str(tmp_path) and len(splits.train) == len(small_mnist.y_train)


def test_regzipped_file_is_trusted_by_its_content(tmp_path, small_mnist):
    """Debian's case: a different .gz (other level and mtime), the same decompressed bytes."""
    folder = small_mnist.write(tmp_path / "mnist")
    name = IDX_NAMES[0]
    regz = gzip.compress(small_mnist.content[name], compresslevel=1, mtime=12345)
    assert regz != small_mnist.gz[name]
    (folder / name).write_bytes(regz)
    assert len(load_dataset("mnist", root=tmp_path, download=False).train) == 12


def test_corrupt_local_file_is_rejected_by_name(tmp_path, small_mnist):
    folder = small_mnist.write(tmp_path / "mnist")
    content = bytearray(small_mnist.content[IDX_NAMES[2]])
    content[-1] ^= 1  # one flipped bit in the last test image
    (folder / IDX_NAMES[2]).write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.gz failed verif"):
        load_dataset("mnist", root=tmp_path, download=False)
    # the same file, explicitly unverified, is read (and differs in exactly that byte)
    splits = load_dataset("mnist", root=tmp_path, download=False, verify=False)
    assert len(splits.test) == 5


def test_truncated_gzip_is_rejected(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"0123456789" * 100)[:-9])
    spec = RemoteFile("x.gz", Digest("md5", "0" * 32), Digest("sha256", "0" * 64))
    with pytest.raises(ChecksumError, match="not a complete gzip file"):
        read_verified(path, spec, verify=False)  # even unverified


def test_missing_files_without_network_one_line_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=tmp_path / "data")
    message = str(info.value)
    assert "\n" not in message
    for name in IDX_NAMES:
        assert name in message
    assert f"in {tmp_path / 'data' / 'mnist'}" in message
    assert "download failed" in message and "no network" in message
    assert isinstance(info.value, ValueError)  # the CLI's one-line error path


def test_missing_files_default_folder_and_hint(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", download=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"in {tmp_path / 'env-data' / 'cifar10'}" in message  # $ALIGNLAB_DATA/<name>
    assert "cifar-10-python.tar.gz" in message and "ALIGNLAB_DATA" in message
    # what to do, in the caller's words (Python here; the CLI: test_cli_messages.py)
    assert "(or pass root=DIR, or set $ALIGNLAB_DATA=DIR, to use DIR/cifar10)" in message
    assert message.endswith("; downloading is off (pass download=True to fetch them).")


def test_missing_files_in_the_words_of_a_config(tmp_path):
    """Issue 14 item 12: the harness's user sets `data.root` and `data.download`, not
    Python keywords."""
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", download=False, config_section="data")
    message = str(info.value)
    assert "(or use --set data.root=DIR, or set $ALIGNLAB_DATA=DIR, to use DIR/cifar10)" \
        in message
    assert message.endswith("; downloading is off (use --set data.download=true to fetch "
                            "them).")
    assert "root=DIR" not in message.replace("data.root=DIR", "")
    assert "download=" not in message.replace("data.download=", "")


def test_missing_fashion_mnist_names_the_debian_package(tmp_path, monkeypatch):
    """Issue 14 item 12: the README's Debian package, where it puts the files, and only
    when that folder is searched (no `root` chosen)."""
    debian = tmp_path / "usr-share" / "fashion-mnist"  # absent: the package not installed
    monkeypatch.setattr(DATASETS["fashion-mnist"], "system_folders", (str(debian),))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", download=False)
    message = str(info.value)
    assert "\n" not in message
    assert (f"or install Debian's package: apt-get install dataset-fashion-mnist (it puts "
            f"them in {debian})") in message
    assert f"Searched {tmp_path / 'env-data' / 'fashion-mnist'}, {debian};" in message
    with pytest.raises(DatasetNotFoundError) as info:  # a chosen root: the package won't help
        load_dataset("fashion-mnist", root=tmp_path / "mine", download=False)
    assert "apt-get" not in str(info.value)
    with pytest.raises(DatasetNotFoundError) as info:  # and MNIST has no package
        load_dataset("mnist", download=False)
    assert "apt-get" not in str(info.value)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10"])
def test_failed_download_creates_no_folder(tmp_path, monkeypatch, name):
    """Issue 14 item 12: with no network, nothing is written, not even
    ~/.cache/alignlab/data/<name> (exit 2 is documented as "nothing written")."""
    monkeypatch.delenv("ALIGNLAB_DATA")
    monkeypatch.setattr(DATASETS["fashion-mnist"], "system_folders", (str(tmp_path / "no"),))
    home = tmp_path / "home"
    home.mkdir()
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        load_dataset(name)
    assert _files_in(home) == [] and list(home.iterdir()) == []
    with pytest.raises(DatasetNotFoundError, match="download failed"):  # a chosen root too
        load_dataset(name, root=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_default_folder_without_env_is_the_cache(tmp_path, monkeypatch, small_mnist):
    monkeypatch.delenv("ALIGNLAB_DATA")
    small_mnist.write(tmp_path / "home" / ".cache" / "alignlab" / "data" / "mnist")
    assert load_dataset("mnist", download=False).source.endswith(".cache/alignlab/data/mnist")


def test_env_var_folder(tmp_path, small_mnist):
    small_mnist.write(tmp_path / "env-data" / "mnist")
    assert load_dataset("mnist", download=False).source == str(tmp_path / "env-data" / "mnist")


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed "
                           "(/usr/share/datasets/fashion-mnist absent)")
def test_debian_fashion_mnist_found_and_verified_by_default():
    splits = load_dataset("fashion-mnist", download=False, limit=2000)
    assert splits.source == str(DEBIAN_FMNIST)
    assert splits.input_shape == (1, 28, 28) and splits.val is None
    assert len(splits.train) == 2000 and splits.train.x.shape == (2000, 1, 28, 28)
    assert splits.test.x.shape == (10000, 1, 28, 28)
    # the real test set: 1000 images of each of the 10 classes
    np.testing.assert_array_equal(np.bincount(splits.test.y.numpy()), [1000] * 10)
    # and real pixels: Fashion-MNIST's mean pixel is 0.286 (vs MNIST's 0.131)
    raw_mean = float(splits.test.x.mean()) * 0.3081 + 0.1307
    assert 0.27 < raw_mean < 0.30


# --- downloads --------------------------------------------------------------------------

def test_download_from_mirror_is_verified_and_kept(tmp_path, small_mnist):
    mirror = _serve(tmp_path / "server", small_mnist)
    splits = load_dataset("mnist", root=tmp_path / "data", mirrors=[mirror])
    target = tmp_path / "data" / "mnist"
    assert splits.source == str(target)
    assert _files_in(target) == sorted(IDX_NAMES)  # no temporaries left
    for name in IDX_NAMES:
        assert (target / name).read_bytes() == small_mnist.gz[name]
    # a second run reads them without the network
    assert len(load_dataset("mnist", root=tmp_path / "data", download=False).train) == 12


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path, small_mnist):
    served = SmallMnist(seed=1)  # other bytes than the digests the source expects
    mirror = _serve(tmp_path / "server", served)
    with pytest.raises(ChecksumError, match="failed verification"):
        load_dataset("mnist", root=tmp_path / "data", mirrors=[mirror])
    assert not (tmp_path / "data").exists()  # nothing kept: no temporary, no folder


def test_only_the_bad_file_is_refused(tmp_path, small_mnist):
    served = SmallMnist()
    served.gz[IDX_NAMES[3]] = gzip.compress(b"not the labels")
    mirror = _serve(tmp_path / "server", served)
    with pytest.raises(ChecksumError):
        load_dataset("mnist", root=tmp_path / "data", mirrors=[mirror])
    assert _files_in(tmp_path / "data" / "mnist") == sorted(IDX_NAMES[:3])  # all verified


class _DyingResponse:
    """A response that announces ``len(data)`` bytes, sends ``cut`` of them, then fails
    (``fail=True``) or just ends (a short read)."""

    def __init__(self, data: bytes, cut: int, fail: bool):
        self.headers = {"Content-Length": str(len(data))}
        self._stream = io.BytesIO(data[:cut])
        self._fail = fail

    def read(self, n: int) -> bytes:
        chunk = self._stream.read(min(n, 7))
        if not chunk and self._fail:
            raise ConnectionResetError("test: connection reset mid-stream")
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("fail", [True, False], ids=["reset", "short-read"])
def test_partial_download_leaves_nothing_trusted(tmp_path, monkeypatch, small_mnist, fail):
    calls = []

    def opener(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        calls.append(name)
        data = small_mnist.gz[name]
        return _DyingResponse(data, cut=len(data) // 2, fail=fail)

    monkeypatch.setattr("alignlab.data._files.urlopen", opener)
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        load_dataset("mnist", root=tmp_path / "data", mirrors=["http://a/", "http://b/"])
    assert "\n" not in str(info.value)
    assert calls == [IDX_NAMES[0]] * 2  # both mirrors tried, then gave up
    assert not (tmp_path / "data").exists()  # the folders it made are gone again
    # a later run with a working mirror succeeds: nothing half-written was kept
    mirror = _serve(tmp_path / "server", small_mnist)
    monkeypatch.setattr("alignlab.data._files.urlopen", urllib.request.urlopen)
    assert len(load_dataset("mnist", root=tmp_path / "data", mirrors=[mirror]).train) == 12


def test_cifar_archive_download_and_extraction(tmp_path, small_cifar):
    server = tmp_path / "server"
    server.mkdir()
    (server / "cifar-10-python.tar.gz").write_bytes(small_cifar.archive)
    splits = load_dataset("cifar10", root=tmp_path / "data", mirrors=server.as_uri(),
                          val_size=0)
    target = tmp_path / "data" / "cifar10"
    assert _files_in(target) == sorted(["cifar-10-python.tar.gz"] + [
        f"cifar-10-batches-py/{b}" for b in small_cifar.batches])
    assert len(splits.train) == 20 and len(splits.test) == 4


def test_cifar_corrupt_archive_download_is_discarded(tmp_path, small_cifar):
    server = tmp_path / "server"
    server.mkdir()
    (server / "cifar-10-python.tar.gz").write_bytes(small_cifar.archive[:-10] + b"0" * 10)
    with pytest.raises(ChecksumError):
        load_dataset("cifar10", root=tmp_path / "data", mirrors=server.as_uri(), val_size=0)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name, first_url", [
    ("mnist", "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"),
    ("fashion-mnist",
     "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz"),
    ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
])
def test_canonical_mirrors(tmp_path, monkeypatch, name, first_url):
    urls = []

    def opener(url, timeout=None):
        urls.append(url)
        raise OSError("test: offline")

    monkeypatch.setattr("alignlab.data._files.urlopen", opener)
    with pytest.raises(DatasetNotFoundError):
        load_dataset(name, root=tmp_path)
    assert urls[0] == first_url
