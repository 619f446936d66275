"""BSM, BIG and boundary SmoothGrad: definitions vs literal references, cache, fallback."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.attacks import BoundaryNotFoundError, find_boundary
from faithmap.methods.boundary.cache import BoundaryCache
from model_checks import assert_same_fingerprint, fingerprint

SEARCH = {"engine": "sweep", "steps": 8, "cw_steps": 20,
          "radius": [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]}


def smooth_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 3)).eval()


def data(n: int = 5) -> torch.Tensor:
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(3))


class Counter(nn.Module):
    """Wraps a model and counts rows through its forward (a list survives model_guard)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.rows = inner, [0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows[0] += x.shape[0]
        return self.inner(x)


def test_big_is_ig_from_the_boundary_point_and_complete():
    model, x = smooth_net().double(), data().double()
    big = fm.BoundaryIntegratedGradients(model, n_steps=64, cache=False, **SEARCH)
    attr = big(x)
    b = find_boundary(model, x, **SEARCH)
    assert big.metadata["found"] == b.found.tolist() and b.found.all()
    ig = fm.IntegratedGradients(model, baseline=b.points, n_steps=64)(x, b.target)
    torch.testing.assert_close(attr, ig)
    y = b.target[:, None]
    gap = (model(x).gather(1, y) - model(b.points).gather(1, y)).squeeze(1).detach()
    delta = big.metadata["convergence_delta"]
    torch.testing.assert_close(delta, attr.flatten(1).sum(1) - gap)
    torch.testing.assert_close(big.metadata["boundary_gap"], gap)
    assert (delta.abs() < 1e-6 * gap.abs().clamp_min(1)).all()  # smooth model, 64 GL steps


def test_bsm_logit_and_margin_are_the_gradients_at_the_boundary():
    model, x = smooth_net(), data()
    b = find_boundary(model, x, **SEARCH)
    bsm = fm.BoundarySaliency(model, cache=False, **SEARCH)(x)
    torch.testing.assert_close(bsm, fm.Saliency(model, abs=False)(b.points, b.target))
    margin = fm.BoundarySaliency(model, objective="margin", cache=False, **SEARCH)
    got = margin(x)
    xp = b.points.clone().requires_grad_(True)
    out = model(xp)
    other = out.detach().scatter(1, b.target[:, None], -torch.inf).argmax(1)
    assert other.tolist() == b.labels.tolist() == margin.metadata["boundary_class"]
    rows = torch.arange(len(x))
    (g,) = torch.autograd.grad((out[rows, b.target] - out[rows, other]).sum(), xp)
    torch.testing.assert_close(got, g)
    assert (fm.BoundarySaliency(model, abs=True, cache=False, **SEARCH)(x) >= 0).all()


def test_boundary_smoothgrad_is_smoothgrad_at_the_boundary():
    model, x = smooth_net(), data()
    b = find_boundary(model, x, seed=2, **SEARCH)
    got = fm.BoundarySmoothGrad(model, n_samples=6, seed=2, cache=False, **SEARCH)(x)
    want = fm.SmoothGrad(model, n_samples=6, seed=2)(b.points, b.target)
    torch.testing.assert_close(got, want)


def test_cache_shares_one_search_across_methods():
    model, x, cache = Counter(smooth_net()), data(), BoundaryCache()
    opts = {"cache": cache, **SEARCH}
    fm.BoundarySaliency(model, **opts)(x)
    searched = model.rows[0]
    assert cache.misses == 1 and searched > 20 * len(x)
    big = fm.BoundaryIntegratedGradients(model, n_steps=4, **opts)
    big(x)
    assert big.metadata["cache_hit"] and big.metadata["search_forward_backward"] == 0
    # BIG on a hit: 1 (target) + 4 steps + 2 (delta) forwards per sample, no search
    assert model.rows[0] - searched == 7 * len(x)
    fm.BoundarySmoothGrad(model, n_samples=3, **opts)(x)
    assert cache.hits == 2 and cache.misses == 1 and len(cache) == 1
    fm.BoundarySaliency(model, **{**opts, "seed": 1})(x)  # other settings: a new search
    fm.BoundarySaliency(model, **opts)(x + 1e-3)  # other inputs: a new search
    assert cache.misses == 3
    with torch.no_grad():
        model.inner[1].weight.mul_(1.0)  # an in-place update invalidates the entry
    fm.BoundarySaliency(model, **opts)(x)
    assert cache.misses == 4


def test_no_boundary_is_flagged_warned_and_gives_nan_maps_by_default():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))
    x = data(3)
    opts = {"cache": False, "steps": 3, "cw_steps": 3, "radius": [0.1, 0.2]}
    for cls, extra in ((fm.BoundaryIntegratedGradients, {"n_steps": 8}),
                       (fm.BoundarySaliency, {}), (fm.BoundarySmoothGrad, {"n_samples": 2})):
        e = cls(model, **extra, **opts)
        with pytest.warns(RuntimeWarning, match="no decision boundary found for samples"):
            attr = e(x)
        assert torch.isnan(attr).all(), cls  # never a plausible-looking map
        assert e.metadata["found"] == [False] * 3 and e.metadata["fallback_samples"] == [0, 1, 2]
    assert all(math.isnan(r) for r in e.metadata["boundary_radius"])  # no radius flipped
    assert "boundary_eps" not in e.metadata
    big = fm.BoundaryIntegratedGradients(model, n_steps=8, fallback=0.0, **opts)
    with pytest.warns(RuntimeWarning, match="use the fallback baseline 0.0"):
        attr = big(x)
    torch.testing.assert_close(attr, fm.IntegratedGradients(model, n_steps=8)(x))
    with pytest.raises(BoundaryNotFoundError,
                       match=r"no decision boundary found.*largest radius 0.2") as info:
        fm.BoundarySaliency(model, fallback="raise", **opts)(x)
    assert info.value.samples == [0, 1, 2] and isinstance(info.value, RuntimeError)


