"""Load a folder of user images into one batch; unreadable files are skipped by name."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class ImageFolderResult(NamedTuple):
    """``images`` N×C×H×W float32; ``paths`` of the N loaded files (same order);
    ``skipped`` as ``(path, reason)`` for every file that could not be used."""

    images: torch.Tensor
    paths: list[Path]
    skipped: list[tuple[Path, str]]


def _normalizer(normalize: bool | str | tuple | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    if normalize in (None, False):
        return None
    if normalize is True or normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    elif isinstance(normalize, Sequence) and len(normalize) == 2:
        mean, std = normalize
    else:
        raise ValueError(f"normalize must be None, 'imagenet' or (mean, std), got {normalize!r}")
    return torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)


def image_folder(
    path: str | Path,
    size: int | tuple[int, int] | None = 224,
    normalize: bool | str | tuple | None = None,
    mode: str = "RGB",
    recursive: bool = False,
) -> ImageFolderResult:
    """Read every image file in ``path`` (sorted by name) as one batch.

    Images are converted to ``mode`` ("RGB" or "L"), resized to ``size`` (int or (H, W);
    ``None`` keeps the size of the first image and skips images of another size) and scaled
    to [0, 1]. ``normalize`` (``"imagenet"`` or ``(mean, std)``) then standardises them —
    zoo models normalise internally, so leave it ``None`` for them. A file that cannot be
    read is reported in a warning, listed in ``skipped`` and never stops the batch.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {root} does not exist or is not a directory")
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and p.suffix.lower() in EXTENSIONS)
    target = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    arrays, loaded, skipped = [], [], []
    for file in files:
        try:
            with Image.open(file) as img:
                img = img.convert(mode)
                if target is not None:
                    img = img.resize((target[1], target[0]), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.float32) / 255.0
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped by name
            skipped.append((file, f"{type(err).__name__}: {err}"))
            continue
        if arrays and arr.shape != arrays[0].shape:
            skipped.append((file, f"size {arr.shape[:2]} differs from {arrays[0].shape[:2]}"))
            continue
        arrays.append(arr)
        loaded.append(file)
    if skipped:
        names = ", ".join(f"{p.name} ({why})" for p, why in skipped)
        warnings.warn(f"image_folder skipped {len(skipped)} file(s): {names}", stacklevel=2)
    channels = 1 if mode == "L" else len(mode)
    if arrays:
        images = torch.from_numpy(np.stack(arrays)).reshape(len(arrays), *arrays[0].shape[:2], -1)
        images = images.permute(0, 3, 1, 2).contiguous()
    else:
        h, w = target if target is not None else (0, 0)
        images = torch.zeros(0, channels, h, w)
    stats = _normalizer(normalize)
    if stats is not None:
        images = (images - stats[0]) / stats[1]
    return ImageFolderResult(images, loaded, skipped)
