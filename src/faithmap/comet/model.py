"""``ComprehensiveAttributionModel``: COMET's selector + predictor, and checkpoint files.

Inference (Zhang, Lee, Wang, ECCV 2024): m = σ(S(x)); prediction = f_P(m⊙x + (1−m)⊙q)
with the soft mask; explanation = m. The detector is used only in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import InvalidInputError
from .objective import select
from .predictor import SmallCNN
from .selector import build_selector

WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = 1


def build_classifier(config: dict[str, Any]) -> SmallCNN:
    """A :class:`SmallCNN` from a checkpoint's ``config``."""
    return SmallCNN(config["in_channels"], config["num_classes"],
                    tuple(config["predictor_widths"]), config["mean"], config["std"],
                    config.get("stem_stride", 2))


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
                                "selector": _state(self.selector, half),
                                "predictor": _state(self.predictor, half), "card": card or {}})

    @classmethod
    def load(cls, source: str | Path) -> ComprehensiveAttributionModel:
        """A model (eval mode) from a checkpoint path or a shipped name (:func:`shipped`)."""
        ckpt = read_checkpoint(source, "comet")
        model = cls(ckpt["config"])
        _load(model.selector, ckpt["selector"])
        _load(model.predictor, ckpt["predictor"])
        return model.eval()


def _state(module: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
            for k, v in module.state_dict().items()}


def _load(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = module.state_dict()
    module.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()},
                           strict=True)


def shipped() -> list[str]:
    """Names of the checkpoints shipped in ``faithmap/comet/weights``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt"))


def resolve(source: str | Path) -> Path:
    """A checkpoint path from a path or a shipped name."""
    path = Path(source)
    if path.is_file():
        return path
    named = WEIGHTS_DIR / f"{source}.pt"
    if named.is_file():
        return named
    raise FileNotFoundError(f"no COMET checkpoint {str(source)!r}: not a file and not a "
                            f"shipped name ({', '.join(shipped()) or 'none shipped'})")


def write_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` through a temporary file, so a crash never leaves half a file."""
    import io

    from ..io import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_checkpoint(source: str | Path, kind: str) -> dict:
    """Load a checkpoint dict and check its ``kind``."""
    path = resolve(source)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        found = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a COMET {kind} checkpoint (kind={found!r})")
    return ckpt


def save_classifier(path: str | Path, model: SmallCNN, config: dict, half: bool = False,
                    card: dict | None = None) -> None:
    """Write a plain classifier (the black box / detector) checkpoint."""
    write_checkpoint(path, {"format": FORMAT, "kind": "classifier", "config": config,
                            "state": _state(model, half), "card": card or {}})


def load_classifier(source: str | Path) -> SmallCNN:
    """A classifier checkpoint (path or shipped name, e.g. ``"cluttered_blackbox"``), eval."""
    ckpt = read_checkpoint(source, "classifier")
    model = build_classifier(ckpt["config"])
    _load(model, ckpt["state"])
    return model.eval()
