"""SRD on every torchvision (and timm) classification family (issue 17).

The frozen-gate principle makes every family linear in x with biases given its forward:
the pixel map must sum to the target logit (rtol 1e-4) in float32 and float64, on real
photos. The default run uses width-reduced builders of each family at small inputs; the
full builders at their smallest accepted input are marked slow.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from torch import nn
from torchvision import models as tvm

import faithmap as fm
from faithmap.core.errors import UnsupportedLayerError
from faithmap.methods.srd import SRD, CutError
from model_checks import assert_same_fingerprint, fingerprint


def _photos(size: int, n: int = 2) -> torch.Tensor:
    images = fm.data.sample_images(size)
    return torch.stack([images[k] for k in ("astronaut", "coffee", "chelsea")[:n]])


def _nonzero_heads(model: nn.Module) -> nn.Module:
    """Builders zero-initialise some heads (ViT, Swin): a random head instead, so logits
    are not 0 (random weights throughout, seeded)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0, 0.02)
    return model.eval()


def _small(family: str) -> tuple[nn.Module, int]:
    """A width/depth-reduced model of ``family`` (same block types as the builders)."""
    torch.manual_seed(0)
    if family == "mobilenet_v2":
        return tvm.mobilenet_v2(num_classes=10, width_mult=0.25), 32
    if family == "mobilenet_v3":
        return tvm.mobilenet_v3_small(num_classes=10, width_mult=0.25), 32
    if family == "efficientnet":
        setting, last = tvm.efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25,
                                                            depth_mult=0.25)
        return tvm.EfficientNet(setting, 0.2, num_classes=10, last_channel=last), 32
    if family == "efficientnet_v2":
        setting, last = tvm.efficientnet._efficientnet_conf("efficientnet_v2_s")
        return tvm.EfficientNet(setting[:3], 0.2, num_classes=10, last_channel=64), 32
    if family == "convnext":
        cfg = tvm.convnext.CNBlockConfig
        return tvm.ConvNeXt([cfg(16, 32, 1), cfg(32, None, 1)], layer_scale=0.5,
                            num_classes=10), 32
    if family == "regnet":
        params = tvm.regnet.BlockParams.from_init_params(depth=3, w_0=8, w_a=8.0, w_m=2.0,
                                                         group_width=8, se_ratio=0.25)
        return tvm.RegNet(params, num_classes=10), 32
    if family == "shufflenet":
        return tvm.ShuffleNetV2([1, 1, 1], [8, 16, 32, 64, 64], num_classes=10), 32
    if family == "densenet":
        return tvm.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16,
                            num_classes=10), 32
    if family == "vit":
        return tvm.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                     hidden_dim=32, mlp_dim=64, num_classes=10), 32
    if family in ("swin", "swin_v2"):
        v2 = family == "swin_v2"
        st = tvm.swin_transformer
        return tvm.SwinTransformer(
            [4, 4], 16, [2, 2], [2, 2], [4, 4], num_classes=10,
            block=st.SwinTransformerBlockV2 if v2 else st.SwinTransformerBlock,
            downsample_layer=st.PatchMergingV2 if v2 else st.PatchMerging), 32
    if family == "maxvit":
        return tvm.MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2,
                          block_channels=[16, 32], block_layers=[1, 1], head_dim=8,
                          stochastic_depth_prob=0.0, num_classes=10), 32
    if family == "mnasnet":
        return tvm.mnasnet0_5(num_classes=10), 32
    if family == "timm_vit":
        timm = pytest.importorskip("timm")
        return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32,
                                 patch_size=8, depth=2, num_classes=10), 32
    raise KeyError(family)


def _assert_conserves(model: nn.Module, x: torch.Tensor, dtype: torch.dtype,
                      **kw) -> torch.Tensor:
    model, x = _nonzero_heads(model).to(dtype), x.to(dtype)
    attr = SRD(model, **kw)(x)
    logit = model(x).max(1).values.detach()
    assert torch.isfinite(attr).all()
    torch.testing.assert_close(attr.sum((1, 2, 3)), logit, rtol=1e-4, atol=0)
    return attr


