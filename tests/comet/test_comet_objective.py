import pytest
import torch

from faithmap import comet
from faithmap.comet.objective import Objective, area_penalty, hinge, selector_loss


def test_area_penalty_zero_iff_every_mask_within_tau():
    m = torch.zeros(3, 1, 4, 4)
    m[0, 0, :2] = 1.0  # area 0.5
    m[1, 0, :1] = 1.0  # area 0.25
    assert float(area_penalty(m, 0.5)) == 0.0
    # literal reference: mean_i max(area_i - tau, 0)
    ref = sum(max(float(m[i].mean()) - 0.3, 0.0) for i in range(3)) / 3
    assert float(area_penalty(m, 0.3)) == pytest.approx(ref)
    assert float(area_penalty(m, 0.3)) > 0


def test_hinge_zero_once_detector_loss_exceeds_margin():
    lp = torch.tensor(0.5)
    assert float(hinge(lp, torch.tensor(2.5), 2.0)) == 0.0
    assert float(hinge(lp, torch.tensor(3.0), 2.0)) == 0.0
    assert float(hinge(lp, torch.tensor(2.0), 2.0)) == pytest.approx(0.5)


def test_selector_loss_forms():
    m = torch.full((2, 1, 4, 4), 0.5)
    lp, ld = torch.tensor(1.0), torch.tensor(1.5)
    bounded = selector_loss(Objective(a=4, gamma=2, b=100, tau=0.25), lp, ld, m)
    assert float(bounded["loss"]) == pytest.approx(1.0 + 4 * 1.5 + 100 * 0.25)
    paper = selector_loss(Objective(a=4, gamma=2, b=100, tau=0.25, form="paper"), lp, ld, m)
    assert float(paper["loss"]) == pytest.approx(1.0 - 4 * 1.5 + 100 * 0.25)
    ablation = selector_loss(Objective(a=0, tau=0.6), lp, None, m)
    assert float(ablation["loss"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="a=0"):
        selector_loss(Objective(a=1), lp, None, m)


@pytest.mark.parametrize("kw, msg", [({"form": "other"}, "form"), ({"tau": 1.5}, "tau"),
                                     ({"a": -1}, ">= 0")])
def test_objective_rejects_bad_settings(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Objective(**kw)


def test_select_and_complement_partition_the_image():
    x = torch.rand(2, 1, 5, 5)
    m = torch.rand(2, 1, 5, 5)
    q = 0.2
    assert torch.allclose(comet.select(x, m, q) + comet.complement(x, m, q), x + q)
    assert torch.equal(comet.select(x, torch.ones_like(m), q), x)


@pytest.mark.parametrize("kind", ["unet"])
def test_mask_in_open_unit_interval_with_input_shape(kind):
    torch.manual_seed(0)
    cfg = {"selector": kind, "selector_widths": [4, 8], "in_channels": 1, "num_classes": 3,
           "predictor_widths": [4, 8], "mean": 0.1, "std": 0.3, "fill": 0.1}
    model = comet.ComprehensiveAttributionModel(cfg).eval()
    for shape in [(3, 1, 12, 12), (2, 1, 13, 9)]:
        x = torch.rand(shape)
        m = model.explain(x)
        assert m.shape == (shape[0], 1, *shape[2:])
        assert bool((m > 0).all() and (m < 1).all())
        assert model(x).shape == (shape[0], 3)


def test_lraspp_selector_shape():
    torch.manual_seed(0)
    sel = comet.build_selector("lraspp", 1).eval()
    out = sel(torch.rand(1, 1, 64, 64))
    assert out.shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="unet"):
        comet.build_selector("resnet", 1)
