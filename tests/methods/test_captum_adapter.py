import pytest
import torch

import faithmap as fm

captum_attr = pytest.importorskip("captum.attr")


def test_wrapped_saliency_equals_ours(cnn, x_small):
    wrapped = fm.from_captum(captum_attr.Saliency, model=cnn)
    torch.testing.assert_close(wrapped(x_small), fm.Saliency(cnn)(x_small))
    assert wrapped.metadata["target"] == cnn(x_small).argmax(1).tolist()


def test_keyword_split_between_constructor_and_attribute(cnn, x_small):
    ig = fm.get_explainer(cnn, "captum:IntegratedGradients", multiply_by_inputs=False,
                          n_steps=7, method="riemann_middle", return_convergence_delta=True)
    assert ig.init_kwargs == {"multiply_by_inputs": False}
    attr = ig(x_small, target=1)
    ours = fm.IntegratedGradients(cnn, n_steps=7, method="riemann_middle")(x_small, target=1)
    torch.testing.assert_close(attr * x_small, ours, rtol=1e-4, atol=1e-6)
    assert ig.metadata["convergence_delta"].shape == (4,)


def test_layer_method_by_name_is_upsampled(cnn, x_small):
    cam = fm.from_captum("LayerGradCam", cnn, layer="conv3", relu_attributions=True)
    attr = cam(x_small, target=0)
    assert attr.shape == (4, 1, 16, 16)
    ours = fm.GradCAM(cnn, layer="conv3", interpolate="bilinear")(x_small, target=0)
    torch.testing.assert_close(attr, ours, rtol=1e-4, atol=1e-6)


def test_callable_target_and_hooks_cleaned(cnn, x_small):
    from model_checks import assert_same_fingerprint, fingerprint

    before = fingerprint(cnn)
    fn = lambda out: out[:, 2] - out[:, 0]  # noqa: E731
    attr = fm.from_captum("GuidedBackprop", cnn)(x_small, target=fn)
    assert attr.shape == x_small.shape
    ixg = fm.from_captum("InputXGradient", cnn)(x_small, target=fn)
    xr = x_small.clone().requires_grad_(True)
    ref = xr * torch.autograd.grad(fn(cnn(xr)).sum(), xr)[0]
    torch.testing.assert_close(ixg, ref.detach())
    assert_same_fingerprint(before, fingerprint(cnn))


def test_unknown_captum_class(cnn):
    with pytest.raises(ValueError, match="no attribution class"):
        fm.get_explainer(cnn, "captum:NotAMethod")
