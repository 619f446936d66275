"""The one reader of image files: a file → C×H×W float tensor in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def read_image(path: str | Path, size: int | None = None, channels: int = 3) -> torch.Tensor:
    """An image file as a C×H×W float tensor in [0, 1].

    ``size`` resizes the shorter side to ``size`` and centre-crops a square;
    ``channels`` is 1 (grey) or 3 (RGB). Raises ``OSError``/``ValueError`` for
    unreadable or non-image files.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if channels == 1 else "RGB")
    except UnidentifiedImageError as exc:
        raise ValueError(f"not an image file: {path}") from exc
    if size is not None:
        w, h = img.size
        scale = size / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                         Image.BILINEAR)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        img = img.crop((left, top, left + size, top + size))
    array = np.asarray(img, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
