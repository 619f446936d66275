"""fm.evaluate: methods × metrics × datasets, failures isolated, files written."""

import json
import math

import pytest
import torch

import faithmap as fm
from faithmap.evaluation import EvalData, mean_ci
from model_checks import assert_same_fingerprint, fingerprint
from tiny_models import tiny_cnn


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(10, 1, 12, 12, generator=g)
    masks = torch.zeros(10, 1, 12, 12, dtype=torch.bool)
    masks[:, :, 2:7, 3:9] = True
    return EvalData("tiny", images, torch.randint(0, 3, (10,), generator=g), masks,
                    {"source": "random"})


def test_mean_ci():
    mean, ci, n = mean_ci([1.0, 2.0, 3.0, float("nan")])
    assert (mean, n) == (2.0, 3)
    assert math.isclose(ci, 1.959963984540054 * 1.0 / math.sqrt(3))
    assert math.isnan(mean_ci([])[0])


def test_evaluate_runs_every_pair_and_isolates_failures(tiny_data, tmp_path):
    model = tiny_cnn(in_channels=1, classes=3)
    before = fingerprint(model)

    def broken(model, x, attributions, targets):
        raise RuntimeError("broken metric")

    broken.kind, broken.higher_is_better, broken.category = "model", True, "faithfulness"
    with fm.METRICS.scoped("broken_test_metric", broken):
        result = fm.evaluate(
            model, tiny_data, ["saliency", "gradcam", "no_such_method"],
            ["deletion", "pointing_game", "sparseness", "broken_test_metric"],
            out=tmp_path, block=4, progress=False, curve_samples=4, heatmap_samples=3)
    assert "broken_test_metric" not in fm.available_metrics()
    assert_same_fingerprint(before, fingerprint(model))
    rows = {(r["method"], r["metric"]): r for r in result.summary()}
    for method in ("saliency", "gradcam"):
        for metric in ("deletion", "pointing_game", "sparseness"):
            assert rows[(method, metric)]["n"] == 10
    failed = {(e["method"], e["metric"]) for e in result.errors}
    assert ("no_such_method", None) in failed
    assert {("saliency", "broken_test_metric"), ("gradcam", "broken_test_metric")} <= failed
    # per-sample scores equal a direct call of the metric on the same attributions (of the
    # predicted class: sparseness follows the default policy, docs/evaluation.md)
    attr = fm.explain(model, tiny_data.images, method="saliency", target=None)
    direct = fm.metrics.sparseness(attr)
    ours = [r["score"] for r in result.samples
            if r["method"] == "saliency" and r["metric"] == "sparseness"]
    torch.testing.assert_close(torch.tensor(ours), direct.float(), rtol=1e-5, atol=1e-6)
    for name in ("results.csv", "summary.csv", "results.json", "report.html",
                 "curves_tiny.png", "heatmaps_tiny.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["samples"]) == len(result.samples) and saved["errors"]
    html = (tmp_path / "report.html").read_text()
    assert "no_such_method" in html and "★" in html


def test_evaluate_is_seeded(tiny_data):
    model = tiny_cnn(in_channels=1, classes=3)
    run = lambda: fm.evaluate(model, tiny_data, ["smoothgrad"], ["deletion"],  # noqa: E731
                              progress=False, curve_samples=0,
                              method_options={"smoothgrad": {"n_samples": 3}})
    assert run().samples == run().samples


def test_mask_metrics_skipped_without_masks(tiny_data):
    data = EvalData("nomask", tiny_data.images, tiny_data.target)
    result = fm.evaluate(tiny_cnn(in_channels=1, classes=3), data, ["saliency"],
                         ["pointing_game", "sparseness"], progress=False, curve_samples=0)
    assert {r["metric"] for r in result.samples} == {"sparseness"}


def test_unreadable_files_are_reported_and_fail_the_cli(tmp_path):
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    from faithmap.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((30, 30), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["evaluate", "--model", "zoo:mnist_allconv", "--data",
                                       str(folder), "--methods", "saliency", "--metrics",
                                       "sparseness", "--out", str(out)])
    assert result.exit_code == 1, result.output
    saved = json.loads((out / "results.json").read_text())
    assert len([r for r in saved["samples"] if r["metric"] == "sparseness"]) == 2
    assert any("broken.png" in e["error"] for e in saved["errors"])
    assert "broken.png" in (out / "report.html").read_text()


def test_explainer_warnings_are_collected_not_lost(tiny_data, tmp_path):
    """A method's warnings go to result.warnings / results.json (once per block and message)."""
    import warnings

    class Warns(fm.Saliency):
        def attribute(self, x, target):
            warnings.warn("no boundary for some samples", RuntimeWarning, stacklevel=1)
            return super().attribute(x, target)

    with fm.METHODS.scoped("warns_for_test", Warns):
        result = fm.evaluate(tiny_cnn(in_channels=1, classes=3), tiny_data,
                             ["saliency", "warns_for_test"], ["sparseness"], block=4,
                             out=tmp_path, progress=False, curve_samples=0, heatmap_samples=0)
    assert "warns_for_test" not in fm.available_methods()
    n_blocks = math.ceil(len(tiny_data.images) / 4)
    assert [w["method"] for w in result.warnings] == ["warns_for_test"] * n_blocks
    assert all("RuntimeWarning: no boundary for some samples (block of samples" in w["warning"]
               for w in result.warnings)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["warnings"] == result.warnings
    assert "warns_for_test ×" in result.table()


def test_old_metric_option_names_reach_the_curves(tiny_data):
    """insertion.substrate= (old name of baseline=) sets the curve's baseline as well as the
    score, with a warning; the default (blur) is not used then."""
    model = tiny_cnn(in_channels=1, classes=3)
    run = lambda opts: fm.evaluate(model, tiny_data, ["saliency"], ["insertion"],  # noqa: E731
                                   progress=False, curve_samples=4, heatmap_samples=0,
                                   metric_options={"insertion": opts})
    new = run({"baseline": "zeros"})
    with pytest.warns(DeprecationWarning, match="'substrate' is deprecated"):
        old = run({"substrate": "zeros"})
    blur = run({})
    assert old.curves == new.curves and old.samples == new.samples
    assert old.curves != blur.curves


def test_empty_maps_and_fallbacks_are_flagged(tiny_data, tmp_path):
    """All-zero maps and samples a method reports in metadata["fallback_samples"] are
    recorded per target in result.flags / results.json and counted under the table."""

    class ZeroFirst(fm.Saliency):
        def attribute(self, x, target):
            attr = super().attribute(x, target)
            attr[0] = 0  # the block's first sample: an all-zero map
            self.metadata["fallback_samples"] = [1]
            return attr

    with fm.METHODS.scoped("zero_first_for_test", ZeroFirst):
        result = fm.evaluate(tiny_cnn(in_channels=1, classes=3), tiny_data,
                             ["zero_first_for_test"], ["sparseness"], block=5, out=tmp_path,
                             progress=False, curve_samples=0, heatmap_samples=3)
    flags = result.flags["tiny"]["zero_first_for_test"]
    assert flags == {"empty": {"predicted": [0, 5]}, "fallback": {"predicted": [1, 6]}}
    assert json.loads((tmp_path / "results.json").read_text())["flags"] == result.flags
    page = (tmp_path / "report.html").read_text()
    assert "all-zero maps: zero_first_for_test 2/10 (predicted target)" in page
    assert ("method fell back (a NaN map is not scored): zero_first_for_test 2/10 "
            "(predicted target)") in page


def test_nan_maps_are_flagged_and_never_scored(tiny_data):
    """A NaN map is a method's "no answer" (BIG without a boundary): its sample gets no
    score and no per-sample error, it is counted under flags, the other samples are scored."""

    class NaNSecond(fm.Saliency):
        def attribute(self, x, target):
            attr = super().attribute(x, target)
            attr[1] = float("nan")
            return attr

    with fm.METHODS.scoped("nan_second_for_test", NaNSecond):
        result = fm.evaluate(tiny_cnn(in_channels=1, classes=3), tiny_data,
                             ["nan_second_for_test"], ["sparseness"], block=5,
                             progress=False, curve_samples=0, heatmap_samples=0)
    assert result.flags["tiny"]["nan_second_for_test"] == {"no_map": {"predicted": [1, 6]}}
    summary = {r["metric"]: r for r in result.summary()}
    assert summary["sparseness"]["n"] == 8
    assert not result.errors
