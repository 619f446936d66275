"""The one reader of image files: a file → C×H×W float tensor in [0, 1].

Every image file faithmap opens (``fm.data.image_folder``, ``fm.data.sample_images``,
``faithmap explain``, an image folder given to ``fm.evaluate``) goes through
:func:`read_image`, so all of them share one resize policy and one reading of bit depths.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

SizeLike = int | tuple[int, int] | None

# Pillow modes holding more than 8 bits per sample: 16-bit grey (PNG, TIFF), 32-bit int, float
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


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
    (RGB; grey files are repeated).

    Bit depths are read at their true range: 8-bit samples are divided by 255, 16-bit grey
    (PNG, TIFF) by 65535, 32-bit integer images by 65535 when their values fit 16 bits
    (else by 2³¹−1), float images are kept when they lie in [0, 1] and divided by their
    maximum otherwise; 16-bit colour PNGs are reduced to 8 bits by Pillow. Transparency
    (RGBA, grey+alpha, palettes with a transparent colour) is composited over white, as a
    viewer shows it; palettes are expanded. Raises ``OSError`` for a missing or unreadable
    file and ``ValueError`` for a file that is not an image, an image larger than Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``; the message names its
    size) or a float image with NaN/Inf values.
    """
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    target = output_size(size)
    try:
        with Image.open(path) as img:
            img.load()
            high_bit = img.mode in _HIGH_BIT_MODES
            if high_bit:
                grey = _high_bit_range(np.asarray(img), img.mode)
            else:
                img = _eight_bit(img, channels)
    except UnidentifiedImageError as exc:
        raise ValueError(f"not an image file: {path}") from exc
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large to read safely: {path} ({exc})") from exc
    except (SyntaxError, struct.error) as exc:  # some Pillow decoders raise these
        raise ValueError(f"corrupt image file: {path} ({exc})") from exc
    if high_bit:  # one grey plane at its true range, resized as a float image (mode F)
        if target is not None:
            grey = np.asarray(_cover_and_crop(Image.fromarray(grey), *target), dtype=np.float32)
        array = np.repeat(grey[:, :, None], channels, axis=2)
    else:
        if target is not None:
            img = _cover_and_crop(img, *target)
        array = np.asarray(img, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _eight_bit(img, channels: int):
    """An 8-bit PIL image as mode ``L`` or ``RGB``; transparency composited over white."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")


def _high_bit_range(values: np.ndarray, mode: str) -> np.ndarray:
    """Samples of a high-bit-depth image scaled to [0, 1] by their format's range."""
    if mode == "F":
        values = values.astype(np.float32)
        if not np.isfinite(values).all():
            raise ValueError("float image has NaN or Inf values")
        low, high = float(values.min()), float(values.max())
        if low >= 0.0 and high <= 1.0:
            return values
        if low >= 0.0:
            return values / high
        return (values - low) / (high - low) if high > low else np.zeros_like(values)
    values = values.astype(np.float64)  # 16-bit grey, or 32-bit int (mode "I")
    if mode == "I" and (values.min() < 0 or values.max() > 65535):
        return (np.clip(values, 0, None) / (2.0 ** 31 - 1)).astype(np.float32)
    return (values / 65535.0).astype(np.float32)


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
