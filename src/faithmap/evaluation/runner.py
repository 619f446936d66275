"""``fm.evaluate``: run methods × metrics over datasets and collect per-sample scores."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..core.batching import DEFAULT_BATCH_SIZE, chunks, map_rows
from ..core.devices import resolve_device
from ..core.registry import METHODS, available_methods
from ..core.validation import check_positive_int
from ..zoo.model_spec import input_channels, load_model
from .blocks import BlockRunner, build_explainer, metric_function
from .collect import collect
from .data import EvalData, load_eval_data
from .policy import LABEL, PREDICTED, TargetPolicy, for_dataset, metric_applies, resolve_policy
from .ray_backend import RayExecutor, require_ray
from .report_html import write_report
from .results import EvaluationResult
from .resume import ProgressLog, fingerprint

DEFAULT_METRICS = ("deletion", "insertion", "insertion_deletion", "lerf_morf_gap",
                   "pointing_game", "energy_pointing_game", "sparseness")


def _predicted(model: nn.Module, images: torch.Tensor, device, block: int) -> torch.Tensor:
    """The model's predicted classes, ``block`` images per forward pass."""
    with torch.no_grad():
        return map_rows(len(images), block,
                        lambda rows: model(images[rows].to(device)).argmax(1).cpu())


def _default_methods(model: nn.Module) -> list[str]:
    """Every registered method that applies to ``model`` (a method class may say it does not
    through ``applies_to(model)``, e.g. ``comet`` for a model its checkpoint was not
    trained with)."""
    out = []
    for name in available_methods():
        applies = getattr(METHODS.get(name), "applies_to", None)
        if applies is None or applies(model):
            out.append(name)
    return out


def _place(model: nn.Module, device: str | None) -> nn.Module:
    """``model`` on ``device`` (``auto``: CUDA when available); a copy if it must move, so the
    caller's model is never changed."""
    if device is None:
        return model
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    dev = resolve_device(device)
    tensors = list(model.parameters()) + list(model.buffers())
    if all(t.device == dev or (dev.type == "cuda" and dev.index is None
                               and t.device.type == "cuda") for t in tensors):
        return model
    return copy.deepcopy(model).to(dev)


