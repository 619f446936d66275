"""NeFLAG: linear-model identities, constraints, literal reference, seeding, model safety."""

import pytest
import torch
from neflag_reference import literal_neflag
from neflag_stratified_reference import literal_stratified
from torch import nn
from torch.nn.functional import cosine_similarity

import faithmap as fm
from faithmap.core.targets import Target
from faithmap.methods.neflag import flux_terms, score_gradient
from model_checks import assert_same_fingerprint, fingerprint
from tiny_models import tiny_cnn


def _linear(classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, classes)).eval()


def _x_inside(n: int = 3) -> torch.Tensor:  # well inside the box: radius 0.2 never reaches it
    return 0.5 + 0.05 * torch.randn(n, 3, 4, 4, generator=torch.Generator().manual_seed(3))


def _smooth_cnn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Softplus(), nn.Conv2d(4, 4, 3),
                         nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double().eval()


@pytest.mark.parametrize("n", [1, 2, 10, 20])
def test_linear_logit_attribution_is_the_weight(n):
    # stratified (default): the pairs' off-axis parts cancel and W = Σ cos²θ_i, so A = w
    model, x = _linear(), _x_inside()
    explainer = fm.NeFLAG(model, n_samples=n, score="logit", radius=0.2, seed=n)
    attr = explainer(x, 1)
    w = model[1].weight[1].detach()
    torch.testing.assert_close(attr.flatten(1), w.expand(len(x), -1), rtol=1e-4, atol=1e-5)
    # every point lowers the logit: all n used, flux w·n_i = −‖w‖ cos θ_i (θ = 0 at the pole)
    assert explainer.metadata["points_used"].tolist() == [n] * len(x)
    cos = torch.tensor([1.0] * (n % 2) + [0.5] * (n - n % 2))  # cos 60°
    torch.testing.assert_close(explainer.metadata["mean_flux"],
                               (-w.norm() * cos.mean()).expand(len(x)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n", [1, 10, 20])
def test_linear_logit_descent_is_the_weight(n):
    model, x = _linear(), _x_inside()
    explainer = fm.NeFLAG(model, n_samples=n, score="logit", radius=0.2, seed=n,
                          sampling="descent")
    attr = explainer(x, 1)
    w = model[1].weight[1].detach()
    cos = cosine_similarity(attr.flatten(1), w[None], dim=1)
    assert bool((cos > 0.99).all()), cos
    # every search point lowers the logit: all n points used, flux = w·n ≈ -‖w‖
    assert explainer.metadata["points_used"].tolist() == [n] * len(x)
    assert torch.allclose(explainer.metadata["mean_flux"], -w.norm().expand(len(x)), rtol=0.02)


@pytest.fixture(scope="module")
def digits():
    images, labels = fm.data.load("mnist", split="test")
    return fm.zoo.load("mnist_vgg"), images[:6]


@pytest.mark.parametrize("n", [2, 10, 20])
def test_points_point_different_ways_on_real_digits(digits, n):
    # issue 16: the wave-1 search sent all n points the same way (pairwise cosine ≥ 0.98)
    model, x = digits
    explainer = fm.NeFLAG(model, n_samples=n, keep_points=True, seed=0)
    explainer(x)
    d = (explainer.metadata["points"] - x[:, None]).flatten(2)
    d = d / d.norm(dim=2, keepdim=True)
    cos = d @ d.transpose(1, 2) - 2 * torch.eye(n)  # off-diagonal entries only
    assert float(cos.max()) < 0.75, cos.amax((1, 2))
    assert bool((explainer.metadata["points_used"] > n // 2).all())  # most carry inward flux


def test_more_points_change_the_map_on_real_digits(digits):
    model, x = digits
    one = fm.NeFLAG(model, n_samples=1, seed=0)(x)
    twenty = fm.NeFLAG(model, n_samples=20, seed=0)(x)
    cos = cosine_similarity(one.flatten(1), twenty.flatten(1), dim=1)
    assert float(cos.max()) < 0.95, cos


def test_cost_is_steps_plus_points():
    model, calls = _smooth_cnn(), []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fm.NeFLAG(model, n_samples=5, steps=3, radius=0.5, batch_size=None)(x, [0, 1])
    assert sum(calls) == 2 * (3 + 5)  # T rows for the axis, n for the points, per sample


def test_linear_probability_binary_is_the_weight_difference():
    # ∇p_c = p_c(1 − p_c)(w_c − w_other): the field's direction is uniform for two classes
    # (for K > 2 it is w_c − Σ_k p_k w_k, which moves with z, so A is not ∝ w_c).
    model, x = _linear(classes=2), _x_inside()
    attr = fm.NeFLAG(model, n_samples=10, radius=0.2)(x, 0)
    w = model[1].weight.detach()
    cos = cosine_similarity(attr.flatten(1), (w[0] - w[1])[None], dim=1)
    assert bool((cos > 0.99).all()), cos


def test_linear_elementwise_is_the_cubed_weight():
    # per-feature flux min(0, w_j n_j) n_j with n ≈ −w/‖w‖ gives w_j³/‖w‖²
    model, x = _linear(), _x_inside()
    attr = fm.NeFLAG(model, n_samples=10, score="logit", mode="elementwise", radius=0.2,
                     sampling="descent")(x, 2)
    w = model[1].weight[2].detach()
    assert bool((cosine_similarity(attr.flatten(1), (w**3)[None], dim=1) > 0.99).all())
    big = w.abs() > 0.2 * w.abs().max()
    assert torch.equal(attr.flatten(1)[:, big].sign(), w[big].sign().expand(len(x), -1))


@pytest.mark.parametrize("sampling", ["stratified", "descent"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_points_within_radius_and_box(norm, sampling):
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x[:, :, :2] = 0.0
    x[:, :, -2:] = 1.0  # on the box faces: the search pushes outward there
    low, high = (0.0, 0.1, 0.0), (1.0, 1.0, 0.9)
    x[:, 1] = x[:, 1].clamp(0.1, 1.0)
    x[:, 2] = x[:, 2].clamp(0.0, 0.9)
    radius = 1.5 if norm == "l2" else 0.3
    explainer = fm.NeFLAG(tiny_cnn(), n_samples=4, steps=4, radius=radius, norm=norm,
                          bounds=(low, high), keep_points=True, batch_size=5,
                          sampling=sampling)
    explainer(x)
    z = explainer.metadata["points"]
    d = (z - x[:, None]).flatten(2)
    dist = d.norm(dim=2) if norm == "l2" else d.abs().amax(dim=2)
    assert float(dist.max()) <= radius * (1 + 1e-5)
    assert float(dist.max()) > 0.5 * radius  # the search moved
    lo, hi = torch.tensor(low).view(1, 1, 3, 1, 1), torch.tensor(high).view(1, 1, 3, 1, 1)
    assert bool(((z >= lo) & (z <= hi)).all())
    assert bool(((z == lo) | (z == hi)).any())  # the box was active


def test_default_radius_and_out_of_box_inputs():
    explainer = fm.NeFLAG(tiny_cnn(), n_samples=1, steps=1)
    explainer(torch.rand(2, 3, 16, 16))
    assert torch.allclose(explainer.metadata["radius"], torch.full((2,), 0.05 * (3 * 256) ** 0.5))
    with pytest.raises(fm.InvalidInputError, match=r"outside bounds.*bounds=None"):
        explainer(torch.rand(2, 3, 16, 16) * 2 - 0.5)
    free = fm.NeFLAG(tiny_cnn(), n_samples=1, steps=1, bounds=None)
    x = torch.rand(2, 3, 16, 16) * 4 - 2
    free(x)
    span = x.flatten(1).max(1).values - x.flatten(1).min(1).values
    assert torch.allclose(free.metadata["radius"], 0.05 * (3 * 256) ** 0.5 * span)


@pytest.mark.parametrize("mode,norm,score", [("vector", "l2", "probability"),
                                             ("elementwise", "l2", "logit"),
                                             ("vector", "linf", "logit")])
def test_descent_matches_literal_loop(mode, norm, score):
    model = _smooth_cnn()
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    opts = dict(n_samples=3, radius=0.8 if norm == "l2" else 0.15, steps=3, score=score,
                mode=mode, norm=norm, seed=11)
    explainer = fm.NeFLAG(model, keep_points=True, batch_size=4, sampling="descent", **opts)
    attr = explainer(x, [0, 2])
    ref, pts = literal_neflag(model, x, [0, 2], low=torch.zeros(2, 6, 6),
                              high=torch.ones(2, 6, 6), **opts)
    torch.testing.assert_close(explainer.metadata["points"], pts, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(attr, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode,norm,score,n", [("vector", "l2", "probability", 5),
                                               ("elementwise", "l2", "logit", 4),
                                               ("vector", "linf", "logit", 3)])
def test_stratified_matches_independent_literal_loop(mode, norm, score, n):
    model = _smooth_cnn()
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x[0, 0, :2] = 0.0  # on the box face: the clip is active for some points
    opts = dict(n_samples=n, radius=0.8 if norm == "l2" else 0.15, steps=3, score=score,
                mode=mode, norm=norm, seed=11, angle=50.0)
    explainer = fm.NeFLAG(model, keep_points=True, batch_size=3, **opts)
    attr = explainer(x, [0, 2])
    ref, pts = literal_stratified(model, x, [0, 2], low=torch.zeros(2, 6, 6),
                                  high=torch.ones(2, 6, 6), **opts)
    torch.testing.assert_close(explainer.metadata["points"], pts, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(attr, ref, rtol=1e-9, atol=1e-12)


def test_stratified_needs_room_for_its_pairs():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.rand(1, 1, 2, 2)
    fm.NeFLAG(model, n_samples=7, bounds=None)(x, 0)  # 3 pairs ⟂ the axis: fits in 4 features
    with pytest.raises(ValueError, match="needs n_samples <= 7 for inputs of 4 features"):
        fm.NeFLAG(model, n_samples=8, bounds=None)(x, 0)


def test_only_negative_flux_points_contribute():
    x = torch.zeros(3, 1, 1, 2)
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]).view(3, 1, 1, 2)
    g = torch.tensor([[-3.0, 5.0], [1.0, 1.0], [-1.0, 0.0]]).view(3, 1, 1, 2)
    contrib, phi, used, neg = flux_terms(z, x, g, "vector")
    assert phi.tolist() == [-3.0, 1.0, 0.0]  # the third point did not move: no normal
    assert used.tolist() == [1.0, 0.0, 0.0] and neg.tolist() == [-3.0, 0.0, 0.0]
    assert contrib.flatten(1).tolist() == [[-3.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    contrib, *_ = flux_terms(z, x, g, "elementwise")
    assert contrib.flatten(1).tolist() == [[-3.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_metadata_counts_negative_flux_points():
    model, x = tiny_cnn(), torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    explainer = fm.NeFLAG(model, n_samples=5, steps=2, score="logit", keep_points=True)
    explainer(x)
    z = explainer.metadata["points"].flatten(0, 1)
    rows = torch.arange(15) // 5
    idx = torch.tensor(explainer.metadata["target"])[rows]
    z.requires_grad_(True)
    (g,) = torch.autograd.grad(model(z).gather(1, idx[:, None]).sum(), z)
    d = (z - x[rows]).detach().flatten(1)
    phi = (g.flatten(1) * d / d.norm(dim=1, keepdim=True)).sum(1).view(3, 5)
    assert explainer.metadata["points_used"].tolist() == (phi < 0).sum(1).tolist()
    torch.testing.assert_close(explainer.metadata["mean_flux"], phi.mean(1), rtol=1e-4,
                               atol=1e-6)


def test_seeded_and_batch_invariant():
    model = tiny_cnn()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    opts = dict(n_samples=3, steps=3, start=0.5)
    a = fm.NeFLAG(model, seed=7, batch_size=2, **opts)(x)
    assert torch.equal(a, fm.NeFLAG(model, seed=7, batch_size=2, **opts)(x))
    assert not torch.allclose(a, fm.NeFLAG(model, seed=8, batch_size=2, **opts)(x))
    for bs in (1, 5, None):
        torch.testing.assert_close(fm.NeFLAG(model, seed=7, batch_size=bs, **opts)(x), a,
                                   rtol=1e-4, atol=1e-6)
    other = x.clone()
    other[1] = torch.rand(3, 16, 16)
    b = fm.NeFLAG(model, seed=7, **opts)(other)
    torch.testing.assert_close(b[[0, 2]], a[[0, 2]], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fm.NeFLAG(model, seed=7, **opts)(x[:2]), a[:2], rtol=1e-4,
                               atol=1e-6)


def test_model_unchanged_and_registry():
    model = tiny_cnn()
    model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
    before = fingerprint(model)
    attr = fm.explain(model, torch.rand(2, 3, 16, 16), method="neflag", n_samples=2, steps=2)
    assert attr.shape == (2, 3, 16, 16) and not attr.requires_grad
    assert_same_fingerprint(before, fingerprint(model))
    assert "neflag" in fm.available_methods()
    assert isinstance(fm.get_explainer(model, "neflag"), fm.NeFLAG)


@pytest.mark.parametrize("opts,match", [
    ({"n_samples": 0}, "n_samples must be a positive int"),
    ({"n_samples": -2}, "n_samples must be a positive int"),
    ({"n_samples": 2.5}, "n_samples must be a positive int"),
    ({"steps": 0}, "steps must be a positive int"),
    ({"radius": 0.0}, "radius must be a positive number"),
    ({"radius": -1.0}, "radius must be a positive number"),
    ({"step_size": -0.1}, "step_size must be a positive number"),
    ({"score": "softmax"}, "score must be one of probability, logit"),
    ({"mode": "scalar"}, "mode must be one of vector, elementwise"),
    ({"norm": "l1"}, "norm must be one of l2, linf"),
    ({"start": -1}, "start must be a number >= 0"),
    ({"bounds": (0.0,)}, r"bounds must be \(low, high\)"),
    ({"sampling": "uniform"}, "sampling must be one of stratified, descent"),
    ({"angle": 0}, r"angle must be a number of degrees in \(0, 90\)"),
    ({"angle": 90.0}, r"angle must be a number of degrees in \(0, 90\)"),
    ({"angle": True}, r"angle must be a number of degrees in \(0, 90\)"),
])
def test_bad_options(opts, match):
    with pytest.raises(ValueError, match=match):
        fm.NeFLAG(tiny_cnn(), **opts)


def test_bad_bounds_at_call():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="bounds need lo < hi"):
        fm.NeFLAG(tiny_cnn(), bounds=(1.0, 0.0), n_samples=1, steps=1)(x)
    with pytest.raises(ValueError, match="scalar or 3 per-channel values"):
        fm.NeFLAG(tiny_cnn(), bounds=(torch.zeros(2, 5), 1.0), n_samples=1, steps=1)(x)
    with pytest.raises(ValueError, match="bounds hi must be finite"):
        fm.NeFLAG(tiny_cnn(), bounds=(0.0, float("inf")), n_samples=1, steps=1)(x)


def test_old_n_points_warns_and_gives_identical_results():
    model, x = tiny_cnn(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    new = fm.NeFLAG(model, n_samples=3, steps=2, seed=4)
    with pytest.deprecated_call(match="'n_points' is deprecated, use 'n_samples'"):
        old = fm.NeFLAG(model, n_points=3, steps=2, seed=4)
    assert old.n_samples == 3
    assert torch.equal(old(x), new(x))
    with pytest.deprecated_call(match="NeFLAG.n_points is deprecated"):
        assert new.n_points == 3
    with pytest.deprecated_call():
        via = fm.explain(model, x, method="neflag", n_points=3, steps=2, seed=4)
    assert torch.equal(via, new(x))
    with pytest.raises(TypeError, match="pass 'n_samples' only"):
        fm.NeFLAG(model, n_points=3, n_samples=3)


def test_score_gradient_is_the_input_gradient_of_the_score():
    model = _smooth_cnn()
    z = torch.rand(4, 2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    target, rows = Target([0, 2], 2), torch.tensor([0, 0, 1, 1])
    for score in ("logit", "probability"):
        leaf = z.clone().requires_grad_(True)
        out = model(leaf)
        out = out.softmax(1) if score == "probability" else out
        (want,) = torch.autograd.grad(out[torch.arange(4), torch.tensor([0, 0, 2, 2])].sum(),
                                      leaf)
        got = score_gradient(model, z, target, rows, score)
        assert torch.equal(got, want) or torch.allclose(got, want, rtol=1e-12, atol=1e-15)
        assert not got.requires_grad


def test_prelude_rejects_bad_inputs_and_devices():
    explainer = fm.NeFLAG(tiny_cnn(), n_samples=1, steps=1)
    with pytest.raises(fm.InvalidInputError, match="NaN"):
        explainer(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(fm.InvalidInputError, match="model's parameters are on meta"):
        fm.NeFLAG(tiny_cnn().to("meta"), n_samples=1, steps=1)(torch.rand(1, 3, 16, 16))
