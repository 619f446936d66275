"""Seeds for stochastic methods: identical output for identical input (DESIGN.md §5).

Random draws are made per row, on the input's device, from a generator seeded by
``(seed, sample, draw)``, so they do not depend on ``batch_size``. CPU and CUDA use
different generators, so the same seed gives different (equally valid) draws on each.
"""

from __future__ import annotations

import torch

SeedLike = int | torch.Generator | None
_MIX = 0x9E3779B97F4A7C15
_MASK = (1 << 63) - 1


def base_seed(seed: SeedLike) -> int:
    """An int seed from an int, a ``torch.Generator`` (one draw) or ``None`` (fresh)."""
    if isinstance(seed, torch.Generator):
        return int(torch.randint(0, 2**62, (1,), generator=seed))
    if seed is None:
        return int(torch.randint(0, 2**62, (1,)))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return seed


def row_seed(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed for one (sample, draw, ...) key."""
    h = seed & _MASK
    for k in keys:
        h = ((h ^ (int(k) + 1)) * _MIX + 0x632BE59BD9B4E019) & _MASK
        h ^= h >> 29
    return h


def _draw_rows(
    draw, seed: int, keys: list[tuple[int, ...]], shape: tuple[int, ...], dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    g = torch.Generator(device=device)
    draws = []
    for key in keys:
        g.manual_seed(row_seed(seed, *key))
        draws.append(draw(shape, generator=g, device=device, dtype=torch.float32))
    return torch.stack(draws).to(dtype=dtype)


def randn_rows(
    seed: int, keys: list[tuple[int, ...]], shape: tuple[int, ...], dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Standard normal draws, one tensor of ``shape`` per key, stacked (drawn on ``device``)."""
    return _draw_rows(torch.randn, seed, keys, shape, dtype, device)


def rand_rows(
    seed: int, keys: list[tuple[int, ...]], shape: tuple[int, ...], dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Uniform draws in [0, 1), one tensor of ``shape`` per key, stacked (drawn on ``device``)."""
    return _draw_rows(torch.rand, seed, keys, shape, dtype, device)
