"""fm.from_zennit: LRP composites as baselines, on a private copy of the model."""

import copy

import pytest
import torch
from torch import nn

import faithmap as fm
from model_checks import assert_same_fingerprint, fingerprint

zennit = pytest.importorskip("zennit")
from zennit.composites import LayerMapComposite  # noqa: E402
from zennit.rules import Epsilon, Pass  # noqa: E402
from zennit.types import Activation, Convolution  # noqa: E402


def _mlp(bias: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 32, bias=bias), nn.ReLU(),
                         nn.Linear(32, 16, bias=bias), nn.ReLU(), nn.Linear(16, 4, bias=bias))


def _bias_free_cnn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 5, bias=False))


def test_epsilon_lrp_on_bias_free_relu_net_is_gradient_times_input():
    """LRP-ε with ε → 0 on a bias-free ReLU network equals gradient × input (Ancona 2018)."""
    model = _mlp(bias=False)
    x = torch.rand(5, 3, 4, 4)
    lrp = fm.from_zennit("EpsilonPlus", model, epsilon=1e-12)(x, target=2)
    ref = fm.InputXGradient(model)(x, target=2)
    torch.testing.assert_close(lrp, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_matches_captum_lrp_epsilon_with_biases():
    captum_attr = pytest.importorskip("captum.attr")
    class Net(nn.Module):  # Captum's LRP has no rule for nn.Flatten
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.relu1 = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()
            self.conv2, self.relu2 = nn.Conv2d(6, 4, 3), nn.ReLU()
            self.fc = nn.Linear(4 * 4 * 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.relu2(self.conv2(self.relu1(self.conv1(x))))
            return self.fc(torch.flatten(out, 1))

    torch.manual_seed(2)
    model = Net()
    x = torch.rand(4, 3, 6, 6)
    composite = LayerMapComposite([(Activation, Pass()), (Convolution, Epsilon(epsilon=1e-9)),
                                   (nn.Linear, Epsilon(epsilon=1e-9))])
    ours = fm.from_zennit(composite, model)(x, target=1)
    theirs = captum_attr.LRP(copy.deepcopy(model)).attribute(x.clone(), target=1)
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=1e-6)


def test_relevance_is_conserved_from_the_target_logit():
    model = _bias_free_cnn()
    x = torch.rand(3, 3, 8, 8)
    explainer = fm.from_zennit("EpsilonPlusFlat", model)
    relevance = explainer(x, target=0)
    logit = model(x)[:, 0].detach()
    torch.testing.assert_close(relevance.flatten(1).sum(1), logit, rtol=1e-3, atol=1e-5)
    assert explainer.metadata["relevance_ratio"] == pytest.approx([1.0] * 3, abs=1e-3)


def test_zoo_residual_blocks_get_a_sum_rule():
    """With biases removed, the zoo ResNet conserves relevance only if its skip sums are
    routed through Zennit's Sum rule (a plain add would count relevance twice)."""
    model = copy.deepcopy(fm.zoo.load("mnist_resnet"))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.bias.zero_()
                m.running_mean.zero_()
            elif isinstance(m, nn.Linear | nn.Conv2d) and m.bias is not None:
                m.bias.zero_()
    x = torch.rand(2, 1, 28, 28)
    explainer = fm.from_zennit("EpsilonPlusFlat", model)
    explainer(x)
    assert explainer.metadata["relevance_ratio"] == pytest.approx([1.0, 1.0], abs=1e-2)
    assert explainer.metadata["unmerged_batchnorm"] == []
    from zennit.canonizers import SequentialMergeBatchNorm

    plain_add = fm.from_zennit("EpsilonPlusFlat", model, canonizers=[SequentialMergeBatchNorm()])
    plain_add(x)
    assert min(plain_add.metadata["relevance_ratio"]) > 1.5


def test_normalize_passes_relevance_and_sets_the_box():
    """The zoo VGG has no BN and no residuals: only biases absorb relevance, so with them
    removed the map sums to the logit (a 1/std factor would show up otherwise)."""
    model = copy.deepcopy(fm.zoo.load("mnist_vgg"))
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    x = torch.rand(2, 1, 28, 28)
    for name in ("EpsilonPlusFlat", "EpsilonGammaBox"):
        explainer = fm.get_explainer(model, f"zennit:{name}")
        explainer(x)
        assert explainer.metadata["relevance_ratio"] == pytest.approx([1.0, 1.0], abs=2e-3)
    from faithmap.methods.zennit_adapter import _box

    low, high = _box(model, (0.0, 1.0), x)
    mean, std = model.normalize.mean.item(), model.normalize.std.item()
    assert mean == pytest.approx(0.1307, abs=1e-3) and std == pytest.approx(0.3081, abs=1e-3)
    assert low.item() == pytest.approx(-mean / std)
    assert high.item() == pytest.approx((1 - mean) / std)


@pytest.mark.parametrize("name", ["mnist_resnet", "mnist_vgg"])
def test_user_model_unchanged(name):
    model = fm.zoo.load(name)
    before = fingerprint(model)
    x = torch.rand(2, 1, 28, 28)
    out = model(x).detach()
    fm.from_zennit("EpsilonGammaBox", model)(x)
    assert_same_fingerprint(before, fingerprint(model))
    torch.testing.assert_close(model(x), out)


def test_in_place_relu_on_torchvision_resnet(resnet18, x_resnet):
    before = fingerprint(resnet18)
    relevance = fm.from_zennit("epsilon_plus_flat", resnet18)(x_resnet[:1])
    assert relevance.shape == x_resnet[:1].shape
    assert torch.isfinite(relevance).all()
    assert_same_fingerprint(before, fingerprint(resnet18))


def test_bad_arguments(cnn):
    with pytest.raises(ValueError, match="no composite named 'Nope'.*epsilon_plus_flat"):
        fm.from_zennit("Nope", cnn)
    with pytest.raises(TypeError, match="zennit composite"):
        fm.from_zennit(nn.ReLU, cnn)
    with pytest.raises(ValueError, match="bounds"):
        fm.from_zennit("EpsilonGammaBox", cnn, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="bounds"):
        fm.from_zennit("EpsilonGammaBox", cnn, bounds=([0.0, 0.0], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="pair"):
        fm.from_zennit("EpsilonGammaBox", cnn, bounds=0.5)
    with pytest.raises(ValueError, match="canonizers"):
        fm.from_zennit("EpsilonPlus", cnn, canonizers="some")


def test_old_bounds_name_warns_and_gives_identical_results(cnn, x_small):
    new = fm.from_zennit("EpsilonGammaBox", cnn, bounds=(-0.5, 1.5))
    with pytest.warns(DeprecationWarning, match="'input_bounds' is deprecated, use 'bounds'"):
        old = fm.from_zennit("EpsilonGammaBox", cnn, input_bounds=(-0.5, 1.5))
    assert torch.equal(old(x_small), new(x_small))
    assert not torch.equal(new(x_small), fm.from_zennit("EpsilonGammaBox", cnn)(x_small))
    with pytest.deprecated_call(match="ZennitExplainer.input_bounds is deprecated"):
        assert old.input_bounds == (-0.5, 1.5) == old.bounds


def test_per_channel_bounds_are_pushed_through_normalize():
    from faithmap.core.modules import Normalize
    from faithmap.methods.zennit_adapter import _box

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    torch.manual_seed(2)
    model = nn.Sequential(Normalize(mean, std), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    x = torch.rand(2, 3, 8, 8)
    lo, hi = [0.0, 0.1, 0.2], [1.0, 0.9, 0.8]
    low, high = _box(model, (lo, hi), x)
    assert low.shape == high.shape == (1, 3, 1, 1)
    for c in range(3):
        assert low[0, c].item() == pytest.approx((lo[c] - mean[c]) / std[c])
        assert high[0, c].item() == pytest.approx((hi[c] - mean[c]) / std[c])
    scalar = fm.from_zennit("EpsilonGammaBox", model)(x)
    channels = fm.from_zennit("EpsilonGammaBox", model, bounds=([0.0] * 3, [1.0] * 3))(x)
    assert torch.equal(scalar, channels)  # scalars keep their numbers
    own = fm.from_zennit("EpsilonGammaBox", model, bounds=(lo, hi))(x)
    assert own.shape == x.shape and not torch.equal(own, scalar)


def test_batch_size_chunks_samples(cnn, x_small):
    assert fm.from_zennit("EpsilonPlusFlat", cnn).batch_size == fm.core.batching.DEFAULT_BATCH_SIZE
    whole = fm.from_zennit("EpsilonPlusFlat", cnn, batch_size=None)
    chunked = fm.from_zennit("EpsilonPlusFlat", cnn, batch_size=3)
    torch.testing.assert_close(chunked(x_small), whole(x_small), rtol=1e-5, atol=1e-7)
    assert chunked.metadata["relevance_ratio"] == pytest.approx(whole.metadata["relevance_ratio"])
    assert chunked.metadata["target"] == whole.metadata["target"]
