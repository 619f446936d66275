"""Boundary search: batched PGD (vs a literal loop), CW-L2, find_boundary invariants."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import faithmap as fm
from faithmap.attacks import Boundary, find_boundary, project_l2
from faithmap.attacks.boundary import check_eps, check_radii, default_eps, default_radii
from faithmap.attacks.pgd import pgd_rows, pgd_sweep, random_start
from faithmap.core.errors import InvalidInputError, TargetError
from faithmap.core.geometry import as_box, project
from model_checks import assert_same_fingerprint, fingerprint

LO, HI = torch.tensor([-1.0, 0.0]), torch.tensor([0.5, 2.0])  # per-channel bounds


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def inputs(n: int = 6, seed: int = 1) -> torch.Tensor:
    u = torch.rand(n, 2, 4, 4, generator=torch.Generator().manual_seed(seed))
    return LO.view(1, 2, 1, 1) + u * (HI - LO).view(1, 2, 1, 1)


def literal_pgd(model, x, y, eps, norm, steps, a, lo, hi, delta0, stop, targeted=False):
    """One row, written out: returns (last iterate, first adversarial iterate or None).
    ``targeted``: descend CE(·, y) and count a row as flipped when its label is y."""
    delta, hit = delta0.clone(), None
    sign = -1.0 if targeted else 1.0

    def flips(logits):
        return (int(logits.argmax()) == y) if targeted else (int(logits.argmax()) != y)

    for t in range(steps + 1):
        xa = (x + delta)[None]
        if t == steps:
            with torch.no_grad():
                flipped = flips(model(xa))
        else:
            d = delta.clone().requires_grad_(True)
            logits = model((x + d)[None])
            flipped = flips(logits)
            g = sign * torch.autograd.grad(F.cross_entropy(logits, torch.tensor([y])), d)[0]
        if flipped and hit is None:
            hit = x + delta
            if stop:
                break
        if t == steps:
            break
        if norm == "l2":
            delta = delta + a * g / g.norm().clamp_min(1e-12)
            if delta.norm() > eps:
                delta = delta * eps / delta.norm()
        else:
            delta = (delta + a * g.sign()).clamp(-eps, eps)
        for c in range(x.shape[0]):
            delta[c] = (x[c] + delta[c]).clamp(float(lo[c]), float(hi[c])) - x[c]
    return x + delta, hit


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_rows_match_a_literal_single_sample_loop(norm, stop, targeted):
    model, x = mlp(), inputs(4)
    y = model(x).argmax(1)
    if targeted:  # aim at a class the sample is not predicted as
        y = (y + 1) % 3
    eps = torch.tensor([0.3, 0.8, 1.5, 3.0]) if norm == "l2" else torch.tensor([.05, .1, .2, .4])
    box = as_box((LO, HI), x)
    start = random_start(x, eps, norm, box, 7, [(i,) for i in range(4)])
    res = pgd_rows(model, x, y, eps, norm=norm, steps=6, step_size=2.5 * eps / 6, box=box,
                   start=start, stop_on_flip=stop, batch_size=3, targeted=targeted)
    assert res.forward_backward > 0
    if targeted:  # a targeted row "flips" where it reaches y
        assert res.flipped.any() or norm == "linf"
        assert (model(res.hit[res.flipped]).argmax(1) == y[res.flipped]).all()
    for i in range(4):
        last, hit = literal_pgd(model, x[i], int(y[i]), float(eps[i]), norm, 6,
                                2.5 * float(eps[i]) / 6, LO, HI, start[i] - 0, stop, targeted)
        torch.testing.assert_close(res.last[i], last, atol=1e-5, rtol=0)
        assert bool(res.flipped[i]) == (hit is not None)
        if hit is not None:
            torch.testing.assert_close(res.hit[i], hit, atol=1e-5, rtol=0)


def test_projection_agrees_with_project_l2_on_the_unit_box():
    x = torch.rand(5, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    d = torch.randn(5, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    ours = project(d, x, torch.full((5,), 0.7), "l2", as_box((0.0, 1.0), x))
    torch.testing.assert_close(ours, project_l2(d, x, 0.7))


def test_early_stop_keeps_the_result_and_saves_passes():
    model, x = mlp(), inputs(6)
    y = model(x).argmax(1)
    eps, box = torch.tensor([0.2, 0.5, 1.0, 2.0, 4.0, 8.0]), as_box((LO, HI), x)
    a = pgd_sweep(model, x, y, eps, steps=10, box=box, seed=3, early_stop=True)
    b = pgd_sweep(model, x, y, eps, steps=10, box=box, seed=3, early_stop=False)
    assert torch.equal(a.radius_index, b.radius_index) and torch.equal(a.points, b.points)
    assert (a.radius_index >= 0).any() and a.forward_backward <= b.forward_backward
    # a slow large-eps row is dropped as soon as the small-eps row of its sample flips
    x1, y1 = x[:1].repeat(2, 1, 1, 1), y[:1].repeat(2)
    e1, zero = torch.tensor([4.0, 8.0]), torch.zeros(2, dtype=torch.long)
    kw = dict(norm="l2", steps=10, step_size=torch.tensor([2.0, 1e-4]), box=box,
              start=torch.zeros_like(x1))
    fast = pgd_rows(model, x1, y1, e1, groups=zero, ranks=torch.arange(2), **kw)
    slow = pgd_rows(model, x1, y1, e1, **kw)
    assert fast.flipped[0] and torch.equal(fast.hit[0], slow.hit[0])
    assert fast.forward_backward < slow.forward_backward


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_found_points_flip_lie_within_radius_and_respect_per_channel_bounds(norm):
    model, x = mlp(), inputs(8)
    b = find_boundary(model, x, norm=norm, bounds=(LO, HI), engine="sweep", steps=20,
                      cw_steps=30, seed=0)
    assert isinstance(b, Boundary) and b.points.shape == x.shape and b.found.shape == (8,)
    assert b.found.all(), b.attack
    y = model(x).argmax(1)
    assert (model(b.points).argmax(1) != y).all() and torch.equal(b.target, y)
    delta = (b.points - x).flatten(1)
    dist = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(1)
    torch.testing.assert_close(b.distances, dist)
    pgd = torch.tensor([a == "pgd" for a in b.attack])
    assert (dist[pgd] <= b.radius[pgd].float() * (1 + 1e-5)).all()
    assert (b.points >= LO.view(1, 2, 1, 1)).all() and (b.points <= HI.view(1, 2, 1, 1)).all()
    assert b.forward_backward > 0 and b.forward > 0


def _linear_case():
    """A 2-class linear model on 8 inputs and its exact L2 boundary distance
    |f_0 − f_1| / ||w_0 − w_1||."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2)).eval()
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    w = model[1].weight.detach()
    margin = model(x) @ torch.tensor([1.0, -1.0])
    exact = margin.abs() / (w[0] - w[1]).norm()
    return model, x, exact


