"""File edges: reading images into tensors and writing outputs atomically."""

from __future__ import annotations

import io
import os
import tempfile
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    The file gets the permissions a plain ``open(path, "w")`` would (0o666 less the umask),
    not mkstemp's private 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npy(path: str | Path, array: np.ndarray | torch.Tensor) -> Path:
    """Save an array as ``.npy`` atomically."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    buffer = io.BytesIO()
    np.save(buffer, array)
    return atomic_write_bytes(path, buffer.getvalue())


def save_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Save an H×W×3 uint8 array as PNG atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
