"""find_boundary(engine="fmn"): Fast Minimum-Norm (Pintor et al., NeurIPS 2021) + bisection.

Cross-checked against a literal single-sample FMN written here from the paper's Alg. 1 (no
faithmap helper) and, where installed, adv-lib's ``fmn``: our distances are no worse.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.attacks import find_boundary
from faithmap.attacks.fmn import fmn
from faithmap.core.errors import InvalidInputError
from faithmap.core.geometry import as_box

LO, HI = torch.tensor([-0.5, 0.0]), torch.tensor([1.0, 2.0])  # per-channel bounds


def digits(n: int) -> torch.Tensor:
    """``n`` MNIST test digits spread over the test set (1×28×28 in [0, 1])."""
    images, _ = fm.data.load("mnist", split="test")
    return images[torch.linspace(0, len(images) - 1, n).long()]


def two_channel(n: int) -> torch.Tensor:
    """Real digits in a per-channel box: channel c is LO_c + digit·(HI_c − LO_c)·0.9 + 0.05."""
    d = digits(n)[:, :, ::2, ::2] * 0.9 + 0.05
    return LO.view(1, 2, 1, 1) + d.repeat(1, 2, 1, 1) * (HI - LO).view(1, 2, 1, 1)


def cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 6 * 6, 5)).eval()


class RowCounter:
    """Forward hook counting the rows that pass through a model."""

    def __init__(self, model: nn.Module) -> None:
        self.rows = 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, out) -> None:
        self.rows += args[0].shape[0]


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_found_rows_are_on_the_other_side_inside_the_per_channel_box(norm):
    model, x = cnn(), two_channel(8)
    pred = model(x).argmax(1)
    target = torch.where(torch.arange(8) % 2 == 0, pred, (pred + 1) % 5)  # mixed batch
    b = find_boundary(model, x, target, engine="fmn", norm=norm, bounds=(LO, HI))
    assert b.found.all() and b.attack == ["fmn"] * 8 and b.settings["engine"] == "fmn"
    labels = model(b.points).argmax(1)
    assert torch.equal(labels, b.labels)
    assert (labels[::2] != pred[::2]).all() and (labels[1::2] == target[1::2]).all()
    assert b.targeted.tolist() == [False, True] * 4
    assert (b.points >= LO.view(1, 2, 1, 1)).all() and (b.points <= HI.view(1, 2, 1, 1)).all()
    d = (b.points - x).flatten(1)
    exact = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    torch.testing.assert_close(b.distances, exact)
    assert b.forward_backward <= 100 * 8 and (b.distances > 0).all()
    # on the boundary (bisection): 2^-9 of the segment back towards x is on x's side again
    back = x + (1 - 2.0 ** -9) * (b.points - x)
    again = model(back).argmax(1)
    assert (again[::2] == pred[::2]).all() and (again[1::2] != target[1::2]).all()


def test_fmn_is_the_default_engine_and_sweep_options_select_the_sweep():
    model, x = cnn(), two_channel(2)
    b = find_boundary(model, x, bounds=(LO, HI))
    assert b.settings["engine"] == "fmn" and b.attack == ["fmn", "fmn"]
    assert b.forward_backward <= 100 * 2
    pinned = find_boundary(model, x, bounds=(LO, HI), engine="fmn")
    assert torch.equal(pinned.points, b.points)
    # a call written for the sweep (its own options) still runs the sweep, bit for bit
    old = find_boundary(model, x, bounds=(LO, HI), steps=3, cw_steps=3)
    sweep = find_boundary(model, x, bounds=(LO, HI), steps=3, cw_steps=3, engine="sweep")
    assert old.settings["engine"] == "sweep" and "fmn" not in old.attack
    assert torch.equal(old.points, sweep.points) and old.attack == sweep.attack
    ddn = find_boundary(model, x, bounds=(LO, HI), ddn_steps=20)
    assert ddn.settings["engine"] == "ddn" and ddn.attack == ["ddn", "ddn"]


@pytest.mark.parametrize("engine", ["fmn", "ddn"])
def test_radius_caps_a_minimum_norm_engine(engine):
    model, x = fm.zoo.load("mnist_resnet"), digits(6)
    free = find_boundary(model, x, engine=engine)
    cap = float(free.distances.median())
    capped = find_boundary(model, x, engine=engine, radius=[0.1, cap])  # largest: the cap
    assert capped.radii.tolist() == [pytest.approx(cap)] and capped.settings["radius"]
    assert (capped.distances[capped.found] <= cap * (1 + 1e-5)).all()
    assert capped.found.any() and not capped.found.all()  # the farther half is not found
    near = free.distances < cap * 0.98
    assert capped.found[near].all()
    assert torch.equal(capped.found, capped.distances.isfinite())
    assert torch.equal(find_boundary(model, x, engine=engine, radius=cap).points,
                       capped.points)  # a scalar radius is the same cap


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_linear_model_distance_is_close_to_the_analytic_minimum(norm):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)).eval()
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    w = model[1].weight.detach()
    margin = (model(x) @ torch.tensor([1.0, -1.0])).abs()
    exact = margin / (w[0] - w[1]).norm(p=2 if norm == "l2" else 1)
    for target in (None, 1 - model(x).argmax(1)):  # leave the class / reach the other one
        b = find_boundary(model, x, target, engine="fmn", norm=norm, bounds=None)
        assert b.found.all()
        assert (b.distances >= exact * (1 - 1e-4)).all()
        assert (b.distances <= exact * 1.01).all(), b.distances / exact


def test_early_stop_is_per_row_and_the_counts_are_the_rows_through_the_model():
    model, x = fm.zoo.load("mnist_vgg"), digits(6)
    counter = RowCounter(model)
    y = model(x).argmax(1)
    counter.rows = 0
    res = fmn(model, x, y, steps=60, box=as_box((0, 1), x), patience=5)
    assert counter.rows == res.forward_backward + res.forward
    assert res.found.all() and res.forward_backward == int(res.steps.sum())
    assert len(set(res.steps.tolist())) > 1 and int(res.steps.max()) <= 60  # rows stop apart
    assert res.forward_backward < 60 * 6
    counter.rows = 0
    full = fmn(model, x, y, steps=60, box=as_box((0, 1), x), early_stop=False)
    assert counter.rows == 60 * 6 + 6 and full.steps.tolist() == [60] * 6
    # in find_boundary: fwd+bwd rows are FMN's; forward rows add the bisection and labels
    counter.rows = 0
    b = find_boundary(model, x, engine="fmn", fmn_steps=60, fmn_patience=5)
    assert counter.rows == b.forward_backward + b.forward
    assert b.forward_backward == res.forward_backward
    torch.testing.assert_close(b.distances, torch.where(
        b.found, (b.points - x).flatten(1).norm(dim=1), math.inf))
    assert (b.distances <= res.distances * (1 + 1e-6)).all()  # the bisection only shortens
    counter.handle.remove()


@pytest.mark.parametrize("engine", ["fmn", "ddn"])
def test_result_does_not_depend_on_batch_size_or_on_the_other_rows(engine):
    model, x = cnn(), two_channel(5)
    ref = find_boundary(model, x, engine=engine, bounds=(LO, HI), batch_size=None)
    for bs in (1, 3):
        b = find_boundary(model, x, engine=engine, bounds=(LO, HI), batch_size=bs)
        torch.testing.assert_close(b.points, ref.points, atol=1e-5, rtol=0)
        assert torch.equal(b.found, ref.found)
    alone = find_boundary(model, x[2:3], engine=engine, bounds=(LO, HI))
    torch.testing.assert_close(alone.points, ref.points[2:3], atol=1e-5, rtol=0)


def test_start_warm_starts_from_the_boundary_towards_it():
    model, x = fm.zoo.load("mnist_vgg"), digits(8)
    pred = model(x).argmax(1)
    other = torch.roll(x, 1, 0)  # another digit: predicted as another class for most rows
    adv = model(other).argmax(1) != pred
    assert adv.sum() >= 4
    b = find_boundary(model, x, engine="fmn", start=other)
    assert b.found.all() and b.settings["start"]
    far = (other - x).flatten(1).norm(dim=1)
    assert (b.distances[adv] < far[adv]).all()
    with pytest.raises(InvalidInputError, match="start must be a tensor"):
        find_boundary(model, x, engine="fmn", start=x[:2])
    with pytest.raises(InvalidInputError, match="start has NaN"):
        find_boundary(model, x, engine="fmn", start=x * math.nan)


def test_explainers_take_the_engine_through_search_options():
    model, x = fm.zoo.load("mnist_vgg"), digits(2)
    bsm = fm.BoundarySaliency(model, search_options={"engine": "fmn"}, cache=False)
    bsm(x)
    assert bsm.metadata["boundary_attack"] == ["fmn", "fmn"]
    assert bsm.metadata["search_forward_backward"] <= 200


@pytest.mark.parametrize("kwargs, match", [
    ({"engine": "pgd"}, "engine must be one of"),
    ({"engine": "fmn", "fmn_steps": 0}, "fmn_steps"),
    ({"engine": "fmn", "fmn_patience": -1}, "fmn_patience"),
    ({"engine": "fmn", "fmn_gamma": 1.5}, "fmn_gamma"),
    ({"engine": "fmn", "fmn_alpha": 0.0}, "fmn_alpha"),
    ({"engine": "fmn", "cw_steps": 5}, "cw_steps is an option of engine='sweep', not of "
                                       "engine='fmn'"),
    ({"engine": "fmn", "steps": 5, "step_scale": 2.0},
     "step_scale, steps are options of engine='sweep'"),
    ({"engine": "sweep", "fmn_steps": 10}, "fmn_steps is an option of engine='fmn'"),
    ({"steps": 10, "fmn_steps": 10}, "options of several search engines"),
    ({"fmn_gamma": 0.1, "ddn_gamma": 0.1}, "options of several search engines"),
    ({"engine": "ddn", "norm": "linf"}, "engine='ddn' is an L2 attack"),
    ({"engine": "fmn", "radius": [0.0]}, "radius values must be finite and > 0"),
])
def test_bad_options_raise(kwargs, match):
    model, x = cnn(), two_channel(2)
    with pytest.raises(ValueError, match=match):
        find_boundary(model, x, bounds=(LO, HI), **kwargs)


# --- cross-checks ------------------------------------------------------------------------


def literal_fmn(model, x, y, steps=100, alpha0=1.0, gamma0=0.05, gamma1=0.001):
    """FMN-L2 (Pintor et al. 2021, Alg. 1) for ONE sample in [0, 1], written out literally:
    margin loss, ε ← min(ε(1−γ), ‖δ*‖) if adversarial, else ε(1+γ) once found or
    ‖δ‖ + |L|/‖∇L‖ before; normalised gradient step; projection onto the ε ball, then [0, 1];
    cosine annealing of α (to α₀/100) and γ. Returns the smallest adversarial x' or None."""
    delta = torch.zeros_like(x)
    eps, best, best_norm, found = math.inf, None, math.inf, False
    for k in range(steps):
        cos = (1 + math.cos(math.pi * k / steps)) / 2
        alpha = alpha0 / 100 + (alpha0 - alpha0 / 100) * cos
        gamma = gamma1 + (gamma0 - gamma1) * cos
        d = delta.clone().requires_grad_(True)
        logits = model((x + d)[None])[0]
        others = torch.cat([logits[:y], logits[y + 1:]])
        loss = logits[y] - others.max()
        (g,) = torch.autograd.grad(loss, d)
        is_adv = int(logits.argmax()) != y
        norm = float(delta.norm())
        if is_adv and norm < best_norm:
            best, best_norm = (x + delta).clone(), norm
        if is_adv:
            found = True
            eps = min(eps * (1 - gamma), best_norm)
        elif found:
            eps = eps * (1 + gamma)
        else:
            eps = norm + abs(float(loss.detach())) / max(float(g.norm()), 1e-12)
        delta = delta - alpha * g / max(float(g.norm()), 1e-12)
        if float(delta.norm()) > eps:
            delta = delta * (eps / float(delta.norm()))
        delta = (x + delta).clamp(0, 1) - x
    return best


