import json

import pytest
import torch
from click.testing import CliRunner
from comet_helpers import TINY, tiny_data, tiny_detector

import faithmap as fm
from faithmap import comet
from faithmap.cli import main
from faithmap.core.errors import InvalidInputError
from faithmap.zoo.checkpoints import WEIGHTS_DIR


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("comet")
    res = comet.train(tiny_data(16), tiny_data(8, seed=1), detector=tiny_detector(), epochs=1,
                      tau=0.2, **TINY)
    res.model.save(folder / "m.pt", half=True)
    return res.model, folder / "m.pt"


def test_save_load_half_roundtrip(trained):
    model, path = trained
    loaded = comet.ComprehensiveAttributionModel.load(path)
    x = tiny_data(4, seed=2)[0]
    with torch.no_grad():
        assert torch.allclose(loaded.explain(x), model.explain(x), atol=2e-2)
    assert not loaded.training
    with pytest.raises(FileNotFoundError, match="shipped"):
        comet.ComprehensiveAttributionModel.load("no_such_checkpoint")
    torch.save({"kind": "other"}, path.parent / "bad.pt")
    with pytest.raises(ValueError, match="not a COMET comet checkpoint"):
        comet.ComprehensiveAttributionModel.load(path.parent / "bad.pt")


def test_registered_explainer(trained):
    model, path = trained
    det = tiny_detector()
    assert "comet" in fm.available_methods()
    ex = fm.get_explainer(det, "comet", checkpoint=path)
    x = tiny_data(3, seed=2)[0]
    attr = ex(x)
    assert attr.shape == (3, 1, 12, 12) and bool(((attr > 0) & (attr < 1)).all())
    with torch.no_grad():
        assert torch.allclose(attr, ex.comet.explain(x))
    assert len(ex.metadata["comet_prediction"]) == 3
    rgb = fm.get_explainer(comet.SmallCNN(3, 3, (4, 8)).eval(), "comet", checkpoint=model,
                           check_model=False)
    grey = x[:2]
    with torch.no_grad():  # colour input is averaged to grey for a 1-channel checkpoint
        assert torch.allclose(rgb(grey.expand(-1, 3, -1, -1)), model.explain(grey))
    assert "averaged" in rgb.metadata["channel_conversion"]
    with pytest.raises(ValueError):
        ex(x, target=99)  # targets are checked against the black box
    with pytest.raises(InvalidInputError):
        ex(torch.full_like(x, float("nan")))


def test_evaluate_compares_comet_with_posthoc(tmp_path):
    torch.manual_seed(0)
    bench = fm.data.cluttered("mnist", canvas=56, count=8, split="train", seed=5)
    det = comet.SmallCNN(1, 10, (4, 8)).eval()
    res = comet.train((bench.images, bench.labels), (bench.images, bench.labels),
                      detector=det, epochs=1, tau=0.1, **TINY)
    res.model.save(tmp_path / "c.pt")
    out = fm.evaluate(det, "cluttered", methods=["comet", "saliency"],
                      metrics=["pxap", "energy_pointing_game"], n=2, progress=False,
                      method_options={"comet": {"checkpoint": str(tmp_path / "c.pt")}})
    assert not out.errors, out.errors
    assert "comet" in json.dumps(out.config)


def test_cli_one_tiny_epoch(tmp_path):
    runner = CliRunner()
    tiny = ["--n-train", "16", "--n-val", "8", "--selector-widths", "4,8",
            "--predictor-widths", "4,8", "--epochs", "1", "--no-progress"]
    r = runner.invoke(main, ["train-comet", "--data", "cluttered", "--variant", "blackbox",
                             "--out", str(tmp_path), "--name", "bb", *tiny])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["train-comet", "--data", "cluttered", "--out", str(tmp_path),
                             "--detector", str(tmp_path / "bb.pt"), "--name", "c", *tiny])
    assert r.exit_code == 0, r.output
    assert "epoch 1 [comet]" in r.output and "val_acc=" in r.output
    card = json.loads((tmp_path / "c.json").read_text())
    assert card["epochs"] == 1 and "train-comet" in card["training_command"]
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()
    model = comet.ComprehensiveAttributionModel.load(tmp_path / "c.pt")
    assert model.explain(torch.rand(1, 1, 56, 56)).shape == (1, 1, 56, 56)
    r = runner.invoke(main, ["train-comet", "--data", "nope", "--out", str(tmp_path), *tiny])
    assert r.exit_code != 0 and "unknown dataset" in r.output
    r = runner.invoke(main, ["train-comet", "--data", "mnist", "--out", str(tmp_path), *tiny])
    assert r.exit_code != 0 and "--detector" in r.output


@pytest.mark.parametrize("name", comet.shipped())
def test_shipped_checkpoints_load(name):
    card = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    x = comet.test_set(n=4).images
    if card["variant"] == "blackbox":
        net = comet.load_classifier(name)
        assert net(x).shape == (4, 10)
    else:
        model = comet.ComprehensiveAttributionModel.load(name)
        m = model.explain(x)
        assert m.shape == (4, 1, 56, 56) and bool(((m > 0) & (m < 1)).all())
    assert (WEIGHTS_DIR / f"{name}.pt").stat().st_size < 1 << 20
    assert "faithmap train-comet" in card["training_command"] and "val_accuracy" in card
