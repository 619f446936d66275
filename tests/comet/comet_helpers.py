"""Tiny data and models for the COMET tests."""

from __future__ import annotations

import torch

from faithmap import comet

TINY = {"selector_widths": (4, 8), "predictor_widths": (4, 8), "batch_size": 8,
        "warmup_epochs": 1, "lr": 1e-2, "progress": False, "log": lambda s: None}


def tiny_data(n: int = 24, seed: int = 0, side: int = 12):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, side, side, generator=g) * 0.3
    y = torch.arange(n) % 3
    for i in range(n):  # class-dependent bright square: something to find
        r = int(y[i]) * 3
        x[i, 0, r:r + 3, r:r + 3] = 1.0
    return x, y


def tiny_detector(seed: int = 0) -> comet.SmallCNN:
    torch.manual_seed(seed)
    return comet.SmallCNN(1, 3, (4, 8)).eval()
