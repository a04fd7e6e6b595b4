"""alignlab.models: every model draws its initial weights from its own ``rng``.

The oracle is the recipe the training loop used before models took ``rng``:
``torch.manual_seed(s)`` then the model built from torch's global generator (``rng=None``,
where every layer is torch's own, initialised by torch as it is built). ``rng=s`` must give
the same parameters bit for bit, and leave torch's global generator alone.
"""

import numpy as np
import pytest
import torch

from alignlab.models import MODELS, build_model, model_options

# (model, options): every registered model, at a size that builds in well under a second
CASES = [
    ("mlp", {"sizes": (20, 16, 12, 5)}),
    ("mlp", {}),  # the paper's 784-512-512-10
    ("resnet20", {"num_classes": 7}),
    ("resnet18", {"num_classes": 5, "in_channels": 1}),
    ("resnet34", {"num_classes": 10}),
    ("invertible", {"width": 12, "hidden_layers": 2, "num_classes": 3}),
    ("invertible-tower", {"widths": (12, 12, 8, 4), "num_classes": 3, "init": "gaussian"}),
]


@pytest.fixture(autouse=True)
def _torch_one_thread(one_thread):
    """One intra-op thread (``one_thread`` in tests/conftest.py)."""


def _old_recipe(name, seed, options):
    """The training loop's former recipe: seed the global generator, then build."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, **options)


def _assert_same_parameters(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_every_registered_model_is_covered():
    assert {name for name, _ in CASES} == set(MODELS)


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{i}" for i, (n, _) in
                                                      enumerate(CASES)])
def test_rng_gives_the_parameters_of_the_global_seed_recipe(name, options):
    for seed in (0, 12345):
        _assert_same_parameters(build_model(name, rng=seed, **options),
                                _old_recipe(name, seed, options))


@pytest.mark.parametrize("name, options", CASES[:1] + CASES[2:3] + CASES[5:6])
def test_rng_leaves_the_global_generator_alone(name, options):
    before = torch.random.get_rng_state()
    build_model(name, rng=3, **options)
    build_model(name, rng=torch.Generator().manual_seed(3), **options)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_rng_forms_agree_and_seeds_differ():
    opts = {"sizes": (10, 8, 3)}
    by_int = build_model("mlp", rng=4, **opts)
    _assert_same_parameters(by_int, build_model("mlp", rng=torch.Generator().manual_seed(4),
                                                **opts))
    ss = np.random.SeedSequence(4)
    _assert_same_parameters(build_model("mlp", rng=ss, **opts),
                            build_model("mlp", rng=torch.Generator().manual_seed(
                                int(ss.generate_state(1, np.uint64)[0]) & (2**63 - 1)),
                                **opts))
    assert not torch.equal(by_int[1].weight, build_model("mlp", rng=5, **opts)[1].weight)


def test_rng_is_not_a_config_option_and_is_validated():
    for name in MODELS:
        assert "rng" not in model_options(name)
    with pytest.raises(ValueError, match=r"^`rng` must be None, an int >= 0"):
        build_model("mlp", rng=-1)
    with pytest.raises(ValueError, match=r"^`rng` must be None, an int >= 0"):
        build_model("resnet20", rng=1.5)


def test_meta_device_builds_without_drawing():
    """Config validation builds on the meta device: nothing drawn, nothing allocated."""
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    with torch.device("meta"):
        for name, options in CASES:
            model = build_model(name, rng=gen, **options)
            assert all(p.device.type == "meta" for p in model.parameters())
    assert torch.equal(gen.get_state(), state)
