"""convert(): coverage of models, state handling, errors, AMP."""

from __future__ import annotations

import copy
import io
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import alignlab
from alignlab.models import MLP, resnet18, resnet20
from alignlab.nn import (
    METHODS,
    FeedbackConv2d,
    FeedbackLayer,
    FeedbackLinear,
    conversion_report,
)

ALL = list(METHODS)


def _step(model, x, y):
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss


@pytest.mark.parametrize("method", ALL)
def test_mlp_and_resnet20_forward_backward(method):
    torch.manual_seed(0)
    mlp = alignlab.convert(MLP((12, 16, 8, 4)), method, rng=0)
    _step(mlp, torch.randn(5, 12), torch.randint(0, 4, (5,)))
    assert all(p.grad is not None for n, p in mlp.named_parameters()
               if n.endswith(("weight", "bias", "pfa_R")) or method == "kp")
    net = alignlab.convert(resnet20(num_classes=4), method, rng=0)
    net.train()
    _step(net, torch.randn(2, 3, 16, 16), torch.randint(0, 4, (2,)))
    conv_grads = [m.weight.grad for m in net.modules() if isinstance(m, FeedbackConv2d)]
    assert len(conv_grads) == 19 and all(g is not None and torch.isfinite(g).all()
                                         for g in conv_grads)


@pytest.mark.parametrize("method", ["fa", "dfa", "pfa"])
def test_torchvision_style_resnet18(method):
    torch.manual_seed(0)
    options = {"expansion_ratio": 2} if method == "pfa" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BatchNorm and pooling keep BP without a warning
        net = alignlab.convert(resnet18(num_classes=5), method, rng=0, **options)
    report = conversion_report(net)
    # 20 convs (3 of them 1x1 downsample) + fc; BN, ReLU, pooling stay on BP
    assert len(report.converted) == 21
    assert "layer2.0.downsample.0" in report.converted
    kept = {r["type"] for r in report if r["trained_by"] == "bp"}
    assert {"BatchNorm2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d"} <= kept
    loss = _step(net, torch.randn(2, 3, 16, 16), torch.randint(0, 5, (2,)))
    assert torch.isfinite(loss)
    assert net.layer2[0].downsample[0].weight.grad is not None
    assert str(report).count("converted") == 21


def test_report_and_attention_keep_bp():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8))
    model.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.warns(UserWarning, match="'attn.out_proj'.*'attn' \\(MultiheadAttention\\)"):
        net = alignlab.convert(model, "fa", rng=0)
    rep = conversion_report(net)
    assert rep.converted == ["0"]
    rows = {r["module"]: r for r in rep}
    assert rows["1"]["trained_by"] == "bp"
    assert "MultiheadAttention" in rows["attn.out_proj"]["note"]
    assert "in_proj_weight" in rows["attn"]["note"]
    assert type(net.attn.out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear


def test_not_inplace_by_default_and_inplace():
    mlp = MLP((6, 5, 3))
    net = alignlab.convert(mlp, "fa")
    assert type(mlp[1]) is nn.Linear and isinstance(net[1], FeedbackLinear)
    assert net[1].weight is not mlp[1].weight
    torch.testing.assert_close(net[1].weight, mlp[1].weight)
    same = alignlab.convert(mlp, "fa", inplace=True)
    assert same is mlp and isinstance(mlp[1], FeedbackLinear)


def test_bare_layer_converts():
    layer = alignlab.convert(nn.Conv2d(2, 3, 3), "pfa", expansion_ratio=2)
    assert isinstance(layer, FeedbackConv2d) and layer.pfa_B.shape == (6, 3)


def test_unknown_method_and_option_list_valid_ones():
    with pytest.raises(ValueError, match="`method` must be one of.*'pfa-o'"):
        alignlab.convert(MLP((4, 3)), "pfaa")
    valid = "valid options: b_init, expansion_ratio, impl, state, store_D0"
    with pytest.raises(ValueError, match=valid):
        alignlab.convert(MLP((4, 3)), "pfa", ratio=3)
    with pytest.raises(ValueError, match="valid options: \\(none\\)"):
        alignlab.convert(MLP((4, 3)), "bp", foo=1)
    with pytest.raises(ValueError, match="`expansion_ratio` must be > 0"):
        alignlab.convert(MLP((4, 3)), "pfa", expansion_ratio=-1)
    with pytest.raises(ValueError, match="`impl` must be one of"):
        alignlab.convert(MLP((4, 3)), "pfa", impl="fast")
    with pytest.raises(ValueError, match="`density` must be in"):
        alignlab.convert(MLP((4, 3)), "pfa-sparse", density=0)


def test_shared_layers_stay_shared():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Tanh(), shared, nn.Tanh(), nn.Linear(4, 2))
    net = alignlab.convert(model, "pfa", rng=0, expansion_ratio=2)
    assert net[0] is net[2]
    assert len(net.alignlab_conversion.converted) == 2  # '0' (= '2') and '4'
    _step(net, torch.randn(3, 4), torch.randint(0, 2, (3,)))
    assert net[0].pfa_R.grad is not None
    # tied weights across distinct layers stay tied
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    tied = alignlab.convert(nn.Sequential(a, b), "fa")
    assert tied[0].weight is tied[1].weight


