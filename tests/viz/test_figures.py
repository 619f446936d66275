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


def _capture(monkeypatch):
    """Replace the PNG writer with one that keeps the matplotlib figure for inspection."""
    import faithmap.viz.figures as figures

    seen = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: seen.append(fig) or path)
    return seen


def test_more_than_ten_methods_get_distinct_curve_styles(monkeypatch, tmp_path):
    from faithmap.viz import method_styles

    styles = method_styles(25)
    assert len(set(styles)) == 25 and len({c for c, _ in styles[:20]}) == 20
    assert len({c for c, _ in method_styles(10)}) == 10
    f = [0.0, 0.5, 1.0]
    curves = {f"m{i}": {"fractions": f, "deletion": [1.0, 0.5 - i / 50, 0.1],
                        "insertion": [0.1, 0.5, 1.0]} for i in range(14)}
    seen = _capture(monkeypatch)
    curves_figure(curves, tmp_path / "c.png", "t")
    for ax in seen[0].axes[:2]:
        drawn = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines()]
        assert len(drawn) == 14 and len(set(drawn)) == 14
        assert len({c for c, _ in drawn}) == 14  # every method its own colour, not only style


def test_curves_with_different_steps_for_deletion_and_insertion(tmp_path):
    curves = {"a": {"fractions": [0.0, 1.0], "deletion": [1.0, 0.0],
                    "deletion_fractions": [0.0, 1.0], "insertion_fractions": [0.0, 0.5, 1.0],
                    "insertion": [0.0, 0.5, 1.0]}}
    assert curves_figure(curves, tmp_path / "c.png", "t").stat().st_size > 0


def test_heatmap_grid_has_colour_bars_sign_conventions_and_notes(monkeypatch, tmp_path,
                                                                 digits):
    images, _ = digits
    maps = {"absolute": images.clone(), "signed": images - 0.5 * images.flip(-1),
            "empty": torch.zeros_like(images)}
    seen = _capture(monkeypatch)
    heatmap_grid(images, maps, tmp_path / "h.png", "t", ["a", "b", "c"],
                 notes={"signed": {1: "fell back"}})
    fig = seen[0]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 3  # one per method column
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles[1:] == ["absolute\nnon-negative", "signed\nsigned", "empty\nempty"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("all 0") == 3 and "fell back" in texts
    assert "red = positive, blue = negative" in fig._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_heatmap_grid_flags_nan_maps_instead_of_a_black_cell(monkeypatch, tmp_path, digits):
    """A method that gave no map (NaN, e.g. no boundary found) is named in its cell and drawn
    in the flag colour, not as a black (or zero) map with no word of why."""
    from faithmap.viz.heatmap import FLAG_RGB

    images, _ = digits
    maps = {"big": images - 0.5 * images.flip(-1)}
    maps["big"][1] = float("nan")
    maps["big"][2, :, :3] = float("inf")
    seen = _capture(monkeypatch)
    heatmap_grid(images, maps, tmp_path / "h.png", "t", notes={"big": {1: "fell back"}})
    fig = seen[0]
    texts = {ax.get_subplotspec().rowspan.start: t.get_text()
             for ax in fig.axes if ax.get_label() != "<colorbar>" for t in ax.texts}
    assert texts == {1: "NaN map\nfell back", 2: "84 NaN px"}
    cell = fig.axes[3].images[0].get_array()  # row 1, method column
    assert cell.shape == (28, 28, 3) and (abs(cell - FLAG_RGB) < 1e-6).all()
    import matplotlib.pyplot as plt

    plt.close(fig)
