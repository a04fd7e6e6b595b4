"""Benchmark: one training step (forward + backward + SGD step) per method, relative to BP.

Models: the MLP 784-512-512-10 (batch 64) and the CIFAR ResNet-20 (batch 128, 32x32),
each converted with ``alignlab.convert``. PFA runs at expansion ratio 10 in its default
('auto': the cheaper form per layer), the cheap 'path' form, the literal recipe of
``pfa.md`` and the factored state of Proposition 1 (no ``R``; ``state='factored'``), all
in the same run. Steps are interleaved across methods (round robin) so
machine noise hits all of them alike; the table reports the median and the minimum
step time and their ratios to BP's (BP = the model converted with method 'bp', the
same autograd machinery as every method; the last column compares with the plain
torch model, whose built-in layers skip the custom Function). On a shared machine the
minimum is the steadier estimate of a step's intrinsic cost; the median includes
interference. Each row also says what was timed: the method and options of the model's
converted layers (``trained_by``, ``options``; ``torch.nn`` for the plain model), how many
layers (``n_layers``), how many steps (``steps``) and whether they moved the weights.

    python analysis/bench_layers.py                    # full run, CPU (and CUDA if present)
    python analysis/bench_layers.py --smoke            # tiny sizes, a few seconds (CI)
    python analysis/bench_layers.py --csv out.csv      # also write the table + config JSON
    python analysis/bench_layers.py --model mlp --steps 200   # one model, more steps
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import alignlab
from alignlab import Records
from alignlab.models import MLP, resnet20
from alignlab.nn import converted_layers, make_optimizer

# (label, method, options); method None: the plain torch model, not converted
METHODS = [
    ("bp", "bp", {}),
    ("torch.nn (plain BP)", None, {}),
    ("fa", "fa", {}),
    ("dfa", "dfa", {}),
    ("usf", "usf", {}),
    ("brsf", "brsf", {}),
    ("frsf", "frsf", {}),
    ("kp", "kp", {}),
    ("wm", "wm", {}),
    ("pfa r=10 (auto)", "pfa", {"expansion_ratio": 10}),
    ("pfa r=10 path", "pfa", {"expansion_ratio": 10, "impl": "path"}),
    ("pfa r=10 literal", "pfa", {"expansion_ratio": 10, "impl": "literal"}),
    ("pfa r=10 factored", "pfa", {"expansion_ratio": 10, "state": "factored"}),
    ("pfa-o", "pfa-o", {}),
    ("pfa-o factored", "pfa-o", {"state": "factored"}),
    ("pfa-id", "pfa-id", {}),
    ("pfa-id factored", "pfa-id", {"state": "factored"}),
    ("pfa-sparse r=10 d=0.5", "pfa-sparse", {"expansion_ratio": 10, "density": 0.5}),
]


@dataclass(frozen=True)
class Config:
    steps: int = 20  # timed steps per method (after warm-up)
    warmup: int = 3  # untimed steps per method
    mlp_batch: int = 64
    resnet_batch: int = 128
    image_size: int = 32
    mlp_sizes: tuple = (784, 512, 512, 10)
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    seed: int = 0
    models: tuple = ("mlp", "resnet20")  # which setups to run


def _setups(cfg: Config, device: torch.device):
    gen = torch.Generator().manual_seed(cfg.seed)
    if "mlp" in cfg.models:
        yield ("MLP 784-512-512-10" if cfg.mlp_sizes == (784, 512, 512, 10) else "MLP",
               MLP(cfg.mlp_sizes), torch.randn(cfg.mlp_batch, cfg.mlp_sizes[0], generator=gen),
               torch.randint(0, cfg.mlp_sizes[-1], (cfg.mlp_batch,), generator=gen))
    if "resnet20" in cfg.models:
        yield ("ResNet-20", resnet20(10),
               torch.randn(cfg.resnet_batch, 3, cfg.image_size, cfg.image_size, generator=gen),
               torch.randint(0, 10, (cfg.resnet_batch,), generator=gen))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _what_is_timed(model: torch.nn.Module, converted: bool) -> dict:
    """The methods, options and number of the model's converted layers (what a row times)."""
    layers = [layer for _, layer in converted_layers(model)]
    if not converted:
        return {"trained_by": "torch.nn", "options": "{}", "n_layers": len(layers)}
    methods = sorted({layer.method.name for layer in layers})
    options = sorted({json.dumps(layer.method.options(), sort_keys=True) for layer in layers})
    return {"trained_by": ",".join(methods), "options": ";".join(options),
            "n_layers": len(layers)}


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for n, p in model.named_parameters() if n.endswith("weight")]


def bench(cfg: Config, device: torch.device) -> list[dict]:
    rows = []
    for model_name, base, x, y in _setups(cfg, device):
        x, y = x.to(device), y.to(device)
        runs = []
        for label, method, options in METHODS:
            model = copy.deepcopy(base)
            if method is not None:
                model = alignlab.convert(model, method, inplace=True, rng=cfg.seed, **options)
            model.to(device).train()
            if method is None:
                opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=1e-4,
                                      momentum=0.9)
            else:
                opt = make_optimizer(model, "sgd", lr=0.01, weight_decay=1e-4, momentum=0.9)

            def step(model=model, opt=opt, x=x, y=y):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

            runs.append((label, step, [], model, _what_is_timed(model, method is not None)))
        for _ in range(cfg.warmup):
            for _, step, *_ in runs:
                step()
        before = [_weights(run[3]) for run in runs]
        for _ in range(cfg.steps):
            for _, step, times, *_ in runs:  # round robin: noise hits every method alike
                _sync(device)
                t0 = time.perf_counter()
                step()
                _sync(device)
                times.append(time.perf_counter() - t0)
        bp_median, bp_min = statistics.median(runs[0][2]), min(runs[0][2])
        torch_median = statistics.median(runs[1][2])
        for (label, _, times, model, timed), w0 in zip(runs, before, strict=True):
            med = statistics.median(times)
            q = statistics.quantiles(times, n=4)
            moved = any(not torch.equal(a, b) for a, b in zip(w0, _weights(model), strict=True))
            rows.append({"device": device.type, "model": model_name, "method": label,
                         **timed, "steps": len(times), "weights_moved": moved,
                         "median_ms": 1e3 * med, "iqr_ms": 1e3 * (q[2] - q[0]),
                         "min_ms": 1e3 * min(times), "ratio_median": med / bp_median,
                         "ratio_min": min(times) / bp_min,
                         "ratio_median_vs_torch": med / torch_median})
    return rows


def main(argv: list[str] | None = None) -> Records:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--model", choices=["mlp", "resnet20", "all"], default="all")
    parser.add_argument("--csv", type=Path, default=None, help="write the table (and config)")
    args = parser.parse_args(argv)
    cfg = Config(threads=args.threads)
    if args.smoke:
        cfg = Config(steps=2, warmup=1, mlp_batch=8, resnet_batch=2, image_size=4,
                     mlp_sizes=(32, 16, 16, 10), threads=args.threads)
    if args.steps is not None:
        cfg = Config(**{**asdict(cfg), "steps": args.steps})
    if args.model != "all":
        cfg = Config(**{**asdict(cfg), "models": (args.model,)})
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    rows = []
    for device in devices:
        rows += bench(cfg, device)
    rec = Records(rows)
    print(rec.format(3))
    if args.csv is not None:
        rec.to_csv(args.csv)
        meta = {"config": asdict(cfg), "torch": torch.__version__,
                "threads": torch.get_num_threads(), "machine": platform.platform(),
                "processor": platform.processor(),
                "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
        args.csv.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return rec


if __name__ == "__main__":
    main()