def test_converting_twice_rebuilds_from_weights():
    net = alignlab.convert(MLP((6, 5, 3)), "fa", rng=0)
    w = net[1].weight
    net2 = alignlab.convert(net, "pfa", rng=1, expansion_ratio=2)
    assert net2[1].method.name == "pfa" and "feedback" not in dict(net2[1].named_buffers())
    torch.testing.assert_close(net2[1].weight, w)
    assert "was fa" in conversion_report(net2)[1]["note"]
    # back to DFA then BP: the DFA hook is installed once, then removed
    net3 = alignlab.convert(net2, "dfa")
    net3 = alignlab.convert(net3, "dfa")
    assert sum(1 for h in net3._forward_hooks.values()
               if isinstance(h, alignlab.nn.DFAContext)) == 1
    net4 = alignlab.convert(net3, "bp")
    assert not net4._forward_hooks
    x, y = torch.randn(3, 6), torch.randint(0, 3, (3,))
    _step(net4, x, y)
    ref = MLP((6, 5, 3))
    ref.load_state_dict({k: v for k, v in net4.state_dict().items() if "extra" not in k})
    _step(ref, x, y)
    torch.testing.assert_close(net4[1].weight.grad, ref[1].weight.grad)


@pytest.mark.parametrize("method", ["fa", "frsf", "kp", "pfa", "pfa-sparse", "dfa"])
def test_state_follows_to_double_and_state_dict(method):
    net = alignlab.convert(MLP((6, 5, 3)), method, rng=0)
    layer = net[1]
    names = layer.method.state_names
    net.double()
    assert all(getattr(layer, n).dtype in (torch.float64, torch.bool) for n in names)
    net.to(torch.float32)
    assert all(getattr(layer, n).dtype in (torch.float32, torch.bool) for n in names)
    sd = net.state_dict()
    assert all(f"1.{n}" in sd for n in names)
    other = alignlab.convert(MLP((6, 5, 3)), method, rng=99)
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    for n in names:
        torch.testing.assert_close(getattr(other[1], n), getattr(layer, n))
    x, y = torch.randn(4, 6), torch.randint(0, 3, (4,))
    torch.manual_seed(0)
    _step(net, x, y)
    torch.manual_seed(0)
    _step(other, x, y)
    torch.testing.assert_close(other[1].weight.grad, net[1].weight.grad)
    copied = copy.deepcopy(net)
    torch.manual_seed(0)
    _step(copied, x, y)
    torch.testing.assert_close(copied[1].weight.grad, net[1].weight.grad)


