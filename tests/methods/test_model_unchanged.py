"""DESIGN.md §1: no call changes the model (parameters, buffers, flags, hooks), even one
that raises."""

import pytest
import torch

import faithmap as fm
from model_checks import assert_same_fingerprint, fingerprint

FAST = {"integrated_gradients": {"n_steps": 3}, "smoothgrad": {"n_samples": 2},
        "vargrad": {"n_samples": 2}, "neflag": {"n_samples": 2, "steps": 2},
        "bsm": {"steps": 5, "cw_steps": 5},
        "big": {"steps": 5, "cw_steps": 5, "n_steps": 3},
        "boundary_smoothgrad": {"steps": 5, "cw_steps": 5, "n_samples": 2},
        "dance": {"patch": 8, "steps": 1, "rounds": 1},
        "comet": {"check_model": False}}  # the mask ignores the model: see test_comet_model


@pytest.mark.parametrize("method", fm.available_methods())
def test_registered_method_leaves_model_unchanged(method, cnn, resnet18, x_small, x_resnet):
    for model, x in ((cnn, x_small), (resnet18, x_resnet[:1])):
        before = fingerprint(model)
        explainer = fm.get_explainer(model, method, **FAST.get(method, {}))
        explainer(x)
        assert_same_fingerprint(before, fingerprint(model))
        with pytest.raises(ValueError):
            explainer(x, target=10_000)  # raises after the guard was entered
        with pytest.raises(ValueError):
            explainer(torch.full_like(x, float("nan")))
        assert_same_fingerprint(before, fingerprint(model))


def test_repeated_calls_are_identical(cnn, x_small):
    for method in fm.available_methods():
        explainer = fm.get_explainer(cnn, method, **FAST.get(method, {}))
        # equal_nan: a boundary method with these few steps finds no boundary (NaN maps)
        torch.testing.assert_close(explainer(x_small), explainer(x_small), rtol=0, atol=0,
                                   equal_nan=True)


@pytest.mark.parametrize("method", fm.available_methods())
def test_spatial_is_fixed_at_construction(method, cnn, x_small):
    """``Explainer.spatial`` is decided in ``__init__`` and matches every call's map shape."""
    explainer = fm.get_explainer(cnn, method, **FAST.get(method, {}))
    spatial = explainer.spatial
    for x in (x_small, x_small[:1]):
        attr = explainer(x)
        assert explainer.spatial is spatial
        assert attr.shape == ((len(x), 1, *x.shape[2:]) if spatial else x.shape)
