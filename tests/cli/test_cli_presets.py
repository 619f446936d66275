"""Presets (issue 20): ``--preset fast|default|paper`` / ``preset=`` pick documented settings
per method, explicit options override them, every preset is valid for every method, the
fast ones stay within the declared pass budget at 224² with resnet50, and
``faithmap methods --options NAME`` lists options, defaults and presets."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import faithmap as fm
from faithmap.cli import main
from faithmap.cli.main import method_options
from faithmap.core.presets import FAST_PASSES, PRESET_NAMES, PRESETS, get_preset
from tests.tiny_models import tiny_cnn

#: The methods faithmap registers (tests register more only inside a scope).
BUILTIN = fm.available_methods()


def _options(method, preset):
    extra = {"check_model": False} if method == "comet" else {}  # comet: any classifier
    return fm.get_explainer(tiny_cnn(), method, preset=preset, **extra)


def test_every_registered_method_has_every_preset():
    assert set(BUILTIN) <= set(PRESETS), "a registered method has no presets entry"
    for method in BUILTIN:
        assert set(PRESETS[method]) == {"fast", "paper"}
        for preset in PRESET_NAMES:
            assert get_preset(method, preset).source  # each says where it comes from
        assert dict(get_preset(method, "default").options) == {}


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_builds_every_method(preset):
    """An option a method does not take (or a bad value) fails here."""
    for method in BUILTIN:
        explainer = _options(method, preset)
        assert explainer.name == method


def test_fast_presets_run_on_a_real_digit():
    model = fm.zoo.load("mnist_allconv")
    x = fm.data.load("mnist", split="test")[0][:1]
    for method in BUILTIN:
        if method == "comet":
            continue  # its own detector only (tested in tests/methods)
        attr = fm.explain(model, x, method, preset="fast")
        assert attr.shape[0] == 1 and torch.isfinite(attr).all(), method


def test_fast_presets_fit_the_pass_budget_at_224_on_resnet50():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    shape = (1, 3, 224, 224)
    for method in BUILTIN:
        if method == "comet":
            continue  # one selector pass; its checkpoint does not fit resnet50
        fast = fm.get_explainer(model, method, preset="fast").cost(shape)
        default = fm.get_explainer(model, method).cost(shape)
        passes = fast.passes + sum(fast.other.values())
        assert passes <= FAST_PASSES, (method, fast)
        assert passes <= default.passes + sum(default.other.values()), method


def test_preset_options_reach_the_explainer_and_options_override():
    model = tiny_cnn()
    x = torch.stack(list(fm.data.sample_images(size=16).values())[:2])  # real photos
    fast = fm.get_explainer(model, "integrated_gradients", preset="fast")
    assert fast.n_steps == PRESETS["integrated_gradients"]["fast"].options["n_steps"]
    assert fm.get_explainer(model, "integrated_gradients", preset="fast", n_steps=3).n_steps == 3
    assert fm.get_explainer(model, "neflag", preset="paper").n_samples == 20
    dance = fm.get_explainer(model, "dance", preset="fast")
    assert (dance.patch, dance.max_masks) == (16, 4)
    # fm.explain takes preset= too, and gives what the spelled-out options give
    a = fm.explain(model, x, "integrated_gradients", preset="fast")
    b = fm.explain(model, x, "integrated_gradients", n_steps=20)
    assert torch.equal(a, b)
    c = fm.explain(model, x, "integrated_gradients", preset="fast", n_steps=4)
    assert torch.equal(c, fm.explain(model, x, "integrated_gradients", n_steps=4))
    # "default" is the method's defaults
    assert torch.equal(fm.explain(model, x, "smoothgrad", preset="default", n_samples=3),
                       fm.explain(model, x, "smoothgrad", n_samples=3))
    # an Explainer class takes its registry name's presets
    assert fm.get_explainer(model, fm.NeFLAG, preset="fast").n_samples == 10


def test_unknown_preset_and_unlisted_method_are_clear_errors():
    model = tiny_cnn()
    with pytest.raises(ValueError, match="unknown preset 'quick'; choose one of fast, default"):
        fm.get_explainer(model, "saliency", preset="quick")
    with pytest.raises(ValueError, match="has no 'fast' preset"):
        fm.get_explainer(model, "captum:Saliency", preset="fast")
    assert isinstance(fm.get_explainer(model, "captum:Saliency", preset="default"),
                      fm.Explainer)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, img in list(fm.data.sample_images(size=16).items())[:2]:
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{name}.png")
    return folder


def _explain(folder, out, *extra):
    return CliRunner().invoke(main, ["explain", str(folder), "--model", "tiny_models:tiny_cnn",
                                     "--size", "16", "--out", str(out), *extra])


def test_cli_preset_reaches_the_explainer(photos, tmp_path):
    r = _explain(photos, tmp_path / "a", "--method", "integrated_gradients", "--preset", "fast")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "a" / "summary.json").read_text())["config"]
    assert "('n_steps', 20)" in config["options"]
    assert "21 forward + 20 backward pass(es) per image" in r.output  # the declared cost
    r = _explain(photos, tmp_path / "b", "--method", "integrated_gradients", "--preset", "fast",
                 "-o", "n_steps=3")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "b" / "summary.json").read_text())["config"]
    assert "('n_steps', 3)" in config["options"] and "20" not in config["options"]
    a = np.load(tmp_path / "a" / "astronaut.integrated_gradients.npy")
    b = np.load(tmp_path / "b" / "astronaut.integrated_gradients.npy")
    assert not np.array_equal(a, b)  # the override changed the computation


def test_cli_unknown_preset_is_a_one_line_usage_error(photos, tmp_path):
    r = _explain(photos, tmp_path / "c", "--preset", "quick")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "--preset" in lines[0] and "'quick'" in lines[0]
    assert "fast" in lines[0] and "paper" in lines[0]
    r = _explain(photos, tmp_path / "d", "--method", "captum:Saliency", "--preset", "fast")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "--preset fast" in r.output and "has no 'fast' preset" in r.output


def test_methods_options_lists_options_defaults_docs_and_presets():
    r = CliRunner().invoke(main, ["methods", "--options", "dance"])
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line for line in r.output.splitlines() if line.strip()}
    for option, default in (("patch", "3"), ("steps", "150"), ("radius", "0.01"),
                            ("batch_size", "32"), ("base", "'saliency'")):
        assert rows[option].split()[1] == default, rows[option]
    assert "patch side and step in pixels" in rows["patch"]  # the docstring's words
    assert "int" in rows["patch"].split()[2]
    assert "fast: patch=16, stride=16, max_masks=4" in r.output
    assert "paper: base_options={'abs': False}, patch=3" in r.output
    assert "default: (the defaults)" in r.output
    # options reached through **options (BSM's search options, SmoothGrad's noise)
    bsm = CliRunner().invoke(main, ["methods", "--options", "bsm"]).output
    assert all(f"\n{o} " in bsm for o in ("objective", "steps", "refine_steps", "fallback"))
    names = [row[0] for row in method_options(fm.SmoothGrad)]
    assert names[:2] == ["squared", "n_samples"] and "batch_size" in names


def test_methods_plain_and_unknown():
    r = CliRunner().invoke(main, ["methods"])
    assert r.exit_code == 0 and r.output.split() == fm.available_methods()
    r = CliRunner().invoke(main, ["methods", "--options", "nope"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "unknown method 'nope'" in r.output
