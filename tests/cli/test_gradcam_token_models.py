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


def _manual_cam(model, layer, x, target, channels_last=False, prefix=1):
    """Grad-CAM by hand at ``layer``: tokens → grid (``prefix`` leading tokens dropped),
    α = mean gradient, ReLU, upsample."""
    _, module = find_module(model, layer)
    with capture_output(module, layer) as rec:
        out = model(x)
    act = rec.output
    (grad,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), act)
    if channels_last:
        act, grad = act.permute(0, 3, 1, 2), grad.permute(0, 3, 1, 2)
    else:
        g = int((act.shape[1] - prefix) ** 0.5)
        act = act[:, prefix:].reshape(len(x), g, g, -1).permute(0, 3, 1, 2)
        grad = grad[:, prefix:].reshape(len(x), g, g, -1).permute(0, 3, 1, 2)
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


def _photos(side):
    from skimage import data as skdata

    images = [skdata.astronaut(), skdata.coffee()]
    return torch.cat([torch.nn.functional.interpolate(
        torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255, size=(side, side),
        mode="bilinear", antialias=True) for im in images]).clamp(0, 1)


@pytest.mark.parametrize("name, options, prefix", [
    ("vit_tiny_patch16_224", {}, 1),
    ("deit_tiny_patch16_224", {}, 1),
    ("deit_tiny_distilled_patch16_224", {}, 2),  # class + distillation token
    ("vit_tiny_patch16_224", {"reg_tokens": 4}, 5),  # class + 4 register tokens
])
def test_timm_vits_drop_every_prefix_token(name, options, prefix):
    """The patch grid is read from the patch embedding, so every leading token is dropped
    (the 2 or 5 prefix tokens used to raise or be laid out on a wrong 4×5 grid)."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, img_size=64, depth=3,
                              **options).eval()
    assert model.num_prefix_tokens == prefix
    x = _photos(64)
    explainer = fm.get_explainer(model, "gradcam")
    cam = explainer(x, target=[1, 2])
    assert explainer.layer_name == "blocks.1"  # the last block reads only the prefix tokens
    torch.testing.assert_close(cam, _manual_cam(model, "blocks.1", x, torch.tensor([1, 2]),
                                                prefix=prefix))
    assert cam.shape == (2, 1, 64, 64) and float(cam.std()) > 0


def test_reshape_hook_for_other_token_layouts():
    """``reshape=`` lays tokens out the user's way: here a model whose class token is the
    LAST token (the automatic rule drops leading tokens)."""

    class ClassTokenLast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Conv2d(3, 16, 8, stride=8)
            self.cls = torch.nn.Parameter(torch.randn(1, 1, 16))
            self.blocks = torch.nn.Sequential(*[torch.nn.TransformerEncoderLayer(
                16, 2, 32, dropout=0.0, batch_first=True) for _ in range(2)])
            self.head = torch.nn.Linear(16, 5)

        def forward(self, x):
            tokens = self.embed(x).flatten(2).transpose(1, 2)
            tokens = torch.cat([tokens, self.cls.expand(len(x), -1, -1)], dim=1)
            return self.head(self.blocks(tokens)[:, -1])

    model = ClassTokenLast().eval()
    x = _photos(32)

    def reshape(tokens):  # drop the last (class) token, grid 4×4
        return tokens[:, :-1].reshape(len(tokens), 4, 4, -1).permute(0, 3, 1, 2)

    layer = "blocks.0"
    cam = fm.explain(model, x, "gradcam", target=[0, 1], layer=layer, reshape=reshape)
    _, module = find_module(model, layer)
    with capture_output(module, layer) as rec:
        out = model(x)
    (grad,) = torch.autograd.grad(out[:, 0].sum() + out[1, 1] - out[1, 0], rec.output)
    act, grad = reshape(rec.output), reshape(grad)
    ref = (grad.mean((2, 3), keepdim=True) * act).sum(1, keepdim=True).clamp_min(0)
    ref = torch.nn.functional.interpolate(ref, size=(32, 32), mode="bilinear").detach()
    torch.testing.assert_close(cam, ref)
    auto = fm.explain(model, x, "gradcam", target=[0, 1], layer=layer)  # drops token 0
    assert not torch.allclose(cam, auto)
    with pytest.raises(ValueError, match="reshape must return"):
        fm.explain(model, x, "gradcam", layer=layer, reshape=lambda t: t)
    with pytest.raises(TypeError, match="reshape must be a callable"):
        fm.get_explainer(model, "gradcam", reshape="tokens")