def test_the_boundary_of_a_linear_model_is_found_close_to_the_analytic_minimum():
    model, x, exact = _linear_case()
    b = find_boundary(model, x, bounds=None, radius=[0.5, 1, 2, 4, 8, 16], engine="sweep",
                      steps=20, seed=0, cw_lr=0.03)
    assert b.found.all()
    assert (b.distances >= exact * (1 - 1e-4)).all()  # nothing beats the true minimum
    assert (b.distances <= exact * 1.02).all(), (b.distances / exact)


def test_seeded_and_model_unchanged(cnn, x_small):
    before = fingerprint(cnn)
    a = find_boundary(cnn, x_small, engine="sweep", steps=5, cw_steps=5, seed=4)
    assert_same_fingerprint(before, fingerprint(cnn))
    b = find_boundary(cnn, x_small, engine="sweep", steps=5, cw_steps=5, seed=4)
    assert torch.equal(a.points, b.points) and a.attack == b.attack
    model, x = mlp(), inputs(4)
    c, d = (find_boundary(model, x, bounds=(LO, HI), engine="sweep", steps=5, cw_steps=0,
                          refine_steps=0, seed=s) for s in (5, 6))
    assert c.found.all() and not torch.equal(c.points, d.points)


def test_default_radii_rule_scales_to_the_input():
    x = torch.zeros(1, 1, 28, 28)
    l2 = default_radii(x, "l2", as_box((0.0, 1.0), x)).tolist()
    assert l2[:7] == pytest.approx([36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1])
    assert l2[7:] == pytest.approx([2.2, 4.4, 8.8, 17.6, 28.0])
    linf = default_radii(x, "linf", as_box((0.0, 1.0), x)).tolist()
    assert linf[-2:] == pytest.approx([128 / 255, 1.0]) and linf[0] == pytest.approx(1 / 255)
    wide = default_radii(x, "l2", as_box((-2.0, 2.0), x)).tolist()
    assert wide[0] == pytest.approx(4 * 36 / 255) and wide[-1] == pytest.approx(4 * 28)


