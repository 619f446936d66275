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
    ours = fm.IntegratedGradients(cnn, n_steps=7, integration="riemann_middle")(x_small, target=1)
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


def test_spatial_is_fixed_at_construction(cnn, x_small):
    cam = fm.from_captum("LayerGradCam", cnn, layer="conv3")
    sal = fm.from_captum("Saliency", cnn)
    assert cam.spatial is True and sal.spatial is False  # before any call
    for _ in range(2):
        assert cam(x_small).shape == (4, 1, 16, 16) and sal(x_small).shape == x_small.shape
        assert cam.spatial is True and sal.spatial is False


class _OddShape:
    """A Captum-like attribution class whose map is not input-shaped (not a layer method)."""

    def __init__(self, forward_func):
        self.forward_func = forward_func

    def attribute(self, inputs, target=None):
        return inputs[:, :1]


def test_non_layer_result_of_another_shape_is_an_error(cnn, x_small):
    with pytest.raises(ValueError, match=r"_OddShape returned shape \(4, 1, 16, 16\)"):
        fm.from_captum(_OddShape, cnn)(x_small)


def test_default_batch_size_is_captums_internal_batch_size(cnn, x_small):
    from faithmap.core.batching import DEFAULT_BATCH_SIZE

    default = fm.get_explainer(cnn, "captum:IntegratedGradients", n_steps=20)
    assert default.batch_size == DEFAULT_BATCH_SIZE
    assert default.attribute_kwargs["internal_batch_size"] == DEFAULT_BATCH_SIZE
    whole = fm.get_explainer(cnn, "captum:IntegratedGradients", n_steps=20, batch_size=None)
    assert "internal_batch_size" not in whole.attribute_kwargs
    # 80 rows in chunks of 32 against one pass: the same up to float summation order
    torch.testing.assert_close(default(x_small, 1), whole(x_small, 1), rtol=1e-4, atol=1e-6)