def test_only_the_rows_without_a_boundary_are_nan():
    model, x = smooth_net(), data(4)
    small = {**SEARCH, "radius": [0.4], "steps": 20, "cw_steps": 0}  # 2 of 4 lie within 0.4
    big = fm.BoundaryIntegratedGradients(model, n_steps=8, cache=False, **small)
    with pytest.warns(RuntimeWarning, match="their maps are NaN"):
        attr = big(x)
    found = torch.tensor(big.metadata["found"])
    assert found.tolist() == [True, False, True, False]
    rows = torch.isnan(attr).flatten(1).all(1)
    assert torch.equal(rows, ~found) and torch.isfinite(attr[found]).all()
    assert big.metadata["fallback_samples"] == torch.nonzero(~found).flatten().tolist()
    assert torch.isnan(big.metadata["convergence_delta"][~found]).all()


def _mnist_and_other_class(n: int):
    images, _ = fm.data.load("mnist", split="test")
    x = images[torch.linspace(0, len(images) - 1, n).long()]
    model = fm.zoo.load("mnist_vgg")
    with torch.no_grad():
        pred = model(x).argmax(1)
    return model, x, pred, (pred + 3) % 10


MNIST_SEARCH = {"engine": "sweep", "steps": 10, "cw_steps": 30,
                "radius": [0.5, 1.0, 2.0, 4.0, 8.0], "cache": False, "batch_size": 256}


def test_big_for_a_target_that_is_not_the_prediction_explains_the_targeted_boundary():
    model, x, pred, other = _mnist_and_other_class(2)
    big = fm.BoundaryIntegratedGradients(model, n_steps=32, **MNIST_SEARCH)
    attr = big(x, other)
    md = big.metadata
    assert (attr.flatten(1).abs().amax(1) > 0).all()  # wave 1: identically zero
    assert md["boundary_class"] == other.tolist()  # x' is predicted as the target
    assert md["targeted"] == [True, True] and md["found"] == [True, True]
    b = find_boundary(model, x, other, **{k: v for k, v in MNIST_SEARCH.items()
                                          if k != "cache"})
    assert (b.distances > 0).all() and torch.equal(b.labels, other)
    ig = fm.IntegratedGradients(model, baseline=b.points, n_steps=32)(x, other)
    torch.testing.assert_close(attr, ig)
    gap = md["boundary_gap"]  # f_y(x) − f_y(x′) < 0: x is further from y than x′
    assert (gap < 0).all()
    assert (md["convergence_delta"].abs() < 0.05 * gap.abs()).all()
    bsm = fm.BoundarySaliency(model, **MNIST_SEARCH)
    g = bsm(x, other)
    assert bsm.metadata["targeted"] == [True, True]
    torch.testing.assert_close(g, fm.Saliency(model, abs=False)(b.points, other))


