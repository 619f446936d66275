"""SRD: literal reference, conservation, end-to-end sums, generality, safety, batching."""

from __future__ import annotations

import pytest
import torch
import torchvision
from srd_reference import conv_literal, identity_literal
from torch import nn

import faithmap.zoo as zoo
from faithmap.core.errors import UnsupportedLayerError
from faithmap.methods.srd import SRD
from model_checks import assert_same_fingerprint, fingerprint
from real_inputs import real_images


class SmallVGG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(5 * 4 * 4, 3)

    def parts(self, x):
        z1 = self.conv1(x)
        v1 = torch.relu(z1)
        z2 = self.conv2(self.pool(v1))
        return z1, v1, z2

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        return self.fc(torch.flatten(self.relu2(self.conv2(x)), 1))


class SmallRes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.down = nn.Conv2d(4, 6, 1, stride=2)
        self.conv3 = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(6, 3)

    def parts(self, x):
        z0 = self.conv0(x)
        v0 = torch.relu(z0)
        z1 = self.conv1(v0)
        v1 = torch.relu(z1)
        z2 = self.conv2(v1) + self.down(v0)
        v2 = torch.relu(z2)
        return z0, v0, z1, v1, z2, v2, self.conv3(v2) + v2

    def forward(self, x):
        v0 = self.relu(self.conv0(x))
        v1 = self.relu(self.conv1(v0))
        v2 = self.relu(self.conv2(v1) + self.down(v0))
        v3 = self.relu(self.conv3(v2) + v2)
        return self.fc(v3.mean(dim=(2, 3)))


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fast_equals_literal_vgg():
    torch.manual_seed(0)
    m, x = SmallVGG().eval(), torch.randn(2, 3, 8, 8)
    maps = SRD(m).layer_maps(x, 1)
    z1, v1, z2 = m.parts(x)
    c1, c2 = m.conv1, m.conv2
    r1 = conv_literal(m.pool(v1), c2.weight, c2.bias, 1, 1, z2, maps["relu2"],
                      pool=(v1, 2)).detach()
    _close(maps["relu1"], r1)
    r0 = conv_literal(x, c1.weight, c1.bias, 1, 1, z1, r1).detach()
    _close(maps["input"], r0)
    # FC head (start="head"): the target logit is the target vector, positions are the PFVs
    v2 = torch.relu(z2)
    logit = m(x)[:, 1]
    w = m.fc.weight[1].view(1, 5, 4, 4)
    r2 = conv_literal(v2, w, m.fc.bias[1:2], 1, 0, logit.view(2, 1, 1, 1), logit.view(2, 1, 1))
    _close(maps["relu2"], r2.detach())


def test_fast_equals_literal_resnet():
    torch.manual_seed(1)
    m, x = SmallRes().eval(), torch.randn(2, 3, 8, 8)
    maps = SRD(m).layer_maps(x, 0)
    z0, v0, z1, v1, z2, v2, z3 = m.parts(x)
    names = sorted(k for k in maps if k != "input")  # relu, relu_1, relu_2, relu_3
    r3 = maps[names[3]]
    r2 = conv_literal(v2, m.conv3.weight, m.conv3.bias, 1, 1, z3, r3)
    r2 = (r2 + identity_literal(v2, z3, r3)).detach()
    _close(maps[names[2]], r2)
    r1 = conv_literal(v1, m.conv2.weight, m.conv2.bias, 1, 1, z2, r2).detach()
    _close(maps[names[1]], r1)
    r0 = conv_literal(v0, m.conv1.weight, m.conv1.bias, 2, 1, z1, r1)
    r0 = r0 + conv_literal(v0, m.down.weight, m.down.bias, 2, 0, z2, r2)
    _close(maps[names[0]], r0.detach())
    _close(maps["input"], conv_literal(x, m.conv0.weight, m.conv0.bias, 1, 1, z0, r0).detach())
    # (no logit-sum check here: with 4 channels some PFVs of v0 are all zero, and the 1×1
    # downsample's bias share at those positions has no PFV to go to — a documented leak)


def test_conservation_every_layer_and_logit_sum(cnn):
    x = torch.rand(3, 3, 16, 16)
    maps = SRD(cnn).layer_maps(x, 2)
    logit = cnn(x)[:, 2].detach()
    for name, rel in maps.items():
        if name != "relu_1":  # inside the residual branch: a part of the cut only
            _close(rel.flatten(1).sum(1), logit)


