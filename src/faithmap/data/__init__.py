"""Datasets that ship inside installed packages (no download), user image folders,
seeded ground-truth benchmarks and the one reader of image files (:func:`read_image`,
one resize policy). Optional packages are imported only when a loader runs."""

from .benchmarks import ClutteredBenchmark, GridBenchmark, cluttered, grid
from .bundled import DatasetInfo, info, load, names
from .folder import ImageFolderResult, image_folder
from .images import read_image
from .samples import SAMPLES, sample_images

__all__ = [
    "SAMPLES",
    "ClutteredBenchmark",
    "DatasetInfo",
    "GridBenchmark",
    "ImageFolderResult",
    "cluttered",
    "grid",
    "image_folder",
    "info",
    "load",
    "names",
    "read_image",
    "sample_images",
]
