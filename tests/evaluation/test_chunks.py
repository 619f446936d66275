"""The runner's two chunk loops (predicted targets, blocks of samples) go through
core.batching: ``block`` changes neither the targets nor the scores."""

import torch

import faithmap as fm
from faithmap.evaluation import EvalData
from faithmap.evaluation.runner import _predicted
from tiny_models import tiny_cnn


def test_predicted_targets_do_not_depend_on_block():
    model = tiny_cnn(in_channels=1, classes=3)
    x = torch.rand(7, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    expected = model(x).argmax(1)
    for block in (1, 3, 7, 100):
        assert torch.equal(_predicted(model, x, "cpu", block), expected)


def test_blocks_cover_every_sample_once_whatever_the_block():
    model = tiny_cnn(in_channels=1, classes=3)
    x = torch.rand(7, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    runs = {}
    for block in (1, 3, 16):
        data = EvalData("tiny", x)  # no targets: the predicted class is explained
        result = fm.evaluate(model, data, ["saliency"], ["sparseness"], block=block,
                             progress=False, curve_samples=0)
        runs[block] = sorted((r["sample"], r["score"]) for r in result.samples)
        assert [s for s, _ in runs[block]] == list(range(7))
        assert result.shown_targets["tiny"] == model(x).argmax(1)[:6].tolist()
    for block in (3, 16):
        for (_, a), (_, b) in zip(runs[1], runs[block]):
            assert abs(a - b) <= 1e-6 * max(1.0, abs(a))


def test_eval_data_target_and_deprecated_targets():
    import pytest

    x, y = torch.rand(3, 1, 4, 4), torch.tensor([0, 2, 1])
    new = EvalData("d", x, target=y)
    with pytest.warns(DeprecationWarning, match="'targets' is deprecated, use 'target'"):
        old = EvalData("d", x, targets=y)
    assert torch.equal(old.target, new.target)
    with pytest.warns(DeprecationWarning, match="EvalData.targets is deprecated"):
        assert old.targets is old.target
    with pytest.raises(ValueError, match="2 targets for 3 images"):
        EvalData("d", x, y[:2])
    assert torch.equal(new.subset(torch.tensor([2, 0])).target, torch.tensor([1, 0]))
