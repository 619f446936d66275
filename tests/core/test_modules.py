"""What methods may rely on instead of class names: Normalize, ResidualBlock, feature_layer."""

import torch
from torch import nn

import faithmap as fm
from faithmap.core.modules import Normalize, ResidualBlock, feature_layer


def test_normalize_is_the_per_channel_affine_map():
    norm = Normalize([0.5, 0.25], [2.0, 4.0])
    x = torch.rand(3, 2, 4, 4)
    ref = torch.stack([(x[:, 0] - 0.5) / 2.0, (x[:, 1] - 0.25) / 4.0], 1)
    torch.testing.assert_close(norm(x), ref)
    assert dict(norm.named_buffers()).keys() == {"mean", "std"}


class _Block(ResidualBlock):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.relu = nn.ReLU()

    def branches(self, x):
        return x, self.conv(x)

    def merge(self, total):
        return self.relu(total)


def test_residual_block_forward_is_merge_of_the_sum():
    block = _Block().eval()
    x = torch.randn(2, 2, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(block.conv(x) + x))


def test_zoo_models_declare_their_feature_layer_and_blocks():
    expected = {"mnist_vgg": "features.9", "mnist_vgg_robust": "features.9",
                "mnist_resnet": "layers", "mnist_bottleneck": "layers",
                "mnist_allconv": "features.11"}
    for name, layer in expected.items():
        model = fm.zoo.load(name)
        assert feature_layer(model) == layer
        assert layer in dict(model.named_modules())
    blocks = [m for m in fm.zoo.load("mnist_resnet").modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 3
    assert feature_layer(nn.Linear(2, 2)) is None
