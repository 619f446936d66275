"""DANCE's default layer ℓ: a rule that works on any model, found by tracing one forward pass.

1. The layer the model declares (``feature_layer`` attribute, :mod:`faithmap.core.modules`;
   the zoo models declare theirs).
2. Otherwise the *last spatial feature map*: hooks on every submodule record, during one
   forward pass on the input, which modules run and what they return; ℓ is the module that
   completes last among those that run exactly once and return an N×C×h×w tensor with
   h, w > 1. A container finishes after its children, so a stage (torchvision resnet18's
   ``layer4``, vgg16's ``features``) wins over its last block; the global pool (h = w = 1)
   and the classifier (N×K) are not spatial; a module reused within one pass (torchvision's
   shared ReLU) is skipped because its output would be ambiguous. On a token model (vision
   transformer) the N×T×D token output of a block of its last stage of repeated blocks
   (:func:`~faithmap.core.layers.repeated_blocks`) counts as a feature map too, so ℓ is the
   last transformer block, not the patch embedding or a 4-D tensor inside attention. A
   module whose inputs are all parameters, buffers or made from them alone (a position
   table) is not a feature map.

The rule depends on the input size only through which maps are still spatial (resnet18 at
32² has a 1×1 ``layer4`` output, so ℓ is ``layer3`` there); results are cached per model
and input shape by :class:`~faithmap.methods.dance.DANCE`.
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.layers import repeated_blocks
from ...core.modules import feature_layer


def is_spatial(output: object, n: int) -> bool:
    """An N×C×h×w tensor with h, w > 1 (a feature map, not a pooled vector)."""
    return (isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[0] == n
            and output.shape[2] > 1 and output.shape[3] > 1)


def is_tokens(output: object, n: int) -> bool:
    """An N×T×D tensor with T > 1 (a transformer block's tokens)."""
    return (isinstance(output, torch.Tensor) and output.dim() == 3 and output.shape[0] == n
            and output.shape[1] > 1)


def traced_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The name of the last module to complete, in one forward pass on ``x[:1]``, among
    those that run exactly once and return a spatial N×C×h×w map (see the module doc)."""
    runs: dict[str, int] = {}
    spatial: dict[str, bool] = {}
    order: list[str] = []

    # tensors that do not depend on the input: the model's parameters and buffers and what
    # modules make from them alone (Swin V2's position-bias MLP maps a 1×15×15×2 table)
    constant = [*model.parameters(), *model.buffers()]
    constant_ids = {id(t) for t in constant}

    def hook_for(name: str):  # noqa: ANN202
        def hook(_m: nn.Module, inputs: tuple, output: object) -> None:
            runs[name] = runs.get(name, 0) + 1
            tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
            fixed = bool(tensors) and all(id(t) in constant_ids for t in tensors)
            if fixed and isinstance(output, torch.Tensor):
                constant.append(output)  # kept alive, so its id is not reused
                constant_ids.add(id(output))
            spatial[name] = not fixed and (
                is_spatial(output, 1) or (name in blocks and is_tokens(output, 1)))
            order.append(name)
        return hook

    blocks = {name for name, _ in repeated_blocks(model)}
    seen: set[int] = set()
    handles = []
    for name, module in model.named_modules():
        if not name or id(module) in seen:  # the model itself; a module under two names
            continue
        seen.add(id(module))
        handles.append(module.register_forward_hook(hook_for(name)))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    found = [name for name in order if runs[name] == 1 and spatial[name]]
    if not found:
        raise ValueError(
            "no module of the model returns a spatial N×C×h×w feature map (h, w > 1) on "
            f"this {tuple(x.shape[1:])} input, so DANCE has no default layer; pass layer=... "
            "(a module name from model.named_modules())")
    return found[-1]


def default_layer(model: nn.Module, x: torch.Tensor | None = None) -> str:
    """ℓ when ``layer=None``: the model's declared ``feature_layer`` if it has one
    (the zoo's mnist_vgg → ``features.9``, mnist_resnet → ``layers``, mnist_allconv →
    ``features.11``), else :func:`traced_layer` on the input ``x`` (torchvision resnet18 →
    ``layer4``, vgg16 → ``avgpool``, whose 7×7 output equals ``features``')."""
    declared = feature_layer(model)
    if declared is not None:
        return declared
    if x is None:
        raise ValueError("the model declares no feature_layer; default_layer(model, x) traces "
                         "a forward pass on an input x to find the last spatial feature map")
    return traced_layer(model, x)