def _brsf_trained(global_seed: int, steps: int = 4, rng=1) -> list[torch.Tensor]:
    torch.manual_seed(global_seed)  # nothing below may depend on this
    net = alignlab.convert(MLP((6, 5, 4, 3), rng=0), "brsf", rng=rng)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(steps):
        _step(net, x, y)
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def test_brsf_draws_from_its_own_stream_not_the_global_generator():
    a, b = _brsf_trained(global_seed=1), _brsf_trained(global_seed=2)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # convert's rng decides the stream
    assert any(not torch.equal(p, q) for p, q in zip(a, _brsf_trained(1, rng=2), strict=True))
    # rng=None draws the seed from torch's default generator, as the other methods' state
    torch.manual_seed(5)
    first = alignlab.convert(nn.Linear(3, 2), "brsf")
    torch.manual_seed(5)
    again = alignlab.convert(nn.Linear(3, 2), "brsf")
    assert first.method.scalar_state(first) == again.method.scalar_state(again)


def test_brsf_stream_travels_with_state_dict_and_deepcopy_and_reporting_leaves_it():
    net = alignlab.convert(MLP((6, 5, 3), rng=0), "brsf", rng=1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 6, generator=gen), torch.randint(0, 3, (4,), generator=gen)
    _step(net, x, y)  # one draw used
    layer = net[1]
    peek = layer.effective_feedback()
    # reporting and evaluation do not advance the draws: alignment, a forward pass
    # without gradients, update_angles (a training pass whose draw count it restores)
    alignlab.alignment(net)
    with torch.no_grad():
        net(x)
    alignlab.nn.update_angles(net, F.cross_entropy, x, y)
    torch.testing.assert_close(layer.effective_feedback(), peek, rtol=0, atol=0)
    assert layer.method.scalar_state(layer)["draws"] == 1
    copied = copy.deepcopy(net)
    other = alignlab.convert(MLP((6, 5, 3), rng=0), "brsf", rng=99)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    grads = []
    for seed, model in enumerate((net, copied, other)):
        torch.manual_seed(seed)
        _step(model, x, y)  # the second draw, in every copy
        grads.append(model[1].weight.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=0)
    torch.testing.assert_close(grads[2], grads[0], rtol=0, atol=0)


def test_loading_another_methods_state_fails_clearly():
    fa = alignlab.convert(MLP((6, 5, 3)), "kp")
    pfa = alignlab.convert(MLP((6, 5, 3)), "pfa")
    with pytest.raises(ValueError, match="saved from method 'kp'.*uses 'pfa'"):
        pfa.load_state_dict(fa.state_dict())
    fa2 = alignlab.convert(MLP((6, 5, 3)), "kp", init="gaussian")
    with pytest.raises(ValueError, match="saved from method 'kp'"):
        fa2.load_state_dict(fa.state_dict())


def test_padding_modes_and_linear_nd_match_torch_forward():
    torch.manual_seed(0)
    for conv in (nn.Conv2d(2, 4, 3, padding="same", padding_mode="circular"),
                 nn.Conv2d(2, 4, 3, padding=2, padding_mode="replicate", stride=2),
                 nn.Conv2d(2, 4, 3, padding="valid")):
        x = torch.randn(2, 2, 7, 7)
        torch.testing.assert_close(alignlab.convert(conv, "fa")(x), conv(x))
    lin = nn.Linear(3, 2)
    x = torch.randn(2, 4, 5, 3)
    torch.testing.assert_close(alignlab.convert(lin, "pfa")(x), lin(x))