def test_vgg_conservation_every_layer():
    torch.manual_seed(0)
    m, x = SmallVGG().eval(), torch.randn(2, 3, 8, 8)
    maps = SRD(m).layer_maps(x, 0)
    logit = m(x)[:, 0].detach()
    for rel in maps.values():
        _close(rel.reshape(2, -1).sum(1), logit)


@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet", "mnist_bottleneck",
                                  "mnist_allconv", "mnist_vgg_robust"])
def test_zoo_models(name):
    m = zoo.load(name)
    x = torch.rand(2, 1, 28, 28)
    attr = SRD(m)(x)
    assert attr.shape == (2, 1, 28, 28)
    _close(attr.sum((1, 2, 3)), m(x).max(1).values.detach())


@pytest.mark.parametrize("arch", ["vgg11", "vgg16_bn", "resnet18",
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_torchvision(arch):
    torch.manual_seed(0)
    m = getattr(torchvision.models, arch)(num_classes=10).eval()
    x = torch.rand(1, 3, 32, 32)
    attr = SRD(m)(x, 3)
    _close(attr.sum(), m(x)[0, 3].detach())


def test_cam_start_contrastive_per_channel(cnn):
    x = torch.rand(2, 3, 16, 16)
    a = SRD(cnn, start="cam")(x)
    assert a.shape == (2, 1, 16, 16) and torch.isfinite(a).all()
    c = SRD(cnn, contrastive=True)(x)
    _close(c.sum((1, 2, 3)), torch.zeros(2))
    p = SRD(cnn, per_channel=True)(x)
    assert p.shape == x.shape
    _close(p.sum(1, keepdim=True), SRD(cnn)(x))


class Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class Square(nn.Module):
    def forward(self, x):
        return x * x


class SigmoidAdded(nn.Module):
    def forward(self, x):
        return x + torch.sigmoid(x)


@pytest.mark.parametrize("layer,path,kind,op", [
    (nn.Softplus(), "1", "Softplus", "no SRD rule"),  # softplus(0) != 0: no gate
    (Sine(), "1", "Sine", "'sin'"),
    (Square(), "1", "Square", "product of two activations"),
    (SigmoidAdded(), "1", "SigmoidAdded", "additively"),
])
def test_unsupported_layer(layer, path, kind, op):
    """Refusals name the module path, its type and the op (issue 17)."""
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), layer, nn.Flatten(),
                      nn.Linear(256, 2)).eval()
    before = fingerprint(m)
    with pytest.raises(UnsupportedLayerError, match=kind) as info:
        SRD(m)(torch.rand(1, 3, 8, 8))
    assert info.value.path == path and info.value.module_type == kind
    assert op in str(info.value)
    assert_same_fingerprint(before, fingerprint(m))


def test_model_unchanged(resnet18, x_resnet):
    before = fingerprint(resnet18)
    SRD(resnet18)(x_resnet)
    assert_same_fingerprint(before, fingerprint(resnet18))


def test_batch_invariance(cnn):
    x = torch.rand(4, 3, 16, 16)
    for kw in ({}, {"contrastive": True}, {"start": "cam"}):
        together = SRD(cnn, **kw)(x, [0, 1, 2, 3])
        alone = torch.cat([SRD(cnn, **kw)(x[i:i + 1], i) for i in range(4)])
        _close(together, alone)
        _close(SRD(cnn, batch_size=3, **kw)(x, [0, 1, 2, 3]), together)


def test_erf(cnn):
    e = SRD(cnn)
    x = torch.rand(1, 3, 16, 16)
    erf = e.erf(x, "relu_2", (3, 3))
    assert erf.shape == (1, 1, 16, 16)
    assert erf[..., :1, :].abs().sum() == 0  # far from the PFV's receptive field


def test_registry():
    import faithmap as fm

    assert "srd" in fm.available_methods()


def test_apop_predict(cnn):
    from faithmap.methods.srd import apop_predict

    x, other = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    _close(apop_predict(cnn, x, x), cnn(x).detach())  # own pattern: the model's logits
    _close(apop_predict(cnn, x), cnn(x).detach())
    assert apop_predict(cnn, x, other).shape == (2, 5)


