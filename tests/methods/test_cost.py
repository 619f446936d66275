"""Every method declares its passes per sample before it runs (``Explainer.cost``, issues
19 and 20): a hook count of one call on a zoo model with real digits equals the declared
figure when it is exact and stays within it when it is an upper bound."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import pytest
import torch

import faithmap as fm
from faithmap.attacks import boundary as boundary_search
from faithmap.core.cost import Cost
from faithmap.core.registry import available_methods

SEARCH = {"steps": 3, "cw_steps": 4, "refine_steps": 3, "cache": False}
DANCE = {"patch": 14, "steps": 4, "patience": 2}

# (case id, method, options); every registered method has at least one case
CASES = [
    ("saliency", "saliency", {}),
    ("input_x_gradient", "input_x_gradient", {}),
    ("ig", "integrated_gradients", {"n_steps": 5}),
    ("ig-delta", "integrated_gradients", {"n_steps": 5, "convergence_delta": True}),
    ("smoothgrad", "smoothgrad", {"n_samples": 4}),
    ("vargrad", "vargrad", {"n_samples": 3}),
    ("gradcam", "gradcam", {}),
    ("srd", "srd", {}),
    ("bsm", "bsm", SEARCH),
    ("bsm-linf", "bsm", {**SEARCH, "norm": "linf", "radius": [0.05, 0.1, 0.2, 0.4]}),
    ("big", "big", {**SEARCH, "n_steps": 4}),
    ("boundary_smoothgrad", "boundary_smoothgrad", {**SEARCH, "n_samples": 3}),
    ("neflag", "neflag", {"n_samples": 3, "steps": 2}),
    ("neflag-descent", "neflag", {"n_samples": 2, "steps": 2, "sampling": "descent"}),
    ("dance", "dance", DANCE),
    ("dance-all-steps", "dance", {**DANCE, "steps": 2, "patience": None}),
    ("dance-ig", "dance", {**DANCE, "base": "integrated_gradients",
                           "base_options": {"n_steps": 3}}),
    ("dance-constant", "dance", {"patch": 14, "decoys": "constant"}),
    ("captum-saliency", "captum:Saliency", {}),
    ("captum-ig", "captum:IntegratedGradients", {"n_steps": 4}),
    ("zennit", "zennit:EpsilonPlusFlat", {}),
]

if hasattr(boundary_search, "ENGINES"):  # the Fast Minimum-Norm engine of the search
    CASES.append(("big-fmn", "big", {"refine_steps": 3, "cache": False, "n_steps": 3,
                                     "search_options": {"engine": "fmn", "fmn_steps": 6}}))


@contextmanager
def hook_count(model):
    """Rows through ``model``'s forward, and rows whose output received a gradient."""
    counts = {"forward": 0, "backward": 0}

    def on_grad(grad, rows):
        counts["backward"] += rows
        return grad

    def hook(_m, _i, out):
        counts["forward"] += out.shape[0]
        if out.requires_grad:
            out.register_hook(lambda g, r=out.shape[0]: on_grad(g, r))

    handle = model.register_forward_hook(hook)
    try:
        yield counts
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def digits():
    images, labels = fm.data.load("mnist")
    return fm.zoo.load("mnist_allconv"), images[:3], labels[:3]


def check(explainer, x, target):
    declared = explainer.cost(tuple(x.shape), target)
    assert isinstance(declared, Cost)
    with hook_count(explainer.model) as counts, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # e.g. a boundary not found
        explainer(x, target)
    n = x.shape[0]
    seen = (counts["forward"] / n, counts["backward"] / n)
    if declared.exact:
        assert seen == (declared.forward, declared.backward), (declared, seen)
    else:
        assert seen[0] <= declared.forward and seen[1] <= declared.backward, (declared, seen)
        assert seen[0] >= 1  # a bound above a call that ran
    return declared, seen


def test_every_registered_method_has_a_case():
    assert {m for _, m, _ in CASES} >= set(available_methods()) - {"comet"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("target", ["predicted", "labels"])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_declared_cost_bounds_the_hook_count(digits, case, target, batch_size):
    _, method, options = case
    model, x, labels = digits
    e = fm.get_explainer(model, method, batch_size=batch_size, **options)
    declared, _ = check(e, x, None if target == "predicted" else labels)
    if method == "dance":  # the decoy passes stop at layer ℓ: checked by DANCE's own count
        solver = max(e.metadata["decoy_passes"]) + 1  # + F_ℓ(x)
        limit = declared.other["forward to layer ℓ"]
        assert solver == limit if declared.exact else solver <= limit


def test_comet_is_forward_only():
    bb = fm.comet.load_classifier("cluttered_blackbox")
    from faithmap.evaluation.data import load_eval_data

    x = load_eval_data("cluttered", n=2, channels=1).images[:2]
    declared, seen = check(fm.get_explainer(bb, "comet"), x, None)
    assert declared.exact and declared.backward == 0 and declared.other


def test_figures_follow_the_options(digits):
    model, x, _ = digits
    shape = tuple(x.shape)
    ig = fm.get_explainer(model, "integrated_gradients", n_steps=7)
    assert (ig.cost(shape, 1).forward, ig.cost(shape).forward) == (7, 8)
    nf = fm.get_explainer(model, "neflag", n_samples=5, steps=3)
    assert nf.cost(shape, 1) == Cost(8, 8)  # T + n
    big = fm.get_explainer(model, "big", steps=2, cw_steps=0, refine_steps=1, n_steps=3,
                           radius=[1.0, 2.0])
    # x + 2 radii × (2 steps + 1) + 1 bisection + x' | path 3 + gap 2, all bounds
    assert big.cost(shape, 1) == Cost(1 + 6 + 1 + 1 + 5, 4 + 3, exact=False)
    d = fm.get_explainer(model, "dance", patch=14, steps=5, rounds=2, layer="features.3")
    c = d.cost(shape, 1)  # 4 masks × 2 signs of saliency
    assert (c.forward, c.backward, c.exact) == (1 + 8, 8, False)
    assert c.other["backward from layer ℓ"] == 8 * 2 * 5
    srd = fm.get_explainer(model, "srd")
    assert srd.cost(shape, 1).passes == 0 and srd.cost(shape).forward == 1
    assert "at most" in big.cost(shape).text() and "at most" not in ig.cost(shape).text()


def test_default_cost_comes_from_rows_per_sample(digits):
    model, x, _ = digits

    class Twice(fm.core.explainer.Explainer):
        def rows_per_sample(self):
            return 2

    c = Twice(model).cost(tuple(x.shape))
    assert (c.forward, c.backward, c.exact, c.basis) == (2, 2, True, "rows_per_sample")
    with pytest.raises(ValueError, match="x_shape"):
        Twice(model).cost((3,))


def test_gradcam_on_a_token_model_counts_its_layer_probe():
    """On a ViT the first call runs one more forward (of the first sample) to choose the
    layer: declared as a bound for several samples, exact for one, and gone afterwards."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=28, patch_size=7, num_layers=2, num_heads=2,
                            hidden_dim=16, mlp_dim=32, num_classes=10).eval()
    images, _ = fm.data.load("mnist")
    x = images[:2].expand(-1, 3, -1, -1).contiguous()
    one = fm.get_explainer(vit, "gradcam")
    declared, seen = check(one, x[:1], None)
    assert declared.exact and seen == (2, 1)
    e = fm.get_explainer(vit, "gradcam")
    declared, _ = check(e, x, None)
    assert not declared.exact and declared.forward == 2
    assert check(e, x, None)[0] == Cost(1, 1)  # the layer is chosen: no probe any more
