"""Small zoo architectures. Each takes images in [0, 1]; its first module normalises them.

Each declares what methods may need through :mod:`faithmap.core.modules`: its
``feature_layer`` (the last convolutional stage) and its residual blocks as
:class:`~faithmap.core.modules.ResidualBlock`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..core.modules import Normalize, ResidualBlock

MNIST_STATS = ((0.1307,), (0.3081,))


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]


class VGG(nn.Module):
    """conv–ReLU(inplace)–maxpool stacks, then flatten and a fully connected head."""

    def __init__(self, widths: Sequence[int] = (16, 32), hidden: int = 64, in_size: int = 28,
                 in_channels: int = 1, num_classes: int = 10, stats=MNIST_STATS) -> None:
        super().__init__()
        self.normalize = Normalize(*stats)
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.feature_layer = f"features.{len(layers) - 1}"  # the last max-pool
        side = in_size // 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class BasicBlock(ResidualBlock):
    """Two 3×3 conv–BN with a residual add; one ReLU module is used twice (as torchvision)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, cout, 3, stride)
        self.conv2, self.bn2 = _conv_bn(cout, cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                           if stride != 1 or cin != cout else None)

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return identity, self.bn2(self.conv2(out))

    def merge(self, total: torch.Tensor) -> torch.Tensor:
        return self.relu(total)


class Bottleneck(ResidualBlock):
    """1×1 reduce, 3×3 (strided), 1×1 expand, each with BN; one ReLU module used thrice."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, mid, 1)
        self.conv2, self.bn2 = _conv_bn(mid, mid, 3, stride)
        self.conv3, self.bn3 = _conv_bn(mid, cout, 1)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(*_conv_bn(cin, cout, 1, stride))
                           if stride != 1 or cin != cout else None)

    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return identity, self.bn3(self.conv3(out))

    def merge(self, total: torch.Tensor) -> torch.Tensor:
        return self.relu(total)


class ResNet(nn.Module):
    """Stem conv–BN–ReLU (stride ``stem_stride``), residual stages, global average pool
    and a linear head."""

    def __init__(self, blocks: Sequence[nn.Module], width: int, out_features: int,
                 in_channels: int = 1, num_classes: int = 10, stats=MNIST_STATS,
                 stem_stride: int = 2) -> None:
        super().__init__()
        self.normalize = Normalize(*stats)
        self.stem = nn.Sequential(*_conv_bn(in_channels, width, 3, stem_stride),
                                  nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*blocks)
        self.feature_layer = "layers"  # the last residual stage
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(out_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.layers(self.stem(self.normalize(x))))
        return self.fc(torch.flatten(out, 1))


def resnet_basic(num_classes: int = 10) -> ResNet:
    """ResNet with BasicBlocks 16 → 32 (stride 2) → 64 (stride 2)."""
    blocks = [BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)]
    return ResNet(blocks, 16, 64, num_classes=num_classes)


def resnet_bottleneck(num_classes: int = 10) -> ResNet:
    """ResNet with Bottleneck blocks 16 → 32 → 64 (stride 2) → 128 (stride 2)."""
    blocks = [Bottleneck(16, 8, 32), Bottleneck(32, 16, 64, 2), Bottleneck(64, 32, 128, 2)]
    return ResNet(blocks, 16, 128, num_classes=num_classes)


class AllConv(nn.Module):
    """All-convolutional net (no pooling layers, no FC): strided convs, a 1×1 class conv
    and a global average pool, so it accepts inputs of any size ≥ 4×4."""

    def __init__(self, widths: Sequence[int] = (16, 32, 32, 64, 64, 64), in_channels: int = 1,
                 num_classes: int = 10, stats=MNIST_STATS) -> None:
        super().__init__()
        self.normalize = Normalize(*stats)
        strides = (1, 2, 1, 2, 1, 1)
        layers: list[nn.Module] = []
        cin = in_channels
        for width, stride in zip(widths, strides):
            layers += [nn.Conv2d(cin, width, 3, stride, 1), nn.ReLU(inplace=True)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.feature_layer = f"features.{len(layers) - 1}"  # the last ReLU before the head
        self.classifier = nn.Conv2d(cin, num_classes, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(self.features(self.normalize(x)))
        return torch.flatten(self.pool(out), 1)
