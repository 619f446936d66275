"""The one builder of the results table (methods × metrics per dataset).

:func:`build_table` turns a summary (rows of :meth:`EvaluationResult.summary` or
``results.json["summary"]``) into :class:`Section` s of :class:`Cell` s — mean, 95% CI,
best flag — with the metric's direction arrow; the renderers (``EvaluationResult.table``,
:mod:`.report_html`, :mod:`.report_markdown`) only format them.

A cell is marked best only where the leading method (by mean, in the metric's direction)
is better than the runner-up beyond the spread (:func:`separated_best`): with per-sample
scores (``samples``), by the paired comparison :func:`faithmap.evaluation.verdicts.compare`
(its 95% interval of the mean difference excludes 0); from a summary alone, when the two
95% CIs do not overlap. Columns where the lead is within the spread have no best cell and
are listed in :attr:`Section.unclear`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .policy import describe
from .verdicts import ci_outcome, compare

PAIRED = "paired"
CI = "ci"
BASIS_TEXT = {PAIRED: "paired per-sample comparison of the leader with the runner-up "
                      "(faithmap.evaluation.verdicts.compare: the 95% interval of the mean "
                      "difference excludes 0)",
              CI: "the 95% CIs of the leader and the runner-up do not overlap"}

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
    unclear: list[str] = field(default_factory=list)  # metrics: lead within the spread
    basis: str = ""  # PAIRED or CI (how "best" was decided), "" when nothing was ranked
    info: Mapping[str, Any] = field(default_factory=dict)  # results.json config["datasets"]

    def caption(self) -> str:
        """What a reader needs beside the numbers: n, seeds, the target per metric, the
        predicted-target fraction, how "best" was decided and where no method is best."""
        return caption(self.info, self.basis, self.unclear)


def caption(info: Mapping[str, Any], basis: str = "", unclear: Iterable[str] = ()) -> str:
    """One line: ``n = 100, seeds [0]; target — predicted class: deletion; label:
    pointing_game; label = prediction for 21.0% of samples; best: ...; no clear best: ...``."""
    parts = []
    if "n" in info:
        parts.append(f"n = {info['n']}")
    if info.get("seeds") is not None:
        parts.append(f"seeds {list(info['seeds'])}")
    if info.get("target_policy"):
        parts.append("target — " + describe(info["target_policy"]))
    if "predicted_fraction" in info:
        fraction = info["predicted_fraction"]
        parts.append("label = model's prediction for "
                     + ("— (no labels)" if fraction is None else f"{100 * fraction:.1f}%")
                     + " of samples")
    if basis:
        parts.append(f"best marked only where {BASIS_TEXT[basis]}")
    unclear = list(unclear)
    if unclear:
        parts.append("no method best beyond the spread: " + ", ".join(unclear))
    return "; ".join(parts)


def flag_summary(flags: Mapping[str, Mapping[str, Mapping[str, list[int]]]],
                 n: int | None) -> str:
    """One line from ``results.json["flags"][dataset]``: ``"all-zero maps: big 80/100
    (predicted target); method fell back: ..."`` ("" when nothing was flagged)."""
    parts = []
    for kind, text in (("empty", "all-zero maps"),
                       ("fallback", "method fell back (a NaN map is not scored)"),
                       ("no_map", "NaN maps, not scored")):
        found = [f"{method} " + ", ".join(f"{len(s)}/{n} ({policy} target)"
                                          for policy, s in per[kind].items())
                 for method, per in flags.items() if per.get(kind)]
        if found:
            parts.append(f"{text}: " + "; ".join(found))
    return "; ".join(parts)


def best_methods(summary: Summary) -> dict[tuple[str, str], str]:
    """The leading method per (dataset, metric) by mean in the score direction (first on
    ties), whether or not it is separated from the others (:func:`separated_best`);
    metrics without a direction and non-finite means take no part."""
    return {k: v[0] for k, v in _ranked(summary).items()}


def _ranked(summary: Summary) -> dict[tuple[str, str], list[str]]:
    """Methods per (dataset, metric), best first by oriented mean (stable on ties)."""
    groups: dict[tuple[str, str], list[tuple[float, int, str]]] = {}
    for i, row in enumerate(summary):
        if not math.isfinite(row["mean"]) or row.get("higher_is_better") is None:
            continue
        value = row["mean"] if row["higher_is_better"] else -row["mean"]
        groups.setdefault((row["dataset"], row["metric"]), []).append((-value, i, row["method"]))
    return {k: [m for _, _, m in sorted(v)] for k, v in groups.items()}


