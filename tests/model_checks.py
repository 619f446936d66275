"""Model fingerprints for the "the user's model is never changed" checks (DESIGN.md §1)."""

from __future__ import annotations

import torch
from torch import nn


def fingerprint(model: nn.Module) -> dict:
    """Everything DESIGN.md §1 promises stays the same, as comparable values."""
    return {
        "params": {k: v.detach().clone() for k, v in model.named_parameters()},
        "buffers": {k: v.detach().clone() for k, v in model.named_buffers()},
        "requires_grad": {k: v.requires_grad for k, v in model.named_parameters()},
        "grads": {k: None if v.grad is None else v.grad.clone()
                  for k, v in model.named_parameters()},
        "training": {k: m.training for k, m in model.named_modules()},
        "hooks": {k: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
                      len(getattr(m, "_backward_pre_hooks", {})))
                  for k, m in model.named_modules()},
        "modules": {k: id(m) for k, m in model.named_modules()},
        "inplace": {k: getattr(m, "inplace", None) for k, m in model.named_modules()},
    }


def assert_same_fingerprint(before: dict, after: dict) -> None:
    for key in ("requires_grad", "training", "hooks", "modules", "inplace"):
        assert before[key] == after[key], key
    for key in ("params", "buffers"):
        assert before[key].keys() == after[key].keys()
        for name, value in before[key].items():
            assert torch.equal(value, after[key][name]), f"{key} {name} changed"
    for name, g in before["grads"].items():
        h = after["grads"][name]
        assert (g is None and h is None) or (g is not None and h is not None and torch.equal(g, h))
