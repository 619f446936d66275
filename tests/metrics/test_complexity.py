"""Sparseness (Gini index): exact values, Quantus cross-check, errors, metadata."""

import numpy as np
import pytest
import torch

from faithmap.core.errors import InvalidInputError
from faithmap.metrics.complexity import sparseness


def test_one_hot_constant_and_zero_maps():
    n = 3 * 5 * 5
    one_hot = torch.zeros(2, 3, 5, 5)
    one_hot[0, 1, 2, 2] = 4.0
    one_hot[1, 0, 0, 0] = -0.5  # magnitudes count
    assert torch.allclose(sparseness(one_hot), torch.full((2,), 1 - 1 / n))
    assert torch.allclose(sparseness(torch.full((1, 3, 5, 5), -2.0)), torch.zeros(1), atol=1e-6)
    assert sparseness(torch.zeros(1, 1, 4, 4)).item() == 0.0


def test_hand_computed_gini():
    # sorted |a| = [0, 0, 1, 3], n = 4: Σ(2i − n − 1)a_(i) = 1·1 + 3·3 = 10; / (4 · 4)
    a = torch.tensor([[[[3.0, 0.0], [-1.0, 0.0]]]])
    assert sparseness(a).item() == pytest.approx(10 / 16)
    assert sparseness(a * 17).item() == pytest.approx(10 / 16)


def test_matches_quantus_sparseness():
    quantus = pytest.importorskip("quantus")
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, 8, 8, generator=g) ** 3
    theirs = quantus.Sparseness(disable_warnings=True, normalise=False, abs=True)(
        model=None, x_batch=a.numpy(), y_batch=np.zeros(6, int), a_batch=a.numpy().copy())
    assert np.allclose(sparseness(a).numpy(), theirs, atol=1e-4)


def test_errors_and_metadata():
    with pytest.raises(InvalidInputError, match="NaN"):
        sparseness(torch.tensor([[[float("nan")]]]))
    with pytest.raises(InvalidInputError):
        sparseness(torch.zeros(4, 4))
    assert sparseness.higher_is_better is True
    assert sparseness.category == "complexity"
    assert sparseness.kind == "attribution"
