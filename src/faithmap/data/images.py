"""The one reader of image files: a file → C×H×W float tensor in [0, 1].

Every image file faithmap opens (``fm.data.image_folder``, ``fm.data.sample_images``,
``faithmap explain``, an image folder given to ``fm.evaluate``) goes through
:func:`read_image`, so all of them share one resize policy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SizeLike = int | tuple[int, int] | None


def output_size(size: SizeLike) -> tuple[int, int] | None:
    """``size`` as ``(H, W)`` (an int is a square), or ``None``; checks it is positive."""
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                               for s in hw):
        raise ValueError(f"size must be a positive int, (H, W) or None, got {size!r}")
    return hw  # type: ignore[return-value]


def read_image(path: str | Path, size: SizeLike = None, channels: int = 3) -> torch.Tensor:
    """An image file as a C×H×W float32 tensor in [0, 1].

    Resize policy (the only one in faithmap): ``size=None`` keeps the file's size; an int
    scales the shorter side to ``size`` (bilinear) and centre-crops a ``size``×``size``
    square; ``(H, W)`` scales the image by ``max(H/h, W/w)`` so it covers H×W, then
    centre-crops H×W — the aspect ratio is never changed. ``channels`` is 1 (grey) or 3
    (RGB; grey files are repeated). Raises ``OSError`` for a missing or unreadable file and
    ``ValueError`` for a file that is not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    target = output_size(size)
    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert("L" if channels == 1 else "RGB")
    except UnidentifiedImageError as exc:
        raise ValueError(f"not an image file: {path}") from exc
    if target is not None:
        img = _cover_and_crop(img, *target)
    array = np.asarray(img, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _cover_and_crop(img, height: int, width: int):
    """Scale ``img`` (PIL) to cover ``height``×``width``, then centre-crop exactly that."""
    from PIL import Image

    w, h = img.size
    scale = max(height / h, width / w)
    img = img.resize((max(width, round(w * scale)), max(height, round(h * scale))),
                     Image.BILINEAR)
    w, h = img.size
    left, top = (w - width) // 2, (h - height) // 2
    return img.crop((left, top, left + width, top + height))
