"""Fixtures for the data tests: an isolated data root (no test reads ~/.cache or the
network) and small data sets whose digests the sources are told for one test."""

from __future__ import annotations

import pytest
import torch
from datafiles import SmallCifar, SmallMnist, md5

from alignlab.data import DATASETS
from alignlab.data._files import Digest, RemoteFile


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Point $ALIGNLAB_DATA at an empty folder and make any real network access fail."""
    monkeypatch.setenv("ALIGNLAB_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise OSError(f"test: no network for {url}")
        import urllib.request
        return urllib.request.urlopen(url, *args, **kwargs)

    monkeypatch.setattr("alignlab.data._files.urlopen", no_network)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors; shared CI cores
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_mnist(monkeypatch) -> SmallMnist:
    """Small MNIST files whose digests the "mnist" source is told (for this test only)."""
    data = SmallMnist()
    monkeypatch.setattr(DATASETS["mnist"], "files", data.specs())
    return data


@pytest.fixture
def small_cifar(monkeypatch) -> SmallCifar:
    data = SmallCifar()
    source = DATASETS["cifar10"]
    monkeypatch.setattr(source, "files", tuple(
        RemoteFile(f"cifar-10-batches-py/{name}", Digest("md5", md5(blob)))
        for name, blob in data.batches.items()))
    monkeypatch.setattr(source, "archive",
                        RemoteFile("cifar-10-python.tar.gz", Digest("md5", md5(data.archive))))
    return data
