"""Helpers shared by the dataset loaders: locating package files, the copies that ship
inside faithmap (``faithmap/data/files``), and fixed splits."""

from __future__ import annotations

import importlib.util
import io
import lzma
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_write_bytes

DATA_EXTRA = "pip install 'faithmap[data]'"

#: Data files shipped inside faithmap's own wheel (see ``files/README.md`` and docs/data.md).
FILES = Path(__file__).resolve().parent / "files"


def shipped(relative: str) -> Path | None:
    """The copy of a data file shipped inside faithmap, or ``None`` if this install lacks it."""
    path = FILES / relative
    return path if path.is_file() else None


def read_packed(path: Path) -> np.ndarray:
    """An array stored by :func:`write_packed` (``.npy`` bytes, xz-compressed)."""
    return np.load(io.BytesIO(lzma.decompress(Path(path).read_bytes())), allow_pickle=False)


def write_packed(path: Path, array: np.ndarray) -> None:
    """Store ``array`` as xz-compressed ``.npy`` bytes (deterministic for the same array)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))


def package_dir(package: str, install: str) -> Path:
    """The directory of an installed package, found without importing it.

    Raises ``ImportError`` naming ``install`` (the command to run) when it is missing.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"this dataset needs the '{package}' package, which is not installed; "
            f"install it with: {install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str, install: str) -> Path:
    """A data file shipped inside an installed package (clear error if absent)."""
    path = package_dir(package, install) / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"expected data file {path} inside the '{package}' package; "
            f"reinstall it with: {install}"
        )
    return path


def stratified_split(labels: np.ndarray, test_per_class: int, split: str) -> np.ndarray:
    """Indices of a fixed split: in file order, the last ``test_per_class`` of each class
    are the test split, the rest the train split; ``"all"`` keeps everything."""
    if split == "all":
        return np.arange(len(labels))
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        is_test[np.flatnonzero(labels == c)[-test_per_class:]] = True
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def to_tensors(images: np.ndarray, labels: np.ndarray, scale: float) -> tuple[torch.Tensor, ...]:
    """uint8/float N×H×W array and labels → (N×1×H×W float32 in [0, 1], LongTensor)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / scale)
    return x.unsqueeze(1).clamp_(0.0, 1.0), torch.from_numpy(labels.astype(np.int64))
