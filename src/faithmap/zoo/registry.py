"""The zoo's models: names, model cards, loading shipped weights, torchvision wrappers."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.modules import Normalize
from . import architectures as A

WEIGHTS_DIR = Path(__file__).parent / "weights"
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class ModelSpec:
    """How a zoo model is built and trained (the recipe is part of its model card)."""

    build: Callable[[], nn.Module]
    architecture: str
    dataset: str = "mnist"
    epochs: int = 15
    lr: float = 3e-3
    batch_size: int = 64
    weight_decay: float = 1e-4
    # PGD-L2 adversarial training: {"eps": radius, "steps"} ("eps" as recorded in the cards)
    adversarial: dict[str, float] = field(default_factory=dict)
    input_size: str = "1×28×28"


SPECS: dict[str, ModelSpec] = {
    "mnist_vgg": ModelSpec(
        partial(A.VGG, (32, 64), 128), "VGG-style CNN: 2×(conv3×3–ReLU(inplace)–conv3×3–ReLU–"
        "maxpool2), widths 32, 64; flatten, FC 3136→128–ReLU–FC 128→10"),
    "mnist_resnet": ModelSpec(
        A.resnet_basic, "ResNet-style CNN: stem conv–BN–ReLU (stride 2), BasicBlocks "
        "16→32→64 (strided 1×1-conv downsample skips, one ReLU module reused per block), "
        "GAP, linear"),
    "mnist_bottleneck": ModelSpec(
        A.resnet_bottleneck, "ResNet-style CNN: stride-2 stem, Bottleneck blocks 16→32→64→128 "
        "(1×1/3×3/1×1 conv–BN, strided 1×1-conv downsample skips), GAP, linear", epochs=25),
    "mnist_allconv": ModelSpec(
        A.AllConv, "All-convolutional CNN: 6 conv3×3–ReLU (two stride 2), 1×1 class conv, "
        "global average pool; accepts any input size", epochs=25,
        input_size="1×H×W, any H, W ≥ 4 (trained at 1×28×28)"),
    "mnist_vgg_robust": ModelSpec(
        A.VGG, "VGG-style CNN as mnist_vgg at half width (16, 32; FC 1568→64→10), "
        "adversarially trained with PGD-L2",
        adversarial={"eps": 1.0, "steps": 3}),
}


def names() -> list[str]:
    """Names of the zoo models."""
    return list(SPECS)


def _spec(name: str) -> ModelSpec:
    if name not in SPECS:
        raise KeyError(f"unknown zoo model {name!r}; available: {names()}")
    return SPECS[name]


def _files(name: str, weights_dir: str | Path | None) -> tuple[Path, Path]:
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    return folder / f"{name}.pt", folder / f"{name}.json"


def info(name: str, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The model card: architecture, dataset, input size, class names, recorded test
    accuracy, training command and recipe, weight file size and hash."""
    _spec(name)
    card = _files(name, weights_dir)[1]
    if not card.is_file():
        raise FileNotFoundError(f"no model card {card}; create it with: faithmap zoo train {name}")
    return json.loads(card.read_text())


def load_state(model: nn.Module, path: Path) -> nn.Module:
    """Load a (possibly float16) state dict into ``model`` as float32, strictly."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model_state = model.state_dict()
    state = {k: v.to(model_state[k].dtype) if k in model_state else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model


def load(name: str, weights_dir: str | Path | None = None) -> nn.Module:
    """A zoo model with its shipped weights (or those in ``weights_dir``), in eval mode.

    It takes images in [0, 1]; normalisation is its first module (``model.normalize``).
    """
    spec = _spec(name)
    path = _files(name, weights_dir)[0]
    if not path.is_file():
        raise FileNotFoundError(f"no weights {path}; create them with: faithmap zoo train {name}")
    return load_state(spec.build(), path).eval()


def torchvision(
    arch: str,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = IMAGENET_STATS,
) -> nn.Module:
    """A torchvision architecture with weights from a local file (never downloaded),
    wrapped as ``Sequential(normalize=Normalize, model=net)`` so it takes images in [0, 1]
    (its layers are then named ``model.<name>``, e.g. ``model.layer4``), in eval mode.

    ``weights`` is a state dict file (or a checkpoint with a ``state_dict``/``model`` entry);
    ``None`` keeps the random initialisation. ``num_classes`` defaults to the row count of
    the file's last 2-D weight (1000 without a file). ``normalize=None`` omits the wrapper.
    """
    import torchvision.models as tvm

    if arch not in tvm.list_models(module=tvm):
        raise KeyError(f"unknown torchvision classification architecture {arch!r}")
    state = None
    if weights is not None:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if num_classes is None:
            matrices = [v for v in state.values() if isinstance(v, torch.Tensor) and v.dim() == 2]
            num_classes = matrices[-1].shape[0] if matrices else None
    model = tvm.get_model(arch, weights=None, num_classes=num_classes or 1000)
    if state is not None:
        model.load_state_dict(state, strict=True)
    if normalize is None:
        return model.eval()
    return nn.Sequential(OrderedDict(normalize=Normalize(*normalize), model=model)).eval()
