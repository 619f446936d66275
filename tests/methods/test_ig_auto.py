"""IntegratedGradients(n_steps="auto"): the completeness tolerance per sample (issue 18)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.core.targets import Target


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    x, _ = fm.data.load("mnist", split="test")
    return x[:12]


@pytest.fixture(scope="module")
def zoo_resnet() -> nn.Module:
    return fm.zoo.load("mnist_resnet").eval()


def relative_error(model, x, attr, target):
    with torch.no_grad():
        t = torch.as_tensor(target)[:, None]
        gap = (model(x).gather(1, t) - model(torch.zeros_like(x)).gather(1, t)).squeeze(1)
    return ((attr.flatten(1).sum(1) - gap).abs() / gap.abs()).double()


class GradRows(nn.Module):
    """Counts rows through the model with and without autograd (a list survives model_guard)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, {"grad": 0, "no_grad": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows["grad" if torch.is_grad_enabled() else "no_grad"] += x.shape[0]
        return self.inner(x)


def test_tolerance_met_per_sample_where_few_fixed_steps_miss_it(zoo_resnet, digits):
    with torch.no_grad():
        target = zoo_resnet(digits).argmax(1)
    tol = 1e-2
    ig = fm.IntegratedGradients(zoo_resnet, n_steps="auto", tolerance=tol)
    attr = ig(digits, target)
    err = relative_error(zoo_resnet, digits, attr, target)
    assert bool((err <= tol * 1.001).all()), err
    assert bool(ig.metadata["converged"].all())
    torch.testing.assert_close(ig.metadata["completeness_error"], err, rtol=1e-3, atol=1e-6)
    steps = ig.metadata["n_steps"]
    assert steps.shape == (len(digits),) and int(steps.min()) >= 1
    assert len(set(steps.tolist())) > 1  # refined per sample, not one count for all
    few = fm.IntegratedGradients(zoo_resnet, n_steps=4)(digits, target)
    assert float(relative_error(zoo_resnet, digits, few, target).max()) > tol


def test_every_point_is_evaluated_once(zoo_resnet, digits):
    counted = GradRows(zoo_resnet)
    target = [3] * len(digits)
    ig = fm.IntegratedGradients(counted, n_steps="auto", tolerance=1e-3, batch_size=16)
    ig(digits, target)
    assert counted.rows["grad"] == int(ig.metadata["n_steps"].sum())
    assert counted.rows["no_grad"] == len(digits)  # f_y(x') only


def test_independent_of_batch_size(zoo_resnet, digits):
    runs = []
    for b in (1, 5, None):
        ig = fm.IntegratedGradients(zoo_resnet, n_steps="auto", tolerance=3e-3, batch_size=b)
        runs.append((ig(digits[:6], 2), ig.metadata["n_steps"]))
    for attr, steps in runs[1:]:
        assert torch.equal(steps, runs[0][1])
        torch.testing.assert_close(attr, runs[0][0], rtol=1e-5, atol=1e-7)


def test_linear_model_needs_one_step(digits):
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    ig = fm.IntegratedGradients(lin, n_steps="auto", tolerance=1e-6, baseline=0.2)
    attr = ig(digits, 4)
    assert ig.metadata["n_steps"].tolist() == [1] * len(digits)
    expected = (digits - 0.2) * lin[1].weight[4].view(1, 1, 28, 28)
    torch.testing.assert_close(attr, expected, rtol=1e-5, atol=1e-6)


def test_budget_reported_when_not_reached(zoo_resnet, digits):
    ig = fm.IntegratedGradients(zoo_resnet, n_steps="auto", tolerance=1e-9, max_steps=6)
    ig(digits, 0)
    assert int(ig.metadata["n_steps"].max()) <= 6
    missed = ~ig.metadata["converged"]
    assert bool(missed.any())
    assert bool((ig.metadata["completeness_error"][missed] > 1e-9).all())


def test_differentiable_form_matches(zoo_resnet, digits):
    x = digits[:3].clone().requires_grad_(True)
    ig = fm.IntegratedGradients(zoo_resnet, n_steps="auto", tolerance=1e-2)
    target = Target([1, 2, 3], 3)
    diff = ig.attribute_differentiable(x, target, zoo_resnet)
    assert diff.requires_grad
    torch.testing.assert_close(diff.detach(), ig(digits[:3], [1, 2, 3]), rtol=1e-5, atol=1e-6)


def test_function_reuses_points_per_sample(zoo_resnet, digits):
    from faithmap.methods.gradients import adaptive_integrated_gradients

    path = adaptive_integrated_gradients(zoo_resnet, digits[:4], torch.zeros_like(digits[:4]),
                                         Target(7, 4), 1e-3, 64, None)
    for i in range(4):
        a = path.alphas[path.samples == i]
        assert len(torch.unique(a)) == len(a) == int(path.n_steps[i])
        assert float(a.max()) == 1.0 and float(a.min()) > 0
        torch.testing.assert_close(path.weights[path.samples == i].sum(),
                                   torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("bad", [{"tolerance": 0}, {"tolerance": -1e-2},
                                 {"tolerance": float("nan")}, {"max_steps": 1},
                                 {"n_steps": "fast"}])
def test_bad_options_raise(bad, cnn):
    opts = {"n_steps": "auto", **bad}
    with pytest.raises(ValueError):
        fm.IntegratedGradients(cnn, **opts)
    with pytest.raises(ValueError):
        fm.BoundaryIntegratedGradients(cnn, **opts)


def test_big_auto_meets_its_tolerance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 3)).eval()
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(3))
    search = {"steps": 8, "cw_steps": 20, "radius": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]}
    big = fm.BoundaryIntegratedGradients(model, n_steps="auto", tolerance=1e-3, cache=False,
                                         **search)
    attr = big(x)
    found = ~torch.isnan(attr.flatten(1)).any(1)
    assert bool(found.any())
    gap = big.metadata["boundary_gap"][found].double()
    err = (big.metadata["convergence_delta"][found].double().abs() / gap.abs())
    assert bool((err <= 1e-3 * 1.001).all()), err
    assert big.metadata["n_steps"].shape == (5,)
