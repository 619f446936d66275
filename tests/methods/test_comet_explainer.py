"""The registered COMET explainer (methods/comet.py): chunked through core.batching."""

import pytest
import torch

import faithmap as fm


def test_batch_size_does_not_change_masks_or_predictions():
    bb = fm.comet.load_classifier("cluttered_blackbox")
    x = torch.rand(5, 1, 56, 56, generator=torch.Generator().manual_seed(5))
    runs = []
    for batch_size in (None, 1, 2, 32):
        e = fm.get_explainer(bb, "comet", checkpoint="cluttered_comet", batch_size=batch_size)
        runs.append((e(x, target=3), e.metadata))
    mask, meta = runs[0]
    assert mask.shape == (5, 1, 56, 56) and bool(((mask > 0) & (mask < 1)).all())
    for other, other_meta in runs[1:]:
        torch.testing.assert_close(other, mask, rtol=1e-5, atol=1e-6)
        assert other_meta["comet_prediction"] == meta["comet_prediction"]
        assert other_meta["target_agrees"] == meta["target_agrees"]


def test_comet_refuses_a_model_it_was_not_trained_with():
    """The mask explains COMET's own predictor: for any other classifier it would be a map
    that ignores the model, so it is a named error (issue 19)."""
    other = fm.zoo.load("mnist_allconv")
    with pytest.raises(fm.methods.ModelMismatchError, match="cluttered_comet"):
        fm.get_explainer(other, "comet")
    with pytest.raises(fm.methods.ModelMismatchError):
        fm.explain(other, torch.rand(1, 1, 56, 56), method="comet")
    assert not fm.methods.COMETExplainer.applies_to(other)
    assert fm.methods.COMETExplainer.applies_to(fm.comet.load_classifier("cluttered_blackbox"))
    e = fm.get_explainer(other, "comet", check_model=False)  # asked for explicitly
    assert e(torch.rand(1, 1, 56, 56)).shape == (1, 1, 56, 56)


def test_evaluate_leaves_comet_out_of_the_default_methods_for_another_model():
    from faithmap.evaluation.runner import _default_methods

    assert "comet" not in _default_methods(fm.zoo.load("mnist_allconv"))
    assert "comet" in _default_methods(fm.comet.load_classifier("cluttered_blackbox"))
