"""The detector term must act per sample (issue 16): with the authors' batch-mean hinge a
few complements on which the detector is confidently wrong zero the hinge for the whole
batch, so the selector never hears about the complements the detector still recognises."""

import pytest
import torch

from faithmap import comet
from faithmap.comet.objective import Objective, hinge_term, selector_loss


@pytest.fixture(scope="module")
def real_batch():
    """32 real cluttered test canvases, the black box, and ``cluttered_comet_batch`` (COMET
    trained with the authors' batch-mean hinge, the pre-issue-16 ``cluttered_comet``)."""
    bench = comet.test_set(n=32, seed=0)
    det = comet.load_classifier("cluttered_blackbox")
    model = comet.ComprehensiveAttributionModel.load("cluttered_comet_batch")
    return model, det, bench.images, bench.labels


def _selector_grad(model, det, x, y, obj):
    params = list(model.selector.parameters())
    out = comet.comet_losses(model, det, x, y, obj)
    return out, torch.cat([g.flatten() for g in torch.autograd.grad(out["loss"], params)])


def test_detector_term_moves_selector_where_batch_hinge_is_zero(real_batch):
    model, det, x, y = real_batch
    batch, g_batch = _selector_grad(model, det, x, y, Objective(tau=0.1, hinge="batch"))
    assert float(batch["hinge"].detach()) == 0.0  # precondition: the authors' hinge is off here
    assert float(batch["complement_hits"]) >= 0.4  # ...while the detector sees the class
    _, g_none = _selector_grad(model, det, x, y, Objective(a=0.0, tau=0.1))
    torch.testing.assert_close(g_batch, g_none)  # batch hinge 0: the detector term is inert
    default, g_default = _selector_grad(model, det, x, y, Objective(tau=0.1))
    assert float(default["hinge"].detach()) > 0.5
    assert float((g_default - g_none).norm()) > 0.1 * float(g_none.norm())


def test_hinge_term_literal_reference():
    lp = torch.tensor([0.1, 0.2, 0.3, 0.4])
    ld = torch.tensor([9.0, 8.0, 0.1, 0.2])
    per = sum(max(float(a) - float(b) + 2.0, 0.0) for a, b in zip(lp, ld)) / 4
    assert float(hinge_term(lp, ld, 2.0)) == pytest.approx(per)
    assert float(hinge_term(lp, ld, 2.0, "batch")) == 0.0  # mean L_D 4.33 > mean L_P + 2
    m = torch.full((4, 1, 3, 3), 0.05)
    terms = selector_loss(Objective(tau=0.1), lp, ld, m)
    assert float(terms["loss"]) == pytest.approx(0.25 + 4 * per)
    paper = selector_loss(Objective(tau=0.1, form="paper"), lp, ld, m)
    assert float(paper["loss"]) == pytest.approx(0.25 - 4 * float(ld.mean()))
    with pytest.raises(ValueError, match="hinge"):
        Objective(hinge="mean")
    with pytest.raises(ValueError, match="same shape"):
        selector_loss(Objective(), lp, ld[:2], m)


def test_selector_loss_scalars_agree_for_both_hinges():
    m = torch.full((2, 1, 4, 4), 0.5)
    lp, ld = torch.tensor(1.0), torch.tensor(1.5)
    for kind in ("sample", "batch"):
        out = selector_loss(Objective(a=4, gamma=2, b=100, tau=0.25, hinge=kind), lp, ld, m)
        assert float(out["loss"]) == pytest.approx(1.0 + 4 * 1.5 + 100 * 0.25)


def test_train_records_hinge_kind():
    from comet_helpers import TINY, tiny_data, tiny_detector

    res = comet.train(tiny_data(8), tiny_data(8, seed=1), detector=tiny_detector(), epochs=1,
                      tau=0.2, hinge="batch", **TINY)
    assert res.config["objective"]["hinge"] == "batch"
    assert "complement_hits" in res.history[0]
    with pytest.raises(ValueError, match="hinge"):
        comet.train(tiny_data(8), tiny_data(8, seed=1), detector=tiny_detector(), epochs=1,
                    hinge="nope", **TINY)