FAST = ["mobilenet_v2", "mobilenet_v3", "efficientnet", "efficientnet_v2", "convnext",
        "regnet", "shufflenet", "densenet", "vit", "swin", "swin_v2", "maxvit", "mnasnet",
        "timm_vit"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", FAST)
def test_small_family_conserves_on_real_photos(family, dtype):
    model, size = _small(family)
    _assert_conserves(model, _photos(size), dtype)


def test_model_unchanged_on_token_and_se_models():
    """State, flags and hooks unchanged; the frozen-softmax swap of torch functions is
    undone (also when the call raises)."""
    originals = (nn.functional.linear, nn.functional.softmax, torch.softmax,
                 torch.Tensor.softmax, nn.functional.scaled_dot_product_attention)
    for family in ("vit", "efficientnet", "swin"):
        model, size = _small(family)
        model = _nonzero_heads(model)
        before = fingerprint(model)
        SRD(model)(_photos(size))
        assert_same_fingerprint(before, fingerprint(model))
    vit, size = _small("vit")
    with pytest.raises(Exception):  # noqa: B017 - the model's own image-size check
        SRD(_nonzero_heads(vit))(_photos(size + 8))
    assert (nn.functional.linear, nn.functional.softmax, torch.softmax, torch.Tensor.softmax,
            nn.functional.scaled_dot_product_attention) == originals


def test_start_options_on_a_gate_model_and_token_refusal():
    model, size = _small("mobilenet_v2")
    model, x = _nonzero_heads(model), _photos(size)
    c = SRD(model, contrastive=True)(x)
    torch.testing.assert_close(c.sum((1, 2, 3)), torch.zeros(2), rtol=0, atol=1e-4)
    cam = SRD(model, start="cam").layer_maps(x)
    last = [k for k, v in cam.items() if k != "input" and v.dim() == 3][0]
    torch.testing.assert_close(cam["input"].flatten(1).sum(1), cam[last].flatten(1).sum(1),
                               rtol=1e-4, atol=1e-6)
    per = SRD(model, per_channel=True)(x)
    torch.testing.assert_close(per.sum(1, keepdim=True), SRD(model)(x))
    vit, size = _small("vit")
    with pytest.raises(CutError, match="token or channel-last"):
        SRD(_nonzero_heads(vit), start="cam")(_photos(size))


def test_token_layer_maps_are_per_token():
    vit, size = _small("vit")
    vit = _nonzero_heads(vit)
    maps = SRD(vit).layer_maps(_photos(size), 1)
    gelu = [k for k in maps if k != "input"]
    assert gelu and all(maps[k].shape == (2, 17) for k in gelu)  # class token + 4×4 patches
    logit = vit(_photos(size))[:, 1].detach()  # (a GELU inside a residual branch is no cut)
    torch.testing.assert_close(maps["input"].flatten(1).sum(1), logit, rtol=1e-4, atol=0)


# --- the rules against their definitions --------------------------------------------

class GateNet(nn.Module):
    """conv → GELU → conv → SiLU → GAP → linear (no BN: the literal reference applies)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(5, 6, 3, padding=1)
        self.act1, self.act2 = nn.GELU(), nn.SiLU()
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        v = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(v.mean(dim=(2, 3)))


def test_gates_use_the_paper_rule_unchanged():
    """With SiLU/GELU gates the sharing ratios are the paper's (literal per-tap reference),
    with v = f(z) as the PFVs and z as the target vector."""
    from srd_reference import conv_literal

    torch.manual_seed(0)
    m, x = GateNet().eval(), _photos(8)
    maps = SRD(m).layer_maps(x, 1)
    z1 = m.conv1(x)
    v1 = m.act1(z1)
    z2 = m.conv2(v1)
    r1 = conv_literal(v1, m.conv2.weight, m.conv2.bias, 1, 1, z2, maps["act2"]).detach()
    torch.testing.assert_close(maps["act1"], r1, rtol=1e-4, atol=1e-6)
    r0 = conv_literal(x, m.conv1.weight, m.conv1.bias, 1, 1, z1, r1).detach()
    torch.testing.assert_close(maps["input"], r0, rtol=1e-4, atol=1e-6)


class Grouped(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=groups)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.grouped(torch.relu(self.conv1(x)))
        return self.fc(torch.relu(h).mean(dim=(2, 3)))


@pytest.mark.parametrize("groups", [2, 8])
def test_grouped_conv_shares_bias_group_by_group(groups):
    """[ours] A grouped (depthwise: groups = channels) dilated conv is G convolutions side
    by side: each group's bias is shared by that group's tap norms, and its contributions
    are measured against the whole pre-activation z — the literal per-tap reference, group
    by group."""
    from srd_reference import conv_literal

    m = Grouped(groups).eval()
    with torch.no_grad():
        m.conv1.bias.fill_(0.5)  # no all-zero PFV (their share would ride the ghost)
    x = _photos(8)
    maps = SRD(m).layer_maps(x, 0)
    v = torch.relu(m.conv1(x))
    assert not (v == 0).all(1).any()
    z = m.grouped(v)
    k = 8 // groups
    rel = torch.zeros_like(maps["relu"])
    for i in range(groups):
        w = m.grouped.weight[i * k:(i + 1) * k]
        wd = torch.zeros(k, k, 5, 5)  # conv_literal has no dilation: dilate the kernel
        wd[:, :, ::2, ::2] = w
        zg = z[:, i * k:(i + 1) * k]
        # μ = <c_γ, z_γ>/||z||²: the literal form against z_γ, relevance scaled accordingly
        frac = zg.pow(2).sum(1) / z.pow(2).sum(1)
        rel = rel + conv_literal(v[:, i * k:(i + 1) * k], wd, m.grouped.bias[i * k:(i + 1) * k],
                                 1, 2, zg, maps["relu_1"] * frac).detach()
    torch.testing.assert_close(maps["relu"], rel, rtol=1e-4, atol=1e-6)


class Tokens(nn.Module):
    """Constant class token, positional embedding, LayerNorm, frozen-softmax attention."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Conv2d(3, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.pos = nn.Parameter(torch.randn(1, 5, 8))
        self.ln = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        t = self.proj(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        t = self.ln(t)
        t = t + self.attn(t, t, t, need_weights=False)[0]
        return self.head(t[:, 0])


def test_token_rules_conserve_at_every_layer():
    """Class token (ConstShare), positional embedding and LayerNorm shift (BiasShare),
    frozen softmax with affine in/out projections: the pixel map sums to the logit in
    float64 to 1e-9, and the model's own forward is reproduced."""
    m = Tokens().eval().double()
    x = _photos(8).double()
    attr = SRD(m)(x, 2)
    torch.testing.assert_close(attr.sum((1, 2, 3)), m(x)[:, 2].detach(), rtol=1e-9, atol=0)


def test_unsupported_names_path_type_and_op():
    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.Identity(), Exp()), nn.Flatten(),
                      nn.LazyLinear(2))
    m(torch.rand(1, 3, 8, 8))
    m.eval()
    with pytest.raises(UnsupportedLayerError, match="'1.1' of type Exp.*'exp'"):
        SRD(m)(torch.rand(1, 3, 8, 8))


