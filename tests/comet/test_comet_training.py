import pytest
import torch
import torch.nn.functional as F
from comet_helpers import TINY, tiny_data, tiny_detector

from faithmap import comet
from faithmap.comet.objective import Objective, select
from faithmap.core.errors import InvalidInputError
from model_checks import assert_same_fingerprint, fingerprint


def _model(seed=0):
    torch.manual_seed(seed)
    return comet.ComprehensiveAttributionModel(
        {"selector": "unet", "selector_widths": [4, 8], "in_channels": 1, "num_classes": 3,
         "predictor_widths": [4, 8], "mean": 0.2, "std": 0.3, "fill": 0.2}).train()


@pytest.mark.parametrize("variant", ["comet", "no_detector"])
def test_gradients_routed_exactly(variant):
    x, y = tiny_data(8)
    model, det = _model(), tiny_detector()
    obj = Objective(a=0.0 if variant == "no_detector" else 4.0, tau=0.1)
    before = fingerprint(det)
    comet.route_gradients(variant, model, det, x, y, obj)
    # literal references: autograd of L_P alone (predictor) and of L_sel (selector)
    pred = list(model.predictor.parameters())
    sel = list(model.selector.parameters())
    out = comet.comet_losses(model, det if variant == "comet" else None, x, y, obj)
    g_p = torch.autograd.grad(out["loss_p"], pred, retain_graph=True)
    g_s = torch.autograd.grad(out["loss"], sel)
    for p, g in zip(pred, g_p):
        torch.testing.assert_close(p.grad, g)
    for p, g in zip(sel, g_s):
        torch.testing.assert_close(p.grad, g)
    # the full selector loss differs from L_P for the predictor (so routing matters)
    g_full = torch.autograd.grad(comet.comet_losses(model, det, x, y, Objective(tau=0.0))
                                 ["loss"], pred)
    assert any(not torch.allclose(a, b) for a, b in zip(g_full, g_p))
    assert all(p.grad is None for p in det.parameters())
    assert_same_fingerprint(before, fingerprint(det))


def test_posthoc_and_realx_train_only_the_selector():
    x, y = tiny_data(8)
    det = tiny_detector()
    for variant in ("posthoc", "realx"):
        model = _model()
        comet.route_gradients(variant, model, det, x, y, Objective(tau=0.1))
        assert all(p.grad is None for p in model.predictor.parameters())
        assert all(p.grad is not None for p in model.selector.parameters())
    model = _model()
    comet.route_gradients("realx_eval", model, det, x, y, Objective(),
                          generator=torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in model.selector.parameters())


def test_detector_unchanged_by_training_and_kept_in_eval():
    (x, y), val = tiny_data(16), tiny_data(8, seed=1)
    det = tiny_detector()
    det.train()  # the user's mode is restored, but training runs it in eval mode
    before = fingerprint(det)
    seen = []
    det.register_forward_pre_hook(lambda m, i: seen.append(m.training))
    before = fingerprint(det)
    comet.train((x, y), val, detector=det, epochs=1, tau=0.2, **TINY)
    assert seen and not any(seen)
    assert_same_fingerprint(before, fingerprint(det))


def test_resume_reproduces_uninterrupted_run(tmp_path):
    train_d, val_d = tiny_data(16), tiny_data(8, seed=1)
    det = tiny_detector()
    full = comet.train(train_d, val_d, detector=det, epochs=3, tau=0.2, seed=3,
                       checkpoint_dir=tmp_path / "a", **TINY)
    comet.train(train_d, val_d, detector=det, epochs=1, tau=0.2, seed=3,
                checkpoint_dir=tmp_path / "b", **TINY)
    resumed = comet.train(train_d, val_d, detector=det, epochs=3, tau=0.2, seed=3,
                          checkpoint_dir=tmp_path / "b", resume=tmp_path / "b" / "last.pt",
                          **TINY)
    last_a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    last_b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    for k in last_a:
        assert torch.equal(last_a[k], last_b[k]), k
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in full.history]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in resumed.history]
    assert full.best_epoch == resumed.best_epoch
    with pytest.raises(ValueError, match="objective"):
        comet.train(train_d, val_d, detector=det, epochs=4, tau=0.3, seed=3,
                    resume=tmp_path / "b" / "last.pt", **TINY)


def test_training_log_and_best_checkpoint(tmp_path):
    train_d, val_d = tiny_data(16), tiny_data(8, seed=1)
    lines = []
    res = comet.train(train_d, val_d, detector=tiny_detector(), epochs=2, tau=0.2,
                      checkpoint_dir=tmp_path, **{**TINY, "log": lines.append})
    assert len(res.history) == 2 and len(lines) == 2
    for key in ("loss_p", "loss_d", "hinge", "area", "val_acc", "val_area"):
        assert key in res.history[0] and key in lines[0]
    assert res.best_val_acc == max(e["val_acc"] for e in res.history)
    best = comet.ComprehensiveAttributionModel.load(tmp_path / "best.pt")
    acc = comet.validate(best, None, *val_d)["val_acc"]
    assert acc == pytest.approx(res.best_val_acc)
    # the returned model is the best one: its predictions equal f_P(x_s)
    x = val_d[0]
    with torch.no_grad():
        m = res.model.explain(x)
        assert torch.allclose(res.model(x), res.model.predictor(select(x, m, res.model.fill)))


def test_seeded_runs_identical_and_realx_posthoc_run():
    train_d, val_d = tiny_data(16), tiny_data(8, seed=1)
    det = tiny_detector()
    a = comet.train(train_d, val_d, detector=det, epochs=1, tau=0.2, seed=1, **TINY)
    b = comet.train(train_d, val_d, detector=det, epochs=1, tau=0.2, seed=1, **TINY)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    r = comet.train(train_d, val_d, detector=det, epochs=2, realx_eval_epochs=1,
                    variant="realx", **TINY)
    assert [e["stage"] for e in r.history] == ["realx_eval", "realx"] and r.best_epoch == 2
    p = comet.train(train_d, val_d, detector=det, epochs=1, variant="posthoc", **TINY)
    for k, v in det.state_dict().items():
        assert torch.equal(p.model.predictor.state_dict()[k], v)


@pytest.mark.parametrize("data, msg", [
    ("not a pair", "pair"),
    ((torch.rand(4, 12, 12), torch.zeros(4)), "N×C×H×W"),
    ((torch.rand(4, 1, 12, 12) * 3, torch.zeros(4, dtype=torch.long)), r"\[0, 1\]"),
    ((torch.rand(4, 1, 12, 12), torch.zeros(3, dtype=torch.long)), "labels"),
    ((torch.full((4, 1, 12, 12), float("nan")), torch.zeros(4, dtype=torch.long)), "NaN"),
])
def test_bad_training_data(data, msg):
    with pytest.raises(InvalidInputError, match=msg):
        comet.train(data, tiny_data(4), detector=tiny_detector(), epochs=1, **TINY)


def test_bad_settings():
    d = tiny_data(8)
    with pytest.raises(ValueError, match="detector"):
        comet.train(d, d, epochs=1, **TINY)
    with pytest.raises(ValueError, match="variant"):
        comet.train(d, d, detector=tiny_detector(), variant="x", **TINY)
    with pytest.raises(ValueError, match="posthoc"):
        comet.train(d, d, detector=torch.nn.Linear(2, 2), variant="posthoc", **TINY)
    model = _model().eval()
    with pytest.raises(InvalidInputError, match="channel"):
        model(torch.rand(2, 3, 12, 12))
    assert F.softmax(model(d[0]), 1).shape == (8, 3)
