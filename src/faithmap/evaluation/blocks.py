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
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.registry import METHODS, get_explainer
from ..core.seeding import sample_keys
from ..metrics import get_metric


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


class BlockRunner:
    """Runs blocks for one model (one copy per worker); explainers are built once per method.

    ``spec`` holds the run's options: ``metrics``, ``method_options``, ``metric_options``,
    ``seed``, ``batch_size``, ``keep`` (maps of samples below this index are returned).
    """

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

    def explainer(self, method: str):
        if method not in self._explainers:
            self._explainers[method] = build_explainer(
                method, self.model, self.spec["method_options"].get(method, {}),
                self.spec["batch_size"], self.spec["seed"])
        return self._explainers[method]

    def run(self, dataset: str, kind: str | None, method: str, samples: list[int],
            images: torch.Tensor, targets: torch.Tensor,
            masks: torch.Tensor | None) -> BlockResult:
        """Explain and score ``samples`` (global indices; rows of ``images``)."""
        out = BlockResult(dataset, method, list(samples))
        try:
            explainer = self.explainer(method)
        except Exception as exc:  # noqa: BLE001 - reported for every sample of the block
            out.errors += [{"metric": None, "sample": s, "error": _error(exc)} for s in samples]
            return out
        x = images.to(self.device)
        m = None if masks is None else masks.to(self.device)
        tic = time.perf_counter()
        attr, ok = self._explain(explainer, x, targets, out)
        out.explain_s = time.perf_counter() - tic
        if not ok:
            return out
        keep = [j for j, s in enumerate(ok) if out.samples[s] < self.spec["keep"]]
        if keep:
            out.maps = attr[keep].detach().cpu()
            out.map_samples = [out.samples[ok[j]] for j in keep]
        rows = torch.tensor(ok)
        xs, ts = x[rows.to(x.device)], targets[rows]
        ms = None if m is None else m[rows.to(m.device)]
        idx = [out.samples[j] for j in ok]
        tic = time.perf_counter()
        for name, fn in self.fns.items():
            if name == "grid_pointing_game" and kind != "grid":
                continue  # the grid pointing game is defined on grid images only
            self._score(name, fn, explainer, xs, attr, ts, ms, idx, out)
        out.metrics_s = time.perf_counter() - tic
        return out

    def _explain(self, explainer, x, targets, out: BlockResult):
        """Attributions of the rows that succeed and their row numbers (block, then per row)."""
        try:
            with sample_keys(out.samples), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                attr = explainer(x, targets)
            out.warnings = list(dict.fromkeys(
                f"{w.category.__name__}: {w.message} (block of samples {out.samples[0]}–"
                f"{out.samples[-1]})" for w in caught))
            return attr, list(range(len(x)))
        except Exception as exc:  # noqa: BLE001 - retried per sample below
            if len(x) == 1:
                out.errors.append({"metric": None, "sample": out.samples[0],
                                   "error": _error(exc)})
                return None, []
        maps, ok = [], []
        for j, s in enumerate(out.samples):
            try:
                with sample_keys([s]):
                    maps.append(explainer(x[j:j + 1], targets[j:j + 1]))
                ok.append(j)
            except Exception as exc:  # noqa: BLE001 - this sample fails, the others go on
                out.errors.append({"metric": None, "sample": s, "error": _error(exc)})
        return (torch.cat(maps) if maps else None), ok

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

    def _call(self, fn, explainer, x, attr, targets, masks, name):
        spec = self.spec
        params = inspect.signature(fn).parameters
        extra = {k: v for k, v in (("seed", spec["seed"]), ("batch_size", spec["batch_size"]),
                                   ("explainer", explainer)) if k in params}
        if "features_in_step" in params:  # pixel flipping: ~224 steps, not one per pixel
            extra["features_in_step"] = math.ceil(x.shape[2] * x.shape[3] / 224)
        extra.update(spec["metric_options"].get(name, {}))
        if fn.kind == "model":
            scores = fn(self.model, x, attr, targets, **extra)
        elif fn.kind == "mask":
            if masks is None:
                return None
            scores = fn(attr, masks, **extra)
        else:
            scores = fn(attr, **extra)
        return scores.detach().reshape(-1).cpu()
