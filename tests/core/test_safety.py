import pytest
import torch
from torch import nn

import faithmap as fm
from faithmap.core import ModelModeError, model_guard
from model_checks import assert_same_fingerprint, fingerprint


def test_training_mode_with_dropout_or_bn_is_refused(cnn, x_small):
    cnn.train()
    with pytest.raises(ModelModeError, match=r"model\.eval\(\)"):
        fm.explain(cnn, x_small, method="saliency")
    assert cnn.training  # the refusal changed nothing
    drop = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 16 * 16, 3)).train()
    with pytest.raises(ValueError):
        fm.explain(drop, x_small, method="saliency")


def test_training_mode_without_stochastic_layers_is_fine(x_small):
    lin = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)).train()
    attr = fm.explain(lin, x_small, method="saliency", abs=False, target=1)
    torch.testing.assert_close(attr, lin[1].weight[1].view(1, 3, 16, 16).expand_as(x_small))
    assert lin.training


def test_guard_restores_everything_when_the_body_raises(cnn):
    before = fingerprint(cnn)
    with pytest.raises(RuntimeError, match="boom"), model_guard(cnn):
        cnn.conv1.register_forward_hook(lambda *a: None)
        cnn.relu.register_full_backward_hook(lambda *a: None)
        cnn.conv2.weight.requires_grad_(False)
        cnn.bn1.train()
        cnn.relu.inplace = False
        cnn.conv3 = nn.Identity()
        cnn.head.weight.grad = torch.ones_like(cnn.head.weight)
        raise RuntimeError("boom")
    assert_same_fingerprint(before, fingerprint(cnn))


def test_guard_warns_about_in_place_parameter_changes(cnn):
    with pytest.warns(RuntimeWarning, match="conv1.weight"), model_guard(cnn), torch.no_grad():
        cnn.conv1.weight.mul_(1.0)


# COMET's mask ignores the model; it refuses any model but its detector unless asked
OPTIONS = {"comet": {"check_model": False}}


def test_hooks_removed_when_a_method_raises(cnn, x_small):
    before = fingerprint(cnn)

    def bad_target(output):
        raise KeyError("bad target")

    # Boundary methods need class indices: they refuse a callable target up front.
    no_callables = {"bsm", "big", "boundary_smoothgrad"}
    for method in fm.available_methods():
        error = fm.TargetError if method in no_callables else KeyError
        with pytest.raises(error):
            fm.explain(cnn, x_small, method=method, target=bad_target,
                       **OPTIONS.get(method, {}))
    assert_same_fingerprint(before, fingerprint(cnn))


def test_parameter_grads_untouched(cnn, x_small):
    cnn.head.weight.grad = torch.full_like(cnn.head.weight, 3.0)
    fm.explain(cnn, x_small, method="integrated_gradients", n_steps=4)
    assert cnn.conv1.weight.grad is None
    assert torch.equal(cnn.head.weight.grad, torch.full_like(cnn.head.weight, 3.0))


def test_frozen_model_still_explainable(cnn, x_small):
    for p in cnn.parameters():
        p.requires_grad_(False)
    for method in fm.available_methods():
        attr, meta = fm.explain(cnn, x_small, method=method, return_metadata=True,
                                **OPTIONS.get(method, {}))
        finite = torch.isfinite(attr).flatten(1).all(1)
        # NaN only where the method says it has no answer (no decision boundary in the box)
        assert (~finite).nonzero().flatten().tolist() == meta.get("fallback_samples", [])
    assert not any(p.requires_grad for p in cnn.parameters())
