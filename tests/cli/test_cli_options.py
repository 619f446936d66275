"""CLI vocabulary: --batch-size is rows per forward pass everywhere; image counts have their
own names (explain --images-per-batch, bench --images; bench --batch is deprecated)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from faithmap import METHODS, Explainer
from faithmap.cli import main


class Recorder(Explainer):
    """Records its batch_size and the images of each call; returns zeros."""

    built: list = []
    calls: list = []

    def __init__(self, model, *, batch_size=32, scale=1.0):
        super().__init__(model, batch_size=batch_size)
        Recorder.built.append(batch_size)

    def attribute(self, x, target):
        Recorder.calls.append(len(x))
        return torch.zeros_like(x)


@pytest.fixture
def recorder():
    Recorder.built, Recorder.calls = [], []
    with METHODS.scoped("recorder_test", Recorder):
        yield Recorder


@pytest.fixture
def five_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _explain(folder, out, *extra):
    return CliRunner().invoke(main, ["explain", str(folder), "--model", "tiny_models:tiny_cnn",
                                     "--method", "recorder_test", "--size", "16", "--out",
                                     str(out), *extra])


def test_explain_images_per_batch_and_batch_size(recorder, five_images, tmp_path):
    result = _explain(five_images, tmp_path / "o", "--images-per-batch", "2",
                      "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert recorder.built == [3]  # --batch-size reaches the explainer as batch_size
    assert recorder.calls == [2, 2, 1]  # --images-per-batch images per call
    assert len(json.loads((tmp_path / "o" / "summary.json").read_text())["explained"]) == 5


def test_explain_defaults_and_method_option_wins(recorder, five_images, tmp_path):
    result = _explain(five_images, tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert recorder.built == [32] and recorder.calls == [5]  # method default; 8 images a call
    recorder.built.clear()
    result = _explain(five_images, tmp_path / "b", "--batch-size", "3", "-o", "batch_size=4")
    assert result.exit_code == 0, result.output
    assert recorder.built == [4]
    for bad in (["--batch-size", "0"], ["--images-per-batch", "0"]):
        assert _explain(five_images, tmp_path / "c", *bad).exit_code == 2


@pytest.mark.parametrize("method, option, runs", [
    # deterministic: neither option changes the maps
    ("integrated_gradients", "n_steps=4", (["--images-per-batch", "1", "--batch-size", "1"],
                                           ["--images-per-batch", "5", "--batch-size", "7"])),
    # noise is drawn per (sample in the call, draw): only --batch-size may vary
    ("smoothgrad", "n_samples=3", (["--images-per-batch", "5", "--batch-size", "1"],
                                   ["--images-per-batch", "5", "--batch-size", "7"])),
])
def test_explain_results_do_not_depend_on_batch_size(five_images, tmp_path, method, option,
                                                     runs):
    maps = []
    for k, extra in enumerate(runs):
        out = tmp_path / str(k)
        result = CliRunner().invoke(main, [
            "explain", str(five_images), "--model", "tiny_models:tiny_cnn", "--method",
            method, "-o", option, "--size", "16", "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        maps.append([np.load(out / f"{i}.{method}.npy") for i in range(5)])
    for a, b in zip(*maps):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _bench(*extra):
    return CliRunner().invoke(main, ["bench", "--model", "zoo:mnist_allconv", "--methods",
                                     "saliency", "--repeats", "1", "--device", "cpu", *extra])


def test_bench_images_and_deprecated_batch():
    new = _bench("--images", "3")
    assert new.exit_code == 0, new.output
    assert "batch 3," in new.output and "deprecated" not in new.output
    with pytest.warns(DeprecationWarning, match="--batch.*--images"):
        old = _bench("--batch", "3")
    assert old.exit_code == 0, old.output
    assert "batch 3," in old.output and "'--batch' is deprecated, use '--images'" in old.output
    assert "--batch " not in CliRunner().invoke(main, ["bench", "--help"]).output  # hidden
    both = _bench("--images", "2", "--batch", "3")
    assert both.exit_code == 2 and "--images only" in both.output
    assert "batch 8," in _bench().output  # the default is unchanged


def test_explain_preset_then_batch_size_then_option(recorder, five_images, tmp_path,
                                                    monkeypatch):
    """Precedence: the preset's options < --batch-size < -o (issue 20)."""
    from faithmap.core.presets import PRESETS, Preset

    monkeypatch.setitem(PRESETS, "recorder_test", {"fast": Preset({"batch_size": 5}, "test"),
                                                   "paper": Preset({}, "test")})
    assert _explain(five_images, tmp_path / "a", "--preset", "fast").exit_code == 0
    assert _explain(five_images, tmp_path / "b", "--preset", "fast",
                    "--batch-size", "3").exit_code == 0
    assert _explain(five_images, tmp_path / "c", "--preset", "fast", "--batch-size", "3",
                    "-o", "batch_size=4").exit_code == 0
    assert _explain(five_images, tmp_path / "d", "--preset", "default").exit_code == 0
    assert recorder.built == [5, 3, 4, 32]
