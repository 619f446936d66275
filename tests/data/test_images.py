"""The one image reader (data.images.read_image) and its one resize policy, used by every
path that opens image files: image_folder, sample_images, evaluation folders, the CLI."""

import numpy as np
import pytest
import torch
from PIL import Image

import faithmap.data as fd
from faithmap.data.images import read_image
from faithmap.data.samples import SAMPLES, _locate


def _stripes(path, h, w):
    """Column j has grey value 10·j (so a crop is identified by its first column)."""
    array = np.tile((np.arange(w, dtype=np.uint8) * 10)[None, :], (h, 1))
    Image.fromarray(array).save(path)
    return path


def test_none_keeps_the_size_and_values(tmp_path):
    path = _stripes(tmp_path / "s.png", 6, 9)
    x = read_image(path, None, channels=1)
    assert x.shape == (1, 6, 9) and x.dtype == torch.float32
    assert torch.allclose(x[0, 0], torch.arange(9) * 10 / 255.0)


def test_int_scales_the_shorter_side_and_centre_crops_a_square(tmp_path):
    path = _stripes(tmp_path / "s.png", 10, 20)  # wide: shorter side is the height
    x = read_image(path, 10, channels=1)
    assert x.shape == (1, 10, 10)
    # no scaling (shorter side already 10): the centre 10 columns 5..14, no stretching
    assert torch.allclose(x[0, 0], torch.arange(5, 15) * 10 / 255.0)
    tall = read_image(_stripes(tmp_path / "t.png", 40, 8), 4, channels=1)
    assert tall.shape == (1, 4, 4)  # 40×8 → 20×4 → centre 4×4


def test_height_width_scales_to_cover_then_centre_crops(tmp_path):
    path = _stripes(tmp_path / "s.png", 10, 20)
    x = read_image(path, (10, 12), channels=1)  # cover 10×12: scale max(1, 0.6) = 1
    assert x.shape == (1, 10, 12)
    assert torch.allclose(x[0, 0], torch.arange(4, 16) * 10 / 255.0)  # centre columns
    y = read_image(path, (20, 6), channels=1)  # scale 2 → 20×40, centre 6 columns
    assert y.shape == (1, 20, 6)
    assert read_image(path, (10, 10)).equal(read_image(path, 10))  # int = square (H, W)


def test_aspect_ratio_is_kept_not_stretched(tmp_path):
    """A disc in a wide image stays a disc: the crop never distorts the image."""
    h, w = 40, 80
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - 20) ** 2 + (xx - 40) ** 2 <= 12 ** 2).astype(np.uint8) * 255
    Image.fromarray(disc).save(tmp_path / "d.png")
    x = read_image(tmp_path / "d.png", 20, channels=1)[0] > 0.5
    rows, cols = x.any(1).sum().item(), x.any(0).sum().item()
    assert abs(rows - cols) <= 1


def test_grey_and_rgb_conversion(tmp_path):
    Image.fromarray(np.full((5, 5), 51, np.uint8)).save(tmp_path / "g.png")
    rgb = np.zeros((5, 5, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "r.png")
    grey_as_rgb = read_image(tmp_path / "g.png", channels=3)
    assert grey_as_rgb.shape == (3, 5, 5) and torch.allclose(grey_as_rgb, torch.full_like(
        grey_as_rgb, 51 / 255))
    red = read_image(tmp_path / "r.png", channels=3)
    assert red[0].min() == 1.0 and red[1:].max() == 0.0
    red_as_grey = read_image(tmp_path / "r.png", channels=1)
    assert red_as_grey.shape == (1, 5, 5)
    assert torch.allclose(red_as_grey, torch.full_like(red_as_grey, 76 / 255))  # ITU-R 601-2 L
    with pytest.raises(ValueError, match="channels"):
        read_image(tmp_path / "g.png", channels=4)


def test_unreadable_files_raise_clear_errors(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not an image file.*broken.png"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(OSError):
        read_image(tmp_path / "missing.png")
    _stripes(tmp_path / "ok.png", 4, 4)
    for bad in (0, -3, (4,), (4, 0), (2.5, 3), True):
        with pytest.raises(ValueError, match="size"):
            read_image(tmp_path / "ok.png", bad)


def test_image_folder_and_sample_images_use_the_reader(tmp_path):
    _stripes(tmp_path / "a.png", 10, 20)
    _stripes(tmp_path / "b.png", 30, 12)
    for size in (8, (6, 10)):
        res = fd.image_folder(tmp_path, size=size, mode="L")
        expected = torch.stack([read_image(tmp_path / n, size, channels=1)
                                for n in ("a.png", "b.png")])
        assert res.images.equal(expected)
    with pytest.raises(ValueError, match="mode"):
        fd.image_folder(tmp_path, mode="CMYK")
    photos = fd.sample_images(size=(16, 24))
    for name, img in photos.items():
        assert img.equal(read_image(_locate(*SAMPLES[name][:2]), (16, 24), channels=3))


def test_evaluation_folder_data_uses_the_reader(tmp_path):
    from faithmap.evaluation import load_eval_data

    _stripes(tmp_path / "a.png", 10, 20)
    data = load_eval_data(str(tmp_path), size=8, channels=1)
    assert data.images.equal(read_image(tmp_path / "a.png", 8, channels=1)[None])
