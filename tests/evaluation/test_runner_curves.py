"""fm.evaluate runs each perturbation curve once: the metrics' own curves feed the report's
figures, insertion−deletion and MoRF reuse them; per-stage progress bars and timings."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap import data as fm_data
from faithmap.evaluation import EvalData
from model_checks import assert_same_fingerprint, fingerprint
from tiny_models import tiny_cnn

METRICS = ["deletion", "insertion", "insertion_deletion", "lerf_morf_gap"]


class Tally:
    rows = 0


class Counting(nn.Module):
    """Counts the rows of the gradient-free forward passes (kept outside the module)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.tally = Tally()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            self.tally.rows += x.shape[0]
        return self.model(x)


@pytest.fixture(scope="module")
def digits() -> EvalData:
    x, y = fm_data.load("mnist", "test")
    return EvalData("digits", x[:8].contiguous(), y[:8].clone(), None, {"source": "mnist"})


def test_forwards_equal_the_raw_curve_count_and_figures_add_none(digits):
    """8 digits × (deletion + insertion + LeRF) curves of T+1 = 197 points (4 pixels per
    step on 28×28; LeRF/MoRF's evaluation default equals deletion's step and its 0.0
    substrate deletion's zeros, so MoRF is deletion's curve), plus one prediction per
    digit: that many gradient-free rows and no more — insertion−deletion, MoRF and the
    report's curves (all 8 digits) come from the same curves."""
    model = tiny_cnn(in_channels=1, classes=10)
    counted = Counting(model)
    before = fingerprint(model)
    result = fm.evaluate(counted, digits, ["saliency"], METRICS, block=4, progress=False,
                         curve_samples=8, heatmap_samples=2)
    assert_same_fingerprint(before, fingerprint(model))
    n, points = len(digits.images), 784 // 4 + 1
    assert counted.tally.rows == n + 3 * n * points
    assert not result.errors
    # the figure's curves are the metrics' curves: their mean AUC is the deletion score
    entry = result.curves["digits"]["saliency"]
    assert len(entry["deletion"]) == len(entry["insertion"]) == points
    attr = fm.explain(model, digits.images, method="saliency", target=None)
    fractions, curves = fm.metrics.perturbation_curve(model, digits.images, attr, None,
                                                      mode="deletion", seed=0)
    torch.testing.assert_close(torch.tensor(entry["deletion"]), curves.mean(0),
                               rtol=1e-5, atol=1e-6)
    assert entry["fractions"] == entry["deletion_fractions"] == fractions.tolist()
    timing = result.timings["digits"]["saliency"]
    assert set(timing["metric_s"]) == set(METRICS)
    stages = result.stage_timings
    assert set(stages["metric_s"]) == set(METRICS) and stages["total_s"] >= stages["blocks_s"]


def test_figure_curves_of_a_metric_not_run_are_computed_only_for_the_shown_samples(digits):
    """Only insertion is scored: the deletion figure curve is computed for the first
    ``curve_samples`` digits (3), nothing else is recomputed."""
    model = tiny_cnn(in_channels=1, classes=10)
    counted = Counting(model)
    result = fm.evaluate(counted, digits, ["saliency"], ["insertion"], block=4,
                         progress=False, curve_samples=3, heatmap_samples=0)
    n, points = len(digits.images), 784 // 4 + 1
    assert counted.tally.rows == n + n * points + 3 * points
    assert set(result.curves["digits"]["saliency"]) >= {"deletion", "insertion"}


def test_resumed_runs_keep_the_figure_curves(digits, tmp_path):
    model = tiny_cnn(in_channels=1, classes=10)
    first = fm.evaluate(model, digits, ["saliency"], ["deletion"], block=4, progress=False,
                        out=tmp_path, curve_samples=8, heatmap_samples=2)
    rows = []
    hook = model.register_forward_pre_hook(
        lambda module, args: rows.append(0 if torch.is_grad_enabled() else len(args[0])))
    try:
        again = fm.evaluate(model, digits, ["saliency"], ["deletion"], block=4,
                            progress=False, out=tmp_path, curve_samples=8, heatmap_samples=2,
                            resume=True)
    finally:
        hook.remove()
    assert sum(rows) == len(digits.images)  # the predictions only: no curve is rerun
    assert again.curves == first.curves and again.samples == first.samples


def test_progress_bars_per_stage_and_silent_without_a_terminal(digits, monkeypatch):
    """With a terminal: one bar per stage (explain, each metric, figures) with an ETA;
    without one (or progress=False): nothing."""
    model = tiny_cnn(in_channels=1, classes=10)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    fm.evaluate(model, digits, ["saliency"], ["deletion", "sparseness"], block=4,
                curve_samples=2, heatmap_samples=0)
    assert pipe.getvalue() == ""
    tty = Terminal()
    monkeypatch.setattr("sys.stderr", tty)
    fm.evaluate(model, digits, ["saliency"], ["deletion", "sparseness"], block=4,
                curve_samples=2, heatmap_samples=0)
    text = tty.getvalue()
    for stage in ("explain", "deletion", "sparseness"):
        assert f"{stage}: 100%" in text
    assert "<00:00" in text  # tqdm's remaining-time field
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    fm.evaluate(model, digits, ["saliency"], ["deletion"], block=4, progress=False,
                curve_samples=2, heatmap_samples=0)
    assert quiet.getvalue() == ""
