import json

import pytest
import torch
from torch import nn

import faithmap.data as fd
import faithmap.zoo as zoo
from faithmap.zoo.architectures import BasicBlock, Bottleneck, Normalize
from faithmap.zoo.registry import WEIGHTS_DIR

NAMES = ["mnist_vgg", "mnist_resnet", "mnist_bottleneck", "mnist_allconv", "mnist_vgg_robust"]


@pytest.fixture(scope="module")
def mnist_test():
    return fd.load("mnist", "test")


def test_names_and_cards():
    assert zoo.names() == NAMES
    for name in NAMES:
        card = zoo.info(name)
        assert card["name"] == name and card["dataset"] == "mnist"
        assert card["training_command"] == f"faithmap zoo train {name}"
        assert card["class_names"] == [str(d) for d in range(10)]
        assert card["input_size"] and card["architecture"]
        assert card["weights_bytes"] == (WEIGHTS_DIR / f"{name}.pt").stat().st_size
    with pytest.raises(KeyError, match="available"):
        zoo.load("imagenet_vit")


def test_weights_are_small_and_weights_only():
    total = sum((WEIGHTS_DIR / f"{n}.pt").stat().st_size for n in NAMES)
    assert total <= 2 * 1024 * 1024
    state = torch.load(WEIGHTS_DIR / "mnist_vgg.pt", weights_only=True)
    assert all(v.dtype in (torch.float16, torch.int64) for v in state.values())


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_reaches_recorded_accuracy(name, mnist_test):
    model = zoo.load(name)
    assert not model.training
    assert isinstance(next(iter(model.children())), Normalize)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    acc = zoo.accuracy(model, *mnist_test)
    recorded = zoo.info(name)["test_accuracy"]
    assert acc == pytest.approx(recorded, abs=0.003)  # exact here; float slack on other CPUs
    assert acc >= 0.97


def test_architectures_cover_what_methods_must_handle():
    vgg = zoo.load("mnist_vgg")
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in vgg.modules())
    assert any(isinstance(m, nn.MaxPool2d) for m in vgg.modules())
    assert any(isinstance(m, nn.Linear) for m in vgg.modules())
    for name, block in (("mnist_resnet", BasicBlock), ("mnist_bottleneck", Bottleneck)):
        model = zoo.load(name)
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        blocks = [m for m in model.modules() if isinstance(m, block)]
        strided = [b.downsample[0] for b in blocks if b.downsample is not None]
        assert any(c.kernel_size == (1, 1) and c.stride == (2, 2) for c in strided)
    # the BasicBlock's single ReLU module runs twice per forward
    block = next(m for m in zoo.load("mnist_resnet").modules() if isinstance(m, BasicBlock))
    calls = []
    handle = block.relu.register_forward_hook(lambda *_: calls.append(1))
    block(torch.rand(1, 16, 8, 8))
    handle.remove()
    assert len(calls) == 2


def test_allconv_any_size_and_grid_cells():
    model = zoo.load("mnist_allconv")
    for size in (8, 28, 41, 84):
        assert model(torch.rand(2, 1, size, size)).shape == (2, 10)
    b = fd.grid("mnist", n=3, count=40, seed=0)
    cells = b.images.unfold(2, 28, 28).unfold(3, 28, 28)  # N×1×3×3×28×28
    cells = cells.permute(0, 2, 3, 1, 4, 5).reshape(-1, 1, 28, 28)
    with torch.no_grad():
        pred = model(cells).argmax(1)
    # cells are drawn with replacement from the 500 test digits, so allow a little below the
    # model's 97.6% test accuracy
    assert (pred == b.labels.flatten()).float().mean() >= 0.95
    with torch.no_grad():  # on the whole grid, the GAP head picks one of the digits present
        whole = model(b.images).argmax(1)
    assert (whole[:, None] == b.labels).any(1).float().mean() >= 0.95


def test_robust_model_is_more_robust(mnist_test):
    x, y = mnist_test[0][::5], mnist_test[1][::5]
    plain = zoo.robust_accuracy(zoo.load("mnist_vgg"), x, y, radius=1.0, steps=5)
    robust = zoo.robust_accuracy(zoo.load("mnist_vgg_robust"), x, y, radius=1.0, steps=5)
    assert robust > plain + 0.05
    card = zoo.info("mnist_vgg_robust")
    assert card["recipe"]["adversarial"]["attack"] == "pgd_l2"


def test_torchvision_wrapper_loads_local_weights(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(num_classes=4)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "w.pt")
    model = zoo.torchvision("resnet18", weights=tmp_path / "w.pt", num_classes=4)
    assert not model.training and isinstance(model[0], Normalize)
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), net(model[0](x)))
    with pytest.raises(KeyError):
        zoo.torchvision("not_a_model")


def test_missing_weights_give_training_hint(tmp_path):
    with pytest.raises(FileNotFoundError, match="faithmap zoo train mnist_vgg"):
        zoo.load("mnist_vgg", weights_dir=tmp_path)


@pytest.mark.slow
def test_retraining_reproduces_recorded_accuracy(tmp_path):
    card = zoo.train("mnist_allconv", out_dir=tmp_path)
    shipped = zoo.info("mnist_allconv")
    assert abs(card["test_accuracy"] - shipped["test_accuracy"]) <= 0.01
    assert json.loads((tmp_path / "mnist_allconv.json").read_text())["name"] == "mnist_allconv"
    model = zoo.load("mnist_allconv", weights_dir=tmp_path)
    assert zoo.accuracy(model, *fd.load("mnist", "test")) == pytest.approx(card["test_accuracy"])


def test_train_returns_a_card_and_writes_only_to_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    card = zoo.train("mnist_bottleneck", epochs=1)
    assert list(tmp_path.iterdir()) == []
    assert card["recipe"]["epochs"] == 1 and 0.0 <= card["test_accuracy"] <= 1.0
    assert card["training_command"] == "faithmap zoo train mnist_bottleneck"
