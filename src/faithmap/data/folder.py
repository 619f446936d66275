"""Load a folder of user images into one batch; unreadable files are skipped by name."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from .images import SizeLike, output_size, read_image

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
    size: SizeLike = 224,
    normalize: bool | str | tuple | None = None,
    mode: str = "RGB",
    recursive: bool = False,
) -> ImageFolderResult:
    """Read every image file in ``path`` (sorted by name) as one batch.

    Each file is read by :func:`faithmap.data.images.read_image` in ``mode`` ("RGB" or
    "L") and scaled to [0, 1]; its resize policy applies: an int ``size`` scales the shorter
    side and centre-crops a square, ``(H, W)`` scales to cover H×W and centre-crops,
    ``None`` keeps the size of the first image and skips images of another size.
    ``normalize`` (``"imagenet"`` or ``(mean, std)``) then standardises them — zoo models
    normalise internally, so leave it ``None`` for them. A file that cannot be read is
    reported in a warning, listed in ``skipped`` and never stops the batch.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {root} does not exist or is not a directory")
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    target = output_size(size)
    channels = 1 if mode == "L" else 3
    files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                   if p.is_file() and p.suffix.lower() in EXTENSIONS)
    images, loaded, skipped = [], [], []
    for file in files:
        try:
            image = read_image(file, target, channels)
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped by name
            skipped.append((file, f"{type(err).__name__}: {err}"))
            continue
        if images and image.shape != images[0].shape:
            skipped.append((file, f"size {tuple(image.shape[1:])} differs from "
                                  f"{tuple(images[0].shape[1:])}"))
            continue
        images.append(image)
        loaded.append(file)
    if skipped:
        names = ", ".join(f"{p.name} ({why})" for p, why in skipped)
        warnings.warn(f"image_folder skipped {len(skipped)} file(s): {names}", stacklevel=2)
    if images:
        batch = torch.stack(images)
    else:
        h, w = target if target is not None else (0, 0)
        batch = torch.zeros(0, channels, h, w)
    stats = _normalizer(normalize)
    if stats is not None:
        batch = (batch - stats[0]) / stats[1]
    return ImageFolderResult(batch, loaded, skipped)
