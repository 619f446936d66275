"""The one score-gradient helper: ∂ target score / ∂ inputs for one chunk of rows."""

from __future__ import annotations

import torch
from torch import nn

from .targets import Target


def input_gradient(
    model: nn.Module, inputs: torch.Tensor, target: Target, rows: torch.Tensor | None = None,
    *, create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """∂ score_r / ∂ inputs_r for every row r, and the model output.

    The model sees a non-leaf copy of the inputs, so an in-place first layer (e.g.
    ``ReLU(inplace=True)``) works; ``torch.autograd.grad`` leaves ``param.grad`` untouched.
    With ``create_graph=True`` the gradient stays differentiable (double backpropagation,
    e.g. explanation-manipulation attacks): inputs that are part of a graph are used as
    they are, so the gradient is also a function of what they were computed from.
    """
    leaf = (inputs if create_graph and inputs.requires_grad
            else inputs.detach().requires_grad_(True))
    with torch.enable_grad():
        output = model(leaf.clone())
        scores = target.scores(output, rows)
        (grad,) = torch.autograd.grad(scores.sum(), leaf, create_graph=create_graph)
    return grad, output if create_graph else output.detach()