# --- every family at its smallest accepted input (slow) -------------------------------

def _builders() -> list[str]:
    return torchvision.models.list_models(module=torchvision.models)


FAMILY_BUILDER = {  # the smallest variant of each family and its smallest accepted input
    "alexnet": ("alexnet", 63), "convnext": ("convnext_tiny", 32),
    "densenet": ("densenet121", 32), "efficientnet": ("efficientnet_b0", 32),
    "efficientnet_v2": ("efficientnet_v2_s", 32), "googlenet": ("googlenet", 32),
    "inception_v3": ("inception_v3", 75), "maxvit": ("maxvit_t", 224),
    "mnasnet": ("mnasnet0_5", 32), "mobilenet_v2": ("mobilenet_v2", 32),
    "mobilenet_v3": ("mobilenet_v3_small", 32), "regnet": ("regnet_y_400mf", 32),
    "resnet": ("resnet18", 32), "resnext": ("resnext50_32x4d", 32),
    "shufflenet": ("shufflenet_v2_x0_5", 32), "squeezenet": ("squeezenet1_1", 32),
    "swin": ("swin_t", 32), "swin_v2": ("swin_v2_t", 32), "vgg": ("vgg11_bn", 32),
    "vit": ("vit_b_16", 32), "wide_resnet": ("wide_resnet50_2", 32),
}


