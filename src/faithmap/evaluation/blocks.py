"""One block of an evaluation: explain a few samples and score them with every metric.

A block is identified by (dataset, method, global sample indices). Its scores depend only on
the model, the options, the run seed and those indices: stochastic draws are keyed by the
global sample index (:func:`faithmap.core.seeding.sample_keys`), so a single-process run,
a Ray run and a resumed run give identical per-sample scores whatever the block size.
A block that raises is retried one sample at a time, so a failing sample is reported with
its own error and the others are still scored.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.deprecation import with_new_names
from ..core.registry import METHODS, get_explainer
from ..core.seeding import sample_keys
from ..metrics import get_metric, perturbation_curve
from ..metrics.curve_store import shared_curves
from .policy import metric_applies


def metric_function(name: str):
    """The registered metric ``name`` (``faithmap.metrics.get_metric``)."""
    return get_metric(name)


def build_explainer(method: str, model: nn.Module, options: dict[str, Any], batch_size: int,
                    seed: int):
    """The explainer with ``batch_size`` and, when it takes one and none is given, the run
    ``seed`` (so the run seed reaches stochastic methods)."""
    options = {"batch_size": batch_size, **options}
    cls = (METHODS.get(method) if method in METHODS else None) if isinstance(method, str) \
        else method
    if (cls is not None and "seed" not in options
            and "seed" in inspect.signature(cls).parameters):
        options["seed"] = seed
    return get_explainer(model, method, **options)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class BlockResult:
    """What one block produced: scores, errors, seconds spent, kept maps (index < keep)."""

    dataset: str
    method: str
    samples: list[int]
    rows: list[tuple[str, int, float]] = field(default_factory=list)  # (metric, sample, score)
    errors: list[dict[str, Any]] = field(default_factory=list)  # metric, sample, error
    explain_s: float = 0.0
    metrics_s: float = 0.0
    maps: torch.Tensor | None = None
    map_samples: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # explainer warnings, one per message
    # {"empty" | "fallback": {policy: [samples]}}: all-zero maps, method fell back
    flags: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # figure curves of kept samples (index < spec["curve_samples"]), taken from the metrics'
    # own curves: {mode: {"samples": [...], "fractions": [...], "values": [[...], ...]}}
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_s: dict[str, float] = field(default_factory=dict)  # seconds per metric
    curves_s: float = 0.0  # seconds spent on the figure curves (0 when the metrics had them)


class BlockRunner:
    """Runs blocks for one model (one copy per worker); explainers are built once per method.

    ``spec`` holds the run's options: ``metrics``, ``method_options``, ``metric_options``,
    ``seed``, ``batch_size``, ``keep`` (maps of samples below this index are returned),
    ``policy`` (``{dataset: {metric: "predicted" | "label"}}``), ``keep_policy``
    (``{dataset: policy}``: the target whose maps are kept for the figures) and
    ``curve_samples`` (the deletion and insertion curves of samples below this index are
    returned for the figures; 0 or absent: none).

    Inside a block every metric and the figure curves share one perturbation-curve
    computation (:func:`faithmap.metrics.shared_curves`): a curve the deletion metric ran is
    the figure's curve, LeRF/MoRF's MoRF curve where its settings equal deletion's, and
    insertion−deletion's two curves. ``on_stage(stage, n)``, when set, is called after the
    explanations (``"explain"``) and after each metric (its name) with the block's size.
    """

    CURVE_MODES = ("deletion", "insertion")

    def __init__(self, model: nn.Module, spec: dict[str, Any]) -> None:
        self.model = model
        self.spec = spec
        param = next(iter(model.parameters()), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self.fns = {}
        for name in spec["metrics"]:
            try:
                self.fns[name] = metric_function(name)
            except Exception:  # noqa: BLE001 - the driver reports unknown metrics once
                continue
        self._explainers: dict[str, Any] = {}
        self.on_stage = None

    def explainer(self, method: str):
        if method not in self._explainers:
            self._explainers[method] = build_explainer(
                method, self.model, self.spec["method_options"].get(method, {}),
                self.spec["batch_size"], self.spec["seed"])
        return self._explainers[method]

    def run(self, dataset: str, kind: str | None, method: str, samples: list[int],
            images: torch.Tensor, targets: torch.Tensor | Mapping[str, torch.Tensor],
            masks: torch.Tensor | None) -> BlockResult:
        """Explain and score ``samples`` (global indices; rows of ``images``).

        ``targets``: one tensor for every metric, or ``{policy: tensor}`` (``"predicted"``,
        ``"label"``) with ``spec["policy"]`` naming each metric's policy. A sample is
        explained once per distinct target: where its label is the prediction the map is
        shared. Kept maps (the report's figures) are those of ``spec["keep_policy"]``.
        """
        out = BlockResult(dataset, method, list(samples))
        try:
            explainer = self.explainer(method)
        except Exception as exc:  # noqa: BLE001 - reported for every sample of the block
            out.errors += [{"metric": None, "sample": s, "error": _error(exc)} for s in samples]
            return out
        single = not isinstance(targets, Mapping)
        by_policy = {"target": targets} if single else dict(targets)
        first = next(iter(by_policy))
        policy = self.spec.get("policy", {}).get(dataset, {})
        policy_of = {name: "target" if single else policy.get(name, first) for name in self.fns}
        wanted = [name for name in self.fns
                  if metric_applies(name, self.fns[name].kind, kind, masks is not None)]
        keep_policy = "target" if single else self.spec.get("keep_policy", {}).get(dataset, first)
        needed = list(dict.fromkeys([keep_policy] + [policy_of[n] for n in wanted]))
        needed = [p for p in needed if p in by_policy]
        x = images.to(self.device)
        m = None if masks is None else masks.to(self.device)
        tic = time.perf_counter()
        maps: dict[str, tuple[torch.Tensor | None, list[int]]] = {}
        for policy in needed:
            maps[policy] = self._explain_policy(explainer, x, by_policy, policy, maps, out)
        out.explain_s = time.perf_counter() - tic
        self._stage("explain", len(samples))
        attr, ok = maps.get(keep_policy, (None, []))
        keep = [j for j in ok if out.samples[j] < self.spec["keep"]]
        if keep and attr is not None:
            out.maps = attr[keep].detach().cpu()
            out.map_samples = [out.samples[j] for j in keep]
        with shared_curves():  # one curve per sample and setting for all metrics + figures
            tic = time.perf_counter()
            for name in wanted:
                start = time.perf_counter()
                self._score_metric(name, explainer, x, m, maps, by_policy, policy_of, out)
                out.metric_s[name] = time.perf_counter() - start
                self._stage(name, len(samples))
            out.metrics_s = time.perf_counter() - tic
            tic = time.perf_counter()
            attr, ok = maps.get(keep_policy, (None, []))
            self._figure_curves(x, attr, ok, by_policy.get(keep_policy), out)
            out.curves_s = time.perf_counter() - tic
        return out

    def _stage(self, stage: str, n: int) -> None:
        if self.on_stage is not None:
            self.on_stage(stage, n)

    def _score_metric(self, name, explainer, x, m, maps, by_policy, policy_of,
                      out: BlockResult) -> None:
        attr, ok = maps.get(policy_of[name], (None, []))
        if not ok or attr is None:
            return
        # a NaN map is the method's "no answer" (e.g. no boundary found): never scored,
        # counted under flags["fallback"] (or ["no_map"] when the method did not say)
        finite = torch.isfinite(attr.detach().flatten(1)).all(1).tolist()
        self._flag_no_map([out.samples[j] for j in ok if not finite[j]], out, policy_of[name])
        ok = [j for j in ok if finite[j]]
        if not ok:
            return
        rows = torch.tensor(ok)
        xs, ts = x[rows.to(x.device)], by_policy[policy_of[name]][rows]
        ms = None if m is None else m[rows.to(m.device)]
        idx = [out.samples[j] for j in ok]
        self._score(name, self.fns[name], explainer, xs, attr[rows.to(attr.device)], ts, ms,
                    idx, out)

    def _figure_curves(self, x, attr, ok, targets, out: BlockResult) -> None:
        """Mean-curve material for the report: the deletion and insertion curves (with those
        metrics' options) of the block's samples below ``spec["curve_samples"]``, read from
        the curves the metrics computed (inside the same :func:`shared_curves`); only a
        curve no metric asked for is computed here."""
        k = self.spec.get("curve_samples") or 0
        if not k or attr is None or targets is None or not ok:
            return
        finite = torch.isfinite(attr.detach().flatten(1)).all(1).tolist()
        want = [j for j in ok if finite[j] and out.samples[j] < k]
        if not want:
            return
        rows = torch.tensor(want)
        xs, a, ts = x[rows.to(x.device)], attr[rows.to(attr.device)], targets[rows]
        idx = [out.samples[j] for j in want]
        try:
            curves = {}
            for mode in self.CURVE_MODES:
                with sample_keys(idx):
                    fractions, values = perturbation_curve(self.model, xs, a, ts, mode=mode,
                                                           **self._curve_options(mode, xs))
                curves[mode] = {"samples": idx, "fractions": fractions.cpu().tolist(),
                                "values": values.cpu().tolist()}
            out.curves = curves
        except Exception as exc:  # noqa: BLE001 - curves are a figure; report and go on
            out.errors += [{"metric": "curves", "sample": s, "error": _error(exc)} for s in idx]

    def _curve_options(self, mode: str, x: torch.Tensor) -> dict[str, Any]:
        """The options the ``mode`` metric (deletion / insertion) runs with in this
        evaluation — its defaults (e.g. insertion's blur), the run's seed and batch size,
        the user's metric options — so its figure curve is the metric's own curve."""
        fn = metric_function(mode)
        params = inspect.signature(perturbation_curve).parameters
        options = {k: p.default for k, p in inspect.signature(fn).parameters.items()
                   if k in params and p.default is not inspect.Parameter.empty
                   and k not in ("target",)}
        options.update(self._options(fn, x, mode, warn_renames=True))
        return {k: v for k, v in options.items() if k in params or k in
                getattr(perturbation_curve, "renamed_options", {})}

    def _explain_policy(self, explainer, x, by_policy, policy, done, out: BlockResult):
        """Maps (one row per block row, zero where a row failed) and the rows that succeed
        for ``policy``'s targets; rows whose target equals that of a policy already explained
        (``done``) reuse its map."""
        targets = by_policy[policy]
        rows, attr, ok = list(range(len(x))), None, []
        for p, (a, ok_p) in done.items():
            if a is None:
                continue
            same = (by_policy[p].cpu() == targets.cpu()).tolist()
            attr, ok = a.clone(), [j for j in ok_p if same[j]]
            rows = [j for j in rows if not same[j]]
            break
        if rows:
            tag = f"explaining the {policy} target: " if done else ""
            part, ok_part = self._explain(explainer, x[rows], targets[rows],
                                          [out.samples[j] for j in rows], out, policy, tag)
            if part is not None:
                if attr is None:
                    attr = part.new_zeros((len(x), *part.shape[1:]))
                placed = [rows[j] for j in ok_part]
                attr[placed] = part[ok_part].to(attr.dtype)
                ok += placed
        return attr, sorted(ok)

    def _explain(self, explainer, x, targets, samples: list[int], out: BlockResult,
                 policy: str = "target", tag: str = ""):
        """Attributions of ``samples`` (rows of ``x``; zero rows where a row fails) and the
        rows that succeed (the block at once, then row by row); records explainer warnings,
        all-zero maps and the method's ``metadata["fallback_samples"]`` in ``out.flags``."""
        try:
            with sample_keys(samples), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                attr = explainer(x, targets)
            out.warnings += [w for w in dict.fromkeys(
                f"{w.category.__name__}: {w.message} (block of samples {samples[0]}–"
                f"{samples[-1]})" for w in caught) if w not in out.warnings]
            self._flag(explainer, attr, samples, list(range(len(x))), out, policy)
            return attr, list(range(len(x)))
        except Exception as exc:  # noqa: BLE001 - retried per sample below
            if len(x) == 1:
                out.errors.append({"metric": None, "sample": samples[0],
                                   "error": tag + _error(exc)})
                return None, []
        maps, ok = [], []
        for j, s in enumerate(samples):
            try:
                with sample_keys([s]):
                    a = explainer(x[j:j + 1], targets[j:j + 1])
                self._flag(explainer, a, [s], [0], out, policy)
                maps.append(a)
                ok.append(j)
            except Exception as exc:  # noqa: BLE001 - this sample fails, the others go on
                out.errors.append({"metric": None, "sample": s, "error": tag + _error(exc)})
        if not maps:
            return None, []
        full = maps[0].new_zeros((len(x), *maps[0].shape[1:]))
        full[ok] = torch.cat(maps)
        return full, ok

    @staticmethod
    def _flag(explainer, attr, samples, rows, out: BlockResult, policy: str) -> None:
        empty = (attr.detach().flatten(1) == 0).all(1).tolist()
        fallback = getattr(explainer, "metadata", {}).get("fallback_samples") or []
        for kind, hits in (("empty", [samples[j] for j in rows if empty[j]]),
                           ("fallback", [samples[j] for j in fallback if j < len(samples)])):
            if hits:
                out.flags.setdefault(kind, {}).setdefault(policy, []).extend(
                    int(s) for s in hits)

    @staticmethod
    def _flag_no_map(samples: list[int], out: BlockResult, policy: str) -> None:
        said = set(out.flags.get("fallback", {}).get(policy, []))
        missing = [s for s in samples if s not in said
                   and s not in out.flags.get("no_map", {}).get(policy, [])]
        if missing:
            out.flags.setdefault("no_map", {}).setdefault(policy, []).extend(missing)

    def _score(self, name, fn, explainer, x, attr, targets, masks, idx, out) -> None:
        """Scores of metric ``name`` for the block, or per sample where the block fails."""
        try:
            with sample_keys(idx):
                scores = self._call(fn, explainer, x, attr, targets, masks, name)
            if scores is not None:
                out.rows += [(name, s, float(v)) for s, v in zip(idx, scores.tolist())]
            return
        except Exception as exc:  # noqa: BLE001 - retried per sample below
            if len(idx) == 1:
                out.errors.append({"metric": name, "sample": idx[0], "error": _error(exc)})
                return
        for j, s in enumerate(idx):
            try:
                with sample_keys([s]):
                    scores = self._call(fn, explainer, x[j:j + 1], attr[j:j + 1],
                                        targets[j:j + 1], None if masks is None
                                        else masks[j:j + 1], name)
                if scores is not None:
                    out.rows.append((name, s, float(scores.reshape(-1)[0])))
            except Exception as exc:  # noqa: BLE001
                out.errors.append({"metric": name, "sample": s, "error": _error(exc)})

    def _options(self, fn, x, name, explainer=None, warn_renames=False) -> dict[str, Any]:
        """The run's options for metric ``fn``: seed, batch size, explainer where it takes
        them, ~224 flipping steps, then the user's ``metric_options[name]``."""
        spec = self.spec
        params = inspect.signature(fn).parameters
        extra = {k: v for k, v in (("seed", spec["seed"]), ("batch_size", spec["batch_size"]),
                                   ("explainer", explainer)) if k in params}
        if "features_in_step" in params:  # pixel flipping: ~224 steps, not one per pixel
            extra["features_in_step"] = math.ceil(x.shape[2] * x.shape[3] / 224)
        user = spec["metric_options"].get(name, {})
        extra.update(with_new_names(fn, user, name) if warn_renames else user)
        return extra

    def _call(self, fn, explainer, x, attr, targets, masks, name):
        extra = self._options(fn, x, name, explainer)
        if fn.kind == "model":
            scores = fn(self.model, x, attr, targets, **extra)
        elif fn.kind == "mask":
            if masks is None:
                return None
            scores = fn(attr, masks, **extra)
        else:
            scores = fn(attr, **extra)
        return scores.detach().reshape(-1).cpu()
