"""One perturbation curve per sample and setting, shared by every metric that needs it.

Deletion, insertion, insertion−deletion, pixel flipping, LeRF/MoRF and the report's curves
all reduce to the same computation: the target score of ``x`` with its first-ranked pixels
removed (or inserted) ``step`` at a time. Inside ``with shared_curves():`` each such curve is
computed once per (model, sample, pixel ranks, target, substrate, step, score, mode) and
reused by every later call that asks for it — for one sample or a whole batch, in any
order::

    with fm.metrics.shared_curves() as store:
        d = fm.metrics.deletion(model, x, a, y)            # N·(T+1) forward rows
        g = fm.metrics.insertion_deletion(model, x, a, y)  # only the insertion curve is new
        f, c = fm.metrics.perturbation_curve(model, x, a, y)  # no forward at all
    store.computed_rows, store.reused_rows

A sample is recognised by content, not by object identity: its input row, its pixel ranks
(which fold in the attribution, ``reduce``, ``ties`` and ``seed``) and its target index must
be equal element for element. Rows are first matched by an integer fingerprint of their bits
(exact, order-independent, so it does not depend on the batch a row came in), then
confirmed by an exact comparison. The store lives for the ``with`` block (the evaluation
runs one per block of samples); the model must not change inside it. Outside a
``with shared_curves()`` nothing is kept.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import torch

__all__ = ["CurveStore", "active_store", "shared_curves"]

_ACTIVE: contextvars.ContextVar[CurveStore | None] = contextvars.ContextVar(
    "faithmap_curve_store", default=None)
_FP_CHUNK = 64  # rows per fingerprint pass (bounds the int64 temporary)


@dataclass
class _Entry:
    tensors: tuple[torch.Tensor, ...]  # the rows' key tensors (copies)
    fingerprints: torch.Tensor  # int64 per row, on the CPU
    values: torch.Tensor  # one value row per key row


def _bits(t: torch.Tensor) -> torch.Tensor:
    """Row-flattened integer view of ``t``'s bits (floats reinterpreted, not rounded)."""
    t = t.detach().flatten(1).contiguous()
    if t.is_floating_point():
        t = t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
    return t.long()


def _rows(t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of ``t``, flattened to 2-D."""
    picked = t[rows.to(t.device)]
    return picked.flatten(1) if picked.dim() > 1 else picked[:, None]


def _weights(length: int, salt: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0x5EED + 7919 * salt + length)
    return (torch.randint(-(2**62), 2**62, (length,), generator=g) | 1).to(device)


def fingerprints(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """An int64 fingerprint per row: Σ bits·w in wrapping integer arithmetic, so it is exact
    and independent of how rows are batched (float sums would round differently)."""
    total = None
    for salt, t in enumerate(tensors):
        bits_len = t[:1].flatten(1).shape[1] if t.dim() > 1 else 1
        w = _weights(bits_len, salt, t.device)
        parts = []
        for start in range(0, t.shape[0], _FP_CHUNK):
            rows = t[start:start + _FP_CHUNK]
            bits = _bits(rows if rows.dim() > 1 else rows[:, None])
            parts.append((bits * w).sum(1))
        fp = torch.cat(parts).cpu() if parts else torch.zeros(0, dtype=torch.long)
        total = fp if total is None else total * 1000003 + fp
    assert total is not None
    return total


class CurveStore:
    """Per-row memo of perturbation curves (see the module docstring).

    ``computed_rows`` / ``reused_rows``: curve points (sample × point, one forward row each)
    computed and reused. Pixel orderings and predicted targets are kept the same way.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, list[_Entry]] = {}
        self.computed_rows = 0
        self.reused_rows = 0

    def rows(self, key: Hashable, tensors: Sequence[torch.Tensor],
             compute: Callable[[torch.Tensor], torch.Tensor], counted: bool = True,
             ) -> torch.Tensor:
        """``compute(rows)`` for the rows of ``tensors`` not seen under ``key``; the stored
        values for the others. ``tensors``: row-aligned key tensors (first on the compute
        device); ``compute(sel)`` gets a LongTensor of row indices on that device.
        ``counted``: add to ``computed_rows`` / ``reused_rows`` (curves; not orderings or
        predictions)."""
        n = tensors[0].shape[0]
        device = tensors[0].device
        fp = fingerprints(tensors)
        found: dict[int, tuple[_Entry, int]] = {}
        for entry in self._entries.get(key, []):
            pairs = (fp[:, None] == entry.fingerprints[None, :]).nonzero().tolist()
            pairs = [(i, j) for i, j in pairs if i not in found]
            if not pairs:
                continue
            mine = torch.tensor([i for i, _ in pairs])
            theirs = torch.tensor([j for _, j in pairs])
            same = torch.ones(len(pairs), dtype=torch.bool)
            for t, e in zip(tensors, entry.tensors):
                same &= (_rows(t, mine) == _rows(e, theirs)).all(1).cpu()
            for (i, j), ok in zip(pairs, same.tolist()):
                if ok and i not in found:
                    found[i] = (entry, j)
        missing = [i for i in range(n) if i not in found]
        new = None
        if missing:
            sel = torch.tensor(missing, device=device)
            new = compute(sel)
            cpu_sel = torch.tensor(missing)
            self._entries.setdefault(key, []).append(_Entry(
                tuple(t[sel.to(t.device)].clone() for t in tensors), fp[cpu_sel], new))
            if counted:
                self.computed_rows += new[0].numel() * len(missing)
        if not found:
            assert new is not None
            return new
        sample = next(iter(found.values()))
        values = sample[0].values
        out = values.new_empty((n, *values.shape[1:]))
        for i, (entry, j) in found.items():
            out[i] = entry.values[j].to(out.device)
        if new is not None:
            out[torch.tensor(missing, device=out.device)] = new.to(out.dtype)
        if counted:
            self.reused_rows += len(found) * values[0].numel()
        return out


def active_store() -> CurveStore | None:
    """The store of the innermost ``with shared_curves()``, or ``None``."""
    return _ACTIVE.get()


@contextlib.contextmanager
def shared_curves() -> Iterator[CurveStore]:
    """``with shared_curves() as store:`` — perturbation curves computed inside are computed
    once per sample and setting and reused (module docstring). Nested blocks share the
    outer store."""
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    store = CurveStore()
    token = _ACTIVE.set(store)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)