@pytest.mark.parametrize("method", ["bp", "fa", "pfa", "kp", "dfa"])
def test_autocast_bfloat16_cpu(method):
    torch.manual_seed(0)
    net = alignlab.convert(resnet20(num_classes=3), method, rng=0)
    x, y = torch.randn(2, 3, 16, 16), torch.randint(0, 3, (2,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
        assert out.dtype == torch.bfloat16
        loss = F.cross_entropy(out, y)
    loss.backward()
    for m in net.modules():
        if isinstance(m, (FeedbackConv2d, FeedbackLinear)):
            assert m.weight.grad.dtype == torch.float32
            for p in m.feedback_parameters():
                assert p.grad is None or p.grad.dtype == torch.float32
    if method == "bp":  # the same AMP numbers as torch's own layers under autocast
        plain = resnet20(num_classes=3)
        plain.load_state_dict({k: v for k, v in net.state_dict().items() if "extra" not in k})
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(plain(x), y)
        loss.backward()
        for a, b in ((net.conv1, plain.conv1), (net.fc, plain.fc)):
            cos = F.cosine_similarity(a.weight.grad.flatten(), b.weight.grad.flatten(), dim=0)
            assert cos > 0.999


def test_unbatched_inputs_and_dfa_instances():
    torch.manual_seed(0)
    conv, lin = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(4, 3)
    x, v = torch.randn(2, 5, 5, requires_grad=True), torch.randn(4, requires_grad=True)
    for plain, inp in ((conv, x), (lin, v)):
        layer = alignlab.convert(plain, "pfa", rng=0)
        torch.testing.assert_close(layer(inp), plain(inp))
        layer(inp).sum().backward()
        assert inp.grad.shape == inp.shape
    from alignlab.nn.methods import DFA

    net = alignlab.convert(MLP((4, 3, 2)), DFA())  # output_size inferred for instances too
    assert net[1].method.output_size == 2
    with pytest.raises(ValueError, match="`output_size` must be given"):
        FeedbackLinear(3, 2, method="dfa")


# ------------------------------------------------------------ modules convert cannot take


class _OwnForwardLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


class _FunctionalWeight(nn.Module):
    """A weight matrix used through F.linear: BP carries the error through it."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.extra = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return F.linear(self.lin(x), self.extra)


UNCONVERTIBLE = {
    "Conv1d": lambda: nn.Conv1d(3, 4, 3),
    "Conv3d": lambda: nn.Conv3d(3, 4, 3),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(3, 4, 3),
    "ConvTranspose1d": lambda: nn.ConvTranspose1d(3, 4, 3),
    "LSTM": lambda: nn.LSTM(4, 5),
    "GRU": lambda: nn.GRU(4, 5),
    "Bilinear": lambda: nn.Bilinear(3, 4, 5),
    "_OwnForwardLinear": lambda: _OwnForwardLinear(4, 4),
}


def _one_warning(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    assert len(caught) == 1 and caught[0].category is UserWarning, [str(w.message)
                                                                     for w in caught]
    return out, str(caught[0].message)


@pytest.mark.parametrize("kind", UNCONVERTIBLE)
def test_modules_left_on_bp_are_listed_in_one_warning(kind):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    model.add_module("odd", UNCONVERTIBLE[kind]())
    model.add_module("odd2", UNCONVERTIBLE[kind]())
    net, message = _one_warning(lambda: alignlab.convert(model, "fa", rng=0))
    assert f"'odd' ({kind}), 'odd2' ({kind})" in message and "'fa'" in message
    assert "'1'" not in message  # the ReLU holds no weights: not listed
    assert isinstance(net[0], FeedbackLinear) and conversion_report(net).converted == ["0"]
    assert {"odd", "odd2"} <= set(conversion_report(net).kept_bp)


def test_weight_used_functionally_is_listed():
    _, message = _one_warning(lambda: alignlab.convert(_FunctionalWeight(), "pfa"))
    assert "'(root)' (_FunctionalWeight)" in message


@pytest.mark.parametrize("kind", UNCONVERTIBLE)
def test_nothing_to_convert_raises(kind):
    for model in (UNCONVERTIBLE[kind](), nn.Sequential(UNCONVERTIBLE[kind](), nn.ReLU())):
        name = "(root)" if not model._modules else "0"
        with pytest.raises(ValueError, match="nothing was converted") as err:
            alignlab.convert(model, "fa", inplace=True)
        assert f"'{name}' ({kind})" in str(err.value) and "\n" not in str(err.value)
        assert not any(isinstance(m, FeedbackLayer) for m in model.modules())  # untouched
    with pytest.raises(ValueError, match="no module with a weight matrix"):
        alignlab.convert(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), "fa")


def test_ordinary_models_convert_without_warning():
    emb = nn.Sequential(nn.Embedding(10, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BatchNorm, LayerNorm, pooling, embeddings: no word
        for model in (MLP((6, 5, 3)), resnet20(num_classes=3), emb):  # resnet18: above
            alignlab.convert(model, "fa")


# ------------------------------------------------------------ option types (failure 11)

BAD_OPTIONS = [
    ("pfa", "expansion_ratio", "10"), ("pfa", "expansion_ratio", True),
    ("pfa", "expansion_ratio", None), ("pfa", "expansion_ratio", [10]),
    ("pfa-sparse", "expansion_ratio", "2"), ("pfa-sparse", "density", "0.5"),
    ("pfa-sparse", "density", True), ("pfa-sparse", "density", None),
    ("dfa", "output_size", "3"), ("dfa", "output_size", 2.5), ("dfa", "output_size", True),
    ("pfa", "store_D0", "yes"), ("pfa", "store_D0", None), ("pfa", "impl", 3),
    ("pfa", "state", None), ("pfa", "b_init", None), ("fa", "init", 1), ("kp", "init", None),
]


@pytest.mark.parametrize(("method", "option", "value"), BAD_OPTIONS)
def test_option_of_wrong_type_raises_one_line_at_construction(method, option, value):
    pattern = f"^`{option}` must be .*[,;] got {re.escape(repr(value))}\\.$"
    with pytest.raises(ValueError, match=pattern):
        alignlab.nn.get_method(method, **{option: value})  # the method itself refuses
    with pytest.raises(ValueError, match=pattern):
        alignlab.convert(MLP((4, 3)), method, **{option: value})
    with pytest.raises(ValueError, match=pattern):
        FeedbackLinear(3, 2, method=method, **{option: value})


def test_convert_flags_are_checked():
    with pytest.raises(ValueError, match="`inplace` must be True or False, got 'no'."):
        alignlab.convert(MLP((4, 3)), "fa", inplace="no")
    with pytest.raises(ValueError, match="`rng` must be None, an int >= 0"):
        alignlab.convert(MLP((4, 3)), "fa", rng="0")


# ------------------------------------------------------- the feedback state's memory

# every method, and the options that change what its state holds
STATE_VARIANTS = [(name, {}) for name in ALL] + [
    ("pfa", {"state": "factored"}), ("pfa", {"state": "factored", "store_D0": True}),
    ("pfa-o", {"state": "factored"}), ("pfa", {"expansion_ratio": 0.5}),
    ("kp", {"init": "weight"}), ("dfa", {"output_size": 7}),
]


def _conv_and_linear():
    return nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))


@pytest.mark.parametrize("method, options", STATE_VARIANTS,
                         ids=[f"{m}-{'-'.join(map(str, o.values()))}" for m, o in
                              STATE_VARIANTS])
def test_state_bytes_are_the_bytes_the_state_keeps(method, options):
    """Method.state_bytes (asked before anything is drawn, of the unconverted layers)
    gives exactly the bytes of the tensors init_state registers (state_names)."""
    model = _conv_and_linear()
    meth = alignlab.nn.get_method(method, **options).resolve(model)
    estimated = [meth.state_bytes(model[i])[0] for i in (0, 2)]
    net = alignlab.convert(model, method, rng=0, **options)
    kept = [sum(getattr(layer, n).nbytes for n in layer.method.state_names
                if getattr(layer, n, None) is not None) for layer in (net[0], net[2])]
    assert estimated == kept
    assert all(extra >= 0 for extra in (meth.state_bytes(model[i])[1] for i in (0, 2)))


@pytest.mark.parametrize("options", [{}, {"state": "factored"}], ids=["explicit", "factored"])
def test_expansion_ratio_too_large_for_memory_is_refused_in_one_line(options, monkeypatch):
    """r = 1e9 used to end in a raw allocation error; now one line naming the option,
    before anything is drawn or changed (the factored state keeps nothing of size n_mid
    but draws B and R_0 at that size: refused too)."""
    monkeypatch.delenv("ALIGNLAB_MEMORY_BUDGET", raising=False)
    model = MLP((784, 512, 10), rng=0)
    before = copy.deepcopy(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    gen_state = gen.get_state()
    with pytest.raises(ValueError) as err:
        alignlab.convert(model, "pfa", expansion_ratio=1e9, inplace=True, rng=gen, **options)
    msg = str(err.value)
    assert "\n" not in msg
    assert re.match(r"`expansion_ratio` must be small enough for the feedback state of "
                    r"'pfa' to fit in memory \([0-9.e+]+ bytes needed, budget [0-9.e+]+ "
                    r"bytes; set ALIGNLAB_MEMORY_BUDGET to change it\), got 1000000000.0\.$",
                    msg), msg
    assert not any(isinstance(m, FeedbackLayer) for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert torch.equal(gen.get_state(), gen_state)


def test_state_memory_budget_boundary(monkeypatch):
    """What is checked is the sum of the states kept plus the largest temporaries: a
    budget one byte short refuses, the exact amount converts; a method without a size
    option is refused naming the model."""
    model = MLP((30, 20, 10), rng=0)
    meth = alignlab.nn.get_method("pfa", expansion_ratio=3)
    sizes = [meth.state_bytes(layer) for layer in (model[1], model[3])]
    need = sum(k for k, _ in sizes) + max(e for _, e in sizes)
    monkeypatch.setenv("ALIGNLAB_MEMORY_BUDGET", str(need - 1))
    with pytest.raises(ValueError, match=r"^`expansion_ratio` must be small enough .* "
                                         r"got 3\.$"):
        alignlab.convert(model, "pfa", expansion_ratio=3)
    monkeypatch.setenv("ALIGNLAB_MEMORY_BUDGET", str(need))
    alignlab.convert(model, "pfa", expansion_ratio=3)
    monkeypatch.setenv("ALIGNLAB_MEMORY_BUDGET", "100")
    with pytest.raises(ValueError, match=r"^`model` must be small enough for the feedback "
                                         r"state of 'fa' to fit in memory .*\)\.$"):
        alignlab.convert(model, "fa")
    alignlab.convert(model, "bp")  # no state: nothing to refuse


@pytest.mark.parametrize("ratio, message", [
    (1e306, r"`expansion_ratio` must be small enough .* \(2\.6e\+308 bytes needed"),
    (1e308, r"`expansion_ratio` must give a finite width n_out \* r, got 1e\+308"),
])
def test_an_expansion_ratio_beyond_float_range_is_one_line(ratio, message):
    """Byte counts past float's range (an OverflowError formatting them) and widths past
    it (an OverflowError in mid_width) are refused in one line too."""
    with pytest.raises(ValueError, match=message) as err:
        alignlab.convert(MLP((4, 3, 2), rng=0), "pfa", expansion_ratio=ratio)
    assert "\n" not in str(err.value)


def test_train_refuses_an_expansion_ratio_too_large_for_memory(tmp_path, capsys,
                                                               monkeypatch):
    """The command line: `--set method.expansion_ratio=1e9` is refused in one line that
    names the config key, exit 2, nothing written (it was a raw allocation error)."""
    from alignlab.cli import main

    monkeypatch.delenv("ALIGNLAB_MEMORY_BUDGET", raising=False)
    from trainhelpers import write_config

    config = write_config(tmp_path / "tiny.toml", train={"epochs": 1})
    out = tmp_path / "run"
    code = main(["train", str(config), "--set", "method.name=pfa", "--set",
                 "method.expansion_ratio=1e9", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("alignlab: error: `method.expansion_ratio` must be small enough "
                          "for the feedback state of 'pfa' to fit in memory ("), err
    assert not out.exists()
