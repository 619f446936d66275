"""Model specs for the command line: ``torchvision:ARCH``, ``timm:NAME`` (timm is an optional
extra), ``module.path:factory``, ``zoo:NAME``."""

from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .registry import info, load, torchvision


@dataclass
class LoadedModel:
    """A model ready to explain, with what the CLI needs to feed it images."""

    model: nn.Module
    spec: str
    input_size: int | None = 224
    channels: int = 3
    class_names: list[str] = field(default_factory=list)
    random_weights: bool = False


def input_channels(model: nn.Module, default: int = 3) -> int:
    """The input channel count of the model's first ``nn.Conv2d`` (``default`` if none)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return default


def load_model(spec: str, weights: str | Path | None = None) -> LoadedModel:
    """Build the model a CLI spec names, in eval mode (see module doc for the forms)."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(
            f"model spec {spec!r} must be 'torchvision:ARCH', 'timm:NAME', 'zoo:NAME' or "
            "'module.path:factory'"
        )
    if kind == "timm":
        model, size = timm_model(rest, weights)
        if weights is None:
            warnings.warn(f"{spec}: no --weights file given, the model has RANDOM weights",
                          UserWarning, stacklevel=2)
        return LoadedModel(model, spec, size, input_channels(model), random_weights=weights is None)
    if kind == "torchvision":
        try:
            model = torchvision(rest, weights)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from exc
        if weights is None:
            warnings.warn(f"{spec}: no --weights file given, the model has RANDOM weights",
                          UserWarning, stacklevel=2)
        return LoadedModel(model, spec, 224, 3, random_weights=weights is None)
    if kind == "zoo":
        model = load(rest)
        card = info(rest)
        sizes = re.findall(r"\d+", str(card.get("input_size", "")))  # e.g. "1×28×28"
        size = int(sizes[-1]) if sizes else None
        return LoadedModel(model, spec, size, input_channels(model),
                           list(card.get("class_names", [])))
    module = importlib.import_module(kind)
    factory = getattr(module, rest, None)
    if factory is None:
        raise ValueError(f"module {kind!r} has no attribute {rest!r}")
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec} did not produce an nn.Module (got {type(model).__name__})")
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return LoadedModel(model.eval(), spec, None, input_channels(model))


def timm_model(name: str, weights: str | Path | None = None) -> tuple[nn.Module, int | None]:
    """A timm model (``pretrained=False``: never downloaded) with weights from a local state
    dict file, wrapped as ``Sequential(normalize=Normalize, model=net)`` with the mean and
    std of its pretrained config (it then takes images in [0, 1]), in eval mode; and its
    input side. The class count is the row count of the file's last 2-D weight."""
    from collections import OrderedDict

    from ..core.modules import Normalize

    try:
        import timm
    except ImportError as exc:
        raise ModuleNotFoundError(
            "timm is not installed: pip install 'faithmap[timm]' (or pip install timm)") from exc
    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:5]
        raise ValueError(f"unknown timm model {name!r}" + (f"; e.g. {', '.join(close)}"
                                                          if close else ""))
    state, num_classes = None, None
    if weights is not None:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        matrices = [v for v in state.values() if isinstance(v, torch.Tensor) and v.dim() == 2]
        num_classes = matrices[-1].shape[0] if matrices else None
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    net = timm.create_model(name, pretrained=False, **kwargs)
    if state is not None:
        net.load_state_dict(state, strict=True)
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    mean, std = cfg.get("mean", (0.485, 0.456, 0.406)), cfg.get("std", (0.229, 0.224, 0.225))
    size = cfg.get("input_size", (3, 224, 224))[-1]
    wrapped = nn.Sequential(OrderedDict(normalize=Normalize(mean, std), model=net)).eval()
    return wrapped, int(size) if size else None
