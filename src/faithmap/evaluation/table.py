"""The one builder of the results table (methods × metrics per dataset).

:func:`build_table` turns a summary (rows of :meth:`EvaluationResult.summary` or
``results.json["summary"]``) into :class:`Section` s of :class:`Cell` s — mean, 95% CI,
best flag — with the metric's direction arrow; the renderers (``EvaluationResult.table``,
:mod:`.report_html`, :mod:`.report_markdown`) only format them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Summary = Iterable[Mapping[str, Any]]


@dataclass(frozen=True)
class Column:
    """One metric: its name, ``↑`` (higher is better) or ``↓``, and its category."""

    metric: str
    arrow: str
    category: str


@dataclass(frozen=True)
class Cell:
    """A finite mean, the half-width of its 95% CI (NaN when unknown), best-method flag."""

    mean: float
    ci95: float
    best: bool

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.ci95)


@dataclass(frozen=True)
class Section:
    """One dataset: its columns and ``(method, cells)`` rows; a cell is ``None`` where the
    pair was not scored or its mean is not finite."""

    dataset: str
    columns: list[Column]
    rows: list[tuple[str, list[Cell | None]]]


def best_methods(summary: Summary) -> dict[tuple[str, str], str]:
    """The best method per (dataset, metric) by the score direction (first on ties);
    metrics without a direction and non-finite means take no part."""
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for row in summary:
        if not math.isfinite(row["mean"]) or row.get("higher_is_better") is None:
            continue
        key = (row["dataset"], row["metric"])
        value = row["mean"] if row["higher_is_better"] else -row["mean"]
        if key not in best or value > best[key][0]:
            best[key] = (value, row["method"])
    return {k: v[1] for k, v in best.items()}


def build_table(summary: Summary, metric_info: Mapping[str, Mapping[str, Any]]) -> list[Section]:
    """Sections in first-seen order of datasets, methods and metrics (see module doc).

    The arrow is ``↑`` when ``metric_info[metric]["higher_is_better"]`` is true, else ``↓``.
    """
    summary = list(summary)
    best = best_methods(summary)
    sections = []
    for dataset in dict.fromkeys(r["dataset"] for r in summary):
        rows = [r for r in summary if r["dataset"] == dataset]
        metrics = list(dict.fromkeys(r["metric"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        found = {(r["method"], r["metric"]): r for r in rows}
        columns = [Column(m, "↑" if metric_info.get(m, {}).get("higher_is_better") else "↓",
                          str(metric_info.get(m, {}).get("category") or "")) for m in metrics]
        table = []
        for method in methods:
            cells: list[Cell | None] = []
            for metric in metrics:
                r = found.get((method, metric))
                cells.append(None if r is None or not math.isfinite(r["mean"]) else
                             Cell(r["mean"], r["ci95"], best.get((dataset, metric)) == method))
            table.append((method, cells))
        sections.append(Section(dataset, columns, table))
    return sections
