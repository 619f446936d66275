"""Verdicts with spread: is a difference larger than its spread over seeds and samples?

A claim study measures a score per (seed, sample) for two methods ``a`` and ``b``. The paired
difference ``d[s, i] = a[s, i] − b[s, i]`` (sign flipped when lower is better, so ``d > 0``
always means "a better") is summarised by its mean and a 95% interval
``mean ± 1.96 · std(d) / √n`` over all ``n`` (seed, sample) pairs. The comparison

- **holds** when the interval lies above 0 *and* every seed's mean difference is > 0,
- **fails** when the interval lies below 0 *and* every seed's mean difference is < 0,
- is **inconclusive** otherwise (the difference is within the spread over samples, or the
  seeds disagree about its sign).

A claim made of several comparisons is "reproduced" when every one holds, "not reproduced"
when at least one fails and none holds, "inconclusive" when none holds or fails, and "partly"
when some hold and the others are inconclusive or fail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile (one constant for every table)
OUTCOMES = ("holds", "fails", "inconclusive")
VERDICTS = ("reproduced", "not reproduced", "partly", "inconclusive")


def _as_rows(values: object) -> np.ndarray:
    """(seeds, samples) float array from a (samples,) or (seeds, samples) array-like."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()  # type: ignore[union-attr]
    if isinstance(values, list | tuple) and values and isinstance(values[0], list | tuple):
        width = max(len(row) for row in values)  # ragged seeds: pad with NaN
        values = [list(row) + [math.nan] * (width - len(row)) for row in values]
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1, 1)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"scores must be (samples,) or (seeds, samples), got shape {array.shape}")
    return array


def _half_width(values: np.ndarray) -> float:
    n = values.size
    if n < 2:
        return math.nan
    return float(Z95 * values.std(ddof=1) / math.sqrt(n))


def summarise(values: object) -> tuple[float, float]:
    """Mean and 95% half-width over every finite (seed, sample) value."""
    flat = _as_rows(values).ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return math.nan, math.nan
    return float(flat.mean()), _half_width(flat)


@dataclass(frozen=True)
class Difference:
    """One paired comparison of ``a`` against ``b`` (``diff > 0`` means a better)."""

    mean_a: float
    spread_a: float
    mean_b: float
    spread_b: float
    diff: float
    low: float
    high: float
    seed_diffs: tuple[float, ...]
    n_seeds: int
    n_samples: int
    higher_is_better: bool
    outcome: str

    def text(self, label_a: str = "a", label_b: str = "b", digits: int = 3) -> str:
        """``"IG 0.656 ± 0.050 vs BIG 0.438 ± 0.060: holds"``."""
        f = f"{{:.{digits}f}}"
        return (f"{label_a} {f.format(self.mean_a)} ± {f.format(self.spread_a)} vs {label_b} "
                f"{f.format(self.mean_b)} ± {f.format(self.spread_b)}: {self.outcome}")

    def as_dict(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def compare(a: object, b: object, *, higher_is_better: bool = True) -> Difference:
    """Paired comparison of per-(seed, sample) scores ``a`` and ``b`` (same shape)."""
    left, right = _as_rows(a), _as_rows(b)
    if left.shape != right.shape:
        raise ValueError(f"paired scores differ in shape: {left.shape} vs {right.shape}")
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (left - right)
    finite = np.isfinite(d)
    seed_diffs = tuple(float(row[ok].mean()) for row, ok in zip(d, finite, strict=True)
                       if ok.any())
    pooled = d[finite]
    mean_a, spread_a = summarise(np.where(finite, left, np.nan))
    mean_b, spread_b = summarise(np.where(finite, right, np.nan))
    if pooled.size == 0:
        diff = low = high = math.nan
    else:
        diff = float(pooled.mean())
        width = _half_width(pooled)
        if math.isnan(width):  # one pair: no spread to compare with
            low = high = math.nan
        else:
            low, high = diff - width, diff + width
    if seed_diffs and low > 0 and all(s > 0 for s in seed_diffs):
        outcome = "holds"
    elif seed_diffs and high < 0 and all(s < 0 for s in seed_diffs):
        outcome = "fails"
    else:
        outcome = "inconclusive"  # NaN bounds fall through to here
    return Difference(mean_a, spread_a, mean_b, spread_b, diff, low, high, seed_diffs,
                      len(seed_diffs), int(finite.sum()), higher_is_better, outcome)


def ci_outcome(a: dict[str, object], b: dict[str, object]) -> str:
    """Outcome from two summary rows (``mean``, ``ci95``, ``higher_is_better``) when no
    per-sample scores are left to pair: "holds" / "fails" where the 95% intervals of the two
    means do not overlap, else "inconclusive" (stricter than :func:`compare`)."""
    sign = 1.0 if a["higher_is_better"] else -1.0
    ma, mb = sign * float(a["mean"]), sign * float(b["mean"])  # type: ignore[arg-type]
    ca, cb = float(a["ci95"]), float(b["ci95"])  # type: ignore[arg-type]
    if not (math.isfinite(ca) and math.isfinite(cb)):
        return "inconclusive"
    if ma - ca > mb + cb:
        return "holds"
    if mb - cb > ma + ca:
        return "fails"
    return "inconclusive"


def claim_verdict(outcomes: Iterable[str]) -> str:
    """Combine comparison outcomes into a claim verdict (see the module docstring)."""
    seen = list(outcomes)
    unknown = sorted(set(seen) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"unknown outcomes {unknown}; expected one of {OUTCOMES}")
    if not seen:
        return "inconclusive"
    holds, fails = seen.count("holds"), seen.count("fails")
    if holds == len(seen):
        return "reproduced"
    if holds == 0:
        return "not reproduced" if fails else "inconclusive"
    return "partly"
