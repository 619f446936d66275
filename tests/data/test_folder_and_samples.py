import numpy as np
import pytest
import torch
from PIL import Image

import faithmap.data as fd


def test_image_folder_skips_unreadable_files_by_name(tmp_path):
    Image.fromarray(np.full((10, 12, 3), 255, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((30, 20), np.uint8)).save(tmp_path / "b.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="broken.png"):
        res = fd.image_folder(tmp_path, size=16)
    assert res.images.shape == (2, 3, 16, 16)
    assert [p.name for p in res.paths] == ["a.png", "b.jpg"]
    assert [p.name for p, _ in res.skipped] == ["broken.png"]
    assert torch.allclose(res.images[0], torch.ones(3, 16, 16))
    assert torch.allclose(res.images[1], torch.zeros(3, 16, 16))


def test_image_folder_native_size_and_normalize(tmp_path):
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((9, 9), 128, np.uint8)).save(tmp_path / "b.png")
    with pytest.warns(UserWarning, match=r"b\.png"):
        res = fd.image_folder(tmp_path, size=None, mode="L", normalize=((0.5,), (0.5,)))
    assert res.images.shape == (1, 1, 8, 8)
    assert torch.allclose(res.images, torch.full((1, 1, 8, 8), (128 / 255 - 0.5) / 0.5), atol=1e-5)
    with pytest.raises(NotADirectoryError):
        fd.image_folder(tmp_path / "missing")


def test_sample_images_have_licences():
    images = fd.sample_images(size=32)
    assert {"astronaut", "camera", "china", "grace_hopper"} <= set(images)
    for name, img in images.items():
        assert img.shape == (3, 32, 32) and img.min() >= 0 and img.max() <= 1
        assert fd.SAMPLES[name][2]  # licence noted
