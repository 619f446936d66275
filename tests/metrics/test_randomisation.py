"""MPRT and its similarity helpers: scipy/skimage/Quantus cross-checks, seeding, safety."""

import numpy as np
import pytest
import torch

import faithmap as fm
from faithmap.core.errors import InvalidInputError
from faithmap.metrics import randomisation
from faithmap.metrics._similarity import average_ranks, spearman, ssim
from faithmap.metrics.randomisation import cascade_layers, mprt
from model_checks import assert_same_fingerprint, fingerprint


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(3, 3, 12, 12, generator=torch.Generator().manual_seed(4))


def _maps(seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(5, 11, 9, generator=g)
    b = a + 0.5 * torch.rand(5, 11, 9, generator=g)
    a[1], b[2] = a[1].round(decimals=1), b[2].round(decimals=1)  # ties
    b[3] = torch.rand(11, 9, generator=g)  # unrelated
    return a, b


def test_spearman_matches_scipy():
    from scipy.stats import rankdata, spearmanr

    a, b = _maps()
    ref = [spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(5)]
    assert np.allclose(spearman(a, b).numpy(), ref, atol=1e-6)
    assert np.allclose(average_ranks(a.flatten(1))[1].numpy(), rankdata(a[1].flatten()))
    assert spearman(torch.ones(1, 4), torch.rand(1, 4)).item() == 0.0  # constant: 0, not NaN


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity

    a, b = _maps(1)
    ours = ssim(a, b)
    for i in range(5):
        x, y = a[i].double().numpy(), b[i].double().numpy()
        rng = max(x.max(), y.max()) - min(x.min(), y.min())
        assert ours[i].item() == pytest.approx(
            structural_similarity(x, y, win_size=7, data_range=rng), abs=1e-5)
    assert torch.allclose(ssim(a, a), torch.ones(5))
    with pytest.raises(ValueError, match="win_size"):
        ssim(a[:, :5, :5], b[:, :5, :5])


def test_cascade_layers_top_down(cnn):
    assert cascade_layers(cnn) == ["head", "conv3", "conv2", "bn1", "conv1"]


def test_mprt_hand_reference_and_layers_option(cnn, x):
    a = fm.Saliency(cnn)(x)
    score = mprt(cnn, x, a, explainer="saliency", layers=2, seed=3)
    # literal reference: randomise head, then conv3, on a copy, with the same seeds
    import copy

    ref_model, y, sims = copy.deepcopy(cnn), cnn(x).argmax(1), []
    for i, name in enumerate(["head", "conv3"]):
        with torch.random.fork_rng():
            torch.manual_seed(randomisation._layer_seed(3, i))
            dict(ref_model.named_modules())[name].reset_parameters()
        sims.append(spearman(a, fm.Saliency(ref_model)(x, y)))
    assert torch.allclose(score, (sims[0] + sims[1]) / 2, atol=1e-6)


def test_mprt_seeded_and_explainer_forms(cnn, x):
    a = fm.Saliency(cnn)(x)
    s1 = mprt(cnn, x, a, explainer="saliency", seed=1)
    assert torch.equal(s1, mprt(cnn, x, a, explainer=fm.Saliency(cnn), seed=1))
    assert not torch.equal(s1, mprt(cnn, x, a, explainer="saliency", seed=2))
    assert bool((s1.abs() < 0.5).all())  # the gradient depends on the weights


def test_model_independent_explainer_fails_the_sanity_check(cnn, x):
    def edges(model, inputs, target):  # ignores the model: MPRT must flag it (similarity 1)
        return inputs.roll(1, -1) - inputs

    a = edges(cnn, x, None)
    for similarity in ("spearman", "ssim"):
        s = mprt(cnn, x, a, explainer=edges, similarity=similarity)
        assert torch.allclose(s, torch.ones(3), atol=1e-5)


def test_mprt_matches_quantus(cnn, x, monkeypatch):
    quantus = pytest.importorskip("quantus")
    seed = 42
    monkeypatch.setattr(randomisation, "_layer_seed", lambda s, i: s + 1)  # Quantus' seeding
    explainer = fm.Saliency(cnn)
    a = explainer(x)
    y = cnn(x).argmax(1)
    ours = mprt(cnn, x, a, target=y, explainer="saliency", seed=seed)

    def explain(model, inputs, targets, **kwargs):
        return fm.Saliency(model)(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()

    theirs = quantus.MPRT(seed=seed, return_average_correlation=True, disable_warnings=True)(
        model=cnn, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(),
        explain_func=explain)
    # Quantus' per-sample average also includes the unrandomised model's similarity (= 1).
    n_layers = len(cascade_layers(cnn))
    expected = (ours.numpy() * n_layers + 1.0) / (n_layers + 1)
    assert np.allclose(theirs, expected, atol=1e-4)


def test_mprt_leaves_model_unchanged_and_errors(cnn, x):
    before = fingerprint(cnn)
    a = fm.Saliency(cnn)(x)
    mprt(cnn, x, a, explainer="saliency", similarity="ssim")
    with pytest.raises(ValueError, match="out of range"):
        mprt(cnn, x, a, target=99, explainer="saliency")
    assert_same_fingerprint(before, fingerprint(cnn))
    with pytest.raises(ValueError, match="similarity"):
        mprt(cnn, x, a, explainer="saliency", similarity="pearson")
    with pytest.raises(ValueError, match="layers"):
        mprt(cnn, x, a, explainer="saliency", layers=0)
    with pytest.raises(ValueError, match="explainer="):
        mprt(cnn, x, a)
    with pytest.raises(InvalidInputError, match="do not match"):
        mprt(cnn, x, a[:, :, :5], explainer="saliency")


def test_metadata():
    assert mprt.higher_is_better is False
    assert mprt.category == "randomisation" and mprt.kind == "model"


def test_mprt_with_layer_explainers_runs_on_the_randomised_copy(cnn, x):
    """Explainers that hook a layer (Grad-CAM, Captum layer methods) must hook the copy."""
    for explainer in (fm.GradCAM(cnn, layer=cnn.conv3),
                      fm.from_captum("LayerGradCam", cnn, layer="conv3")):
        a = explainer(x)
        scores = mprt(cnn, x, a, explainer=explainer, seed=0)
        assert scores.shape == (3,) and bool(torch.isfinite(scores).all())
        assert bool((scores < 0.99).any())  # the map changed with the weights


def test_old_target_name_warns_and_gives_identical_scores(cnn, x):
    a = fm.Saliency(cnn)(x)
    kw = dict(explainer="saliency", layers=2, seed=1)
    with pytest.warns(DeprecationWarning, match="'targets' is deprecated, use 'target'"):
        old = mprt(cnn, x, a, targets=[1, 2, 3], **kw)
    assert torch.equal(old, mprt(cnn, x, a, target=[1, 2, 3], **kw))
    assert torch.equal(old, mprt(cnn, x, a, [1, 2, 3], **kw))  # positional form


def test_mprt_inputs_go_through_the_prelude(cnn, x):
    import copy

    from faithmap.core.errors import ModelModeError, TargetError

    a = fm.Saliency(cnn)(x)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        mprt(lambda t: t, x, a, explainer="saliency")
    with pytest.raises(InvalidInputError, match="parameters are on meta"):
        mprt(copy.deepcopy(cnn).to("meta"), x, a, explainer="saliency")
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        mprt(cnn, x * float("nan"), a, explainer="saliency")
    with pytest.raises(TargetError, match="entries but the batch has 3"):
        mprt(cnn, x, a, [0, 1], explainer="saliency")
    cnn.train()
    with pytest.raises(ModelModeError):
        mprt(cnn, x, a, explainer="saliency")
    cnn.eval()
    kw = dict(explainer="saliency", layers=2)
    assert torch.equal(mprt(cnn, x.double(), a, **kw), mprt(cnn, x, a, **kw))
