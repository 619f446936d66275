import pytest
import torch

import faithmap as fm
from faithmap.core import Target, TargetError


def _logits(n=3, k=4):
    return torch.arange(n * k, dtype=torch.float32).view(n, k).flip(1)  # argmax = 0


def test_none_resolves_to_argmax():
    out = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 1.0]])
    t = Target(None, 2)
    assert torch.equal(t.scores(out), torch.tensor([2.0, 5.0]))
    assert t.index_list() == [1, 0]


@pytest.mark.parametrize("target", [2, [2, 2, 2], torch.tensor([2, 2, 2]), (2, 2, 2),
                                    torch.tensor(2)])
def test_index_forms(target):
    out = _logits()
    assert torch.equal(Target(target, 3).scores(out), out[:, 2])


def test_per_sample_targets_and_rows():
    out = _logits()
    t = Target([0, 1, 3], 3)
    assert torch.equal(t.scores(out), torch.stack([out[0, 0], out[1, 1], out[2, 3]]))
    rows = torch.tensor([2, 2, 0])
    assert torch.equal(t.scores(out, rows), torch.stack([out[0, 3], out[1, 3], out[2, 0]]))


def test_callable_target():
    out = _logits()
    t = Target(lambda o: o[:, 1] - o[:, 0], 3)
    assert torch.equal(t.scores(out), out[:, 1] - out[:, 0])
    assert t.index_list() is None


@pytest.mark.parametrize("target", [4, -1, [0, 1], [0, 1, 2, 3], [[0], [1], [2]],
                                    torch.tensor([0.0, 1.0, 2.0]), True, "cat"])
def test_bad_targets_raise_value_error(target):
    with pytest.raises(ValueError):
        Target(target, 3).scores(_logits())


def test_out_of_range_message_names_the_class():
    with pytest.raises(TargetError, match="target class 7 is out of range.*4 outputs"):
        Target(7, 3).scores(_logits())


def test_callable_with_wrong_shape_raises():
    with pytest.raises(TargetError, match="one score per row"):
        Target(lambda o: o, 3).scores(_logits())


def test_targets_through_explain(cnn, x_small):
    with pytest.raises(ValueError, match="out of range"):
        fm.explain(cnn, x_small, method="saliency", target=5)
    with pytest.raises(ValueError, match="4 samples"):
        fm.explain(cnn, x_small, method="saliency", target=[0, 1])
    a = fm.explain(cnn, x_small, method="saliency", target=None)
    pred = cnn(x_small).argmax(1)
    b = fm.explain(cnn, x_small, method="saliency", target=pred)
    assert torch.equal(a, b)


def test_non_logit_output_needs_a_callable(x_small):
    seg = torch.nn.Conv2d(3, 2, 1).eval()
    with pytest.raises(TargetError, match="callable"):
        fm.explain(seg, x_small, method="saliency", target=1)
    attr = fm.explain(seg, x_small, method="saliency", target=lambda o: o[:, 1].sum((1, 2)))
    assert attr.shape == x_small.shape
