"""Checkpoint files of the zoo's trained models beyond the named zoo classifiers (COMET,
its black-box detector and variants): one dict per file with a ``kind``, written
atomically, read by path or by the name of a file shipped in ``faithmap/zoo/weights``.

Plain classifier checkpoints (``kind="classifier"``) hold a :class:`SmallCNN`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.files import atomic_write_bytes
from .small_cnn import SmallCNN

WEIGHTS_DIR = Path(__file__).parent / "weights"
FORMAT = 1


def shipped() -> list[str]:
    """Names of the checkpoints shipped in ``faithmap/zoo/weights`` (COMET, its detector and
    variants; each has a card with a ``variant``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt")
                  if "variant" in _card(p.with_suffix(".json")))


def _card(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def resolve(source: str | Path) -> Path:
    """A checkpoint path from a path or a shipped name."""
    path = Path(source)
    if path.is_file():
        return path
    named = WEIGHTS_DIR / f"{source}.pt"
    if named.is_file() and str(source) in shipped():
        return named
    raise FileNotFoundError(f"no COMET checkpoint {str(source)!r}: not a file and not a "
                            f"shipped name ({', '.join(shipped()) or 'none shipped'})")


def write_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` through a temporary file, so a crash never leaves half a file."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_checkpoint(source: str | Path, kind: str) -> dict:
    """Load a checkpoint dict and check its ``kind``."""
    path = resolve(source)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        found = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} is not a COMET {kind} checkpoint (kind={found!r})")
    return ckpt


def state_of(module: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    """A CPU copy of ``module``'s state dict (float16 when ``half``)."""
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
            for k, v in module.state_dict().items()}


def load_into(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly, cast to the module's own dtypes."""
    own = module.state_dict()
    module.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()},
                           strict=True)


def build_classifier(config: dict[str, Any]) -> SmallCNN:
    """A :class:`SmallCNN` from a checkpoint's ``config``."""
    return SmallCNN(config["in_channels"], config["num_classes"],
                    tuple(config["predictor_widths"]), config["mean"], config["std"],
                    config.get("stem_stride", 2))


def save_classifier(path: str | Path, model: SmallCNN, config: dict, half: bool = False,
                    card: dict | None = None) -> None:
    """Write a plain classifier (the black box / detector) checkpoint."""
    write_checkpoint(path, {"format": FORMAT, "kind": "classifier", "config": config,
                            "state": state_of(model, half), "card": card or {}})


def load_classifier(source: str | Path) -> SmallCNN:
    """A classifier checkpoint (path or shipped name, e.g. ``"cluttered_blackbox"``), eval."""
    ckpt = read_checkpoint(source, "classifier")
    model = build_classifier(ckpt["config"])
    load_into(model, ckpt["state"])
    return model.eval()
