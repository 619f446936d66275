"""The grid benchmark draws only cells the model classifies correctly on their own."""

import pytest
import torch

import faithmap as fm
from faithmap.evaluation import load_eval_data
from faithmap.evaluation.data import correct_digits, fit_cells
from faithmap.zoo import load as zoo_load


@pytest.fixture(scope="module")
def model():
    return zoo_load("mnist_allconv")


def _cells(images: torch.Tensor) -> torch.Tensor:
    """The four 28×28 cells of N 2×2 grids, as 4N×1×28×28 (row-major per grid)."""
    n = len(images)
    return images.view(n, 1, 2, 28, 2, 28).permute(0, 2, 4, 1, 3, 5).reshape(4 * n, 1, 28, 28)


def test_every_cell_is_classified_correctly_alone(model):
    data = load_eval_data("grid", n=40, seed=1, model=model, correct_cells=True)
    cells = _cells(data.images)
    labels = torch.tensor([int(c) for grid in data.info["digit_index"] for c in
                           fm.data.load("mnist", split="test")[1][grid]])
    with torch.no_grad():
        assert (model(cells).argmax(1) == labels).all()
    rows = torch.arange(40)
    assert (labels.view(40, 4)[rows, torch.tensor(data.info["cell"])] == data.target).all()
    assert data.info["correct_cells"] is True and 0.9 < data.info["cell_accuracy"] < 1.0
    # the digits the model gets wrong exist, and none of them is drawn
    images, all_labels = fm.data.load("mnist", split="test")
    wrong = set(torch.nonzero(~correct_digits(model, images, all_labels)).flatten().tolist())
    assert wrong and not wrong & {i for g in data.info["digit_index"] for i in g}
    # the plain grid (the old call) is unchanged and does contain misclassified cells
    plain = load_eval_data("grid", n=40, seed=1)
    bench = fm.data.grid("mnist", n=2, count=40, split="test", seed=1)
    assert torch.equal(plain.images, bench.images) and "correct_cells" not in plain.info
    with torch.no_grad():
        assert not (model(_cells(plain.images)).argmax(1) == bench.labels.flatten()).all()


def test_correct_cells_needs_a_model_and_the_grid():
    with pytest.raises(ValueError, match="needs model="):
        load_eval_data("grid", n=2, correct_cells=True)
    with pytest.raises(ValueError, match="grid"):
        load_eval_data("cluttered", n=2, correct_cells=True, model=zoo_load("mnist_allconv"))


def test_fit_cells_pads_resizes_and_repeats_channels():
    images, _ = fm.data.load("mnist", split="test")
    cells = images[:3]
    assert fit_cells(cells, None) is cells and fit_cells(cells, 28) is cells
    padded = fit_cells(cells, 56)
    assert padded.shape == (3, 1, 56, 56)
    assert torch.equal(padded[:, :, 14:42, 14:42], cells) and padded.sum() == cells.sum()
    assert fit_cells(cells, 14).shape == (3, 1, 14, 14)
    assert fit_cells(cells, 28, channels=3).shape == (3, 3, 28, 28)


def test_evaluate_uses_correct_cells_on_the_grid(model):
    result = fm.evaluate(model, "grid", ["saliency"], ["sparseness"], n=4, progress=False,
                         curve_samples=0, heatmap_samples=0)
    info = result.config["datasets"]["grid"]
    assert info["correct_cells"] is True and len(info["digit_index"]) == 4
