"""Grad-CAM's default layer on token models (issue 19): not the patch-embedding conv, but the
tokens of the last transformer blocks laid out on the patch grid (class token dropped)."""

import pytest
import torch
import torchvision
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

import faithmap as fm
from faithmap.core.layers import capture_output, find_module


def _vit(image_size=32, patch=8, layers=3):
    torch.manual_seed(0)
    net = VisionTransformer(image_size=image_size, patch_size=patch, num_layers=layers,
                            num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=5)
    torch.nn.init.normal_(net.heads.head.weight)  # torchvision initialises the head to zero
    return net.eval()


def _swin():
    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 2], num_heads=[1, 1],
                           window_size=[2, 2], num_classes=5).eval()


def _manual_cam(model, layer, x, target, channels_last=False):
    """Grad-CAM by hand at ``layer``: tokens → grid, α = mean gradient, ReLU, upsample."""
    _, module = find_module(model, layer)
    with capture_output(module, layer) as rec:
        out = model(x)
    act = rec.output
    (grad,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), act)
    if channels_last:
        act, grad = act.permute(0, 3, 1, 2), grad.permute(0, 3, 1, 2)
    else:
        g = int((act.shape[1] - 1) ** 0.5)
        act = act[:, 1:].reshape(len(x), g, g, -1).permute(0, 3, 1, 2)
        grad = grad[:, 1:].reshape(len(x), g, g, -1).permute(0, 3, 1, 2)
    cam = (grad.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True).clamp_min(0)
    return torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear",
                                           align_corners=False).detach()


def test_vit_default_layer_is_the_token_grid_not_the_patch_embedding():
    model = _vit()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    explainer = fm.get_explainer(model, "gradcam")
    cam = explainer(x, target=[1, 2])
    # the class token of the last block is all the head reads, so the last block's patch
    # tokens have zero gradient: the default is the tokens that enter the last block
    assert explainer.layer_name == "encoder.layers.encoder_layer_1" != "conv_proj"
    assert explainer.metadata["layer"] == "encoder.layers.encoder_layer_1"
    torch.testing.assert_close(cam, _manual_cam(model, "encoder.layers.encoder_layer_1", x,
                                                torch.tensor([1, 2])))
    assert float(cam.std()) > 0
    patch_embedding = fm.explain(model, x, "gradcam", target=[1, 2], layer="conv_proj")
    assert not torch.allclose(cam, patch_embedding)
    # an explicit token layer is laid out on the grid too (it used to raise)
    last = fm.explain(model, x, "gradcam", target=[1, 2], layer="encoder.layers.encoder_layer_2",
                      relu=False)
    assert last.shape == (2, 1, 32, 32) and float(last.abs().max()) == 0.0


def test_swin_default_layer_is_the_last_block_channels_last():
    model = _swin()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    explainer = fm.get_explainer(model, "gradcam")
    cam = explainer(x, target=[0, 3])
    assert explainer.layer_name == "features.3.1" and explainer.channels_last
    torch.testing.assert_close(cam, _manual_cam(model, "features.3.1", x, torch.tensor([0, 3]),
                                                channels_last=True))
    assert float(cam.std()) > 0


def test_cnns_keep_the_last_conv(resnet18):
    explainer = fm.get_explainer(resnet18, "gradcam")
    explainer(torch.rand(1, 3, 32, 32))
    assert explainer.layer_name == "layer4.1.conv2"


@pytest.mark.slow
@pytest.mark.parametrize("arch, layer", [("vit_b_16", "encoder.layers.encoder_layer_10"),
                                         ("swin_t", "features.7.1")])
def test_torchvision_token_models_random_weights(arch, layer):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    explainer = fm.get_explainer(model, "gradcam")
    cam = explainer(torch.rand(1, 3, 224, 224), target=0)
    assert explainer.layer_name == layer and cam.shape == (1, 1, 224, 224)
