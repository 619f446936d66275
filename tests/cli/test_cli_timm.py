"""``faithmap explain --model timm:NAME --weights FILE`` (issue 17), like ``torchvision:``."""

import builtins
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from faithmap.cli.main import main


def _photo(tmp_path):
    from skimage import data as skdata

    img = tmp_path / "coffee.png"
    Image.fromarray(skdata.coffee()).resize((48, 32)).save(img)
    return img


def test_timm_spec_with_local_weights(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet10t", pretrained=False, num_classes=3)
    weights = tmp_path / "w.pt"
    torch.save({"state_dict": net.state_dict()}, weights)
    img = _photo(tmp_path)
    result = CliRunner().invoke(main, [
        "explain", str(img), "--model", "timm:resnet10t", "--weights", str(weights),
        "--method", "gradcam", "--size", "32", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "random weights" not in result.output
    assert np.load(tmp_path / "o" / "coffee.gradcam.npy").shape == (1, 32, 32)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["explained"][0]["predicted"] in range(3)  # the file's 3 classes


def test_timm_spec_errors(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    img = _photo(tmp_path)
    result = CliRunner().invoke(main, ["explain", str(img), "--model", "timm:no_such_net",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "unknown timm model 'no_such_net'" in result.output
    torch.manual_seed(0)
    weights = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), weights)
    result = CliRunner().invoke(main, ["explain", str(img), "--model", "timm:resnet10t",
                                       "--weights", str(weights), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "do not fit timm:resnet10t" in result.output
    assert "Traceback" not in result.output

    real_import = builtins.__import__

    def no_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_timm)
    result = CliRunner().invoke(main, ["explain", str(img), "--model", "timm:resnet10t",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "faithmap[timm]" in result.output
    assert "Traceback" not in result.output
