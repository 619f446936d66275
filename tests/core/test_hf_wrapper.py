"""Models whose forward returns an object with ``.logits`` (Hugging Face image classifiers):
``fm.LogitsOnly(model)`` makes them explainable; unwrapped they give an error that says so."""

import pytest
import torch
from torch import nn

import faithmap as fm
from model_checks import assert_same_fingerprint, fingerprint


class DictOutput(nn.Module):
    """A classifier that returns {"logits": ...}, as Hugging Face's ModelOutput does."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x):
        return {"logits": self.net(x), "hidden": None}


def _photos(side=32):
    from skimage import data as skdata

    images = [skdata.astronaut(), skdata.coffee()]
    return torch.cat([nn.functional.interpolate(
        torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() / 255, size=(side, side),
        mode="bilinear", antialias=True) for im in images]).clamp(0, 1)


def test_wrapper_returns_the_logits_and_keeps_the_model():
    model = DictOutput().eval()
    wrapped = fm.LogitsOnly(model)
    x = _photos()
    assert wrapped.model is model
    torch.testing.assert_close(wrapped(x), model(x)["logits"])
    attr = fm.explain(wrapped, x, "saliency", target=[0, 1])
    assert attr.shape == x.shape and float(attr.abs().sum()) > 0
    with pytest.raises(TypeError, match="nn.Module"):
        fm.LogitsOnly(lambda x: x)


def test_unwrapped_output_object_names_the_wrapper():
    model = DictOutput().eval()
    for method in ("saliency", "integrated_gradients", "gradcam"):
        with pytest.raises(fm.TargetError, match=r"fm\.LogitsOnly\(model\)"):
            fm.explain(model, _photos(), method, target=0)


def _hf_models():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, num_labels=5)).eval()
    resnet = transformers.ResNetForImageClassification(transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=5)).eval()
    return {"vit": vit, "resnet": resnet}


@pytest.mark.parametrize("method, options", [
    ("saliency", {}), ("integrated_gradients", {"n_steps": 4}), ("gradcam", {}),
    ("neflag", {"n_samples": 2, "steps": 2}),
])
def test_hugging_face_classifiers_through_the_wrapper(method, options):
    x = _photos()
    for name, model in _hf_models().items():
        before = fingerprint(model)
        with pytest.raises(fm.TargetError, match="LogitsOnly"):
            fm.explain(model, x, method, **options)
        attr, meta = fm.explain(fm.LogitsOnly(model), x, method, return_metadata=True,
                                **options)
        assert torch.isfinite(attr).all() and float(attr.abs().amax()) > 0, name
        assert attr.shape[0] == 2 and attr.shape[2:] == x.shape[2:]
        if method == "gradcam" and name == "vit":  # tokens on the patch grid, not the conv
            assert "patch_embeddings" not in meta["layer"]
        assert_same_fingerprint(before, fingerprint(model))


def test_wrapper_forwards_declarations_and_forward_options():
    class Declared(DictOutput):
        feature_layer = "net.0"

        def forward(self, x, scale=1.0):
            return {"logits": scale * self.net(x)}

    model = Declared().eval()
    wrapped = fm.LogitsOnly(model, scale=2.0)
    assert wrapped.feature_layer == "model.net.0"  # DANCE's default layer, renamed
    x = _photos()
    torch.testing.assert_close(wrapped(x), 2.0 * model(x)["logits"])
    with pytest.raises(TypeError, match="no tensor 'logits'"):
        fm.LogitsOnly(nn.Identity())(x)
