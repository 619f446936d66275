"""fm.evaluate(target=...): which class each metric explains, and the predicted fraction."""

import json

import pytest
import torch

import faithmap as fm
from faithmap.evaluation import EvalData, load_eval_data
from faithmap.evaluation.policy import default_policy, describe, resolve_policy
from faithmap.zoo import load as zoo_load

INFO = {"deletion": {"kind": "model"}, "insertion_deletion": {"kind": "model"},
        "lerf_morf_gap": {"kind": "model"}, "fidelity": {"kind": "model"},
        "sparseness": {"kind": "map"}, "pointing_game": {"kind": "mask"},
        "pxap": {"kind": "mask"}, "grid_pointing_game": {"kind": "mask"}}


@pytest.fixture(scope="module")
def model():
    return zoo_load("mnist_allconv")


@pytest.fixture(scope="module")
def grid(model):
    return load_eval_data("grid", n=8, seed=0, model=model, correct_cells=True)


def test_default_policy_is_per_metric():
    policy = resolve_policy(None, list(INFO), INFO)
    assert [m for m, p in policy.items() if p == "predicted"] == [
        "deletion", "insertion_deletion", "lerf_morf_gap", "fidelity", "sparseness"]
    assert [m for m, p in policy.items() if p == "label"] == [
        "pointing_game", "pxap", "grid_pointing_game"]
    assert default_policy("grid_pointing_game") == "label"  # by name, without metadata
    assert set(resolve_policy("label", list(INFO), INFO).values()) == {"label"}
    mixed = resolve_policy({"deletion": "label"}, list(INFO), INFO)
    assert mixed["deletion"] == "label" and mixed["fidelity"] == "predicted"
    assert describe({"deletion": "predicted", "pxap": "label"}) == \
        "predicted class: deletion; label: pxap"
    with pytest.raises(ValueError, match="'predicted' or 'label'"):
        resolve_policy("prediction", list(INFO), INFO)
    with pytest.raises(ValueError, match="not run"):
        resolve_policy({"insertion": "label"}, list(INFO), INFO)


def _scores(result, metric):
    return torch.tensor([r["score"] for r in result.samples
                         if r["metric"] == metric and r["method"] == "saliency"])


def test_target_policy_changes_the_class_explained(model, grid):
    """Default: deletion explains the prediction, the grid pointing game the cell's label;
    target="label" makes deletion explain the label. Each per-sample score equals a direct
    call of the metric on the map of that class."""
    x = grid.images
    with torch.no_grad():
        pred = model(x).argmax(1)
    label = grid.target
    assert (pred != label).any()  # the policies explain different classes
    metrics = ["deletion", "grid_pointing_game"]
    run = lambda **kw: fm.evaluate(model, grid, ["saliency"], metrics, progress=False,  # noqa: E731
                                   curve_samples=0, heatmap_samples=0,
                                   metric_options={"deletion": {"step": 196}}, **kw)
    default, labelled = run(), run(target="label")

    def direct(target, metric):
        attr = fm.explain(model, x, method="saliency", target=target)
        if metric == "deletion":
            return fm.metrics.deletion(model, x, attr, target, step=196)
        return fm.metrics.grid_pointing_game(attr, grid.masks)

    torch.testing.assert_close(_scores(default, "deletion"), direct(pred, "deletion"))
    torch.testing.assert_close(_scores(labelled, "deletion"), direct(label, "deletion"))
    for result in (default, labelled):
        torch.testing.assert_close(_scores(result, "grid_pointing_game"),
                                   direct(label, "grid_pointing_game"))
    differ = pred != label
    assert not torch.allclose(_scores(default, "deletion")[differ],
                              _scores(labelled, "deletion")[differ])
    info = default.config["datasets"]["grid"]
    assert info["target_policy"] == {"deletion": "predicted", "grid_pointing_game": "label"}
    assert labelled.config["datasets"]["grid"]["target_policy"] == dict.fromkeys(metrics, "label")


def test_predicted_fraction_and_records_on_a_model_that_mispredicts(model, tmp_path):
    """Half the labels are shifted, so the model 'mispredicts' them: the recorded fraction
    is exactly the share of samples whose label is the model's top class."""
    images, labels = fm.data.load("mnist", split="test")
    images, labels = images[:20], labels[:20].clone()
    labels[::2] = (labels[::2] + 1) % 10
    with torch.no_grad():
        pred = model(images).argmax(1)
    expected = float((pred == labels).float().mean())
    assert 0.2 < expected < 0.8
    data = EvalData("shifted", images, labels)
    result = fm.evaluate(model, data, ["saliency"], ["deletion", "sparseness"], n=20,
                         out=tmp_path, seed=3, progress=False, curve_samples=2,
                         heatmap_samples=2, metric_options={"deletion": {"step": 196}})
    saved = json.loads((tmp_path / "results.json").read_text())["config"]["datasets"]["shifted"]
    assert saved["predicted_fraction"] == pytest.approx(expected)
    assert saved["n"] == 20 and saved["seeds"] == [3]
    assert saved["target_policy"] == {"deletion": "predicted", "sparseness": "predicted"}
    assert result.shown_labels["shifted"][0].startswith(f"predicted {int(pred[0])}")
    assert "(label" in result.shown_labels["shifted"][0]  # sample 0's label was shifted
    page = (tmp_path / "report.html").read_text()
    assert f"{100 * expected:.1f}% of samples" in page and "seeds [3]" in page
    assert "predicted class: deletion, sparseness" in result.table()


def test_label_target_without_labels_raises(model):
    images, _ = fm.data.load("mnist", split="test")
    data = EvalData("nolabels", images[:4])
    with pytest.raises(ValueError, match="no labels"):
        fm.evaluate(model, data, ["saliency"], ["sparseness"], target="label", progress=False,
                    curve_samples=0)
    result = fm.evaluate(model, data, ["saliency"], ["sparseness"], progress=False,
                         curve_samples=0)
    assert result.config["datasets"]["nolabels"]["predicted_fraction"] is None


def test_cli_target_option(tmp_path):
    from click.testing import CliRunner

    from faithmap.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "evaluate", "--model", "zoo:mnist_allconv", "--data", "cluttered", "--n", "4",
        "--methods", "saliency", "--metrics", "sparseness,pointing_game", "--target",
        "pointing_game=predicted", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["datasets"]["cluttered"]["target_policy"] == {
        "sparseness": "predicted", "pointing_game": "predicted"}
    bad = CliRunner().invoke(main, ["evaluate", "--model", "zoo:mnist_allconv", "--data",
                                    "cluttered", "--target", "guess", "--out", str(out)])
    assert bad.exit_code != 0 and "predicted" in bad.output