def test_a_predicted_target_is_searched_as_before_in_a_mixed_batch():
    model, x, pred, other = _mnist_and_other_class(2)
    mixed = torch.stack([pred[0], other[1]])
    opts = {k: v for k, v in MNIST_SEARCH.items() if k != "cache"}
    b = find_boundary(model, x, mixed, **opts)
    assert b.targeted.tolist() == [False, True] and b.found.all()
    assert int(b.labels[0]) != int(pred[0]) and int(b.labels[1]) == int(other[1])
    alone = find_boundary(model, x[:1], **opts)
    torch.testing.assert_close(b.points[:1], alone.points)


def test_methods_are_seeded_and_leave_the_model_unchanged(cnn, x_small):
    before = fingerprint(cnn)
    opts = {"cache": False, "steps": 4, "cw_steps": 4, "radius": [0.5, 2.0, 8.0],
            "fallback": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a = fm.BoundaryIntegratedGradients(cnn, n_steps=4, **opts)(x_small)
        b = fm.BoundaryIntegratedGradients(cnn, n_steps=4, **opts)(x_small)
        fm.BoundarySmoothGrad(cnn, n_samples=2, **opts)(x_small)
        fm.BoundarySaliency(cnn, objective="margin", **opts)(x_small)
    assert torch.equal(a, b)
    assert_same_fingerprint(before, fingerprint(cnn))


def test_registry_and_explain():
    model, x = smooth_net(), data(2)
    assert {"bsm", "big", "boundary_smoothgrad"} <= set(fm.available_methods())
    e = fm.get_explainer(model, "big", n_steps=5, integration="riemann_middle", **SEARCH)
    assert isinstance(e, fm.BoundaryIntegratedGradients) and e.integration == "riemann_middle"
    with pytest.deprecated_call(match="BoundaryIntegratedGradients.method is deprecated"):
        assert e.method == "riemann_middle"
    a = fm.explain(model, x, "bsm", target=None, **SEARCH)
    assert a.shape == x.shape and not a.requires_grad


@pytest.mark.parametrize("cls, kwargs, match", [
    (fm.BoundarySaliency, {"objective": "softmax"}, "objective must be"),
    (fm.BoundarySaliency, {"fallback": "mean"}, "fallback must be"),
    (fm.BoundaryIntegratedGradients, {"norm": "l3"}, "norm must be"),
    (fm.BoundaryIntegratedGradients, {"radius": [-1.0]}, "radius values must be"),
    pytest.param(fm.BoundaryIntegratedGradients, {"eps": [-1.0]}, "radius values must be",
                 marks=pytest.mark.filterwarnings("ignore:.*'eps' is deprecated")),
    (fm.BoundaryIntegratedGradients, {"integration": "simpson"}, "unknown integration"),
    (fm.BoundaryIntegratedGradients, {"n_steps": 0}, "n_steps must be"),
])
def test_bad_options_raise_at_construction(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(smooth_net(), **kwargs)


def test_bad_inputs_raise():
    model = smooth_net()
    with pytest.raises(fm.InvalidInputError, match="NaN"):
        fm.BoundarySaliency(model)(torch.full((1, 1, 4, 4), float("nan")))
    with pytest.raises(fm.TargetError, match="class-index targets"):
        fm.BoundarySaliency(model)(data(2), lambda out: out[:, 0])


def test_old_names_warn_and_give_identical_results():
    model, x = smooth_net(), data(3)
    opts = {"cache": False, "steps": 6, "cw_steps": 8}
    radii = [0.5, 1.0, 2.0, 4.0]
    for cls in (fm.BoundarySaliency, fm.BoundaryIntegratedGradients, fm.BoundarySmoothGrad):
        new = cls(model, radius=radii, **opts)
        with pytest.deprecated_call(match="'eps' is deprecated, use 'radius'"):
            old = cls(model, eps=radii, **opts)
        assert torch.equal(old(x), new(x))
        assert torch.equal(old.search["radius"], new.search["radius"])
        assert "eps" not in new.search
    with pytest.deprecated_call(match="search_options: 'eps' is deprecated"):
        via = fm.BoundarySaliency(model, search_options={"eps": radii}, **opts)
    assert torch.equal(via(x), fm.BoundarySaliency(model, radius=radii, **opts)(x))
    new = fm.BoundaryIntegratedGradients(model, n_steps=6, integration="riemann_left",
                                         radius=radii, **opts)
    with pytest.deprecated_call(match="'method' is deprecated, use 'integration'"):
        old = fm.BoundaryIntegratedGradients(model, n_steps=6, method="left", radius=radii,
                                             **opts)
    assert old.integration == new.integration == "riemann_left"
    assert torch.equal(old(x), new(x))
    with pytest.raises(TypeError, match="pass 'integration' only"):
        fm.BoundaryIntegratedGradients(model, method="left", integration="riemann_left")


def test_metadata_names_the_radius_of_the_pgd_search():
    model, x = smooth_net(), data(4)
    bsm = fm.BoundarySaliency(model, cache=False, **{**SEARCH, "cw_steps": 0})
    bsm(x)
    b = find_boundary(model, x, **{**SEARCH, "cw_steps": 0})
    assert bsm.metadata["boundary_radius"] == b.radius.tolist()
    assert set(bsm.metadata["boundary_radius"]) <= set(SEARCH["radius"])


def test_search_uses_the_explainer_batch_size():
    model, x, calls = Counter(smooth_net()), data(5), []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            calls.append(z.shape[0])
            return self.inner(z)

    fm.BoundarySaliency(Spy(), cache=False, batch_size=4, **SEARCH)(x)
    assert max(calls) <= 5 and 4 in calls  # no chunk beyond batch_size (5: the target pass)


# --- the default engine (issue 18): Fast Minimum-Norm ------------------------------------


def mnist(n: int) -> torch.Tensor:
    images, _ = fm.data.load("mnist", split="test")
    return images[torch.linspace(0, len(images) - 1, n).long()]


def test_the_explainers_search_with_fmn_by_default_and_take_engine():
    model, x = fm.zoo.load("mnist_resnet"), mnist(2)
    big = fm.BoundaryIntegratedGradients(model, n_steps=8, cache=False)
    attr = big(x)
    b = big.metadata["boundary"]
    assert big.metadata["boundary_attack"] == ["fmn"] * 2
    assert b["settings"]["engine"] == "fmn"
    ig = fm.IntegratedGradients(model, baseline=b["points"], n_steps=8)(x, b["target"])
    torch.testing.assert_close(attr, ig)  # BIG = IG from FMN's boundary point
    assert big.metadata["search_forward_backward"] <= 100 * 2
    ddn = fm.BoundarySaliency(model, cache=False, engine="ddn")
    a_ddn = ddn(x)
    assert ddn.metadata["boundary_attack"] == ["ddn"] * 2
    via = fm.BoundarySaliency(model, cache=False, search_options={"engine": "ddn"})
    assert torch.equal(via(x), a_ddn)
    sweep = fm.BoundarySaliency(model, cache=False, steps=2, cw_steps=2)  # sweep options
    sweep(x)
    assert set(sweep.metadata["boundary_attack"]) <= {"pgd", "cw", "none"}
    assert sweep.metadata["boundary"]["settings"]["engine"] == "sweep"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"engine": "fmn", "cw_steps": 3}, ValueError, "cw_steps is an option of engine='sweep'"),
    ({"engine": "ddn", "norm": "linf"}, ValueError, "L2 attack"),
    ({"steps": 3, "search_options": {"fmn_steps": 5}}, ValueError, "several search engines"),
    ({"engine": "fmn", "search_options": {"engine": "ddn"}}, TypeError, "disagree"),
])
def test_engine_options_are_checked_when_the_explainer_is_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        fm.BoundarySaliency(smooth_net(), **kwargs)


