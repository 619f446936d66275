"""COMET's evaluation loops go through core.batching: batch_size (rows per forward pass)
does not change accuracy or validation; the old name ``batch`` warns and gives the same."""

import pytest
import torch
from comet_helpers import tiny_data, tiny_detector

from faithmap import comet


def _model():
    torch.manual_seed(0)
    return comet.ComprehensiveAttributionModel(
        {"selector": "unet", "selector_widths": [4, 8], "in_channels": 1, "num_classes": 3,
         "predictor_widths": [4, 8], "mean": 0.2, "std": 0.3, "fill": 0.2}).eval()


def test_accuracy_batch_size_and_deprecated_batch():
    x, y = tiny_data(20)
    det = tiny_detector().train()
    reference = float((det.eval()(x).argmax(1) == y).float().mean())
    det.train()
    values = [comet.accuracy(det, x, y, batch_size=b) for b in (1, 3, 7, None)]
    assert values == [pytest.approx(reference)] * 4
    assert det.training  # the training flag is restored
    with pytest.warns(DeprecationWarning, match="'batch' is deprecated, use 'batch_size'"):
        assert comet.accuracy(det, x, y, batch=3) == values[1]
    with pytest.raises(ValueError, match="batch_size"):
        comet.accuracy(det, x, y, batch_size=0)


def test_validate_batch_size_and_deprecated_batch():
    x, y = tiny_data(20)
    model, det = _model(), tiny_detector()
    full = comet.validate(model, det, x, y, batch_size=None)
    for b in (1, 6):
        out = comet.validate(model, det, x, y, batch_size=b)
        assert out.keys() == full.keys()
        for k in out:
            assert out[k] == pytest.approx(full[k], rel=1e-6)
    with pytest.warns(DeprecationWarning, match="'batch' is deprecated"):
        assert comet.validate(model, det, x, y, batch=6) == comet.validate(model, det, x, y,
                                                                           batch_size=6)
    with pytest.raises(TypeError, match="pass 'batch_size' only"):
        comet.validate(model, det, x, y, batch=6, batch_size=6)
