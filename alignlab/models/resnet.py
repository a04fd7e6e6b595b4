"""ResNets: the CIFAR ResNet-20 (option-A shortcuts) and a torchvision-style ResNet.

Plain ``torch.nn`` models (no alignlab layers): convert them with ``alignlab.convert``.
The torchvision-style ResNet mirrors ``torchvision.models.resnet`` (BasicBlock, 1x1
conv + BN downsample, 7x7 stem and max-pool) so conversion can be tested without
torchvision.

Initial weights come from ``rng``: ``None`` (torch's global generator), an int seed or a
``torch.Generator``; every convolution and linear layer draws torch's own initialisation
as it is built, then the model's (``_init.py``), so ``resnet20(rng=s)`` has the parameters
of ``torch.manual_seed(s); resnet20()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._rng import torch_generator
from .._validate import check_int
from ._init import conv2d, linear

__all__ = ["BasicBlock", "CifarResNet", "ResNet", "resnet18", "resnet20", "resnet34"]


# ------------------------------------------------------------------- CIFAR ResNet-20


class ShortcutA(nn.Module):
    """Option-A shortcut (He et al. 2016): subsample by 2 and zero-pad the new channels."""

    def __init__(self, planes: int):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class CifarBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1, *,
                 rng: int | torch.Generator | None = None):
        super().__init__()
        gen = torch_generator(rng)
        self.conv1 = conv2d(in_planes, planes, 3, stride, 1, bias=False, generator=gen)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv2d(planes, planes, 3, 1, 1, bias=False, generator=gen)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = ShortcutA(planes)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs: 3 stages of ``n`` blocks (16, 32, 64 channels), depth 6n+2."""

    def __init__(self, n: int = 3, num_classes: int = 10, in_channels: int = 3, *,
                 rng: int | torch.Generator | None = None):
        super().__init__()
        n = check_int("n", n)
        num_classes = check_int("num_classes", num_classes)
        in_channels = check_int("in_channels", in_channels)
        gen = torch_generator(rng)
        self.conv1 = conv2d(in_channels, 16, 3, 1, 1, bias=False, generator=gen)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(CifarBlock(in_planes, planes, stride if i == 0 else 1, rng=gen))
                in_planes = planes
        self.layers = nn.Sequential(*blocks)
        self.fc = linear(64, num_classes, gen)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, generator=gen)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet20(num_classes: int = 10, in_channels: int = 3, *,
             rng: int | torch.Generator | None = None) -> CifarResNet:
    """CIFAR ResNet-20 (option-A shortcuts, BatchNorm), 0.27 M parameters."""
    return CifarResNet(3, num_classes, in_channels, rng=rng)


# --------------------------------------------------------- torchvision-style ResNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, *,
                 rng: int | torch.Generator | None = None):
        super().__init__()
        gen = torch_generator(rng)
        self.conv1 = conv2d(inplanes, planes, 3, stride, 1, bias=False, generator=gen)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv2d(planes, planes, 3, 1, 1, bias=False, generator=gen)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ResNet layout (BasicBlock only): names match ``torchvision.models``."""

    def __init__(self, block: type[BasicBlock], layers: Sequence[int], num_classes: int = 1000,
                 in_channels: int = 3, *, rng: int | torch.Generator | None = None):
        super().__init__()
        num_classes = check_int("num_classes", num_classes)
        in_channels = check_int("in_channels", in_channels)
        gen = torch_generator(rng)
        self.inplanes = 64
        self.conv1 = conv2d(in_channels, 64, 7, 2, 3, bias=False, generator=gen)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1, gen)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, gen)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, gen)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, gen)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = linear(512 * block.expansion, num_classes, gen)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu",
                                        generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1,
                    gen: torch.Generator | None = None) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False,
                       generator=gen),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, rng=gen)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, rng=gen) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, *,
             rng: int | torch.Generator | None = None) -> ResNet:
    """torchvision-style ResNet-18."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, rng=rng)


def resnet34(num_classes: int = 1000, in_channels: int = 3, *,
             rng: int | torch.Generator | None = None) -> ResNet:
    """torchvision-style ResNet-34."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, in_channels, rng=rng)
