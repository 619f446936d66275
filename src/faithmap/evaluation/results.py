"""Evaluation results: per-sample scores, aggregates (mean, 95% CI), CSV and JSON output."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_bytes
from .table import Cell, Section, best_methods, build_table
from .verdicts import Z95


def mean_ci(values: list[float]) -> tuple[float, float, int]:
    """Mean, half-width of the 95% normal-approximation CI (1.96·s/√n), and n (NaNs dropped)."""
    xs = [v for v in values if v is not None and math.isfinite(v)]
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(xs) / n
    if n == 1:
        return mean, math.nan, 1
    var = sum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, Z95 * math.sqrt(var / n), n


@dataclass
class EvaluationResult:
    """Everything one evaluation produced; :meth:`write` saves it (atomically)."""

    config: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # dataset, method, warning
    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    # dataset -> method -> {"explain_s", "metrics_s", "curves_s", "metric_s": {metric: s}}
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the run's stages: explain_s, metric_s (per metric), curves_s, figures_s, blocks_s, total_s
    stage_timings: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict, repr=False)  # dataset -> shown images
    shown_targets: dict[str, list[int]] = field(default_factory=dict, repr=False)
    shown_labels: dict[str, list[str]] = field(default_factory=dict, repr=False)  # row labels
    # dataset -> method -> {"empty" | "fallback" | "no_map": {policy: samples}} (collect.collect)
    flags: dict[str, dict[str, dict[str, dict[str, list[int]]]]] = field(default_factory=dict)
    maps: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # -> method -> maps

    def add(self, dataset: str, method: str, metric: str, scores: list[float],
            start: int) -> None:
        for i, s in enumerate(scores):
            self.samples.append({"dataset": dataset, "method": method, "metric": metric,
                                 "sample": start + i, "score": float(s)})

    def summary(self) -> list[dict[str, Any]]:
        """One row per (dataset, method, metric): mean, ci95, n, direction, category."""
        groups: dict[tuple[str, str, str], list[float]] = {}
        for row in self.samples:
            groups.setdefault((row["dataset"], row["method"], row["metric"]), []).append(
                row["score"])
        out = []
        for (dataset, method, metric), values in groups.items():
            mean, ci, n = mean_ci(values)
            info = self.metric_info.get(metric, {})
            out.append({"dataset": dataset, "method": method, "metric": metric, "mean": mean,
                        "ci95": ci, "n": n, "higher_is_better": info.get("higher_is_better"),
                        "category": info.get("category")})
        return out

    def best(self) -> dict[tuple[str, str], str]:
        """The leading method per (dataset, metric) by mean in the metric's score direction
        (separated from the runner-up or not; the tables mark only separated leaders)."""
        return best_methods(self.summary())

    def sections(self) -> list[Section]:
        """The table sections (:func:`faithmap.evaluation.table.build_table`) with the
        per-sample scores (paired test for "best") and the per-dataset facts."""
        return build_table(self.summary(), self.metric_info, self.samples,
                           self.config.get("datasets", {}))

    def table(self) -> str:
        """A plain-text table (methods × metrics, mean ± 95% CI) per dataset; the line under
        the dataset's name says n, seeds, the target policy and the predicted fraction."""
        lines = []
        for section in self.sections():
            width = max(len(m) for m in [method for method, _ in section.rows] + ["method"])
            lines.append(f"[{section.dataset}]")
            if section.caption():
                lines.append(f"({section.caption()})")
            lines.append(" ".join(["method".ljust(width)]
                                  + [f"{c.metric + c.arrow:>20}" for c in section.columns]))
            for method, cells in section.rows:
                lines.append(" ".join([method.ljust(width)] + [f"{_text(c):>20}" for c in cells]))
            lines.append("")
        if self.errors:
            lines.append("errors:")
            lines += [f"  {e['dataset']}/{e['method']}/{e.get('metric') or '-'}: {e['error']}"
                      for e in self.errors]
        if self.warnings:
            per_method: dict[str, int] = {}
            for w in self.warnings:
                key = f"{w['dataset']}/{w['method']}"
                per_method[key] = per_method.get(key, 0) + 1
            lines.append("warnings (full text in results.json): " + ", ".join(
                f"{k} ×{v}" for k, v in per_method.items()))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "summary": self.summary(), "samples": self.samples,
                "errors": self.errors, "warnings": self.warnings, "metrics": self.metric_info,
                "curves": self.curves, "timings": self.timings,
                "stage_timings": self.stage_timings, "figures": self.figures,
                "flags": self.flags}

    def write_tables(self, out: Path) -> None:
        """``results.csv`` (per sample), ``summary.csv`` (aggregates) and ``results.json``."""
        atomic_write_bytes(out / "results.csv", _csv(
            self.samples, ["dataset", "method", "metric", "sample", "score"]))
        atomic_write_bytes(out / "summary.csv", _csv(
            self.summary(), ["dataset", "method", "metric", "mean", "ci95", "n",
                             "higher_is_better", "category"]))
        atomic_write_bytes(out / "results.json",
                           json.dumps(self.to_json(), indent=1, allow_nan=True).encode())


def _text(cell: Cell | None) -> str:
    """A text-table cell: ``mean±ci`` (or ``mean``), ``*`` on the best method (separated from
    the runner-up beyond the spread), ``—`` if none."""
    if cell is None:
        return "— "
    text = f"{cell.mean:.3f}±{cell.ci95:.3f}" if cell.has_ci else f"{cell.mean:.3f}"
    return text + ("*" if cell.best else " ")


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
