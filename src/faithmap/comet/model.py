"""``ComprehensiveAttributionModel``: COMET's selector + predictor (its checkpoint files:
:mod:`faithmap.zoo.checkpoints`).

Inference (Zhang, Lee, Wang, ECCV 2024): m = σ(S(x)); prediction = f_P(m⊙x + (1−m)⊙q)
with the soft mask; explanation = m. The detector is used only in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import InvalidInputError
from ..zoo.checkpoints import (
    FORMAT,
    build_classifier,
    load_into,
    read_checkpoint,
    state_of,
    write_checkpoint,
)
from .objective import select
from .selector import build_selector


class ComprehensiveAttributionModel(nn.Module):
    """``forward(x)`` = f_P(x_s) logits; ``explain(x)`` = the mask m ∈ (0, 1), N×1×H×W.

    ``config`` holds what rebuilds the networks (selector kind and widths, predictor
    widths, channels, classes, normalisation) plus ``fill`` q and the training facts.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        self.selector = build_selector(config["selector"], config["in_channels"],
                                       tuple(config.get("selector_widths", (8, 16, 32))),
                                       config.get("selector_scale", 2))
        self.predictor = build_classifier(config)
        self.fill = float(config["fill"])

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise InvalidInputError(
                f"COMET takes a batch N×C×H×W, got {getattr(x, 'shape', type(x).__name__)}")
        if x.shape[1] != self.config["in_channels"]:
            raise InvalidInputError(f"this COMET model takes {self.config['in_channels']} "
                                    f"channel(s), got {x.shape[1]}")

    def mask_logits(self, x: torch.Tensor) -> torch.Tensor:
        """S(x), N×1×H×W."""
        self._check(x)
        return self.selector(x)

    def explain(self, x: torch.Tensor) -> torch.Tensor:
        """m = σ(S(x)) ∈ (0, 1), N×1×H×W."""
        return torch.sigmoid(self.mask_logits(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f_P(m⊙x + (1−m)⊙q): the predictor's logits on the selected input."""
        return self.predictor(select(x, self.explain(x), self.fill))

    def save(self, path: str | Path, half: bool = False, card: dict | None = None) -> None:
        """Write ``{"format", "kind": "comet", "config", "selector", "predictor"}``;
        ``half`` stores float16 tensors (shipping)."""
        write_checkpoint(path, {"format": FORMAT, "kind": "comet", "config": self.config,
                                "selector": state_of(self.selector, half),
                                "predictor": state_of(self.predictor, half), "card": card or {}})

    @classmethod
    def load(cls, source: str | Path) -> ComprehensiveAttributionModel:
        """A model (eval mode) from a checkpoint path or a shipped name (:func:`shipped`)."""
        ckpt = read_checkpoint(source, "comet")
        model = cls(ckpt["config"])
        load_into(model.selector, ckpt["selector"])
        load_into(model.predictor, ckpt["predictor"])
        return model.eval()
