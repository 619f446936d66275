"""Ground-truth localisation benchmarks built from a labelled dataset, seeded.

* :func:`grid` — n×n grids of digits of distinct classes with one mask per cell (grid
  pointing game).
* :func:`cluttered` — one digit at a random position on a larger canvas with fragments of
  other-class digits as clutter, with the digit's pixel mask and box (localisation, COMET).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .bundled import load

Dataset = str | tuple[torch.Tensor, torch.Tensor]


class GridBenchmark(NamedTuple):
    """``images`` N×C×(n·h)×(n·w); ``labels`` N×n² class of each cell (row-major);
    ``masks`` N×n²×(n·h)×(n·w) bool, True exactly on that cell; ``index`` N×n² index of
    each cell's digit in the source dataset."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    index: torch.Tensor


class ClutteredBenchmark(NamedTuple):
    """``images`` N×C×canvas×canvas; ``labels`` N; ``masks`` N×1×canvas×canvas bool, True
    exactly on the digit's ink (pixels > 0; clutter never enters the digit's box);
    ``boxes`` N×4 (y0, x0, y1, x1), end-exclusive; ``index`` N digit index in the dataset."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    index: torch.Tensor


def _resolve(dataset: Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, str):
        return load(dataset, split=split)
    images, labels = dataset
    if images.dim() != 4 or len(images) != len(labels):
        raise ValueError("dataset must be (images N×C×H×W, labels N)")
    return images, labels.long()


def _draw_members(labels: torch.Tensor, classes: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For each entry of ``classes``, the index of a random dataset item of that class."""
    k = int(labels.max()) + 1
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    if (counts[classes] == 0).any():
        raise ValueError("the dataset has no example of a requested class")
    offset = (torch.rand(classes.shape, generator=g) * counts[classes]).long()
    return order[starts[classes] + offset.clamp_max(counts[classes] - 1)]


def grid(
    dataset: Dataset = "mnist", n: int = 2, count: int = 100, split: str = "test", seed: int = 0
) -> GridBenchmark:
    """``count`` n×n grids, each cell a digit of a different class (needs n² ≤ #classes)."""
    images, labels = _resolve(dataset, split)
    k = int(labels.max()) + 1
    if n < 1 or n * n > k:
        raise ValueError(f"n={n} needs n*n <= {k} distinct classes")
    g = torch.Generator().manual_seed(seed)
    cells = torch.argsort(torch.rand(count, k, generator=g), dim=1)[:, : n * n]
    index = _draw_members(labels, cells, g)
    c, h, w = images.shape[1:]
    tiles = images[index].view(count, n, n, c, h, w)
    out = tiles.permute(0, 3, 1, 4, 2, 5).reshape(count, c, n * h, n * w).contiguous()
    cell_of = (torch.arange(n).repeat_interleave(h)[:, None] * n
               + torch.arange(n).repeat_interleave(w)[None, :])
    masks = cell_of[None] == torch.arange(n * n)[:, None, None]
    return GridBenchmark(out, cells, masks.expand(count, -1, -1, -1).contiguous(), index)


def cluttered(
    dataset: Dataset = "mnist",
    canvas: int = 56,
    count: int = 100,
    split: str = "test",
    distractors: int = 4,
    fragment: int | None = None,
    seed: int = 0,
) -> ClutteredBenchmark:
    """``count`` canvases with one digit at a random position and ``distractors`` square
    fragments (side ``fragment``, default h // 3) of other-class digits around it.

    A fragment is placed only where it does not touch the digit's box (up to 64 tries; a
    fragment with no free spot is dropped), so the digit's mask is exact.
    """
    images, labels = _resolve(dataset, split)
    c, h, w = images.shape[1:]
    f = fragment or max(2, h // 3)
    if canvas < max(h, w) or f > min(h, w):
        raise ValueError(f"canvas {canvas} must hold the {h}×{w} digit and fragment {f}")
    g = torch.Generator().manual_seed(seed)
    k = int(labels.max()) + 1
    index = torch.randint(len(labels), (count,), generator=g)
    y0 = torch.randint(canvas - h + 1, (count,), generator=g)
    x0 = torch.randint(canvas - w + 1, (count,), generator=g)
    out = torch.zeros(count, canvas, canvas, c)
    rows_n = torch.arange(count)[:, None, None]
    for _ in range(distractors):
        other = (labels[index] + torch.randint(1, max(k, 2), (count,), generator=g)) % k
        src = images[_draw_members(labels, other, g)].permute(0, 2, 3, 1)
        sy = (h - f) // 4 + torch.randint((h - f) // 2 + 1, (count,), generator=g)  # central,
        sx = (w - f) // 4 + torch.randint((w - f) // 2 + 1, (count,), generator=g)  # inky crops
        ar = torch.arange(f)
        patch = src[rows_n, (sy[:, None] + ar)[:, :, None], (sx[:, None] + ar)[:, None, :]]
        cy = torch.randint(canvas - f + 1, (count, 64), generator=g)
        cx = torch.randint(canvas - f + 1, (count, 64), generator=g)
        free = ((cy + f <= y0[:, None]) | (cy >= y0[:, None] + h)
                | (cx + f <= x0[:, None]) | (cx >= x0[:, None] + w))
        pick = free.float().argmax(1, keepdim=True)
        py, px = cy.gather(1, pick)[:, 0], cx.gather(1, pick)[:, 0]
        patch = patch * free.any(1).view(-1, 1, 1, 1)
        ry, rx = (py[:, None] + ar)[:, :, None], (px[:, None] + ar)[:, None, :]
        out[rows_n, ry, rx] = torch.maximum(out[rows_n, ry, rx], patch)
    ry = (y0[:, None] + torch.arange(h))[:, :, None]
    rx = (x0[:, None] + torch.arange(w))[:, None, :]
    digit = images[index].permute(0, 2, 3, 1)
    out[rows_n, ry, rx] = digit
    ink = torch.zeros(count, canvas, canvas, dtype=torch.bool)
    ink[rows_n, ry, rx] = digit.amax(-1) > 0
    boxes = torch.stack([y0, x0, y0 + h, x0 + w], 1)
    return ClutteredBenchmark(
        out.permute(0, 3, 1, 2).contiguous(), labels[index], ink[:, None], boxes, index
    )
