"""Seeds for stochastic methods: identical output for identical input (DESIGN.md §5).

Random draws are made on the input's device, from a generator seeded by
``(seed, sample, draw)``, so they do not depend on ``batch_size``. CPU and CUDA use
different generators, so the same seed gives different (equally valid) draws on each.
:func:`randn_rows` / :func:`rand_rows` make one generator call per row; methods that draw
many rows (SmoothGrad, VarGrad, NeFLAG, DANCE) use :class:`BlockDraws`, one generator call
per block of :data:`BLOCK` draws of a sample.

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


#: Draws per block: the draws ``b·BLOCK … (b+1)·BLOCK − 1`` of one sample come from one
#: generator call seeded by ``(seed, sample, stream, b)`` (:class:`BlockDraws`). A constant,
#: so the draws do not depend on ``batch_size``.
BLOCK = 8
_BLOCK_TAG = 0x5EED_B10C  # keeps block keys apart from the per-row keys of row_seed


class BlockDraws:
    """Seeded draws for rows ``(sample, draw)``, made in vectorised blocks.

    The draws of one sample are cut into blocks of :data:`BLOCK` consecutive draw indices;
    block ``b`` of sample ``i`` is ONE generator call ``randn(k, *shape)`` (or ``rand``;
    k = BLOCK, or with ``per_sample`` — the number of draws of every sample — the draws left
    in the sample's last block), seeded by ``row_seed(seed, *sample_key(i), tag, stream, b)``,
    and draw ``d`` is its row ``d % BLOCK``. A row's value depends only on (seed, sample key,
    stream, draw, per_sample), never on which rows are asked for together, so chunking
    (``batch_size``) does not change it. The blocks of the previous call are kept, so rows
    asked for in increasing order (one chunk after another) draw every block once; memory:
    the asked rows + at most the blocks of one call. Drawn in float32 on ``device`` with that
    device's generator (CPU: Mersenne Twister, CUDA: Philox), so a seed gives the same values
    on every CUDA device but other (equally valid) values than on the CPU — drawn where the
    work runs, so a GPU pays no host-side drawing or copy; then cast to ``dtype``.
    ``stream`` separates independent kinds of draws of one method (e.g. a fallback axis).
    """

    def __init__(self, seed: int, shape: tuple[int, ...], dtype: torch.dtype,
                 device: torch.device | str, kind: str = "normal", stream: int = 0,
                 per_sample: int | None = None) -> None:
        if kind not in ("normal", "uniform"):
            raise ValueError(f"kind must be 'normal' or 'uniform', got {kind!r}")
        if per_sample is not None and (isinstance(per_sample, bool) or per_sample < 1):
            raise ValueError(f"per_sample must be a positive int or None, got {per_sample!r}")
        self.seed, self.shape, self.dtype = int(seed), tuple(shape), dtype
        self.device = torch.device(device)
        self.draw = torch.randn if kind == "normal" else torch.rand
        self.stream, self.per_sample = int(stream), per_sample
        self._generator = torch.Generator(device=self.device)
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}
        self.blocks_drawn = 0

    def _block(self, key: tuple[int, ...], size: int) -> torch.Tensor:
        g = self._generator
        g.manual_seed(row_seed(self.seed, *key))
        self.blocks_drawn += 1
        return self.draw((size, *self.shape), generator=g, device=self.device,
                         dtype=torch.float32)

    def __call__(self, samples: Sequence[int] | torch.Tensor,
                 draws: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The draws of rows ``(samples[j], draws[j])``, stacked: len × ``shape``."""
        samples, draws = _as_list(samples), _as_list(draws)
        if len(samples) != len(draws):
            raise ValueError("samples and draws must have one entry per row")
        # runs of consecutive rows that read consecutive rows of one block
        runs: list[tuple[tuple[int, ...], int, int]] = []  # (block key, first offset, count)
        sizes: dict[tuple[int, ...], int] = {}
        for s, d in zip(samples, draws):
            if d < 0 or (self.per_sample is not None and d >= self.per_sample):
                raise ValueError(f"draw indices must be in [0, per_sample), got {d}")
            b, o = divmod(d, BLOCK)
            key = (*sample_key(s), _BLOCK_TAG, self.stream, b)
            if runs and runs[-1][0] == key and runs[-1][1] + runs[-1][2] == o:
                runs[-1] = (key, runs[-1][1], runs[-1][2] + 1)
            else:
                runs.append((key, o, 1))
            if key not in sizes:
                sizes[key] = BLOCK if self.per_sample is None else min(
                    BLOCK, self.per_sample - b * BLOCK)
        cache = {key: self._cache[key] if key in self._cache else self._block(key, size)
                 for key, size in sizes.items()}
        self._cache = cache
        pieces = [cache[key][o:o + k] for key, o, k in runs]
        if not pieces:
            return torch.empty((0, *self.shape), dtype=self.dtype, device=self.device)
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return out.to(dtype=self.dtype, copy=len(pieces) == 1)


def randn_blocks(seed: int, samples: Sequence[int] | torch.Tensor,
                 draws: Sequence[int] | torch.Tensor, shape: tuple[int, ...],
                 dtype: torch.dtype, device: torch.device, stream: int = 0,
                 per_sample: int | None = None) -> torch.Tensor:
    """Standard normal draws of rows ``(samples[j], draws[j])`` (one call of
    :class:`BlockDraws`; keep a ``BlockDraws`` across chunks to draw each block once)."""
    return BlockDraws(seed, shape, dtype, device, "normal", stream, per_sample)(samples, draws)