def test_a_target_that_is_not_the_prediction_gets_the_nearest_point_predicted_as_it():
    model, x = mlp(), inputs(6)
    pred = model(x).argmax(1)
    other = (pred + 1) % 3
    target = torch.where(torch.arange(6) % 2 == 0, pred, other)  # mixed batch
    b = find_boundary(model, x, target, bounds=(LO, HI), engine="sweep", steps=20,
                      cw_steps=30, seed=0)
    labels = model(b.points).argmax(1)
    assert (labels[1::2] == other[1::2]).all() and (labels[::2] != pred[::2]).all()
    assert "input" not in b.attack and (b.distances > 0).all() and torch.equal(labels, b.labels)
    assert b.targeted.tolist() == [False, True] * 3 and b.found.all(), b.attack
    # on the boundary: a step of 2^-9 of the segment back towards x leaves the target's side
    back = x + (1 - 2.0 ** -9) * (b.points - x)
    assert (model(back).argmax(1)[1::2] != other[1::2]).all()
    assert (b.points >= LO.view(1, 2, 1, 1)).all() and (b.points <= HI.view(1, 2, 1, 1)).all()
    # the untargeted rows are what an all-predicted batch gives for them
    alone = find_boundary(model, x[::2], bounds=(LO, HI), engine="sweep", steps=20,
                          cw_steps=30, seed=0)
    torch.testing.assert_close(b.points[::2], alone.points)


def test_targeted_distance_of_a_linear_model_is_close_to_the_analytic_minimum():
    model, x, exact = _linear_case()
    other = 1 - model(x).argmax(1)
    b = find_boundary(model, x, other, bounds=None, radius=[0.5, 1, 2, 4, 8, 16],
                      engine="sweep", steps=20, seed=0, cw_lr=0.03)
    assert (b.distances >= exact * (1 - 1e-4)).all()
    assert (b.distances <= exact * 1.02).all(), (b.distances / exact)
    assert b.targeted.all() and b.found.all() and torch.equal(b.labels, other)


def test_found_is_false_when_no_boundary_was_crossed():
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 3)).eval()
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))
    x = inputs(4)
    for target in (torch.tensor([1, 2, 1, 2]), None):  # reach 1 or 2 / leave class 0
        b = find_boundary(model, x, target, bounds=(LO, HI), radius=[0.1, 0.2],
                          engine="sweep", steps=3, cw_steps=3)
        assert not b.found.any() and b.attack == ["none"] * 4
        assert torch.isinf(b.distances).all() and torch.equal(b.points, x)
        assert b.targeted.tolist() == [target is not None] * 4


