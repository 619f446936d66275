"""viz.show / viz.compare: notebook figures of NCHW attributions on real bundled photos."""

import numpy as np
import pytest
import torch

import faithmap as fm
import faithmap.data as fd
from faithmap.viz import compare, show


@pytest.fixture(scope="module")
def photos():
    images = fd.sample_images(size=32)
    return torch.stack([images["astronaut"], images["chelsea"]])  # 2×3×32×32 in [0, 1]


def _signed(n=2, c=1, h=32, w=32):
    """Left half negative, right half positive."""
    m = torch.ones(n, c, h, w)
    m[..., : w // 2] = -1.0
    return m


def _pixels(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)


def _at(fig, ax, fx, fy):
    """The rendered RGB at fraction (fx, fy) of ``ax`` (0, 0 = its top left)."""
    buf = _pixels(fig)
    box = ax.get_window_extent()
    x = int(box.x0 + fx * box.width)
    y = int(buf.shape[0] - (box.y1 - fy * box.height))
    return buf[y, x]


def _close(fig):
    fig.clear()


def test_sign_all_positive_red_negative_blue_symmetric(photos):
    fig = show(photos, _signed())
    attr_ax = fig.axes[1]  # row 0: image, attribution
    left, right = _at(fig, attr_ax, 0.25, 0.5), _at(fig, attr_ax, 0.75, 0.5)
    assert right[0] > 200 and right[2] < 60  # positive → red
    assert left[2] > 200 and left[0] < 60  # negative → blue
    assert np.abs(left[[2, 1, 0]] - right).max() <= 2  # symmetric limits: mirror colours
    bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    lo, hi = bar.get_xlim()
    assert lo == -hi and "red = positive, blue = negative" in fig._suptitle.get_text()
    _close(fig)


def test_positive_negative_absolute(photos):
    for sign, left_white, right_white in (("positive", True, False), ("negative", False, True),
                                          ("absolute", False, False)):
        fig = show(None, _signed(), sign=sign)
        ax = fig.axes[0]
        left, right = _at(fig, ax, 0.25, 0.5), _at(fig, ax, 0.75, 0.5)
        assert (left.min() > 230) == left_white and (right.min() > 230) == right_white, sign
        if sign == "absolute":
            assert np.abs(left - right).max() <= 2  # |−1| = |1|: one colour
        assert ax.get_title() == f"attribution\n{sign}"
        bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
        assert [t.get_text() for t in bar.get_xticklabels()] == [
            "0", "−p99" if sign == "negative" else "+p99"]
        _close(fig)


def test_any_layout_or_grad_gives_the_same_picture(photos):
    attr = photos - photos.mean()
    reference = _pixels(compare(photos, {"a": attr}))
    grad = attr.clone().requires_grad_(True)
    non_contiguous = attr.transpose(2, 3).contiguous().transpose(2, 3)
    assert not non_contiguous.is_contiguous()
    channels_last = attr.contiguous(memory_format=torch.channels_last)
    for variant in (grad * 1.0, non_contiguous, channels_last, attr.numpy(), attr.double()):
        np.testing.assert_array_equal(_pixels(compare(photos, {"a": variant})), reference)
    # one sample as C×H×W or its channel sum as H×W: the same picture as the 1-row batch
    one = _pixels(show(photos[0], attr[0]))
    np.testing.assert_array_equal(one, _pixels(show(photos[:1], attr[:1].sum(1))))
    np.testing.assert_array_equal(one, _pixels(show(photos[0].permute(1, 2, 0).numpy(),
                                                    attr[0].sum(0).numpy())))


@pytest.mark.parametrize(("x", "maps", "match"), [
    (torch.rand(1, 1, 2, 3, 8, 8), {"a": torch.rand(1, 1, 8, 8)}, "x must be N×C×H×W"),
    (torch.rand(2, 3, 8, 8), {"a": torch.rand(2, 1, 8, 9)}, r"maps\['a'\] has 2 map"),
    (torch.rand(2, 3, 8, 8), {"a": torch.rand(3, 1, 8, 8)}, r"maps\['a'\] has 3 map"),
    (torch.rand(2, 4, 8, 8), {"a": torch.rand(2, 1, 8, 8)}, "1 .grey. or 3 .RGB. channels"),
    (None, {"a": torch.rand(2, 1, 8, 8), "b": torch.rand(1, 1, 8, 8)}, r"maps\['b'\]"),
    (None, {}, "non-empty dict"),
    (None, {"a": [[1.0]]}, "torch.Tensor or numpy array"),
])
def test_bad_shapes_are_clear_errors(x, maps, match):
    with pytest.raises((ValueError, TypeError), match=match):
        compare(x, maps)


def test_bad_options_are_clear_errors(photos):
    for kw, match in (({"sign": "abs"}, "sign must be one of"), ({"percentile": 0}, "percentile"),
                      ({"alpha": 2}, "alpha"), ({"scale": "row"}, "scale"),
                      ({"mean": [0.5, 0.5]}, "mean must have 1 or 3")):
        with pytest.raises(ValueError, match=match):
            show(photos, _signed(), **kw)


def test_nan_map_is_flagged_not_zero(photos):
    nan = torch.full((2, 1, 32, 32), float("nan"))
    nan[1, :, :4] = 1.0  # second map: all but 4 rows NaN
    fig = compare(photos, {"nan": nan, "zero": torch.zeros(2, 1, 32, 32)})
    texts = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): t.get_text()
             for ax in fig.axes if ax.get_label() != "<colorbar>" for t in ax.texts}
    assert texts == {(0, 1): "NaN map", (1, 1): "896 NaN/Inf px (green)",
                     (0, 2): "all 0", (1, 2): "all 0"}
    flagged = _at(fig, fig.axes[1], 0.1, 0.9)
    assert flagged[1] > 150 and flagged[0] < 100  # drawn in the flag colour (green), not white
    zero = _at(fig, fig.axes[2], 0.1, 0.9)
    assert zero.min() > 245  # an all-zero map is white on the diverging map
    _close(fig)


