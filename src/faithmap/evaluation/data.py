"""Evaluation datasets: images, the class to explain, and ground-truth masks where known.

Specs: ``"grid"`` (2×2 grids of MNIST test digits of distinct classes; one cell per image,
drawn from the seed, is explained and its cell is the mask), ``"cluttered"`` (one MNIST
test digit on a 56×56 canvas with clutter; the digit's ink is the mask), any name of
:func:`faithmap.data.names` (test split, no masks), or a folder of images (no masks; the
predicted class is explained).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import data as fm_data
from ..core.deprecation import renamed_attribute, renamed_options


@dataclass
class EvalData:
    """``images`` N×C×H×W in [0, 1]; ``target`` N class indices (``None``: predicted);
    ``masks`` N×1×H×W bool ground truth or ``None``. ``targets`` is the deprecated name of
    ``target``."""

    name: str
    images: torch.Tensor
    target: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.target is not None and len(self.target) != n:
            raise ValueError(f"{self.name}: {len(self.target)} targets for {n} images")
        if self.masks is not None and (self.masks.shape[0] != n
                                       or self.masks.shape[-2:] != self.images.shape[-2:]):
            raise ValueError(f"{self.name}: masks {tuple(self.masks.shape)} do not match images")

    def subset(self, index: torch.Tensor) -> EvalData:
        pick = (lambda t: None if t is None else t[index])  # noqa: E731
        return EvalData(self.name, self.images[index], pick(self.target), pick(self.masks),
                        self.info, self.skipped)

    targets = renamed_attribute("targets", "target")


EvalData.__init__ = renamed_options(targets="target")(EvalData.__init__)  # type: ignore[method-assign]


def load_eval_data(spec: str, n: int = 200, seed: int = 0, size: int | None = None,
                   channels: int = 3) -> EvalData:
    """The evaluation dataset a spec names (see module doc), at most ``n`` samples."""
    if spec == "grid":
        bench = fm_data.grid("mnist", n=2, count=n, split="test", seed=seed)
        cells = len(bench.labels[0])
        cell = torch.randint(cells, (n,), generator=torch.Generator().manual_seed(seed + 1))
        rows = torch.arange(n)
        return EvalData("grid", bench.images, bench.labels[rows, cell],
                        bench.masks[rows, cell][:, None].bool(),
                        {"source": "2×2 grid of MNIST test digits, one cell explained",
                         "kind": "grid", "cell": cell.tolist()})
    if spec == "cluttered":
        bench = fm_data.cluttered("mnist", canvas=56, count=n, split="test", seed=seed)
        return EvalData("cluttered", bench.images, bench.labels, bench.masks.bool(),
                        {"source": "MNIST test digit on a 56×56 canvas with clutter"})
    if spec in fm_data.names():
        images, labels = fm_data.load(spec, split="test")
        g = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(images), generator=g)[:n].sort().values
        return EvalData(spec, images[index], labels[index], None,
                        {"source": f"{spec} test split, {len(index)} samples"})
    path = Path(spec)
    if path.is_dir():
        result = fm_data.image_folder(path, size=size or 224,
                                      mode="L" if channels == 1 else "RGB")
        if len(result.paths) == 0:
            raise ValueError(f"no readable images in {path}")
        keep = min(n, len(result.paths))
        return EvalData(path.name or str(path), result.images[:keep], None, None,
                        {"source": str(path), "paths": [str(p) for p in result.paths[:keep]]},
                        [(str(p), e) for p, e in result.skipped])
    raise ValueError(
        f"unknown dataset {spec!r}: use 'grid', 'cluttered', one of {fm_data.names()}, "
        "or a folder of images"
    )