def test_start_replaces_the_random_start():
    model, x = mlp(), inputs(4)
    opts = dict(bounds=(LO, HI), engine="sweep", steps=6, cw_steps=0, refine_steps=0, seed=3)
    at_x = find_boundary(model, x, start=x, **opts)
    plain = find_boundary(model, x, random_start=False, **opts)
    assert torch.equal(at_x.points, plain.points) and at_x.settings["start"]
    mid = (LO + HI).view(1, 2, 1, 1) / 2 + 0 * x
    far = find_boundary(model, x, start=mid, **opts)
    assert far.found.any() and not torch.equal(far.points, plain.points)
    with pytest.raises(InvalidInputError, match="start must be a tensor"):
        find_boundary(model, x, start=x[:2], **opts)
    with pytest.raises(InvalidInputError, match="start has NaN"):
        find_boundary(model, x, start=x * math.nan, **opts)


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 0.0}, "radius values must be finite and > 0"),
    ({"radius": [0.5, -1.0]}, "radius values must be finite and > 0"),
    ({"radius": [math.nan]}, "radius values must be finite and > 0"),
    ({"radius": []}, "radius must hold at least one radius"),
    ({"norm": "l1"}, "norm must be 'l2' or 'linf'"),
    ({"steps": 0}, "steps must be a positive int"),
    ({"refine_steps": -1}, "refine_steps must be a non-negative int"),
    ({"cw_steps": 1.5}, "cw_steps must be a non-negative int"),
    ({"step_scale": 0.0}, "step_scale, cw_lr and cw_c must be > 0"),
    ({"batch_size": 0}, "batch_size must be a positive int or None"),
    ({"bounds": (0.0, 1.0)}, "inputs lie outside bounds"),
    ({"bounds": ([0.0, 0.0, 0.0], 1.0)}, "per-channel values"),
    ({"bounds": (1.0, 1.0)}, "lo < hi"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    model, x = mlp(), inputs(2)
    opts = {"bounds": (LO, HI), **kwargs}
    with pytest.raises(ValueError, match=match):
        find_boundary(model, x, **opts)


def test_bad_inputs_and_targets():
    model, x = mlp(), inputs(2)
    with pytest.raises(InvalidInputError, match="NaN"):
        find_boundary(model, x.clone().fill_(math.nan), bounds=None)
    with pytest.raises(TargetError, match="class-index targets"):
        find_boundary(model, x, lambda out: out[:, 0], bounds=(LO, HI))
    with pytest.raises(TargetError, match="out of range"):
        find_boundary(model, x, 7, bounds=(LO, HI))


def test_prelude_rejects_nan_inputs_wrong_device_and_callable_targets():
    model, x = mlp(), inputs(2)
    bad = x.clone()
    bad[1, 0, 2, 2] = math.inf
    with pytest.raises(InvalidInputError, match=r"NaN or Inf values in sample\(s\) 1"):
        find_boundary(model, bad, bounds=None)
    with pytest.raises(InvalidInputError, match="must be 4-D"):
        find_boundary(model, x[0], bounds=None)
    with pytest.raises(InvalidInputError, match="model's parameters are on meta"):
        find_boundary(mlp().to("meta"), x, bounds=(LO, HI))
    with pytest.raises(TargetError, match="find_boundary needs class-index targets"):
        find_boundary(model, x, lambda out: out[:, 0], bounds=(LO, HI))
    with pytest.raises(TargetError, match="2 samples"):
        find_boundary(model, x, [0, 1, 2], bounds=(LO, HI))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        find_boundary(lambda z: z, x, bounds=(LO, HI))


def test_model_dtype_casts_the_inputs():
    model, x = mlp().double(), inputs(3)
    b = find_boundary(model, x, bounds=(LO, HI), engine="sweep", steps=5, cw_steps=5)
    assert b.points.dtype == torch.float64 and b.found.all()


def test_result_does_not_depend_on_batch_size():
    model, x = mlp(), inputs(5)
    opts = dict(bounds=(LO, HI), engine="sweep", steps=6, cw_steps=6, seed=2)
    ref = find_boundary(model, x, batch_size=None, **opts)
    for bs in (1, 3, fm.core.batching.DEFAULT_BATCH_SIZE):
        b = find_boundary(model, x, batch_size=bs, **opts)
        torch.testing.assert_close(b.points, ref.points, atol=1e-6, rtol=0)
        assert b.attack == ref.attack and torch.equal(b.found, ref.found)
    default = inspect.signature(find_boundary).parameters["batch_size"].default
    assert default == fm.core.batching.DEFAULT_BATCH_SIZE


def test_old_names_warn_and_give_identical_results():
    model, x = mlp(), inputs(4)
    opts = dict(bounds=(LO, HI), engine="sweep", steps=5, cw_steps=5, seed=1)
    new = find_boundary(model, x, radius=[0.3, 1.0, 3.0], **opts)
    with pytest.warns(DeprecationWarning, match="'eps' is deprecated, use 'radius'"):
        old = find_boundary(model, x, eps=[0.3, 1.0, 3.0], **opts)
    assert torch.equal(old.points, new.points) and torch.equal(old.distances, new.distances)
    assert new.settings["radius"] == [0.3, 1.0, 3.0] and "eps" not in new.settings
    with pytest.raises(TypeError, match="pass 'radius' only"):
        find_boundary(model, x, eps=[1.0], radius=[1.0], **opts)
    with pytest.warns(DeprecationWarning, match="Boundary.eps is deprecated"):
        assert new.eps is new.radius
    with pytest.warns(DeprecationWarning, match="Boundary.eps_list is deprecated"):
        assert new.eps_list is new.radii
    box = as_box((LO, HI), x)
    with pytest.warns(DeprecationWarning, match="default_eps is deprecated"):
        assert torch.equal(default_eps(x, "l2", box), default_radii(x, "l2", box))
    with pytest.warns(DeprecationWarning, match="check_eps is deprecated"):
        assert torch.equal(check_eps([2.0, 1.0, 2.0]), check_radii([2.0, 1.0, 2.0]))
    assert check_radii([2.0, 1.0, 2.0]).tolist() == [1.0, 2.0]


def test_sweep_old_names_warn_and_give_identical_results():
    model, x = mlp(), inputs(3)
    y, box = model(x).argmax(1), as_box((LO, HI), x)
    radii = torch.tensor([0.5, 2.0])
    a = pgd_sweep(model, x, y, radius=radii, steps=4, box=box, seed=2)
    with pytest.warns(DeprecationWarning, match="'eps' is deprecated"):
        b = pgd_sweep(model, x, y, eps=radii, steps=4, box=box, seed=2)
    assert torch.equal(a.points, b.points) and torch.equal(a.radius_index, b.radius_index)
    with pytest.warns(DeprecationWarning, match="Sweep.eps_index is deprecated"):
        assert torch.equal(a.eps_index, a.radius_index)
    keys = [(i,) for i in range(3)]
    r = torch.full((3,), 0.5)
    with pytest.warns(DeprecationWarning, match="'eps' is deprecated"):
        old = random_start(x, eps=r, norm="l2", box=box, seed=1, keys=keys)
    assert torch.equal(old, random_start(x, r, "l2", box, 1, keys))


def _mnist(n: int) -> torch.Tensor:
    images, _ = fm.data.load("mnist", split="test")
    return images[torch.linspace(0, len(images) - 1, n).long()]


@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet"])
def test_default_search_finds_the_boundary_on_zoo_models_fast(name):
    model, x = fm.zoo.load(name), _mnist(2)
    b = find_boundary(model, x, batch_size=256)
    assert b.found.all() and (model(b.points).argmax(1) != b.target).all()
    assert (b.distances < 8).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet", "mnist_bottleneck",
                                  "mnist_allconv", "mnist_vgg_robust"])
def test_default_search_found_rate_on_zoo_models(name):
    model, x = fm.zoo.load(name), _mnist(64)
    b = find_boundary(model, x, batch_size=512)
    assert b.found_rate >= 0.95, b.found_rate
