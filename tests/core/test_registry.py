import pytest
import torch

import faithmap as fm

CONTRACT_NAMES = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad",
                  "vargrad", "gradcam"]
CONTRACT_CLASSES = {"saliency": fm.Saliency, "input_x_gradient": fm.InputXGradient,
                    "integrated_gradients": fm.IntegratedGradients, "smoothgrad": fm.SmoothGrad,
                    "vargrad": fm.VarGrad, "gradcam": fm.GradCAM}


def test_contract_names_registered():
    assert set(CONTRACT_NAMES) <= set(fm.available_methods())
    for name, cls in CONTRACT_CLASSES.items():
        assert cls.name == name


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_get_explainer_matches_explain(name, cnn, x_small):
    explainer = fm.get_explainer(cnn, name)
    assert isinstance(explainer, CONTRACT_CLASSES[name])
    a = explainer(x_small, target=1)
    b = fm.explain(cnn, x_small, method=name, target=1)
    assert torch.equal(a, b)
    assert a.shape == ((4, 1, 16, 16) if name == "gradcam" else x_small.shape)
    assert not a.requires_grad and a.device == x_small.device and a.dtype == x_small.dtype
    assert explainer.metadata["target"] == [1, 1, 1, 1]


def test_unknown_method_lists_available(cnn, x_small):
    with pytest.raises(ValueError, match="available: saliency"):
        fm.explain(cnn, x_small, method="nope")


def test_unknown_option_raises(cnn):
    with pytest.raises(TypeError):
        fm.get_explainer(cnn, "saliency", n_steps=3)


def test_explainer_class_accepted(cnn, x_small):
    assert torch.equal(fm.explain(cnn, x_small, method=fm.Saliency),
                       fm.explain(cnn, x_small, method="saliency"))


def test_model_must_be_module(x_small):
    with pytest.raises(TypeError):
        fm.explain(lambda x: x, x_small)
