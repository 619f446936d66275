"""Seeds for stochastic methods: identical output for identical input (DESIGN.md §5).

Random draws are made per row, on the input's device, from a generator seeded by
``(seed, sample, draw)``, so they do not depend on ``batch_size``. CPU and CUDA use
different generators, so the same seed gives different (equally valid) draws on each.

A key's first element is the sample's row in the current call. A caller that runs a dataset
in blocks (``fm.evaluate``) wraps each block in :func:`sample_keys` with the samples' global
indices, so a sample's draws depend on the seed and its index, not on its block. Code that
explains a multiplied batch (copies of samples, e.g. max-sensitivity's noisy copies) wraps
that call in :func:`derived_rows` so the copies' draws stay tied to their samples.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

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


Prefix = tuple[int, ...]
_PREFIXES: contextvars.ContextVar[tuple[Prefix, ...] | None] = contextvars.ContextVar(
    "faithmap_sample_prefixes", default=None)


@contextlib.contextmanager
def sample_keys(indices: Sequence[int] | torch.Tensor) -> Iterator[None]:
    """Within the block, row ``i`` of a call is global sample ``indices[i]``: a draw keyed
    ``(i, d, ...)`` uses ``(indices[i], d, ...)``. Rows beyond ``len(indices)`` (undeclared
    multiplied batches) keep their own keys."""
    token = _PREFIXES.set(tuple((int(i),) for i in _as_list(indices)))
    try:
        yield
    finally:
        _PREFIXES.reset(token)


@contextlib.contextmanager
def derived_rows(samples: Sequence[int] | torch.Tensor,
                 draws: Sequence[int] | torch.Tensor) -> Iterator[None]:
    """Row ``j`` of the calls inside is draw ``draws[j]`` of (current) row ``samples[j]``:
    its keys become ``(*prefix(samples[j]), draws[j], ...)``. A no-op outside
    :func:`sample_keys`, so ordinary calls keep their keys."""
    outer = _PREFIXES.get()
    if outer is None:
        yield
        return
    token = _PREFIXES.set(tuple((*sample_key(s), d)
                                for s, d in zip(_as_list(samples), _as_list(draws))))
    try:
        yield
    finally:
        _PREFIXES.reset(token)


def sample_key(row: int) -> Prefix:
    """The key prefix of ``row``: ``(row,)``, or its global sample key inside
    :func:`sample_keys` / :func:`derived_rows`."""
    prefixes = _PREFIXES.get()
    row = int(row)
    if prefixes is None or not 0 <= row < len(prefixes):
        return (row,)
    return prefixes[row]


def _as_list(values: Sequence[int] | torch.Tensor) -> list[int]:
    return values.tolist() if isinstance(values, torch.Tensor) else [int(v) for v in values]


def _draw_rows(
    draw, seed: int, keys: list[tuple[int, ...]], shape: tuple[int, ...], dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    g = torch.Generator(device=device)
    draws = []
    for key in keys:
        if key:
            key = (*sample_key(key[0]), *key[1:])
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
