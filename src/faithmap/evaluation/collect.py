"""Gather finished blocks into an :class:`EvaluationResult`, in one canonical order.

Blocks arrive in any order (Ray workers, a resumed log); rows are sorted by dataset, method,
metric (the run's order) and sample index, so every backend writes the same files.
Per-sample errors with the same message are merged into one entry listing the samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .blocks import BlockResult
from .results import EvaluationResult

Kept = dict[str, dict[str, tuple[torch.Tensor, list[int]]]]


def collect(result: EvaluationResult, blocks: Sequence[BlockResult], datasets: list[str],
            methods: list[str], keep: int, curve_samples: int = 0) -> Kept:
    """Fill ``result.samples``, ``errors``, ``timings`` (per dataset and method: explain,
    metrics and figure-curve seconds, and ``metric_s`` per metric), ``flags`` (per dataset
    and method: ``{"empty" | "fallback": {policy: samples}}``, all-zero maps and samples
    where the method fell back) and ``curves`` (the mean deletion and insertion curves of the
    samples below ``curve_samples``, from the blocks' own curves); return the kept maps per
    dataset and method as (maps with row i = sample i, zero where missing; samples
    present)."""
    d_order = {d: i for i, d in enumerate(datasets)}
    m_order = {m: i for i, m in enumerate(methods)}
    k_order = {m: i for i, m in enumerate(result.metric_info)}
    rows: dict[tuple, float] = {}
    errors: dict[tuple, list[int]] = {}
    kept_parts: dict[tuple[str, str], list[tuple[list[int], torch.Tensor]]] = {}
    curve_parts: dict[tuple[str, str], dict[str, dict]] = {}
    for b in blocks:
        for metric, sample, score in b.rows:
            rows.setdefault((b.dataset, b.method, metric, int(sample)), float(score))
        for e in b.errors:
            errors.setdefault((b.dataset, b.method, e["metric"], e["error"]), []).append(
                int(e["sample"]))
        for w in b.warnings:
            result.warnings.append({"dataset": b.dataset, "method": b.method, "warning": w})
        timing = result.timings.setdefault(b.dataset, {}).setdefault(
            b.method, {"explain_s": 0.0, "metrics_s": 0.0})
        timing["explain_s"] += b.explain_s
        timing["metrics_s"] += b.metrics_s
        if b.metric_s or b.curves_s:
            timing["curves_s"] = timing.get("curves_s", 0.0) + b.curves_s
            per_metric = timing.setdefault("metric_s", {})
            for name, seconds in b.metric_s.items():
                per_metric[name] = per_metric.get(name, 0.0) + seconds
        for mode, c in b.curves.items():
            part = curve_parts.setdefault((b.dataset, b.method), {}).setdefault(mode, {})
            part.setdefault("fractions", c["fractions"])
            for s, values in zip(c["samples"], c["values"]):
                if s < curve_samples:
                    part.setdefault(int(s), values)
        flags = result.flags.setdefault(b.dataset, {}).setdefault(b.method, {})
        for kind, per_policy in b.flags.items():
            for policy, samples in per_policy.items():
                flags.setdefault(kind, {}).setdefault(policy, []).extend(samples)
        if b.maps is not None:
            kept_parts.setdefault((b.dataset, b.method), []).append((b.map_samples, b.maps))

    def key(k: tuple) -> tuple:
        return (d_order.get(k[0], len(d_order)), m_order.get(k[1], len(m_order)),
                -1 if k[2] is None else k_order.get(k[2], len(k_order)), k[3])

    for per_method in result.flags.values():
        for flags in per_method.values():
            for per_policy in flags.values():
                for policy in per_policy:
                    per_policy[policy] = sorted(set(per_policy[policy]))
    result.flags = {d: dict(sorted(((m, f) for m, f in per.items() if f),
                                   key=lambda kv: m_order.get(kv[0], 0)))
                    for d, per in sorted(result.flags.items(),
                                         key=lambda kv: d_order.get(kv[0], 0))}
    result.warnings.sort(key=lambda w: (d_order.get(w["dataset"], 0),
                                        m_order.get(w["method"], 0), w["warning"]))
    result.samples = [{"dataset": d, "method": m, "metric": k, "sample": s, "score": v}
                      for (d, m, k, s), v in sorted(rows.items(), key=lambda kv: key(kv[0]))]
    merged = sorted(errors.items(), key=lambda kv: key((*kv[0][:3], min(kv[1]))))
    result.errors += [{"dataset": d, "method": m, "metric": k, "error": err,
                       "samples": sorted(set(samples))} for (d, m, k, err), samples in merged]
    _mean_curves(result, curve_parts, d_order, m_order)
    kept: Kept = {}
    for (dataset, method), parts in kept_parts.items():
        size = 1 + max(s for samples, _ in parts for s in samples)
        maps = torch.zeros(min(keep, size), *parts[0][1].shape[1:], dtype=parts[0][1].dtype)
        present = []
        for samples, m in parts:
            for j, s in enumerate(samples):
                if s < keep:
                    maps[s] = m[j]
                    present.append(s)
        kept.setdefault(dataset, {})[method] = (maps, sorted(set(present)))
    for dataset in list(kept):  # methods in the run's order (the report's columns)
        kept[dataset] = dict(sorted(kept[dataset].items(), key=lambda kv: m_order.get(kv[0], 0)))
    return dict(sorted(kept.items(), key=lambda kv: d_order.get(kv[0], 0)))


def _mean_curves(result: EvaluationResult, parts: dict[tuple[str, str], dict[str, dict]],
                 d_order: dict[str, int], m_order: dict[str, int]) -> None:
    """``result.curves[dataset][method]``: per mode the mean curve over the samples (in
    sample order) and its x-axis (``<mode>_fractions``; ``fractions``: the first mode's)."""
    for (dataset, method), modes in sorted(parts.items(), key=lambda kv: (
            d_order.get(kv[0][0], len(d_order)), m_order.get(kv[0][1], len(m_order)))):
        entry: dict[str, list[float]] = {}
        for mode, part in modes.items():
            samples = sorted(s for s in part if s != "fractions")
            if not samples:
                entry = {}
                break
            values = torch.tensor([part[s] for s in samples], dtype=torch.float32)
            entry[mode] = values.mean(0).tolist()
            entry[f"{mode}_fractions"] = part["fractions"]
            entry.setdefault("fractions", part["fractions"])
        if entry:
            result.curves.setdefault(dataset, {})[method] = entry
