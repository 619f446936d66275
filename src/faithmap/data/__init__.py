"""Datasets that ship inside installed packages (no download), user image folders and
seeded ground-truth benchmarks. Optional packages are imported only when a loader runs."""

from .benchmarks import ClutteredBenchmark, GridBenchmark, cluttered, grid
from .bundled import DatasetInfo, info, load, names
from .folder import ImageFolderResult, image_folder
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
    "sample_images",
]
