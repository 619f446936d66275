"""`faithmap explain` on a folder with a corrupt file."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faithmap.cli import main


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_explain_folder_with_corrupt_file(image_dir, tmp_path):
    before = {p.name: p.read_bytes() for p in image_dir.iterdir()}
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "explain", str(image_dir), "--model", "tiny_models:tiny_cnn", "--method",
        "integrated_gradients", "-o", "n_steps=4", "--size", "16", "--out", str(out),
        "--images-per-batch", "1",
    ])
    assert result.exit_code == 1, result.output
    assert "corrupt.png" in result.output and "notes.txt" in result.output
    for stem in ("a", "b"):
        attr = np.load(out / f"{stem}.integrated_gradients.npy")
        assert attr.shape == (3, 16, 16) and np.isfinite(attr).all()
        png = Image.open(out / f"{stem}.integrated_gradients.png")
        assert png.size == (360, 16 + 44)  # image | heatmap | overlay, legend strip under
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["explained"]) == 2 and len(summary["failed"]) == 2
    assert {p.name: p.read_bytes() for p in image_dir.iterdir()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_outputs_never_overwrite_inputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    img = out / "x.saliency.png"  # an input that looks exactly like an output name
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(img)
    original = img.read_bytes()
    result = CliRunner().invoke(main, ["explain", str(img), "--model", "tiny_models:tiny_cnn",
                                       "--out", str(out), "--size", "16"])
    assert result.exit_code == 0, result.output
    assert img.read_bytes() == original
    assert (out / "x.saliency.saliency.png").exists()


def test_missing_file_and_bad_model_spec(tmp_path):
    result = CliRunner().invoke(main, ["explain", str(tmp_path / "nope.png"), "--model",
                                       "tiny_models:tiny_cnn", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "nope.png" in result.output
    result = CliRunner().invoke(main, ["explain", str(tmp_path), "--model", "resnet18"])
    assert result.exit_code != 0 and "model spec" in result.output
    result = CliRunner().invoke(main, ["explain", str(tmp_path), "--model", "tiny_models:tiny_cnn",
                                       "--method", "nope"])
    assert result.exit_code != 0 and "unknown method" in result.output


def test_torchvision_spec_with_local_weights(tmp_path):
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3)
    weights = tmp_path / "w.pt"
    torch.save(net.state_dict(), weights)
    img = tmp_path / "img.png"
    Image.fromarray(np.full((40, 40, 3), 128, dtype=np.uint8)).save(img)
    result = CliRunner().invoke(main, [
        "explain", str(img), "--model", "torchvision:resnet18", "--weights", str(weights),
        "--method", "gradcam", "-o", "layer='model.layer4'", "--size", "32",
        "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.output
    attr = np.load(tmp_path / "o" / "img.gradcam.npy")
    assert attr.shape == (1, 32, 32)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["explained"][0]["predicted"] in range(3)


def test_methods_command_lists_registry():
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0 and "integrated_gradients" in result.output.split()


def test_zoo_commands():
    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0 and "mnist_allconv" in result.output
    result = CliRunner().invoke(main, ["zoo", "info", "mnist_vgg"])
    assert result.exit_code == 0 and json.loads(result.output)["name"] == "mnist_vgg"
    result = CliRunner().invoke(main, ["zoo", "info", "nope"])
    assert result.exit_code == 1 and "unknown zoo model 'nope'" in result.output


def test_explain_with_zoo_model(tmp_path):
    img = tmp_path / "digit.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(img)
    result = CliRunner().invoke(main, ["explain", str(img), "--model", "zoo:mnist_vgg",
                                       "--method", "gradcam", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "o" / "digit.gradcam.npy").shape == (1, 28, 28)
