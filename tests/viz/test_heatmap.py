"""viz.heatmap: heatmaps, overlays and side-by-side panels of real bundled images."""

import numpy as np
import pytest
import torch

import faithmap.data as fd
from faithmap.viz import heatmap, overlay, side_by_side, to_map


@pytest.fixture(scope="module")
def photo():
    return fd.sample_images(size=(24, 32))["astronaut"]  # 3×24×32 RGB


@pytest.fixture(scope="module")
def digit():
    images, _ = fd.load("mnist", split="test")
    return images[0]  # 1×28×28 grey


def _signed(shape):
    """Left half negative, right half positive."""
    m = torch.ones(shape)
    m[..., : shape[-1] // 2] = -1.0
    return m


def test_to_map_sums_channels(photo):
    attr = torch.stack([photo[0], -photo[1], 2 * photo[2]])
    assert torch.allclose(to_map(attr), photo[0] - photo[1] + 2 * photo[2])
    assert to_map(photo[0]).shape == (24, 32)


def test_heatmap_shape_range_and_sign_colours(photo):
    rgb = heatmap(_signed((1, 24, 32)))
    assert rgb.shape == (24, 32, 3) and rgb.min() >= 0 and rgb.max() <= 1
    left, right = rgb[:, 0], rgb[:, -1]
    assert (left[:, 2] > 0.9).all() and (left[:, 0] < 0.1).all()  # negative → blue
    assert (right[:, 0] > 0.9).all() and (right[:, 2] < 0.1).all()  # positive → red
    pos = heatmap(photo)  # non-negative map: inferno, brighter where larger
    assert pos.shape == (24, 32, 3)
    m = to_map(photo)
    lo, hi = np.unravel_index(int(m.argmin()), m.shape), np.unravel_index(int(m.argmax()),
                                                                           m.shape)
    assert pos[hi].sum() > pos[lo].sum()


@pytest.mark.parametrize("value", [0.0, 2.5])
def test_constant_map_is_finite_and_uniform(value):
    rgb = heatmap(torch.full((1, 8, 8), value))
    assert np.isfinite(rgb).all()
    assert np.allclose(rgb, rgb[0, 0])


def test_overlay_and_side_by_side_are_uint8(photo, digit):
    attr = _signed((3, 24, 32))
    over = overlay(photo, attr)
    assert over.shape == (24, 32, 3) and over.dtype == np.uint8
    panels = side_by_side(photo, attr)
    assert panels.shape == (24, 96, 3) and panels.dtype == np.uint8
    np.testing.assert_array_equal(panels[:, :32], (photo.permute(1, 2, 0).numpy() * 255)
                                  .round().astype(np.uint8))  # the image itself
    np.testing.assert_array_equal(panels[:, 32:64], (heatmap(attr) * 255).round()
                                  .astype(np.uint8))
    np.testing.assert_array_equal(panels[:, 64:], over)
    grey = side_by_side(digit, torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(0)))
    assert grey.shape == (28, 84, 3) and grey.dtype == np.uint8
    assert (grey[:, :28, 0] == grey[:, :28, 1]).all()  # grey image repeated to RGB


def test_overlay_blends_by_alpha(photo):
    attr = _signed((1, 24, 32))
    base = (photo.permute(1, 2, 0).numpy() * 255).round()
    np.testing.assert_array_equal(overlay(photo, attr, alpha=0.0), base.astype(np.uint8))
    np.testing.assert_array_equal(overlay(photo, attr, alpha=1.0),
                                  (heatmap(attr) * 255).round().astype(np.uint8))


def test_sign_convention_and_forced_scale(digit):
    from faithmap.viz import sign_convention

    assert sign_convention(digit) == "non-negative"
    assert sign_convention(-digit) == "non-positive"
    assert sign_convention(digit - 0.5) == "signed"
    assert sign_convention(torch.zeros(1, 4, 4)) == "empty"
    forced = heatmap(digit, signed=True)  # a non-negative map on the signed scale
    assert np.allclose(forced[0, 0], [1.0, 1.0, 1.0], atol=0.01)  # zero → white in bwr
    assert np.allclose(heatmap(digit)[0, 0], [0.0, 0.0, 0.0], atol=0.02)  # zero → black


def test_colorbar_matches_the_scale():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from faithmap.viz import colorbar

    fig, ax = plt.subplots()
    signed = colorbar(fig, ax, signed=True)
    plain = colorbar(fig, ax, signed=False)
    assert signed.mappable.get_clim() == (-1.0, 1.0) and signed.mappable.cmap.name == "bwr"
    assert plain.mappable.get_clim() == (0.0, 1.0) and plain.mappable.cmap.name == "inferno"
    assert [t.get_text() for t in signed.ax.get_xticklabels()] == ["−", "0", "+"]
    assert "signed" in signed.ax.get_xlabel()
    plt.close(fig)


def test_nan_pixels_get_the_flag_colour_and_do_not_spoil_the_scale(digit):
    from faithmap.viz.heatmap import FLAG_RGB

    m = digit - 0.5
    clean = heatmap(m)
    m = m.clone()
    m[:, :2] = float("nan")
    rgb = heatmap(m)
    assert np.isfinite(rgb).all()
    np.testing.assert_allclose(rgb[:2], np.broadcast_to(FLAG_RGB, (2, 28, 3)))
    assert np.abs(rgb[2:] - clean[2:]).max() < 0.05  # same scale from the finite pixels
    assert np.allclose(heatmap(torch.full((1, 4, 4), float("nan"))), FLAG_RGB)


def test_side_by_side_legend_strip_shows_the_scale(photo, digit):
    attr = _signed((3, 24, 32))
    plain = side_by_side(photo, attr)
    with_legend = side_by_side(photo, attr, legend=True)
    assert with_legend.shape == (24 + 44, 360, 3) and with_legend.dtype == np.uint8
    np.testing.assert_array_equal(with_legend[:24, :96], plain)  # the panels unchanged
    assert (with_legend[:24, 96:] == 255).all()  # narrow panels padded white
    bar = with_legend[24 + 44 // 4 + 2].astype(int)  # a row through the colour bar
    assert bar[20, 2] > 200 > bar[20, 0] and bar[-20, 0] > 200 > bar[-20, 2]  # blue … red
    grey = side_by_side(digit, digit, legend=True)  # non-negative: inferno, dark → bright
    row = grey[28 + 44 // 4 + 2].astype(int)
    assert row[20].sum() < 150 and row[-20].sum() > 450
