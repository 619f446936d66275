"""Shared fixtures: small models covering the layer zoo, and a model fingerprint."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from tiny_models import tiny_cnn  # noqa: E402


@pytest.fixture
def cnn() -> nn.Module:
    return tiny_cnn()


@pytest.fixture(scope="session")
def resnet18() -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture
def x_small() -> torch.Tensor:
    return torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def x_resnet() -> torch.Tensor:
    return torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(2))


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
