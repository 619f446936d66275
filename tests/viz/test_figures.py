"""viz.figures: report figures are valid PNGs, written atomically."""

import os

import pytest
import torch
from PIL import Image

import faithmap.data as fd
from faithmap.viz.figures import curves_figure, heatmap_grid


@pytest.fixture(scope="module")
def digits():
    images, labels = fd.load("mnist", split="test")
    return images[:3], labels[:3]


def _curves():
    f = [0.0, 0.5, 1.0]
    return {"saliency": {"fractions": f, "deletion": [1.0, 0.4, 0.1],
                         "insertion": [0.1, 0.6, 1.0]},
            "gradcam": {"fractions": f, "deletion": [1.0, 0.7, 0.2],
                        "insertion": [0.1, 0.3, 1.0]}}


def test_curves_figure_writes_a_png(tmp_path):
    path = curves_figure(_curves(), tmp_path / "curves.png", "title")
    assert path == tmp_path / "curves.png"
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height > 100
    assert os.listdir(tmp_path) == ["curves.png"]  # no temporary file left


def test_heatmap_grid_rows_are_samples_columns_methods(tmp_path, digits):
    images, labels = digits
    maps = {"saliency": images.clone(), "signed": images - 0.5, "empty": torch.zeros(0, 1, 28, 28)}
    one = heatmap_grid(images[:1], {"saliency": maps["saliency"][:1]}, tmp_path / "one.png", "t")
    many = heatmap_grid(images, maps, tmp_path / "many.png", "t",
                        [f"target {int(t)}" for t in labels])
    with Image.open(one) as a, Image.open(many) as b:
        assert a.format == b.format == "PNG"
        assert b.height > 2 * a.height and b.width > a.width  # 3 rows, 3 columns (empty dropped)


def test_figure_write_is_atomic(tmp_path, monkeypatch):
    """A write that fails leaves the previous figure intact and no temporary file."""
    path = curves_figure(_curves(), tmp_path / "curves.png", "first")
    before = path.read_bytes()

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr("faithmap.core.files.os.fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        curves_figure(_curves(), path, "second")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["curves.png"]
