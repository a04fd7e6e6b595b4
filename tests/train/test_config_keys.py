"""Every config key reaches its consumer.

The keys are enumerated from the config dataclasses (``train.config._SECTIONS``) and from
the registries that supply options (``models.MODELS`` / ``model_options``, ``nn.METHODS``'s
dataclass fields, ``gaitprop.RULES`` / ``method_options``, ``data.DATASETS[...].options``),
never from a hand-written list. For each key, one changed value (``ALT``, else a generic
change by type) must change the fingerprint of what the config builds and runs:

* data: the training, validation and test tensors and one augmented batch;
* build: the initial model's parameters and buffers (names, shapes, bits) and, per
  converted layer, the method object with its options;
* run: a tiny training run's ``metrics.csv`` (timing columns dropped), ``layers.csv``,
  ``summary.json``'s status and the final parameters.

A key that does not change the trajectory is listed in ``NO_EFFECT`` with the reason. A
new key without a consumer (or without an entry here) fails ``test_key_reaches_its_consumer``,
and ``test_every_listed_key_exists`` keeps the lists from naming keys that are gone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing

import pytest
import torch

from alignlab.data import DATASETS, TensorDataset, batches
from alignlab.gaitprop import RULES, get_rule, method_options
from alignlab.models import MODELS, model_options
from alignlab.nn import METHODS, converted_layers
from alignlab.train import initial_model, resolve_config, train
from alignlab.train.config import _SECTIONS
from alignlab.train.rundir import read_csv, read_summary
from alignlab.train.setup import load_data

TIMING = {"epoch_s", "log_s", "wall_s"}

# The bases: a tiny MLP on synthetic data, an invertible network, a ResNet built only.
MLP_BASE = {
    "data": {"name": "synthetic", "n_train": 48, "n_test": 16, "input_shape": [6],
             "num_classes": 3, "teacher_hidden": 8},
    "model": {"name": "mlp", "sizes": [6, 8, 3]},
    "method": {"name": "bp"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu", "probe_size": 8},
}
INVERTIBLE_BASE = {
    "data": {"name": "synthetic", "n_train": 24, "n_test": 12, "input_shape": [6],
             "num_classes": 3, "teacher_hidden": 8},
    "model": {"name": "invertible", "width": 6, "hidden_layers": 1, "num_classes": 3},
    "method": {"name": "gait-prop", "gamma": 0.1},
    "optim": {"name": "uncorrected-adam", "lr": 1e-3},
    "train": {"epochs": 1, "batch_size": 12, "device": "cpu", "probe_size": 4,
              "dtype": "float64"},
}
IMAGE_DATA = {"name": "synthetic", "n_train": 24, "n_test": 8, "input_shape": [1, 8, 8],
              "num_classes": 3, "teacher_hidden": 8}

# Keys that do not change the trajectory, with the reason (each still has a consumer).
NO_EFFECT = {
    "train.eval_batch_size": "evaluation batching only (the sums over batches are the same "
                             "numbers up to summation order)",
    "train.device": "'auto' resolves to the CPU here, the base's device; the device tests "
                    "(tests/train/test_amp.py, test_ddp.py) cover CUDA where there is one",
    "train.deterministic": "CPU kernels are deterministic already; on CUDA it selects "
                           "deterministic kernels (same trajectory, reproducible)",
    "train.channels_last": "memory layout of 4-D inputs (NHWC), same numbers; run in "
                           "tests/train/test_amp.py",
    "train.compile": "torch.compile of the same computation (tens of seconds to compile on "
                     "the CPU); refused where it cannot trace, tests/train/test_loop.py",
    "data.download": "whether missing files are fetched; with the files present the data "
                     "are the same (tests/data/test_files.py)",
    "data.verify": "whether the files' digests are checked; intact files give the same "
                   "data (tests/data/test_files.py)",
    "data.mirrors": "where missing files are downloaded from (tests/data/test_files.py)",
    "method.state@pfa-sparse": "only 'explicit' is valid for sparse PFA (its masks break "
                               "Proposition 1's factored form): nothing to change it to",
    "method.store_D0@pfa-sparse": "only False is valid with the explicit state sparse PFA "
                                  "needs: nothing to change it to",
    "method.output_size": "DFA's output size, inferred from the model's last nn.Linear when "
                          "None; set only for a model without one (another value does not "
                          "fit the model and is refused)",
}
# Keys whose registry entry cannot run here (optional dependency), with the reason.
NEEDS = {"imagenet": "torchvision"}

# A changed value per key where the generic rule (by type) does not give a valid one.
ALT: dict[str, typing.Any] = {
    "data.name": "mnist",
    "data.root": "<root1>",
    "data.pad_to": 10,
    "data.augment": True,
    "data.val_size": 8,
    "data.limit": 20,
    "data.input_shape": [7],
    "data.num_classes": 4,
    "model.sizes": [6, 9, 3],
    "model.activation": "tanh",
    "model.activation@invertible": "linear",
    "model.activation@invertible-tower": "linear",
    "model.init": "gaussian",
    "train.loss": "squared-error",
    "optim.layer_lr_scales": [1.0, 0.5],
    "model.width": 7,
    "model.num_classes": 4,
    "model.widths": [6, 6, 4, 3],
    "model.num_classes@invertible-tower": 2,
    "method.init": "gaussian",
    "method.scale": "unit",
    "method.output_size": 5,
    "method.impl": "literal",
    "method.state": lambda default: "explicit" if default == "factored" else "factored",
    "method.store_D0": True,
    "method.b_init": "gaussian",
    "method.density": 0.25,
    "method.penalty": "full",
    "method.form": "targets",
    "optim.name": "adam",
    "optim.betas": [0.5, 0.9],
    "optim.momentum": 0.9,
    "optim.weight_decay_burst": 0.05,
    "optim.lr_milestones": [1],
    "train.dtype": "float64",
    "train.amp": "bf16",
    "train.log_every_steps": 1,
    "train.shuffle": False,
    "train.drop_last": True,
    "wm.every_steps": 2,
}
# Per key, the base changed so that the key can act (e.g. betas need Adam).
CONTEXT: dict[str, dict] = {
    "optim.betas": {"optim": {"name": "adam", "lr": 0.01}},
    "optim.nesterov": {"optim": {"momentum": 0.9}},
    "optim.momentum": {"optim": {"momentum": 0.5}},
    "optim.weight_decay_burst_epochs": {"optim": {"weight_decay_burst": 0.1}},
    "optim.weight_decay": {"optim": {"weight_decay": 0.01}},
    "optim.lr_gamma": {"optim": {"lr_milestones": [1]}},
    "train.drop_last": {"train": {"batch_size": 20}},
    "train.probe_size": {"method": {"name": "fa"}},  # BP's update angle to BP is 0 at any size
    "data.normalize": {"data": {"name": "mnist", "root": "<root0>", "verify": False}},
    "method.penalty": {"method": {"penalty_strength": 0.1}},
    "data.pad_to": {"data": IMAGE_DATA, "model": {"sizes": [64, 8, 3]}},
    "data.augment": {"data": IMAGE_DATA, "model": {"sizes": [64, 8, 3]}},
    "method.impl": {"method": {"state": "explicit"}},
    "method.store_D0": {"method": {"state": "factored"}, "optim": {"name": "sgd"}},
    "data.root": {"data": {"name": "mnist", "root": "<root0>", "verify": False}},
}
# Keys whose change must be read off a differently shaped model or data set.
FOLLOW = {  # key -> what else changes with it so that the config still fits together
    "data.input_shape": {"model": {"sizes": [7, 8, 3]}},
    "data.num_classes": {"model": {"sizes": [6, 8, 4]}},
    "model.width": {"data": {"input_shape": [7]}},
    "model.num_classes@invertible": {"data": {"num_classes": 4}},
    "model.num_classes@invertible-tower": {"data": {"num_classes": 2}},
}


# ---------------------------------------------------------------------------------------
# the keys, from the dataclasses and registries


def _fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "options"]


def _keys() -> list[tuple[str, str, str]]:
    """(dotted key, registry context, base) for every key: section fields in the MLP base,
    options in their own model / method / data set's context."""
    out = []
    for section, cls in _SECTIONS.items():
        for name in _fields(cls):
            if f"{section}.{name}" in ("data.name", "model.name", "method.name"):
                continue  # the registries' names: test_every_registry_entry_differs
            out.append((f"{section}.{name}", "", "mlp"))
    for model in MODELS:
        base = "invertible" if getattr(MODELS[model], "learns_by_targets", False) else "mlp"
        for opt in model_options(model):
            out.append((f"model.{opt}", model, base))
    for method, cls in METHODS.items():
        for opt in _fields(cls):
            out.append((f"method.{opt}", method, "mlp"))
    for rule in RULES:
        for opt in method_options(rule):
            out.append((f"method.{opt}", rule, "invertible"))
    for name, source in DATASETS.items():
        for opt in source.options:
            out.append((f"data.{opt}", name, "mlp"))
    return out


