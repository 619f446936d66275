"""The data that ship inside faithmap (faithmap/data/files): a plain install loads the
demo's and the zoo's datasets and the scikit-image photos, and they are the very arrays the
``data`` extra's packages ship."""

import importlib.util

import numpy as np
import pytest
import torch

import faithmap.data as fd
from faithmap.data import _common, bundled, samples
from faithmap.data.images import read_image

EXTRA = ("mlxtend", "sklearn", "skimage")
HAS = {p: importlib.util.find_spec(p) is not None for p in EXTRA}


@pytest.fixture
def no_extra(monkeypatch):
    """As on a machine without the ``data`` extra: its packages are not found."""
    real = importlib.util.find_spec
    monkeypatch.setattr(_common.importlib.util, "find_spec",
                        lambda n, *a: None if n.split(".")[0] in EXTRA else real(n, *a))
    bundled._table.cache_clear()
    yield
    bundled._table.cache_clear()


def test_demo_and_zoo_data_load_without_the_extra(no_extra):
    x, y = fd.load("mnist", "test")
    assert x.shape == (500, 1, 28, 28) and torch.bincount(y).tolist() == [50] * 10
    assert fd.load("digits", "train")[0].shape == (1497, 1, 8, 8)
    from faithmap.evaluation import load_eval_data

    grid, cluttered = load_eval_data("grid", n=4), load_eval_data("cluttered", n=4)
    assert grid.images.shape == (4, 1, 56, 56) and cluttered.masks.shape == (4, 1, 56, 56)
    photos = fd.sample_images(size=64)
    assert set(samples.SHIPPED_PHOTOS) | {"grace_hopper"} == set(photos)


def test_sets_that_need_the_extra_name_it(no_extra):
    with pytest.raises(ImportError, match=r"skimage.*pip install 'faithmap\[data\]'"):
        fd.load("lfw_faces", "test")


@pytest.mark.skipif(not HAS["mlxtend"], reason="mlxtend (the data extra) not installed")
def test_shipped_mnist_is_mlxtends_array():
    copy = _common.read_packed(_common.FILES / "mnist_5k.npy.xz")
    original = bundled.mnist_from_mlxtend()
    assert copy.dtype == original.dtype == np.uint8 and np.array_equal(copy, original)


@pytest.mark.skipif(not HAS["sklearn"], reason="scikit-learn (the data extra) not installed")
def test_shipped_digits_are_sklearns_array():
    copy = _common.read_packed(_common.FILES / "digits.npy.xz")
    assert np.array_equal(copy, bundled.digits_from_sklearn())


@pytest.mark.skipif(not all(HAS.values()), reason="the data extra is not installed")
@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_load_gives_the_same_tensors_as_the_extra(name):
    shipped = {s: fd.load(name, s) for s in ("train", "test", "all")}
    bundled._table.cache_clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bundled, "shipped", lambda relative: None)
        try:
            original = {s: fd.load(name, s) for s in ("train", "test", "all")}
        finally:
            bundled._table.cache_clear()
    for s in shipped:
        assert shipped[s][0].dtype == original[s][0].dtype == torch.float32
        assert torch.equal(shipped[s][0], original[s][0])
        assert torch.equal(shipped[s][1], original[s][1])


@pytest.mark.skipif(not HAS["skimage"], reason="scikit-image (the data extra) not installed")
@pytest.mark.parametrize("name", samples.SHIPPED_PHOTOS)
def test_shipped_photos_are_scikit_images_files(name):
    package, relative, _ = samples.SAMPLES[name]
    copy, original = samples._locate(package, relative), samples._package_photo(package, relative)
    assert copy.parent == _common.FILES / "photos" and copy.read_bytes() == original.read_bytes()
    assert torch.equal(read_image(copy, 32), read_image(original, 32))


def test_shipped_files_are_small_and_documented():
    files = [p for p in _common.FILES.rglob("*") if p.is_file() and p.name != "README.md"]
    assert sum(p.stat().st_size for p in files) < 3 * 2**20
    readme = (_common.FILES / "README.md").read_text()
    for p in files:
        assert f"`{p.relative_to(_common.FILES).as_posix()}`" in readme, p
    for name in ("CC BY-SA 3.0", "CC BY 4.0", "CC0", "public domain"):
        assert name in readme
