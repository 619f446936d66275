"""Robustness metrics: max-sensitivity (Quantus cross-check) and manipulation attacks."""

import numpy as np
import pytest
import torch

import faithmap as fm
from faithmap.core.errors import InvalidInputError, ModelModeError, TargetError
from faithmap.core.registry import as_explain_fn as explainer_for
from faithmap.core.targets import Target
from faithmap.metrics.manipulation import default_region, manipulate, softplus_copy
from faithmap.metrics.robustness import manipulation_attack, max_sensitivity, sensitivity_noise
from model_checks import assert_same_fingerprint, fingerprint


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(3))


def _all_noise(x, n_samples, radius, seed):
    rows = torch.arange(x.shape[0] * n_samples)
    return sensitivity_noise(x, rows, n_samples, radius, seed).view(
        x.shape[0], n_samples, *x.shape[1:])


# --- max-sensitivity -----------------------------------------------------------------------

def test_max_sensitivity_matches_quantus_with_identical_noise(cnn, x):
    quantus = pytest.importorskip("quantus")
    s, radius = 4, 0.1
    explainer = fm.Saliency(cnn)
    a = explainer(x)
    ours = max_sensitivity(cnn, x, a, explainer="saliency", radius=radius, n_samples=s, seed=7)
    noise = _all_noise(x, s, radius, 7).numpy()
    step = iter(range(s))

    def perturb(arr, indices=None, indexed_axes=None, **kwargs):
        return arr + noise[:, next(step)].reshape(arr.shape)

    def explain(model, inputs, targets, **kwargs):
        return explainer(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    y = cnn(x).argmax(1).numpy()
    theirs = quantus.MaxSensitivity(nr_samples=s, perturb_func=perturb, disable_warnings=True)(
        model=cnn, x_batch=x.numpy(), y_batch=y, a_batch=a.numpy(), explain_func=explain)
    assert np.allclose(ours.numpy(), theirs, atol=1e-4)


def test_max_sensitivity_literal_reference(cnn, x):
    explainer = fm.IntegratedGradients(cnn, n_steps=3)
    a = explainer(x)
    ours = max_sensitivity(cnn, x, a, explainer=explainer, n_samples=3, radius=0.05, seed=1)
    noise = _all_noise(x, 3, 0.05, 1)
    y = cnn(x).argmax(1)
    for i in range(x.shape[0]):
        worst = 0.0
        for d in range(3):
            e = explainer(x[i:i + 1] + noise[i, d], y[i:i + 1])
            worst = max(worst, float((e - a[i]).norm() / a[i].norm()))
        assert ours[i].item() == pytest.approx(worst, rel=1e-4)


def test_max_sensitivity_seeded_batch_size_invariant_and_noise_in_ball(cnn, x):
    a = fm.Saliency(cnn)(x)
    kw = dict(explainer="saliency", n_samples=5, radius=0.2)
    s1 = max_sensitivity(cnn, x, a, seed=3, batch_size=None, **kw)
    assert torch.allclose(s1, max_sensitivity(cnn, x, a, seed=3, batch_size=4, **kw))
    assert torch.allclose(s1, max_sensitivity(cnn, x, a, seed=3, batch_size=1, **kw))
    assert not torch.allclose(s1, max_sensitivity(cnn, x, a, seed=4, **kw))
    noise = _all_noise(x, 5, 0.2, 3)
    assert noise.abs().max() <= 0.2 and noise.abs().max() > 0.19
    assert torch.equal(max_sensitivity(cnn, x, a, radius=0.0, explainer="saliency"),
                       torch.zeros(3))


def test_max_sensitivity_explainer_forms_agree(cnn, x):
    a = fm.Saliency(cnn)(x)
    by_name = max_sensitivity(cnn, x, a, explainer="saliency", n_samples=2)
    by_object = max_sensitivity(cnn, x, a, explainer=fm.Saliency(cnn), n_samples=2)
    by_callable = max_sensitivity(
        cnn, x, a, explainer=lambda m, xx, t: fm.explain(m, xx, "saliency", t), n_samples=2)
    assert torch.allclose(by_name, by_object) and torch.allclose(by_name, by_callable)


def test_max_sensitivity_errors(cnn, x):
    a = fm.Saliency(cnn)(x)
    with pytest.raises(ValueError, match="explainer="):
        max_sensitivity(cnn, x, a)
    with pytest.raises(InvalidInputError, match="do not match"):
        max_sensitivity(cnn, x, a[:2], explainer="saliency")
    with pytest.raises(InvalidInputError, match="all zero"):
        max_sensitivity(cnn, x, torch.zeros_like(a), explainer="saliency")
    with pytest.raises(ValueError, match="out of range"):
        max_sensitivity(cnn, x, a, target=99, explainer="saliency", n_samples=1)
    with pytest.raises(InvalidInputError, match="NaN"):
        max_sensitivity(cnn, x * float("nan"), a, explainer="saliency")
    with pytest.raises(ValueError, match="n_samples"):
        max_sensitivity(cnn, x, a, explainer="saliency", n_samples=0)


# --- manipulation attack -------------------------------------------------------------------

ATTACKS = ("topk", "targeted", "mass_center")


@pytest.mark.parametrize("attack", ATTACKS)
def test_gradient_attack_keeps_label_and_ball_and_moves_explanation(cnn, x, attack):
    explainer = fm.Saliency(cnn)
    a = explainer(x)
    target = Target(None, 3).resolve_with(cnn, x)
    x_hat, a_hat, k = manipulate(
        cnn, x, a, target, explainer, "saliency", attack=attack, k=None, radius=0.05,
        steps=4, step_size=None, target_region=None, bounds=(0.0, 1.0), beta=10.0,
        n_candidates=4, seed=0, batch_size=32)
    assert k == round(0.1 * 144)
    assert (x_hat - x).abs().max() <= 0.05 + 1e-6
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    assert torch.equal(cnn(x_hat).argmax(1), cnn(x).argmax(1))
    assert torch.allclose(a_hat, explainer(x_hat), atol=1e-6)
    moved = (x_hat != x).flatten(1).any(1)
    assert bool(moved.any())
    score = manipulation_attack(cnn, x, a, explainer="saliency", attack=attack, radius=0.05,
                                steps=4)
    assert bool((score[moved] < 1).all()) and bool((score[~moved] == 1).all())


def test_attack_scores_seeded_and_batch_size_invariant(cnn, x):
    for explainer in ("input_x_gradient", "gradcam"):  # gradient / random-search paths
        a = fm.get_explainer(cnn, explainer)(x)
        kw = dict(explainer=explainer, steps=2, radius=0.05, n_candidates=3, seed=5)
        s1 = manipulation_attack(cnn, x, a, batch_size=None, **kw)
        s2 = manipulation_attack(cnn, x, a, batch_size=3, **kw)
        assert torch.allclose(s1, s2), explainer
        assert torch.allclose(s1, manipulation_attack(cnn, x, a, batch_size=1, **kw))
        ss = manipulation_attack(cnn, x, a, score="sensitivity", **kw)
        assert torch.allclose(ss, manipulation_attack(cnn, x, a, score="sensitivity", **kw))
        assert bool((ss >= 0).all()) and bool(((s1 >= 0) & (s1 <= 1)).all())


def test_zero_budget_means_unattacked(cnn, x):
    a = fm.Saliency(cnn)(x)
    for attack in ATTACKS:
        s = manipulation_attack(cnn, x, a, explainer="saliency", attack=attack, radius=0.0,
                                steps=2)
        assert torch.equal(s, torch.ones(3))
        ss = manipulation_attack(cnn, x, a, explainer="saliency", attack=attack, radius=0.0,
                                 steps=2, score="sensitivity")
        assert torch.equal(ss, torch.zeros(3))


@pytest.mark.parametrize("explainer", ["integrated_gradients", "smoothgrad", "vargrad"])
def test_attack_runs_for_multiplied_explainers(cnn, x, explainer):
    e = fm.get_explainer(cnn, explainer, n_samples=2) if "grad" in explainer[-4:] else \
        fm.get_explainer(cnn, explainer, n_steps=3)
    a = e(x)
    s = manipulation_attack(cnn, x, a, explainer=e, steps=2, radius=0.05, batch_size=4)
    assert s.shape == (3,) and bool(((s >= 0) & (s <= 1)).all())


def test_softplus_surrogate_is_a_copy(cnn):
    before = fingerprint(cnn)
    soft = softplus_copy(cnn, 5.0)
    assert not any(isinstance(m, torch.nn.ReLU) for m in soft.modules())
    assert any(isinstance(m, torch.nn.ReLU) for m in cnn.modules())
    assert_same_fingerprint(before, fingerprint(cnn))


def test_default_target_region_is_bottom_right():
    r = default_region(16, 16, torch.device("cpu"))
    assert r.sum() == 16 and r[12:, 12:].all()
    assert default_region(448, 448, torch.device("cpu")).sum() == 64


def test_model_unchanged_by_robustness_metrics(cnn, x):
    before = fingerprint(cnn)
    a = fm.Saliency(cnn)(x)
    max_sensitivity(cnn, x, a, explainer="saliency", n_samples=2)
    for explainer in ("saliency", "gradcam"):
        manipulation_attack(cnn, x, fm.get_explainer(cnn, explainer)(x), explainer=explainer,
                            steps=1, radius=0.05, n_candidates=2)
    with pytest.raises(ValueError):
        manipulation_attack(cnn, x, a, target=99, explainer="saliency", steps=1)
    assert_same_fingerprint(before, fingerprint(cnn))


def test_attack_errors(cnn, x):
    a = fm.Saliency(cnn)(x)
    with pytest.raises(ValueError, match="attack"):
        manipulation_attack(cnn, x, a, explainer="saliency", attack="nope")
    with pytest.raises(ValueError, match="score"):
        manipulation_attack(cnn, x, a, explainer="saliency", score="nope")
    with pytest.raises(InvalidInputError, match="outside bounds"):
        manipulation_attack(cnn, x * 3, a, explainer="saliency")
    with pytest.raises(ValueError, match="k="):
        manipulation_attack(cnn, x, a, explainer="saliency", k=10_000)
    with pytest.raises(InvalidInputError, match="target_region"):
        manipulation_attack(cnn, x, a, explainer="saliency", attack="targeted",
                            target_region=torch.ones(5, 5))


def test_explainer_for_moves_an_explainer_to_another_model(cnn):
    import copy

    other = copy.deepcopy(cnn)
    e = fm.IntegratedGradients(cnn, n_steps=3)
    moved = explainer_for(e, other)
    assert moved.model is other and e.model is cnn and moved.n_steps == 3


def test_metadata():
    assert max_sensitivity.higher_is_better is False
    assert manipulation_attack.higher_is_better is True
    for fn in (max_sensitivity, manipulation_attack):
        assert fn.category == "robustness" and fn.kind == "model"


# --- vocabulary, prelude, geometry and the gradient path ----------------------------------

def test_old_option_names_warn_and_give_identical_scores(cnn, x):
    a = fm.Saliency(cnn)(x)
    new = dict(explainer="saliency", steps=2, radius=0.05, bounds=(0.0, 1.0), target=1)
    old = dict(explainer="saliency", steps=2, epsilon=0.05, input_range=(0.0, 1.0), targets=1)
    with pytest.warns(DeprecationWarning) as caught:
        got = manipulation_attack(cnn, x, a, **old)
    assert {str(w.message).split("'")[1] for w in caught} == {"epsilon", "input_range",
                                                              "targets"}
    assert torch.equal(got, manipulation_attack(cnn, x, a, **new))
    assert torch.equal(got, manipulation_attack(
        cnn, x, a, 1, **{k: v for k, v in new.items() if k != "target"}))  # positional form
    kw = dict(explainer="saliency", n_samples=2, seed=3)
    with pytest.warns(DeprecationWarning, match="'targets' is deprecated"):
        old_ms = max_sensitivity(cnn, x, a, targets=[0, 1, 2], **kw)
    assert torch.equal(old_ms, max_sensitivity(cnn, x, a, target=[0, 1, 2], **kw))
    assert torch.equal(old_ms, max_sensitivity(cnn, x, a, [0, 1, 2], **kw))
    with pytest.raises(TypeError, match="deprecated name"):
        manipulation_attack(cnn, x, a, explainer="saliency", radius=0.1, epsilon=0.1)


def test_manipulate_old_names_warn_and_agree(cnn, x):
    e = fm.Saliency(cnn)
    a, target = e(x), Target(None, 3).resolve_with(cnn, x)
    common = dict(attack="topk", k=None, steps=2, step_size=None, target_region=None,
                  beta=10.0, n_candidates=2, seed=0, batch_size=32)
    new = manipulate(cnn, x, a, target, e, e, radius=0.05, bounds=(0.0, 1.0), **common)
    with pytest.warns(DeprecationWarning):
        old = manipulate(cnn, x, a, target, e, e, epsilon=0.05, input_range=(0.0, 1.0),
                         **common)
    assert all(torch.equal(o, n) for o, n in zip(old[:2], new[:2])) and old[2] == new[2]


@pytest.mark.parametrize("explainer", ["saliency", "gradcam"])
def test_per_channel_bounds_keep_every_channel_in_its_box(cnn, x, explainer):
    e = fm.get_explainer(cnn, explainer)
    lo, hi = torch.tensor([0.0, 0.3, 0.1]), torch.tensor([1.0, 0.7, 0.9])
    xb = torch.minimum(torch.maximum(x, lo.view(1, 3, 1, 1)), hi.view(1, 3, 1, 1))
    a, target = e(xb), Target(None, 3).resolve_with(cnn, xb)
    x_hat, _, _ = manipulate(cnn, xb, a, target, e, e, attack="topk", k=None, radius=0.2,
                             steps=3, step_size=0.1, target_region=None,
                             bounds=(lo.tolist(), hi.tolist()), beta=10.0, n_candidates=3,
                             seed=0, batch_size=32)
    assert bool((x_hat != xb).any())
    assert bool((x_hat >= lo.view(1, 3, 1, 1)).all() & (x_hat <= hi.view(1, 3, 1, 1)).all())
    assert (x_hat - xb).abs().max() <= 0.2 + 1e-6
    scalar = manipulation_attack(cnn, x, e(x), explainer=e, steps=2, radius=0.05)
    per_channel = manipulation_attack(cnn, x, e(x), explainer=e, steps=2, radius=0.05,
                                      bounds=([0.0] * 3, [1.0] * 3))
    assert torch.equal(scalar, per_channel)  # scalars keep today's numbers
    with pytest.raises(InvalidInputError, match="outside bounds"):
        manipulation_attack(cnn, x, e(x), explainer=e, bounds=(lo.tolist(), hi.tolist()))
    with pytest.raises(ValueError, match="per-channel"):
        manipulation_attack(cnn, x, e(x), explainer=e, bounds=([0.0, 0.0], [1.0, 1.0]))


def test_projection_is_the_linf_ball_intersected_with_the_box(cnn, x):
    """No bounds: only the ball; the box clips on top of it, ‖x̂ − x‖∞ ≤ radius either way."""
    e = fm.Saliency(cnn)
    target = Target(None, 3).resolve_with(cnn, x)
    kw = dict(attack="topk", k=None, radius=0.3, steps=3, step_size=0.3, target_region=None,
              beta=10.0, n_candidates=2, seed=0, batch_size=32)
    free, _, _ = manipulate(cnn, x, e(x), target, e, e, bounds=None, **kw)
    boxed, _, _ = manipulate(cnn, x, e(x), target, e, e, bounds=(0.0, 1.0), **kw)
    assert (free - x).abs().max() <= 0.3 + 1e-6 and (boxed - x).abs().max() <= 0.3 + 1e-6
    assert free.min() < 0 or free.max() > 1  # big steps leave [0, 1] without a box
    assert boxed.min() >= 0 and boxed.max() <= 1


ROBUSTNESS = {"max_sensitivity": dict(explainer="saliency", n_samples=2),
              "manipulation_attack": dict(explainer="saliency", steps=1, radius=0.05)}


@pytest.mark.parametrize("name", list(ROBUSTNESS))
def test_inputs_go_through_the_prelude(name, cnn, x):
    import copy

    fn, opts = {"max_sensitivity": max_sensitivity,
                "manipulation_attack": manipulation_attack}[name], ROBUSTNESS[name]
    a = fm.Saliency(cnn)(x)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fn(lambda t: t, x, a, **opts)
    with pytest.raises(InvalidInputError, match="parameters are on meta"):
        fn(copy.deepcopy(cnn).to("meta"), x, a, **opts)
    with pytest.raises(InvalidInputError, match="inputs must be 4-D"):
        fn(cnn, x[0], a, **opts)
    with pytest.raises(TargetError, match="entries but the batch has 3"):
        fn(cnn, x, a, [0, 1], **opts)
    cnn.train()
    with pytest.raises(ModelModeError):
        fn(cnn, x, a, **opts)
    cnn.eval()
    assert torch.equal(fn(cnn, x.double(), a, **opts), fn(cnn, x, a, **opts))


DIFFERENTIABLE = {"saliency": {}, "input_x_gradient": {}, "integrated_gradients": {"n_steps": 3},
                  "smoothgrad": {"n_samples": 2}}
NOT_DIFFERENTIABLE = {"vargrad": {"n_samples": 2}, "gradcam": {}}


@pytest.mark.parametrize("name", [*DIFFERENTIABLE, *NOT_DIFFERENTIABLE])
def test_gradient_path_exactly_when_the_explainer_is_differentiable(cnn, x, name, monkeypatch):
    from faithmap.metrics import manipulation

    taken = []
    for path in ("_gradient_attack", "_random_search"):
        original = getattr(manipulation, path)
        monkeypatch.setattr(manipulation, path,
                            lambda *args, _f=original, _p=path: taken.append(_p) or _f(*args))
    e = fm.get_explainer(cnn, name, **{**DIFFERENTIABLE, **NOT_DIFFERENTIABLE}[name])
    assert e.differentiable is (name in DIFFERENTIABLE)
    s = manipulation_attack(cnn, x, e(x), explainer=e, steps=2, radius=0.05, batch_size=2)
    assert set(taken) == {"_gradient_attack" if e.differentiable else "_random_search"}
    per_sample = e.rows_per_sample() if e.differentiable else 8  # n_candidates' default
    assert len(taken) == -(-3 // max(1, 2 // per_sample))  # chunks of batch_size // rows
    assert s.shape == (3,) and bool(((s >= 0) & (s <= 1)).all())


@pytest.mark.parametrize("name", list(DIFFERENTIABLE))
def test_gradient_path_uses_the_explainers_own_differentiable_form(cnn, x, name):
    """E(x) through attribute_differentiable is the explainer's map (written once), and the
    attack objective has a non-zero input gradient through the softplus surrogate."""
    from faithmap.metrics.manipulation import differentiable_explanation

    e = fm.get_explainer(cnn, name, **DIFFERENTIABLE[name])
    target = Target(None, 3).resolve_with(cnn, x)
    same = differentiable_explanation(e, cnn, x, target.indices)
    assert torch.allclose(same.detach(), e(x, target.indices), atol=1e-6)
    leaf = x.clone().requires_grad_(True)
    a = differentiable_explanation(e, softplus_copy(cnn, 10.0), leaf, target.indices)
    (g,) = torch.autograd.grad(a.abs().sum(), leaf)
    assert bool(torch.isfinite(g).all()) and bool((g != 0).any())
