"""The one validate/cast/guard prelude of public entry points."""

import pytest
import torch

from faithmap.core.errors import InvalidInputError, ModelModeError, TargetError
from faithmap.core.prelude import guarded_call, prepare
from model_checks import assert_same_fingerprint, fingerprint


def test_prepare_detaches_and_casts_to_the_model_dtype(cnn):
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    inputs, target = prepare(cnn, x, 1)
    assert inputs.dtype == torch.float32 and not inputs.requires_grad
    assert target.index_list() == [1, 1]
    same, _ = prepare(cnn.double(), x)
    assert same.dtype == torch.float64


@pytest.mark.parametrize("bad, error", [
    (torch.rand(3, 8, 8), InvalidInputError), (torch.full((1, 3, 4, 4), float("nan")),
                                               InvalidInputError),
    ([1.0], InvalidInputError)])
def test_prepare_rejects_bad_inputs(cnn, bad, error):
    with pytest.raises(error):
        prepare(cnn, bad)


def test_prepare_rejects_bad_targets_and_models(cnn):
    with pytest.raises(TargetError):
        prepare(cnn, torch.rand(2, 3, 8, 8), [0, 1, 2])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        prepare(lambda x: x, torch.rand(2, 3, 8, 8))


def test_guarded_call_restores_the_model_also_when_the_body_raises(cnn):
    before = fingerprint(cnn)
    with (pytest.raises(RuntimeError, match="boom"),
          guarded_call(cnn, torch.rand(2, 3, 8, 8)) as (inputs, _)):
        cnn.register_forward_hook(lambda *a: None)
        cnn.conv1.weight.requires_grad_(False)
        cnn(inputs)
        raise RuntimeError("boom")
    assert_same_fingerprint(before, fingerprint(cnn))


def test_guarded_call_refuses_training_mode_with_batchnorm(cnn):
    cnn.train()
    with pytest.raises(ModelModeError), guarded_call(cnn, torch.rand(2, 3, 8, 8)):
        pass
