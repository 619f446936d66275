"""Evaluation datasets: images, the class to explain, and ground-truth masks where known.

Specs: ``"grid"`` (2×2 grids of MNIST test digits of distinct classes; one cell per image,
drawn from the seed, is explained and its cell is the mask; with ``model=`` and
``correct_cells=True`` only digits the model classifies correctly on their own are drawn,
so every cell's class is one the model can see — :func:`correct_digits`), ``"cluttered"`` (one MNIST
test digit on a 56×56 canvas with clutter; the digit's ink is the mask), any name of
:func:`faithmap.data.names` (test split, no masks), or a folder of images (no masks; the
predicted class is explained).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import data as fm_data
from ..core.batching import DEFAULT_BATCH_SIZE, map_rows
from ..core.deprecation import renamed_attribute, renamed_options
from ..data.benchmarks import Dataset


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


def fit_cells(cells: torch.Tensor, size: int | None, channels: int | None = None) -> torch.Tensor:
    """Cells (N×C×h×w) as a model with input ``size`` takes them: unchanged when ``size`` is
    ``None`` (any size) or equal to the cell's; zero-padded, centred, to ``size``×``size``
    when larger (the digit keeps the scale it has in the grid); resized (bilinear) when
    smaller. Channels are repeated to ``channels`` (a 3-channel model on grey digits)."""
    out = cells
    if channels is not None and channels != out.shape[1]:
        if out.shape[1] != 1:
            raise ValueError(f"cannot feed {out.shape[1]}-channel cells to a {channels}-channel "
                             "model")
        out = out.expand(-1, channels, -1, -1)
    h, w = out.shape[-2:]
    if size is None or (h, w) == (size, size):
        return out
    if size >= max(h, w):
        top, left = (size - h) // 2, (size - w) // 2
        return F.pad(out, (left, size - w - left, top, size - h - top))
    return F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False)


def correct_digits(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   size: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """Bool N: the model's top class for each digit fed alone (:func:`fit_cells`) is its
    label. Runs on the model's device, without gradients; the model is not changed."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    with torch.no_grad():
        pred = map_rows(len(images), batch_size, lambda rows: model(
            fit_cells(images[rows], size, channels).to(device)).argmax(1).cpu())
    return pred == labels.long()


def load_eval_data(spec: str, n: int = 200, seed: int = 0, size: int | None = None,
                   channels: int = 3, *, model: nn.Module | None = None,
                   correct_cells: bool = False,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> EvalData:
    """The evaluation dataset a spec names (see module doc), at most ``n`` samples.

    ``correct_cells`` (grid only, needs ``model``): draw the grids from the MNIST test
    digits the model classifies correctly when each is fed alone (``size``: the model's input
    size, :func:`fit_cells`), so every cell of every grid is one the model gets right on its
    own; ``info`` records ``cell_accuracy`` (share of test digits kept). Without it the
    grids are those of earlier versions (the same for the same seed).
    """
    if correct_cells and spec != "grid":
        raise ValueError(f"correct_cells applies to the 'grid' spec only, not {spec!r}")
    if spec == "grid":
        info: dict = {"source": "2×2 grid of MNIST test digits, one cell explained",
                      "kind": "grid"}
        dataset: Dataset = "mnist"
        kept = None
        if correct_cells:
            if model is None:
                raise ValueError("correct_cells=True needs model= (the model that must classify "
                                 "each cell correctly on its own)")
            images, labels = fm_data.load("mnist", split="test")
            ok = correct_digits(model, images, labels, size, batch_size)
            if not bool(ok.any()):
                raise ValueError("the model classifies no MNIST test digit correctly")
            dataset, kept = (images[ok], labels[ok]), torch.nonzero(ok).flatten()
            info.update(source=info["source"] + "; only digits the model classifies correctly "
                        "on their own", correct_cells=True, cell_accuracy=float(ok.float().mean()))
        bench = fm_data.grid(dataset, n=2, count=n, split="test", seed=seed)
        cells = len(bench.labels[0])
        cell = torch.randint(cells, (n,), generator=torch.Generator().manual_seed(seed + 1))
        rows = torch.arange(n)
        info["cell"] = cell.tolist()
        if kept is not None:
            info["digit_index"] = kept[bench.index].tolist()  # index in the MNIST test split
        return EvalData("grid", bench.images, bench.labels[rows, cell],
                        bench.masks[rows, cell][:, None].bool(), info)
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
