"""Small models for tests (also importable by the CLI as ``tiny_models:tiny_cnn``)."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Conv–BN–ReLU(inplace)–maxpool, a residual block that reuses one ReLU, GAP + linear."""

    def __init__(self, in_channels: int = 3, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        y = self.relu(self.conv2(x))
        x = self.relu(self.conv3(y) + x)
        return self.head(x.mean(dim=(2, 3)))


def tiny_cnn(in_channels: int = 3, classes: int = 5, seed: int = 0) -> nn.Module:
    """A seeded, eval-mode :class:`TinyCNN` with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = TinyCNN(in_channels, classes)
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.2, 0.2)
        model.bn1.running_var.uniform_(0.5, 1.5)
    return model.eval()
