"""Gradients of target scores with respect to the inputs of one chunk."""

from __future__ import annotations

import torch
from torch import nn

from .targets import Target


def input_gradient(
    model: nn.Module, inputs: torch.Tensor, target: Target, rows: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂ score_r / ∂ inputs_r for every row r, and the model output.

    The model sees a non-leaf copy of the inputs, so an in-place first layer (e.g.
    ``ReLU(inplace=True)``) works; ``torch.autograd.grad`` leaves ``param.grad`` untouched.
    """
    leaf = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        output = model(leaf.clone())
        scores = target.scores(output, rows)
        (grad,) = torch.autograd.grad(scores.sum(), leaf)
    return grad, output.detach()
