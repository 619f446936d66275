"""Photos bundled with scikit-image, scikit-learn and matplotlib, with their licences.

The six scikit-image photos (public domain / CC0) also ship inside faithmap, byte for byte
(``faithmap/data/files/photos``), so a plain ``pip install faithmap`` has them;
matplotlib's photo comes with matplotlib (a dependency), scikit-learn's two need the
``data`` extra.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ._common import DATA_EXTRA, shipped
from .images import SizeLike, read_image

# name -> (package, file inside the package, licence / credit)
SAMPLES: dict[str, tuple[str, str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png", "public domain (NASA)"),
    "camera": ("skimage", "data/camera.png", "CC0 (Lav Varshney)"),
    "chelsea": ("skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    "coffee": ("skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    "coins": ("skimage", "data/coins.png", "no known copyright restrictions (Brooklyn Museum)"),
    "rocket": ("skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    "china": ("sklearn", "datasets/images/china.jpg", "CC BY 2.0 (danielbuechele, Flickr)"),
    "flower": ("sklearn", "datasets/images/flower.jpg", "CC BY 2.0 (vultilion, Flickr)"),
    "grace_hopper": (
        "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "public domain (US Navy)",
    ),
}

#: The photos whose files ship inside faithmap (copies of scikit-image's files).
SHIPPED_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket")


def _locate(package: str, relative: str) -> Path | None:
    """The photo's file: faithmap's own copy if it ships one, else the package's file."""
    copy = shipped(f"photos/{Path(relative).name}") if package == "skimage" else None
    if copy is not None:
        return copy
    return _package_photo(package, relative)


def _package_photo(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def sample_images(size: SizeLike = None) -> dict[str, torch.Tensor]:
    """The bundled sample photos as 3×H×W float32 tensors in [0, 1] (grey ones repeated
    to RGB), keyed by name; see ``SAMPLES`` for each file's package and licence.

    ``size`` (int or (H, W)) brings every photo to one size so they stack into one batch,
    with the policy of :func:`faithmap.data.images.read_image` (scale to cover, centre-crop;
    ``None`` keeps each photo's size). Photos whose package is not installed are left out
    (``china`` and ``flower`` need ``pip install 'faithmap[data]'``); an error is raised if
    none is found.
    """
    out: dict[str, torch.Tensor] = {}
    for name, (package, relative, _) in SAMPLES.items():
        path = _locate(package, relative)
        if path is not None:
            out[name] = read_image(path, size, channels=3)
    if not out:
        raise ImportError(
            f"no sample photos found; install them with: {DATA_EXTRA}"
        )
    return out
