"""Configs: every shipped config validates; every kind of bad config fails naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainhelpers import tables, write_config

from alignlab._toml import loads_toml
from alignlab.cli import main
from alignlab.train.config import (
    Config,
    OptimConfig,
    dumps_toml,
    load_config,
    parse_value,
    resolve_config,
)

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.toml"))


def test_configs_exist_for_every_figure_run():
    names = {str(p.relative_to(p.parents[1])) for p in CONFIGS}
    methods = ("bp", "fa", "dfa", "usf", "kp", "wm", "pfa", "pfa-o")
    for m in methods:
        assert f"mnist/{m}.toml" in names
        assert f"fashion-mnist/{m}.toml" in names
        assert f"cifar10/resnet20-{m}.toml" in names
        assert f"imagenet/resnet18-{m}.toml" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_validates(path):
    config = load_config(path)
    assert isinstance(config, Config)
    # written back as TOML and read again, the resolved config is the same config
    again = resolve_config(loads_toml(dumps_toml(config.to_dict())))
    assert again == config


def test_fashion_mnist_twins_differ_from_mnist_only_in_the_data_set():
    for m in ("bp", "wm", "pfa", "pfa-o"):
        root = CONFIGS[0].parents[1]
        a = load_config(root / "mnist" / f"{m}.toml").to_dict()
        b = load_config(root / "fashion-mnist" / f"{m}.toml").to_dict()
        assert a["data"]["name"] == "mnist" and b["data"]["name"] == "fashion-mnist"
        a["data"].pop("name"), b["data"].pop("name")
        assert a == b


def test_paper_mnist_hyperparameters():
    root = CONFIGS[0].parents[1]
    pfa = load_config(root / "mnist" / "pfa.toml")
    assert pfa.model.options["sizes"] == (784, 512, 512, 10)
    assert (pfa.train.epochs, pfa.train.batch_size) == (40, 64)
    assert (pfa.optim.lr, pfa.optim.momentum, pfa.optim.lr_gamma) == (0.01, 0.9, 0.5)
    assert pfa.optim.lr_milestones == (20, 30)
    assert [pfa.optim.weight_decay_at(e) for e in (1, 2, 40)] == [0.03, 9e-5, 9e-5]
    assert pfa.method.options["expansion_ratio"] == 10
    bp = load_config(root / "mnist" / "bp.toml")
    assert [bp.optim.weight_decay_at(e) for e in (1, 2)] == [1e-4, 1e-4]


def test_schedules_follow_multisteplr():
    o = OptimConfig(lr=0.01, lr_milestones=(20, 30), lr_gamma=0.5, weight_decay=9e-5,
                    weight_decay_burst=0.03, weight_decay_burst_epochs=2)
    assert [o.lr_at(e) for e in (1, 20, 21, 30, 31, 40)] == [
        0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    assert [o.weight_decay_at(e) for e in (1, 2, 3)] == [0.03, 0.03, 9e-5]


def test_factored_pfa_is_the_default_under_sgd_only(tmp_path):
    cfg = write_config(tmp_path / "c.toml", method={"name": "pfa", "expansion_ratio": 4})
    assert load_config(cfg).method.options["state"] == "factored"
    assert load_config(cfg, ["method.state=explicit"]).method.options["state"] == "explicit"
    adam = load_config(cfg, ["optim.name=adam", "optim.momentum=0"])
    assert adam.method.options["state"] == "explicit"
    nesterov = load_config(cfg, ["optim.nesterov=true"])
    assert nesterov.method.options["state"] == "explicit"
    # a PFA variant without a factored form keeps its explicit R
    sparse = load_config(cfg, ["method.name=pfa-sparse"])
    assert sparse.method.options["state"] == "explicit"
    # methods without a `state` option are left alone
    assert "state" not in load_config(cfg, ["method.name=kp",
                                            "method.expansion_ratio=none"]).method.options


def test_base_files_merge_key_by_key(tmp_path):
    (tmp_path / "base.toml").write_text(dumps_toml(tables()))
    (tmp_path / "child.toml").write_text('base = "base.toml"\n[optim]\nlr = 0.2\n')
    c = load_config(tmp_path / "child.toml")
    assert c.optim.lr == 0.2 and c.optim.momentum == 0.9  # the rest of [optim] is kept
    assert c.model.options["sizes"] == (20, 64, 64, 4)


def test_set_values_are_toml_literals_or_bare_strings(tmp_path):
    cfg = write_config(tmp_path / "c.toml")
    c = load_config(cfg, ["optim.lr_milestones=[2, 3]", "method.name=fa", "train.epochs=5",
                          "optim.weight_decay_burst=0.5", "data.limit=100"])
    assert c.optim.lr_milestones == (2, 3) and c.method.name == "fa"
    assert c.train.epochs == 5 and c.optim.weight_decay_burst == 0.5
    assert load_config(cfg, ["data.limit=100", "data.limit=none"]).data.limit is None
    assert parse_value("true") is True and parse_value("pfa-o") == "pfa-o"
    # words that are not TOML stay strings, spaces and colons included
    c = load_config(cfg, ["method.name=pfa", "train.device=cuda:1", "data.root=/my data/x"])
    assert (c.method.name, c.train.device, c.data.root) == ("pfa", "cuda:1", "/my data/x")


MALFORMED = [
    # (--set value, what tomllib found, said in the value's own characters)
    ("[784,100,10", "unclosed array at the end"),
    ('"pfa', "unterminated string at the end"),
    ("{a = 1", "unclosed inline table at the end"),
    ("[1, 2]x", "expected newline or end of document after a statement at character 7"),
]


@pytest.mark.parametrize("text,reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_set_value_is_not_valid_toml(tmp_path, text, reason):
    cfg = write_config(tmp_path / "c.toml")
    with pytest.raises(ValueError) as info:
        load_config(cfg, [f"model.sizes={text}"])
    assert str(info.value) == (f"`model.sizes` must be a TOML value or a bare word, got "
                               f"{text!r}, which is not valid TOML ({reason}).")


def test_a_malformed_set_or_grid_value_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a sweep's default folder would go here (none is made)
    cfg = str(write_config(tmp_path / "c.toml"))
    for argv in (["train", cfg, "--set", "model.sizes=[784,100,10"],
                 ["sweep", cfg, "--set", "model.sizes=[784,100,10", "--dry-run"],
                 ["sweep", cfg, "--grid", "model.sizes=[784,100,10", "--dry-run"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("alignlab: error: `") and err.count("\n") == 1, err
        assert "got '[784,100,10', which is not valid TOML (unclosed array at the end)." in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


BAD = [
    # (override, the dotted key the message must start with)
    ("optim.lrr=1", "optim.lrr"),  # unknown key
    ("optim.lr=-1", "optim.lr"),  # impossible value
    ("optim.lr=\"fast\"", "optim.lr"),  # wrong type
    ("train.epochs=2.5", "train.epochs"),  # not an integer
    ("train.epochs=0", "train.epochs"),
    ("train.deterministic=1", "train.deterministic"),  # not a bool
    ("train.device=gpu", "train.device"),
    ("train.dtype=float16", "train.dtype"),
    ("optim.momentum=1.0", "optim.momentum"),
    ("optim.name=rmsprop", "optim.name"),
    ("optim.lr_milestones=[3, 2]", "optim.lr_milestones"),
    ("optim.lr_milestones=[1, \"a\"]", "optim.lr_milestones[1]"),
    ("optim.weight_decay_burst=-1", "optim.weight_decay_burst"),
    ("data.name=imagenette", "data.name"),
    ("data.limit=0", "data.limit"),
    ("data.n_trainx=5", "data.n_trainx"),  # unknown data-set option
    ("data.n_train=-5", "data.n_train"),  # bad data-set option
    ("model.name=vgg", "model.name"),
    ("model.depth=3", "model.depth"),  # unknown model option
    ("model.activation=swish", "model.activation"),  # bad model option
    ("model.sizes=[20, 0, 4]", "model.sizes"),
    ("method.name=xfa", "method.name"),
    ("method.expansion_ratio=4", "method.expansion_ratio"),  # not an option of bp
    ("wm.lr=0", "wm.lr"),
    ("wm.n_samples=0", "wm.n_samples"),
    ("wm.noise_std=inf", "wm.noise_std"),
    ("optim.lr=nan", "optim.lr"),
    ("optim.momentum=-0.1", "optim.momentum"),
    ("optim.name=adam", "optim.momentum"),  # the config's momentum 0.9 is SGD's
    ("optim.betas=[0.9, 1.0]", "optim.betas"),
    ("optim.weight_decay_burst_epochs=0", "optim.weight_decay_burst_epochs"),
    ("data.val_size=-1", "data.val_size"),
    ("train.amp=fp16", "train.amp"),  # on the cpu
]


MESSAGES = [
    # the message form of every kind of check, whole
    ("data.limit=0", "`data.limit` must be an integer >= 1, got 0."),
    ("optim.momentum=1.0", "`optim.momentum` must be in [0, 1), got 1.0."),
    ("optim.lr=-1", "`optim.lr` must be > 0, got -1.0."),
    ("optim.weight_decay=-1", "`optim.weight_decay` must be >= 0, got -1.0."),
    ("optim.betas=[0.9, 1.0]", "`optim.betas` must be in [0, 1), got [0.9, 1.0]."),
    ("optim.name=adam", "`optim.momentum` must be 0 for optim.name = 'adam' (use "
                        "optim.betas), got 0.9."),
    ("train.dtype=float16", "`train.dtype` must be one of 'float32', 'float64'; got "
                            "'float16'."),
]


@pytest.mark.parametrize("override,message", MESSAGES, ids=[m[0] for m in MESSAGES])
def test_messages_keep_one_form(tmp_path, override, message):
    cfg = write_config(tmp_path / "c.toml")
    with pytest.raises(ValueError) as info:
        load_config(cfg, [override])
    assert str(info.value) == message


@pytest.mark.parametrize("override,key", BAD, ids=[b[0] for b in BAD])
def test_bad_values_fail_naming_the_key(tmp_path, override, key):
    cfg = write_config(tmp_path / "c.toml")
    with pytest.raises(ValueError) as info:
        load_config(cfg, [override])
    assert str(info.value).startswith(f"`{key}`"), str(info.value)
    assert "\n" not in str(info.value)


def test_bad_method_option_values_name_the_key(tmp_path):
    cfg = write_config(tmp_path / "c.toml", method={"name": "pfa", "expansion_ratio": -1})
    with pytest.raises(ValueError, match=r"^`method\.expansion_ratio` must be > 0"):
        load_config(cfg)
    cfg = write_config(tmp_path / "c.toml", method={"name": "pfa", "state": "factored"},
                       optim={"name": "adam", "momentum": 0})
    with pytest.raises(ValueError, match=r"^`method\.state` must be 'explicit'"):
        load_config(cfg)


def test_bad_files_and_sections(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nepochs = 3\n")
    with pytest.raises(ValueError, match=r"^`training` is not a config section"):
        load_config(bad)
    bad.write_text("[optim\nlr = 1\n")
    with pytest.raises(ValueError, match=r"^`CONFIG` must be valid TOML, got '.*bad.toml' "
                                         r"\(Expected ']'"):
        load_config(bad)
    with pytest.raises(ValueError, match=r"^`CONFIG` must be an existing TOML file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "a.toml").write_text('base = "b.toml"\n')
    (tmp_path / "b.toml").write_text('base = "a.toml"\n')
    with pytest.raises(ValueError, match=r"^`base` must not form a cycle"):
        load_config(tmp_path / "a.toml")
    cfg = write_config(tmp_path / "c.toml")
    for item in ("optim.lr", "lr=0.1", "optim.lr.x=1"):
        with pytest.raises(ValueError, match=r"^`--set` must be SECTION.KEY=VALUE"):
            load_config(cfg, [item])


def test_a_missing_base_names_base_and_the_file_that_refers_to_it(tmp_path):
    child = tmp_path.resolve() / "child.toml"
    child.write_text('base = "bse.toml"\n[optim]\nlr = 0.2\n')
    with pytest.raises(ValueError) as info:
        load_config(child)
    assert str(info.value) == (f"`base` in {str(child)!r} must be an existing TOML file, got "
                               f"{str(child.parent / 'bse.toml')!r}.")
    (tmp_path / "bse.toml").write_text("[optim\n")  # there, but not TOML
    with pytest.raises(ValueError, match=rf"^`base` in '{child}' must be valid TOML, got "):
        load_config(child)


@pytest.mark.parametrize("command", [["train"], ["sweep", "--dry-run"]],
                         ids=["train", "sweep"])
def test_a_folder_as_config_is_one_line_exit_2(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)  # nothing may be written here
    folder = tmp_path / "configs"
    folder.mkdir()
    write_config(folder / "bp.toml")
    assert main([command[0], "configs", *command[1:]]) == 2
    err = capsys.readouterr().err  # (the sweep adds which of its configs)
    assert err.startswith(f"alignlab: error: `CONFIG` must be a TOML file, got the folder "
                          f"{str(folder.resolve())!r}.") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"]
