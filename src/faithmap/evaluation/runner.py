"""``fm.evaluate``: run methods × metrics over datasets and collect per-sample scores."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..core.registry import available_methods, get_explainer
from .data import EvalData, load_eval_data
from .results import EvaluationResult

DEFAULT_METRICS = ("deletion", "insertion", "insertion_deletion", "lerf_morf_gap",
                   "pointing_game", "energy_pointing_game", "sparseness")


def _metric_function(name: str):
    from .. import metrics

    return metrics.get_metric(name)


def _call_metric(fn, model, x, attr, targets, masks, explainer, seed, batch_size, options):
    params = inspect.signature(fn).parameters
    extra = {k: v for k, v in (("seed", seed), ("batch_size", batch_size),
                               ("explainer", explainer)) if k in params}
    if "features_in_step" in params:  # pixel flipping: ~224 steps, not one per pixel
        extra["features_in_step"] = math.ceil(x.shape[2] * x.shape[3] / 224)
    extra.update(options)
    if fn.kind == "model":
        return fn(model, x, attr, targets, **extra)
    if fn.kind == "mask":
        if masks is None:
            return None
        return fn(attr, masks, **extra)
    return fn(attr, **extra)


def _predicted(model: nn.Module, images: torch.Tensor, device, block: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(images[i:i + block].to(device)).argmax(1).cpu()
                          for i in range(0, len(images), block)])


def evaluate(
    model: nn.Module | str,
    data: str | EvalData | Sequence[str | EvalData],
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    n: int = 200,
    out: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 32,
    block: int = 16,
    method_options: dict[str, dict[str, Any]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    curve_samples: int = 32,
    heatmap_samples: int = 6,
    progress: bool = True,
    name: str | None = None,
) -> EvaluationResult:
    """Score every method with every metric on every dataset (see docs/evaluation.md).

    ``model``: an ``nn.Module`` (never changed; data go to its device) or a CLI model spec.
    ``data``: ``"grid"``, ``"cluttered"``, a bundled dataset name, an image folder, an
    :class:`EvalData`, or a list of them. A method or metric that fails is recorded in
    ``result.errors`` and the rest still run. With ``out``, writes ``results.csv``,
    ``summary.csv``, ``results.json``, PNG figures and ``report.html`` there. ``name``
    labels the model in the report (default: the spec or the class name).
    """
    from ..model_spec import input_channels, load_model

    spec = name or (model if isinstance(model, str) else type(model).__name__)
    loaded = load_model(model) if isinstance(model, str) else None
    model = loaded.model if loaded is not None else model
    methods = list(methods or available_methods())
    metrics = list(metrics or DEFAULT_METRICS)
    method_options = method_options or {}
    metric_options = metric_options or {}
    datasets = [data] if isinstance(data, (str, EvalData)) else list(data)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    channels = input_channels(model)
    result = EvaluationResult(config={
        "model": spec, "methods": methods, "metrics": metrics, "n": n, "seed": seed,
        "batch_size": batch_size, "block": block, "method_options": method_options,
        "metric_options": metric_options, "torch": torch.__version__,
    })
    fns = {}
    for name in metrics:
        try:
            fns[name] = _metric_function(name)
            result.metric_info[name] = {"higher_is_better": fns[name].higher_is_better,
                                        "category": fns[name].category, "kind": fns[name].kind}
        except Exception as exc:  # noqa: BLE001 - reported, the other metrics still run
            result.errors.append({"dataset": "*", "method": "*", "metric": name,
                                  "error": f"{type(exc).__name__}: {exc}"})
    kept: dict[str, dict[str, torch.Tensor]] = {}  # first samples' maps, for figures
    images_shown: dict[str, torch.Tensor] = {}
    keep = max(curve_samples, heatmap_samples)
    for item in datasets:
        d = item if isinstance(item, EvalData) else load_eval_data(
            item, n=n, seed=seed, size=loaded.input_size if loaded else None, channels=channels)
        d = d.subset(torch.arange(min(n, len(d.images))))
        result.config.setdefault("datasets", {})[d.name] = {**d.info, "n": len(d.images),
                                                           "skipped": d.skipped}
        result.errors += [{"dataset": d.name, "method": "-", "metric": "input",
                           "error": f"unreadable file skipped: {path} ({reason})"}
                          for path, reason in d.skipped]
        targets = d.targets if d.targets is not None else _predicted(model, d.images, device,
                                                                     block)
        images_shown[d.name] = d.images[:heatmap_samples]
        result.shown_targets[d.name] = targets[:heatmap_samples].tolist()
        kept[d.name] = {}
        bar = tqdm(total=len(methods) * len(d.images), desc=f"evaluate {d.name}",
                   unit="sample", disable=not progress)
        for method in methods:
            _run_method(result, d, targets, model, device, method, method_options.get(method, {}),
                        fns, metric_options, seed, batch_size, block, kept[d.name], keep, bar)
        bar.close()
        if curve_samples and {"deletion", "insertion"} & set(fns):
            _curves(result, d, targets, model, device, kept[d.name], curve_samples, batch_size,
                    metric_options)
    result.images = images_shown
    result.maps = {name: {m: a[:heatmap_samples].cpu() for m, a in maps.items()}
                   for name, maps in kept.items()}
    if out is not None:
        from ..viz.report import write_report

        write_report(result, Path(out))
    return result


def _run_method(result, d, targets, model, device, method, options, fns, metric_options, seed,
                batch_size, block, kept, keep, bar) -> None:
    timing = result.timings.setdefault(d.name, {})
    try:
        explainer = get_explainer(method, model, **{"batch_size": batch_size, **options})
    except Exception as exc:  # noqa: BLE001 - a failing method is reported, others still run
        result.errors.append({"dataset": d.name, "method": method, "metric": None,
                              "error": f"{type(exc).__name__}: {exc}"})
        bar.update(len(d.images))
        return
    failed: set[str] = set()
    spent_explain = spent_metrics = 0.0
    bar.set_postfix_str(method)
    for start in range(0, len(d.images), block):
        x = d.images[start:start + block].to(device)
        t = targets[start:start + block]
        masks = None if d.masks is None else d.masks[start:start + block].to(device)
        tic = time.perf_counter()
        try:
            attr = explainer(x, t)
        except Exception as exc:  # noqa: BLE001
            result.errors.append({"dataset": d.name, "method": method, "metric": None,
                                  "error": f"{type(exc).__name__}: {exc}"})
            bar.update(len(d.images) - start)
            return
        spent_explain += time.perf_counter() - tic
        if start < keep:
            prev = kept.get(method)
            kept[method] = (attr if prev is None else torch.cat([prev, attr]))[:keep]
        tic = time.perf_counter()
        for name, fn in fns.items():
            if name in failed or (name == "grid_pointing_game" and d.info.get("kind") != "grid"):
                continue  # the grid pointing game is defined on grid images only
            try:
                scores = _call_metric(fn, model, x, attr, t, masks, explainer, seed + start,
                                      batch_size, metric_options.get(name, {}))
            except Exception as exc:  # noqa: BLE001
                failed.add(name)
                result.errors.append({"dataset": d.name, "method": method, "metric": name,
                                      "error": f"{type(exc).__name__}: {exc}"})
                continue
            if scores is not None:
                result.add(d.name, method, name, scores.detach().cpu().tolist(), start)
        spent_metrics += time.perf_counter() - tic
        bar.update(len(x))
    timing[method] = {"explain_s": spent_explain, "metrics_s": spent_metrics}


def _curves(result, d, targets, model, device, kept, k, batch_size, metric_options) -> None:
    """Mean deletion and insertion curves over the first ``k`` samples, per method, with
    the same options (step, substrate, ...) as the deletion and insertion metrics."""
    from ..metrics import perturbation_curve

    x = d.images[:k].to(device)
    t = targets[:k]
    curves = result.curves.setdefault(d.name, {})
    for method, attr in kept.items():
        try:
            entry = {}
            for mode in ("deletion", "insertion"):
                metric_fn = _metric_function(mode)  # its defaults (e.g. insertion's blur)
                defaults = {k: p.default for k, p in inspect.signature(metric_fn).parameters.items()
                            if k in ("step", "substrate", "score", "reduce")}
                options = {**defaults, "batch_size": batch_size, **metric_options.get(mode, {})}
                fractions, values = perturbation_curve(model, x[:len(attr)], attr[:k],
                                                       t[:len(attr)], mode=mode, **options)
                entry[mode] = values.mean(0).cpu().tolist()
                entry["fractions"] = fractions.cpu().tolist()
            curves[method] = entry
        except Exception as exc:  # noqa: BLE001 - curves are a figure; report and go on
            result.errors.append({"dataset": d.name, "method": method, "metric": "curves",
                                  "error": f"{type(exc).__name__}: {exc}"})