def test_every_builder_belongs_to_a_tested_family():
    prefixes = sorted(FAMILY_BUILDER, key=len, reverse=True)
    for name in _builders():
        assert any(name.startswith(p) for p in prefixes), name


def full_builder(family: str) -> tuple[nn.Module, int]:
    name, size = FAMILY_BUILDER[family]
    torch.manual_seed(0)
    kw = {"image_size": size} if family == "vit" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, num_classes=10, **kw)
    return model, size


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("family", sorted(FAMILY_BUILDER))
def test_every_family_conserves(family, dtype):
    model, size = full_builder(family)
    _assert_conserves(model, _photos(size, 1 if size > 100 else 2), dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "deit_tiny_patch16_224", "resnet18",
                                  "efficientnet_b0", "convnext_atto", "mobilenetv3_small_050"])
def test_timm_conserves(name, dtype):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    kw = {"img_size": 32} if "patch16" in name else {}
    model = timm.create_model(name, pretrained=False, num_classes=10, **kw)
    _assert_conserves(model, _photos(32), dtype)


def test_apop_with_its_own_pattern_is_the_model_on_gate_and_token_models():
    """Every gate frozen at g = f(z)/z from x itself reproduces the logits."""
    from faithmap.methods.srd import apop_predict

    for family in ("mobilenet_v3", "vit"):
        model, size = _small(family)
        model, x = _nonzero_heads(model), _photos(size)
        torch.testing.assert_close(apop_predict(model, x), model(x).detach(), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize("channels,mult,stride,pad,dil", [(6, 1, 1, 1, 1), (6, 2, 2, 2, 2),
                                                          (4, 1, 2, 0, 1)])
def test_depthwise_share_without_unfold_equals_the_unfolded_form(channels, mult, stride, pad,
                                                                 dil):
    """Depthwise tap norms are |x_{c,q}|·||w_{c,·,k}||: two depthwise convs replace the
    unfold (ConvNeXt's 7×7), equal to the unfolded form also where a position's taps all
    see zero PFVs (uniform fallback), and the shares sum to the bias relevance."""
    from faithmap.methods.srd.rules import grouped_bias_share

    torch.manual_seed(0)
    x = torch.randn(2, channels, 9, 9, dtype=torch.float64)
    x[:, :, :4, :4] = 0
    w = torch.randn(channels * mult, 1, 3, 3, dtype=torch.float64)
    b = torch.randn(channels * mult, dtype=torch.float64)
    g = torch.randn_like(nn.functional.conv2d(x, w, b, stride, pad, dil, channels))
    geo = ((stride, stride), (pad, pad), (dil, dil))
    fast = grouped_bias_share(x, w, b, g, channels, *geo)
    slow = grouped_bias_share(x, w, b, g, channels, *geo, unfold=True)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    total = (b.view(channels, mult)[None, :, :, None] * g.view(2, channels, mult, -1)).sum()
    torch.testing.assert_close(fast.sum(), total, rtol=1e-10, atol=0)
