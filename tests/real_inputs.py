"""Bundled real inputs for invariant checks (tests and benchmarks/bench_srd.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import faithmap as fm


def real_images(size: int, channels: int) -> torch.Tensor:
    """4 MNIST test digits, 2 LFW faces and, for RGB, 3 sample photos (astronaut, coffee,
    chelsea), resized to size×size in [0, 1]."""
    digits = fm.data.load("mnist", split="test")[0][::125]
    faces = fm.data.load("lfw_faces", split="test")[0][[0, 25]]
    grey = torch.cat([F.interpolate(t, size=size, mode="bilinear", align_corners=False)
                      for t in (digits, faces)]).clamp(0, 1)
    if channels == 1:
        return grey
    photos = fm.data.sample_images(size)
    return torch.cat([grey.repeat(1, 3, 1, 1),
                      torch.stack([photos[k] for k in ("astronaut", "coffee", "chelsea")])])