def test_apop_frozen_pattern_and_shrunk_biases_match_a_literal_network():
    """MLP + BatchNorm1d: logits = W3 D2 (s2 ⊙ W2 D1 (W1 x + c·b1) + c·t2) + c·b3, where the
    ReLU masks D_i come from ``pattern_from`` (with full biases) and c = bias_scale."""
    from faithmap.methods.srd import apop_predict

    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(inplace=True),
                          nn.Linear(8, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(),
                          nn.Linear(6, 3))
    bn = model[4]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    model.eval()
    x, other = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    l1, l2, l3 = model[1], model[3], model[6]
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    with torch.no_grad():
        d1 = (l1(other.flatten(1)) > 0).float()
        d2 = (bn(l2(torch.relu(l1(other.flatten(1))))) > 0).float()
        for c in (1.0, 0.5, 0.0):
            h1 = d1 * (x.flatten(1) @ l1.weight.T + c * l1.bias)
            h2 = d2 * (scale * (h1 @ l2.weight.T) + c * shift)
            expected = h2 @ l3.weight.T + c * l3.bias
            _close(apop_predict(model, x, other, bias_scale=c), expected)
    with pytest.raises(ValueError, match="bias_scale"):
        apop_predict(model, x, bias_scale=float("nan"))


class Ops(nn.Module):
    """Functional in-place relu, BN fold, avg-pool, view-flatten, Linear+BatchNorm1d, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(4 * 4 * 4, 6)
        self.bn1 = nn.BatchNorm1d(6)
        self.drop = nn.Dropout()
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        x = self.pool(torch.nn.functional.relu(self.bn(self.conv(x)), inplace=True))
        x = torch.relu(self.bn1(self.fc1(x.view(x.size(0), -1))))
        return self.fc2(self.drop(x))


def test_other_ops_conserve():
    torch.manual_seed(3)
    m = Ops()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.3, 0.3)
        m.bn1.running_var.uniform_(0.5, 2)
    m.eval()
    x = torch.rand(2, 3, 8, 8)
    before = fingerprint(m)
    maps = SRD(m).layer_maps(x, 2)
    for rel in maps.values():
        _close(rel.reshape(2, -1).sum(1), m(x)[:, 2].detach())
    assert_same_fingerprint(before, fingerprint(m))


def test_targets_and_errors(cnn):
    x = torch.rand(2, 3, 16, 16)
    before = fingerprint(cnn)
    by_fn = SRD(cnn)(x, lambda out: out[:, 1])
    _close(by_fn, SRD(cnn)(x, 1))
    with pytest.raises(ValueError):
        SRD(cnn)(x, target=10_000)
    with pytest.raises(ValueError):
        SRD(cnn, start="nope")
    e = SRD(cnn)
    assert torch.equal(e(x), e(x))
    assert_same_fingerprint(before, fingerprint(cnn))


class BranchLast(nn.Module):
    """The last ReLU sits inside a residual branch (no ReLU after the add)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                                     nn.Conv2d(8, 8, 3, padding=1))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = h + self.c3(torch.relu(self.c2(h)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


def test_head_start_needs_no_cut():
    torch.manual_seed(0)
    m, x = BranchLast().eval(), torch.rand(2, 3, 8, 8)
    _close(SRD(m)(x, 1).sum((1, 2, 3)), m(x)[:, 1].detach())


def test_erf_and_apop_go_through_the_prelude(cnn):
    from faithmap.core.errors import InvalidInputError
    from faithmap.methods.srd import apop_predict

    x = torch.rand(2, 3, 16, 16)
    nan = torch.full_like(x, float("nan"))
    before = fingerprint(cnn)
    with pytest.raises(InvalidInputError, match="NaN"):
        SRD(cnn).erf(nan, "relu_2", (3, 3))
    with pytest.raises(KeyError, match="unknown layer"):  # raised inside the guard
        SRD(cnn).erf(x, "nope", (3, 3))
    with pytest.raises(InvalidInputError, match="x .*NaN|NaN.*x"):
        apop_predict(cnn, nan, x)
    with pytest.raises(InvalidInputError, match="pattern_from"):
        apop_predict(cnn, x, nan)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        apop_predict(lambda t: t, x)
    with pytest.raises(ValueError, match="differ"):
        apop_predict(cnn, x, x[:1])
    assert_same_fingerprint(before, fingerprint(cnn))
    assert SRD(cnn).erf(x.double(), "relu_2", (3, 3)).dtype == torch.float64
    assert SRD(cnn).spatial is True and SRD(cnn, per_channel=True).spatial is False


def test_bias_share_chunks_do_not_change_the_map(cnn, monkeypatch):
    """bias_share chunks samples and positions through core.batching; tiny chunks (one
    sample, a few positions each) give the same map as one chunk."""
    import faithmap.methods.srd.rules as rules

    x = torch.rand(3, 3, 16, 16)
    whole = SRD(cnn)(x, [0, 1, 2])
    monkeypatch.setattr(rules, "_CHUNK_ELEMENTS", 200)
    calls = []
    original = rules.chunks
    monkeypatch.setattr(rules, "chunks", lambda *a: calls.append(a) or original(*a))
    chunked = SRD(cnn)(x, [0, 1, 2])
    assert any(step < total for total, step in calls)  # really chunked
    _close(chunked, whole)


# --- conservation on real inputs (issue 16) --------------------------------------------

def _assert_sums_to_logit(model, x, dtype, target=None):
    model, x = model.to(dtype), x.to(dtype)
    maps = SRD(model).layer_maps(x, target)
    logit = model(x)
    logit = (logit.max(1).values if target is None else logit[:, target]).detach()
    torch.testing.assert_close(maps["input"].flatten(1).sum(1), logit, rtol=1e-4, atol=0)
    return maps, logit


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["mnist_vgg", "mnist_resnet", "mnist_bottleneck",
                                  "mnist_allconv", "mnist_vgg_robust"])
def test_zoo_conserves_on_real_digits_and_faces(name, dtype):
    """Before the fix mnist_vgg lost 0.14% of the logit on real digits (all-zero PFVs after
    the max-pool dropped their conv's bias share)."""
    _assert_sums_to_logit(zoo.load(name), real_images(28, 1), dtype)


def test_vgg_conserves_at_every_layer_on_real_digits():
    maps, logit = _assert_sums_to_logit(zoo.load("mnist_vgg"), real_images(28, 1),
                                        torch.float32)
    for name, rel in maps.items():
        torch.testing.assert_close(rel.reshape(len(rel), -1).sum(1), logit, rtol=1e-4, atol=0,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32,
                                   pytest.param(torch.float64, marks=pytest.mark.slow)])