def test_mean_std_denormalise_and_overlay(photos):
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    normed = (photos - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    fig = show(normed, _signed(), mean=mean, std=std)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(),
                               photos[0].permute(1, 2, 0).numpy(), atol=1e-5)
    _close(fig)
    zero_left = _signed()
    zero_left[..., :16] = 0.0
    fig = show(photos, zero_left, overlay=True, alpha=0.6)
    grey = photos[0].mean(0)
    seen = _at(fig, fig.axes[1], 0.25, 0.5)  # map is 0 there: the grey image shows through
    assert np.ptp(seen) <= 2 and abs(seen[0] / 255 - float(grey[16, 8])) < 0.1
    right = _at(fig, fig.axes[1], 0.75, 0.5)
    assert right[0] > right[2] + 60  # the positive half tinted red
    _close(fig)


def test_scale_method_colour_bar_in_units():
    attr = torch.stack([_signed(1)[0] * 2.0, _signed(1)[0] * 4.0])
    fig = show(None, attr, scale="method", percentile=None)
    bar = [a for a in fig.axes if a.get_label() == "<colorbar>"][0]
    assert bar.get_xlim() == (-4.0, 4.0)
    # the first map (|a| = 2) is half as saturated as the second (|a| = 4)
    weak, strong = _at(fig, fig.axes[0], 0.75, 0.5), _at(fig, fig.axes[1], 0.75, 0.5)
    assert weak[1] > strong[1] + 60
    _close(fig)


def test_headless_nothing_global_changed(photos):
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = dict(matplotlib.rcParams)
    open_before = plt.get_fignums()
    fig = fm.viz.compare(photos, {"srd": _signed(), "integrated_gradients": -_signed()},
                         labels=["astronaut", "chelsea"], title="two methods")
    assert isinstance(fig, Figure) and plt.get_fignums() == open_before
    assert dict(matplotlib.rcParams) == before
    assert fig.axes[0].get_ylabel() == "astronaut" and fig.axes[3].get_ylabel() == "chelsea"
    assert [a.get_title() for a in fig.axes[:3]] == ["image", "srd\nall",
                                                      "integrated_gradients\nall"]
    assert fm.viz.show is show and fm.viz.compare is compare
    _close(fig)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tensors_give_the_same_picture(photos):
    attr = photos - photos.mean()
    reference = _pixels(compare(photos, {"a": attr}))
    on_gpu = compare(photos.cuda(), {"a": attr.cuda().requires_grad_(True)})
    np.testing.assert_array_equal(_pixels(on_gpu), reference)
