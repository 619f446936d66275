"""The one chunking helper for "multiplied batches" (DESIGN.md §3).

Methods that multiply the batch (IG steps × samples, noise draws × samples, ...)
describe their work as ``total`` rows, each row belonging to one sample. Rows are
computed in chunks of at most ``batch_size`` and summed per sample in row order, so
memory is bounded by ``batch_size`` and the result does not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

DEFAULT_BATCH_SIZE = 32


def check_batch_size(batch_size: int | None) -> int | None:
    """Validate a ``batch_size`` budget (``None`` means everything in one chunk)."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    return batch_size


def chunks(total: int, batch_size: int | None) -> Iterator[torch.Tensor]:
    """Row indices ``0..total-1`` as LongTensors of at most ``batch_size`` rows."""
    step = total if batch_size is None else batch_size
    for start in range(0, total, max(step, 1)):
        yield torch.arange(start, min(start + step, total))


def sum_rows(
    total: int,
    n: int,
    batch_size: int | None,
    sample_of: Callable[[torch.Tensor], torch.Tensor],
    compute: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Σ over rows of ``compute(rows)``, grouped by sample: returns an ``n × ...`` tensor.

    ``sample_of(rows)`` maps row indices to sample indices; ``compute(rows)`` returns
    one value per row (``len(rows) × ...``). Rows are added in increasing order.
    """
    out: torch.Tensor | None = None
    for rows in chunks(total, batch_size):
        values = compute(rows)
        if out is None:
            out = values.new_zeros((n, *values.shape[1:]))
        out.index_add_(0, sample_of(rows).to(values.device), values)
    if out is None:
        raise ValueError("nothing to compute: total must be >= 1")
    return out


def map_rows(
    total: int, batch_size: int | None, compute: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``compute`` applied chunk by chunk over rows ``0..total-1``, concatenated."""
    return torch.cat([compute(rows) for rows in chunks(total, batch_size)], dim=0)