@pytest.mark.parametrize("arch", ["resnet18", "vgg11", "vgg16_bn", "googlenet"])
def test_torchvision_conserves_onreal_images(arch, dtype):
    """Random weights (each architecture's own initialisation); googlenet's small init
    gave an all-zero map under the absolute eps=1e-9 (conservation error 1.0)."""
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet's init notice
        model = zoo.torchvision(arch, num_classes=10)
    _assert_sums_to_logit(model, real_images(32, 3), dtype)


def test_tiny_activations_are_not_swallowed():
    """ResNet-18 with conv1 scaled by 1e-4: the absolute eps lost 6% of the logit; the
    scale-relative stabiliser keeps it (and the map is the scaled model's own)."""
    torch.manual_seed(0)
    model = zoo.torchvision("resnet18", num_classes=10)
    with torch.no_grad():
        model.model.conv1.weight.mul_(1e-4)
    _assert_sums_to_logit(model, real_images(32, 3), torch.float32)


class _RawNet(nn.Module):
    """No Normalize: raw digits with zero background reach conv1 as zero PFVs; conv1's
    negative bias makes the background's post-ReLU PFVs zero too. ``pool`` is the op
    between the two convs; ``branch`` concatenates a second conv branch."""

    def __init__(self, pool: str, branch: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(12 if branch else 6, 8, 3, padding=1)
        self.side = nn.Conv2d(1, 6, 3, padding=1)
        with torch.no_grad():
            self.conv1.bias.uniform_(-0.3, -0.05)
            self.side.bias.uniform_(-0.3, -0.05)
        self.pool = {"max": nn.MaxPool2d(2), "avg": nn.AvgPool2d(3, 2, padding=1),
                     "adaptive": nn.AdaptiveAvgPool2d(14), "none": nn.Identity()}[pool]
        self.branch = branch
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        if self.branch:
            h = torch.cat([h, torch.relu(self.side(x))], dim=1)
        h = torch.relu(self.conv2(self.pool(h)))
        return self.fc(nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


@pytest.mark.parametrize("pool,branch", [("max", False), ("avg", False), ("adaptive", False),
                                         ("none", True), ("max", True)])
def test_bias_share_of_zero_pfvs_is_carried(pool, branch):
    """Every tap all-zero: the bias share goes equally to the in-image taps and travels on
    the ghost through max/avg pools, concatenation and into the (zero) pixels, where it
    appears in the map (the old code dropped it)."""
    model = _RawNet(pool, branch).eval()
    x = real_images(28, 1)
    for dtype in (torch.float32, torch.float64):
        maps, logit = _assert_sums_to_logit(model, x, dtype, target=2)
        sums = {k: v.flatten(1).sum(1) for k, v in maps.items()}
        if branch:  # the two parallel ReLUs together form the cut
            sums = {"relu+relu_1": sums.pop("relu") + sums.pop("relu_1"), **sums}
        assert len(sums) == 3
        for name, total in sums.items():  # every layer, not only the pixels
            torch.testing.assert_close(total, logit, rtol=1e-4, atol=0,
                                       msg=lambda m, name=name: f"{name}: {m}")
    model = model.float()
    per_channel = SRD(model, per_channel=True)(x, 2)
    _close(per_channel.sum(1, keepdim=True), SRD(model)(x, 2))
    background = x[:4] == 0
    assert SRD(model)(x[:4], 2)[background].abs().sum() > 0  # carried onto zero pixels


def test_literal_resnet_with_zero_pfvs_sums_to_the_logit():
    """SmallRes on random input has all-zero 4-channel PFVs feeding the 1×1 downsample: the
    literal reference (which now carries that share) and the fast form both sum to the
    logit."""
    torch.manual_seed(1)
    m, x = SmallRes().eval(), torch.randn(2, 3, 8, 8)
    v0 = torch.relu(m.conv0(x))
    assert ((v0 == 0).all(1)).any()  # the case this test is about
    _close(SRD(m)(x, 0).sum((1, 2, 3)), m(x)[:, 0].detach())


# --- named errors and the CAM start options (issue 16) ---------------------------------

@pytest.mark.parametrize("kw", [{"start": "cam"}, {"contrastive": True}])
def test_cam_and_contrastive_need_a_cut(kw):
    from faithmap.methods.srd import CutError

    m, x = BranchLast().eval(), real_images(8, 3)[:2]
    before = fingerprint(m)
    with pytest.raises(CutError, match="not a cut"):
        SRD(m, **kw)(x, 1)
    assert_same_fingerprint(before, fingerprint(m))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    with pytest.raises(CutError, match="no ReLU"):
        SRD(mlp, **kw)(x, 1)


def test_cam_start_signed_by_default_clamped_on_request():
    model = zoo.load("mnist_vgg")
    x = real_images(28, 1)
    signed = SRD(model, start="cam").layer_maps(x, 3)
    clamped = SRD(model, start="cam", cam_clamp=True).layer_maps(x, 3)
    last = [k for k in signed if k != "input" and signed[k].dim() == 3][0]  # backward order
    assert (signed[last] < 0).any()  # Grad-CAM of a non-predicted class has negative parts
    _close(clamped[last], signed[last].clamp_min(0))
    # the recursion conserves what it starts with, signed or clamped
    for maps in (signed, clamped):
        _close(maps["input"].flatten(1).sum(1), maps[last].flatten(1).sum(1))


def test_erf_named_errors():
    from faithmap.methods.srd import LayerError

    model = zoo.load("mnist_vgg")
    x = real_images(28, 1)[:1]
    maps = SRD(model).layer_maps(x, 0)
    fc = [k for k, v in maps.items() if v.dim() == 1]
    conv = [k for k, v in maps.items() if v.dim() == 3 and k != "input"]
    assert fc and conv
    with pytest.raises(LayerError, match="fully connected"):
        SRD(model).erf(x, fc[0], (0, 0))
    h, w = maps[conv[-1]].shape[1:]
    with pytest.raises(LayerError, match="outside"):
        SRD(model).erf(x, conv[-1], (h, 0))
    erf = SRD(model).erf(x, conv[-1], (h // 2, w // 2))
    torch.testing.assert_close(erf.sum(), torch.tensor(1.0), rtol=1e-4, atol=0)  # one unit


def test_zero_input_is_zero_in_the_models_input_space():
    from faithmap.methods.srd import zero_input

    model = zoo.load("mnist_resnet")
    x = real_images(28, 1)
    z = zero_input(model, x)
    assert z.shape == x.shape
    torch.testing.assert_close(model.normalize(z), torch.zeros_like(x))
    assert torch.equal(zero_input(_RawNet("max").eval(), x), torch.zeros_like(x))
