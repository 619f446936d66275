"""Device names as the CLI and ``fm.evaluate`` accept them: ``auto``, ``cpu``, ``cuda[:k]``."""

from __future__ import annotations

import torch


def resolve_device(device: str | None) -> torch.device | None:
    """``auto`` → CUDA when this process sees a GPU, else CPU; ``None`` stays ``None``."""
    if device is None:
        return None
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
