"""What one explainer call costs, declared before it runs: :class:`Cost`.

Cost is counted as DESIGN.md principle 3 counts it: rows through the model per sample.
``forward`` counts rows through the model's own ``forward`` (what a forward hook on the
model sees, and what the command line's progress bar counts); ``backward`` counts rows whose
model output receives a gradient (a backward pass from the output, plain or rule-modified
as in LRP). Passes that do not go through the model itself — a forward stopped at an inner
layer (DANCE's decoy solver), a replay of a traced copy (SRD), another network (COMET's
selector) — are listed in ``other`` by name; they are not in ``forward``/``backward``.

``exact``: the figure is what one call runs; False: it is an upper bound (early stopping,
a cache hit or a once-per-shape probe make a call cheaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .targets import Target


@dataclass(frozen=True)
class Cost:
    """Passes per sample of one explainer call (module doc): ``forward`` and ``backward``
    rows through the model, ``exact`` (else an upper bound), ``other`` passes outside the
    model (name → count per sample), ``basis`` (where the figure comes from, e.g.
    ``"rows_per_sample"``; empty when the method declares it)."""

    forward: int
    backward: int
    exact: bool = True
    other: dict[str, int] = field(default_factory=dict)
    basis: str = ""

    def __post_init__(self) -> None:
        for name, value in (("forward", self.forward), ("backward", self.backward),
                            *self.other.items()):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Cost.{name} must be an int >= 0, got {value!r}")

    @property
    def passes(self) -> int:
        """Forward plus backward passes through the model per sample."""
        return self.forward + self.backward

    def __add__(self, other: Cost) -> Cost:
        merged = dict(self.other)
        for k, v in other.other.items():
            merged[k] = merged.get(k, 0) + v
        return Cost(self.forward + other.forward, self.backward + other.backward,
                    self.exact and other.exact, merged, self.basis or other.basis)

    def times(self, k: int) -> Cost:
        """This cost ``k`` times (e.g. per decoy × decoys per sample)."""
        return Cost(self.forward * k, self.backward * k, self.exact,
                    {n: v * k for n, v in self.other.items()}, self.basis)

    def bound(self) -> Cost:
        """The same figures as an upper bound."""
        return Cost(self.forward, self.backward, False, dict(self.other), self.basis)

    def text(self, per: str = "") -> str:
        """E.g. ``"at most 1,234 forward + 1,200 backward pass(es)"`` + ``per`` (e.g.
        ``" per image"``) + the ``other`` ones in parentheses."""
        words = ("" if self.exact else "at most ") + (
            f"{self.forward:,} forward + {self.backward:,} backward pass(es){per}")
        if self.other:
            words += " (+ " + ", ".join(f"{v:,} {k}" for k, v in self.other.items()) + ")"
        return words


def predicted(target: object) -> bool:
    """True when ``target`` is the model's predicted class still to be found (``None``, or a
    :class:`~faithmap.core.targets.Target` not yet resolved): a method may then spend one
    gradient-free forward pass per sample on it."""
    return target is None or (isinstance(target, Target) and target.needs_prediction)


def check_shape(x_shape: Sequence[int]) -> tuple[int, ...]:
    """``x_shape`` as a tuple of ints, N×C×H×W or at least N×D (else ValueError)."""
    shape = tuple(int(s) for s in x_shape)
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"x_shape must be (N, C, H, W) with every size >= 1, got {x_shape!r}")
    return shape