@pytest.mark.parametrize("method, options", [
    ("bsm", {}), ("big", {"n_steps": 4}), ("boundary_smoothgrad", {"n_samples": 2}),
    ("big", {"engine": "ddn", "n_steps": 3}), ("bsm", {"norm": "linf"}),
    ("big", {"n_steps": 3, "search_options": {"start": "zeros"}}),
])
def test_declared_cost_of_the_default_engine_bounds_the_rows_run(method, options):
    """Explainer.cost() of the minimum-norm engines is an upper bound on the rows through
    the model (forward and backward) for one call (tests/methods/test_cost.py's rule)."""
    model, x = Counter(fm.zoo.load("mnist_resnet")), mnist(3)
    if options.get("search_options", {}).get("start") == "zeros":
        options = {**options, "search_options": {"start": torch.zeros_like(x)}}
    e = fm.get_explainer(model, method, cache=False, **options)
    declared = e.cost(tuple(x.shape))
    backward = [0]

    def hook(_m, _i, out):
        if out.requires_grad:
            out.register_hook(lambda g, r=out.shape[0]: backward.__setitem__(0, backward[0] + r))

    handle = model.register_forward_hook(hook)
    try:
        e(x)
    finally:
        handle.remove()
    assert not declared.exact
    assert model.rows[0] / 3 <= declared.forward and backward[0] / 3 <= declared.backward
    search = e.metadata["boundary"]
    assert search["forward_backward"] / 3 <= 100  # the engine's 100 steps at most