@pytest.mark.slow
def test_no_worse_than_a_literal_fmn_on_a_zoo_model():
    model, x = fm.zoo.load("mnist_vgg"), digits(12)
    y = model(x).argmax(1)
    ref = []
    for i in range(len(x)):
        p = literal_fmn(model, x[i], int(y[i]))
        ref.append(math.inf if p is None else float((p - x[i]).norm()))
    ref = torch.tensor(ref)
    b = find_boundary(model, x, engine="fmn")
    assert b.found.all() and b.forward_backward <= 100 * len(x)
    assert float(b.distances.median()) <= float(ref.median()) * 1.001, (b.distances, ref)
    assert (b.distances <= ref * 1.05).all(), (b.distances, ref)


def adv_lib_fmn():
    """adv-lib's ``fmn``, or skip. Loaded from its file: adv-lib's ``attacks`` package
    imports visdom (for its loggers), which FMN does not need."""
    adv_lib = pytest.importorskip("adv_lib")
    path = Path(adv_lib.__path__[0]) / "attacks" / "fast_minimum_norm.py"
    spec = importlib.util.spec_from_file_location("_adv_lib_fmn", path)
    if spec is None or spec.loader is None:
        pytest.skip("adv-lib has no attacks/fast_minimum_norm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fmn


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet"])
def test_no_worse_than_adv_lib_fmn_on_a_zoo_model(name):
    theirs_fmn = adv_lib_fmn()
    model, x = fm.zoo.load(name), digits(32)
    y = model(x).argmax(1)
    adv = theirs_fmn(model, x, y, norm=2, steps=100)
    with torch.no_grad():
        ok = model(adv).argmax(1) != y
    theirs = torch.where(ok, (adv - x).flatten(1).norm(dim=1), math.inf)
    b = find_boundary(model, x, engine="fmn")
    assert b.found.all() and b.forward_backward <= 100 * len(x)
    assert float(b.distances.median()) <= float(theirs.median()), (b.distances, theirs)
    assert b.found_rate >= float(ok.float().mean())
    both = ok & b.found  # where both find a point, ours is as close (at ≤ 100 passes too)
    assert float((b.distances[both] / theirs[both]).median()) <= 1.01


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_bottleneck"])
def test_median_distance_no_worse_than_the_sweep_at_a_quarter_of_its_passes(name):
    model, x = fm.zoo.load(name), digits(16)
    sweep = find_boundary(model, x, engine="sweep", batch_size=512)
    ours = find_boundary(model, x, engine="fmn", batch_size=512)
    assert ours.found.all() and ours.forward_backward * 4 <= sweep.forward_backward
    assert float(ours.distances.median()) <= float(sweep.distances.median())
