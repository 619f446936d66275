"""The registered COMET explainer (methods/comet.py): chunked through core.batching."""

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
