"""Finding modules by name and capturing their outputs with temporary hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def find_module(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """Resolve ``layer`` (a name from ``model.named_modules()`` or a module) to (name, module)."""
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise ValueError(f"module {type(layer).__name__} is not part of the model")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a module name or an nn.Module, got {type(layer).__name__}")
    modules = dict(model.named_modules())
    if layer not in modules:
        names = [n for n in modules if n]
        hint = [n for n in names if layer.split(".")[-1] in n][:8] or names[-8:]
        raise ValueError(f"no module named {layer!r} in the model; e.g. {', '.join(hint)}")
    return layer, modules[layer]


def last_module_of_type(model: nn.Module, types: tuple[type, ...]) -> tuple[str, nn.Module]:
    """The last module (in registration order) that is an instance of ``types``."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, types)]
    if not found:
        names = ", ".join(t.__name__ for t in types)
        raise ValueError(f"the model has no {names} module; pass layer=... explicitly")
    return found[-1]


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def repeated_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules of the last ``nn.Sequential`` or ``nn.ModuleList`` (registration order)
    holding two or more modules of one class with children that have parameters — a
    network's last stage of repeated blocks (transformer encoder blocks, ResNet blocks)."""
    found: list[tuple[str, nn.Module]] = []
    for name, parent in model.named_modules():
        if not isinstance(parent, (nn.Sequential, nn.ModuleList)):
            continue
        children = list(parent.named_children())
        blocks = [(f"{name}.{n}" if name else n, c) for n, c in children
                  if sum(type(o) is type(c) for _, o in children) >= 2
                  and any(_has_parameters(g) for g in c.children())]
        if blocks:
            found = blocks
    return found


class Capture:
    """Outputs recorded by :func:`capture_output` during one forward pass."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outputs: list[torch.Tensor] = []

    @property
    def output(self) -> torch.Tensor:
        if len(self.outputs) != 1:
            raise ValueError(
                f"module {self.name!r} ran {len(self.outputs)} times in one forward pass; "
                "choose a module that runs exactly once (a reused module is ambiguous)"
            )
        return self.outputs[0]


@contextmanager
def capture_output(module: nn.Module, name: str = "") -> Iterator[Capture]:
    """Record ``module``'s output tensor(s) while the context is open.

    The hook hands a clone downstream, so later in-place ops (``ReLU(inplace=True)``)
    cannot overwrite the recorded activation; the hook is removed on exit, always.
    """
    record = Capture(name)

    def hook(_module: nn.Module, _inputs: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"module {name!r} returned {type(output).__name__}, not a tensor")
        record.outputs.append(output)
        return output.clone()

    handle = module.register_forward_hook(hook)
    try:
        yield record
    finally:
        handle.remove()
