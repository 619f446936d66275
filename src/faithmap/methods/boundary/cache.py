"""A small LRU cache of boundary searches, shared by BSM, BIG and boundary SmoothGrad.

Key: the model (identity and the version counters of its parameters/buffers, so a weight
update invalidates it), the inputs (dtype, shape, device and a digest of their bytes), the
resolved target classes and the search settings. A search seeded by a ``torch.Generator``
or ``None`` is never cached (it is meant to differ from call to call).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Hashable

import torch
from torch import nn

from ...attacks.boundary import Boundary
from ...core.validation import check_positive_int


def _freeze(v: object) -> Hashable:
    if isinstance(v, torch.Tensor):
        return ("tensor", tuple(v.shape), tuple(v.detach().cpu().flatten().tolist()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(u) for u in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(u)) for k, u in v.items()))
    return v


def input_digest(x: torch.Tensor) -> str:
    """A digest of the bytes of ``x`` (any dtype and device)."""
    raw = x.detach().contiguous().view(torch.uint8).cpu().numpy().tobytes()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def model_state(model: nn.Module) -> tuple:
    """Identity and version counters of every parameter and buffer (changes on any update)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return (id(model), tuple((id(t), t._version) for t in tensors))


class BoundaryCache:
    """LRU cache of :class:`~faithmap.attacks.Boundary` results (``maxsize`` entries).

    ``hits`` and ``misses`` count lookups; ``clear()`` empties it.
    """

    def __init__(self, maxsize: int = 8) -> None:
        check_positive_int("maxsize", maxsize)
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._store: OrderedDict[Hashable, tuple[weakref.ref, Boundary]] = OrderedDict()

    def key(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            settings: dict) -> Hashable:
        """The cache key of one search."""
        return (model_state(model), str(x.dtype), tuple(x.shape), str(x.device),
                input_digest(x), tuple(y.tolist()), _freeze(settings))

    def get(self, key: Hashable, model: nn.Module) -> Boundary | None:
        """The cached search for ``key`` (and the same live model), else None."""
        entry = self._store.get(key)
        if entry is None or entry[0]() is not model:
            self.misses += 1
            return None
        self._store.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, model: nn.Module, boundary: Boundary) -> None:
        """Store a search, evicting the least recently used entry beyond ``maxsize``."""
        self._store[key] = (weakref.ref(model), boundary)
        self._store.move_to_end(key)
        while len(self._store) > self.maxsize:
            self._store.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        self._store.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._store)


DEFAULT_CACHE = BoundaryCache()