def evaluate(
    model: nn.Module | str,
    data: str | EvalData | Sequence[str | EvalData],
    methods: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    n: int = 200,
    out: str | Path | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block: int = 16,
    method_options: dict[str, dict[str, Any]] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    curve_samples: int = 32,
    heatmap_samples: int = 6,
    progress: bool = True,
    name: str | None = None,
    device: str | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    resume: bool = False,
    target: TargetPolicy = None,
) -> EvaluationResult:
    """Score every method with every metric on every dataset (see docs/evaluation.md).

    ``model``: an ``nn.Module`` (never changed; data go to its device) or a CLI model spec.
    ``data``: ``"grid"``, ``"cluttered"``, a bundled dataset name, an image folder, an
    :class:`EvalData`, or a list of them. A method or metric that fails is recorded in
    ``result.errors`` (with the samples it failed on) and the rest still run. With ``out``,
    writes ``results.csv``, ``summary.csv``, ``results.json``, PNG figures and
    ``report.html`` there, and appends finished blocks to ``out/progress/`` as they arrive;
    ``resume=True`` skips the samples found there. ``name`` labels the model in the report.
    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``None`` (the model's device).
    ``backend="ray"`` runs blocks on Ray actors (``ray_address``: a cluster to join, default
    a local instance with ``ray_workers`` workers; docs/scaling.md). Per-sample scores do not
    depend on ``block``, the backend or resuming: draws are keyed by the global sample index.

    ``progress``: one tqdm bar per stage (``explain``, each metric, ``figures``) with its
    ETA, on a terminal only. Each (method, dataset, target) is explained once, and a block's
    metrics and the report's curves share one perturbation-curve computation
    (:func:`faithmap.metrics.shared_curves`); ``result.stage_timings`` sums the seconds
    per stage.

    ``target``: which class each metric explains (:mod:`faithmap.evaluation.policy`):
    ``None`` (default) is per metric, the predicted class for faithfulness and every other
    metric, the label for ``grid_pointing_game`` and the mask metrics (the mask is the
    label's object); ``"predicted"`` or ``"label"`` for every metric, or ``{metric:
    policy}``. ``result.config["datasets"][name]`` records ``n``, ``seeds``,
    ``target_policy`` (per metric) and ``predicted_fraction`` (share of samples whose label
    is the model's prediction; ``None`` without labels). The ``"grid"`` spec draws only
    grids whose every cell the model classifies correctly on its own
    (``load_eval_data("grid", model=..., correct_cells=True)``).
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if backend == "ray":
        require_ray()
    if resume and out is None:
        raise ValueError("resume=True needs out= (the folder holding the progress log)")
    check_positive_int("block", block)
    t0 = time.perf_counter()
    spec = name or (model if isinstance(model, str) else type(model).__name__)
    loaded = load_model(model) if isinstance(model, str) else None
    model = _place(loaded.model if loaded is not None else model, device)
    methods = list(methods or _default_methods(model))
    metrics = list(metrics or DEFAULT_METRICS)
    method_options = method_options or {}
    metric_options = metric_options or {}
    datasets = [data] if isinstance(data, (str, EvalData)) else list(data)
    param = next(iter(model.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")
    channels = input_channels(model)
    result = EvaluationResult(config={
        "model": spec, "methods": methods, "metrics": metrics, "n": n, "seed": seed,
        "batch_size": batch_size, "block": block, "method_options": method_options,
        "metric_options": metric_options, "torch": torch.__version__,
        "target": target if not isinstance(target, dict) else dict(target),
    })
    for metric in metrics:
        try:
            fn = metric_function(metric)
            result.metric_info[metric] = {"higher_is_better": fn.higher_is_better,
                                          "category": fn.category, "kind": fn.kind}
        except Exception as exc:  # noqa: BLE001 - reported, the other metrics still run
            result.errors.append({"dataset": "*", "method": "*", "metric": metric,
                                  "error": f"{type(exc).__name__}: {exc}"})
    keep = max(curve_samples, heatmap_samples)
    policy = resolve_policy(target, list(result.metric_info), result.metric_info)
    figure_curves = curve_samples if {"deletion", "insertion"} & set(result.metric_info) else 0
    run_spec = {"metrics": list(result.metric_info), "method_options": method_options,
                "metric_options": metric_options, "seed": seed, "batch_size": batch_size,
                "keep": keep, "policy": {}, "keep_policy": {}, "curve_samples": figure_curves}
    scored: dict[str, set[str]] = {}  # dataset -> metrics that apply to it (progress bars)
    loaded_data = []
    for item in datasets:
        size = loaded.input_size if loaded else None
        if item == "grid":
            d = load_eval_data(item, n=n, seed=seed, size=size, channels=channels, model=model,
                               correct_cells=True, batch_size=batch_size)
        else:
            d = item if isinstance(item, EvalData) else load_eval_data(
                item, n=n, seed=seed, size=size, channels=channels)
        d = d.subset(torch.arange(min(n, len(d.images))))
        predicted = _predicted(model, d.images, dev, block)
        mine = for_dataset(policy, d.target is not None, target, d.name)
        applies = {m: p for m, p in mine.items()
                   if metric_applies(m, result.metric_info[m]["kind"], d.info.get("kind"),
                                     d.masks is not None)}
        fraction = (None if d.target is None
                    else float((d.target.long() == predicted).float().mean()) if len(d.images)
                    else None)
        result.config.setdefault("datasets", {})[d.name] = {
            **d.info, "n": len(d.images), "seeds": [seed], "target_policy": applies,
            "predicted_fraction": fraction, "skipped": d.skipped}
        result.errors += [{"dataset": d.name, "method": "-", "metric": "input",
                           "error": f"unreadable file skipped: {path} ({reason})"}
                          for path, reason in d.skipped]
        targets = {PREDICTED: predicted}
        if d.target is not None:
            targets[LABEL] = d.target.long()
        run_spec["policy"][d.name] = mine
        scored[d.name] = set(applies)
        run_spec["keep_policy"][d.name] = _figure_policy(mine)
        result.config["datasets"][d.name]["figure_target"] = run_spec["keep_policy"][d.name]
        loaded_data.append((d, targets))
    log = None
    if out is not None:
        key_config = {k: v for k, v in result.config.items() if k not in ("block", "torch")}
        key = fingerprint({**key_config, "keep": keep}, model,
                          [t for d, y in loaded_data for t in (d.images, *y.values(), d.masks)])
        log = ProgressLog(Path(out), key, resume)
    blocks = list(log.done) if log else []
    jobs = []
    for d, targets in loaded_data:
        for method in methods:
            try:
                build_explainer(method, model, method_options.get(method, {}), batch_size, seed)
            except Exception as exc:  # noqa: BLE001 - a method that cannot be built is skipped
                result.errors.append({"dataset": d.name, "method": method, "metric": None,
                                      "error": f"{type(exc).__name__}: {exc}"})
                continue
            done = log.finished(d.name, method) if log else set()
            todo = [i for i in range(len(d.images)) if i not in done]
            for chunk in chunks(len(todo), block):
                idx = [todo[k] for k in chunk.tolist()]
                rows = torch.tensor(idx)
                jobs.append((d.name, d.info.get("kind"), method, idx, d.images[rows],
                             {p: t[rows] for p, t in targets.items()},
                             None if d.masks is None else d.masks[rows]))
    started = time.perf_counter()
    bars = _StageBars(jobs, list(result.metric_info), scored, progress)
    executor = (RayExecutor(model, run_spec, device, ray_address, ray_workers)
                if backend == "ray" else None)
    try:
        runner = BlockRunner(model, run_spec) if executor is None else None
        if runner is not None:
            runner.on_stage = bars.stage
        stream = executor.run(jobs) if executor else (runner.run(*job) for job in jobs)
        for r in stream:
            if log:
                log.append(r)
            blocks.append(r)
            if executor is not None:  # Ray: the stages of a block arrive together
                bars.block(r)
    finally:
        bars.close()
        if executor is not None:
            executor.close()
    blocks_s = time.perf_counter() - started
    kept = collect(result, blocks, [d.name for d, _ in loaded_data], methods, keep,
                   figure_curves)
    for d, targets in loaded_data:
        shown = targets[run_spec["keep_policy"][d.name]]
        result.shown_targets[d.name] = shown[:heatmap_samples].tolist()
        result.shown_labels[d.name] = _row_labels(targets, run_spec["keep_policy"][d.name],
                                                  heatmap_samples)
    result.images = {d.name: d.images[:heatmap_samples] for d, _ in loaded_data}
    result.maps = {name: {m: a[:heatmap_samples].cpu() for m, (a, _) in maps.items()}
                   for name, maps in kept.items()}
    tic = time.perf_counter()
    if out is not None:
        with tqdm(total=1, desc="figures", unit="report", disable=None if progress else True,
                  leave=False) as bar:
            write_report(result, Path(out))
            bar.update(1)
    result.stage_timings = _stage_timings(result, blocks_s, time.perf_counter() - tic,
                                          time.perf_counter() - t0)
    if out is not None:  # the report wrote results.json before the figure time was known
        result.write_tables(Path(out))
    return result


class _StageBars:
    """One tqdm bar per stage — ``explain``, then each metric — counting samples, each with
    tqdm's rate and ETA; silent when ``progress`` is false or stderr is not a terminal."""

    def __init__(self, jobs: list[tuple], metrics: list[str], scored: dict[str, set[str]],
                 progress: bool) -> None:
        disable = None if progress else True  # None: tqdm turns itself off without a TTY
        total = sum(len(j[3]) for j in jobs)
        self.bars = {"explain": tqdm(total=total, desc="explain", unit="sample",
                                     disable=disable, position=0)}
        for k, name in enumerate(metrics, start=1):
            n = sum(len(j[3]) for j in jobs if name in scored.get(j[0], ()))
            if n:
                self.bars[name] = tqdm(total=n, desc=name, unit="sample", disable=disable,
                                       position=k)

    def stage(self, stage: str, n: int) -> None:
        bar = self.bars.get(stage)
        if bar is not None:
            bar.update(n)

    def block(self, r) -> None:
        self.stage("explain", len(r.samples))
        for name in self.bars:
            if name != "explain" and (name in r.metric_s or not r.metric_s):
                self.stage(name, len(r.samples))

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _stage_timings(result: EvaluationResult, blocks_s: float, figures_s: float,
                   total_s: float) -> dict:
    """Seconds per stage over all datasets and methods: ``explain_s``, ``metric_s`` per
    metric, ``curves_s`` (figure curves the metrics did not have), ``figures_s`` (PNG
    figures and report), ``blocks_s`` (wall time of all blocks) and ``total_s``."""
    explain, curves, per_metric = 0.0, 0.0, {}
    for per_method in result.timings.values():
        for t in per_method.values():
            explain += t.get("explain_s", 0.0)
            curves += t.get("curves_s", 0.0)
            for name, seconds in t.get("metric_s", {}).items():
                per_metric[name] = per_metric.get(name, 0.0) + seconds
    return {"explain_s": explain, "metric_s": per_metric, "curves_s": curves,
            "figures_s": figures_s, "blocks_s": blocks_s, "total_s": total_s}


def _figure_policy(policy: dict[str, str]) -> str:
    """The target of the report's figures: that of the curves' metrics (deletion,
    insertion), else the predicted class when any metric explains it, else the label."""
    for metric in ("deletion", "insertion"):
        if metric in policy:
            return policy[metric]
    return PREDICTED if PREDICTED in policy.values() or not policy else LABEL


def _row_labels(targets: dict[str, torch.Tensor], shown: str, k: int) -> list[str]:
    """Heatmap row labels: the class explained, and the other target where they differ."""
    pred = targets[PREDICTED][:k].tolist()
    if LABEL not in targets:
        return [f"predicted {p}" for p in pred]
    labels = targets[LABEL][:k].tolist()
    if shown == LABEL:
        return [f"label {t}" + ("" if t == p else f" (pred {p})") for t, p in zip(labels, pred)]
    return [f"predicted {p}" + ("" if t == p else f" (label {t})") for t, p in zip(labels, pred)]