def separated_best(summary: Summary, samples: Iterable[Mapping[str, Any]] | None = None
                   ) -> tuple[dict[tuple[str, str], str | None], str]:
    """Per (dataset, metric) the leading method where it beats the runner-up beyond the
    spread, else ``None`` (also where fewer than two methods were scored), and the basis:
    :data:`PAIRED` with per-sample ``samples`` (rows ``dataset, method, metric, sample,
    score``), else :data:`CI` (see module doc)."""
    summary = list(summary)
    rows = {(r["dataset"], r["method"], r["metric"]): r for r in summary}
    per_sample: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in samples or ():
        per_sample.setdefault((r["dataset"], r["method"], r["metric"]), {})[int(r["sample"])] = \
            float(r["score"])
    basis = PAIRED if per_sample else CI
    out: dict[tuple[str, str], str | None] = {}
    for (dataset, metric), ranked in _ranked(summary).items():
        out[(dataset, metric)] = None
        if len(ranked) < 2:
            continue
        lead, runner = ranked[0], ranked[1]
        higher = bool(rows[(dataset, lead, metric)]["higher_is_better"])
        if basis == PAIRED:
            a = per_sample.get((dataset, lead, metric), {})
            b = per_sample.get((dataset, runner, metric), {})
            index = sorted(set(a) | set(b))
            d = compare([a.get(i, math.nan) for i in index], [b.get(i, math.nan) for i in index],
                        higher_is_better=higher)
            separated = d.outcome == "holds"
        else:
            ra, rb = rows[(dataset, lead, metric)], rows[(dataset, runner, metric)]
            separated = ci_outcome(ra, rb) == "holds"
        if separated:
            out[(dataset, metric)] = lead
    return out, basis


def build_table(summary: Summary, metric_info: Mapping[str, Mapping[str, Any]],
                samples: Iterable[Mapping[str, Any]] | None = None,
                datasets: Mapping[str, Mapping[str, Any]] | None = None) -> list[Section]:
    """Sections in first-seen order of datasets, methods and metrics (see module doc).

    The arrow is ``↑`` when ``metric_info[metric]["higher_is_better"]`` is true, else ``↓``.
    ``samples``: per-sample scores (the paired test for "best"); ``datasets``: per-dataset
    facts for :meth:`Section.caption` (``results.json["config"]["datasets"]``).
    """
    summary = list(summary)
    best, basis = separated_best(summary, samples)
    leaders = _ranked(summary)
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
        unclear = [m for m in metrics if len(leaders.get((dataset, m), [])) >= 2
                   and best.get((dataset, m)) is None]
        ranked_any = any(len(leaders.get((dataset, m), [])) >= 2 for m in metrics)
        sections.append(Section(dataset, columns, table, unclear, basis if ranked_any else "",
                                dict((datasets or {}).get(dataset, {}))))
    return sections


MAX_COLUMNS = 6  # metrics per HTML table: 13 methods × 6 metrics fit 1400 px unscrolled


def split_columns(section: Section, max_columns: int = MAX_COLUMNS) -> list[tuple[str, Section]]:
    """A wide section as ``(title, part)`` pairs of at most ``max_columns`` metrics each, so a
    table reads without horizontal scrolling: by metric category (first-seen order), a
    category wider than ``max_columns`` in consecutive parts of balanced width
    ("faithfulness (1/2)"). A section
    that fits stays whole, with title ``""``. Every part keeps all methods (rows), the cells
    (best flags included), the caption facts and the unclear metrics of its columns."""
    if max_columns < 1:
        raise ValueError(f"max_columns must be ≥ 1, got {max_columns}")
    if len(section.columns) <= max_columns:
        return [("", section)]
    groups: dict[str, list[int]] = {}
    for i, column in enumerate(section.columns):
        groups.setdefault(column.category or "other", []).append(i)
    parts = []
    for category, index in groups.items():
        size = math.ceil(len(index) / math.ceil(len(index) / max_columns))  # balanced parts
        chunks = [index[k:k + size] for k in range(0, len(index), size)]
        for j, chunk in enumerate(chunks):
            title = category + (f" ({j + 1}/{len(chunks)})" if len(chunks) > 1 else "")
            columns = [section.columns[i] for i in chunk]
            names = {c.metric for c in columns}
            parts.append((title, Section(
                section.dataset, columns,
                [(method, [cells[i] for i in chunk]) for method, cells in section.rows],
                [m for m in section.unclear if m in names], section.basis, section.info)))
    return parts
