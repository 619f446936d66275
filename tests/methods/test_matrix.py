"""Families × methods (issue 17): every registered method (and LRP through Zennit) on one
model of every torchvision family and timm ViT/DeiT, random weights, two sample photos at the
family's smallest accepted input. Each cell runs — a finite, non-zero map of the promised
shape, the model unchanged (parameters, buffers, flags, hooks) — or refuses with a faithmap
error naming the module, or (boundary methods on a random model that predicts one class on
the whole box) flags the samples without a boundary. The cells are
benchmarks/methods_matrix.py's (its table is in docs/methods/README.md); the default run
takes a subset, the full matrix is slow."""

import importlib.util
from pathlib import Path

import pytest
import torch

import faithmap as fm
from faithmap.methods.dance import default_layer

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "methods_matrix.py"
_spec = importlib.util.spec_from_file_location("methods_matrix", SCRIPT)
matrix = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(matrix)

_MODELS: dict = {}


def _model(family):
    if family not in _MODELS:
        if matrix.FAMILIES[family][0].startswith("timm:"):
            pytest.importorskip("timm")
        _MODELS.clear()  # one family's model at a time
        _MODELS[family] = matrix.build(family)
    return _MODELS[family]


def _check(family, method):
    if method.startswith("zennit:"):
        pytest.importorskip("zennit")
    model, x = _model(family)
    cell = matrix.run_cell(model, x, method, matrix.options(family, method))
    assert cell["status"] != "FAIL", f"{family} / {method}: {cell['detail']}"
    if cell["status"] == "flagged":  # no boundary on this random model: flagged NaN rows
        assert method in ("bsm", "big", "boundary_smoothgrad"), cell
    if cell["status"] == "refused":  # a faithmap error that names a module or operation
        assert "'" in cell["detail"], cell["detail"]
    if "conservation" in cell:
        assert cell["conservation"] <= 1e-3, cell
    return cell


@pytest.mark.parametrize("method", matrix.METHODS)
@pytest.mark.parametrize("family", matrix.SUBSET)
def test_matrix_subset(family, method):
    _check(family, method)


@pytest.mark.slow
@pytest.mark.parametrize("method", matrix.METHODS)
@pytest.mark.parametrize("family", [f for f in matrix.FAMILIES if f not in matrix.SUBSET])
def test_matrix_full(family, method):
    _check(family, method)


def test_lrp_refuses_attention_by_name():
    """Zennit's composites crashed inside autograd (torchvision ViT) or returned NaN (timm)."""
    pytest.importorskip("zennit")
    model, x = _model("timm_deit")
    with pytest.raises(fm.UnsupportedLayerError, match=r"'blocks\.0\.attn' of type Attention"):
        fm.explain(model, x, matrix.LRP)


def test_lrp_refuses_batch_norm_after_concatenation_and_vanishing_relevance():
    """DenseNet crashed inside Zennit's batch-norm merging; EfficientNet gave all-zero maps."""
    pytest.importorskip("zennit")
    model, x = _model("densenet")
    with pytest.raises(fm.UnsupportedLayerError,
                       match=r"'features\.denseblock1\.denselayer2\.norm1'.*concatenation"):
        fm.explain(model, x, matrix.LRP)
    model, x = _model("efficientnet")
    with pytest.raises(fm.UnsupportedLayerError, match="all-zero relevance"):
        fm.explain(model, x, matrix.LRP)


@pytest.mark.slow
def test_token_models_get_token_layers():
    """Grad-CAM and DANCE read a transformer block's tokens on ViTs, not the patch
    embedding nor a 4-D tensor inside attention (DANCE traced torchvision vit_b_16's
    ``conv_proj`` and timm's ``blocks.11.attn.k_norm`` before): Grad-CAM the tokens entering
    the last block, DANCE the last block."""
    for family, gradcam, dance in (("vit", "encoder.layers.encoder_layer_10",
                                    "encoder.layers.encoder_layer_11"),
                                   ("timm_deit", "blocks.10", "blocks.11")):
        model, x = _model(family)
        assert default_layer(model, x) == dance
        explainer = fm.get_explainer(model, "gradcam")
        cam = explainer(x[:1])
        assert explainer.layer_name == gradcam and torch.isfinite(cam).all()


def test_dance_default_layer_on_small_token_models():
    """The same rule on small torchvision ViT and Swin configurations (fast)."""
    from torchvision.models.swin_transformer import (
        PatchMergingV2,
        SwinTransformer,
        SwinTransformerBlockV2,
    )
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2,
                            hidden_dim=16, mlp_dim=32, num_classes=5).eval()
    assert default_layer(vit, torch.rand(1, 3, 32, 32)) == "encoder.layers.encoder_layer_2"
    swin = SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 2], num_heads=[1, 1],
                           window_size=[2, 2], num_classes=5).eval()
    assert default_layer(swin, torch.rand(1, 3, 32, 32)) == "permute"  # N×C×h×w, after norm
    # Swin V2's position-bias MLP maps a fixed 1×3×3×2 table to a "1×h×w×C map" that does
    # not depend on the input (it was the traced layer on an 8² input, whose last stage is
    # 1×1, and DANCE then crashed): the last input-dependent spatial map instead
    v2 = SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                         window_size=[2, 2], num_classes=5, block=SwinTransformerBlockV2,
                         downsample_layer=PatchMergingV2).eval()
    assert default_layer(v2, torch.rand(1, 3, 8, 8)) == "features.1"