KEYS = _keys()


# ---------------------------------------------------------------------------------------
# fingerprints


def _digest(*tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().cpu().reshape(-1)
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _state(model) -> dict[str, str]:
    return {k: _digest(v) for k, v in model.state_dict().items() if torch.is_tensor(v)}


def _data_fingerprint(cfg) -> dict:
    splits, train_ds, val_ds, test_ds = load_data(cfg, torch.device("cpu"), torch.float32)
    if isinstance(train_ds, TensorDataset):
        train = _digest(train_ds.x, train_ds.y)
    else:  # a stream: its size and the first batch of a pass
        xb, yb = next(batches(train_ds, 8, generator=torch.Generator().manual_seed(0)))
        train = [len(train_ds), _digest(xb, yb)]
    out = {"train": train, "test": _digest(test_ds.x, test_ds.y),
           "val": None if val_ds is None else _digest(val_ds.x, val_ds.y),
           "augment": None}
    if splits.augment_fn is not None:
        gen = torch.Generator().manual_seed(0)
        out["augment"] = _digest(splits.augment_fn(train_ds.x[:4], gen))
    return out


def _build_fingerprint(cfg) -> dict:
    model = initial_model(cfg)
    methods = [repr(layer.method) for _, layer in converted_layers(model)]
    return {"state": _state(model), "methods": methods}


def _run_fingerprint(cfg, folder) -> dict:
    result = train(cfg, folder, quiet=True)
    metrics = [{k: v for k, v in r.items() if k not in TIMING}
               for r in read_csv(folder / "metrics.csv")]
    layers = read_csv(folder / "layers.csv") if (folder / "layers.csv").exists() else None
    return {"metrics": json.dumps(metrics, sort_keys=True, default=str),
            "layers": json.dumps(layers, sort_keys=True, default=str),
            "status": read_summary(folder)["status"], "final": _state(result.model)}


def _fill(value, roots):
    """``"<root0>"`` / ``"<root1>"`` -> the small data roots of the test."""
    if isinstance(value, dict):
        return {k: _fill(v, roots) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("<root"):
        return str(roots[int(value[5])])
    return value


def _merge(base: dict, *changes: dict) -> dict:
    """``base`` with each change's tables merged in; a table naming another registry entry
    (``name``) replaces the section (another entry's options do not carry over)."""
    out = json.loads(json.dumps(base))
    for change in changes:
        for section, table in json.loads(json.dumps(change)).items():
            if table.get("name", out.get(section, {}).get("name")) != out.get(
                    section, {}).get("name"):
                out[section] = table
            else:
                out.setdefault(section, {}).update(table)
    return out


def _entry(table: dict, key: str, registry: str, default=None):
    """``table``'s entry for ``key@registry``, else for ``key``."""
    return table.get(f"{key}@{registry}", table.get(key, default))


def _alternative(key: str, registry: str, value):
    alt = _entry(ALT, key, registry)
    if callable(alt):
        return alt(value)
    if alt is not None:
        return alt
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 if value else 0.5
    raise AssertionError(f"no changed value for `{key}` (default {value!r}): add it to ALT")


@pytest.fixture
def small_files(tmp_path, monkeypatch):
    """Two data roots holding small MNIST / Fashion-MNIST / CIFAR-10 files (different
    contents), the sources told their digests."""
    from datafiles import SmallCifar, SmallMnist, md5

    from alignlab.data._files import Digest, RemoteFile

    roots = []
    for seed in (0, 1):  # Fashion-MNIST's files differ from MNIST's (same statistics)
        root = tmp_path / f"data{seed}"
        mnist, fashion, cifar = SmallMnist(seed=seed), SmallMnist(seed=seed + 2), \
            SmallCifar(seed=seed)
        mnist.write(root / "mnist")
        fashion.write(root / "fashion-mnist")
        cifar.write_batches(root / "cifar10")
        roots.append((root, mnist, cifar))
    for name in ("mnist", "fashion-mnist"):  # file names; digests unchecked (verify off)
        monkeypatch.setattr(DATASETS[name], "files", roots[0][1].specs())
    monkeypatch.setattr(DATASETS["cifar10"], "files", tuple(
        RemoteFile(f"cifar-10-batches-py/{n}", Digest("md5", md5(b)))
        for n, b in roots[0][2].batches.items()))
    return [r for r, _, _ in roots]


def _fingerprint(tables: dict, folder, level: str) -> dict:
    cfg = resolve_config(tables)
    out = {"data": _data_fingerprint(cfg), "build": _build_fingerprint(cfg)}
    if level == "run":
        out["run"] = _run_fingerprint(cfg, folder)
    return out


# The tables in which a registry entry's options act (merged into the key's base).
ENTRY = {
    "mnist": {"data": {"name": "mnist", "root": "<root0>", "verify": False}},
    "fashion-mnist": {"data": {"name": "fashion-mnist", "root": "<root0>", "verify": False}},
    "cifar10": {"data": {"name": "cifar10", "root": "<root0>", "verify": False,
                         "val_size": 0}},
    "synthetic": {},
    "teacher-stream": {"data": {"name": "teacher-stream", "n_inputs": 6, "n_hidden": 2,
                                "n_train": 32, "n_test": 16}},
    "mlp": {},
    "invertible": {},
    "invertible-tower": {"model": {"name": "invertible-tower", "widths": [6, 6, 5, 4, 3],
                                   "num_classes": 3}},
    "wm": {"method": {"name": "wm"}, "train": {"epochs": 1}},
}


def _context(key: str, registry: str, base: str) -> tuple[dict, str]:
    """The tables in which ``key`` of ``registry`` acts, and the fingerprint level:
    'data' for the data section (the tensors are what it changes), 'build' for a ResNet
    (built, not trained, here), else 'run'."""
    section = key.split(".")[0]
    tables = _merge(INVERTIBLE_BASE if base == "invertible" else MLP_BASE)
    level = "data" if section == "data" else "run"
    if registry in ENTRY:
        tables = _merge(tables, ENTRY[registry])
    elif section == "model":
        tables["model"] = {"name": registry}
        level = "build"
    elif section == "method":
        gamma = base == "invertible" and "gamma" in get_rule(registry).options()
        tables["method"] = {"name": registry, **({"gamma": 0.1} if gamma else {})}
    if section == "wm":
        tables = _merge(tables, ENTRY["wm"])
    return _merge(tables, CONTEXT.get(key, {})), level


# ---------------------------------------------------------------------------------------
# the tests


@pytest.mark.parametrize("key,registry,base", KEYS,
                         ids=[f"{k}@{r}" if r else k for k, r, _ in KEYS])
def test_key_reaches_its_consumer(key, registry, base, tmp_path, small_files):
    reason = _entry(NO_EFFECT, key, registry)
    if reason:
        pytest.skip(f"no effect on the trajectory: {reason}")
    if registry in NEEDS:
        pytest.importorskip(NEEDS[registry])
    section, _, name = key.partition(".")
    tables, level = _context(key, registry, base)
    tables = _fill(tables, small_files)
    default = resolve_config(tables).get(key)
    changed = _alternative(key, registry, default)
    new = _fill(_merge(tables, {section: {name: changed}}, _entry(FOLLOW, key, registry, {})),
                small_files)
    assert resolve_config(new).get(key) != default, f"`{key}` did not change"
    before = _fingerprint(tables, tmp_path / "before", level)
    after = _fingerprint(new, tmp_path / "after", level)
    assert before != after, (f"`{key}` changed from {default!r} to {changed!r} but nothing "
                             "built or run changed: wire it, or list it in NO_EFFECT with "
                             "the reason")


def _distinct(prints: dict) -> None:
    seen: dict[str, str] = {}
    for name, value in prints.items():
        text = json.dumps(value, sort_keys=True)
        assert text not in seen, f"{name!r} builds and runs what {seen[text]!r} does"
        seen[text] = name


def test_every_method_differs(tmp_path):
    """``method.name``: every method of ``nn.METHODS`` runs something of its own."""
    _distinct({name: _fingerprint(_merge(MLP_BASE, {"method": {"name": name}}),
                                  tmp_path / name, "run")["run"] for name in METHODS})


def test_every_rule_differs(tmp_path):
    """``method.name`` of a model trained by targets: every rule (aliases once)."""
    rules: dict[type, str] = {}
    for name in RULES:
        rules.setdefault(type(get_rule(name)), name)
    prints = {}
    for name in rules.values():
        tables, _ = _context("method.name", name, "invertible")
        prints[name] = _fingerprint(tables, tmp_path / name, "run")["run"]
    _distinct(prints)


def test_every_model_and_data_set_differs(small_files):
    """``model.name`` and ``data.name``: every model builds, every data set loads,
    something of its own."""
    _distinct({name: _build_fingerprint(resolve_config({"model": {"name": name}}))
               for name in MODELS})
    _distinct({name: _data_fingerprint(resolve_config(_fill(
        _merge(MLP_BASE, ENTRY[name]), small_files))) for name in DATASETS
        if name not in NEEDS})


def test_every_listed_key_exists():
    """The lists above name only keys that exist (a removed key must leave them too)."""
    known = {k for k, _, _ in KEYS} | {f"{k}@{r}" for k, r, _ in KEYS} | {
        "data.name", "model.name", "method.name"}
    for table in (NO_EFFECT, ALT, CONTEXT, FOLLOW):
        assert set(table) <= known, sorted(set(table) - known)
    assert set(ENTRY) <= set(MODELS) | set(METHODS) | set(DATASETS)
