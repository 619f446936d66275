"""zoo.model_spec.load_model: the specs the CLI and fm.evaluate accept."""

import warnings

import pytest
import torch
from torch import nn

from faithmap.zoo.model_spec import LoadedModel, input_channels, load_model
from tiny_models import tiny_cnn


def test_zoo_spec_reads_the_model_card():
    loaded = load_model("zoo:mnist_vgg")
    assert isinstance(loaded, LoadedModel) and loaded.spec == "zoo:mnist_vgg"
    assert not loaded.model.training and not loaded.random_weights
    assert (loaded.input_size, loaded.channels) == (28, 1)
    assert loaded.class_names == [str(d) for d in range(10)]
    assert load_model("zoo:mnist_allconv").input_size == 28  # "1×H×W, any ... (trained at 28)"


def test_torchvision_spec_random_weights_warn_and_local_weights_load(tmp_path):
    with pytest.warns(UserWarning, match="RANDOM weights"):
        loaded = load_model("torchvision:resnet18")
    assert loaded.random_weights and (loaded.input_size, loaded.channels) == (224, 3)
    torch.manual_seed(0)
    import torchvision

    net = torchvision.models.resnet18(num_classes=4)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model("torchvision:resnet18", tmp_path / "w.pt")
    assert not loaded.random_weights and not loaded.model.training
    assert torch.equal(loaded.model.model.fc.weight, net.fc.weight)  # Sequential(normalize, model)
    assert loaded.model(torch.rand(1, 3, 32, 32)).shape == (1, 4)


def test_module_factory_spec(tmp_path):
    loaded = load_model("tiny_models:tiny_cnn")
    assert (loaded.input_size, loaded.channels) == (None, 3)
    assert not loaded.model.training and not loaded.random_weights
    other = tiny_cnn(seed=1)
    torch.save(other.state_dict(), tmp_path / "w.pt")
    reloaded = load_model("tiny_models:tiny_cnn", tmp_path / "w.pt")
    assert torch.equal(reloaded.model.conv1.weight, other.conv1.weight)
    assert not reloaded.model.training
    assert load_model("torch.nn:Identity").channels == 3  # no conv: the default


@pytest.mark.parametrize("spec, error, match", [
    ("resnet18", ValueError,
     "must be 'torchvision:ARCH', 'timm:NAME', 'zoo:NAME' or 'module.path:factory'"),
    ("zoo:", ValueError, "must be"),
    ("torchvision:no_such_arch", ValueError, "unknown torchvision"),
    ("zoo:no_such_model", KeyError, "unknown zoo model 'no_such_model'; available"),
    ("tiny_models:no_such_factory", ValueError, "has no attribute 'no_such_factory'"),
    ("no_such_module_xyz:factory", ModuleNotFoundError, "no_such_module_xyz"),
    ("builtins:dict", TypeError, "did not produce an nn.Module"),
    ("math:pi", TypeError, r"got float"),
])
def test_bad_specs_give_clear_errors(spec, error, match):
    with pytest.raises(error, match=match):
        load_model(spec)


def test_input_channels():
    assert input_channels(tiny_cnn(in_channels=1)) == 1
    assert input_channels(nn.Sequential(nn.Flatten(), nn.Conv2d(5, 2, 1), nn.Conv2d(2, 7, 1))) == 5
    assert input_channels(nn.Linear(4, 2)) == 3
    assert input_channels(nn.Linear(4, 2), default=1) == 1
