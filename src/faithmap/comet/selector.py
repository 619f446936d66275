"""COMET's selector S: image → one-channel mask logits at input resolution.

m = σ(S(x)) ∈ (0, 1), N×1×H×W (Zhang, Lee, Wang, ECCV 2024, arXiv 2407.19308). Small
images use a small U-Net [reference code: a U-Net for small inputs]; large images can use
torchvision's LR-ASPP MobileNetV3 head [reference code], always randomly initialised here
(no weight downloads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )


class UNetSelector(nn.Module):
    """A small U-Net: ``len(widths)`` levels (max-pool down, bilinear up, skip concat), a
    1×1 head to one logit per pixel. Any H, W (skips are resized to match). ``scale`` > 1
    runs it on the input average-pooled by ``scale`` and upsamples the logits bilinearly
    (cheaper; masks stay smooth at input resolution)."""

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (8, 16, 32),
                 scale: int = 1) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.scale = scale
        if len(widths) < 2:
            raise ValueError(f"a U-Net needs at least two levels, got widths={widths}")
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_block(cin, w))
            cin = w
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i])
                                for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = F.avg_pool2d(x, self.scale, ceil_mode=True) if self.scale > 1 else x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1))
        out = self.head(h)
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return out


class LRASPPSelector(nn.Module):
    """torchvision's LR-ASPP MobileNetV3-Large with one output class, random init.

    Grey inputs are repeated to three channels; the output is upsampled to H×W by
    torchvision's own head."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        if in_channels not in (1, 3):
            raise ValueError(f"the LR-ASPP selector takes 1 or 3 channels, got {in_channels}")
        self.in_channels = in_channels
        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x)["out"]


def build_selector(kind: str, in_channels: int, widths: tuple[int, ...] = (8, 16, 32),
                   scale: int = 1) -> nn.Module:
    """``"unet"`` (small images; ``scale``: see :class:`UNetSelector`) or ``"lraspp"``."""
    if kind == "unet":
        return UNetSelector(in_channels, tuple(widths), scale)
    if kind == "lraspp":
        return LRASPPSelector(in_channels)
    raise ValueError(f"selector must be 'unet' or 'lraspp', got {kind!r}")
