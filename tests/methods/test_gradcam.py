import pytest
import torch
import torch.nn.functional as F
from torch import nn

import faithmap as fm

captum_attr = pytest.importorskip("captum.attr")


@pytest.mark.parametrize("relu", [True, False])
def test_matches_captum_layer_gradcam(relu, resnet18, x_resnet):
    for layer in ("layer4", "layer3.1.conv2", "layer4.1.bn2"):
        ours = fm.GradCAM(resnet18, layer=layer, relu=relu, interpolate="nearest")(x_resnet, 5)
        module = dict(resnet18.named_modules())[layer]
        ref = captum_attr.LayerGradCam(resnet18, module).attribute(
            x_resnet, target=5, relu_attributions=relu)
        ref = F.interpolate(ref, size=x_resnet.shape[2:], mode="nearest")
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)


def test_default_layer_is_last_conv(resnet18, cnn):
    assert fm.GradCAM(resnet18).layer_name == "layer4.1.conv2"
    assert fm.GradCAM(cnn).layer_name == "conv3"


def test_literal_definition_and_shape(cnn, x_small):
    cam = fm.GradCAM(cnn, layer="conv1", interpolate="bilinear")(x_small, target=1)
    assert cam.shape == (4, 1, 16, 16) and (cam >= 0).all()
    acts = {}
    h = cnn.conv1.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    out = cnn(x_small)
    h.remove()
    a = acts["a"]
    g = torch.autograd.grad(out[:, 1].sum(), a)[0]
    ref = (g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True).clamp_min(0)
    torch.testing.assert_close(cam, ref.detach(), rtol=1e-5, atol=1e-7)  # same 16×16 size


def test_in_place_relu_after_layer_does_not_corrupt_activation(x_small):
    torch.manual_seed(0)
    conv, lin = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 2)
    make = lambda inplace: nn.Sequential(conv, nn.ReLU(inplace=inplace),  # noqa: E731
                                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin).eval()
    a = fm.GradCAM(make(True), layer="0", relu=False)(x_small, 0)
    b = fm.GradCAM(make(False), layer="0", relu=False)(x_small, 0)
    torch.testing.assert_close(a, b)
    assert (a < 0).any()  # pre-ReLU activations were kept


def test_reused_module_and_bad_layers_raise(resnet18, x_resnet, cnn):
    with pytest.raises(ValueError, match="ran 2 times"):
        fm.GradCAM(resnet18, layer="layer1.0.relu")(x_resnet)
    with pytest.raises(ValueError, match="no module named"):
        fm.GradCAM(resnet18, layer="layer9")
    with pytest.raises(ValueError, match="N×C×h×w"):
        fm.GradCAM(cnn, layer="head")(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="no Conv2d"):
        fm.GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)))
