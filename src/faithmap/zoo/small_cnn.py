"""SmallCNN: the classifier COMET uses as its predictor f_P and its black-box detector f_D.

Images in [0, 1]; the first module normalises them, so the fill value q (the data mean)
is 0 in normalised space. Strided 3×3 convs with BatchNorm, global average pooling and a
linear head: any input size works.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.modules import Normalize


class SmallCNN(nn.Module):
    """conv3×3–BN–ReLU stages (the first at ``stem_stride``, the others at stride 2), GAP,
    linear."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32, 64), mean: float = 0.1307,
                 std: float = 0.3081, stem_stride: int = 2) -> None:
        super().__init__()
        self.widths, self.mean_std = tuple(widths), (float(mean), float(std))
        self.stem_stride = stem_stride
        self.normalize = Normalize([mean] * in_channels, [std] * in_channels)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, stem_stride if i == 0 else 2, 1, bias=False),
                       nn.BatchNorm2d(w), nn.ReLU(),
                       nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(self.normalize(x))), 1))
