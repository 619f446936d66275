"""Layer lookup, output capture with temporary hooks, and device names."""

import pytest
import torch
from torch import nn

from faithmap.core.devices import resolve_device
from faithmap.core.layers import capture_output, find_module, last_module_of_type


def test_find_module_by_name_and_by_object(cnn):
    assert find_module(cnn, "conv2") == ("conv2", cnn.conv2)
    assert find_module(cnn, cnn.conv3) == ("conv3", cnn.conv3)
    with pytest.raises(ValueError, match="no module named 'conv9'.*conv"):
        find_module(cnn, "conv9")
    with pytest.raises(ValueError, match="not part of the model"):
        find_module(cnn, nn.Conv2d(1, 1, 1))
    with pytest.raises(TypeError):
        find_module(cnn, 3)


def test_last_module_of_type(cnn):
    assert last_module_of_type(cnn, (nn.Conv2d,))[0] == "conv3"
    with pytest.raises(ValueError, match="no LSTM"):
        last_module_of_type(cnn, (nn.LSTM,))


def test_capture_survives_inplace_relu_and_removes_its_hook(cnn, x_small):
    with capture_output(cnn.conv1, "conv1") as record:
        cnn(x_small)
    expected = cnn.conv1(x_small)
    torch.testing.assert_close(record.output, expected)  # not overwritten by ReLU(inplace)
    assert len(cnn.conv1._forward_hooks) == 0


def test_capture_of_a_reused_module_is_ambiguous(cnn, x_small):
    with capture_output(cnn.relu, "relu") as record:
        cnn(x_small)
    with pytest.raises(ValueError, match="ran 3 times"):
        _ = record.output


def test_capture_removes_the_hook_when_the_forward_raises(cnn):
    with pytest.raises(RuntimeError), capture_output(cnn.conv1):
        cnn(torch.rand(1, 2, 8, 8))  # wrong channel count
    assert len(cnn.conv1._forward_hooks) == 0


def test_device_names():
    assert resolve_device(None) is None
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(RuntimeError):
        resolve_device("no-such-device")
